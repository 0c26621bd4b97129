//! Server to client: framing the server's bytes, settling requests as they are answered,
//! following the parameters the server reports, and in Smart mode hiding or replacing the
//! answers to requests qcp rewrote.

use qcp_codec::{BackendMessage, Header, Tag};

use super::{frame_error_text, Event, RelayState, Session};
use crate::relay::framer::{Inspect, Run, Verdict, WHOLE_BODY};
use crate::relay::params::{ClientParams, Params};
use crate::relay::prepared::{self, Action};
use crate::relay::scope;
use crate::relay::statements::{ClientStatements, Registry};
use crate::relay::tracker::Hooked;

/// How much of a CommandComplete is looked at (its tag, for DEALLOCATE ALL / DISCARD ALL).
const COMMAND_TAG_PEEK: usize = 32;

impl<S> Session<S> {
    /// Scans what the server sent, once. `Ok(true)` if anything moved.
    pub fn scan_down(&mut self) -> Result<bool, Event> {
        let Some(link) = self.link.as_mut() else {
            return Ok(false);
        };
        let flow = &mut self.down;
        if flow.unscanned().is_empty() {
            return Ok(false);
        }
        let mut inspect = DownInspect {
            relay: &mut link.relay,
            params: &mut link.params,
            last_was_error: &mut self.last_was_error,
            wanted: &mut self.wanted,
            statements: &mut self.statements,
            registry: &self.registry,
            smart: self.smart,
        };
        match flow.next_run(&mut inspect) {
            Ok(Run::Forward(n)) => {
                flow.pass(n);
                Ok(true)
            }
            Ok(Run::NeedMore) => Ok(false),
            Ok(Run::Discard(n)) => {
                flow.drop_scanned(n);
                Ok(true)
            }
            Ok(Run::Stop(header)) => Ok(self.down_stop(header)),
            Err(error) => Err(Event::ServerError(frame_error_text(error))),
        }
    }

    /// The down framer stopped at a reply to a hooked request that must not reach the client
    /// as the server sent it: swallowed, retagged or replaced. Returns whether it moved.
    fn down_stop(&mut self, header: Header) -> bool {
        let Some(link) = self.link.as_mut() else {
            return false;
        };
        let flow = &mut self.down;
        let Some(hook) = link.relay.hooks.front() else {
            return false;
        };
        let body = flow.body_read(&header);
        let action = prepared::action(hook, header.tag, body);
        tracing::trace!(tag = ?header.tag, ?action, ?hook, "reply to a hooked request");
        if matches!(action, Action::Discard | Action::Replace) && flow.sent != flow.scanned {
            // Dropped from the middle of the stream once what comes before it is written.
            return false;
        }
        if let Action::Replace = action {
            if let Some(bytes) = prepared::replacement(hook) {
                link.relay.to_client.extend_from_slice(&bytes);
            }
        }
        let mut inspect = DownInspect {
            relay: &mut link.relay,
            params: &mut link.params,
            last_was_error: &mut self.last_was_error,
            wanted: &mut self.wanted,
            statements: &mut self.statements,
            registry: &self.registry,
            smart: self.smart,
        };
        inspect.apply(header, body);
        if let (Action::Retag(tag), Some(chunk)) = (&action, flow.chunk.as_mut()) {
            if let Some(byte) = chunk.bytes_mut().get_mut(flow.scanned) {
                *byte = tag.0;
            }
        }
        match action {
            Action::Discard | Action::Replace => {
                let dropped = flow.framer.discard(header);
                flow.drop_scanned(dropped);
            }
            Action::Retag(_) | Action::Forward => {
                let passed = flow.framer.consume(header);
                flow.pass(passed);
            }
        }
        true
    }
}

/// Server-to-client accounting: replies go to the tracker (and settle hooked requests);
/// ParameterStatus values are recorded for the client and the server connection (in Smart
/// mode, a change of a resolution parameter makes the client's statements private); in Smart
/// mode a DEALLOCATE ALL or DISCARD ALL clears what qcp knows about prepared statements.
struct DownInspect<'a> {
    relay: &'a mut RelayState,
    params: &'a mut Params,
    last_was_error: &'a mut bool,
    wanted: &'a mut ClientParams,
    statements: &'a mut ClientStatements,
    registry: &'a Registry,
    smart: bool,
}

impl DownInspect<'_> {
    /// Records one server message (which the relay forwards, or changes in `down_stop`).
    fn apply(&mut self, header: Header, body: &[u8]) {
        let tag = header.tag;
        let hooked = self
            .relay
            .tracker
            .server_message(tag, body.first().copied());
        if hooked != Hooked::default() {
            let code = if tag == Tag::ERROR_RESPONSE {
                prepared::error_code(body)
            } else {
                &[]
            };
            prepared::settle_reported(
                hooked,
                code,
                &mut self.relay.hooks,
                self.statements,
                &mut self.relay.statements,
            );
        }
        *self.last_was_error = tag == Tag::ERROR_RESPONSE;
        if tag == Tag::PARAMETER_STATUS && body.len() == header.body_len() {
            if let Ok(BackendMessage::ParameterStatus(status)) =
                BackendMessage::decode_body(tag, body)
            {
                if let (Ok(name), Ok(value)) = (status.name_str(), status.value_str()) {
                    let changed = self.wanted.set(name, value);
                    self.params.set(name, value);
                    if self.smart && changed && scope::is_scope_param(name) {
                        // The client's resolution changed (PostgreSQL 18 reports
                        // search_path): its statements were prepared under the old one.
                        let client = self.statements.make_private(self.registry);
                        self.relay.resolution.changed(client);
                    }
                }
            }
        } else if self.smart && tag == Tag::COMMAND_COMPLETE && prepared::drops_all_statements(body)
        {
            self.statements.clear();
            self.relay.statements.forget_all();
        }
    }
}

impl Inspect for DownInspect<'_> {
    fn needs_body(&self, tag: Tag) -> usize {
        match tag {
            Tag::READY_FOR_QUERY | Tag::PARAMETER_STATUS => WHOLE_BODY,
            Tag::ERROR_RESPONSE if self.relay.tracker.head_hooked() => WHOLE_BODY,
            Tag::COMMAND_COMPLETE if self.smart => COMMAND_TAG_PEEK,
            _ => 0,
        }
    }

    fn message(&mut self, header: Header, body: Option<&[u8]>) -> Verdict {
        if self.relay.tracker.head_hooked() {
            if let Some(hook) = self.relay.hooks.front() {
                if prepared::action(hook, header.tag, body.unwrap_or_default()) != Action::Forward {
                    return Verdict::Stop;
                }
            }
        }
        self.apply(header, body.unwrap_or_default());
        Verdict::Pass
    }
}
