//! Port-ins: a customer's numbers brought from another carrier (see the dialects).

use crate::{Result, Store};
use domain::port_in::{
    PortIn, PortInMove, PortInOutcome, PortInRefused, PortInRequest, PortInState,
};
use domain::{Actor, CustomerId};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

impl Store {
    forward! {
        /// Records a port-in with its push jobs (when the customer is linked): all or nothing.
        pub async fn create_port_in(
            &self,
            req: &PortInRequest,
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<std::result::Result<Uuid, PortInRefused>>;

        /// Port-ins newest first: one (`id`), a customer's, or all.
        pub async fn list_port_ins(
            &self,
            id: Option<Uuid>,
            customer: Option<CustomerId>,
            limit: u32,
        ) -> Result<Vec<PortIn>>;

        /// `pushed_inactive` → `activating` with the activation jobs; one of two racing wins.
        pub async fn complete_port_in(&self, id: Uuid, by: &Actor, now: OffsetDateTime) -> Result<PortInMove>;

        /// The port-in's state, read through a write on its row (a cancel being committed is
        /// waited for): what a job checks before it calls Zoom.
        pub async fn port_in_state_for_job(&self, id: Uuid) -> Result<Option<PortInState>>;

        /// Cancels a port-in that has not completed; its numbers are removed from Zoom.
        pub async fn cancel_port_in(&self, id: Uuid, by: &Actor, now: OffsetDateTime) -> Result<PortInMove>;

        /// Moves a port-in that has not completed to `date`.
        pub async fn reschedule_port_in(
            &self,
            id: Uuid,
            date: Date,
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<PortInMove>;

        /// Port-ins waiting in Zoom whose date has come.
        pub async fn due_port_ins(&self, today: Date) -> Result<Vec<Uuid>>;

        /// Queues the jobs port-ins still need and have none open for; how many.
        pub async fn queue_missing_port_in_jobs(&self, now: OffsetDateTime) -> Result<usize>;

        /// Zoom's answers to a port-in job with the job's end; false if the lease was lost.
        pub async fn complete_port_in_job(
            &self,
            job_id: Uuid,
            owner: &str,
            outcome: &PortInOutcome,
            by: &Actor,
            now: OffsetDateTime,
        ) -> Result<bool>;
    }
}
