//! Act step: carry out a decision. Tickets go to the ticket system
//! ([`ticket`]: log lines, a signed webhook, Jira Cloud and Data Center,
//! ServiceNow); remediations to the driver ([`driver`]), which runs their
//! passes ([`remediate`]) through the AWS calls in [`neptune_api`] and carries
//! them on with re-check messages, within the caps of [`recheck`]'s limiter.

pub mod driver;
pub mod fix_api;
pub mod neptune_api;
pub mod recheck;
pub mod remediate;
pub mod settle;
pub mod ticket;
