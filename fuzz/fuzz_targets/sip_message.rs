//! Any datagram or TCP message to the SIP redirect server: `handle` must never panic, and whatever
//! it answers is a SIP response with a status the server is meant to send.
#![no_main]

use libfuzzer_sys::fuzz_target;
use routing::snapshot::Snapshot;
use routing::Routing;
use std::sync::OnceLock;

fn routing() -> &'static Routing {
    static R: OnceLock<Routing> = OnceLock::new();
    R.get_or_init(|| {
        Routing::from_snapshot(domain::trunk::NumberingRule::nanp(), Snapshot::default())
    })
}

fuzz_target!(|data: &[u8]| {
    let src = "192.0.2.10:5070".parse().unwrap();
    if let Some((answer, _)) = routing::sip::handle(routing(), data, src) {
        assert!(routing::sip::is_expected_answer(&answer), "{}", String::from_utf8_lossy(&answer));
    }
});
