//! Customers and their contracts.

use crate::{conflict, App, AppError, Result};
use domain::customer::{ContractState, Customer, MAX_NUMBER_LIMIT};
use domain::CustomerId;

fn required(field: &'static str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(AppError::invalid(field, "is required"));
    }
    if v.chars().count() > max {
        return Err(AppError::invalid(field, format!("is longer than {max} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(AppError::invalid(field, "contains control characters"));
    }
    Ok(v.to_owned())
}

impl App {
    pub async fn create_customer(&self, name: &str, contract_ref: &str) -> Result<Customer> {
        let customer = Customer {
            id: CustomerId::new(),
            name: required("name", name, 200)?,
            contract_ref: required("contract_ref", contract_ref, 64)?,
            contract_state: ContractState::Active,
            created_at: self.now(),
            zoom_trunk: None,
            number_limit: None,
            billing_ref: None,
        };
        self.store.insert_customer(&customer).await.map_err(|e| {
            conflict(e, "contract_ref", "another customer has this contract reference")
        })?;
        Ok(customer)
    }

    /// Every customer, by name.
    pub async fn customers(&self) -> Result<Vec<Customer>> {
        Ok(self.store.list_customers().await?)
    }

    pub async fn customer(&self, id: CustomerId) -> Result<Customer> {
        self.store.get_customer(id).await?.ok_or(AppError::NotFound)
    }

    /// Ends (or re-activates) a contract. An ended contract takes no new orders; its numbers stay
    /// where they are until they are released.
    pub async fn set_contract_state(
        &self,
        id: CustomerId,
        state: ContractState,
    ) -> Result<Customer> {
        if !self.store.set_contract_state(id, state).await? {
            return Err(AppError::NotFound);
        }
        self.customer(id).await
    }

    /// Sets the most numbers the customer may hold at once (reserved, being pushed, active, waiting
    /// for release, suspended), or lifts it with `None`. Orders beyond it are refused, naming it;
    /// numbers the customer holds already stay when the limit is lowered below them.
    pub async fn set_number_limit(&self, id: CustomerId, limit: Option<u32>) -> Result<Customer> {
        if limit.is_some_and(|l| l > MAX_NUMBER_LIMIT) {
            return Err(AppError::invalid(
                "number_limit",
                format!("must be 0 to {MAX_NUMBER_LIMIT}, or empty for no limit"),
            ));
        }
        if !self.store.set_number_limit(id, limit).await? {
            return Err(AppError::NotFound);
        }
        let c = self.customer(id).await?;
        tracing::info!(customer = %id, limit = ?limit, "number limit set");
        Ok(c)
    }

    /// How many numbers the customer holds (what its number limit counts).
    pub async fn numbers_held(&self, id: CustomerId) -> Result<u32> {
        Ok(self.store.numbers_held(id).await?)
    }
}
