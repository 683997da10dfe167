//! The one-ticket-per-problem rules against an in-memory tracker that lags its
//! search and can fail a create after writing it.

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::testing::{ticket_decision, MemoryTable};

#[derive(Default)]
struct Memory {
    records: Mutex<Vec<(String, Record)>>,
    /// Searches do not see tickets created by this many last creates.
    search_blind_to_last: AtomicU32,
    /// The next create writes, then fails as a timeout would.
    fail_after_write: AtomicU32,
    comments: Mutex<Vec<(String, String)>>,
    closes: AtomicU32,
    reopens: AtomicU32,
    /// Closed tickets cannot be reopened (ServiceNow's Closed state).
    not_reopenable: bool,
}

#[async_trait]
impl Tracker for Memory {
    fn system(&self) -> &'static str {
        "memory"
    }
    async fn get(&self, key: &str) -> Result<Option<Record>, TicketError> {
        Ok(lock(&self.records)
            .iter()
            .find(|(_, r)| r.key == key)
            .map(|(_, r)| r.clone()))
    }
    async fn find(&self, key: &str, recent: &[String]) -> Result<Vec<Record>, TicketError> {
        let records = lock(&self.records);
        let blind = self.search_blind_to_last.load(Ordering::SeqCst) as usize;
        let visible = records.len().saturating_sub(blind);
        let mut found: Vec<Record> = records
            .iter()
            .enumerate()
            .filter(|(i, (k, r))| k == key && (*i < visible || recent.contains(&r.id)))
            .map(|(_, (_, r))| r.clone())
            .collect();
        found.reverse();
        Ok(found)
    }
    async fn create(&self, new: &NewTicket<'_>) -> Result<Record, TicketError> {
        let mut records = lock(&self.records);
        let n = records.len() + 1;
        let record = Record {
            id: format!("{}", 10000 + n),
            key: format!("SEC-{n}"),
            url: format!("https://jira.example/browse/SEC-{n}"),
            status: Status::Open,
            problem_key: Some(new.problem_key.to_string()),
        };
        records.push((new.problem_key.to_string(), record.clone()));
        if self.fail_after_write.load(Ordering::SeqCst) > 0 {
            self.fail_after_write.fetch_sub(1, Ordering::SeqCst);
            let mut e = TicketError::new("memory", "timed out");
            e.ambiguous = true;
            return Err(e);
        }
        Ok(record)
    }
    async fn comment(&self, t: &Record, text: &str) -> Result<(), TicketError> {
        lock(&self.comments).push((t.key.clone(), text.to_string()));
        Ok(())
    }
    async fn close(&self, t: &Record, _: &str) -> Result<(), TicketError> {
        self.closes.fetch_add(1, Ordering::SeqCst);
        self.set(
            &t.key,
            Status::Done {
                since: Some(Utc::now()),
                reopenable: !self.not_reopenable,
            },
        );
        Ok(())
    }
    async fn reopen(&self, t: &Record, _: &str) -> Result<(), TicketError> {
        self.reopens.fetch_add(1, Ordering::SeqCst);
        self.set(&t.key, Status::Open);
        Ok(())
    }
}

impl Memory {
    fn set(&self, key: &str, status: Status) {
        for (_, r) in lock(&self.records).iter_mut() {
            if r.key == key {
                r.status = status;
            }
        }
    }
    fn count(&self) -> usize {
        lock(&self.records).len()
    }
}

fn sink(memory: Memory) -> TrackerTickets<Memory> {
    TrackerTickets::new(memory, Regression::Reopen, 30)
}

#[tokio::test]
async fn findings_of_one_problem_at_once_share_one_ticket() {
    let s = Arc::new(sink(Memory::default()));
    // The consolidated and the standard-specific finding, and a duplicate, at once.
    let tasks: Vec<_> = ["a", "b", "a"]
        .into_iter()
        .map(|id| {
            let s = s.clone();
            tokio::spawn(async move { s.open(&ticket_decision(id), Some("HIGH"), None).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().key.as_deref(), Some("SEC-1"));
    }
    assert_eq!(s.tracker.count(), 1);
}

#[tokio::test]
async fn a_new_process_finds_the_ticket_by_the_findings_name_despite_search_lag() {
    let memory = Memory::default();
    let first = sink(memory);
    first.open(&ticket_decision("a"), None, None).await.unwrap();
    // A restart: nothing known in process; search does not see the ticket yet.
    let memory = first.tracker;
    memory.search_blind_to_last.store(1, Ordering::SeqCst);
    let second = sink(memory);
    let t = second
        .open(&ticket_decision("a"), None, Some("SEC-1"))
        .await
        .unwrap();
    assert_eq!(t.key.as_deref(), Some("SEC-1"));
    assert_eq!(second.tracker.count(), 1);
}

#[tokio::test]
async fn a_create_that_fails_after_writing_is_found_not_repeated() {
    let memory = Memory::default();
    memory.fail_after_write.store(1, Ordering::SeqCst);
    let s = sink(memory);
    let t = s.open(&ticket_decision("a"), None, None).await.unwrap();
    assert_eq!(t.key.as_deref(), Some("SEC-1"));
    assert_eq!(s.tracker.count(), 1);

    // Written but not yet searchable: the error stands (the message returns
    // later), and the next attempt finds it instead of creating a second.
    let memory = Memory::default();
    memory.fail_after_write.store(1, Ordering::SeqCst);
    memory.search_blind_to_last.store(1, Ordering::SeqCst);
    let s = sink(memory);
    let e = s.open(&ticket_decision("a"), None, None).await.unwrap_err();
    assert!(e.ambiguous, "{e}");
    // Another finding of the problem meanwhile: no second create while the
    // first may still appear.
    let e = s.open(&ticket_decision("b"), None, None).await.unwrap_err();
    assert!(e.to_string().contains("may have been written"), "{e}");
    assert_eq!(s.tracker.count(), 1);
    s.tracker.search_blind_to_last.store(0, Ordering::SeqCst);
    let t = s.open(&ticket_decision("a"), None, None).await.unwrap();
    assert_eq!(t.key.as_deref(), Some("SEC-1"));
    assert_eq!(s.tracker.count(), 1);
}

#[tokio::test]
async fn a_create_that_failed_before_writing_is_made_again_after_the_settle_time() {
    let memory = Memory::default();
    memory.fail_after_write.store(1, Ordering::SeqCst);
    memory.search_blind_to_last.store(1, Ordering::SeqCst);
    let s = sink(memory).with_settle(std::time::Duration::ZERO);
    s.open(&ticket_decision("a"), None, None).await.unwrap_err();
    // Say the first was never written: past the settle time a create goes ahead.
    lock(&s.tracker.records).clear();
    s.tracker.search_blind_to_last.store(0, Ordering::SeqCst);
    let t = s.open(&ticket_decision("a"), None, None).await.unwrap();
    assert_eq!(t.key.as_deref(), Some("SEC-1"));
}

#[tokio::test]
async fn resolve_closes_once_and_a_regression_reopens_within_the_window() {
    let s = sink(Memory::default());
    let d = ticket_decision("a");
    s.open(&d, None, None).await.unwrap();
    s.resolve(&d, "SEC-1", OnResolve::Close).await.unwrap();
    s.resolve(&d, "SEC-1", OnResolve::Close).await.unwrap();
    assert_eq!(s.tracker.closes.load(Ordering::SeqCst), 1);

    let t = s.open(&d, None, Some("SEC-1")).await.unwrap();
    assert_eq!(t.key.as_deref(), Some("SEC-1"));
    assert_eq!(s.tracker.reopens.load(Ordering::SeqCst), 1);
    assert_eq!(s.tracker.count(), 1);
}

#[tokio::test]
async fn an_old_or_unreopenable_closed_ticket_gets_a_successor() {
    // Closed 40 days ago, past reopen_within_days = 30.
    let s = sink(Memory::default());
    let d = ticket_decision("a");
    s.open(&d, None, None).await.unwrap();
    s.tracker.set(
        "SEC-1",
        Status::Done {
            since: Some(Utc::now() - chrono::Duration::days(40)),
            reopenable: true,
        },
    );
    let fresh = sink(s.tracker);
    let t = fresh.open(&d, None, Some("SEC-1")).await.unwrap();
    assert_eq!(t.key.as_deref(), Some("SEC-2"));
    assert_eq!(fresh.tracker.reopens.load(Ordering::SeqCst), 0);

    // A system that cannot reopen (ServiceNow's Closed incidents).
    let s = sink(Memory {
        not_reopenable: true,
        ..Memory::default()
    });
    s.open(&d, None, None).await.unwrap();
    s.resolve(&d, "SEC-1", OnResolve::Close).await.unwrap();
    let fresh = sink(s.tracker);
    let t = fresh.open(&d, None, Some("SEC-1")).await.unwrap();
    assert_eq!(t.key.as_deref(), Some("SEC-2"));

    // regression = "new" never reopens.
    let s = TrackerTickets::new(Memory::default(), Regression::New, 30);
    s.open(&d, None, None).await.unwrap();
    s.resolve(&d, "SEC-1", OnResolve::Close).await.unwrap();
    let t = s.open(&d, None, Some("SEC-1")).await.unwrap();
    assert_eq!(t.key.as_deref(), Some("SEC-2"));
}

#[tokio::test]
async fn an_open_ticket_hears_of_a_changed_live_state_once() {
    let s = sink(Memory::default());
    let mut d = ticket_decision("a");
    s.open(&d, None, None).await.unwrap();
    s.open(&d, None, None).await.unwrap();
    assert!(lock(&s.tracker.comments).is_empty());
    d.problems = vec!["member orders-graph-1 is not in-sync".into()];
    s.open(&d, None, None).await.unwrap();
    s.open(&d, None, None).await.unwrap();
    let comments = lock(&s.tracker.comments).clone();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0].1.contains("not in-sync"));
}

#[tokio::test]
async fn on_resolve_comment_leaves_the_ticket_open_and_nothing_does_nothing() {
    let s = sink(Memory::default());
    let d = ticket_decision("a");
    s.open(&d, None, None).await.unwrap();
    s.resolve(&d, "SEC-1", OnResolve::Nothing).await.unwrap();
    assert!(lock(&s.tracker.comments).is_empty());
    s.resolve(&d, "SEC-1", OnResolve::Comment).await.unwrap();
    s.resolve(&d, "SEC-1", OnResolve::Comment).await.unwrap();
    assert_eq!(lock(&s.tracker.comments).len(), 1);
    assert_eq!(s.tracker.closes.load(Ordering::SeqCst), 0);
    // A ticket that is gone: nothing to do, no error.
    s.resolve(&d, "SEC-99", OnResolve::Close).await.unwrap();
}

#[tokio::test]
async fn another_problems_ticket_named_by_a_finding_is_left_alone() {
    let s = sink(Memory::default());
    let mut other = ticket_decision("b");
    other.cluster = Some("billing-graph".into());
    s.open(&other, None, None).await.unwrap();
    let fresh = sink(s.tracker);
    let d = ticket_decision("a");
    // Resolving: the other problem's ticket stays open.
    fresh.resolve(&d, "SEC-1", OnResolve::Close).await.unwrap();
    assert_eq!(fresh.tracker.closes.load(Ordering::SeqCst), 0);
    // Opening: this problem gets its own ticket.
    let t = fresh.open(&d, None, Some("SEC-1")).await.unwrap();
    assert_eq!(t.key.as_deref(), Some("SEC-2"));
}

fn two_tasks(memory: Arc<Memory>) -> [TrackerTickets<Arc<Memory>>; 2] {
    let table = Arc::new(MemoryTable::default());
    ["a", "b"].map(|owner| sink_over(memory.clone()).with_coordination(table.task(owner)))
}

fn sink_over(memory: Arc<Memory>) -> TrackerTickets<Arc<Memory>> {
    TrackerTickets::new(memory, Regression::Reopen, 30)
}

#[tokio::test]
async fn two_tasks_share_one_ticket_through_the_table_despite_search_lag() {
    let memory = Arc::new(Memory::default());
    // Search never shows what was created: only the table can tell task b.
    memory
        .search_blind_to_last
        .store(u32::MAX, Ordering::SeqCst);
    let [a, b] = two_tasks(memory.clone());
    let t1 = a
        .open(&ticket_decision("consolidated"), None, None)
        .await
        .unwrap();
    let t2 = b.open(&ticket_decision("fsbp"), None, None).await.unwrap();
    assert_eq!(t1, t2);
    assert_eq!(memory.count(), 1);

    // Without the table, task b would have made a second one.
    let [a, b] = [sink_over(memory.clone()), sink_over(memory.clone())];
    let mut other = ticket_decision("x");
    other.cluster = Some("billing-graph".into());
    a.open(&other, None, None).await.unwrap();
    b.open(&other, None, None).await.unwrap();
    assert_eq!(memory.count(), 3);
}

#[tokio::test]
async fn a_lease_held_by_another_task_sends_the_finding_back_and_an_unsettled_create_holds_both() {
    let memory = Arc::new(Memory::default());
    memory
        .search_blind_to_last
        .store(u32::MAX, Ordering::SeqCst);
    let [a, b] = two_tasks(memory.clone());
    let key = crate::coordination::problem_item(&Problem::of(&ticket_decision("a")).unwrap().key());
    // Task a holds the lease (mid-work): b's finding goes back to the queue.
    a.coordination
        .as_ref()
        .unwrap()
        .acquire(&key)
        .await
        .unwrap();
    let e = b.open(&ticket_decision("a"), None, None).await.unwrap_err();
    assert!(
        e.to_string().contains("another task holds the lease"),
        "{e}"
    );
    a.coordination
        .as_ref()
        .unwrap()
        .release(&key)
        .await
        .unwrap();

    // a's create is lost after writing: b does not create another meanwhile.
    memory.fail_after_write.store(1, Ordering::SeqCst);
    a.open(&ticket_decision("a"), None, None).await.unwrap_err();
    let e = b.open(&ticket_decision("a"), None, None).await.unwrap_err();
    assert!(e.to_string().contains("may have been written"), "{e}");
    assert_eq!(memory.count(), 1);
}
