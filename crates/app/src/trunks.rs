//! Zoom trunks (issue 7): which `sip_trunk_name`s the carrier uses with Zoom, where their calls go,
//! and which trunk each customer's numbers are pushed under.

use crate::{conflict, App, AppError, Result};
use domain::customer::Customer;
use domain::trunk::{parse_destinations, NumberingRule, TrunkError, TrunkName, ZoomTrunk};
use domain::CustomerId;

/// What an operator gives for a trunk (a form, a JSON body or CLI flags).
#[derive(Clone, Debug)]
pub struct TrunkInput<'a> {
    pub destinations: Vec<&'a str>,
    pub country_code: &'a str,
    pub national_prefix: &'a str,
    pub international_prefix: &'a str,
}

fn invalid(e: TrunkError) -> AppError {
    AppError::invalid(e.field(), e.message())
}

impl TrunkInput<'_> {
    fn numbering(&self) -> Result<NumberingRule> {
        NumberingRule::new(self.country_code, self.national_prefix, self.international_prefix)
            .map_err(invalid)
    }
}

impl App {
    pub async fn create_trunk(&self, name: &str, input: &TrunkInput<'_>) -> Result<ZoomTrunk> {
        let trunk = ZoomTrunk::parse(name, &input.destinations, input.numbering()?, self.now())
            .map_err(invalid)?;
        self.store
            .insert_trunk(&trunk)
            .await
            .map_err(|e| conflict(e, "name", "a trunk with this name already exists"))?;
        tracing::info!(trunk = %trunk.name, "zoom trunk created");
        Ok(trunk)
    }

    pub async fn trunks(&self) -> Result<Vec<ZoomTrunk>> {
        Ok(self.store.list_trunks().await?)
    }

    /// The trunk called `name`; a name no trunk can have is as unknown as a missing one.
    pub async fn trunk(&self, name: &str) -> Result<ZoomTrunk> {
        let name = TrunkName::parse(name).map_err(|_| AppError::NotFound)?;
        self.store.get_trunk(&name).await?.ok_or(AppError::NotFound)
    }

    /// How many customers are bound to the trunk.
    pub async fn customers_on_trunk(&self, name: &str) -> Result<i64> {
        let name = TrunkName::parse(name).map_err(|_| AppError::NotFound)?;
        Ok(self.store.customers_on_trunk(&name).await?)
    }

    /// Replaces a trunk's destinations and numbering rule; its name (what Zoom knows) stays.
    pub async fn update_trunk(&self, name: &str, input: &TrunkInput<'_>) -> Result<ZoomTrunk> {
        let mut trunk = self.trunk(name).await?;
        trunk.destinations = parse_destinations(&input.destinations).map_err(invalid)?;
        trunk.numbering = input.numbering()?;
        if !self.store.update_trunk(&trunk).await? {
            return Err(AppError::NotFound);
        }
        tracing::info!(trunk = %trunk.name, "zoom trunk changed");
        Ok(trunk)
    }

    /// Deletes a trunk and returns it; refused while a customer is bound to it (their calls would
    /// lose their route).
    pub async fn delete_trunk(&self, name: &str) -> Result<ZoomTrunk> {
        let trunk = self.trunk(name).await?;
        if self.store.delete_trunk(&trunk.name).await? {
            tracing::info!(trunk = %trunk.name, "zoom trunk deleted");
            return Ok(trunk);
        }
        let n = self.store.customers_on_trunk(&trunk.name).await?;
        Err(AppError::Refused(format!(
            "{n} customer(s) use trunk {}; move them to another trunk first",
            trunk.name
        )))
    }

    /// Binds a customer to a Zoom trunk (or to none with `None`): its numbers are pushed under
    /// that trunk and calls to them are routed there.
    pub async fn set_customer_trunk(
        &self,
        customer: CustomerId,
        trunk: Option<&str>,
    ) -> Result<Customer> {
        let trunk = match trunk.map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => {
                let name = TrunkName::parse(t).map_err(|_| {
                    AppError::invalid("zoom_trunk", format!("there is no trunk named {t:?}"))
                })?;
                if self.store.get_trunk(&name).await?.is_none() {
                    return Err(AppError::invalid(
                        "zoom_trunk",
                        format!("there is no trunk named {t:?}"),
                    ));
                }
                Some(name)
            }
        };
        if !self.store.set_customer_trunk(customer, trunk.as_ref()).await? {
            return Err(AppError::NotFound);
        }
        self.customer(customer).await
    }
}
