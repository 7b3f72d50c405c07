//! `peerex reconcile [--customer ID] [--dry-run] [--json]`: compares peerex with Zoom (every linked
//! account, page by page through the account's request budget) and with the routing instances, now,
//! and prints what disagrees. Findings are recorded (first and last seen, closed once no longer
//! seen) unless `--dry-run`. Drift is a report, not a failure: the exit code is 0.

use anyhow::Context;
use app::reconcile::{Outcome, ReconcileRequest, RepairWhich};
use app::App;
use clap::Args;

#[derive(Args)]
pub struct ReconcileArgs {
    /// Only this customer's Zoom account (and not the routing instances).
    #[arg(long)]
    customer: Option<String>,
    /// Compare and print without recording anything.
    #[arg(long, conflicts_with = "repair")]
    dry_run: bool,
    /// Then queue the automatic repairs of every open finding (of the customer) through the job
    /// outbox; the others wait for a person.
    #[arg(long)]
    repair: bool,
    #[arg(long)]
    json: bool,
}

pub async fn run(app: &App, args: ReconcileArgs) -> anyhow::Result<()> {
    let customer = match args.customer.as_deref() {
        None => None,
        Some(s) => {
            Some(s.parse::<domain::CustomerId>().ok().context("--customer is not a customer id")?)
        }
    };
    let req = ReconcileRequest { customer, dry_run: args.dry_run };
    let report = app.reconcile(&req).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let repairs = if args.repair {
        let by = domain::Actor::System(format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        ));
        let which = RepairWhich::Automatic { customer };
        Some(app.repair_findings(&which, &by).await.map_err(|e| anyhow::anyhow!("{e}"))?)
    } else {
        None
    };
    if args.json {
        let mut out = serde_json::to_value(&report)?;
        if let Some(r) = &repairs {
            out["repairs"] = serde_json::to_value(r)?;
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if let Some(r) = &repairs {
        println!("repairs queued for {} findings in {} jobs", r.queued.len(), r.jobs);
    }
    for c in &report.cycles {
        let what = match &c.outcome {
            Outcome::Complete if c.scope == "routing" => {
                format!("{} routing instances compared", c.listed)
            }
            Outcome::Complete => format!("{} numbers listed in {} pages", c.listed, c.pages),
            Outcome::Skipped(why) => format!("skipped: {why}"),
            Outcome::Incomplete(why) => format!("not compared: {why}"),
        };
        let recorded = match &c.recorded {
            Some(r) => {
                format!(" ({} new, {} still open, {} closed)", r.opened, r.still_open, r.closed)
            }
            None => String::new(),
        };
        println!("{}: {what}{recorded}", c.scope);
        for note in &c.notes {
            println!("  note: {note}");
        }
    }
    let findings: Vec<_> = report.findings().collect();
    if findings.is_empty() {
        println!(
            "no drift found{}",
            if report.dry_run { " (dry run: nothing recorded)" } else { "" }
        );
        return Ok(());
    }
    println!();
    println!("{:<22} {:<18} {:<16} DETAIL", "KIND", "NUMBER", "REPAIR");
    for f in findings {
        println!(
            "{:<22} {:<18} {:<16} {}",
            f.kind.as_str(),
            f.subject,
            f.repair.as_str(),
            f.detail
        );
    }
    if report.dry_run {
        println!("(dry run: nothing recorded)");
    }
    Ok(())
}
