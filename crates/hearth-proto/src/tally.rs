//! The tally: what a circle's screens show that would otherwise need its whole history,
//! folded one entry at a time, so that no read and no write walks the history.
//!
//! A device folds every entry it stores, once, in any order across authors and in seq order
//! within an author (the order in which entries are accepted). The tally remembers, per
//! author, the highest seq it folded ([`Tally::folded`]), so a device that persists the tally
//! now and then refolds only the entries stored after its last save (folding an entry twice
//! changes nothing).
//!
//! Rules (the same as a walk over the whole history would give):
//! - **Names.** A member's display name is her latest [`Content::Profile`] (by lamport), else
//!   the name she joined with in the current membership, else the name the latest (by lamport,
//!   then entry id) `Add` or `Create` of her gave her. A member who was removed or left keeps
//!   that name: the timeline still shows her messages and her joining and leaving, and a
//!   reader should see who they were. Only entries the circle accepted give names, so nobody
//!   who never was a member is ever named.
//! - **Names stop at the cutoff.** A departed member's entries beyond her cutoff
//!   ([`Departure::cutoff`]) never count, but a device may have folded one before it learned
//!   of the removal or the leave. So the tally keeps, with the latest profile, its seq, and a
//!   reader names members through the current membership ([`Tally::display_name`]): a profile
//!   beyond its author's cutoff is not shown, and the name falls back to the one she joined
//!   with. Only the latest profile is kept (an author can write any number), so a departed
//!   member whose latest profile lies beyond her cutoff is named by her `Add` or `Create`,
//!   even if an earlier profile of hers counts.
//! - **Guidelines accepted by entry.** The versions each member accepted with
//!   [`Content::GuidelinesAccepted`]; a reader counts the largest that is not above the
//!   circle's current version ([`Tally::accepted_guidelines`]). At most
//!   [`MAX_ACCEPTED_VERSIONS`] versions are kept per member (the largest ones).
//! - **Last seen.** The largest entry timestamp of each author.
//! - **Goals.** Every goal entry, with its author and visibility, so a check-in can be
//!   presented and the progress reducer ([`crate::progress`]) can be fed one goal's entries at
//!   a time (the store indexes the entries that refer to a goal).
//! - **Rounds.** Every [`Content::RoundOpen`] entry, whoever wrote it (the rounds reducer,
//!   [`crate::rounds`], decides which count), so the rounds screen reads each round and the
//!   entries that refer to it, not the history.
//!
//! Memory: per member two names, at most [`MAX_ACCEPTED_VERSIONS`] versions and two integers;
//! per goal 40 bytes; per round 32 bytes. Nothing per text.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::content::{Content, Visibility};
use crate::ids::{EntryId, MemberId};
use crate::membership::{ControlBody, ControlOp, Departure, Membership};
use crate::wire::{self, DecodeError};

/// How many accepted guidelines versions the tally keeps per member.
pub const MAX_ACCEPTED_VERSIONS: usize = 16;

/// The version byte of an encoded tally. Version 1 kept the first name an `Add` gave (which
/// depends on the folding order); version 2 kept the latest profile without its seq (so a
/// profile written beyond its author's cutoff could not be left out); version 3 did not list
/// the rounds. A device that reads a tally of another version refolds the history.
pub const TALLY_VERSION: u8 = 4;

/// The largest encoded tally [`Tally::decode`] accepts.
pub const MAX_TALLY_BYTES: usize = 16 * 1024 * 1024;

/// A goal as the tally knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TalliedGoal {
    /// Who set it (only her check-ins count).
    pub author: MemberId,
    /// Who sees its check-ins in full.
    pub visibility: Visibility,
}

/// What is folded of one entry.
#[derive(Debug, Clone, Copy)]
pub enum Folded<'a> {
    /// A content entry, opened.
    Content(&'a Content),
    /// A control entry, opened.
    Control(&'a ControlBody),
    /// An entry this member cannot read: only its position and time count.
    Unreadable,
}

/// The position and time of a folded entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldedAt {
    /// Its id.
    pub id: EntryId,
    /// Its author.
    pub author: MemberId,
    /// Its seq in the author's log.
    pub seq: u64,
    /// Its lamport.
    pub lamport: u64,
    /// Its timestamp.
    pub timestamp_ms: u64,
}

/// The name an `Add` or `Create` gave a member, and where that entry stands, so the latest
/// one wins whatever the folding order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Joined {
    lamport: u64,
    entry: EntryId,
    name: String,
}

/// A member's latest profile, and where it stands in her log, so a reader can leave it out
/// once it lies beyond her cutoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Profile {
    lamport: u64,
    seq: u64,
    name: String,
}

impl Profile {
    /// Whether it counts for a member who departed as `departure` says (`None`: she did not).
    fn counts(&self, departure: Option<&Departure>) -> bool {
        departure.is_none_or(|d| d.cutoff.is_some_and(|cutoff| self.seq <= cutoff))
    }
}

/// The folded summary of a circle's history. See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    folded: BTreeMap<MemberId, u64>,
    profiles: BTreeMap<MemberId, Profile>,
    joined: BTreeMap<MemberId, Joined>,
    accepted: BTreeMap<MemberId, BTreeSet<u32>>,
    last_seen: BTreeMap<MemberId, u64>,
    goals: BTreeMap<EntryId, TalliedGoal>,
    rounds: BTreeSet<EntryId>,
}

impl Tally {
    /// An empty tally (no entry folded).
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one entry. Returns `false` (and changes nothing) if an entry at or after this
    /// seq of the same author was already folded.
    pub fn fold(&mut self, at: FoldedAt, body: Folded<'_>) -> bool {
        if self.folded.get(&at.author).is_some_and(|s| *s >= at.seq) {
            return false;
        }
        self.folded.insert(at.author, at.seq);
        let seen = self.last_seen.entry(at.author).or_default();
        *seen = (*seen).max(at.timestamp_ms);
        match body {
            Folded::Content(Content::Profile { display_name }) => {
                let newer = self
                    .profiles
                    .get(&at.author)
                    .is_none_or(|p| p.lamport <= at.lamport);
                if newer {
                    self.profiles.insert(
                        at.author,
                        Profile {
                            lamport: at.lamport,
                            seq: at.seq,
                            name: display_name.to_string(),
                        },
                    );
                }
            }
            Folded::Content(Content::GuidelinesAccepted { version }) => {
                let versions = self.accepted.entry(at.author).or_default();
                versions.insert(*version);
                while versions.len() > MAX_ACCEPTED_VERSIONS {
                    versions.pop_first();
                }
            }
            Folded::Content(Content::RoundOpen { .. }) => {
                self.rounds.insert(at.id);
            }
            Folded::Content(Content::Goal { visibility, .. }) => {
                self.goals.insert(
                    at.id,
                    TalliedGoal {
                        author: at.author,
                        visibility: *visibility,
                    },
                );
            }
            Folded::Control(ControlBody {
                op:
                    ControlOp::Add {
                        member,
                        display_name,
                        ..
                    },
                ..
            }) => self.joined_as(member.id, at, display_name),
            Folded::Control(ControlBody {
                op: ControlOp::Create { display_name, .. },
                ..
            }) => self.joined_as(at.author, at, display_name),
            _ => {}
        }
        true
    }

    /// Records the name an `Add` or `Create` at `at` gave `member`, if it is the latest.
    fn joined_as(&mut self, member: MemberId, at: FoldedAt, name: &str) {
        let newer = self
            .joined
            .get(&member)
            .is_none_or(|j| (j.lamport, j.entry) < (at.lamport, at.id));
        if newer {
            self.joined.insert(
                member,
                Joined {
                    lamport: at.lamport,
                    entry: at.id,
                    name: name.to_owned(),
                },
            );
        }
    }

    /// Per author, the highest seq folded.
    pub fn folded(&self) -> &BTreeMap<MemberId, u64> {
        &self.folded
    }

    /// A member's display name under `membership` (the circle's current one): her latest
    /// profile, unless she departed and it lies beyond her cutoff; else the name she joined
    /// with in `membership`; else the name the history gave her when she joined (a former
    /// member keeps it).
    pub fn display_name(&self, member: &MemberId, membership: &Membership) -> Option<String> {
        // Someone who never was a member is never named: an `Add` folded before its author's
        // removal was known, written beyond her cutoff, named a person the circle never took.
        if !membership.members.contains_key(member) && !membership.departed.contains_key(member) {
            return None;
        }
        let current = membership
            .members
            .get(member)
            .map(|info| info.display_name.as_str());
        self.name_of(member, current, membership.departed.get(member))
            .map(str::to_owned)
    }

    /// Every member, current or former, the tally or `membership` (the circle's current one)
    /// can name, with the name a reader shows ([`Tally::display_name`]).
    pub fn display_names(&self, membership: &Membership) -> BTreeMap<MemberId, String> {
        let named: BTreeSet<&MemberId> = self
            .joined
            .keys()
            .chain(membership.members.keys())
            .chain(self.profiles.keys())
            .collect();
        named
            .into_iter()
            .filter_map(|member| Some((*member, self.display_name(member, membership)?)))
            .collect()
    }

    /// The name rule: the latest profile if it counts under `departure`, else `current`,
    /// else the latest `Add` or `Create`.
    fn name_of<'a>(
        &'a self,
        member: &MemberId,
        current: Option<&'a str>,
        departure: Option<&Departure>,
    ) -> Option<&'a str> {
        self.profiles
            .get(member)
            .filter(|p| p.counts(departure))
            .map(|p| p.name.as_str())
            .or(current)
            .or_else(|| self.joined.get(member).map(|j| j.name.as_str()))
    }

    /// The largest guidelines version `member` accepted by entry that is at most `current`.
    pub fn accepted_guidelines(&self, member: &MemberId, current: u32) -> Option<u32> {
        self.accepted
            .get(member)?
            .range(..=current)
            .next_back()
            .copied()
    }

    /// The largest timestamp of an entry by `member`.
    pub fn last_seen(&self, member: &MemberId) -> Option<u64> {
        self.last_seen.get(member).copied()
    }

    /// Every author's last-seen time.
    pub fn last_seen_all(&self) -> &BTreeMap<MemberId, u64> {
        &self.last_seen
    }

    /// Every goal of the circle.
    pub fn goals(&self) -> &BTreeMap<EntryId, TalliedGoal> {
        &self.goals
    }

    /// Every entry that opened a check-in round, whoever wrote it.
    pub fn rounds(&self) -> &BTreeSet<EntryId> {
        &self.rounds
    }

    /// The tally's bytes, for a device to persist (version byte [`TALLY_VERSION`]).
    pub fn encode(&self) -> Vec<u8> {
        wire::encode_versioned(TALLY_VERSION, self)
    }

    /// Reads [`Tally::encode`]'s bytes back. Any other version is refused
    /// ([`DecodeError::UnsupportedVersion`]): the device folds the history again.
    pub fn decode(bytes: &[u8]) -> Result<Tally, DecodeError> {
        wire::decode_versioned(bytes, MAX_TALLY_BYTES, "tally", TALLY_VERSION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(n: u8) -> MemberId {
        MemberId::from_bytes([n; 32])
    }

    fn at(n: u8, author: u8, seq: u64, lamport: u64) -> FoldedAt {
        FoldedAt {
            id: EntryId::from_bytes([n; 32]),
            author: member(author),
            seq,
            lamport,
            timestamp_ms: 1000 * lamport,
        }
    }

    fn profile(name: &str) -> Content {
        Content::Profile {
            display_name: name.parse().unwrap(),
        }
    }

    /// A membership with `current` members (by number and joined name) and `departed` ones
    /// (by number and cutoff).
    fn membership(current: &[(u8, &str)], departed: &[(u8, Option<u64>)]) -> Membership {
        let members = current
            .iter()
            .map(|(n, name)| {
                let info = crate::membership::MemberInfo {
                    public: crate::identity::MemberPublic {
                        id: member(*n),
                        dh: crate::identity::DhPublicKey([*n; 32]),
                    },
                    role: crate::membership::Role::Member,
                    display_name: (*name).into(),
                    accepted_guidelines: 1,
                    added_at: (0, EntryId::from_bytes([0; 32])),
                    horizon: BTreeMap::new(),
                };
                (member(*n), info)
            })
            .collect();
        let departed = departed
            .iter()
            .map(|(n, cutoff)| {
                let departure = Departure {
                    cutoff: *cutoff,
                    removed_by: None,
                    epoch: None,
                    role: crate::membership::Role::Member,
                };
                (member(*n), departure)
            })
            .collect();
        Membership {
            members,
            departed,
            ..Membership::default()
        }
    }

    #[test]
    fn the_latest_profile_names_a_member_whatever_the_folding_order_across_authors() {
        let mut tally = Tally::new();
        assert!(tally.fold(at(1, 1, 0, 1), Folded::Content(&profile("Ana"))));
        assert!(tally.fold(at(2, 1, 1, 5), Folded::Content(&profile("Ana B."))));
        assert!(tally.fold(at(3, 2, 0, 3), Folded::Unreadable));
        let current = membership(&[(1, "joined"), (2, "Bea")], &[]);
        assert_eq!(
            tally.display_name(&member(1), &current).as_deref(),
            Some("Ana B.")
        );
        assert_eq!(
            tally.display_name(&member(2), &current).as_deref(),
            Some("Bea")
        );
        assert_eq!(tally.display_name(&member(3), &current), None);
        assert_eq!(tally.last_seen(&member(1)), Some(5000));
    }

    fn control(op: ControlOp) -> ControlBody {
        ControlBody {
            op,
            recipients: Vec::new(),
            merges: Vec::new(),
            confirmation: None,
        }
    }

    fn add(n: u8, name: &str) -> ControlBody {
        control(ControlOp::Add {
            member: crate::identity::MemberPublic {
                id: member(n),
                dh: crate::identity::DhPublicKey([n; 32]),
            },
            role: crate::membership::Role::Member,
            display_name: name.into(),
            accepted_guidelines: 1,
            horizon: Vec::new(),
        })
    }

    #[test]
    fn a_removed_member_keeps_the_name_the_circle_gave_her() {
        let mut tally = Tally::new();
        let create = control(ControlOp::Create {
            name: "Walkers".into(),
            guidelines: "Be kind.".into(),
            settings: Default::default(),
            creator_dh: crate::identity::DhPublicKey([1; 32]),
            display_name: "Ana".into(),
        });
        assert!(tally.fold(at(1, 1, 0, 1), Folded::Control(&create)));
        assert!(tally.fold(at(2, 1, 1, 2), Folded::Control(&add(2, "Ben"))));
        assert!(tally.fold(at(3, 2, 0, 3), Folded::Content(&profile("Benji"))));
        assert!(tally.fold(at(4, 3, 0, 4), Folded::Unreadable));
        let removal = control(ControlOp::Remove {
            member: member(2),
            cutoff: Some(0),
        });
        assert!(tally.fold(at(5, 1, 2, 5), Folded::Control(&removal)));
        // Nobody is current any more but Ana: Ben keeps his latest name (written within his
        // cutoff), and the author of an entry nobody added is named by nothing.
        let now = membership(&[(1, "Ana")], &[(2, Some(0))]);
        let names = tally.display_names(&now);
        assert_eq!(
            names,
            BTreeMap::from([(member(1), "Ana".into()), (member(2), "Benji".into())])
        );
        assert_eq!(
            tally.display_name(&member(2), &now).as_deref(),
            Some("Benji")
        );
        assert_eq!(tally.display_name(&member(3), &now), None);
        let reloaded = Tally::decode(&tally.encode()).unwrap();
        assert_eq!(
            reloaded.display_name(&member(2), &now).as_deref(),
            Some("Benji")
        );
    }

    #[test]
    fn two_adds_of_one_member_name_her_the_same_whatever_the_folding_order() {
        // Two facilitators added Ben concurrently under different names (on two branches):
        // every device names him after the later Add, in whatever order it folds them.
        let mut one = Tally::new();
        let mut other = Tally::new();
        let early = (at(1, 1, 0, 3), add(9, "Ben"));
        let late = (at(2, 2, 0, 4), add(9, "Benjamin"));
        for (tally, order) in [(&mut one, [&early, &late]), (&mut other, [&late, &early])] {
            for (at, body) in order {
                assert!(tally.fold(*at, Folded::Control(body)));
            }
        }
        assert_eq!(one, other);
        // Once he left, his name comes from the Adds.
        let left = membership(&[], &[(9, Some(0))]);
        assert_eq!(
            one.display_name(&member(9), &left).as_deref(),
            Some("Benjamin")
        );
    }

    #[test]
    fn a_profile_beyond_a_later_cutoff_is_not_shown_and_the_joined_name_comes_back() {
        // Ben was added as "Ben" and wrote a profile at seq 0. A device folded his profile at
        // seq 2 before it learned that he was removed with cutoff 1 (or left at seq 1).
        let mut tally = Tally::new();
        assert!(tally.fold(at(1, 1, 0, 1), Folded::Control(&add(2, "Ben"))));
        assert!(tally.fold(at(2, 2, 0, 2), Folded::Content(&profile("Benji"))));
        assert!(tally.fold(at(3, 2, 1, 3), Folded::Unreadable));
        let while_member = membership(&[(1, "Ana"), (2, "Ben")], &[]);
        let within = membership(&[(1, "Ana")], &[(2, Some(0))]);
        assert_eq!(
            tally.display_name(&member(2), &while_member).as_deref(),
            Some("Benji")
        );
        assert_eq!(
            tally.display_name(&member(2), &within).as_deref(),
            Some("Benji"),
            "a profile within the cutoff still names him"
        );
        assert!(tally.fold(at(4, 2, 2, 4), Folded::Content(&profile("Admin"))));
        assert_eq!(
            tally.display_name(&member(2), &while_member).as_deref(),
            Some("Admin"),
            "a current member's latest profile names her"
        );
        // Only the latest profile is kept: beyond the cutoff, the Add's name is the fallback.
        for departed in [
            membership(&[(1, "Ana")], &[(2, Some(1))]),
            membership(&[(1, "Ana")], &[(2, None)]),
        ] {
            assert_eq!(
                tally.display_name(&member(2), &departed).as_deref(),
                Some("Ben")
            );
            assert_eq!(
                tally.display_names(&departed),
                BTreeMap::from([(member(1), "Ana".into()), (member(2), "Ben".into())])
            );
            let reloaded = Tally::decode(&tally.encode()).unwrap();
            assert_eq!(
                reloaded.display_name(&member(2), &departed).as_deref(),
                Some("Ben")
            );
        }
        // A cutoff at the profile's own seq keeps it.
        let at_profile = membership(&[(1, "Ana")], &[(2, Some(2))]);
        assert_eq!(
            tally.display_name(&member(2), &at_profile).as_deref(),
            Some("Admin")
        );
        // An author nobody added, with a profile beyond her cutoff, is named by nothing.
        assert!(tally.fold(at(5, 3, 4, 5), Folded::Content(&profile("Eve"))));
        let gone = membership(&[(1, "Ana")], &[(3, Some(3))]);
        assert_eq!(tally.display_name(&member(3), &gone), None);
        assert!(!tally.display_names(&gone).contains_key(&member(3)));
    }

    #[test]
    fn someone_the_circle_never_took_is_never_named() {
        // A facilitator's `Add` of Zed, folded before this device learned she had been removed
        // (the Add lies beyond her cutoff, so the circle never took Zed).
        let mut tally = Tally::new();
        assert!(tally.fold(at(1, 1, 0, 1), Folded::Control(&add(2, "Ben"))));
        assert!(tally.fold(at(2, 1, 1, 2), Folded::Control(&add(9, "Zed"))));
        let now = membership(&[(2, "Ben")], &[(1, Some(0))]);
        assert_eq!(tally.display_name(&member(9), &now), None);
        assert!(!tally.display_names(&now).contains_key(&member(9)));
        assert_eq!(
            tally.display_name(&member(2), &now).as_deref(),
            Some("Ben"),
            "a member she did add keeps his name"
        );
        // Once the circle took Zed, he is named.
        let taken = membership(&[(2, "Ben"), (9, "Zed")], &[(1, Some(0))]);
        assert_eq!(
            tally.display_name(&member(9), &taken).as_deref(),
            Some("Zed")
        );
    }

    #[test]
    fn a_tally_of_another_version_is_refused_so_the_history_is_folded_again() {
        let mut bytes = Tally::new().encode();
        assert_eq!(bytes[0], TALLY_VERSION);
        for old in [1, 2] {
            bytes[0] = old;
            assert!(matches!(
                Tally::decode(&bytes),
                Err(DecodeError::UnsupportedVersion { version, .. }) if version == old
            ));
        }
    }

    #[test]
    fn folding_an_entry_again_changes_nothing() {
        let mut tally = Tally::new();
        tally.fold(at(1, 1, 0, 1), Folded::Content(&profile("Ana")));
        tally.fold(at(2, 1, 1, 2), Folded::Content(&profile("Ana B.")));
        let before = tally.clone();
        assert!(!tally.fold(at(1, 1, 0, 1), Folded::Content(&profile("Ana"))));
        assert!(!tally.fold(at(9, 1, 1, 9), Folded::Content(&profile("Eve"))));
        assert_eq!(tally, before);
        assert_eq!(Tally::decode(&tally.encode()).unwrap(), tally);
    }

    #[test]
    fn accepted_guidelines_count_up_to_the_current_version() {
        let mut tally = Tally::new();
        for (seq, version) in [(0, 2), (1, 7), (2, 1)] {
            tally.fold(
                at(seq as u8 + 1, 1, seq, seq),
                Folded::Content(&Content::GuidelinesAccepted { version }),
            );
        }
        assert_eq!(tally.accepted_guidelines(&member(1), 3), Some(2));
        assert_eq!(tally.accepted_guidelines(&member(1), 9), Some(7));
        assert_eq!(tally.accepted_guidelines(&member(2), 9), None);
        for v in 0..100 {
            tally.fold(
                at(200, 1, 3 + v, 3 + v),
                Folded::Content(&Content::GuidelinesAccepted {
                    version: v as u32 + 10,
                }),
            );
        }
        assert_eq!(
            tally.accepted.get(&member(1)).unwrap().len(),
            MAX_ACCEPTED_VERSIONS
        );
    }

    #[test]
    fn rounds_are_remembered_whoever_opened_them() {
        let mut tally = Tally::new();
        let round = Content::RoundOpen {
            question: "how was your week?".parse().unwrap(),
        };
        tally.fold(at(6, 2, 0, 1), Folded::Content(&round));
        tally.fold(at(7, 3, 0, 2), Folded::Content(&round));
        tally.fold(at(8, 3, 1, 3), Folded::Content(&profile("Cy")));
        let ids: Vec<EntryId> = tally.rounds().iter().copied().collect();
        assert_eq!(
            ids,
            [EntryId::from_bytes([6; 32]), EntryId::from_bytes([7; 32])]
        );
        let back = Tally::decode(&tally.encode()).unwrap();
        assert_eq!(back.rounds(), tally.rounds());
    }

    #[test]
    fn goals_are_remembered_with_their_author_and_visibility() {
        let mut tally = Tally::new();
        let goal = Content::Goal {
            title: "walk".parse().unwrap(),
            why: None,
            cadence: crate::content::Cadence::Daily,
            visibility: Visibility::DoneOnly,
            grace_days: crate::content::GraceDays::NONE,
            rest_days: crate::content::RestDays::NONE,
            start: crate::content::LocalDay::new(0).unwrap(),
        };
        tally.fold(at(5, 2, 0, 1), Folded::Content(&goal));
        assert_eq!(
            tally.goals().get(&EntryId::from_bytes([5; 32])),
            Some(&TalliedGoal {
                author: member(2),
                visibility: Visibility::DoneOnly
            })
        );
    }
}
