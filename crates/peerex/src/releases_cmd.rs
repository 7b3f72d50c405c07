//! `peerex releases start|list|show|withdraw`: the carrier starts the release of some of a
//! customer's active numbers; they wait for the customer's approval in the customer portal.
//! `peerex releases port-out|contract-end|force`: releases without the customer's approval, which
//! run on their due date (or now, forced).

use anyhow::Context;
use app::release::Selection;
use app::App;
use clap::Subcommand;
use domain::Actor;

#[derive(Subcommand)]
pub enum ReleasesCmd {
    /// Start the release of some of a customer's active numbers (all or none; refusals name each number).
    Start {
        /// The customer's id.
        #[arg(long)]
        customer: String,
        /// Why; the customer sees it.
        #[arg(long)]
        reason: String,
        /// These numbers (E.164; repeat, or separate with commas).
        #[arg(long = "number", value_delimiter = ',', value_name = "E164")]
        numbers: Vec<String>,
        /// A CSV file: the e164 (or number) column when the header names one, else the first column.
        #[arg(long, value_name = "FILE", conflicts_with = "numbers")]
        csv: Option<std::path::PathBuf>,
        /// All the customer's active numbers starting with this E.164 prefix.
        #[arg(long, conflicts_with_all = ["numbers", "csv"])]
        prefix: Option<String>,
        /// All the customer's active numbers with this tag.
        #[arg(long, conflicts_with_all = ["numbers", "csv"])]
        tag: Option<String>,
        /// All the customer's active numbers of this region.
        #[arg(long, conflicts_with_all = ["numbers", "csv"])]
        region: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Releases still waiting (or all), newest first, with their age.
    List {
        /// Only this customer's.
        #[arg(long)]
        customer: Option<String>,
        /// Also releases nothing waits in any more.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// One release and each of its numbers.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Withdraw what still waits in a release: those numbers go back to active.
    Withdraw { id: String },
    /// Record a port-out: another carrier won some of a customer's numbers. From the due date they
    /// no longer route and are removed from Zoom; no approval is asked of the customer.
    PortOut {
        /// The customer's id.
        #[arg(long)]
        customer: String,
        /// The numbers won (E.164; repeat, or separate with commas).
        #[arg(long = "number", value_delimiter = ',', value_name = "E164", required = true)]
        numbers: Vec<String>,
        /// The carrier that won them; the customer reads it.
        #[arg(long)]
        gaining_carrier: String,
        /// From this day (00:00 UTC), like 2026-12-31.
        #[arg(long)]
        due: String,
        #[arg(long)]
        json: bool,
    },
    /// End a customer's contract on a date: all its active numbers leave, then its Zoom link ends.
    ContractEnd {
        /// The customer's id.
        #[arg(long)]
        customer: String,
        /// From this day (00:00 UTC), like 2026-12-31.
        #[arg(long)]
        due: String,
        #[arg(long)]
        json: bool,
    },
    /// Force a release without approval now: what still waits stops routing and leaves Zoom, and
    /// what Zoom refused (assigned to a user there) is tried again.
    Force { id: String },
}

fn due_date(raw: &str) -> anyhow::Result<time::Date> {
    time::Date::parse(raw.trim(), time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| anyhow::anyhow!("--due: {raw:?} is not a date like 2026-12-31"))
}

fn customer_id(raw: &str) -> anyhow::Result<domain::CustomerId> {
    raw.parse().map_err(|_| anyhow::anyhow!("--customer: {raw:?} is not a customer id"))
}

fn print_started(r: &domain::release::Release, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        let due = r.due_at.map(|d| d.date().to_string()).unwrap_or_default();
        println!(
            "release {} ({}) recorded: {} numbers leave on {due} ({})",
            r.id,
            r.kind,
            r.waiting + r.releasing + r.refused + r.released,
            r.reason
        );
    }
    Ok(())
}

fn actor() -> Actor {
    Actor::System(format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into())))
}

fn age(started: time::OffsetDateTime, now: time::OffsetDateTime) -> String {
    let d = now - started;
    if d.whole_days() >= 1 {
        format!("{}d", d.whole_days())
    } else if d.whole_hours() >= 1 {
        format!("{}h", d.whole_hours())
    } else {
        format!("{}m", d.whole_minutes().max(0))
    }
}

pub async fn run(app: &App, cmd: ReleasesCmd) -> anyhow::Result<()> {
    let user = |e: app::AppError| anyhow::anyhow!("{e}");
    match cmd {
        ReleasesCmd::Start { customer, reason, numbers, csv, prefix, tag, region, json } => {
            let customer = customer
                .parse()
                .map_err(|_| anyhow::anyhow!("--customer: {customer:?} is not a customer id"))?;
            let selection = if let Some(path) = csv {
                Selection::Csv(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                )
            } else if !numbers.is_empty() {
                Selection::List(numbers)
            } else if prefix.is_some() || tag.is_some() || region.is_some() {
                Selection::Filter { prefix, tag, region }
            } else {
                anyhow::bail!("give --number, --csv, or a filter (--prefix, --tag, --region)");
            };
            let r =
                app.start_release(customer, selection, &reason, &actor()).await.map_err(user)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "release {} started: {} numbers wait for the customer's approval",
                    r.id, r.waiting
                );
            }
        }
        ReleasesCmd::List { customer, all, json } => {
            let customer = match customer {
                Some(c) => Some(
                    c.parse()
                        .map_err(|_| anyhow::anyhow!("--customer: {c:?} is not a customer id"))?,
                ),
                None => None,
            };
            let list: Vec<_> = app
                .releases(customer, 500)
                .await
                .map_err(user)?
                .into_iter()
                .filter(|r| all || r.open() > 0)
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let now = app.now();
                println!(
                    "{:<36}  {:<36}  {:>5}  {:>7}  {:>9}  {:>7}  {:>8}  reason",
                    "release", "customer", "age", "waiting", "releasing", "refused", "released"
                );
                for r in list {
                    println!(
                        "{:<36}  {:<36}  {:>5}  {:>7}  {:>9}  {:>7}  {:>8}  {}",
                        r.id.to_string(),
                        r.customer_id.to_string(),
                        age(r.started_at, now),
                        r.waiting,
                        r.releasing,
                        r.refused,
                        r.released,
                        r.reason
                    );
                }
            }
        }
        ReleasesCmd::Show { id, json } => {
            let id = id.parse().map_err(|_| anyhow::anyhow!("{id:?} is not a release id"))?;
            let (r, lines) = app.release(id).await.map_err(user)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "release": r, "numbers": lines })
                    )?
                );
            } else {
                let due = r.due_at.map(|d| format!(", due {}", d.date())).unwrap_or_default();
                println!(
                    "release {} ({}{due}) for customer {}: {} (started by {}, {} ago)",
                    r.id,
                    r.kind,
                    r.customer_id,
                    r.reason,
                    r.started_by,
                    age(r.started_at, app.now())
                );
                for l in lines {
                    println!(
                        "{}  {:<9}  {}",
                        l.e164,
                        l.state.as_str(),
                        l.message.unwrap_or_default()
                    );
                }
            }
        }
        ReleasesCmd::Withdraw { id } => {
            let id = id.parse().map_err(|_| anyhow::anyhow!("{id:?} is not a release id"))?;
            let n = app.withdraw_release(id, &actor()).await.map_err(user)?;
            println!("release {id} withdrawn: {n} numbers are active again");
        }
        ReleasesCmd::PortOut { customer, numbers, gaining_carrier, due, json } => {
            let r = app
                .start_port_out(
                    customer_id(&customer)?,
                    &numbers,
                    &gaining_carrier,
                    due_date(&due)?,
                    &actor(),
                )
                .await
                .map_err(user)?;
            print_started(&r, json)?;
        }
        ReleasesCmd::ContractEnd { customer, due, json } => {
            let r = app
                .start_contract_end(customer_id(&customer)?, due_date(&due)?, &actor())
                .await
                .map_err(user)?;
            print_started(&r, json)?;
        }
        ReleasesCmd::Force { id } => {
            let id = id.parse().map_err(|_| anyhow::anyhow!("{id:?} is not a release id"))?;
            let n = app.force_release(id, &actor()).await.map_err(user)?;
            println!("release {id} forced: {n} numbers sent to Zoom for removal");
        }
    }
    Ok(())
}
