//! Sequences of group operations: members post, rotate, leave, are removed and admitted, and
//! the network delivers their entries late, twice, to some members only, or corrupted, in an
//! order the input chooses. Nothing panics, and **a member who departed never opens a post
//! written by a member who already knew of her departure** (removal and leaving revoke access).
#![no_main]

use std::collections::BTreeSet;

use hearth_proto::circle::{Circle, CircleError, Opened};
use hearth_proto::content::Content;
use hearth_proto::identity::MemberSecret;
use hearth_proto::ids::{EntryId, MemberId};
use hearth_proto::membership::{CircleSettings, Role};
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

const T0: u64 = 1_750_000_000_000;
/// Members at most (three to start, newcomers up to this).
const MAX_MEMBERS: usize = 5;
/// Entries in flight at most.
const MAX_QUEUE: usize = 64;

/// A post and who must never open it: the members its author knew to have departed.
struct Written {
    id: EntryId,
    bytes: Vec<u8>,
    barred: BTreeSet<MemberId>,
}

struct World {
    rng: ChaCha20Rng,
    now: u64,
    members: Vec<Circle>,
    queue: Vec<Written>,
}

impl World {
    fn new() -> Option<World> {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let me = MemberSecret::generate(&mut rng);
        let (ana, _) = Circle::create(
            "c",
            "be kind",
            CircleSettings::default(),
            "Ana",
            me,
            T0,
            &mut rng,
        )
        .ok()?;
        let mut world = World {
            rng,
            now: T0,
            members: vec![ana],
            queue: Vec::new(),
        };
        world.admit();
        world.admit();
        // Everyone starts from the same state.
        world.deliver_all();
        Some(world)
    }

    fn written(&mut self, author: usize, bytes: Vec<u8>, id: EntryId) {
        let barred = self.members[author]
            .membership()
            .departed
            .keys()
            .copied()
            .collect();
        if self.queue.len() >= MAX_QUEUE {
            self.queue.remove(0);
        }
        self.queue.push(Written { id, bytes, barred });
    }

    /// `author` writes with `write`; a re-key she owes first comes as a rotation.
    fn write(
        &mut self,
        author: usize,
        write: impl Fn(&mut Circle, u64, &mut ChaCha20Rng) -> Result<(Vec<u8>, EntryId), CircleError>,
    ) {
        self.now += 1000;
        let (now, mut rng) = (self.now, self.rng.clone());
        let circle = &mut self.members[author];
        let result = match write(circle, now, &mut rng) {
            Err(CircleError::RekeyPending) => match circle.rotate(now, &mut rng) {
                Ok(repair) => {
                    let (bytes, id) = (repair.bytes.clone(), repair.id);
                    self.rng = rng.clone();
                    self.written(author, bytes, id);
                    write(&mut self.members[author], now + 1, &mut rng)
                }
                Err(e) => Err(e),
            },
            other => other,
        };
        self.rng = rng;
        if let Ok((bytes, id)) = result {
            self.written(author, bytes, id);
        }
    }

    fn admit(&mut self) {
        if self.members.len() >= MAX_MEMBERS {
            return;
        }
        self.now += 1000;
        let newcomer = MemberSecret::generate(&mut self.rng);
        let name = format!("m{}", self.members.len());
        let Ok((commit, welcome)) = self.members[0].admit(
            newcomer.public(),
            Role::Member,
            &name,
            1,
            self.now,
            &mut self.rng,
        ) else {
            return;
        };
        let Ok(joined) = Circle::join(&welcome, newcomer) else {
            panic!("a welcome from an honest facilitator must open");
        };
        self.written(0, commit.bytes.clone(), commit.id);
        self.members.push(joined);
    }

    fn deliver(&mut self, k: usize, to: usize, corrupt: Option<(usize, u8)>) {
        let Some(w) = self.queue.get(k) else { return };
        let mut bytes = w.bytes.clone();
        if let Some((at, flip)) = corrupt
            && !bytes.is_empty()
        {
            let at = at % bytes.len();
            bytes[at] ^= flip.max(1);
        }
        let circle = &mut self.members[to];
        let me = circle.me();
        if let Ok(receipt) = circle.receive_at(&bytes, self.now) {
            for accepted in &receipt.accepted {
                let opened = matches!(accepted.opened, Opened::Content(_));
                let barred = self
                    .queue
                    .iter()
                    .any(|w| w.id == accepted.id && w.barred.contains(&me));
                assert!(
                    !(opened && barred),
                    "a departed member opened a post written after her departure was known"
                );
            }
        }
    }

    fn deliver_all(&mut self) {
        for _ in 0..3 {
            for k in 0..self.queue.len() {
                for to in 0..self.members.len() {
                    self.deliver(k, to, None);
                }
            }
        }
    }
}

fn text(n: u8) -> Content {
    Content::Text {
        body: format!("post {n}").parse().expect("a valid message body"),
        reply_to: None,
        content_warning: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(mut world) = World::new() else {
        return;
    };
    let mut bytes = data.iter().copied();
    while let Some(op) = bytes.next() {
        let a = usize::from(bytes.next().unwrap_or(0)) % world.members.len();
        let b = bytes.next().unwrap_or(0);
        match op % 8 {
            0 => world.write(a, |c, now, rng| {
                c.post(&text(b), now, rng).map(|p| (p.bytes, p.id))
            }),
            1 => world.write(a, |c, now, rng| c.rotate(now, rng).map(|p| (p.bytes, p.id))),
            2 => {
                let target = usize::from(b) % world.members.len();
                if target != 0 {
                    let member = world.members[target].me();
                    world.write(0, move |c, now, rng| {
                        c.remove_member(&member, now, rng).map(|p| (p.bytes, p.id))
                    });
                }
            }
            3 if a != 0 => world.write(a, |c, now, rng| c.leave(now, rng).map(|p| (p.bytes, p.id))),
            4 => world.deliver(usize::from(b), a, None),
            5 => {
                for to in 0..world.members.len() {
                    world.deliver(usize::from(b), to, None);
                }
            }
            6 => {
                let at = usize::from(bytes.next().unwrap_or(0));
                world.deliver(usize::from(b), a, Some((at * 7, b)));
            }
            7 => world.admit(),
            _ => {}
        }
    }
    world.deliver_all();
});
