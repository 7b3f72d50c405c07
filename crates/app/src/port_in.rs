//! Port-in: a customer brings its own numbers from another carrier. The operator records it
//! (`create_port_in`); jobs push the numbers to the customer's Zoom account inactive (`run_port_in`,
//! Zoom shows them pending) while they answer `404 not_provisioned` at the SIP edge; on the port date
//! (`port_in_tick`) or when an operator marks it complete (`complete_port_in`), jobs activate them
//! in Zoom and they route. It can be moved to another date (`reschedule_port_in`) or cancelled
//! (`cancel_port_in`: jobs remove its numbers from Zoom and they leave the customer).
//!
//! Every move is a compare-and-set in the store (two racing completes: one wins, the other is told
//! the port-in moved); Zoom is called with no transaction open; the answers are recorded with the
//! job's end in one transaction, so a worker killed mid-job leaves a job that is taken again and
//! converges (adding a number Zoom has, activating an active one, removing a gone one are no-ops).

use crate::onboarding::{ZoomCallError, ZoomSetup};
use crate::{App, AppError, Result};
use domain::onboarding::{Job, JobEnd};
use domain::port_in::{
    parse_date, PortIn, PortInJob, PortInMove, PortInOutcome, PortInRefused, PortInRequest,
    PortInState, PortInStep,
};
use domain::{Actor, CustomerId, NumberState, PhoneNumber};
use std::time::Duration;
use uuid::Uuid;
use zoom::{NumberUpdate, Outcome, ZoomError};

/// Most port-ins a list shows.
pub const LIST_LIMIT: u32 = 500;

impl App {
    /// Records a port-in for `customer`: `numbers` (E.164, one per row), the losing carrier, the
    /// requested date (`YYYY-MM-DD`, not in the past). Bad input names the field (and the row);
    /// numbers held by another customer are a conflict naming each.
    pub async fn create_port_in(
        &self,
        customer: CustomerId,
        numbers: &[String],
        losing_carrier: &str,
        requested_date: &str,
        by: &Actor,
    ) -> Result<PortIn> {
        let now = self.now();
        let req =
            PortInRequest::parse(customer, numbers, losing_carrier, requested_date, now.date())
                .map_err(refused)?;
        let id = self.store.create_port_in(&req, by, now).await?.map_err(refused)?;
        tracing::info!(port_in = %id, customer = %customer, numbers = req.numbers.len(), by = %by, "port-in recorded");
        self.port_in(id).await
    }

    /// Port-ins newest first, all or one customer's.
    pub async fn port_ins(&self, customer: Option<CustomerId>) -> Result<Vec<PortIn>> {
        Ok(self.store.list_port_ins(None, customer, LIST_LIMIT).await?)
    }

    pub async fn port_in(&self, id: Uuid) -> Result<PortIn> {
        self.store.list_port_ins(Some(id), None, 1).await?.pop().ok_or(AppError::NotFound)
    }

    /// Marks the port-in complete now: its numbers are activated in Zoom, then route.
    pub async fn complete_port_in(&self, id: Uuid, by: &Actor) -> Result<PortIn> {
        moved(self.store.complete_port_in(id, by, self.now()).await?)?;
        tracing::info!(port_in = %id, by = %by, "port-in complete; activating in Zoom");
        self.port_in(id).await
    }

    /// Cancels the port-in: its numbers are removed from Zoom and leave the customer.
    pub async fn cancel_port_in(&self, id: Uuid, by: &Actor) -> Result<PortIn> {
        moved(self.store.cancel_port_in(id, by, self.now()).await?)?;
        tracing::info!(port_in = %id, by = %by, "port-in cancelled");
        self.port_in(id).await
    }

    /// Moves the port-in to another date (`YYYY-MM-DD`, not in the past).
    pub async fn reschedule_port_in(&self, id: Uuid, date: &str, by: &Actor) -> Result<PortIn> {
        let now = self.now();
        let date = parse_date(date).map_err(refused)?;
        if date < now.date() {
            return Err(AppError::invalid(
                "requested_date",
                format!("{date} is in the past (today is {})", now.date()),
            ));
        }
        moved(self.store.reschedule_port_in(id, date, by, now).await?)?;
        self.port_in(id).await
    }

    /// The periodic scan: port-ins whose date has come are completed, and jobs a port-in still needs
    /// (a push waiting for the customer's link, a step whose jobs ended without moving every number)
    /// are queued. Returns (completed, queued).
    pub async fn port_in_tick(&self) -> Result<(usize, usize)> {
        let by = Actor::System("port-in-scan".into());
        let mut completed = 0;
        for id in self.store.due_port_ins(self.now().date()).await? {
            // Another instance's scan (or an operator) may complete it first: then it is not ours.
            if let PortInMove::Done(_) = self.store.complete_port_in(id, &by, self.now()).await? {
                completed += 1;
                tracing::info!(port_in = %id, "port date reached; activating in Zoom");
            }
        }
        let queued = self.store.queue_missing_port_in_jobs(self.now()).await?;
        Ok((completed, queued))
    }

    /// Runs [`App::port_in_tick`] every `every` until the returned handle is dropped.
    pub fn spawn_port_in_scan(&self, every: Duration) -> crate::release::Sweep {
        let app = self.clone();
        crate::release::Sweep::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = app.port_in_tick().await {
                    tracing::error!(error = %e, "port-in scan: database error");
                }
            }
        })
    }

    /// A port-in job: adds its numbers still `porting` to Zoom inactive, activates them, or removes
    /// them, and records Zoom's answers with the job's end. Numbers Zoom refuses fail the job with
    /// Zoom's reason (an operator retries it); transient failures are retried by the runner.
    pub(crate) async fn run_port_in(
        &self,
        z: &ZoomSetup,
        job: &Job,
        pj: PortInJob,
        worker: &str,
    ) -> std::result::Result<Option<JobEnd>, ZoomCallError> {
        let by = Actor::System("zoom-port-in".into());
        let Some(customer) = job.customer_id else {
            return Ok(Some(JobEnd::Failed { error: "port-in job without a customer".into() }));
        };
        let numbers: Vec<PhoneNumber> = self
            .store
            .numbers_in(&job.payload.numbers)
            .await?
            .into_iter()
            .filter(|n| n.state == NumberState::Porting && n.customer_id == Some(customer))
            .map(|n| n.e164)
            .collect();
        // Still wanted? A cancelled port-in's push or activation has nothing left to do.
        let state = self.store.port_in_state_for_job(pj.id).await?;
        let wanted = match pj.step {
            PortInStep::PushInactive => {
                matches!(state, Some(PortInState::Requested | PortInState::PushedInactive))
            }
            PortInStep::Activate => state == Some(PortInState::Activating),
            PortInStep::Remove => state == Some(PortInState::Cancelled),
        };
        if numbers.is_empty() || !wanted {
            self.finish_port_in_job(job, worker, pj, &[], &JobEnd::Done, &by).await?;
            return Ok(None);
        }
        let Some(account) = job.zoom_account.as_ref() else {
            return Ok(Some(JobEnd::Failed { error: "port-in job without a Zoom account".into() }));
        };
        let Some(link) =
            self.store.live_link_by_account(account).await?.filter(|l| l.customer_id == customer)
        else {
            return Err(ZoomCallError::NoLink);
        };
        let trunk = match self.store.get_customer(customer).await? {
            Some(c) => match c.zoom_trunk {
                Some(t) => t.as_str().to_owned(),
                None if pj.step == PortInStep::Remove => String::new(),
                None => return Ok(Some(JobEnd::Failed { error: crate::jobs::NO_TRUNK.into() })),
            },
            None => return Err(ZoomCallError::NoLink),
        };
        let written: Vec<String> = numbers.iter().map(PhoneNumber::to_string).collect();
        let mut token = self.access_token(&link, None).await?;
        let mut answer = Err(ZoomError::Unauthorized { message: String::new() });
        for attempt in 0..2 {
            if attempt == 1 {
                token = self.access_token(&link, Some(&token)).await?;
            }
            self.zoom_slot(z, account).await?;
            answer = match pj.step {
                PortInStep::PushInactive => {
                    z.client.add_peering_numbers_with_status(&token, &trunk, &written, false).await
                }
                PortInStep::Activate => {
                    let updates: Vec<NumberUpdate> = written
                        .iter()
                        .map(|n| NumberUpdate {
                            phone_number: n.clone(),
                            sip_trunk_name: None,
                            status: Some(true),
                            billing_ref_id: None,
                            service_info: None,
                        })
                        .collect();
                    z.client.update_peering_numbers(&token, &updates).await
                }
                PortInStep::Remove => z.client.remove_peering_numbers(&token, &written).await,
            };
            if !matches!(answer, Err(ZoomError::Unauthorized { .. })) {
                break;
            }
        }
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        let mut missing = Vec::new();
        for r in answer? {
            let Some(n) = numbers.iter().find(|n| n.as_str() == r.phone_number) else { continue };
            match r.outcome {
                Outcome::Done | Outcome::AlreadyDone => accepted.push(n.clone()),
                // Zoom lost the number (removed in Zoom, or the push's answer was lost before it
                // was kept): activation adds it again, active.
                Outcome::Refused { message, .. }
                    if pj.step == PortInStep::Activate
                        && message.to_ascii_lowercase().contains("does not exist") =>
                {
                    missing.push(n.to_string())
                }
                Outcome::Refused { message, .. } => refused.push(format!("{n}: {message}")),
            }
        }
        if !missing.is_empty() {
            self.zoom_slot(z, account).await?;
            for r in
                z.client.add_peering_numbers_with_status(&token, &trunk, &missing, true).await?
            {
                let Some(n) = numbers.iter().find(|n| n.as_str() == r.phone_number) else {
                    continue;
                };
                match r.outcome {
                    Outcome::Done | Outcome::AlreadyDone => accepted.push(n.clone()),
                    Outcome::Refused { message, .. } => refused.push(format!("{n}: {message}")),
                }
            }
        }
        let end = if refused.is_empty() {
            JobEnd::Done
        } else {
            JobEnd::Failed { error: format!("Zoom refused {}", refused.join("; ")) }
        };
        self.finish_port_in_job(job, worker, pj, &accepted, &end, &by).await?;
        Ok(None)
    }

    async fn finish_port_in_job(
        &self,
        job: &Job,
        worker: &str,
        pj: PortInJob,
        accepted: &[PhoneNumber],
        end: &JobEnd,
        by: &Actor,
    ) -> std::result::Result<(), ZoomCallError> {
        let outcome = PortInOutcome { job: pj, accepted: accepted.to_vec(), end: end.clone() };
        if !self.store.complete_port_in_job(job.id, worker, &outcome, by, self.now()).await? {
            tracing::warn!(job = %job.id, "lease lost before Zoom's answer was recorded; the job will be retaken and converge");
        } else if let JobEnd::Failed { error } = end {
            tracing::warn!(job = %job.id, port_in = %pj.id, %error, "port-in job failed; an operator can retry it");
        }
        Ok(())
    }
}

fn refused(e: PortInRefused) -> AppError {
    match e {
        PortInRefused::Invalid { field, message } => {
            let (field, message) = match field.as_str() {
                "losing_carrier" => ("losing_carrier", message),
                "requested_date" => ("requested_date", message),
                "customer_id" => ("customer_id", message),
                // `numbers[3]`: the row is named in the message.
                row => (
                    "numbers",
                    if row == "numbers" { message } else { format!("{row}: {message}") },
                ),
            };
            AppError::invalid(field, message)
        }
        PortInRefused::Taken(problems) => {
            AppError::Conflict { field: "numbers", message: problems.join("; ") }
        }
        PortInRefused::UnknownCustomer => AppError::invalid("customer_id", "no such customer"),
    }
}

fn moved(m: PortInMove) -> Result<PortInState> {
    match m {
        PortInMove::Done(s) => Ok(s),
        PortInMove::NotFound => Err(AppError::NotFound),
        PortInMove::Conflict(message) => Err(AppError::Conflict { field: "state", message }),
    }
}
