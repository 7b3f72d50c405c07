//! Zoom trunks and the customer → trunk binding (issue 7).

use crate::{Result, Store};
use domain::trunk::{TrunkName, ZoomTrunk};
use domain::CustomerId;

impl Store {
    /// A trunk with the same name is a `Conflict { constraint: "zoom_trunks_pkey" }`.
    pub async fn insert_trunk(&self, t: &ZoomTrunk) -> Result<()> {
        dispatch!(self.insert_trunk(t))
    }

    pub async fn list_trunks(&self) -> Result<Vec<ZoomTrunk>> {
        dispatch!(self.list_trunks())
    }

    pub async fn get_trunk(&self, name: &TrunkName) -> Result<Option<ZoomTrunk>> {
        dispatch!(self.get_trunk(name.as_str()))
    }

    /// Replaces a trunk's destinations and numbering rule; false if there is no such trunk.
    pub async fn update_trunk(&self, t: &ZoomTrunk) -> Result<bool> {
        dispatch!(self.update_trunk(t))
    }

    /// Deletes a trunk no customer uses; false if it does not exist or a customer still uses it.
    pub async fn delete_trunk(&self, name: &TrunkName) -> Result<bool> {
        dispatch!(self.delete_trunk(name.as_str()))
    }

    pub async fn customers_on_trunk(&self, name: &TrunkName) -> Result<i64> {
        dispatch!(self.customers_on_trunk(name.as_str()))
    }

    /// Binds a customer to a trunk, or to none; false if there is no such customer.
    pub async fn set_customer_trunk(
        &self,
        id: CustomerId,
        trunk: Option<&TrunkName>,
    ) -> Result<bool> {
        dispatch!(self.set_customer_trunk(id, trunk.map(TrunkName::as_str)))
    }
}
