//! The world `peerex demo` (and `peerex zoom-sim` without `--world`) runs: the Zoom side of the demo
//! platform's seeded customer. The platform seeds customer "Acme Corp" whose admin is
//! `admin@acme.example` and calls its carrier "Demo Carrier"; here the same names exist on Zoom, and the
//! carrier's Marketplace app sends its users back to the platform's `/zoom/oauth/callback` and its
//! webhooks to the platform's `/zoom/webhook`, on whatever base URL the platform runs at.

use crate::{World, WorldError};
use serde_json::json;

pub const CARRIER_NAME: &str = "Demo Carrier";
pub const CARRIER_CODE: u32 = 7001;
pub const SIP_TRUNK: &str = "demo-carrier-trunk-1";
pub const SIP_TRUNK_2: &str = "demo-carrier-trunk-2";

/// The carrier's admin-managed Marketplace app (the one Acme's admin adds).
pub const CLIENT_ID: &str = "demoCarrierClientId";
pub const CLIENT_SECRET: &str = "demoCarrierClientSecret";
/// Signs the webhooks the app receives (`x-zm-signature`).
pub const SECRET_TOKEN: &str = "demoCarrierWebhookSecret";
pub const APP_NAME: &str = "Demo Carrier Cloud Peering for Zoom";
/// The carrier's own server-to-server app (carrier-wide listing).
pub const S2S_CLIENT_ID: &str = "demoCarrierS2SClientId";
pub const S2S_CLIENT_SECRET: &str = "demoCarrierS2SClientSecret";
pub const CARRIER_ACCOUNT_ID: &str = "demoCarrierOwnAccount01";

pub const ACME_ACCOUNT_ID: &str = "acmeCorpZoomAccount0001";
pub const ACME_NAME: &str = "Acme Corp";
/// Acme's Zoom admin: the same person as the platform's customer admin, with a Zoom password of their own.
pub const ACME_ADMIN_EMAIL: &str = "admin@acme.example";
pub const ACME_ADMIN_PASSWORD: &str = "acme-zoom-password";
/// A licensed Zoom Phone user numbers can be assigned to.
pub const ACME_USER_EMAIL: &str = "bob@acme.example";
pub const ACME_USER_PASSWORD: &str = "bob-zoom-password";

/// The scopes the carrier app's tokens carry: both generations of the peering API and `/v2/users/me`.
pub const APP_SCOPES: [&str; 5] = [
    "number_management_numbers:read:admin",
    "number_management_numbers:write:admin",
    "phone_peering:read:admin",
    "phone_peering:write:admin",
    "user:read:admin",
];

/// The demo world for a platform reachable at `platform_url` (e.g. `http://127.0.0.1:8080`): the app's
/// redirect URI is `{platform_url}/zoom/oauth/callback`, its event and deauthorization URL
/// `{platform_url}/zoom/webhook`. A URL that is not absolute http(s) is refused with the field named.
pub fn world(platform_url: &str) -> Result<World, WorldError> {
    let base = platform_url.trim_end_matches('/');
    let webhook = format!("{base}/zoom/webhook");
    let world = json!({
        "carrier": { "name": CARRIER_NAME, "carrier_code": CARRIER_CODE, "sip_trunk_names": [SIP_TRUNK, SIP_TRUNK_2] },
        "apps": [
            {
                "name": APP_NAME,
                "description": "Lets Demo Carrier put the phone numbers you order from it into your Zoom Phone account.",
                "category": "Carrier Provider Exchange",
                "kind": "admin-managed",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [format!("{base}/zoom/oauth/callback")],
                "event_url": webhook,
                "deauthorization_url": webhook,
                "secret_token": SECRET_TOKEN,
                "scopes": APP_SCOPES,
            },
            {
                "name": "Demo Carrier Provider Portal",
                "description": "The carrier's own server-to-server credentials: every number it pushed, across customers.",
                "category": "Carrier Provider Exchange",
                "kind": "server-to-server",
                "client_id": S2S_CLIENT_ID,
                "client_secret": S2S_CLIENT_SECRET,
                "scopes": ["number_management_numbers:read:admin", "phone_peering:read:admin"],
                "account_id": CARRIER_ACCOUNT_ID,
            }
        ],
        "accounts": [
            {
                "id": ACME_ACCOUNT_ID,
                "name": ACME_NAME,
                "plan": "business",
                "zoom_phone": true,
                "admin": { "email": ACME_ADMIN_EMAIL, "password": ACME_ADMIN_PASSWORD, "first_name": "Acme", "last_name": "Admin", "phone_license": true },
                "users": [
                    { "email": ACME_USER_EMAIL, "password": ACME_USER_PASSWORD, "first_name": "Bob", "last_name": "Builder", "phone_license": true }
                ]
            },
            {
                "id": CARRIER_ACCOUNT_ID,
                "name": CARRIER_NAME,
                "plan": "enterprise",
                "zoom_phone": true,
                "admin": { "email": "ops@demo-carrier.example", "password": "ops-zoom-password", "first_name": "Carrier", "last_name": "Ops" }
            }
        ]
    });
    World::from_json(&world.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_world_points_the_app_at_the_platform() {
        let world = super::world("http://127.0.0.1:8080/").expect("valid");
        let app = world.app(super::CLIENT_ID).expect("app");
        assert_eq!(app.redirect_uris, ["http://127.0.0.1:8080/zoom/oauth/callback"]);
        assert_eq!(app.deauthorization_url.as_deref(), Some("http://127.0.0.1:8080/zoom/webhook"));
        let (account, admin) = world.user_by_email(super::ACME_ADMIN_EMAIL).expect("Acme's admin");
        assert_eq!(
            (account.name.as_str(), admin.id.as_str()),
            ("Acme Corp", account.admin.id.as_str())
        );
    }

    #[test]
    fn a_platform_url_that_is_not_http_is_refused_naming_the_field() {
        let e = super::world("platform.example").expect_err("refused").to_string();
        assert!(e.contains("apps[0].redirect_uris[0]"), "{e}");
    }
}
