//! `peerex usage`: the daily usage records a billing system invoices from, as CSV or JSON, and
//! `--take` to take today's by hand.

use app::App;
use clap::Args;

#[derive(Args)]
pub struct UsageArgs {
    /// Take today's records now (once a day: a record taken already is kept), then print them.
    #[arg(long)]
    take: bool,
    /// One day (YYYY-MM-DD, UTC); default today.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    day: Option<String>,
    /// The first day (YYYY-MM-DD); default today.
    #[arg(long)]
    from: Option<String>,
    /// The last day (YYYY-MM-DD); default today.
    #[arg(long)]
    to: Option<String>,
    /// Only this customer's (its id).
    #[arg(long)]
    customer: Option<String>,
    /// `csv` or `json`.
    #[arg(long, default_value = "csv")]
    format: String,
}

pub async fn run(app: &App, args: UsageArgs) -> anyhow::Result<()> {
    let json = match args.format.as_str() {
        "csv" => false,
        "json" => true,
        other => anyhow::bail!("--format must be csv or json, not {other:?}"),
    };
    if args.take {
        let (day, made) = app.take_usage(None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        eprintln!("{made} usage record(s) taken for {day}");
    }
    let (from, to) = match &args.day {
        Some(d) => (Some(d.as_str()), Some(d.as_str())),
        None => (args.from.as_deref(), args.to.as_deref()),
    };
    let records =
        app.usage(from, to, args.customer.as_deref()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&records)?);
    } else {
        print!("{}", domain::usage::to_csv(&records));
    }
    Ok(())
}
