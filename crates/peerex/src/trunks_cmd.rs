//! `peerex trunks ...` and `peerex customers set-trunk` (issue 7): the Zoom trunks calls are routed to.

use anyhow::Context;
use app::trunks::TrunkInput;
use app::App;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum TrunksCmd {
    /// Add a Zoom trunk: the `sip_trunk_name` Zoom knows and the SIP URIs of Zoom's SBCs for it.
    Add {
        /// The `sip_trunk_name` as agreed with Zoom.
        name: String,
        /// A SIP URI of one of Zoom's peering SBCs for this trunk (repeat for several, most preferred first).
        #[arg(long = "destination", required = true, value_name = "SIP_URI")]
        destinations: Vec<String>,
        /// Country code the carrier's national numbers get (inbound Request-URI normalization).
        #[arg(long, default_value = "1")]
        country_code: String,
        /// National (trunk) prefix, e.g. 0 in most of Europe, 1 in North America; empty for none.
        #[arg(long, default_value = "1")]
        national_prefix: String,
        /// International prefix, e.g. 00, or 011 in North America.
        #[arg(long, default_value = "011")]
        international_prefix: String,
        #[arg(long)]
        json: bool,
    },
    /// List the Zoom trunks.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a trunk no customer uses.
    Remove { name: String },
}

pub async fn run(app: &App, cmd: TrunksCmd) -> anyhow::Result<()> {
    match cmd {
        TrunksCmd::Add {
            name,
            destinations,
            country_code,
            national_prefix,
            international_prefix,
            json,
        } => {
            let input = TrunkInput {
                destinations: destinations.iter().map(String::as_str).collect(),
                country_code: &country_code,
                national_prefix: &national_prefix,
                international_prefix: &international_prefix,
            };
            let t = app.create_trunk(&name, &input).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&t)?);
            } else {
                println!(
                    "trunk {} created: {} destination(s); numbering {}",
                    t.name,
                    t.destinations.len(),
                    t.numbering
                );
            }
        }
        TrunksCmd::List { json } => {
            let list = app.trunks().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for t in list {
                    let dests: Vec<&str> = t.destinations.iter().map(|d| d.as_str()).collect();
                    println!("{:<24} {}  ({})", t.name, dests.join(" "), t.numbering);
                }
            }
        }
        TrunksCmd::Remove { name } => {
            app.delete_trunk(&name).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("trunk {name} removed");
        }
    }
    Ok(())
}

/// `peerex customers set-trunk ID (TRUNK | --none)`.
pub async fn set_customer_trunk(app: &App, id: &str, trunk: Option<&str>) -> anyhow::Result<()> {
    let customer = id
        .parse()
        .map_err(|_| anyhow::anyhow!("{id:?} is not a customer id (see `peerex customers list`)"))
        .context("customers set-trunk")?;
    let c = app.set_customer_trunk(customer, trunk).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    match &c.zoom_trunk {
        Some(t) => println!("{} now uses Zoom trunk {t}", c.name),
        None => println!("{} has no Zoom trunk: its numbers cannot be pushed to Zoom", c.name),
    }
    Ok(())
}
