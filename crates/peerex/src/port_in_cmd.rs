//! `peerex port-in create|list|show|complete|cancel|reschedule`: a customer's numbers brought from
//! another carrier. A running `peerex serve` pushes them to Zoom inactive and activates them on the
//! port date (or once one is marked complete here).

use app::App;
use clap::Subcommand;
use domain::port_in::PortIn;
use domain::Actor;

#[derive(Subcommand)]
pub enum PortInCmd {
    /// Record a port-in (all or none; refusals name the field, or each number at fault).
    Create {
        /// The customer's id.
        #[arg(long)]
        customer: String,
        /// The numbers (E.164; repeat, or separate with commas).
        #[arg(long = "number", value_delimiter = ',', value_name = "E164", required = true)]
        numbers: Vec<String>,
        /// The carrier the numbers come from.
        #[arg(long)]
        losing_carrier: String,
        /// The port date, YYYY-MM-DD (UTC), today or later.
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: String,
        #[arg(long)]
        json: bool,
    },
    /// Port-ins, newest first.
    List {
        /// Only this customer's.
        #[arg(long)]
        customer: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One port-in with its numbers and history.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Mark a port-in complete now: its numbers are activated in Zoom, then route.
    Complete { id: String },
    /// Cancel a port-in: its numbers are removed from Zoom and leave the customer.
    Cancel { id: String },
    /// Move a port-in to another date.
    Reschedule {
        id: String,
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: String,
    },
}

fn actor() -> Actor {
    Actor::System(format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into())))
}

fn id(raw: &str) -> anyhow::Result<uuid::Uuid> {
    raw.parse().map_err(|_| anyhow::anyhow!("{raw:?} is not a port-in id"))
}

fn show(p: &PortIn) {
    println!(
        "port-in {}  customer {}  from {}  date {}  {}",
        p.id,
        p.customer_id,
        p.losing_carrier,
        p.requested_date,
        p.state.label()
    );
    for n in &p.numbers {
        println!(
            "  {:<16}  {}{}",
            n.e164.as_str(),
            n.state,
            n.reason.as_deref().map(|r| format!("  ({r})")).unwrap_or_default()
        );
    }
    for e in &p.events {
        println!(
            "  {}  {:<28}  {} → {}  {}",
            e.at.date(),
            e.actor,
            e.from.map_or("-", |s| s.as_str()),
            e.to.as_str(),
            e.note.as_deref().unwrap_or_default()
        );
    }
}

pub async fn run(app: &App, cmd: PortInCmd) -> anyhow::Result<()> {
    let user = |e: app::AppError| anyhow::anyhow!("{e}");
    let print = |p: &PortIn, json: bool| -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string_pretty(p)?);
        } else {
            show(p);
        }
        Ok(())
    };
    match cmd {
        PortInCmd::Create { customer, numbers, losing_carrier, date, json } => {
            let customer = customer
                .parse()
                .map_err(|_| anyhow::anyhow!("--customer: {customer:?} is not a customer id"))?;
            let p = app
                .create_port_in(customer, &numbers, &losing_carrier, &date, &actor())
                .await
                .map_err(user)?;
            print(&p, json)?;
        }
        PortInCmd::List { customer, json } => {
            let customer = match customer {
                Some(c) => Some(
                    c.parse()
                        .map_err(|_| anyhow::anyhow!("--customer: {c:?} is not a customer id"))?,
                ),
                None => None,
            };
            let list = app.port_ins(customer).await.map_err(user)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<36}  {:<36}  {:<10}  {:>7}  {:<16}  losing carrier",
                    "port-in", "customer", "date", "numbers", "state"
                );
                for p in list {
                    println!(
                        "{:<36}  {:<36}  {:<10}  {:>7}  {:<16}  {}",
                        p.id.to_string(),
                        p.customer_id.to_string(),
                        p.requested_date.to_string(),
                        p.numbers.len(),
                        p.state.as_str(),
                        p.losing_carrier
                    );
                }
            }
        }
        PortInCmd::Show { id: raw, json } => {
            print(&app.port_in(id(&raw)?).await.map_err(user)?, json)?
        }
        PortInCmd::Complete { id: raw } => {
            show(&app.complete_port_in(id(&raw)?, &actor()).await.map_err(user)?)
        }
        PortInCmd::Cancel { id: raw } => {
            show(&app.cancel_port_in(id(&raw)?, &actor()).await.map_err(user)?)
        }
        PortInCmd::Reschedule { id: raw, date } => {
            show(&app.reschedule_port_in(id(&raw)?, &date, &actor()).await.map_err(user)?)
        }
    }
    Ok(())
}
