//! What the relay knows about one server connection: the state that stays with the backend
//! while clients come and go, next to the driver's own part (`io`: socket, cancel key...).

use std::collections::VecDeque;
use std::num::NonZeroU64;

use crate::relay::params::{ClientParams, InLine, Params};
use crate::relay::prepared::{Hook, Rewriter, StatementTally};
use crate::relay::scope::{self, Resolution};
use crate::relay::statements::{ClientStatements, Registry, ServerStatements};
use crate::relay::tracker::Tracker;

/// One logged-in server connection. `S` is whatever the driver keeps beside the protocol
/// state (its socket, which server it is, when it was opened); the session never looks at it.
pub struct Backend<S> {
    /// The driver's part.
    pub io: S,
    /// Current values of the reported parameters (and of parameters qcp set).
    pub params: Params,
    /// The last client expectation `params` was found in line with.
    pub in_line: InLine,
    /// Request accounting, prepared statements and qcp's own bytes for this backend.
    pub relay: RelayState,
}

impl<S> Backend<S> {
    /// A backend just logged in, with the parameters it reported.
    pub fn new(io: S, params: Params) -> Self {
        Backend {
            io,
            params,
            in_line: InLine::default(),
            relay: RelayState::default(),
        }
    }

    /// Smart mode: the backend is about to be linked to the client with private scope
    /// `client` (`None`: a client that shares its statements). If another client's SQL may
    /// have changed its name resolution, its resolution parameters are marked unknown, so
    /// that the parameter sync before the link sets them to what this client expects (see
    /// `relay::scope`).
    pub fn claim(&mut self, client: Option<NonZeroU64>) {
        if self.relay.resolution.claim(client) {
            scope::forget(&mut self.params);
        }
    }
}

/// Relay state that belongs to a server connection: its prepared statements, and buffers
/// that keep their memory from one linked client to the next (few server connections hold
/// them, rather than every client).
#[derive(Debug, Default)]
pub struct RelayState {
    /// Requests the backend still owes answers to.
    pub tracker: Tracker,
    /// What to do when hooked requests are answered, in request order.
    pub hooks: VecDeque<Hook>,
    /// The named prepared statements this backend has (Smart mode).
    pub statements: ServerStatements,
    /// Bytes qcp wrote for the backend (rewritten requests), sent before the client's next
    /// relayed bytes.
    pub to_server: Vec<u8>,
    /// Bytes qcp wrote for the client (replaced replies, its own answers), sent before the
    /// backend's next relayed bytes.
    pub to_client: Vec<u8>,
    /// What the statement rewrites did since the driver last took the counts.
    pub tally: StatementTally,
    /// Who may have changed the backend's name resolution (Smart mode).
    pub resolution: Resolution,
}

impl RelayState {
    /// Ready for a new client: nothing outstanding, nothing buffered.
    pub fn reset(&mut self, max_prepared_statements: usize) {
        self.tracker.reset();
        self.hooks.clear();
        self.to_server.clear();
        self.to_client.clear();
        self.statements.set_capacity(max_prepared_statements);
    }

    /// A rewriter of the client's statement messages for this backend.
    pub fn rewriter<'a>(
        &'a mut self,
        client: &'a mut ClientStatements,
        registry: &'a Registry,
        wanted: &'a ClientParams,
    ) -> Rewriter<'a> {
        Rewriter {
            client,
            server: &mut self.statements,
            registry,
            wanted,
            resolution: &mut self.resolution,
            tracker: &mut self.tracker,
            hooks: &mut self.hooks,
            out: &mut self.to_server,
            tally: &mut self.tally,
        }
    }

    /// True when qcp has no bytes of its own waiting to be sent either way.
    pub fn nothing_buffered(&self) -> bool {
        self.to_server.is_empty() && self.to_client.is_empty()
    }
}
