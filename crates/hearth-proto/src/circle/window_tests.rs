//! A member keeps only the ids of each author's newest positions in memory: an older
//! position's id comes back from storage when an entry there arrives again, or after a
//! restore that was given only the newest positions.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::adversary_tests::{T0, circle_of, text};
use super::*;
use crate::entry::CheckedEntry;

/// Ana posts `n` entries; Ben, keeping a window of 2, takes them all. Returns the posts.
fn posts(ana: &mut Circle, ben: &mut Circle, n: u64, rng: &mut ChaCha20Rng) -> Vec<Authored> {
    (0..n)
        .map(|i| {
            let post = ana.post(&text(&format!("p{i}")), T0 + 10 + i, rng).unwrap();
            ben.receive(&post.bytes).unwrap();
            post
        })
        .collect()
}

#[test]
fn an_old_duplicate_and_an_old_fork_are_told_apart_by_the_stored_id() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut all = circle_of(2, CircleSettings::default(), &mut rng);
    let mut ben = all.pop().unwrap();
    let mut ana = all.pop().unwrap();
    ben.set_log_window(2);
    // Her modified client keeps her state from before her first post.
    let origin = ana.clone();
    let mut stale = origin.clone();
    let sent = posts(&mut ana, &mut ben, 6, &mut rng);
    let old = &sent[0];
    let (author, seq) = (ana.me(), old.entry.unsigned.seq);
    assert_eq!(ben.logs().id_at(&author, seq), None, "out of the window");

    // The same entry again: a duplicate, once its stored id is known.
    let before = ben.marks();
    assert_eq!(
        ben.receive(&old.bytes).unwrap_err(),
        Rejection::NeedsStoredId { author, seq }
    );
    assert_eq!(ben.marks(), before, "nothing changed");
    assert!(ben.recall(&author, seq, old.id));
    assert!(ben.receive(&old.bytes).unwrap().duplicate);

    // Another entry at an old position: equivocation, with both ids as evidence.
    let fork = stale.post(&text("other"), T0 + 9, &mut rng).unwrap();
    assert_eq!(fork.entry.unsigned.seq, seq);
    let second = sent[1].entry.unsigned.seq;
    assert_eq!(
        ben.receive(&fork.bytes).unwrap_err(),
        Rejection::Equivocation(Equivocation {
            author,
            seq,
            first: old.id,
            second: fork.id,
        }),
        "the recalled id is still known"
    );
    // A position never recalled asks for its id, and then finds the fork.
    let mut third = origin.clone();
    third.post(&text("x"), T0 + 9, &mut rng).unwrap();
    let fork_at_second = third.post(&text("y"), T0 + 12, &mut rng).unwrap();
    assert_eq!(fork_at_second.entry.unsigned.seq, second);
    assert_eq!(
        ben.receive(&fork_at_second.bytes).unwrap_err(),
        Rejection::NeedsStoredId {
            author,
            seq: second
        }
    );
    assert!(ben.recall(&author, second, sent[1].id));
    assert!(matches!(
        ben.receive(&fork_at_second.bytes),
        Err(Rejection::Equivocation(e)) if e.first == sent[1].id && e.seq == second
    ));
    assert!(
        !ben.recall(&author, 100, sent[1].id),
        "a position not held is not recalled"
    );
}

#[test]
fn a_circle_restored_from_its_newest_positions_recalls_its_control_entries() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let mut all = circle_of(2, CircleSettings::default(), &mut rng);
    let mut ben = all.pop().unwrap();
    let mut ana = all.pop().unwrap();
    let rotate = ana.rotate(T0 + 5, &mut rng).unwrap();
    ben.receive(&rotate.bytes).unwrap();
    let sent = posts(&mut ana, &mut ben, 8, &mut rng);
    let mine = ben.post(&text("from ben"), T0 + 30, &mut rng).unwrap();
    ana.receive(&mine.bytes).unwrap();
    let marks = ben.marks();
    let kept_before = ben.logs().kept_ids();

    // A node that opens the circle passes each author's newest two positions only.
    let newest: Vec<(MemberId, u64, EntryId)> = marks
        .iter()
        .flat_map(|(author, head)| {
            let logs = ben.logs();
            (head.saturating_sub(1)..=*head)
                .filter_map(move |seq| logs.id_at(author, seq).map(|id| (*author, seq, id)))
        })
        .collect();
    let mut restored = Circle::restore(&ben.snapshot(), newest).unwrap();
    restored.set_log_window(2);
    assert_eq!(
        restored.marks(),
        marks,
        "every position up to the heads is held"
    );
    assert_eq!(restored.logs().len(), ben.logs().len());
    let (author, seq) = (ana.me(), rotate.entry.unsigned.seq);
    assert!(
        restored.positions_to_recall().contains(&(author, seq)),
        "the rotation's position is asked for: {:?}",
        restored.positions_to_recall()
    );
    for (a, s) in restored.positions_to_recall() {
        let id = ben.logs().id_at(&a, s).unwrap();
        assert!(restored.recall(&a, s, id));
    }
    assert!(restored.positions_to_recall().is_empty());
    assert_eq!(restored.logs().id_at(&author, seq), Some(rotate.id));
    assert!(restored.logs().kept_ids() <= kept_before);
    // It keeps its pin: after many more entries the rotation's id is still in memory.
    let more = posts(&mut ana, &mut restored, 6, &mut rng);
    assert_eq!(restored.logs().id_at(&author, seq), Some(rotate.id));
    assert_eq!(
        restored.logs().id_at(&author, sent[0].entry.unsigned.seq),
        None
    );
    assert!(restored.receive(&rotate.bytes).unwrap().duplicate);
    // And it writes and is heard.
    let next = restored.post(&text("after"), T0 + 99, &mut rng).unwrap();
    assert!(!ana.receive(&next.bytes).unwrap().accepted.is_empty());
    assert_eq!(more.len(), 6);
}

/// Every outcome (accepted, held for a gap, released from it, duplicate, out of the window)
/// is the same whether Ben receives bytes or entries checked ahead of time.
#[test]
fn an_entry_checked_ahead_of_time_is_received_as_its_bytes_are() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let mut all = circle_of(2, CircleSettings::default(), &mut rng);
    let mut by_bytes = all.pop().unwrap();
    let mut ana = all.pop().unwrap();
    by_bytes.set_log_window(2);
    let mut by_checked = by_bytes.clone();
    let sent: Vec<Authored> = (0..5)
        .map(|i| {
            ana.post(&text(&format!("p{i}")), T0 + 10 + i, &mut rng)
                .unwrap()
        })
        .collect();
    for i in [1, 0, 0, 2, 3, 4, 1] {
        let bytes = &sent[i].bytes;
        let checked = CheckedEntry::check(bytes.clone()).unwrap();
        let (a, b) = (
            by_bytes.receive(bytes),
            by_checked.receive_checked(&checked),
        );
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "entry {i}");
        assert_eq!(by_bytes.marks(), by_checked.marks());
    }
}
