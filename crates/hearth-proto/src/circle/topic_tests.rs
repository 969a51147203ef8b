//! Gossip topics and rendezvous keys follow the epochs: only holders of an epoch's secret
//! can name them, so a removed member cannot follow the circle and an outsider cannot link
//! its topics over time (issue 9, M4).

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::adversary_tests::{T0, circle_of, text};
use super::*;

#[test]
fn topics_follow_the_epochs_and_a_removed_member_cannot_name_the_new_ones() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let mut all = circle_of(3, CircleSettings::default(), &mut rng);
    let mut cy = all.pop().unwrap();
    let mut ben = all.pop().unwrap();
    let mut ana = all.pop().unwrap();
    let before = ana.topics();
    // Members agree on the current topic; older ones depend on the secrets each holds (a
    // newcomer without shared history holds none from before her addition).
    assert_eq!(
        ben.topic(),
        ana.topic(),
        "members agree on the current topic"
    );
    assert_eq!(cy.topic(), ana.topic());
    assert_eq!(ana.topic(), before.first().cloned());
    let old_keys = ana.rendezvous_keys();
    assert_eq!(old_keys.len(), before.len());

    let removal = ana.remove_member(&cy.me(), T0 + 10, &mut rng).unwrap();
    ben.receive(&removal.bytes).unwrap();
    cy.receive(&removal.bytes).unwrap();
    let now = ana.topics();
    assert_eq!(ben.topic(), ana.topic());
    let current = now[0].clone();
    assert!(!before.contains(&current), "a new epoch, a new topic");
    assert_eq!(
        now[1], before[0],
        "the previous epoch's topic stays live a while"
    );
    assert!(
        !cy.topics().contains(&current),
        "the removed member cannot name the new topic"
    );
    assert!(!cy.rendezvous_keys().contains(&ana.rendezvous_keys()[0]));
    // An entry goes on the topic of the epoch it was written in.
    let post = ana.post(&text("after"), T0 + 20, &mut rng).unwrap();
    assert_eq!(ana.topic_of(&post.entry.unsigned.epoch), Some(current));
    assert_eq!(cy.topic_of(&post.entry.unsigned.epoch), None);
    // The creation entry, written before any epoch, goes on the current topic.
    assert_eq!(ana.topic_of(&EpochId::GENESIS_PARENT), ana.topic());

    // Older epochs fall out: at most LIVE_EPOCHS topics and keys.
    for i in 0..LIVE_EPOCHS as u64 {
        let rotate = ana.rotate(T0 + 30 + i, &mut rng).unwrap();
        ben.receive(&rotate.bytes).unwrap();
    }
    assert_eq!(ana.topics().len(), LIVE_EPOCHS);
    assert_eq!(ana.rendezvous_keys().len(), LIVE_EPOCHS);
    assert_eq!(ben.topics(), ana.topics(), "both hold the newest epochs");
    assert!(
        ana.topics().iter().all(|t| !before.contains(t)),
        "the topics from before the removal are gone"
    );
    assert!(
        ana.rendezvous_keys().iter().all(|k| !old_keys.contains(k)),
        "and so are the rendezvous keys"
    );
}
