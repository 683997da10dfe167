//! Act step: carry out a decision. Tickets go to a ticket system; remediation
//! plans go to the remediation executor. Both sit behind small traits so that
//! real ticket systems and the Neptune.2 executor are new modules, not rewrites.

pub mod driver;
pub mod neptune_api;
pub mod recheck;
pub mod remediate;
pub mod ticket;
