//! Connection bookkeeping: which connections are up (direct or relayed, dialed by whom), and
//! closing relayed ones once a direct or a newer relayed connection makes them redundant.

use std::time::{Duration, Instant};

use hearth_proto::reach::{FIRST_BACKOFF, HOLE_PUNCH_ROUND};
use libp2p::PeerId;
use libp2p::core::ConnectedPoint;
use libp2p::swarm::ConnectionId;

use super::HolePunchRetry;
use crate::event::ConnectionInfo;
use crate::node::EventLoop;

/// How long a relayed connection that is no longer needed stays open, for the requests under
/// way on it (a join, a sync round) to finish.
const RELAYED_GRACE: Duration = Duration::from_secs(10);

impl EventLoop {
    /// Bookkeeping of a new connection.
    pub(crate) fn reach_connection_established(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        endpoint: &ConnectedPoint,
    ) {
        let address = endpoint.get_remote_address().clone();
        let relayed = endpoint.is_relayed();
        self.reach.connections.insert(
            connection,
            ConnectionInfo {
                peer,
                address,
                relayed,
                outbound: endpoint.is_dialer(),
            },
        );
        if !relayed {
            // Losing every peer and finding one again: the next loss starts the redial
            // schedule from the beginning.
            self.reach.redial_backoff = FIRST_BACKOFF;
            self.reach.hole_punch_retries.remove(&peer);
        }
        if relayed && self.drives_hole_punch_retry(&peer) && !self.has_direct_connection(&peer) {
            // Whichever side sees the first round fail (the far end of the relayed
            // connection, which runs DCUtR), this side tries again once that round must
            // have ended; a failure it sees itself reschedules it sooner.
            self.reach
                .hole_punch_retries
                .entry(peer)
                .or_insert(HolePunchRetry {
                    failures: 0,
                    next_try: Instant::now() + HOLE_PUNCH_ROUND,
                });
        }
        if self.reach.retry_dials.remove(&connection).is_some() {
            // A retry's new relayed connection starts DCUtR over: the older relayed ones to
            // this peer only hold another circuit on the relay.
            self.close_relayed_later(peer, Some(connection));
        } else if self.has_direct_connection(&peer) {
            self.close_relayed_later(peer, None);
        }
    }

    /// Marks the relayed connections to `peer` (but `keep`) to be closed after
    /// [`RELAYED_GRACE`]. They cost a member's relay its bandwidth, and one whose relay
    /// vanished (a QUIC path is noticed only after its idle timeout) would still take gossip
    /// meant for the peer and lose it. The grace lets requests under way on them finish.
    fn close_relayed_later(&mut self, peer: PeerId, keep: Option<ConnectionId>) {
        let at = Instant::now() + RELAYED_GRACE;
        let ids: Vec<ConnectionId> = self
            .reach
            .connections
            .iter()
            .filter(|(id, c)| c.peer == peer && c.relayed && Some(**id) != keep)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.reach.closing.entry(id).or_insert(at);
        }
    }

    /// Closes relayed connections whose grace ended, if the reason still holds: a direct
    /// connection to the peer, or a newer relayed one.
    pub(super) fn close_redundant_relayed(&mut self, now: Instant) {
        let due: Vec<ConnectionId> = self
            .reach
            .closing
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.reach.closing.remove(&id);
            let Some(peer) = self.reach.connections.get(&id).map(|c| c.peer) else {
                continue;
            };
            let other = self.reach.connections.iter().any(|(other, c)| {
                *other != id && c.peer == peer && !self.reach.closing.contains_key(other)
            });
            if other {
                tracing::debug!(%peer, "closing a relayed connection that is no longer needed");
                self.swarm.close_connection(id);
            }
        }
    }

    /// A dial failed: when it was a hole punching retry, say why (the next try follows its
    /// schedule).
    pub(crate) fn reach_dial_failed(
        &mut self,
        connection: ConnectionId,
        error: &libp2p::swarm::DialError,
    ) {
        if let Some(peer) = self.reach.retry_dials.remove(&connection) {
            tracing::info!(%peer, %error, "could not reach the peer through a relay to retry hole punching");
        }
    }

    /// Bookkeeping of a closed connection.
    pub(crate) fn reach_connection_closed(&mut self, connection: ConnectionId, last: bool) {
        let closed = self.reach.connections.remove(&connection);
        self.reach.retry_dials.remove(&connection);
        self.reach.closing.remove(&connection);
        if last && let Some(info) = closed {
            self.reach.relay_capable.remove(&info.peer);
            self.reach.hole_punch_retries.remove(&info.peer);
            // Redial soon: the peer may come back at once (a restart).
            self.reach.redial_backoff = FIRST_BACKOFF;
            self.reach.next_redial = Instant::now() + FIRST_BACKOFF;
        }
    }

    /// The live connections, for status.
    pub(crate) fn connection_list(&self) -> Vec<ConnectionInfo> {
        let mut list: Vec<ConnectionInfo> = self.reach.connections.values().cloned().collect();
        list.sort_by_key(|a| (a.peer, a.relayed));
        list
    }
}
