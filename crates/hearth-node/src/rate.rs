//! Per-peer rate limits: token buckets on gossip messages and sync requests.
//!
//! A peer that goes over its budget is first throttled (its messages are ignored: not
//! validated, not forwarded, and gossipsub's application score for it goes down), and after
//! [`RateLimits::strikes_before_ban`] throttled messages within one window it is disconnected
//! and blocked for [`RateLimits::ban_duration`]. Each peer has its own buckets, so a flooding
//! peer spends only its own budget and never another peer's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// The budgets of one peer.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    /// Gossip messages per second a peer may send us, sustained.
    pub gossip_per_sec: f64,
    /// Gossip messages a peer may send in a burst.
    pub gossip_burst: f64,
    /// Sync and join requests per second a peer may send us, sustained.
    pub requests_per_sec: f64,
    /// Sync and join requests a peer may send in a burst.
    pub requests_burst: f64,
    /// Throttled messages (within [`RateLimits::strike_window`]) after which the peer is
    /// disconnected and blocked.
    pub strikes_before_ban: u32,
    /// The window in which strikes add up.
    pub strike_window: Duration,
    /// How long a banned peer stays blocked.
    pub ban_duration: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            gossip_per_sec: 1_000.0,
            gossip_burst: 4_000.0,
            requests_per_sec: 50.0,
            requests_burst: 200.0,
            strikes_before_ban: 500,
            strike_window: Duration::from_secs(10),
            ban_duration: Duration::from_secs(600),
        }
    }
}

/// What to do with one message or request from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within budget: process it.
    Allow,
    /// Over budget: drop it (ignore, don't forward).
    Throttle,
    /// Over budget for too long: drop it, disconnect and block the peer.
    Ban,
}

#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            last: now,
        }
    }

    fn take(&mut self, rate: f64, burst: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Clone)]
struct PeerBudget {
    gossip: Bucket,
    requests: Bucket,
    strikes: u32,
    window_start: Instant,
}

/// Which budget a message spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A gossipsub message.
    Gossip,
    /// A sync or join request.
    Request,
}

/// The budgets of every peer we hear from, and the peers banned for flooding.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    peers: HashMap<PeerId, PeerBudget>,
    banned: HashMap<PeerId, Instant>,
}

impl RateLimiter {
    /// A limiter with these budgets.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            peers: HashMap::new(),
            banned: HashMap::new(),
        }
    }

    /// Spends one unit of `peer`'s budget of `kind`.
    pub fn check(&mut self, peer: PeerId, kind: Kind, now: Instant) -> Verdict {
        if self.banned.contains_key(&peer) {
            return Verdict::Throttle;
        }
        let limits = &self.limits;
        let budget = self.peers.entry(peer).or_insert_with(|| PeerBudget {
            gossip: Bucket::new(limits.gossip_burst, now),
            requests: Bucket::new(limits.requests_burst, now),
            strikes: 0,
            window_start: now,
        });
        let allowed = match kind {
            Kind::Gossip => budget
                .gossip
                .take(limits.gossip_per_sec, limits.gossip_burst, now),
            Kind::Request => {
                budget
                    .requests
                    .take(limits.requests_per_sec, limits.requests_burst, now)
            }
        };
        if allowed {
            return Verdict::Allow;
        }
        if now.saturating_duration_since(budget.window_start) > limits.strike_window {
            budget.window_start = now;
            budget.strikes = 0;
        }
        budget.strikes += 1;
        if budget.strikes >= limits.strikes_before_ban {
            self.peers.remove(&peer);
            self.banned.insert(peer, now + self.limits.ban_duration);
            return Verdict::Ban;
        }
        Verdict::Throttle
    }

    /// How many strikes `peer` has in the current window.
    pub fn strikes(&self, peer: &PeerId) -> u32 {
        self.peers.get(peer).map_or(0, |b| b.strikes)
    }

    /// Whether `peer` is banned now.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.contains_key(peer)
    }

    /// Forgets a disconnected peer's buckets (a ban stays).
    pub fn forget(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// Ends bans that have run out; returns the peers to unblock.
    pub fn expire_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in &expired {
            self.banned.remove(peer);
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RateLimits {
        RateLimits {
            gossip_per_sec: 10.0,
            gossip_burst: 5.0,
            requests_per_sec: 1.0,
            requests_burst: 2.0,
            strikes_before_ban: 3,
            strike_window: Duration::from_secs(10),
            ban_duration: Duration::from_secs(60),
        }
    }

    #[test]
    fn burst_then_throttle_then_ban_only_the_flooder() {
        let mut limiter = RateLimiter::new(limits());
        let flooder = PeerId::random();
        let honest = PeerId::random();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.check(flooder, Kind::Gossip, t0), Verdict::Allow);
        }
        assert_eq!(limiter.check(flooder, Kind::Gossip, t0), Verdict::Throttle);
        assert_eq!(limiter.check(flooder, Kind::Gossip, t0), Verdict::Throttle);
        assert_eq!(limiter.check(honest, Kind::Gossip, t0), Verdict::Allow);
        assert_eq!(limiter.check(flooder, Kind::Gossip, t0), Verdict::Ban);
        assert!(limiter.is_banned(&flooder));
        assert_eq!(
            limiter.check(flooder, Kind::Gossip, t0 + Duration::from_secs(5)),
            Verdict::Throttle
        );
        assert_eq!(limiter.check(honest, Kind::Gossip, t0), Verdict::Allow);
        assert!(limiter.expire_bans(t0 + Duration::from_secs(30)).is_empty());
        assert_eq!(
            limiter.expire_bans(t0 + Duration::from_secs(61)),
            vec![flooder]
        );
        assert!(!limiter.is_banned(&flooder));
    }

    #[test]
    fn tokens_refill_over_time_and_kinds_are_separate() {
        let mut limiter = RateLimiter::new(limits());
        let peer = PeerId::random();
        let t0 = Instant::now();
        assert_eq!(limiter.check(peer, Kind::Request, t0), Verdict::Allow);
        assert_eq!(limiter.check(peer, Kind::Request, t0), Verdict::Allow);
        assert_eq!(limiter.check(peer, Kind::Request, t0), Verdict::Throttle);
        assert_eq!(limiter.check(peer, Kind::Gossip, t0), Verdict::Allow);
        assert_eq!(
            limiter.check(peer, Kind::Request, t0 + Duration::from_millis(1100)),
            Verdict::Allow
        );
        assert_eq!(limiter.strikes(&peer), 1);
    }
}
