//! `peerex demo`'s call routing (issue 7): the route-lookup API and the SIP redirect server on free
//! ports, following the demo database, with a Zoom trunk for Acme so its numbers can route.

use crate::config::Config;
use app::App;
use routing::RoutingConfig;
use std::time::Duration;

/// A SIP URI that stands for Zoom's peering SBC in the demo: nothing answers there, the 302 names it.
const DEMO_DESTINATION: &str = "sip:sbc.zoom-demo.invalid:5061;transport=tls";

/// `addr` if it is free, else any free port on loopback.
fn prefer(addr: &str, udp_too: bool) -> String {
    let tcp = std::net::TcpListener::bind(addr).is_ok();
    let udp = !udp_too || std::net::UdpSocket::bind(addr).is_ok();
    if tcp && udp {
        addr.to_owned()
    } else {
        "127.0.0.1:0".to_owned()
    }
}

/// Gives customers without a Zoom trunk the demo's, starts both routing listeners and prints how to
/// ask them. `peerex serve` then leaves routing alone (it is running).
pub async fn start_routing_for_demo(app: &App, config: &mut Config) -> anyhow::Result<()> {
    let trunk = zoom_sim::demo::SIP_TRUNK;
    if app.trunk(trunk).await.is_err() {
        let input = app::trunks::TrunkInput {
            destinations: vec![DEMO_DESTINATION],
            country_code: "1",
            national_prefix: "1",
            international_prefix: "011",
        };
        app.create_trunk(trunk, &input).await.map_err(|e| anyhow::anyhow!("demo trunk: {e}"))?;
    }
    for c in app.customers().await? {
        if c.zoom_trunk.is_none() {
            app.set_customer_trunk(c.id, Some(trunk))
                .await
                .map_err(|e| anyhow::anyhow!("demo trunk for {}: {e}", c.name))?;
        }
    }
    let settings = RoutingConfig {
        http_listen: prefer("127.0.0.1:8081", false),
        sip_listen: prefer("127.0.0.1:5062", true),
        ..config.routing.clone()
    };
    web::install_metrics();
    let started = routing::start(app.routing_source(), &settings).await?;
    routing::wait_ready(&started.routing, Duration::from_secs(10)).await;
    config.routing = RoutingConfig::default();
    let (http, sip) = (started.http.expect("http listener"), started.sip.expect("sip listener"));
    println!(
        "Call routing (what the carrier's SIP edge asks per call; README \"Routing\"):\n  \
         Lookup API       http://{http}/route?to=...\n  \
         Redirect server  sip:{sip} (UDP and TCP)\n  \
         Try it: curl 'http://{http}/route?to=%2B15550100000'\n          \
         sipp {sip} -sn uac -s +15550100000 -m 1 -trace_msg   (the answer is in uac_*_messages.log;\n          \
         sipp's built-in scenario waits for a 200, so it counts the 302/404 as a failed call)\n  \
         Acme's numbers answer 404 not_provisioned until the journey above pushes them to Zoom, then route\n  \
         (302 to trunk {trunk}); after the app is removed in Zoom (step 8) they answer 480 deauthorized.\n"
    );
    Ok(())
}
