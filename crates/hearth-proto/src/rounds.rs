//! Check-in rounds: a facilitator asks ("How is everyone this week?"), members answer with a
//! mood and an optional note, and the round shows who has answered.
//!
//! Rules (the same on every device, for the same entries in any order):
//! 1. A [`Content::RoundOpen`] opens a round if its author is one of the `facilitators` the
//!    caller passes ([`openers`]: the circle's facilitators, and those who left or were
//!    removed while facilitators, so their rounds stay open); others are ignored.
//! 2. A [`Content::RoundAnswer`] counts if it names an open round. Each member has at most one
//!    answer per round: her latest (largest seq, then entry id), so she may revise it.
//! 3. A [`Content::Delete`] by an entry's own author removes that round or answer.
//! 4. Rounds are listed by the time their opener gave (`made_at_ms`, display order only), then
//!    entry id; answers by member id.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::content::{Content, Mood, Note, Question};
use crate::ids::{EntryId, MemberId};
use crate::membership::{Membership, Role};
use crate::progress::ProgressEvent;

/// One round and its answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoundView {
    /// The round (its opening entry).
    pub round: EntryId,
    /// The question.
    pub question: Question,
    /// Who opened it.
    pub opened_by: MemberId,
    /// When the opener says she opened it.
    pub opened_at_ms: u64,
    /// One answer per member who answered.
    pub answers: Vec<RoundAnswerView>,
}

/// A member's answer.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct RoundAnswerView {
    /// Who answered.
    pub member: MemberId,
    /// The answer entry.
    pub entry: EntryId,
    /// Her mood.
    pub mood: Mood,
    /// Her note, if any.
    pub note: Option<Note>,
}

impl std::fmt::Debug for RoundAnswerView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RoundAnswerView({:?}, mood {}, note: {})",
            self.member,
            self.mood,
            self.note.is_some()
        )
    }
}

impl RoundView {
    /// Whether `member` has answered.
    pub fn has_answered(&self, member: &MemberId) -> bool {
        self.answers.iter().any(|a| a.member == *member)
    }
}

/// Who may have opened a round: the current facilitators, and members who were facilitators
/// when they left or were removed (a round stays open when its opener is gone).
pub fn openers(membership: &Membership) -> BTreeSet<MemberId> {
    let current = membership
        .members
        .iter()
        .filter(|(_, m)| m.role == Role::Facilitator)
        .map(|(id, _)| *id);
    let departed = membership
        .departed
        .iter()
        .filter(|(_, d)| d.role == Role::Facilitator)
        .map(|(id, _)| *id);
    current.chain(departed).collect()
}

/// The current members of `membership` who have not answered `round`, by member id.
pub fn not_answered(round: &RoundView, membership: &Membership) -> Vec<MemberId> {
    membership
        .members
        .keys()
        .filter(|m| !round.has_answered(m))
        .copied()
        .collect()
}

/// Folds rounds and answers from `events` (any order, duplicates allowed). A question, mood
/// and note are valid by their types: nothing here is checked again.
pub fn rounds(events: &[ProgressEvent], facilitators: &BTreeSet<MemberId>) -> Vec<RoundView> {
    let unique: BTreeMap<EntryId, &ProgressEvent> = events.iter().map(|e| (e.entry, e)).collect();
    let deleted: BTreeSet<(MemberId, EntryId)> = unique
        .values()
        .filter_map(|e| match e.content {
            Content::Delete { target } => Some((e.author, target)),
            _ => None,
        })
        .collect();
    let live = || {
        unique
            .values()
            .copied()
            .filter(|e| !deleted.contains(&(e.author, e.entry)))
    };
    let mut opened: BTreeMap<EntryId, RoundView> = live()
        .filter_map(|e| match &e.content {
            Content::RoundOpen { question } if facilitators.contains(&e.author) => Some((
                e.entry,
                RoundView {
                    round: e.entry,
                    question: question.clone(),
                    opened_by: e.author,
                    opened_at_ms: e.made_at_ms,
                    answers: Vec::new(),
                },
            )),
            _ => None,
        })
        .collect();
    let mut latest: BTreeMap<(EntryId, MemberId), &ProgressEvent> = BTreeMap::new();
    for e in live() {
        if let Content::RoundAnswer { round, .. } = &e.content
            && opened.contains_key(round)
        {
            let slot = latest.entry((*round, e.author)).or_insert(e);
            if (e.seq, e.entry) > (slot.seq, slot.entry) {
                *slot = e;
            }
        }
    }
    for ((round, member), e) in latest {
        if let (Some(view), Content::RoundAnswer { mood, note, .. }) =
            (opened.get_mut(&round), &e.content)
        {
            view.answers.push(RoundAnswerView {
                member,
                entry: e.entry,
                mood: *mood,
                note: note.clone(),
            });
        }
    }
    let mut out: Vec<RoundView> = opened.into_values().collect();
    out.sort_by_key(|r| (r.opened_at_ms, r.round));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> EntryId {
        EntryId::from_bytes([n; 32])
    }
    fn member(n: u8) -> MemberId {
        MemberId::from_bytes([n; 32])
    }
    fn event(entry: u8, author: u8, seq: u64, content: Content) -> ProgressEvent {
        ProgressEvent {
            entry: id(entry),
            author: member(author),
            seq,
            made_at_ms: u64::from(entry),
            content,
        }
    }

    #[test]
    fn a_departed_facilitators_round_stays_open_and_only_current_members_are_missing() {
        use crate::identity::MemberSecret;
        use crate::membership::{Departure, MemberInfo};
        use rand_chacha::ChaCha20Rng;
        use rand_core::SeedableRng;
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let keys: Vec<MemberSecret> = (0..4).map(|_| MemberSecret::generate(&mut rng)).collect();
        let mut membership = Membership::default();
        for (key, role) in keys[..3]
            .iter()
            .zip([Role::Facilitator, Role::Member, Role::Member])
        {
            membership.members.insert(
                key.id(),
                MemberInfo {
                    public: key.public(),
                    role,
                    display_name: "x".into(),
                    accepted_guidelines: 1,
                    added_at: (0, id(0)),
                    horizon: Default::default(),
                },
            );
        }
        membership.departed.insert(
            keys[3].id(),
            Departure {
                cutoff: Some(4),
                removed_by: None,
                epoch: None,
                role: Role::Facilitator,
            },
        );
        let openers = openers(&membership);
        assert_eq!(openers, BTreeSet::from([keys[0].id(), keys[3].id()]));
        // The departed facilitator's round, answered by a current member and by herself.
        let round = |entry, author: &MemberSecret| ProgressEvent {
            entry: id(entry),
            author: author.id(),
            seq: 1,
            made_at_ms: 1,
            content: Content::RoundOpen {
                question: "How is everyone?".parse().unwrap(),
            },
        };
        let answer = |entry, author: &MemberSecret| ProgressEvent {
            entry: id(entry),
            author: author.id(),
            seq: 2,
            made_at_ms: 2,
            content: Content::RoundAnswer {
                round: id(10),
                mood: Mood::new(3).unwrap(),
                note: None,
            },
        };
        let views = rounds(
            &[
                round(10, &keys[3]),
                answer(11, &keys[1]),
                answer(12, &keys[3]),
            ],
            &openers,
        );
        assert_eq!(views.len(), 1);
        assert_eq!(
            not_answered(&views[0], &membership),
            [keys[0].id(), keys[2].id()]
                .into_iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
        // A member's round opens nothing.
        assert!(rounds(&[round(20, &keys[1])], &openers).is_empty());
    }

    #[test]
    fn answers_are_counted_once_per_member_and_only_for_facilitator_rounds() {
        let facilitators = BTreeSet::from([member(1)]);
        let open = |e, a| {
            event(
                e,
                a,
                0,
                Content::RoundOpen {
                    question: "How is everyone this week?".parse().unwrap(),
                },
            )
        };
        let answer = |e, a, seq, mood| {
            event(
                e,
                a,
                seq,
                Content::RoundAnswer {
                    round: id(10),
                    mood: Mood::new(mood).unwrap(),
                    note: None,
                },
            )
        };
        let events = vec![
            open(10, 1),
            open(11, 2), // not a facilitator: ignored
            answer(20, 2, 1, 3),
            answer(21, 2, 2, 4), // revision: the later one counts
            answer(22, 3, 1, 5),
            event(
                23,
                3,
                2,
                Content::RoundAnswer {
                    round: id(11),
                    mood: Mood::new(2).unwrap(),
                    note: None,
                },
            ), // not a round
        ];
        let mut shuffled = events.clone();
        shuffled.reverse();
        shuffled.push(events[2].clone());
        let views = rounds(&events, &facilitators);
        assert_eq!(views, rounds(&shuffled, &facilitators));
        assert_eq!(views.len(), 1);
        let round = &views[0];
        assert_eq!(round.answers.len(), 2);
        assert_eq!(round.answers[0].mood, 4);
        assert!(round.has_answered(&member(3)) && !round.has_answered(&member(4)));
    }

    #[test]
    fn a_deleted_answer_no_longer_counts() {
        let facilitators = BTreeSet::from([member(1)]);
        let events = vec![
            event(
                10,
                1,
                0,
                Content::RoundOpen {
                    question: "Check in?".parse().unwrap(),
                },
            ),
            event(
                20,
                2,
                1,
                Content::RoundAnswer {
                    round: id(10),
                    mood: Mood::new(3).unwrap(),
                    note: Some("tired".parse().unwrap()),
                },
            ),
            event(21, 2, 2, Content::Delete { target: id(20) }),
            event(22, 3, 1, Content::Delete { target: id(10) }), // not hers: ignored
        ];
        let views = rounds(&events, &facilitators);
        assert_eq!(views.len(), 1);
        assert!(views[0].answers.is_empty());
    }
}
