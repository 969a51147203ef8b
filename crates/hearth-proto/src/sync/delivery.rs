//! Delivery state of a member's own entries: how many of the other current members hold an
//! entry, as far as their devices reported it in sync (best effort, never a receipt).
//!
//! A device that proved membership sends its [`HighWaterMarks`] with each sync request;
//! a member holds an entry of author `a` with seq `s` when any of her devices reported a
//! mark for `a` of at least `s`. [`merge_reported`] folds one device's report into what is
//! known of its member; [`delivery`] counts.

use std::collections::BTreeMap;

use super::HighWaterMarks;
use crate::MemberId;

/// How far one of my entries reached: `held_by` of the `of` other current members hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The other members whose devices reported holding the entry.
    pub held_by: u32,
    /// The other current members (everyone but me).
    pub of: u32,
}

impl Delivery {
    /// Whether no other member reported holding it: it is on this device only.
    pub fn only_here(&self) -> bool {
        self.held_by == 0
    }
}

/// Folds marks one of `member`'s devices reported into `known` (per author the highest
/// mark seen from any of her devices): a member holds what any of her devices holds.
pub fn merge_reported(
    known: &mut BTreeMap<MemberId, HighWaterMarks>,
    member: MemberId,
    reported: &HighWaterMarks,
) {
    let marks = known.entry(member).or_default();
    for (author, seq) in reported {
        let mark = marks.entry(*author).or_insert(*seq);
        *mark = (*mark).max(*seq);
    }
}

/// The delivery state of my entry `seq` (authored by `me`): of the current `members` other
/// than me, how many hold it according to the marks `reported` for them.
pub fn delivery<'a>(
    me: MemberId,
    seq: u64,
    members: impl IntoIterator<Item = &'a MemberId>,
    reported: &BTreeMap<MemberId, HighWaterMarks>,
) -> Delivery {
    let mut out = Delivery { held_by: 0, of: 0 };
    for member in members.into_iter().filter(|m| **m != me) {
        out.of = out.of.saturating_add(1);
        let holds = reported
            .get(member)
            .and_then(|marks| marks.get(&me))
            .is_some_and(|mark| *mark >= seq);
        if holds {
            out.held_by = out.held_by.saturating_add(1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MemberId {
        MemberId::from_bytes([n; 32])
    }

    fn marks(pairs: &[(MemberId, u64)]) -> HighWaterMarks {
        pairs.iter().copied().collect()
    }

    #[test]
    fn delivery_counts_members_whose_marks_reach_the_seq() {
        let (me, b, c) = (id(1), id(2), id(3));
        let mut known = BTreeMap::new();
        merge_reported(&mut known, b, &marks(&[(me, 4)]));
        merge_reported(&mut known, c, &marks(&[(me, 2)]));
        let members = [me, b, c];
        assert_eq!(
            delivery(me, 3, &members, &known),
            Delivery { held_by: 1, of: 2 }
        );
        assert_eq!(
            delivery(me, 2, &members, &known),
            Delivery { held_by: 2, of: 2 }
        );
        assert_eq!(
            delivery(me, 5, &members, &known),
            Delivery { held_by: 0, of: 2 }
        );
    }

    #[test]
    fn delivery_with_no_reports_is_on_this_device_only() {
        let (me, b) = (id(1), id(2));
        let d = delivery(me, 0, &[me, b], &BTreeMap::new());
        assert_eq!(d, Delivery { held_by: 0, of: 1 });
        assert!(d.only_here());
        // Alone in a circle: nobody else to reach.
        assert_eq!(
            delivery(me, 0, &[me], &BTreeMap::new()),
            Delivery { held_by: 0, of: 0 }
        );
    }

    #[test]
    fn delivery_any_device_of_a_member_counts_and_other_authors_do_not() {
        let (me, b, c) = (id(1), id(2), id(3));
        let mut known = BTreeMap::new();
        // b's laptop is behind, her phone holds seq 7: she holds it.
        merge_reported(&mut known, b, &marks(&[(me, 7)]));
        merge_reported(&mut known, b, &marks(&[(me, 1)]));
        // c holds much of b's log but nothing of mine.
        merge_reported(&mut known, c, &marks(&[(b, 50)]));
        assert_eq!(
            delivery(me, 7, &[me, b, c], &known),
            Delivery { held_by: 1, of: 2 }
        );
    }

    #[test]
    fn delivery_ignores_reports_of_former_members() {
        let (me, b, gone) = (id(1), id(2), id(9));
        let mut known = BTreeMap::new();
        merge_reported(&mut known, gone, &marks(&[(me, 10)]));
        assert_eq!(
            delivery(me, 0, &[me, b], &known),
            Delivery { held_by: 0, of: 1 }
        );
    }
}
