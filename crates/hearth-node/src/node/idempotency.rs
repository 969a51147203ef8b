//! Writes keyed by a user action: a retry of the same action returns the entry the first
//! attempt wrote instead of writing it twice. The key is recorded with the action's first own
//! entry in the same transaction (`Store::append_keyed`), so "written" and "key recorded" are
//! one durable fact, even across a crash.

use hearth_proto::ids::EntryId;

use super::{EventLoop, Flow};
use crate::client::Command;
use crate::error::NodeError;

impl EventLoop {
    /// Carries out `command` under `key`, or answers with the entry an earlier attempt wrote.
    pub(super) fn keyed(&mut self, key: Vec<u8>, command: Command) -> Flow {
        let circle = match &command {
            Command::Post { circle, .. } | Command::CheckIn { circle, .. } => *circle,
            // Only writes of one entry take a key; anything else runs as it is.
            _ => return self.handle_command(command),
        };
        match self.store.keyed_entry(circle, &key) {
            Ok(Some(id)) => {
                tracing::debug!(circle = %circle.short(), entry = %id.short(), "a retried action found its entry");
                answer(command, Ok(id));
                return Flow::Continue;
            }
            Ok(None) => {}
            Err(e) => {
                answer(command, Err(e.into()));
                return Flow::Continue;
            }
        }
        self.idempotency = Some((circle, key));
        let flow = self.handle_command(command);
        // A command that failed before writing leaves no key behind for the next one.
        self.idempotency = None;
        flow
    }
}

/// Answers a keyed command without carrying it out.
fn answer(command: Command, result: Result<EntryId, NodeError>) {
    match command {
        Command::Post { reply, .. } | Command::CheckIn { reply, .. } => {
            let _ = reply.send(result);
        }
        _ => {}
    }
}
