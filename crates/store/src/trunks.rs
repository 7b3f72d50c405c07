//! Zoom trunks and the customer → trunk binding (issue 7).

use crate::{Result, Store};
use domain::trunk::{TrunkName, ZoomTrunk};
use domain::CustomerId;

impl Store {
    forward! {
        /// A trunk with the same name is a `Conflict { constraint: "zoom_trunks_pkey" }`.
        pub async fn insert_trunk(&self, t: &ZoomTrunk) -> Result<()>;

        pub async fn list_trunks(&self) -> Result<Vec<ZoomTrunk>>;

        pub async fn get_trunk(&self, name: &TrunkName) -> Result<Option<ZoomTrunk>>;

        /// Replaces a trunk's destinations and numbering rule; false if there is no such trunk.
        pub async fn update_trunk(&self, t: &ZoomTrunk) -> Result<bool>;

        /// Deletes a trunk no customer uses; false if it does not exist or a customer still uses
        /// it.
        pub async fn delete_trunk(&self, name: &TrunkName) -> Result<bool>;

        pub async fn customers_on_trunk(&self, name: &TrunkName) -> Result<i64>;

        /// Binds a customer to a trunk, or to none; false if there is no such customer.
        pub async fn set_customer_trunk(
            &self,
            id: CustomerId,
            trunk: Option<&TrunkName>,
        ) -> Result<bool>;
    }
}
