//! `peerex zoom-sim`: the Zoom simulator (crate `zoom-sim`) on its own, and the embedded one
//! `peerex demo` starts. Prints where to sign in, where the API is, and the seeded credentials.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use zoom_sim::{Options, RateLimit, SimHandle, Simulator, World};

#[derive(clap::Args)]
pub struct ZoomSimArgs {
    /// World file (JSON; see crates/zoom-sim/examples/world.json). Without it, the demo world:
    /// Demo Carrier, its app, and customer Acme Corp (admin admin@acme.example).
    #[arg(long, value_name = "FILE")]
    world: Option<PathBuf>,
    /// With the demo world: the platform's base URL, where the app's OAuth redirect
    /// (/zoom/oauth/callback) and webhooks (/zoom/webhook) go.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:8080",
        conflicts_with = "world"
    )]
    platform_url: String,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// Persist the simulator's state in FILE (atomic writes) and resume from it on start.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Serve the test-control API under /_sim/ (reset, inspect, faults, webhooks log, clock).
    #[arg(long)]
    control: bool,
    /// Per-account LIGHT limit: `by-plan` (Zoom's: 20 Pro, 40 Business and up), a number per second, or `off`.
    #[arg(long, default_value = "by-plan", value_parser = parse_rate_limit)]
    rate_limit: RateLimit,
}

fn parse_rate_limit(s: &str) -> Result<RateLimit, String> {
    match s {
        "by-plan" => Ok(RateLimit::ByPlan),
        "off" => Ok(RateLimit::Off),
        n => n
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .map(RateLimit::PerSecond)
            .ok_or_else(|| format!("{s:?}: give by-plan, off or a positive number")),
    }
}

pub async fn run(args: ZoomSimArgs) -> anyhow::Result<ExitCode> {
    let world = match &args.world {
        Some(path) => World::load(path)?,
        None => zoom_sim::demo::world(&args.platform_url)?,
    };
    let options = Options {
        control_api: args.control,
        state_file: args.state.clone(),
        rate_limit: args.rate_limit,
        ..Options::default()
    };
    let shutdown = crate::serve::Shutdown::catch()?;
    let sim = Simulator::new(world, options)?;
    let (addr, handle) = sim.spawn(args.listen).await?;
    println!("\nZoom simulator is running (Ctrl-C to stop)\n");
    print!("{}", describe(&sim, addr));
    if let Some(state) = &args.state {
        println!("  State file       {}", state.display());
    }
    println!();
    shutdown.wait().await;
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// A simulator running inside another command; it stops when this is dropped.
pub struct Embedded {
    /// `http://127.0.0.1:PORT`: OAuth base; the REST API is under `{url}/v2`.
    pub url: String,
    /// What [`describe`] prints.
    pub description: String,
    _handle: SimHandle,
}

/// The simulator `peerex demo` runs beside the platform at `platform_url`: the demo world
/// (`zoom_sim::demo`) with the control API on, on 127.0.0.1:9090 or a free port when that is taken.
pub async fn start_for_demo(platform_url: &str) -> anyhow::Result<Embedded> {
    let world = zoom_sim::demo::world(platform_url)?;
    let sim = Simulator::new(world, Options { control_api: true, ..Options::default() })?;
    let (addr, handle) = match sim.spawn(([127, 0, 0, 1], 9090).into()).await {
        Ok(running) => running,
        Err(_) => sim.spawn(([127, 0, 0, 1], 0).into()).await?,
    };
    Ok(Embedded {
        url: format!("http://{addr}"),
        description: describe(&sim, addr),
        _handle: handle,
    })
}

/// Where things are and who can sign in, for a person at a terminal. Tests read the first words of
/// each line (`Sign in`, `API base`, ...), so keep them.
pub fn describe(sim: &Simulator, addr: SocketAddr) -> String {
    let base = format!("http://{addr}");
    let world = sim.world();
    let mut s = String::new();
    let _ = writeln!(s, "  Sign in to Zoom  {base}/signin");
    let _ =
        writeln!(s, "  App Marketplace  {base}/marketplace?category=Carrier%20Provider%20Exchange");
    let _ = writeln!(s, "  Phone Numbers    {base}/pbx/phone-numbers");
    if let Some(own) = world.carrier_account() {
        let _ = writeln!(
            s,
            "  Provider Portal  {base}/provider-portal  (the carrier's staff: {} / {})",
            own.admin.email, own.admin.password
        );
    }
    let _ = writeln!(s, "  OAuth            {base}/oauth/authorize  {base}/oauth/token");
    let _ = writeln!(s, "  API base         {base}/v2");
    if sim.options().control_api {
        let _ = writeln!(
            s,
            "  Control API      {base}/_sim/  (e.g. {base}/_sim/accounts, {base}/_sim/webhooks)"
        );
    } else {
        let _ = writeln!(s, "  Control API      off (--control serves it under /_sim/)");
    }
    let c = world.carrier();
    let _ = writeln!(
        s,
        "  Carrier          {} (carrier_code {}), SIP trunks {}",
        c.name,
        c.carrier_code,
        c.sip_trunk_names.join(", ")
    );
    for app in world.apps() {
        let _ = writeln!(
            s,
            "  App              {} ({:?}): client_id {} / client_secret {}",
            app.name, app.kind, app.client_id, app.client_secret
        );
        if !app.redirect_uris.is_empty() {
            let _ = writeln!(s, "                   redirect URI {}", app.redirect_uris.join(" "));
        }
        if let Some(url) = app.deauthorization_url.as_ref().or(app.event_url.as_ref()) {
            let _ = writeln!(
                s,
                "                   webhooks to {url} (secret token {})",
                app.secret_token.as_deref().unwrap_or("")
            );
        }
    }
    for account in world.accounts() {
        let _ = writeln!(
            s,
            "  Zoom account     {} ({}, {:?}{})",
            account.name,
            account.id,
            account.plan,
            if account.zoom_phone { ", Zoom Phone" } else { ", no Zoom Phone" }
        );
        for u in account.all_users() {
            let role = if u.id == account.admin.id { "admin" } else { "user" };
            let _ = writeln!(s, "                   {role} {} / {}", u.email, u.password);
        }
    }
    s
}
