//! The redirect server and the lookup API on several threads, each with a socket of its own on the
//! same address: every socket is served, whichever one the kernel hands a sender to.

mod common;

use common::*;
use std::net::UdpSocket;
use std::time::Duration;
use testkit::{on_both, Db};

/// Senders, each from its own port: the kernel spreads them over the sockets by address and port.
const SENDERS: usize = 48;

on_both!(every_thread_answers_calls);

async fn every_thread_answers_calls(db: Db) {
    let w = world_with(db, |c| {
        c.sip_threads = 4;
        c.http_threads = 3;
    })
    .await;
    let sip = w.started.sip.unwrap();
    let answered = tokio::task::spawn_blocking(move || {
        (0..SENDERS)
            .filter(|i| {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                let me = s.local_addr().unwrap();
                let msg = format!(
                    "INVITE sip:{ACTIVE}@peerex.example SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-c{i}\r\nMax-Forwards: 70\r\nTo: <sip:{ACTIVE}@peerex.example>\r\nFrom: <sip:+15559990000@sbc.example>;tag=c{i}\r\nCall-ID: cores-{i}@{me}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
                );
                s.send_to(msg.as_bytes(), sip).unwrap();
                let mut buf = [0u8; 2048];
                s.recv(&mut buf).is_ok_and(|n| buf[..n].starts_with(b"SIP/2.0 302 "))
            })
            .count()
    })
    .await
    .unwrap();
    assert_eq!(answered, SENDERS, "INVITEs answered 302");

    // Separate connections (a client per connection), each accepted by one of the listeners.
    let http = w.started.http.unwrap();
    let mut lookups = Vec::new();
    for _ in 0..SENDERS {
        lookups.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
            let r = tokio::time::timeout(
                Duration::from_secs(5),
                client.get(format!("http://{http}/route?to=%2B15550100001")).send(),
            )
            .await;
            match r {
                Ok(Ok(r)) => r.json::<serde_json::Value>().await.unwrap()["status"] == 302,
                _ => false,
            }
        }));
    }
    let mut ok = 0;
    for l in lookups {
        ok += usize::from(l.await.unwrap());
    }
    assert_eq!(ok, SENDERS, "lookups answered");
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| {
                    name.starts_with("peerex-sip-udp") || name.starts_with("peerex-lookup")
                })
                .count()
        })
        .unwrap_or(7);
    assert!(threads >= 7, "{threads} routing threads");
}
