//! `peerex demo`: the platform on a throw-away SQLite database, seeded with an operator, a customer
//! with its admin, 10,000 numbers and a pending order, so a person can look around in a minute.

use crate::config::Config;
use app::App;
use domain::auth::Role;
use domain::customer::OrderPick;
use domain::Actor;
use std::process::ExitCode;
use tokio::net::TcpListener;

pub const OPERATOR_EMAIL: &str = "admin@carrier.example";
pub const CUSTOMER_EMAIL: &str = "admin@acme.example";
/// Demo credentials are printed on start; the database is thrown away.
pub const DEMO_PASSWORD: &str = "peerex-demo-password";

pub async fn run(mut config: Config, listen: Option<String>) -> anyhow::Result<ExitCode> {
    crate::serve::init_logging(&config)?;
    let shutdown = crate::serve::Shutdown::catch()?;
    let dir = std::env::temp_dir().join(format!("peerex-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    config.data_dir = dir.clone();
    config.database_url = String::new();

    // 8080 unless it is taken: a demo that fails because another program holds a port helps nobody.
    let wanted = listen.unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = match TcpListener::bind(&wanted).await {
        Ok(l) => l,
        Err(_) => TcpListener::bind("127.0.0.1:0").await?,
    };
    let base = format!("http://{}", listener.local_addr()?);
    // Zoom first: the platform's Zoom client points at it.
    let zoom = start_zoom_simulator(&base).await?;
    config.carrier_name = zoom_sim::demo::CARRIER_NAME.into();
    config.zoom = zoom_settings(&zoom.url, &base);
    // The demo's numbers are North American: show the carrier's flag for those without an
    // emergency address, unless the configuration says otherwise.
    if config.numbers.e911_required == domain::zoom_facts::E911Required::default() {
        config.numbers.e911_required =
            domain::zoom_facts::E911Required::Countries(vec!["+1".into()]);
    }
    // Mail goes to a catcher on loopback whose page lists it, unless the configuration names a server.
    let catcher = if config.mail.host.is_empty() {
        let catcher = crate::mail_catcher::start().await?;
        config.mail = crate::mail_config::MailConfig {
            host: "127.0.0.1".into(),
            port: catcher.smtp_port,
            tls: "none".into(),
            sender: format!("{} <numbers@carrier.example>", config.carrier_name),
            portal_url: base.clone(),
            operators: vec![OPERATOR_EMAIL.into()],
            timeout_seconds: 10,
            ..crate::mail_config::MailConfig::default()
        };
        Some(catcher)
    } else {
        None
    };
    // /metrics needs a token; the demo makes one and prints it.
    config.http.metrics_token = app::auth::random_secret();
    // The demo's webhook receivers run on this machine; only a demo reachable from this machine
    // alone may send to private addresses (its sign-ins are printed for all to read).
    config.webhooks.allow_private_targets = listener.local_addr()?.ip().is_loopback();
    let app = crate::cli::open(&config).await?;
    seed(&app).await?;
    println!(
        "\npeerex demo is running (data in {dir}; Ctrl-C to stop)\n\n  \
         Operator portal  {base}/operator\n                   sign in as {OPERATOR_EMAIL} / {DEMO_PASSWORD}\n  \
         Customer portal  {base}/portal\n                   Acme Corp (contract ACME-001), admin {CUSTOMER_EMAIL} / {DEMO_PASSWORD}\n  \
         JSON API         {base}/api/v1  (OpenAPI: {base}/api/v1/openapi.json)\n  \
         Health           {base}/healthz\n  \
         Metrics          curl -H 'Authorization: Bearer {token}' {base}/metrics\n  \
         Mail             {mail}\n",
        dir = dir.display(),
        token = config.http.metrics_token,
        mail = catcher.as_ref().map_or_else(
            || format!("sent through {}:{}", config.mail.host, config.mail.port),
            |c| format!("{} (what the platform mailed to customers' admins and operators)", c.url)
        ),
    );
    print!("{}", journey(&base, &zoom.url));
    crate::routing_demo::start_routing_for_demo(&app, &mut config).await?;
    crate::serve::serve(app, &config, &wanted, Some(listener), shutdown).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}

/// The platform's `[zoom]` settings for the embedded simulator's demo world.
pub fn zoom_settings(zoom_url: &str, base: &str) -> crate::zoom_config::ZoomConfig {
    use zoom_sim::demo;
    crate::zoom_config::ZoomConfig {
        client_id: demo::CLIENT_ID.into(),
        client_secret: demo::CLIENT_SECRET.into(),
        redirect_uri: format!("{base}/zoom/oauth/callback"),
        webhook_secret: demo::SECRET_TOKEN.into(),
        token_key: app::token_keys::TokenKeys::new_key_setting("demo"),
        old_token_keys: Vec::new(),
        oauth_base: zoom_url.to_owned(),
        api_base: format!("{zoom_url}/v2"),
        sip_trunk_name: demo::SIP_TRUNK.into(),
        // Short, so an assignment made in Zoom shows in the portal while you watch.
        poll_seconds: 10,
        requests_per_second: 40.0,
        // The demo carrier's own Server-to-Server app: the carrier-wide comparison.
        carrier_client_id: demo::S2S_CLIENT_ID.into(),
        carrier_client_secret: demo::S2S_CLIENT_SECRET.into(),
        carrier_account_id: demo::CARRIER_ACCOUNT_ID.into(),
        ..crate::zoom_config::ZoomConfig::default()
    }
}

/// The steps of the onboarding journey, to walk by hand (issue 5).
pub fn journey(base: &str, zoom_url: &str) -> String {
    use zoom_sim::demo;
    format!(
        "Walk the Zoom journey by hand:\n  \
         1. Acme Corp has a pending order of 5 numbers: {base}/operator/orders\n  \
         2. In Zoom ({zoom_url}/signin) sign in as {zoom_admin} / {zoom_password}, then App Marketplace >\n     \
            Carrier Provider Exchange > {app} > Add > Allow.\n  \
         3. peerex says \"Please sign in so we can apply your new numbers.\": sign in as {CUSTOMER_EMAIL} / {DEMO_PASSWORD},\n     \
            check the Zoom account peerex names and press \"Link this Zoom account\".\n  \
         4. The order's page in the portal shows each number being pushed: {base}/portal\n  \
         5. In Zoom: Phone System Management > Phone Numbers > Unassigned ({zoom_url}/pbx/phone-numbers?tab=unassigned);\n     \
            assign one to {user}.\n  \
         6. Within 10 seconds both portals show it as assigned.\n  \
         7. Order more numbers in the portal; they are pushed at once. Active numbers without an emergency\n     \
            address are flagged in both portals; in Zoom open a number (Phone Numbers) and Save Emergency Address\n     \
            or Save Caller ID Name: both portals show it, and the operator's number page its history.\n  \
         8. In Zoom: Manage > Added Apps > Remove ({zoom_url}/marketplace/manage). Both portals say the numbers are\n     \
            suspended; add the app again (steps 2-3) and they come back.\n  \
         9. Port-out: operator portal > Releases > \"Port-out or contract end\": Acme, two active numbers (one\n     \
            assigned in Zoom), gaining carrier, due date today > Record port-out. They stop routing and leave Zoom;\n     \
            the assigned one shows what blocks it until it is unbound in Zoom (then \"Try removing from Zoom again\n     \
            now\"). Acme's Wait for Release tab shows \"Ported out to <carrier> on <date>\". In Zoom, a number's\n     \
            Return to Carrier is taken back at the next poll the same way.\n  \
         10. Port-in: {base}/operator/port-ins > Record a port-in for Acme Corp (say +15550109000 and +15550109001\n     \
            from \"Old Tel\", tomorrow). Zoom's Phone Numbers shows them Pending, the portal lists the port-in, and\n     \
            calls to them get 404 not_provisioned; Mark complete (or wait for the date) and they become Normal\n     \
            in Zoom, active in both portals, and route.\n  \
         Operators watch the work at {base}/operator/jobs\n\n",
        zoom_admin = demo::ACME_ADMIN_EMAIL,
        zoom_password = demo::ACME_ADMIN_PASSWORD,
        app = demo::APP_NAME,
        user = demo::ACME_USER_EMAIL,
    )
}

/// Zoom's side of the demo (crate `zoom-sim`, its demo world): Acme Corp's Zoom account with the same
/// admin, and Demo Carrier's Marketplace app sending users back to `{base}/zoom/oauth/callback` and
/// webhooks to `{base}/zoom/webhook`. Prints its URLs and the Zoom credentials; runs until dropped.
async fn start_zoom_simulator(base: &str) -> anyhow::Result<crate::zoom_sim_cmd::Embedded> {
    let zoom = crate::zoom_sim_cmd::start_for_demo(base).await?;
    println!("Zoom simulator at {} (sign in as Acme's Zoom admin, App Marketplace > Carrier Provider Exchange > Add)\n{}", zoom.url, zoom.description);
    Ok(zoom)
}

/// The demo world. Also used by tests, so it goes through the same use-cases a person would.
pub async fn seed(app: &App) -> anyhow::Result<()> {
    let err = |e: app::AppError| anyhow::anyhow!("seeding the demo: {e}");
    let by = Actor::System("demo".into());
    app.create_user(OPERATOR_EMAIL, DEMO_PASSWORD, Role::Admin, None).await.map_err(err)?;
    let acme = app.create_customer("Acme Corp", "ACME-001").await.map_err(err)?;
    app.create_user(CUSTOMER_EMAIL, DEMO_PASSWORD, Role::CustomerAdmin, Some(acme.id))
        .await
        .map_err(err)?;
    let attrs = domain::number::NumberAttrs {
        tags: vec!["demo".into()],
        region: Some("US-NY".into()),
        ..Default::default()
    };
    app.import_range("+15550100000-+15550109999", &attrs, &by, false, &|_| {})
        .await
        .map_err(err)?;
    let pick = OrderPick { count: 5, prefix: Some("+1555010".into()), ..Default::default() };
    app.create_order(acme.id, pick, &[], &by).await.map_err(err)?;
    Ok(())
}
