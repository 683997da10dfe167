//! One ticket per problem, in any tracker (Jira Cloud, Jira Data Center,
//! ServiceNow): the rules live here, the systems' calls behind [`Tracker`].
//!
//! Opening a problem's ticket, in this order:
//! 1. this process already knows the problem's open ticket: use it (and add
//!    one comment if the live state's problems changed since);
//! 2. the finding names a ticket (`hubtriage:ticket`): read it by key (no
//!    search lag) and use it while it is open;
//! 3. search by the problem key (Jira Cloud: passing the ids this process
//!    created recently as `reconcileIssues`);
//! 4. a closed ticket found: reopen it (`regression = "reopen"`, closed less
//!    than `reopen_within_days` ago, and the system allows it), else create a
//!    new one that names it;
//! 5. nothing found: create.
//!
//! All of it single-flight per problem key inside the process: the
//! consolidated and the standard-specific finding of one cluster, or a
//! duplicate delivery, wait for the first and share its ticket. A create that
//! may have been written although it failed (timeout, 5xx) is looked for
//! again; if it is not found the error stands, the message returns later, and
//! for two minutes this process creates no other ticket for the problem
//! (search may lag): each attempt looks again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::problem::{Problem, TicketText};
use super::{Ticket, TicketError, TicketSink};
use crate::config::{OnResolve, Regression};
use crate::coordination::{problem_item, Coordinator, Lease, LeaseRenewal};
use crate::decide::Decision;
use crate::lock;

/// How many of this process's creates are passed to a search to reconcile
/// (Jira Cloud accepts at most 50).
const RECENT_CREATES: usize = 50;
/// After a create that may have been written but is not found, how long this
/// process waits for search to show it before creating again (Atlassian: new
/// issues can take "from a few seconds to minutes" to appear in search).
const SETTLE: std::time::Duration = std::time::Duration::from_secs(120);

/// One ticket as the system shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What the API addresses it by (Jira's issue id, ServiceNow's sys_id).
    pub id: String,
    /// What people call it (`SEC-12`, `INC0010001`); the finding records this.
    pub key: String,
    /// Where a person opens it.
    pub url: String,
    pub status: Status,
    /// The problem key the ticket carries (Jira label, ServiceNow
    /// correlation_id), when the system showed it.
    pub problem_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Open,
    /// Done (resolved or closed) since `since`, if the system says when;
    /// `reopenable` when the system lets it be reopened.
    Done {
        since: Option<DateTime<Utc>>,
        reopenable: bool,
    },
}

impl Record {
    fn is_open(&self) -> bool {
        self.status == Status::Open
    }

    /// Not another problem's ticket (a finding's `hubtriage:ticket` can be
    /// edited by anyone who may update findings).
    fn is_for(&self, problem_key: &str) -> bool {
        self.problem_key.as_deref().is_none_or(|k| k == problem_key)
    }
}

/// What a new ticket says.
pub struct NewTicket<'a> {
    pub problem_key: &'a str,
    pub text: &'a TicketText,
    pub severity: Option<&'a str>,
    /// The closed ticket of the same problem that this one follows.
    pub previous: Option<&'a Record>,
}

/// The calls one ticket system makes.
#[async_trait]
pub trait Tracker: Send + Sync {
    fn system(&self) -> &'static str;
    /// The ticket `key`; `None` when it does not exist (or cannot be seen).
    async fn get(&self, key: &str) -> Result<Option<Record>, TicketError>;
    /// The problem's tickets, newest first. `recent`: ids of tickets this
    /// process created lately (for systems whose search lags).
    async fn find(&self, problem_key: &str, recent: &[String]) -> Result<Vec<Record>, TicketError>;
    async fn create(&self, new: &NewTicket<'_>) -> Result<Record, TicketError>;
    async fn comment(&self, ticket: &Record, text: &str) -> Result<(), TicketError>;
    /// Closes (resolves) the ticket, saying `text`.
    async fn close(&self, ticket: &Record, text: &str) -> Result<(), TicketError>;
    /// Reopens a closed ticket, saying `text`.
    async fn reopen(&self, ticket: &Record, text: &str) -> Result<(), TicketError>;
}

/// A tracker shared by several sinks (tests: two "tasks" on one system).
#[async_trait]
impl<T: Tracker + ?Sized> Tracker for Arc<T> {
    fn system(&self) -> &'static str {
        (**self).system()
    }
    async fn get(&self, key: &str) -> Result<Option<Record>, TicketError> {
        (**self).get(key).await
    }
    async fn find(&self, key: &str, recent: &[String]) -> Result<Vec<Record>, TicketError> {
        (**self).find(key, recent).await
    }
    async fn create(&self, new: &NewTicket<'_>) -> Result<Record, TicketError> {
        (**self).create(new).await
    }
    async fn comment(&self, ticket: &Record, text: &str) -> Result<(), TicketError> {
        (**self).comment(ticket, text).await
    }
    async fn close(&self, ticket: &Record, text: &str) -> Result<(), TicketError> {
        (**self).close(ticket, text).await
    }
    async fn reopen(&self, ticket: &Record, text: &str) -> Result<(), TicketError> {
        (**self).reopen(ticket, text).await
    }
}

/// What this process knows of one problem's ticket.
#[derive(Debug, Clone)]
struct RememberedTicket {
    record: Record,
    /// The live state's problems the ticket last heard of.
    fails: Vec<String>,
    /// The resolve was said (a passing finding's events repeat).
    resolved: bool,
}

/// A [`TicketSink`] over a [`Tracker`].
pub struct TrackerTickets<T> {
    tracker: T,
    regression: Regression,
    reopen_within: chrono::Duration,
    /// Problem key → what is known of its ticket; the inner lock makes the
    /// work on one problem single-flight.
    problems: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<RememberedTicket>>>>>,
    /// Ids this process created, newest last.
    recent: Mutex<VecDeque<String>>,
    /// Problem key → when a create of its ticket failed in a way that may
    /// have written it, and search did not show it.
    unsettled: Mutex<HashMap<String, std::time::Instant>>,
    settle: std::time::Duration,
    /// `[coordination] table`: leases and tickets shared with other tasks.
    coordination: Option<Arc<dyn Coordinator>>,
}

impl<T: Tracker> TrackerTickets<T> {
    pub fn new(tracker: T, regression: Regression, reopen_within_days: u32) -> Self {
        TrackerTickets {
            tracker,
            regression,
            reopen_within: chrono::Duration::days(i64::from(reopen_within_days)),
            problems: Mutex::default(),
            recent: Mutex::default(),
            unsettled: Mutex::default(),
            settle: SETTLE,
            coordination: None,
        }
    }

    /// Shares leases and tickets with the other tasks through the table.
    pub fn with_coordination(mut self, coordination: Arc<dyn Coordinator>) -> Self {
        self.coordination = Some(coordination);
        self
    }

    /// Takes the problem's lease when a table is configured: `None` without
    /// one; an error when another task holds it.
    async fn lease(&self, problem_key: &str) -> Result<Option<(Lease, LeaseRenewal)>, TicketError> {
        let Some(c) = &self.coordination else {
            return Ok(None);
        };
        let item = problem_item(problem_key);
        let lease = c
            .acquire(&item)
            .await
            .map_err(|e| self.error(e.to_string()))?;
        Ok(Some((lease, LeaseRenewal::renew(c.clone(), &item))))
    }

    /// Gives the lease back, recording the problem's ticket first.
    async fn unlease(&self, problem_key: &str, record: Option<&Record>) {
        let Some(c) = &self.coordination else { return };
        if let Some(r) = record {
            if let Err(e) = c
                .record_ticket(&problem_item(problem_key), &r.key, &r.url)
                .await
            {
                tracing::warn!(problem_key, error = %e, "could not record the ticket in the coordination table");
            }
        }
        if let Err(e) = c.release(&problem_item(problem_key)).await {
            tracing::warn!(problem_key, error = %e, "could not release the problem's lease; it expires");
        }
    }

    /// How long an unconfirmed create holds back another (tests make it short).
    pub fn with_settle(mut self, settle: std::time::Duration) -> Self {
        self.settle = settle;
        self
    }

    fn error(&self, message: impl Into<String>) -> TicketError {
        TicketError::new(self.tracker.system(), message)
    }

    fn slot(&self, key: &str) -> Arc<tokio::sync::Mutex<Option<RememberedTicket>>> {
        lock(&self.problems)
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    fn recent(&self) -> Vec<String> {
        lock(&self.recent).iter().cloned().collect()
    }

    /// The problem's ticket as the system has it now: the one the finding
    /// names while it is open, else the newest found by the problem key.
    async fn look_up(
        &self,
        problem_key: &str,
        named: Option<&str>,
        stored: Option<&str>,
    ) -> Result<Option<Record>, TicketError> {
        let mut candidates: Vec<&str> = named.into_iter().collect();
        if let Some(s) = stored.filter(|s| Some(*s) != named) {
            candidates.push(s);
        }
        for name in candidates {
            match self.tracker.get(name).await? {
                Some(r) if !r.is_for(problem_key) => tracing::warn!(
                    ticket = name,
                    "the finding names another problem's ticket; searching by problem"
                ),
                Some(r) if r.is_open() => return Ok(Some(r)),
                Some(_) => {} // closed: a newer ticket may exist; search.
                None => tracing::warn!(
                    ticket = name,
                    "the system does not have this ticket of the problem; searching by problem"
                ),
            }
        }
        let found = self.tracker.find(problem_key, &self.recent()).await?;
        Ok(found
            .iter()
            .find(|r| r.is_open())
            .or_else(|| found.first())
            .cloned())
    }

    async fn create(
        &self,
        new: &NewTicket<'_>,
        lease: Option<&Lease>,
    ) -> Result<Record, TicketError> {
        let key = new.problem_key;
        let here = lock(&self.unsettled).get(key).map(|at| at.elapsed());
        let elsewhere = lease
            .and_then(|l| l.unsettled)
            .map(|at| Utc::now().timestamp().saturating_sub(at))
            .map(|s| std::time::Duration::from_secs(u64::try_from(s).unwrap_or(0)));
        if let Some(ago) = here.into_iter().chain(elsewhere).min() {
            if ago < self.settle {
                return Err(self.error(format!(
                    "a create of this problem's ticket {} s ago may have been written; waiting up to {} s for search to show it before creating another",
                    ago.as_secs(),
                    self.settle.as_secs()
                )));
            }
        }
        match self.tracker.create(new).await {
            Ok(r) => {
                lock(&self.unsettled).remove(key);
                let mut recent = lock(&self.recent);
                recent.push_back(r.id.clone());
                while recent.len() > RECENT_CREATES {
                    recent.pop_front();
                }
                tracing::info!(problem_key = key, ticket = %r.key, url = %r.url, "ticket created");
                Ok(r)
            }
            Err(e) if e.ambiguous => {
                tracing::warn!(problem_key = key, error = %e, "the create may have been written; looking for it before another");
                let found = self.tracker.find(key, &self.recent()).await?;
                match found.into_iter().find(|r| r.is_open()) {
                    Some(r) => {
                        lock(&self.unsettled).remove(key);
                        Ok(r)
                    }
                    None => {
                        lock(&self.unsettled).insert(key.to_string(), std::time::Instant::now());
                        if let Some(c) = &self.coordination {
                            if let Err(m) = c.mark_unsettled(&problem_item(key)).await {
                                tracing::warn!(problem_key = key, error = %m, "could not mark the create in the coordination table");
                            }
                        }
                        Err(e)
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A closed ticket of a problem that fails again.
    async fn regress(
        &self,
        old: Record,
        new: NewTicket<'_>,
        lease: Option<&Lease>,
        now: DateTime<Utc>,
    ) -> Result<Record, TicketError> {
        let Status::Done { since, reopenable } = old.status else {
            return Ok(old);
        };
        let recent = since.is_some_and(|s| now - s <= self.reopen_within);
        if self.regression == Regression::Reopen && reopenable && recent {
            let text = format!(
                "The problem is back: {}\n{}",
                new.text.why,
                new.text.fails.join("\n")
            );
            self.tracker.reopen(&old, &text).await?;
            tracing::info!(problem_key = new.problem_key, ticket = %old.key, "ticket reopened: the problem failed again");
            return Ok(Record {
                status: Status::Open,
                ..old
            });
        }
        let new = NewTicket {
            previous: Some(&old),
            ..new
        };
        self.create(&new, lease).await
    }
}

fn ticket(r: &Record) -> Ticket {
    Ticket {
        key: Some(r.key.clone()),
        url: Some(r.url.clone()),
    }
}

#[async_trait]
impl<T: Tracker> TicketSink for TrackerTickets<T> {
    async fn open(
        &self,
        d: &Decision,
        severity: Option<&str>,
        named: Option<&str>,
    ) -> Result<Ticket, TicketError> {
        let problem =
            Problem::of(d).ok_or_else(|| self.error("the decision names no cluster or control"))?;
        let key = problem.key();
        let slot = self.slot(&key);
        let mut known = slot.lock().await;
        if let Some(k) = known.as_mut().filter(|k| k.record.is_open()) {
            k.resolved = false;
            if k.fails != d.problems && !d.problems.is_empty() {
                let text = format!("The live state changed: {}", d.problems.join("; "));
                self.tracker.comment(&k.record, &text).await?;
                k.fails = d.problems.clone();
            }
            return Ok(ticket(&k.record));
        }
        let leased = self.lease(&key).await?;
        let lease = leased.as_ref().map(|(l, _)| l);
        let text = TicketText::new(d, severity);
        let new = NewTicket {
            problem_key: &key,
            text: &text,
            severity,
            previous: None,
        };
        let stored = lease.and_then(|l| l.ticket.as_deref());
        let found = match self.look_up(&key, named, stored).await {
            Ok(found) => found,
            Err(e) => {
                self.unlease(&key, None).await;
                return Err(e);
            }
        };
        let record = match found {
            Some(r) if r.is_open() => {
                tracing::info!(problem_key = %key, ticket = %r.key, "the problem's ticket is open");
                Ok(r)
            }
            Some(closed) => self.regress(closed, new, lease, Utc::now()).await,
            None => self.create(&new, lease).await,
        };
        if leased.is_some() {
            self.unlease(&key, record.as_ref().ok()).await;
        }
        let record = record?;
        let t = ticket(&record);
        *known = Some(RememberedTicket {
            record,
            fails: d.problems.clone(),
            resolved: false,
        });
        Ok(t)
    }

    async fn resolve(
        &self,
        d: &Decision,
        ticket_key: &str,
        on_resolve: OnResolve,
    ) -> Result<(), TicketError> {
        if on_resolve == OnResolve::Nothing {
            return Ok(());
        }
        let problem =
            Problem::of(d).ok_or_else(|| self.error("the decision names no cluster or control"))?;
        let problem_key = problem.key();
        let slot = self.slot(&problem_key);
        let mut known = slot.lock().await;
        if known
            .as_ref()
            .is_some_and(|k| k.resolved && k.record.key == ticket_key)
        {
            return Ok(());
        }
        let leased = self.lease(&problem_key).await?;
        let done = self
            .tell_resolved(d, ticket_key, &problem_key, known.as_ref(), on_resolve)
            .await;
        if leased.is_some() {
            self.unlease(&problem_key, None).await;
        }
        if let Some(record) = done? {
            *known = Some(RememberedTicket {
                record,
                fails: Vec::new(),
                resolved: true,
            });
        }
        Ok(())
    }
}

impl<T: Tracker> TrackerTickets<T> {
    /// Comments on (and under `close`, closes) the finding's ticket; returns
    /// the ticket as it is now, or `None` when there is nothing to tell.
    async fn tell_resolved(
        &self,
        d: &Decision,
        ticket_key: &str,
        problem_key: &str,
        known: Option<&RememberedTicket>,
        on_resolve: OnResolve,
    ) -> Result<Option<Record>, TicketError> {
        let record = match known.filter(|k| k.record.key == ticket_key) {
            Some(k) => k.record.clone(),
            None => match self.tracker.get(ticket_key).await? {
                Some(r) if r.is_for(problem_key) => r,
                Some(_) => {
                    tracing::warn!(
                        ticket = ticket_key,
                        "the finding names another problem's ticket; it is left alone"
                    );
                    return Ok(None);
                }
                None => {
                    tracing::warn!(
                        ticket = ticket_key,
                        "the finding's ticket does not exist any more; nothing to resolve"
                    );
                    return Ok(None);
                }
            },
        };
        if record.is_open() {
            let text = format!("hubtriage: {}", d.reason);
            match on_resolve {
                OnResolve::Close => self.tracker.close(&record, &text).await?,
                _ => self.tracker.comment(&record, &text).await?,
            }
            tracing::info!(ticket = %record.key, on_resolve = ?on_resolve, "ticket told the problem is resolved");
        }
        Ok(Some(match on_resolve {
            OnResolve::Close => Record {
                status: Status::Done {
                    since: Some(Utc::now()),
                    reopenable: true,
                },
                ..record
            },
            _ => record,
        }))
    }
}

#[cfg(test)]
mod tests;
