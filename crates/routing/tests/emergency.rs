//! Emergency calls are never refused. Outside the US and Canada Zoom hands an emergency call to the
//! peering carrier (`+44999`, `+61000`, `+49112`); peerex lets it through from any number of any
//! customer in any state, over any trunk, on a copy of the database that is stale or still loading,
//! and the shipped Kamailio configuration lets it out when peerex cannot be asked at all. The same
//! callers dialling an ordinary number are refused as before.

mod common;

use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;
use testkit::{on_both, Db};

/// An ordinary PSTN number: refused where an emergency number is let through.
const DIALLED: &str = "+442071234567";

on_both!(emergency_calls_pass_whatever_the_caller_and_its_state);

async fn emergency_calls_pass_whatever_the_caller_and_its_state(db: Db) {
    let w = world(db).await;
    // The lookup API, as the carrier's proxy asks it (from a trusted address).
    for (from, trunk) in
        [(SUSPENDED, "zoom-a"), (UNKNOWN, "zoom-a"), (ACTIVE, "zoom-b"), (RELEASED, "zoom-a")]
    {
        for to in ["%2B44999", "sip:%2B61000@zoom.example;user=phone", "tel:%2B49112", "0044112"] {
            let q = format!(
                "direction=outbound&trunk={trunk}&from={}&to={to}",
                from.replace('+', "%2B")
            );
            let (status, body) = lookup(&w, &q).await;
            assert_eq!(status, 200, "{q}");
            assert_eq!(
                (body["decision"].as_str(), body["status"].as_u64(), body["emergency"].as_bool()),
                (Some("allow"), Some(200), Some(true)),
                "{q}: {body}"
            );
        }
    }
    let q = format!(
        "direction=outbound&trunk=zoom-a&from=%2B{}&to=%2B{}",
        &SUSPENDED[1..],
        &DIALLED[1..]
    );
    let (_, body) = lookup(&w, &q).await;
    assert_eq!(
        (body["status"].as_u64(), body["reason"].as_str()),
        (Some(403), Some("suspended")),
        "{body}"
    );
    assert!(body.get("emergency").is_none(), "{body}");
    // Only calls out of Zoom: a call *to* an emergency number from the PSTN is no customer's.
    let (_, body) = lookup(&w, "to=%2B44999").await;
    assert_eq!(body["status"], 404, "{body}");

    // The redirect server, with real sipp INVITEs carrying the trunk as the proxy adds it: the
    // suspended number's emergency call gets the 302 back to the number as dialled; its call to an
    // ordinary number gets 403.
    let sip = w.started.sip.unwrap();
    let (emergency, ordinary) = tokio::task::spawn_blocking(move || {
        (
            sipp_scenario(sip, "u1", "+44999", &outbound(SUSPENDED, 302)),
            sipp_scenario(sip, "u1", DIALLED, &outbound(SUSPENDED, 403)),
        )
    })
    .await
    .unwrap();
    assert!(emergency, "the suspended number's call to +44999 did not get 302");
    assert!(ordinary, "the suspended number's call to {DIALLED} did not get 403");
}

/// A sipp UAC INVITE from `from` over Zoom trunk `zoom-a` that succeeds only on `status`.
fn outbound(from: &str, status: u16) -> String {
    let s = include_str!("sipp-expect.xml")
        .replace("EXPECTED", &status.to_string())
        .replace("From: <sip:+15559990000@", &format!("From: <sip:{from}@"))
        .replacen("Max-Forwards: 70\n", "X-Peerex-Trunk: zoom-a\nMax-Forwards: 70\n", 1);
    assert!(s.contains("X-Peerex-Trunk: zoom-a"));
    s
}

/// A copy of the database never loaded (peerex starting, or its database unreachable since it
/// started): every other outbound call gets 503, an emergency call is let through, by the lookup
/// API and by the redirect server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_calls_pass_before_the_snapshot_is_loaded() {
    let trusted = routing::listen::Networks::parse(&["127.0.0.1".to_string()]).unwrap();
    let r = routing::Routing::new(domain::trunk::NumberingRule::new("44", "0", "00").unwrap())
        .with_trusted_proxies(trusted);
    assert!(!r.is_ready());
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_addr = http.local_addr().unwrap();
    routing::http::spawn(r.clone(), http, None).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sip = udp.local_addr().unwrap();
    routing::sip::spawn_udp(r.clone(), udp, 0).unwrap();

    let ask = |to: &str| {
        let url = format!(
            "http://{http_addr}/route?direction=outbound&trunk=zoom-a&from=%2B15550100002&to={to}"
        );
        async move {
            let a = reqwest::get(url).await.unwrap();
            (a.status().as_u16(), a.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, body) = ask("%2B44999").await;
    assert_eq!(
        (status, body["decision"].as_str(), body["emergency"].as_bool()),
        (200, Some("allow"), Some(true))
    );
    // Dialled as a short code over a +44 numbering (no trunk known yet: the default rule).
    let (status, body) = ask("sip:999@gw.example").await;
    assert_eq!((status, body["to"].as_str()), (200, Some("+44999")), "{body}");
    assert_eq!(ask("%2B442071234567").await.0, 503);

    let invite = |to: &str| {
        let to = to.to_owned();
        tokio::task::spawn_blocking(move || sip_status_of(sip, &to))
    };
    assert_eq!(invite("+44999").await.unwrap().as_deref(), Some("302"));
    assert_eq!(invite(DIALLED).await.unwrap().as_deref(), Some("503"));
}

/// Sends an outbound INVITE for `to` from the suspended number over `zoom-a`; the status answered.
fn sip_status_of(server: SocketAddr, to: &str) -> Option<String> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let me = s.local_addr().unwrap();
    let msg = format!(
        "INVITE sip:{to}@gw.example SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-e{p};rport\r\nMax-Forwards: 70\r\nTo: <sip:{to}@gw.example>\r\nFrom: <sip:{SUSPENDED}@zoom.example>;tag=e1\r\nCall-ID: emergency-{p}@{me}\r\nCSeq: 1 INVITE\r\nX-Peerex-Trunk: zoom-a\r\nContent-Length: 0\r\n\r\n",
        p = me.port()
    );
    s.send_to(msg.as_bytes(), server).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).ok()?;
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    Some(answer.get(8..11)?.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_asking_the_redirect_server_lets_emergency_calls_out_when_peerex_is_down() {
    kamailio_lets_emergency_calls_out_when_peerex_is_down(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_asking_the_lookup_api_lets_emergency_calls_out_when_peerex_is_down() {
    kamailio_lets_emergency_calls_out_when_peerex_is_down(true).await
}

/// peerex cannot be asked (nothing listens where the proxy asks): a call from Zoom's SBC to +44999
/// reaches the PSTN gateway as dialled; the same caller's call to an ordinary number gets 503.
async fn kamailio_lets_emergency_calls_out_when_peerex_is_down(http: bool) {
    let dir = tempfile::tempdir().unwrap();
    let gateway_port = free_udp_port();
    let gateway = spawn_uas(dir.path(), "gateway", "127.0.0.4", gateway_port, "44999");
    let nobody_sip: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
    let nobody_http: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut defines =
        vec![r#"ZOOM_SBC_NETS="127.0.0.2/32""#.to_string(), r#"ZOOM_TRUNK="zoom-a""#.to_string()];
    if http {
        defines.push("WITH_HTTP".into());
    }
    let k = Kamailio::start_at(nobody_sip, nobody_http, dir.path(), &defines).await;
    let to_gateway = |scenario: &str| {
        scenario
            .replace(
                "@[remote_ip]:[remote_port];user=phone",
                &format!("@127.0.0.4:{gateway_port};user=phone"),
            )
            .replace("<sip:+15559990000@", &format!("<sip:{SUSPENDED}@"))
    };
    let call = to_gateway(include_str!("sipp-call-through.xml"));
    let refused = to_gateway(&include_str!("sipp-expect.xml").replace("EXPECTED", "503"));
    let kamailio = k.addr;
    let (reached, unavailable) = tokio::task::spawn_blocking(move || {
        (
            sipp_scenario_from("127.0.0.2", kamailio, "u1", "+44999", &call),
            sipp_scenario_from("127.0.0.2", kamailio, "u1", DIALLED, &refused),
        )
    })
    .await
    .unwrap();
    assert!(reached, "the emergency call did not reach the gateway:\n{}", k.log());
    assert!(unavailable, "the ordinary call was not refused with 503:\n{}", k.log());
    assert_eq!(
        uas_done(gateway, Duration::from_secs(10)).await,
        Some(true),
        "{}",
        std::fs::read_to_string(dir.path().join("gateway-err.log")).unwrap_or_default()
    );
}

/// The proxy's list (contrib/kamailio's EMERGENCY_RE) is peerex's default list, number for number.
#[test]
fn the_kamailio_configuration_knows_the_same_emergency_numbers() {
    let cfg = include_str!("../../../contrib/kamailio/kamailio.cfg");
    let line = cfg.lines().find(|l| l.starts_with("#!define EMERGENCY_RE")).expect("EMERGENCY_RE");
    let inner = line.split_once("(").unwrap().1.split_once(")").unwrap().0;
    let mut in_cfg: Vec<u64> = inner.split('|').map(|n| n.parse().unwrap()).collect();
    in_cfg.sort_unstable();
    assert_eq!(in_cfg, domain::routing::EmergencyNumbers::default().numbers());
}
