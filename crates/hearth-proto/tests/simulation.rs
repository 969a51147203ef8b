//! A seeded simulator of whole circles: members, a network that drops, delays, duplicates and
//! reorders, members that go offline, and anti-entropy sync. The seed is printed on failure.

use std::collections::{BTreeMap, BTreeSet};

use hearth_proto::circle::{Authored, Circle, Opened, Rejection};
use hearth_proto::content::Content;
use hearth_proto::identity::MemberSecret;
use hearth_proto::ids::{EntryId, MemberId};
use hearth_proto::membership::{CircleSettings, ControlRejection, Role};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

const DAY_MS: u64 = 24 * 3600 * 1000;

struct Member {
    name: String,
    circle: Circle,
    online: bool,
    /// Every accepted entry's bytes, by (author, seq): what a real node persists.
    stored: BTreeMap<(MemberId, u64), Vec<u8>>,
    /// Plaintext this member could read, with its author, by entry id.
    read: BTreeMap<EntryId, (MemberId, u64, Content)>,
}

struct Message {
    to: usize,
    at: u64,
    bytes: Vec<u8>,
}

/// Network behaviour, in percent.
#[derive(Clone, Copy)]
struct Network {
    drop: u32,
    duplicate: u32,
    max_delay_ms: u64,
}

const LOSSY: Network = Network {
    drop: 10,
    duplicate: 10,
    max_delay_ms: 400,
};
const PERFECT: Network = Network {
    drop: 0,
    duplicate: 0,
    max_delay_ms: 0,
};

struct Sim {
    seed: u64,
    rng: ChaCha20Rng,
    now: u64,
    net: Network,
    members: Vec<Member>,
    queue: Vec<Message>,
    counter: u64,
}

impl Sim {
    fn new(seed: u64, net: Network) -> Self {
        Sim {
            seed,
            rng: ChaCha20Rng::seed_from_u64(seed),
            now: 1_700_000_000_000,
            net,
            members: Vec::new(),
            queue: Vec::new(),
            counter: 0,
        }
    }

    fn ctx(&self) -> String {
        format!("(simulation seed {})", self.seed)
    }

    fn create(&mut self, name: &str, settings: CircleSettings) -> usize {
        let secret = MemberSecret::generate(&mut self.rng);
        let (circle, authored) = Circle::create(
            "Tuesday circle",
            "Be kind. What is said here stays here.",
            settings,
            name,
            secret,
            self.now,
            &mut self.rng,
        )
        .unwrap();
        self.members.push(Member {
            name: name.into(),
            circle,
            online: true,
            stored: BTreeMap::new(),
            read: BTreeMap::new(),
        });
        let idx = self.members.len() - 1;
        self.keep_own(idx, &authored);
        idx
    }

    /// `inviter` admits a newcomer (the join handshake's outcome) and publishes the commit.
    fn admit(&mut self, inviter: usize, name: &str, role: Role) -> usize {
        let secret = MemberSecret::generate(&mut self.rng);
        let (commit, welcome) = self.members[inviter]
            .circle
            .admit(secret.public(), role, name, 1, self.now, &mut self.rng)
            .unwrap_or_else(|e| panic!("admit failed: {e} {}", self.ctx()));
        self.keep_own(inviter, &commit);
        self.broadcast(inviter, &commit.bytes);
        let circle = Circle::join(&welcome, secret)
            .unwrap_or_else(|e| panic!("join failed: {e} {}", self.ctx()));
        self.members.push(Member {
            name: name.into(),
            circle,
            online: true,
            stored: BTreeMap::new(),
            read: BTreeMap::new(),
        });
        self.members.len() - 1
    }

    fn keep_own(&mut self, idx: usize, authored: &Authored) {
        let m = &mut self.members[idx];
        m.stored.insert(
            (authored.entry.author(), authored.entry.seq()),
            authored.bytes.clone(),
        );
        if let Opened::Content(c) = m.circle.open(&authored.entry) {
            m.read.insert(
                authored.id,
                (authored.entry.author(), authored.entry.seq(), c),
            );
        }
    }

    fn broadcast(&mut self, from: usize, bytes: &[u8]) {
        for to in 0..self.members.len() {
            if to == from {
                continue;
            }
            let copies = if self.roll(self.net.duplicate) { 2 } else { 1 };
            for _ in 0..copies {
                if self.roll(self.net.drop) {
                    continue;
                }
                let delay = if self.net.max_delay_ms == 0 {
                    0
                } else {
                    self.rng.next_u64() % self.net.max_delay_ms
                };
                self.queue.push(Message {
                    to,
                    at: self.now + delay,
                    bytes: bytes.to_vec(),
                });
            }
        }
    }

    fn roll(&mut self, percent: u32) -> bool {
        self.rng.next_u32() % 100 < percent
    }

    fn post(&mut self, idx: usize, text: &str) -> EntryId {
        self.counter += 1;
        let content = Content::Text {
            body: format!("{text} #{}", self.counter).parse().unwrap(),
            reply_to: None,
            content_warning: None,
        };
        let authored = self.members[idx]
            .circle
            .post(&content, self.now, &mut self.rng)
            .unwrap_or_else(|e| {
                panic!(
                    "{} could not post: {e} {}",
                    self.members[idx].name,
                    self.ctx()
                )
            });
        self.keep_own(idx, &authored);
        self.broadcast(idx, &authored.bytes);
        authored.id
    }

    /// Delivers bytes to a member; returns how many entries she accepted.
    fn receive(&mut self, idx: usize, bytes: &[u8]) -> Result<usize, Rejection> {
        let m = &mut self.members[idx];
        let receipt = m.circle.receive(bytes)?;
        for accepted in &receipt.accepted {
            m.stored.insert(
                (accepted.entry.author(), accepted.entry.seq()),
                accepted.bytes.clone(),
            );
            if let Opened::Content(c) = &accepted.opened {
                m.read.insert(
                    accepted.id,
                    (accepted.entry.author(), accepted.entry.seq(), c.clone()),
                );
            }
        }
        if !receipt.new_secrets.is_empty() {
            // Entries stored earlier may open now (as a node re-reads its store).
            let stored: Vec<Vec<u8>> = m.stored.values().cloned().collect();
            for bytes in stored {
                let (entry, id) = hearth_proto::entry::Entry::decode_and_verify(&bytes).unwrap();
                if let Opened::Content(c) = m.circle.open(&entry) {
                    m.read.insert(id, (entry.author(), entry.seq(), c));
                }
            }
        }
        Ok(receipt.accepted.len())
    }

    /// Delivers everything queued; panics if that takes more than `limit` deliveries.
    fn run(&mut self, limit: usize) {
        self.step(limit);
        assert!(
            self.queue.is_empty(),
            "the network did not settle within {limit} deliveries {}",
            self.ctx()
        );
    }

    /// Delivers up to `limit` queued messages in time order (near-ties in random order).
    /// Offline members lose what is sent to them.
    fn step(&mut self, limit: usize) {
        for _ in 0..limit {
            if self.queue.is_empty() {
                return;
            }
            let earliest = self.queue.iter().map(|m| m.at).min().unwrap();
            let candidates: Vec<usize> = (0..self.queue.len())
                .filter(|i| self.queue[*i].at <= earliest + 50)
                .collect();
            let pick = candidates[(self.rng.next_u32() as usize) % candidates.len()];
            let msg = self.queue.swap_remove(pick);
            self.now = self.now.max(msg.at);
            if self.members[msg.to].online {
                let _ = self.receive(msg.to, &msg.bytes);
            }
            self.repair_if_due();
        }
    }

    /// The designated member writes a repair commit when the epoch tree needs one.
    fn repair_if_due(&mut self) {
        for idx in 0..self.members.len() {
            let m = &self.members[idx];
            if !m.online
                || !m.circle.repair_due()
                || m.circle.designated_repairer() != Some(m.circle.me())
            {
                continue;
            }
            if let Ok(commit) = self.members[idx].circle.rotate(self.now, &mut self.rng) {
                self.keep_own(idx, &commit);
                self.broadcast(idx, &commit.bytes);
            }
        }
    }

    /// One round of anti-entropy: `from` sends `to` everything `to` lacks. Returns how many
    /// entries `to` accepted.
    fn sync(&mut self, from: usize, to: usize) -> usize {
        let wants = self.members[from]
            .circle
            .lacking(&self.members[to].circle.marks());
        let mut accepted = 0;
        for want in wants {
            for seq in want.from_seq..=want.to_seq {
                let Some(bytes) = self.members[from].stored.get(&(want.author, seq)).cloned()
                else {
                    continue;
                };
                accepted += self.receive(to, &bytes).unwrap_or(0);
            }
        }
        self.repair_if_due();
        accepted
    }

    /// Everyone online syncs with everyone online until nothing moves.
    fn settle(&mut self) {
        self.run(1_000_000);
        for _round in 0..10 {
            let mut moved = 0;
            for a in 0..self.members.len() {
                for b in 0..self.members.len() {
                    if a != b && self.members[a].online && self.members[b].online {
                        moved += self.sync(a, b);
                    }
                }
            }
            self.run(1_000_000);
            if moved == 0 {
                return;
            }
        }
        panic!("sync did not settle {}", self.ctx());
    }

    fn ids(&self, idxs: &[usize]) -> BTreeSet<MemberId> {
        idxs.iter().map(|i| self.members[*i].circle.me()).collect()
    }

    fn assert_converged(&self, idxs: &[usize]) {
        let first = &self.members[idxs[0]].circle;
        for i in &idxs[1..] {
            let other = &self.members[*i].circle;
            assert_eq!(
                first.membership().members,
                other.membership().members,
                "membership differs {}",
                self.ctx()
            );
            assert_eq!(
                first.membership().current_epoch().map(|e| e.id),
                other.membership().current_epoch().map(|e| e.id),
                "current epoch differs {}",
                self.ctx()
            );
            assert_eq!(first.marks(), other.marks(), "logs differ {}", self.ctx());
        }
    }
}

fn circle_of(sim: &mut Sim, n: usize, net: Network) -> Vec<usize> {
    sim.net = PERFECT;
    let a = sim.create("Ana", CircleSettings::default());
    let mut idxs = vec![a];
    for i in 1..n {
        let name = [
            "Ana", "Ben", "Chloe", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun",
        ][i % 10];
        idxs.push(sim.admit(a, name, Role::Member));
        sim.run(100_000);
    }
    sim.net = net;
    idxs
}

#[test]
fn five_members_chat_and_everyone_reads_everything() {
    for seed in 0..6 {
        let mut sim = Sim::new(seed, LOSSY);
        let all = circle_of(&mut sim, 5, LOSSY);
        let mut posted = BTreeSet::new();
        for round in 0..12 {
            for &i in &all {
                posted.insert(sim.post(i, &format!("round {round} from {i}")));
                sim.now += 20;
                sim.step(3);
            }
        }
        sim.settle();
        sim.assert_converged(&all);
        for &i in &all {
            let read: BTreeSet<EntryId> = sim.members[i].read.keys().copied().collect();
            assert!(
                posted.is_subset(&read),
                "{} misses {} messages {}",
                sim.members[i].name,
                posted.difference(&read).count(),
                sim.ctx()
            );
        }
    }
}

#[test]
fn removed_member_reads_nothing_new_and_her_entries_are_rejected() {
    for seed in 10..14 {
        let mut sim = Sim::new(seed, LOSSY);
        let all = circle_of(&mut sim, 5, LOSSY);
        let (ana, eli) = (all[0], all[4]);
        sim.post(eli, "before removal");
        sim.settle();
        let eli_id = sim.members[eli].circle.me();
        // A modified client that ignores her removal: her state just before it.
        let mut eli_stale = sim.members[eli].circle.clone();
        let commit = sim.members[ana]
            .circle
            .remove_member(&eli_id, sim.now, &mut sim.rng)
            .unwrap();
        sim.keep_own(ana, &commit);
        sim.broadcast(ana, &commit.bytes);
        sim.settle();
        let remaining = &all[..4];
        sim.assert_converged(remaining);
        assert!(
            !sim.members[ana]
                .circle
                .membership()
                .members
                .contains_key(&eli_id)
        );
        // Eli still receives every byte (she is still on the network) but opens nothing new.
        let mut after = BTreeSet::new();
        for &i in remaining {
            after.insert(sim.post(i, "after removal"));
        }
        sim.settle();
        for id in &after {
            assert!(
                !sim.members[eli].read.contains_key(id),
                "the removed member read a new message {}",
                sim.ctx()
            );
            for &i in remaining {
                assert!(
                    sim.members[i].read.contains_key(id),
                    "a remaining member misses a message {}",
                    sim.ctx()
                );
            }
        }
        // Her new entries (written in the only epoch she still has) are rejected by everyone.
        let forged = sim.members[eli].circle.post(
            &Content::Text {
                body: "I am still here".parse().unwrap(),
                reply_to: None,
                content_warning: None,
            },
            sim.now,
            &mut sim.rng,
        );
        // Her own view says she is out; she cannot even write.
        assert!(
            forged.is_err(),
            "a removed member's circle let her write {}",
            sim.ctx()
        );
        // A modified client writes anyway, in the old epoch, at her next position.
        let stale = eli_stale
            .post(
                &Content::Text {
                    body: "still here".parse().unwrap(),
                    reply_to: None,
                    content_warning: None,
                },
                sim.now,
                &mut sim.rng,
            )
            .unwrap();
        let bytes = stale.bytes;
        for &i in remaining {
            let err = sim.receive(i, &bytes).unwrap_err();
            assert_eq!(
                err,
                Rejection::Membership(ControlRejection::AfterDeparture),
                "{}",
                sim.ctx()
            );
        }
    }
}

#[test]
fn concurrent_commits_by_two_facilitators_converge_and_lose_no_message() {
    for seed in 20..26 {
        let mut sim = Sim::new(seed, LOSSY);
        let all = circle_of(&mut sim, 5, LOSSY);
        let (ana, ben, dev) = (all[0], all[1], all[3]);
        let ben_id = sim.members[ben].circle.me();
        let promote = sim.members[ana]
            .circle
            .promote(&ben_id, sim.now, &mut sim.rng)
            .unwrap();
        sim.keep_own(ana, &promote);
        sim.broadcast(ana, &promote.bytes);
        sim.settle();
        // Concurrently: Ana removes Dev while Ben rotates the epoch (Ben's commit still
        // delivers a key to Dev, which must not let Dev read what comes after).
        let dev_id = sim.members[dev].circle.me();
        let c1 = sim.members[ana]
            .circle
            .remove_member(&dev_id, sim.now, &mut sim.rng)
            .unwrap();
        let c2 = sim.members[ben]
            .circle
            .rotate(sim.now, &mut sim.rng)
            .unwrap();
        sim.keep_own(ana, &c1);
        sim.keep_own(ben, &c2);
        sim.broadcast(ana, &c1.bytes);
        sim.broadcast(ben, &c2.bytes);
        // Members keep talking while the commits cross.
        let mut during = BTreeSet::new();
        for &i in &[all[0], all[1], all[2], all[4]] {
            during.insert(sim.post(i, "while the commits cross"));
        }
        sim.settle();
        let remaining = [all[0], all[1], all[2], all[4]];
        sim.assert_converged(&remaining);
        let state = sim.members[ana].circle.membership().clone();
        assert!(
            !state.members.contains_key(&dev_id),
            "removal must win {}",
            sim.ctx()
        );
        assert_eq!(
            state.leaves().len(),
            1,
            "the fork was not repaired {}",
            sim.ctx()
        );
        assert_eq!(
            state.current_epoch().unwrap().recipients,
            sim.ids(&remaining),
            "{}",
            sim.ctx()
        );
        let mut after = BTreeSet::new();
        for &i in &remaining {
            after.insert(sim.post(i, "after the repair"));
        }
        sim.settle();
        for &i in &remaining {
            for id in during.iter().chain(after.iter()) {
                assert!(
                    sim.members[i].read.contains_key(id),
                    "{} lost a message {}",
                    sim.members[i].name,
                    sim.ctx()
                );
            }
        }
        for id in &after {
            assert!(
                !sim.members[dev].read.contains_key(id),
                "the removed member read a message after the repair {}",
                sim.ctx()
            );
        }
    }
}

#[test]
fn concurrent_additions_by_two_facilitators_converge() {
    for seed in 30..34 {
        let mut sim = Sim::new(seed, LOSSY);
        let all = circle_of(&mut sim, 3, LOSSY);
        let (ana, ben) = (all[0], all[1]);
        let ben_id = sim.members[ben].circle.me();
        let promote = sim.members[ana]
            .circle
            .promote(&ben_id, sim.now, &mut sim.rng)
            .unwrap();
        sim.keep_own(ana, &promote);
        sim.broadcast(ana, &promote.bytes);
        sim.settle();
        sim.net = LOSSY;
        let fay = sim.admit(ana, "Fay", Role::Member);
        let gus = sim.admit(ben, "Gus", Role::Member);
        sim.settle();
        let everyone = [all[0], all[1], all[2], fay, gus];
        sim.assert_converged(&everyone);
        let mut after = BTreeSet::new();
        for &i in &everyone {
            after.insert(sim.post(i, "hello from the merged circle"));
        }
        sim.settle();
        for &i in &everyone {
            for id in &after {
                assert!(
                    sim.members[i].read.contains_key(id),
                    "{} misses a message {}",
                    sim.members[i].name,
                    sim.ctx()
                );
            }
        }
    }
}

#[test]
fn member_offline_for_a_thousand_entries_catches_up_from_one_peer() {
    let mut sim = Sim::new(40, LOSSY);
    let all = circle_of(&mut sim, 4, LOSSY);
    let chloe = all[2];
    sim.members[chloe].online = false;
    let mut posted = BTreeSet::new();
    for n in 0..1000 {
        let author = [all[0], all[1], all[3]][n % 3];
        posted.insert(sim.post(author, "while Chloe is away"));
        if n == 500 {
            // A scheduled rotation in the middle: Chloe must still get that epoch's key.
            let rotation = sim.members[all[0]]
                .circle
                .rotate(sim.now, &mut sim.rng)
                .unwrap();
            sim.keep_own(all[0], &rotation);
            sim.broadcast(all[0], &rotation.bytes);
        }
        sim.now += 5;
        sim.step(10);
    }
    sim.settle();
    sim.members[chloe].online = true;
    let accepted = sim.sync(all[1], chloe);
    assert!(
        accepted >= 1000,
        "only {accepted} entries were accepted {}",
        sim.ctx()
    );
    let read: BTreeSet<EntryId> = sim.members[chloe].read.keys().copied().collect();
    assert!(
        posted.is_subset(&read),
        "Chloe misses {} entries {}",
        posted.difference(&read).count(),
        sim.ctx()
    );
    assert_eq!(
        sim.members[chloe].circle.marks(),
        sim.members[all[1]].circle.marks()
    );
    assert_eq!(sim.members[chloe].circle.pending_count(), 0);
}

#[test]
fn newcomer_reads_no_history_unless_the_circle_shares_it() {
    for share in [false, true] {
        let mut sim = Sim::new(50, PERFECT);
        let settings = CircleSettings {
            share_history: share,
            ..CircleSettings::default()
        };
        let ana = sim.create("Ana", settings);
        let ben = sim.admit(ana, "Ben", Role::Member);
        sim.run(1000);
        let mut history = BTreeSet::new();
        for _ in 0..5 {
            history.insert(sim.post(ana, "before Hana"));
            history.insert(sim.post(ben, "before Hana"));
        }
        sim.settle();
        let hana = sim.admit(ana, "Hana", Role::Member);
        // Written before Ben learned of her addition: in the old epoch, history to her.
        let concurrent = sim.post(ben, "just before Hana");
        sim.settle();
        assert_eq!(
            sim.members[hana].read.contains_key(&concurrent),
            share,
            "the previous epoch is history: readable only when shared"
        );
        let welcome_time_new = sim.post(ben, "welcome Hana");
        sim.settle();
        assert!(sim.members[hana].read.contains_key(&welcome_time_new));
        let read_history = history
            .iter()
            .filter(|id| sim.members[hana].read.contains_key(id))
            .count();
        if share {
            assert_eq!(
                read_history,
                history.len(),
                "shared history must be readable"
            );
        } else {
            assert_eq!(
                read_history, 0,
                "the newcomer read history the circle does not share"
            );
            // Even when a peer hands her the old entries, they stay sealed.
            for ((author, seq), bytes) in sim.members[ana].stored.clone() {
                let _ = (author, seq);
                let _ = sim.receive(hana, &bytes);
            }
            assert_eq!(
                history
                    .iter()
                    .filter(|id| sim.members[hana].read.contains_key(id))
                    .count(),
                0
            );
        }
    }
}

#[test]
fn forged_replayed_and_non_member_entries_are_rejected() {
    let mut sim = Sim::new(60, PERFECT);
    let all = circle_of(&mut sim, 3, PERFECT);
    let (ana, ben) = (all[0], all[1]);
    let id = sim.post(ana, "a real message");
    sim.settle();
    let bytes = sim.members[ana].stored.values().last().unwrap().clone();
    let before = sim.members[ben].circle.marks();

    // Forged: one bit of the signed body changed.
    let mut forged = bytes.clone();
    let at = forged.len() - 70;
    forged[at] ^= 0x01;
    assert!(matches!(
        sim.receive(ben, &forged),
        Err(Rejection::Invalid(_))
    ));

    // Replayed: exactly the same bytes again change nothing.
    let receipt = sim.members[ben].circle.receive(&bytes).unwrap();
    assert!(receipt.duplicate && receipt.accepted.is_empty());
    assert_eq!(sim.members[ben].circle.marks(), before);
    assert!(sim.members[ben].read.contains_key(&id));

    // Non-member: a stranger who knows the epoch id (it travels in the clear) writes in it.
    let stranger_key = MemberSecret::generate(&mut sim.rng);
    let mut stranger = sim.members[ana].circle.clone();
    let _ = &mut stranger;
    let entry = hearth_proto::entry::Entry::decode_and_verify(&bytes)
        .unwrap()
        .0;
    let mut unsigned = entry.unsigned.clone();
    unsigned.author = stranger_key.id();
    unsigned.seq = 0;
    unsigned.prev = None;
    let outsider = unsigned.sign(&stranger_key).encode();
    let err = sim.receive(ben, &outsider).unwrap_err();
    assert_eq!(err, Rejection::Membership(ControlRejection::NotAMember));
    assert_eq!(sim.members[ben].circle.marks(), before);

    // Garbage and truncations never panic and change nothing.
    for cut in [0, 1, 10, bytes.len() / 2, bytes.len() - 1] {
        assert!(sim.receive(ben, &bytes[..cut]).is_err());
    }
    assert_eq!(sim.members[ben].circle.marks(), before);
}

#[test]
fn scheduled_rotation_and_key_update_keep_everyone_reading() {
    let mut sim = Sim::new(70, LOSSY);
    let all = circle_of(&mut sim, 4, LOSSY);
    sim.now += 8 * DAY_MS;
    assert!(sim.members[all[0]].circle.rotation_due(sim.now));
    let r = sim.members[all[2]]
        .circle
        .rotate(sim.now, &mut sim.rng)
        .unwrap();
    sim.keep_own(all[2], &r);
    sim.broadcast(all[2], &r.bytes);
    let k = sim.members[all[1]]
        .circle
        .rotate_my_key(sim.now, &mut sim.rng)
        .unwrap();
    sim.keep_own(all[1], &k);
    sim.broadcast(all[1], &k.bytes);
    sim.settle();
    sim.assert_converged(&all);
    let mut after = BTreeSet::new();
    for &i in &all {
        after.insert(sim.post(i, "after rotations"));
    }
    sim.settle();
    for &i in &all {
        for id in &after {
            assert!(sim.members[i].read.contains_key(id), "{}", sim.ctx());
        }
    }
}

/// A history with promotions, a removal, concurrent commits, a repair, a key update, goals and
/// check-ins; and the state of a passive observer right after she joined.
fn recorded_history(seed: u64) -> (Circle, Vec<Vec<u8>>, Sim, usize) {
    let mut sim = Sim::new(seed, PERFECT);
    let ana = sim.create("Ana", CircleSettings::default());
    let obi = sim.admit(ana, "Obi", Role::Member);
    sim.run(1000);
    let baseline = sim.members[obi].circle.clone();
    sim.net = LOSSY;
    let ben = sim.admit(ana, "Ben", Role::Member);
    let chloe = sim.admit(ana, "Chloe", Role::Member);
    let dev = sim.admit(ana, "Dev", Role::Member);
    sim.settle();
    let ben_id = sim.members[ben].circle.me();
    let p = sim.members[ana]
        .circle
        .promote(&ben_id, sim.now, &mut sim.rng)
        .unwrap();
    sim.keep_own(ana, &p);
    sim.broadcast(ana, &p.bytes);
    sim.settle();
    for &i in &[ana, ben, chloe, dev] {
        sim.post(i, "hello");
    }
    let goal = Content::Goal {
        title: "Walk every day".parse().unwrap(),
        why: Some("for my head".parse().unwrap()),
        cadence: hearth_proto::content::Cadence::Daily,
        visibility: hearth_proto::content::Visibility::Circle,
        grace_days: hearth_proto::content::GraceDays::new(1).unwrap(),
        rest_days: hearth_proto::content::RestDays::NONE,
        start: hearth_proto::content::LocalDay::new(20_000).unwrap(),
    };
    let g = sim.members[chloe]
        .circle
        .post(&goal, sim.now, &mut sim.rng)
        .unwrap();
    sim.keep_own(chloe, &g);
    sim.broadcast(chloe, &g.bytes);
    for day in 0..5 {
        let c = Content::CheckIn {
            goal: g.id,
            day: hearth_proto::content::LocalDay::new(20_000 + day).unwrap(),
            outcome: hearth_proto::content::Outcome::Done,
            note: None,
            mood: Some(hearth_proto::content::Mood::new(4).unwrap()),
        };
        let a = sim.members[chloe]
            .circle
            .post(&c, sim.now, &mut sim.rng)
            .unwrap();
        sim.keep_own(chloe, &a);
        sim.broadcast(chloe, &a.bytes);
    }
    let dev_id = sim.members[dev].circle.me();
    let c1 = sim.members[ana]
        .circle
        .remove_member(&dev_id, sim.now, &mut sim.rng)
        .unwrap();
    let c2 = sim.members[ben]
        .circle
        .rotate(sim.now, &mut sim.rng)
        .unwrap();
    sim.keep_own(ana, &c1);
    sim.keep_own(ben, &c2);
    sim.broadcast(ana, &c1.bytes);
    sim.broadcast(ben, &c2.bytes);
    sim.settle();
    let k = sim.members[chloe]
        .circle
        .rotate_my_key(sim.now, &mut sim.rng)
        .unwrap();
    sim.keep_own(chloe, &k);
    sim.broadcast(chloe, &k.bytes);
    sim.post(chloe, "new key, same me");
    sim.settle();
    let mut all: BTreeMap<(MemberId, u64), Vec<u8>> = BTreeMap::new();
    for m in &sim.members {
        all.extend(m.stored.clone());
    }
    (baseline, all.into_values().collect(), sim, obi)
}

fn observed(circle: &Circle) -> (String, Option<hearth_proto::ids::EpochId>) {
    (
        format!("{:?}", circle.membership().members),
        circle.membership().current_epoch().map(|e| e.id),
    )
}

/// What a reader sees: readable entries still valid under the final membership (an entry
/// accepted before a later-arriving removal made it invalid is hidden, as views do).
fn valid_read(
    circle: &Circle,
    read: &BTreeMap<EntryId, (MemberId, u64, Content)>,
    entries: &BTreeMap<EntryId, hearth_proto::entry::Entry>,
) -> BTreeMap<EntryId, (MemberId, u64, Content)> {
    read.iter()
        .filter(|(id, _)| {
            entries
                .get(id)
                .is_some_and(|e| circle.check_writer(e).is_ok())
        })
        .map(|(id, v)| (*id, v.clone()))
        .collect()
}

#[test]
fn any_delivery_order_gives_the_same_membership_epoch_and_progress() {
    use proptest::prelude::*;
    let (baseline, entries, sim, obi) = recorded_history(80);
    let reference = &sim.members[obi];
    let expected = observed(&reference.circle);
    let all_entries: BTreeMap<EntryId, hearth_proto::entry::Entry> = entries
        .iter()
        .map(|b| {
            let (e, id) = hearth_proto::entry::Entry::decode_and_verify(b).unwrap();
            (id, e)
        })
        .collect();
    let reference_read = valid_read(&reference.circle, &reference.read, &all_entries);
    let expected_read: BTreeSet<EntryId> = reference_read.keys().copied().collect();
    let expected_progress = progress_of(&reference_read);
    proptest!(ProptestConfig::with_cases(24), |(order_seed in any::<u64>(), dup in 0usize..5)| {
        let mut rng = ChaCha20Rng::seed_from_u64(order_seed);
        let mut shuffled = entries.clone();
        for i in (1..shuffled.len()).rev() {
            let j = (rng.next_u32() as usize) % (i + 1);
            shuffled.swap(i, j);
        }
        // Some duplicates, delivered again later.
        let extra: Vec<Vec<u8>> = shuffled.iter().take(dup * 3).cloned().collect();
        shuffled.extend(extra);
        let mut circle = baseline.clone();
        let mut read = BTreeMap::new();
        let mut stored = Vec::new();
        // Entries of an author not known yet (her addition comes later in this order) are not
        // held; sync offers them again, as the later passes do here.
        for _pass in 0..4 {
            let mut moved = false;
            for bytes in &shuffled {
                if let Ok(receipt) = circle.receive(bytes) {
                    for a in receipt.accepted {
                        moved = true;
                        stored.push(a.entry.clone());
                        if let Opened::Content(c) = a.opened { read.insert(a.id, (a.entry.author(), a.entry.seq(), c)); }
                    }
                }
            }
            if !moved {
                break;
            }
        }
        for entry in &stored {
            if let Opened::Content(c) = circle.open(entry) { read.insert(entry.id(), (entry.author(), entry.seq(), c)); }
        }
        let got = observed(&circle);
        prop_assert_eq!(&got.0, &expected.0, "members differ");
        prop_assert_eq!(&got.1, &expected.1, "current epoch differs");
        let read = valid_read(&circle, &read, &all_entries);
        prop_assert_eq!(read.keys().copied().collect::<BTreeSet<_>>(), expected_read.clone());
        prop_assert_eq!(progress_of(&read), expected_progress.clone());
    });
}

fn progress_of(read: &BTreeMap<EntryId, (MemberId, u64, Content)>) -> String {
    let events: Vec<hearth_proto::progress::ProgressEvent> = read
        .iter()
        .filter(|(_, (_, _, c))| {
            matches!(
                c,
                Content::Goal { .. } | Content::CheckIn { .. } | Content::GoalStatus { .. }
            )
        })
        .map(
            |(id, (author, seq, c))| hearth_proto::progress::ProgressEvent {
                entry: *id,
                author: *author,
                seq: *seq,
                made_at_ms: 0,
                content: c.clone(),
            },
        )
        .collect();
    assert!(!events.is_empty(), "the history has goal entries");
    format!(
        "{:?}",
        hearth_proto::progress::goal_progress(
            &events,
            hearth_proto::content::LocalDay::new(20_005).unwrap()
        )
    )
}

fn post_content(sim: &mut Sim, idx: usize, content: &Content) -> Authored {
    let authored = sim.members[idx]
        .circle
        .post(content, sim.now, &mut sim.rng)
        .unwrap();
    sim.keep_own(idx, &authored);
    sim.broadcast(idx, &authored.bytes);
    authored
}

#[test]
fn a_done_only_note_opens_for_its_author_and_no_one_else() {
    use hearth_proto::content::{
        Cadence, GraceDays, LocalDay, Outcome, PrivatePart, RestDays, Visibility,
    };
    let mut sim = Sim::new(90, LOSSY);
    let all = circle_of(&mut sim, 3, LOSSY);
    let (ana, chloe) = (all[0], all[2]);
    let goal = post_content(
        &mut sim,
        chloe,
        &Content::Goal {
            title: "No drinking".parse().unwrap(),
            why: None,
            cadence: Cadence::Daily,
            visibility: Visibility::DoneOnly,
            grace_days: GraceDays::NONE,
            rest_days: RestDays::NONE,
            start: LocalDay::new(20_000).unwrap(),
        },
    );
    let part = PrivatePart {
        outcome: Outcome::Done,
        note: Some("hard evening, called my sponsor".parse().unwrap()),
        mood: Some(hearth_proto::content::Mood::new(2).unwrap()),
    };
    let sealed = sim.members[chloe]
        .circle
        .seal_private_check_in(goal.id, LocalDay::new(20_000).unwrap(), &part, &mut sim.rng)
        .unwrap();
    let check_in = post_content(&mut sim, chloe, &sealed);
    sim.settle();
    let (_, _, seen_by_ana) = sim.members[ana]
        .read
        .get(&check_in.id)
        .cloned()
        .expect("Ana reads that Chloe checked in");
    assert!(matches!(
        seen_by_ana,
        Content::PrivateCheckIn { done: true, .. }
    ));
    assert_eq!(
        sim.members[ana].circle.open_private_check_in(&seen_by_ana),
        None,
        "another member opened the private part"
    );
    let opened = sim.members[chloe]
        .circle
        .open_private_check_in(&seen_by_ana)
        .expect("the author opens her own note");
    assert!(opened == part);
    // The note's words appear nowhere in what Ana decrypted.
    let decrypted = seen_by_ana.encode();
    assert!(
        !decrypted.windows(7).any(|w| w == b"sponsor"),
        "the private note is readable in the decrypted content"
    );
}

#[test]
fn facilitators_hide_entries_and_members_cannot() {
    let mut sim = Sim::new(91, LOSSY);
    let all = circle_of(&mut sim, 3, LOSSY);
    let (ana, ben) = (all[0], all[1]);
    let id = sim.post(ben, "something that breaks the guidelines");
    sim.settle();
    assert_eq!(
        sim.members[ben]
            .circle
            .hide(&id, sim.now, &mut sim.rng)
            .unwrap_err(),
        hearth_proto::circle::CircleError::NotFacilitator
    );
    let hide = sim.members[ana]
        .circle
        .hide(&id, sim.now, &mut sim.rng)
        .unwrap();
    sim.keep_own(ana, &hide);
    sim.broadcast(ana, &hide.bytes);
    sim.settle();
    for &i in &all {
        assert!(
            sim.members[i].circle.membership().hidden.contains_key(&id),
            "{}",
            sim.ctx()
        );
    }
}

#[test]
fn a_circle_whose_last_facilitator_leaves_is_not_stuck() {
    let mut sim = Sim::new(92, LOSSY);
    let all = circle_of(&mut sim, 4, LOSSY);
    let (ana, ben) = (all[0], all[1]);
    let leave = sim.members[ana]
        .circle
        .leave(sim.now, &mut sim.rng)
        .unwrap();
    sim.keep_own(ana, &leave);
    sim.broadcast(ana, &leave.bytes);
    sim.settle();
    let rest = &all[1..];
    sim.assert_converged(rest);
    let state = sim.members[ben].circle.membership();
    let ben_id = sim.members[ben].circle.me();
    assert!(
        state.is_facilitator(&ben_id),
        "the longest-standing member becomes facilitator"
    );
    assert!(!state.members.contains_key(&sim.members[ana].circle.me()));
    // The repair after her leaving gave the rest a key she does not have.
    assert!(!state.repair_due());
    let id = sim.post(all[2], "still here for each other");
    sim.settle();
    assert!(
        !sim.members[ana].read.contains_key(&id),
        "the member who left read a new message"
    );
    assert!(sim.members[ben].read.contains_key(&id));
    // Ben can now facilitate: update guidelines, which members accept.
    let g = sim.members[ben]
        .circle
        .update_guidelines(
            "Be kind. Speak from your own experience.",
            sim.now,
            &mut sim.rng,
        )
        .unwrap();
    sim.keep_own(ben, &g);
    sim.broadcast(ben, &g.bytes);
    sim.settle();
    for &i in rest {
        assert_eq!(sim.members[i].circle.membership().guidelines.0, 2);
    }
}

#[test]
fn retention_floors_survive_a_restore_and_old_entries_are_not_taken_back() {
    let mut sim = Sim::new(93, PERFECT);
    let all = circle_of(&mut sim, 2, PERFECT);
    let (ana, ben) = (all[0], all[1]);
    for i in 0..6 {
        sim.post(ana, &format!("message {i}"));
    }
    sim.settle();
    let ana_id = sim.members[ana].circle.me();
    let ben_circle = &sim.members[ben].circle;
    let (head, _) = ben_circle.logs().head(&ana_id).unwrap();
    let marks = ben_circle.marks();
    // Ben's node deleted Ana's entries up to `floor` (retention) and raises the floor.
    let floor = head - 3;
    let old: Vec<Vec<u8>> = (0..=floor)
        .filter_map(|seq| sim.members[ben].stored.remove(&(ana_id, seq)))
        .collect();
    assert!(old.len() >= 3, "ben held some of what is deleted");
    let mut circle = sim.members[ben].circle.clone();
    let floor_id = circle.logs().id_at(&ana_id, floor).unwrap();
    assert_eq!(
        circle.raise_floors(&BTreeMap::from([(ana_id, (floor, floor_id))])),
        1
    );
    assert_eq!(circle.marks(), marks, "the marks do not move");
    // A restart: the snapshot keeps the floor, the stored entries above it go back in place.
    let positions: Vec<(MemberId, u64, EntryId)> = sim.members[ben]
        .stored
        .values()
        .map(|bytes| {
            let (entry, id) = hearth_proto::entry::Entry::decode_and_verify(bytes).unwrap();
            (entry.author(), entry.seq(), id)
        })
        .collect();
    let mut restored = Circle::restore(&circle.snapshot(), positions).unwrap();
    assert_eq!(
        restored.marks(),
        marks,
        "nothing is missing after a restart"
    );
    assert_eq!(
        restored.logs().anchor_of(&ana_id).map(|(s, _)| s),
        Some(floor)
    );
    // A peer that still holds the deleted entries offers nothing to a member past them, and
    // replays of them are not taken back.
    assert!(
        sim.members[ana]
            .circle
            .lacking(&restored.marks())
            .is_empty()
    );
    for bytes in &old {
        let receipt = restored.receive(bytes).unwrap();
        assert!(receipt.accepted.is_empty() && receipt.duplicate);
    }
    // Only what is still held is offered to others.
    let offered = restored.lacking(&hearth_proto::sync::HighWaterMarks::new());
    let from_ana = offered.iter().find(|w| w.author == ana_id).unwrap();
    assert_eq!(from_ana.from_seq, floor + 1);
    // And new entries still arrive.
    let id = sim.post(ana, "after the floor");
    let bytes = sim.members[ana].stored[&(ana_id, head + 1)].clone();
    let receipt = restored.receive(&bytes).unwrap();
    assert_eq!(receipt.accepted.len(), 1);
    assert_eq!(receipt.accepted[0].id, id);
}

#[test]
fn forgotten_epoch_secrets_stay_forgotten_after_a_restore() {
    let mut sim = Sim::new(94, PERFECT);
    let all = circle_of(&mut sim, 3, PERFECT);
    let ben = all[1];
    let old = sim.post(all[0], "in the old epoch");
    sim.settle();
    // A new epoch supersedes the one the message was written in.
    let commit = sim.members[all[0]]
        .circle
        .rotate(sim.now, &mut sim.rng)
        .unwrap();
    sim.keep_own(all[0], &commit);
    sim.broadcast(all[0], &commit.bytes);
    sim.settle();
    let circle = &mut sim.members[ben].circle;
    let before = circle.held_epochs();
    let later = sim.now + hearth_proto::circle::DEFAULT_KEY_RETENTION_MS + 1;
    let forgotten = circle.forget_expired_keys(later);
    assert!(!forgotten.is_empty());
    let positions: Vec<(MemberId, u64, EntryId)> = sim.members[ben]
        .stored
        .values()
        .map(|bytes| {
            let (entry, id) = hearth_proto::entry::Entry::decode_and_verify(bytes).unwrap();
            (entry.author(), entry.seq(), id)
        })
        .collect();
    let restored = Circle::restore(&sim.members[ben].circle.snapshot(), positions).unwrap();
    let held = restored.held_epochs();
    assert_eq!(held, sim.members[ben].circle.held_epochs());
    assert!(held.len() < before.len());
    // The old message no longer opens, even though the commits carrying its epoch's key
    // (to this member's X25519 key) are still part of the state.
    let bytes = sim.members[ben]
        .stored
        .values()
        .find(|b| hearth_proto::entry::Entry::decode_and_verify(b).unwrap().1 == old)
        .unwrap()
        .clone();
    let (entry, _) = hearth_proto::entry::Entry::decode_and_verify(&bytes).unwrap();
    assert!(matches!(restored.open(&entry), Opened::Sealed));
}

#[test]
fn a_newcomer_sharing_history_starts_at_her_inviters_retention_floors() {
    let mut sim = Sim::new(95, PERFECT);
    let settings = CircleSettings {
        share_history: true,
        ..CircleSettings::default()
    };
    let ana = sim.create("Ana", settings);
    let ben = sim.admit(ana, "Ben", Role::Member);
    sim.run(100_000);
    for i in 0..6 {
        sim.post(ana, &format!("old {i}"));
        sim.post(ben, &format!("old from ben {i}"));
    }
    sim.settle();
    // Ana's node deleted the oldest entries of both logs (retention) and raised floors.
    let (ana_id, ben_id) = (sim.members[ana].circle.me(), sim.members[ben].circle.me());
    let floors = BTreeMap::from([(ana_id, 4), (ben_id, 3)]);
    let logs = sim.members[ana].circle.logs();
    let with_ids = floors
        .iter()
        .map(|(author, seq)| (*author, (*seq, logs.id_at(author, *seq).unwrap())))
        .collect();
    assert_eq!(sim.members[ana].circle.raise_floors(&with_ids), 2);
    for (author, floor) in &floors {
        for seq in 0..=*floor {
            sim.members[ana].stored.remove(&(*author, seq));
        }
    }
    // Cy joins through Ana and syncs only with her: nothing is left waiting for entries that
    // no longer exist anywhere she asks.
    let cy = sim.admit(ana, "Cy", Role::Member);
    sim.run(100_000);
    sim.sync(ana, cy);
    let cy_circle = &sim.members[cy].circle;
    assert_eq!(cy_circle.pending_count(), 0);
    assert_eq!(cy_circle.logs().anchor_of(&ben_id).map(|(s, _)| s), Some(3));
    assert_eq!(cy_circle.marks(), sim.members[ana].circle.marks());
    let newest = sim.post(ben, "after cy joined");
    sim.settle();
    assert!(sim.members[cy].read.contains_key(&newest));
    assert!(
        sim.members[cy].read.len() >= 6,
        "cy reads the history above the floors"
    );
}

#[test]
fn a_restore_from_a_stale_snapshot_still_writes_after_everything_seen() {
    let mut sim = Sim::new(93, PERFECT);
    let all = circle_of(&mut sim, 2, PERFECT);
    let (ana, ben) = (all[0], all[1]);
    // Ben's state is saved here; then he receives more entries before a crash.
    let stale = sim.members[ben].circle.snapshot();
    for _ in 0..5 {
        sim.post(ana, "after Ben's last save");
    }
    sim.run(1000);
    let seen = sim.members[ben].circle.clone();
    let logs = seen.logs();
    let mut positions: Vec<(MemberId, u64, EntryId)> = Vec::new();
    for author in logs.authors() {
        let (head, _) = logs.head(&author).unwrap();
        for seq in 0..=head {
            if let Some(id) = logs.id_at(&author, seq) {
                positions.push((author, seq, id));
            }
        }
    }
    let max_lamport = sim.members[ben]
        .stored
        .values()
        .map(|b| {
            hearth_proto::entry::Entry::decode_and_verify(b)
                .unwrap()
                .0
                .unsigned
                .lamport
        })
        .max()
        .unwrap();
    let mut restored = Circle::restore(&stale, positions).unwrap();
    restored.observe_lamport(max_lamport);
    let text = Content::Text {
        body: "back after a crash".parse().unwrap(),
        reply_to: None,
        content_warning: None,
    };
    let reply = restored.post(&text, sim.now, &mut sim.rng).unwrap();
    assert!(
        reply.entry.unsigned.lamport > max_lamport,
        "a post after restore sorts before entries its author had seen"
    );
}
