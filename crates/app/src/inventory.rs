//! The carrier's number inventory: import, search, a number's audit trail.

use crate::{App, AppError, Result};
use domain::import::{ImportPlan, ImportRow, RowError};
use domain::number::NumberAttrs;
use domain::search::NumberQuery;
use domain::{Actor, Number, NumberEvent, NumberId, NumberState, PhoneNumber};
use serde::Serialize;

/// What an import did, or would do on a dry run.
#[derive(Debug, Serialize)]
pub struct ImportOutcome {
    /// Numbers that are (or would be) added; 0 when any row was refused.
    pub added: usize,
    /// Rows that parsed and are not yet in the inventory.
    pub valid: usize,
    pub errors: Vec<RowError>,
    pub dry_run: bool,
}

/// At most this many numbers are looked up per query when checking which already exist.
const EXISTING_CHUNK: usize = 10_000;

impl App {
    /// Imports a parsed plan, all or nothing: rows already in the inventory are added to the plan's
    /// errors, and if there is any error, or on a dry run, nothing is written.
    pub async fn import_numbers(
        &self,
        mut plan: ImportPlan,
        by: &Actor,
        dry_run: bool,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<ImportOutcome> {
        let mut existing = std::collections::HashSet::new();
        for chunk in plan.rows.chunks(EXISTING_CHUNK) {
            let e164s: Vec<&PhoneNumber> = chunk.iter().map(|r| &r.e164).collect();
            existing.extend(self.store.existing_numbers(&e164s).await?);
        }
        if !existing.is_empty() {
            plan.reject_existing(&existing);
        }
        let valid = plan.rows.len();
        if dry_run || !plan.errors.is_empty() || plan.rows.is_empty() {
            return Ok(ImportOutcome { added: 0, valid, errors: plan.errors, dry_run });
        }
        let now = self.now();
        let numbers: Vec<(Number, NumberEvent)> = plan
            .rows
            .into_iter()
            .map(|ImportRow { e164, attrs, .. }| Number::imported(e164, attrs, by, now))
            .collect();
        match self.store.insert_numbers(&numbers, progress).await {
            Ok(()) => Ok(ImportOutcome { added: numbers.len(), valid, errors: Vec::new(), dry_run }),
            // Another import added one of these numbers since the check: nothing was written.
            Err(store::DbError::Conflict { .. }) => Err(AppError::Refused("another import added some of these numbers meanwhile; nothing was imported, try again".into())),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn import_range(
        &self,
        spec: &str,
        attrs: &NumberAttrs,
        by: &Actor,
        dry_run: bool,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<ImportOutcome> {
        let rows = domain::import::parse_range(spec, attrs)
            .map_err(|e| AppError::invalid("range", e.to_string()))?;
        self.import_numbers(ImportPlan { rows, errors: Vec::new() }, by, dry_run, progress).await
    }

    pub async fn search_numbers(&self, query: &NumberQuery) -> Result<Vec<Number>> {
        Ok(self.store.search_numbers(query).await?)
    }

    /// How many numbers are in each state (states with none are left out).
    pub async fn count_by_state(&self) -> Result<Vec<(NumberState, i64)>> {
        Ok(self.store.count_by_state().await?)
    }

    /// A number and its audit trail, oldest first.
    pub async fn number_detail(&self, id: NumberId) -> Result<(Number, Vec<NumberEvent>)> {
        let number = self.store.get_number(id).await?.ok_or(AppError::NotFound)?;
        let events = self.store.number_events(id).await?;
        Ok((number, events))
    }
}
