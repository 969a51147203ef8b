//! When a device tries again to reach its circle: redials, relay reservations, hole punching,
//! rendezvous lookups and the search for a UPnP router (PROTOCOL.md §13 Reachability).
//!
//! Each schedule is a pure function of how many tries failed in a row, so tests and the
//! simulator can drive it; the node keeps the clock, counts the failures and carries out the
//! try.

use core::time::Duration;

/// The first wait before retrying a relay reservation or redialing lost peers.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two redials or reservation tries. Short enough that a member who
/// restarts is found again within half a minute.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// The first wait between rendezvous lookups after something changed.
pub const FIRST_DISCOVERY_WAIT: Duration = Duration::from_secs(2);
/// The first wait before trying hole punching again with a peer after it failed.
pub const FIRST_HOLE_PUNCH_RETRY: Duration = Duration::from_secs(5);
/// The longest wait between two hole punching tries with the same peer: a symmetric NAT
/// never lets it succeed, and each try costs the relay a circuit.
pub const MAX_HOLE_PUNCH_RETRY: Duration = Duration::from_secs(300);
/// How long one DCUtR round may take before it reports: up to three direct dials, each given
/// up after the transport's 10 s timeout, and a margin. A new round with the same peer must
/// not start before the last one ended: its simultaneous-open dials would reuse the same
/// local and remote ports and collide with the ones still pending, so neither ever connects.
pub const HOLE_PUNCH_ROUND: Duration = Duration::from_secs(35);
/// The waits before searching again for a UPnP router after the first, second, … search
/// found none; the last one repeats.
pub const UPNP_SEARCH_RETRIES: [Duration; 6] = [
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(2 * 60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(10 * 60),
];

/// The wait after `failures` failed redials or reservation tries in a row: 1 s, 2 s, 4 s, …
/// up to [`MAX_BACKOFF`].
pub fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << failures.min(8))
        .min(MAX_BACKOFF)
}

/// The wait after the `failures`-th hole punching failure in a row with a peer: 5 s, 10 s,
/// 20 s, … up to [`MAX_HOLE_PUNCH_RETRY`]. DCUtR gives up after three dials on one relayed
/// connection, often because the candidate addresses it started with were not known yet or
/// the two dials missed each other; a new relayed connection starts it over.
pub fn hole_punch_wait(failures: u32) -> Duration {
    FIRST_HOLE_PUNCH_RETRY
        .saturating_mul(1 << failures.saturating_sub(1).min(8))
        .min(MAX_HOLE_PUNCH_RETRY)
}

/// When to look again at a peer after starting a hole punching round with it: not before
/// the round ended ([`HOLE_PUNCH_ROUND`]), and no sooner than the backoff says.
pub fn wait_after_starting_hole_punch_round(failures: u32) -> Duration {
    hole_punch_wait(failures).max(HOLE_PUNCH_ROUND)
}

/// Whether this device (`me`) is the one that tries hole punching again with `peer` while
/// the two are connected only through a relay: the one with the smaller peer id (as bytes).
/// If both tried, their new rounds would start together (each side's schedule runs from
/// the same failure) and the simultaneous-open dials of one would collide with the other's
/// on the same ports, so neither ever connects.
pub fn drives_hole_punch_retry(me: &[u8], peer: &[u8]) -> bool {
    me < peer
}

/// How much of a join's time must be left for the joiner to dial the inviter once more
/// after the first dial failed ([`redials_join`]).
pub const JOIN_REDIAL_MIN_TIME_LEFT: Duration = Duration::from_secs(3);

/// Whether a join whose dial of the inviter failed dials once more: only once
/// (`redialed` says it did already) and only with [`JOIN_REDIAL_MIN_TIME_LEFT`] of its time
/// left. The usual cause is the joiner's own relay connection still being set up (a device
/// started just before the join): the dial through the relay fails at once, the direct
/// addresses time out behind the inviter's firewall, and by then the relay is there.
pub fn redials_join(redialed: bool, time_left: Duration) -> bool {
    !redialed && time_left >= JOIN_REDIAL_MIN_TIME_LEFT
}

/// A transport a hole-punching candidate address is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP (simultaneous open).
    Tcp,
    /// QUIC over UDP.
    Quic,
}

/// The candidate on the other transport that an observed address implies: `observed` is the
/// transport and port a peer saw this device on, `listening` the transports and ports this
/// device listens on (for the observed address's IP family). When the observed port is our
/// own listening port, the router kept our port (or there is no NAT), and such routers keep
/// the other transport's port too: the same IP with our listening port of the other
/// transport is offered as well. When the port was rewritten, nothing can be guessed.
///
/// Why: a peer learns our candidates from the connections others see (identify), which run
/// over one transport each. If one side's were TCP only and the other's QUIC only, each
/// would dial the other on a transport whose pinhole the other never opened, and every
/// hole-punching round would fail (seen when one member reserved her relay slot over QUIC and
/// the other over TCP).
pub fn twin_candidate(
    observed: (Transport, u16),
    listening: &[(Transport, u16)],
) -> Option<(Transport, u16)> {
    if !listening.contains(&observed) {
        return None;
    }
    let other = match observed.0 {
        Transport::Tcp => Transport::Quic,
        Transport::Quic => Transport::Tcp,
    };
    listening.iter().find(|(t, _)| *t == other).copied()
}

/// The wait before the rendezvous lookup after one that waited `last` (start from
/// [`FIRST_DISCOVERY_WAIT`] whenever something changed): it doubles up to `interval`, the
/// configured lookup interval. Returns the wait to use now and the one to use next.
pub fn discovery_waits(last: Duration, interval: Duration) -> (Duration, Duration) {
    let now = last.min(interval);
    (now, now.saturating_mul(2).min(interval))
}

/// How long to wait after `failures` searches in a row found no UPnP router (`failures` ≥ 1;
/// 0 counts as 1): a router that appears soon after start is found soon, and a network
/// without one costs a few SSDP packets an hour.
pub fn upnp_search_retry_delay(failures: u32) -> Duration {
    let index = usize::try_from(failures.max(1) - 1).unwrap_or(usize::MAX);
    UPNP_SEARCH_RETRIES[index.min(UPNP_SEARCH_RETRIES.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hole_punch_retries_back_off_to_five_minutes() {
        assert_eq!(hole_punch_wait(1), Duration::from_secs(5));
        assert_eq!(hole_punch_wait(2), Duration::from_secs(10));
        assert_eq!(hole_punch_wait(4), Duration::from_secs(40));
        assert_eq!(hole_punch_wait(7), MAX_HOLE_PUNCH_RETRY);
        assert_eq!(hole_punch_wait(u32::MAX), MAX_HOLE_PUNCH_RETRY);
    }

    #[test]
    fn a_hole_punching_round_is_never_overlapped_by_the_next() {
        // The round started on a retry must end (three dials of 10 s) before another starts.
        assert!(HOLE_PUNCH_ROUND >= 3 * Duration::from_secs(10));
        assert_eq!(wait_after_starting_hole_punch_round(1), HOLE_PUNCH_ROUND);
        assert_eq!(
            wait_after_starting_hole_punch_round(4),
            Duration::from_secs(40)
        );
        assert_eq!(
            wait_after_starting_hole_punch_round(9),
            MAX_HOLE_PUNCH_RETRY
        );
    }

    #[test]
    fn exactly_one_side_of_a_pair_retries_hole_punching() {
        let (a, b) = (b"12D3KooWA".as_slice(), b"12D3KooWB".as_slice());
        assert!(drives_hole_punch_retry(a, b));
        assert!(!drives_hole_punch_retry(b, a));
        assert!(!drives_hole_punch_retry(a, a));
    }

    #[test]
    fn a_kept_port_implies_the_other_transports_listening_port() {
        use Transport::{Quic, Tcp};
        let listening = [(Tcp, 4001), (Quic, 4002)];
        assert_eq!(twin_candidate((Tcp, 4001), &listening), Some((Quic, 4002)));
        assert_eq!(twin_candidate((Quic, 4002), &listening), Some((Tcp, 4001)));
        // The router rewrote the port: nothing to guess from.
        assert_eq!(twin_candidate((Tcp, 50123), &listening), None);
        // Observed on a port we listen on with the other transport only.
        assert_eq!(twin_candidate((Quic, 4001), &listening), None);
        // No listener on the other transport.
        assert_eq!(twin_candidate((Tcp, 4001), &[(Tcp, 4001)]), None);
    }

    #[test]
    fn a_failed_join_dial_is_tried_once_more_with_time_left() {
        assert!(redials_join(false, Duration::from_secs(20)));
        assert!(redials_join(false, JOIN_REDIAL_MIN_TIME_LEFT));
        assert!(!redials_join(false, Duration::from_secs(2)));
        assert!(!redials_join(true, Duration::from_secs(20)), "only once");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(4), MAX_BACKOFF);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn discovery_waits_double_up_to_the_interval() {
        let interval = Duration::from_secs(60);
        let mut last = FIRST_DISCOVERY_WAIT;
        let mut waits = Vec::new();
        for _ in 0..7 {
            let (now, next) = discovery_waits(last, interval);
            waits.push(now.as_secs());
            last = next;
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60]);
        // A shorter configured interval wins from the start.
        assert_eq!(
            discovery_waits(FIRST_DISCOVERY_WAIT, Duration::from_secs(1)),
            (Duration::from_secs(1), Duration::from_secs(1))
        );
    }

    #[test]
    fn the_upnp_search_backs_off_to_ten_minutes() {
        let waits: Vec<u64> = (1..=8)
            .map(|n| upnp_search_retry_delay(n).as_secs())
            .collect();
        assert_eq!(waits, [10, 30, 60, 120, 300, 600, 600, 600]);
        assert_eq!(upnp_search_retry_delay(u32::MAX).as_secs(), 600);
        assert_eq!(upnp_search_retry_delay(0).as_secs(), 10);
    }
}
