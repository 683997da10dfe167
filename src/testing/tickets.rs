//! A ticket system that counts what it opens (`TicketSink`).

use super::*;

/// A ticket system that counts what it opens.
#[derive(Default)]
pub(crate) struct FakeTickets {
    pub(crate) opened: Mutex<Vec<Decision>>,
    /// (decision, ticket) of each resolve.
    pub(crate) resolved: Mutex<Vec<(Decision, String)>>,
}

#[async_trait]
impl TicketSink for FakeTickets {
    async fn open(
        &self,
        d: &Decision,
        _: Option<&str>,
        _: Option<&str>,
    ) -> Result<Ticket, TicketError> {
        lock(&self.opened).push(d.clone());
        Ok(Ticket::default())
    }

    async fn resolve(
        &self,
        d: &Decision,
        ticket: &str,
        _: crate::config::OnResolve,
    ) -> Result<(), TicketError> {
        lock(&self.resolved).push((d.clone(), ticket.to_string()));
        Ok(())
    }
}
