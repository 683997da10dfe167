//! hubtriage: triage AWS Security Hub's Neptune findings from live state.
//!
//! A finding travels one way: **source → parse → enrich → decide → act → record**.
//!
//! - [`finding`]: parse an EventBridge event (SQS message body) into `Finding`s.
//! - [`state`]: the live state the decision reads (a cluster's or a snapshot's).
//! - [`control`]: the Neptune controls, one module each, behind one interface.
//! - [`config`]: the typed, validated configuration.
//! - [`coordination`]: what the tasks of one deployment share (DynamoDB leases).
//! - [`decide`]: the pure decision: (finding, state, config, now) → `Decision`.
//! - [`explain`]: the decision fed from saved AWS CLI outputs (`hubtriage explain`).
//! - [`source`] → [`enrich`] → [`decide`] → [`act`] → [`record`]: the daemon's
//!   pipeline ([`pipeline`] for one finding, [`daemon`] for the queue loop, [`run`]
//!   to wire it from the config).

#![forbid(unsafe_code)]

pub mod act;
pub mod aws;
pub mod config;
pub mod control;
pub mod coordination;
pub mod daemon;
pub mod decide;
pub mod enrich;
pub mod events;
pub mod explain;
pub mod finding;
pub mod health;
pub mod history;
pub mod journal;
pub mod marks;
pub mod metrics;
pub mod pace;
pub mod pipeline;
pub mod record;
pub mod report;
pub mod run;
pub mod setup;
pub mod source;
pub mod state;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod testing;
pub mod undo;
pub mod window;

/// Locks a std mutex; a panic elsewhere while it was held does not stop the
/// daemon (the data behind these locks stays consistent per operation).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Process exit codes (sysexits-style) shared by every subcommand.
pub mod exit {
    /// Bad command line or configuration.
    pub const USAGE: u8 = 64;
    /// An input file that cannot be read or parsed.
    pub const DATA: u8 = 65;
    /// A runtime failure (AWS unreachable, ...).
    pub const FAILURE: u8 = 1;
    /// `hubtriage undo` refused: the value is no longer what the change set
    /// (someone changed it since); nothing was changed.
    pub const CHANGED_SINCE: u8 = 3;
}
