//! The command line: parsing, and the small commands that call one use-case and print its result.
//! `--json` gives scripts a stable shape; otherwise output is for people.

use crate::config::{self, Config};
use anyhow::Context;
use app::{App, AppError};
use clap::{Args, Parser, Subcommand};
use domain::auth::{Role, Scope};
use domain::customer::{ContractState, OrderPick};
use domain::search::NumberQuery;
use domain::{Actor, CustomerId, OrderId};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "peerex",
    version,
    about = "A carrier's platform for selling phone numbers to Zoom Phone customers over Cloud Peering"
)]
pub struct Cli {
    /// TOML configuration file (default: ./peerex.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Database URL, overriding the configuration (`sqlite://FILE` or `postgres://...`).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the portals and the API (migrates the database first).
    Serve {
        /// Address to listen on, overriding the configuration.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run only call routing (the route-lookup API and the SIP redirect server, as configured in
    /// [routing]) following the database, typically a read replica beside an SBC pair. Never
    /// writes to the database; answers inbound calls from the last-known-good snapshot in
    /// [routing] state_dir (default: data_dir) while the database cannot be reached.
    Route,
    /// Apply database migrations and exit.
    Migrate,
    /// Start a seeded platform on a throw-away SQLite database and print where to look.
    Demo {
        /// Address to listen on (default 127.0.0.1:8080, or a free port if that is taken).
        #[arg(long)]
        listen: Option<String>,
    },
    /// The number inventory.
    #[command(subcommand)]
    Numbers(NumbersCmd),
    /// Customers and their admins.
    #[command(subcommand)]
    Customers(CustomersCmd),
    /// Orders of numbers.
    #[command(subcommand)]
    Orders(OrdersCmd),
    /// API tokens.
    #[command(subcommand)]
    Tokens(TokensCmd),
    /// Operator users.
    #[command(subcommand)]
    Users(UsersCmd),
    /// Zoom trunks: where calls for customers' numbers are routed.
    #[command(subcommand)]
    Trunks(crate::trunks_cmd::TrunksCmd),
    /// Releases of customers' numbers, approved by the customer (issue 6).
    #[command(subcommand)]
    Releases(crate::releases_cmd::ReleasesCmd),
    /// Port-ins: customers' numbers brought from other carriers.
    #[command(subcommand, name = "port-in")]
    PortIn(crate::port_in_cmd::PortInCmd),
    /// Daily usage records per customer for billing, as CSV or JSON.
    Usage(crate::usage_cmd::UsageArgs),
    /// Signed webhooks: the endpoints the carrier's systems hear events on, and their deliveries.
    #[command(subcommand)]
    Webhooks(crate::webhooks_cmd::WebhooksCmd),
    /// Compare peerex with Zoom and the routing instances now, and print what disagrees.
    Reconcile(crate::reconcile_cmd::ReconcileArgs),
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Benchmarks that print ratios against a baseline run in the same invocation.
    #[command(subcommand)]
    Bench(crate::bench::BenchCmd),
    /// Run the Zoom simulator (OAuth, Marketplace, Provider Exchange API) and print its URLs and credentials.
    ZoomSim(crate::zoom_sim_cmd::ZoomSimArgs),
}

#[derive(Subcommand)]
enum NumbersCmd {
    /// Import numbers from a CSV file (`-` for stdin) or a range. All or nothing.
    Import {
        /// CSV with a header naming at least `number` (optional: tags, billing_ref, region, note).
        #[arg(required_unless_present = "range", conflicts_with = "range")]
        file: Option<PathBuf>,
        /// A range such as +15550100000-+15550109999.
        #[arg(long)]
        range: Option<String>,
        /// Tags for every number of a range (separated by ';' or ',').
        #[arg(long, requires = "range")]
        tags: Option<String>,
        /// Region for every number of a range.
        #[arg(long, requires = "range")]
        region: Option<String>,
        /// Report what would happen and write nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Search the inventory.
    Search {
        #[command(flatten)]
        filter: Filter,
        /// Numbers per page.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Start after this number (the last of the previous page).
        #[arg(long)]
        after: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Export matching numbers as CSV (to stdout, or --output).
    Export {
        #[command(flatten)]
        filter: Filter,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Clone)]
struct Filter {
    /// E.164 prefix, like +1555.
    #[arg(long)]
    prefix: Option<String>,
    /// available, reserved, provisioning, active, release_pending, releasing, aging, suspended or porting.
    #[arg(long)]
    state: Option<String>,
    /// Customer id.
    #[arg(long)]
    customer: Option<String>,
    #[arg(long)]
    tag: Option<String>,
    #[arg(long)]
    region: Option<String>,
}

#[derive(Subcommand)]
enum CustomersCmd {
    /// Add a customer.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        contract_ref: String,
        #[arg(long)]
        json: bool,
    },
    /// List customers.
    List {
        #[arg(long)]
        json: bool,
    },
    /// End a customer's contract (no new orders).
    End { id: String },
    /// Reactivate an ended contract.
    Reactivate { id: String },
    /// Bind a customer to a Zoom trunk: its numbers are pushed under it and their calls routed to it.
    SetTrunk {
        id: String,
        #[arg(required_unless_present = "none")]
        trunk: Option<String>,
        /// Leave the customer without a trunk.
        #[arg(long, conflicts_with = "trunk")]
        none: bool,
    },
    /// Set the most numbers a customer may hold at once (reserved, being pushed, active, waiting for
    /// release, suspended); orders beyond it are refused.
    SetLimit {
        id: String,
        #[arg(required_unless_present = "none")]
        limit: Option<u32>,
        /// Lift the limit.
        #[arg(long, conflicts_with = "limit")]
        none: bool,
    },
    /// Add a customer-admin user; the password is read from stdin or generated and printed once.
    AddAdmin {
        id: String,
        #[arg(long)]
        email: String,
        /// Read the password from stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum OrdersCmd {
    /// Reserve numbers for a customer: --count with filters, or --numbers.
    Create {
        #[arg(long)]
        customer: String,
        #[arg(long, required_unless_present = "numbers")]
        count: Option<u32>,
        #[arg(long)]
        prefix: Option<String>,
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        tag: Option<String>,
        /// Exactly these numbers (comma separated).
        #[arg(long, value_delimiter = ',', conflicts_with_all = ["count", "prefix", "region", "tag"])]
        numbers: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List recent orders.
    List {
        #[arg(long)]
        customer: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show an order and its numbers.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a pending order; its numbers return to the inventory.
    Cancel { id: String },
}

#[derive(Subcommand)]
enum TokensCmd {
    /// Create an API token; it is printed once and stored only as a hash.
    Create {
        #[arg(long)]
        name: String,
        /// read or write
        #[arg(long, default_value = "read")]
        scope: String,
    },
}

#[derive(Subcommand)]
enum UsersCmd {
    /// Create an operator admin; the password is read from stdin or generated and printed once.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
        /// Create a read-only operator instead.
        #[arg(long)]
        read_only: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Print a documented example configuration file.
    Example,
    /// Print the effective configuration (secrets redacted).
    Show,
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(url) = cli.database_url {
        config.database_url = url;
    }
    match cli.command {
        Command::Config(ConfigCmd::Example) => {
            print!(
                "{}{}{}{}{}",
                config::EXAMPLE,
                crate::zoom_config::EXAMPLE,
                web::http_config::EXAMPLE,
                crate::mail_config::EXAMPLE,
                crate::webhooks_cmd::EXAMPLE
            );
            return Ok(ExitCode::SUCCESS);
        }
        Command::Config(ConfigCmd::Show) => {
            println!("{config:#?}");
            return Ok(ExitCode::SUCCESS);
        }
        Command::Demo { listen } => return crate::demo::run(config, listen).await,
        Command::Route => {
            crate::serve::init_logging(&config)?;
            return crate::route_cmd::run(&config).await;
        }
        Command::Bench(cmd) => return crate::bench::run(cmd).await,
        Command::ZoomSim(args) => {
            crate::serve::init_logging(&config)?;
            return crate::zoom_sim_cmd::run(args).await;
        }
        _ => {}
    }
    crate::serve::init_logging(&config)?;
    let app = open(&config).await?;
    match cli.command {
        Command::Serve { listen } => {
            let listen = listen.unwrap_or_else(|| config.listen.clone());
            let shutdown = crate::serve::Shutdown::catch()?;
            crate::serve::serve(app, &config, &listen, None, shutdown).await?;
        }
        Command::Migrate => println!("database is up to date ({})", app.backend()),
        Command::Numbers(cmd) => return numbers(&app, cmd).await,
        Command::Customers(cmd) => customers(&app, cmd).await?,
        Command::Orders(cmd) => orders(&app, cmd).await?,
        Command::Trunks(cmd) => crate::trunks_cmd::run(&app, cmd).await?,
        Command::Releases(cmd) => crate::releases_cmd::run(&app, cmd).await?,
        Command::PortIn(cmd) => crate::port_in_cmd::run(&app, cmd).await?,
        Command::Webhooks(cmd) => crate::webhooks_cmd::run(&app, &cli_actor(), cmd).await?,
        Command::Reconcile(args) => crate::reconcile_cmd::run(&app, args).await?,
        Command::Usage(args) => crate::usage_cmd::run(&app, args).await?,
        Command::Tokens(TokensCmd::Create { name, scope }) => {
            let scope = Scope::parse(&scope).context("--scope must be read or write")?;
            let (clear, token) = app
                .create_token(&name, scope, &cli_actor().to_string())
                .await
                .map_err(user_error)?;
            eprintln!(
                "API token {:?} ({}) created. Copy it now: it is not shown again.",
                token.name,
                token.scope.as_str()
            );
            println!("{clear}");
        }
        Command::Users(UsersCmd::CreateAdmin { email, password_stdin, read_only }) => {
            let (password, generated) = password(password_stdin)?;
            let role = if read_only { Role::ReadOnly } else { Role::Admin };
            let user = app.create_user(&email, &password, role, None).await.map_err(user_error)?;
            println!("operator {} ({}) created", user.email, role.as_str());
            if generated {
                println!("password: {password}");
            }
        }
        Command::Config(_)
        | Command::Demo { .. }
        | Command::Route
        | Command::Bench(_)
        | Command::ZoomSim(_) => {
            unreachable!("handled above")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Connects and migrates: every command works on a schema that is up to date.
pub async fn open(config: &Config) -> anyhow::Result<App> {
    let url = config.database_url()?;
    let store = store::Store::connect(&url)
        .await
        .with_context(|| format!("cannot open the database {}", config::redact_url(&url)))?;
    store.migrate().await.context("cannot migrate the database")?;
    let settings = app::Settings {
        session_ttl: time::Duration::hours(config.session_hours),
        release_quarantine: time::Duration::days(config.release_quarantine_days),
        e911_required: config.numbers.e911_required.clone(),
        webhooks: config.webhooks.settings()?,
        ..app::Settings::default()
    };
    let mut app = App::new(store, Arc::new(domain::SystemClock), settings);
    if let Some(mailer) = config.mail.setup(&config.carrier_name)? {
        app = app.with_mail(mailer);
    }
    if let Some(keys) = config.webhooks.keys()? {
        app = app.with_webhook_keys(keys);
    }
    Ok(match config.zoom.setup(&config.carrier_name)? {
        Some(zoom) => app.with_zoom(zoom),
        None => app,
    })
}

fn cli_actor() -> Actor {
    Actor::System(format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into())))
}

/// Turns a use-case refusal into the message a person at a terminal needs.
fn user_error(e: AppError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        Ok((s.trim_end_matches(['\r', '\n']).to_owned(), false))
    } else {
        Ok((app::auth::random_secret()[..20].to_owned(), true))
    }
}

fn parse_customer(id: &str) -> anyhow::Result<CustomerId> {
    id.parse()
        .map_err(|_| anyhow::anyhow!("{id:?} is not a customer id (see `peerex customers list`)"))
}

fn parse_order(id: &str) -> anyhow::Result<OrderId> {
    id.parse().map_err(|_| anyhow::anyhow!("{id:?} is not an order id (see `peerex orders list`)"))
}

impl Filter {
    fn query(&self, after: Option<String>, limit: u32) -> anyhow::Result<NumberQuery> {
        let raw = domain::search::RawFilters {
            prefix: self.prefix.as_deref(),
            state: self.state.as_deref(),
            customer: self.customer.as_deref(),
            tag: self.tag.as_deref(),
            region: self.region.as_deref(),
            after: after.as_deref(),
        };
        raw.parse(limit).map_err(|e| anyhow::anyhow!("--{}: {}", e.field, e.message))
    }
}

/// A progress bar on a terminal; nothing when output is piped.
fn progress(len: usize, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} ({per_sec}, {eta} left)")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

async fn numbers(app: &App, cmd: NumbersCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        NumbersCmd::Import { file, range, tags, region, dry_run, json } => {
            let by = cli_actor();
            let outcome = if let Some(range) = range {
                let attrs = domain::number::NumberAttrs {
                    tags: domain::import::parse_tags(tags.as_deref().unwrap_or_default())
                        .map_err(|m| anyhow::anyhow!("--tags: {m}"))?,
                    region,
                    ..Default::default()
                };
                let rows = domain::import::parse_range(&range, &attrs)
                    .map_err(|e| anyhow::anyhow!("--range: {e}"))?;
                let bar = progress(rows.len(), "importing");
                let plan = domain::import::ImportPlan { rows, errors: Vec::new() };
                let outcome = app
                    .import_numbers(plan, &by, dry_run, &|n| bar.inc(n as u64))
                    .await
                    .map_err(user_error)?;
                bar.finish_and_clear();
                outcome
            } else {
                let path = file.context("give a CSV file or --range")?;
                let plan = if path.as_os_str() == "-" {
                    domain::import::parse_csv(std::io::stdin().lock())
                } else {
                    let f = std::fs::File::open(&path)
                        .with_context(|| format!("cannot open {}", path.display()))?;
                    domain::import::parse_csv(std::io::BufReader::with_capacity(1 << 20, f))
                };
                let bar = progress(plan.rows.len(), "importing");
                let outcome = app
                    .import_numbers(plan, &by, dry_run, &|n| bar.inc(n as u64))
                    .await
                    .map_err(user_error)?;
                bar.finish_and_clear();
                outcome
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&outcome)?);
            } else {
                for e in &outcome.errors {
                    let column = e.column.as_deref().map(|c| format!(", {c}")).unwrap_or_default();
                    println!("row {}{column}: {:?}: {}", e.row, e.value, e.reason);
                }
                match (outcome.errors.len(), dry_run) {
                    (0, true) => println!("dry run: {} numbers would be added", outcome.valid),
                    (0, false) => println!("added {} numbers", outcome.added),
                    (n, _) => println!("{n} rows refused; nothing was imported. Fix them and import the whole file again."),
                }
            }
            Ok(if outcome.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        NumbersCmd::Search { filter, limit, after, json } => {
            let query = filter.query(after, limit)?;
            let found = app.search_numbers(&query).await.map_err(user_error)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                for n in &found {
                    let customer = n.customer_id.map(|c| c.to_string()).unwrap_or_default();
                    println!(
                        "{:<16} {:<15} {:<36} {}",
                        n.e164,
                        n.state,
                        customer,
                        n.tags.join(",")
                    );
                }
                if found.len() == query.page_size() as usize {
                    if let Some(last) = found.last() {
                        eprintln!("more: --after {}", last.e164);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        NumbersCmd::Export { filter, output } => {
            let sink: Box<dyn Write> = match &output {
                Some(path) => Box::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot write {}", path.display()))?,
                ),
                None => Box::new(std::io::stdout().lock()),
            };
            let mut w = csv::Writer::from_writer(std::io::BufWriter::new(sink));
            w.write_record([
                "number",
                "state",
                "customer_id",
                "tags",
                "billing_ref",
                "region",
                "note",
            ])?;
            let mut query = filter.query(None, domain::search::MAX_PAGE)?;
            let mut count = 0usize;
            loop {
                let page = app.search_numbers(&query).await.map_err(user_error)?;
                for n in &page {
                    let customer = n.customer_id.map(|c| c.to_string()).unwrap_or_default();
                    w.write_record([
                        n.e164.as_str(),
                        n.state.as_str(),
                        &customer,
                        &n.tags.join(";"),
                        n.billing_ref.as_deref().unwrap_or(""),
                        n.region.as_deref().unwrap_or(""),
                        n.note.as_deref().unwrap_or(""),
                    ])?;
                }
                count += page.len();
                match page.last() {
                    Some(last) if page.len() == query.page_size() as usize => {
                        query.after = Some(last.e164.to_string())
                    }
                    _ => break,
                }
            }
            w.flush()?;
            if output.is_some() {
                eprintln!("exported {count} numbers");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn customers(app: &App, cmd: CustomersCmd) -> anyhow::Result<()> {
    match cmd {
        CustomersCmd::Create { name, contract_ref, json } => {
            let c = app.create_customer(&name, &contract_ref).await.map_err(user_error)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                println!("customer {} created: {}", c.name, c.id);
            }
        }
        CustomersCmd::List { json } => {
            let list = app.customers().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for c in list {
                    println!(
                        "{}  {:<12} {:<8} {}",
                        c.id,
                        c.contract_ref,
                        c.contract_state.as_str(),
                        c.name
                    );
                }
            }
        }
        CustomersCmd::End { id } => {
            let c = app
                .set_contract_state(parse_customer(&id)?, ContractState::Ended)
                .await
                .map_err(user_error)?;
            println!("contract of {} ended: no new orders", c.name);
        }
        CustomersCmd::Reactivate { id } => {
            let c = app
                .set_contract_state(parse_customer(&id)?, ContractState::Active)
                .await
                .map_err(user_error)?;
            println!("contract of {} is active again", c.name);
        }
        CustomersCmd::SetTrunk { id, trunk, .. } => {
            crate::trunks_cmd::set_customer_trunk(app, &id, trunk.as_deref()).await?
        }
        CustomersCmd::SetLimit { id, limit, .. } => {
            let id = parse_customer(&id)?;
            let c = app.set_number_limit(id, limit).await.map_err(user_error)?;
            let held = app.numbers_held(id).await.map_err(user_error)?;
            match c.number_limit {
                Some(l) => println!("{} may hold at most {l} numbers (holds {held})", c.name),
                None => println!("{} has no number limit (holds {held})", c.name),
            }
        }
        CustomersCmd::AddAdmin { id, email, password_stdin } => {
            let customer = parse_customer(&id)?;
            let (password, generated) = password(password_stdin)?;
            let user = app
                .create_user(&email, &password, Role::CustomerAdmin, Some(customer))
                .await
                .map_err(user_error)?;
            println!("customer admin {} created", user.email);
            if generated {
                println!("password: {password}");
            }
        }
    }
    Ok(())
}

async fn orders(app: &App, cmd: OrdersCmd) -> anyhow::Result<()> {
    match cmd {
        OrdersCmd::Create { customer, count, prefix, region, tag, numbers, json } => {
            let pick = OrderPick {
                count: count.unwrap_or(0),
                prefix: domain::search::parse_prefix(prefix.as_deref().unwrap_or_default())
                    .map_err(|m| anyhow::anyhow!("--prefix: {m}"))?,
                region,
                tag,
            };
            let (order, reserved) = app
                .order_numbers(parse_customer(&customer)?, pick, &numbers, &cli_actor())
                .await
                .map_err(user_error)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"order": order, "numbers": reserved})
                    )?
                );
            } else {
                println!("order {} created: {} numbers reserved, pending until the customer's Zoom account is linked", order.id, reserved.len());
                for n in reserved {
                    println!("  {}", n.e164);
                }
            }
        }
        OrdersCmd::List { customer, json } => {
            let customer = customer.as_deref().map(parse_customer).transpose()?;
            let list = app.orders(customer, 100).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for o in list {
                    println!(
                        "{}  {:<9} {:>6} numbers  customer {}",
                        o.id,
                        o.state.as_str(),
                        o.number_count,
                        o.customer_id
                    );
                }
            }
        }
        OrdersCmd::Show { id, json } => {
            let (order, numbers) = app.order(parse_order(&id)?, None).await.map_err(user_error)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"order": order, "numbers": numbers})
                    )?
                );
            } else {
                println!(
                    "order {} ({}) for customer {}, created by {}",
                    order.id,
                    order.state.as_str(),
                    order.customer_id,
                    order.created_by
                );
                for n in numbers {
                    println!("  {:<16} {}", n.e164, n.state);
                }
            }
        }
        OrdersCmd::Cancel { id } => {
            let order = app
                .cancel_order(parse_order(&id)?, None, &cli_actor())
                .await
                .map_err(user_error)?;
            println!("order {} cancelled; its numbers are available again", order.id);
        }
    }
    Ok(())
}
