//! The Zoom simulator on a real socket, for tests of code that talks to Zoom.
//!
//! ```no_run
//! # async fn t() {
//! let zoom = testkit::sim::spawn(zoom_sim::demo::world("http://127.0.0.1:8080").unwrap()).await;
//! // zoom.url: http://127.0.0.1:PORT (OAuth and /_sim/), zoom.api_base(): .../v2
//! # }
//! ```

use std::net::SocketAddr;
pub use zoom_sim::{demo, Options, RefreshRotation, Simulator, World};

/// A running simulator; stops when dropped.
pub struct ZoomSim {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`: OAuth (`/oauth/authorize`, `/oauth/token`), pages and `/_sim/`.
    pub url: String,
    /// The simulator itself: its clock (`sim.clock().advance(..)`), world and options.
    pub sim: Simulator,
    pub handle: zoom_sim::SimHandle,
}

impl ZoomSim {
    /// The REST API base, as Zoom's `https://api.zoom.us/v2`.
    pub fn api_base(&self) -> String {
        format!("{}/v2", self.url)
    }
}

/// `world` on a free loopback port with the test-control API (`/_sim/`) on.
pub async fn spawn(world: World) -> ZoomSim {
    spawn_with(world, Options { control_api: true, ..Options::default() }).await
}

/// `world` on a free loopback port with these options.
pub async fn spawn_with(world: World, options: Options) -> ZoomSim {
    let sim = Simulator::new(world, options).expect("testkit: cannot start the Zoom simulator");
    let (addr, handle) = sim
        .spawn(([127, 0, 0, 1], 0).into())
        .await
        .expect("testkit: cannot bind the Zoom simulator");
    ZoomSim { addr, url: format!("http://{addr}"), sim, handle }
}
