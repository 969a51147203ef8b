//! Regression tests for the findings of issue 9: a member or a stranger who breaks the rules on
//! purpose. Each builds the attack with the circle's own internals (a modified client) and
//! checks that honest members are not fooled.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use rand_core::RngCore;

use super::upkeep::{DEFAULT_REPAIR_DELAY_MS, Upkeep};
use super::*;
use crate::content::{Content, SealedPart};
use crate::entry::{CheckedEntry, EntryKind};
use crate::epoch;
use crate::identity::DhPublicKey;
use crate::membership::Role;

pub(super) const T0: u64 = 1_750_000_000_000;

pub(super) fn text(body: &str) -> Content {
    Content::Text {
        body: body.parse().unwrap(),
        reply_to: None,
        content_warning: None,
    }
}

/// A creator and `n - 1` members she admitted, everyone holding every control entry.
pub(super) fn circle_of(n: usize, settings: CircleSettings, rng: &mut ChaCha20Rng) -> Vec<Circle> {
    let me = MemberSecret::generate(rng);
    let (ana, _) = Circle::create("c", "be kind", settings, "Ana", me, T0, rng).unwrap();
    let mut all = vec![ana];
    for i in 1..n {
        let newcomer = MemberSecret::generate(rng);
        let (commit, welcome) = all[0]
            .admit(
                newcomer.public(),
                Role::Member,
                &format!("m{i}"),
                1,
                T0,
                rng,
            )
            .unwrap();
        for c in all.iter_mut().skip(1) {
            c.receive(&commit.bytes).unwrap();
        }
        all.push(Circle::join(&welcome, newcomer).unwrap());
    }
    all
}

/// Ana (facilitator), then two members: the circle most of these tests start from.
fn three(rng: &mut ChaCha20Rng) -> (Circle, Circle, Circle) {
    let mut all = circle_of(3, CircleSettings::default(), rng);
    let mut it = all.drain(..);
    (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
}

/// `facilitator` admits a newcomer called `name`: her Add commit and her circle.
fn admit_newcomer(
    facilitator: &mut Circle,
    name: &str,
    now: u64,
    rng: &mut ChaCha20Rng,
) -> (Authored, Circle) {
    let secret = MemberSecret::generate(rng);
    let (add, welcome) = facilitator
        .admit(secret.public(), Role::Member, name, 1, now, rng)
        .unwrap();
    (add, Circle::join(&welcome, secret).unwrap())
}

fn deliver(bytes: &[u8], to: &mut [&mut Circle]) {
    for c in to {
        let _ = c.receive(bytes);
    }
}

/// H1: a member about to be removed plants the secret of the epoch that starts at her removal
/// in a package for an offline member; the real commit's package must win.
#[test]
fn a_planted_secret_for_the_removal_epoch_is_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(91);
    let mut all = circle_of(3, CircleSettings::default(), &mut rng);
    let (mut fay, mut xan, mut vic) = {
        let mut it = all.drain(..);
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };
    let x_id = xan.me();
    // Her modified client keeps her state from before the removal.
    let mut stale = xan.clone();
    let removal = fay.remove_member(&x_id, T0 + 10, &mut rng).unwrap();
    let e_r = EpochId::from(removal.id);
    // Xan still gets the commit; Vic is offline.
    xan.receive(&removal.bytes).unwrap();
    // She writes a commit of her own, carrying a secret she chose for the removal's epoch.
    let planted = EpochSecret::generate(&mut rng);
    let recipients = stale.member_ids();
    let forged = forge_commit(
        &mut stale,
        ControlOp::Rotate,
        recipients,
        vec![e_r],
        vec![(e_r, planted.clone())],
        T0 + 20,
        &mut rng,
    )
    .unwrap();
    let _ = vic.receive(&forged.bytes);
    // Vic comes back and syncs the removal from Fay.
    vic.receive(&removal.bytes).unwrap();
    assert_eq!(
        vic.epoch_secrets.get(&e_r).map(|s| s.expose()),
        fay.epoch_secrets.get(&e_r).map(|s| s.expose()),
        "the removal's own package must win over a planted secret"
    );
    // What Vic writes now, Fay reads and Xan does not.
    let post = vic.post(&text("only for us"), T0 + 30, &mut rng).unwrap();
    assert_eq!(post.entry.unsigned.epoch, e_r);
    assert!(matches!(
        fay.receive(&post.bytes).unwrap().accepted[0].opened,
        Opened::Content(_)
    ));
    let h = &post.entry.unsigned;
    assert!(
        epoch::open(
            &planted.content_key(&h.author, h.seq),
            &h.nonce,
            &h.aead_associated_data(),
            &h.ciphertext,
        )
        .is_err(),
        "the removed member reads what was written after her removal"
    );
}

/// H2: the person being added gets no secret of an earlier epoch unless history is shared.
#[test]
fn a_newcomer_gets_no_earlier_epoch_secret_without_shared_history() {
    for share in [false, true] {
        let mut rng = ChaCha20Rng::seed_from_u64(92);
        let settings = CircleSettings {
            share_history: share,
            ..CircleSettings::default()
        };
        let mut all = circle_of(2, settings, &mut rng);
        let before: BTreeSet<EpochId> = all[0].held_epochs();
        let newcomer = MemberSecret::generate(&mut rng);
        let (_, welcome) = all[0]
            .admit(newcomer.public(), Role::Member, "Hana", 1, T0 + 5, &mut rng)
            .unwrap();
        let hana = Circle::join(&welcome, newcomer).unwrap();
        let early = hana.held_epochs().intersection(&before).count();
        if share {
            assert_eq!(early, before.len());
        } else {
            assert_eq!(early, 0, "the newcomer holds a secret from before her Add");
        }
    }
}

/// H2, serving side: a newcomer who asks for everything from seq 0 is served nothing written
/// before she joined unless the circle shares history, by the facilitator who admitted her and
/// by any other member; an entry concurrent with her Add (that her facilitator had not seen)
/// still comes, so her copy of that author's log can continue.
#[test]
fn a_newcomer_is_served_nothing_from_before_her_start() {
    for share in [false, true] {
        let mut rng = ChaCha20Rng::seed_from_u64(95);
        let settings = CircleSettings {
            share_history: share,
            ..CircleSettings::default()
        };
        let mut all = circle_of(3, settings, &mut rng);
        let (mut ana, mut bo, mut cy) = {
            let mut it = all.drain(..);
            (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
        };
        // Sharing history, the others' logs start at 0: they catch up on Ana's commits.
        let mut commits: Vec<&ControlRecord> = ana.control.values().collect();
        commits.sort_by_key(|r| r.entry.unsigned.seq);
        let commits: Vec<Vec<u8>> = commits.iter().map(|r| r.entry.encode()).collect();
        for bytes in &commits {
            deliver(bytes, &mut [&mut bo, &mut cy]);
        }
        for (i, t) in [(0, 10), (1, 11), (2, 12)] {
            let post = [&mut ana, &mut bo, &mut cy][i]
                .post(&text("before her"), T0 + t, &mut rng)
                .unwrap();
            deliver(&post.bytes, &mut [&mut ana, &mut bo, &mut cy]);
        }
        // Cy writes while Ana admits Hana: Ana has not seen it yet, Bo has.
        let concurrent = cy.post(&text("meanwhile"), T0 + 20, &mut rng).unwrap();
        bo.receive(&concurrent.bytes).unwrap();
        let newcomer = MemberSecret::generate(&mut rng);
        let hana_id = newcomer.id();
        let (commit, welcome) = ana
            .admit(
                newcomer.public(),
                Role::Member,
                "Hana",
                1,
                T0 + 21,
                &mut rng,
            )
            .unwrap();
        deliver(&commit.bytes, &mut [&mut bo, &mut cy]);
        ana.receive(&concurrent.bytes).unwrap();
        let hana = Circle::join(&welcome, newcomer).unwrap();
        // A modified client asks for every author's whole log.
        let everything: Vec<Want> = ana
            .marks()
            .into_iter()
            .map(|(author, to_seq)| Want {
                author,
                from_seq: 0,
                to_seq,
            })
            .collect();
        let greedy = SyncRequest::new(hana.id(), HighWaterMarks::new(), everything, 512).unwrap();
        let honest = SyncRequest::new(hana.id(), hana.marks(), Vec::new(), 512).unwrap();
        let horizon = &ana.membership().members[&hana_id].horizon;
        for server in [&ana, &bo] {
            for request in [&greedy, &honest] {
                let served = server.serving(&hana_id, request).wants;
                let below = served
                    .iter()
                    .filter(|w| horizon.get(&w.author).is_some_and(|h| w.from_seq <= *h))
                    .count();
                if share {
                    assert!(below > 0, "a circle that shares history serves it");
                } else {
                    assert_eq!(
                        below, 0,
                        "a newcomer was served entries from before she joined"
                    );
                }
                let cy_seq = concurrent.entry.unsigned.seq;
                assert!(
                    served
                        .iter()
                        .any(|w| w.author == cy.me() && w.seqs().contains(&cy_seq)),
                    "the entry concurrent with her Add must still be served"
                );
            }
        }
        // A stranger is served nothing at all.
        let stranger = MemberSecret::generate(&mut rng).id();
        assert_eq!(ana.serving(&stranger, &greedy), Serving::default());
    }
}

/// Control equivocation: Mal signs two different commits at one seq and sends one to Ana, the
/// other to Ben. Forwarding what they took (gossip) must bring them to one membership and one
/// epoch after a repair, and a member who was away gets both versions by catch-up alone.
#[test]
fn equivocating_control_entries_converge() {
    let mut rng = ChaCha20Rng::seed_from_u64(97);
    let mut all = circle_of(4, CircleSettings::default(), &mut rng);
    let (mut ana, mut ben, mut dan, mut mal) = {
        let mut it = all.drain(..);
        (
            it.next().unwrap(),
            it.next().unwrap(),
            it.next().unwrap(),
            it.next().unwrap(),
        )
    };
    let mut twin = mal.clone();
    let a = mal.rotate(T0 + 10, &mut rng).unwrap();
    let b = twin.rotate_my_key(T0 + 10, &mut rng).unwrap();
    assert_eq!(a.entry.unsigned.seq, b.entry.unsigned.seq);
    ana.receive(&a.bytes).unwrap();
    ben.receive(&b.bytes).unwrap();
    // Each forwards what she took; the second version reaches each of them.
    let at_ana = ana
        .receive(&b.bytes)
        .expect("the other version is taken into the fold");
    assert_eq!(at_ana.equivocating_control.len(), 1);
    ben.receive(&a.bytes)
        .expect("the other version is taken into the fold");
    assert_eq!(ana.equivocations().len(), 1, "the evidence is kept");
    assert_eq!(ana.membership().members, ben.membership().members);
    assert_eq!(
        ana.membership().leaves().len(),
        2,
        "two commits at one seq are concurrent commits"
    );
    // A repair merges them (Ana steps in; the designated repairer may be away).
    assert!(ana.repair_due() && ben.repair_due());
    let repairs = [ana.rotate(T0 + 20, &mut rng).unwrap()];
    ben.receive(&repairs[0].bytes).unwrap();
    assert!(!ana.repair_due() && !ben.repair_due());
    assert_eq!(
        ana.membership().current_epoch().map(|e| e.id),
        ben.membership().current_epoch().map(|e| e.id),
    );
    // Dan was away: catch-up from Ana alone (her log holds version a) carries version b too.
    let request = SyncRequest::new(ana.id(), dan.marks(), Vec::new(), 512).unwrap();
    let serving = ana.serving(&dan.me(), &request);
    let wants = serving.wants.clone();
    // As a responder sends it: the other versions first, then the planned entries.
    let mut batch: Vec<Vec<u8>> = ana.equivocating_controls(&serving);
    for (author, seq) in crate::sync::plan_batch(&wants, 512) {
        if author == a.entry.unsigned.author && seq == a.entry.unsigned.seq {
            batch.push(a.bytes.clone());
        } else if let Some(r) = repairs.iter().find(|r| r.entry.unsigned.author == author) {
            batch.push(r.bytes.clone());
        }
    }
    assert!(
        batch.contains(&b.bytes),
        "catch-up carries the other version"
    );
    for bytes in &batch {
        let _ = dan.receive(bytes);
    }
    assert_eq!(dan.membership().members, ana.membership().members);
    assert_eq!(
        dan.membership().current_epoch().map(|e| e.id),
        ana.membership().current_epoch().map(|e| e.id),
        "the member who was away folds the same set"
    );
}

/// H3: a member's commit addressed to herself alone must not freeze the circle.
#[test]
fn a_commit_to_a_subset_of_members_is_rejected_and_nobody_is_frozen() {
    let mut rng = ChaCha20Rng::seed_from_u64(93);
    let mut all = circle_of(3, CircleSettings::default(), &mut rng);
    let mal_id = all[2].me();
    // Her own client refuses to write it …
    let (parent, _) = all[2].control_epoch().unwrap();
    let refused = all[2].commit_with(
        ControlOp::Rotate,
        parent,
        vec![mal_id],
        None,
        T0 + 10,
        &mut rng,
    );
    assert_eq!(
        refused.unwrap_err(),
        CircleError::Control(ControlRejection::Recipients)
    );
    // … so she writes it with a modified one.
    let freeze = forge_commit(
        &mut all[2],
        ControlOp::Rotate,
        vec![mal_id],
        Vec::new(),
        Vec::new(),
        T0 + 10,
        &mut rng,
    )
    .unwrap();
    let (a, rest) = all.split_at_mut(1);
    let (b, _) = rest.split_at_mut(1);
    deliver(&freeze.bytes, &mut [&mut a[0], &mut b[0]]);
    for c in [&mut a[0], &mut b[0]] {
        c.post(&text("still here"), T0 + 20, &mut rng)
            .expect("an honest member can still post");
    }
    a[0].remove_member(&mal_id, T0 + 30, &mut rng)
        .expect("an honest facilitator can still remove");
}

/// H4: an entry with an extreme lamport must not panic, wrap or exhaust anyone's clock;
/// jumps are bounded and backdated entries refused.
#[test]
fn an_extreme_lamport_is_refused_and_nobody_panics() {
    let mut rng = ChaCha20Rng::seed_from_u64(94);
    let mut all = circle_of(2, CircleSettings::default(), &mut rng);
    let mut far = all[1].clone();
    far.lamport = u64::MAX - 1;
    let post = far.post(&text("far future"), T0 + 10, &mut rng).unwrap();
    let post = {
        // A modified client stamps it at the end of the clock.
        let mut unsigned = post.entry.unsigned.clone();
        unsigned.lamport = u64::MAX;
        let key = all[1].me.clone();
        let mut nonce_free = unsigned.clone();
        nonce_free.ciphertext.clear();
        unsigned.sign(&key).encode()
    };
    assert_eq!(
        all[0].receive(&post).unwrap_err(),
        Rejection::Lamport("it jumps too far ahead")
    );
    // Within the bound, it is taken, and the receiver's next entry still fits every bound.
    let mut near = all[1].clone();
    near.lamport = near.lamport + MAX_LAMPORT_JUMP - 10;
    let jumpy = near.post(&text("jumpy"), T0 + 15, &mut rng).unwrap();
    all[0].receive(&jumpy.bytes).unwrap();
    let next = all[0]
        .post(&text("fine"), T0 + 20, &mut rng)
        .expect("the receiver still writes");
    all[1].receive(&next.bytes).expect("and everyone takes it");
    // A backdated entry (not above the author's previous one) is refused.
    let mut back = all[0].clone();
    back.lamport = 0;
    back.head_lamports.clear();
    back.membership
        .epochs
        .values_mut()
        .for_each(|e| e.position.0 = 0);
    let late = back.post(&text("backdated"), T0 + 30, &mut rng).unwrap();
    assert!(matches!(
        all[1].receive(&late.bytes),
        Err(Rejection::Lamport(_))
    ));
}

/// A member who wrote in an epoch that a removed member started (before the removal reached
/// her) is not frozen out: that commit is void for everyone, her entries in its epoch take
/// their place in her log without counting, and what she writes next is taken. Found by the
/// adversarial simulation (seed 184): her log stayed stuck at everyone else for good.
#[test]
fn a_member_who_wrote_in_a_removed_members_epoch_is_not_frozen() {
    let mut rng = ChaCha20Rng::seed_from_u64(93);
    let (mut ana, mut ben, mut mal) = three(&mut rng);
    // Mal rotates and tells only Ben; Ben writes in her epoch.
    let commit = mal.rotate(T0 + 10, &mut rng).unwrap();
    ben.receive(&commit.bytes).unwrap();
    let in_mal_epoch = ben
        .post(&text("written in Mal's epoch"), T0 + 20, &mut rng)
        .unwrap();
    assert_eq!(in_mal_epoch.entry.unsigned.epoch, EpochId::from(commit.id));
    // Ana, who never saw that commit, removes Mal; Ben repairs and writes again.
    let removal = ana.remove_member(&mal.me(), T0 + 30, &mut rng).unwrap();
    ben.receive(&removal.bytes).unwrap();
    let repair = ben.rotate(T0 + 40, &mut rng).unwrap();
    let after = ben
        .post(&text("after the repair"), T0 + 50, &mut rng)
        .unwrap();
    // Ana gets Ben's entry first (it waits for Mal's commit), then the rest.
    assert!(ana.receive(&in_mal_epoch.bytes).unwrap().waiting.is_some());
    let void = ana.receive(&commit.bytes).unwrap();
    assert_eq!(void.equivocating_control.len() + void.accepted.len(), 2);
    assert!(
        ana.check_writer(&in_mal_epoch.entry).is_err(),
        "a void entry must not count"
    );
    assert!(!ana.epoch_secrets.contains_key(&EpochId::from(commit.id)));
    ana.receive(&repair.bytes).unwrap();
    let taken = ana.receive(&after.bytes).unwrap();
    assert!(
        matches!(taken.accepted[0].opened, Opened::Content(_)),
        "Ben's next entry must be taken"
    );
    assert_eq!(
        ana.membership.current_epoch().map(|e| e.id),
        ben.membership.current_epoch().map(|e| e.id)
    );
    // A removed member cannot make devices keep her writing without end.
    let mut spam = mal.clone();
    let mut refused = 0;
    for k in 0..(MAX_OFF_LOG_CONTROL_PER_AUTHOR + 8) {
        let mut twin = spam.clone();
        let Ok(c) = twin.rotate(T0 + 60 + k as u64, &mut rng) else {
            continue;
        };
        if ana.receive(&c.bytes).is_err() {
            refused += 1;
        }
        spam = twin;
    }
    assert!(refused >= 8, "only {refused} refused");
}

/// A control entry counts whichever branch of a forked log a member kept. Mal signs two
/// posts at one seq (A to Ana and Ben, B to Dan), then writes on branch A and rotates her
/// key. Dan refuses branch A's next post (it names A as `prev`), so his copy of her log never
/// reaches the rotation: held there for good, it split the circle in the adversarial
/// simulation (seeds 456 and 16 more of 1,300). It must join Dan's control set at once.
/// And a control entry is judged by its epoch, not by the entry before it in its log, so a
/// member who gets the log in order takes the same control entries as one who gets a control
/// entry first.
#[test]
fn a_control_entry_above_a_fork_counts_on_both_branches() {
    let mut rng = ChaCha20Rng::seed_from_u64(98);
    let mut all = circle_of(4, CircleSettings::default(), &mut rng);
    let (mut ana, mut ben, mut dan, mut mal) = {
        let mut it = all.drain(..);
        (
            it.next().unwrap(),
            it.next().unwrap(),
            it.next().unwrap(),
            it.next().unwrap(),
        )
    };
    let mut twin = mal.clone();
    let a = mal.post(&text("branch A"), T0 + 10, &mut rng).unwrap();
    let b = twin.post(&text("branch B"), T0 + 10, &mut rng).unwrap();
    assert_eq!(a.entry.unsigned.seq, b.entry.unsigned.seq);
    deliver(&a.bytes, &mut [&mut ana, &mut ben]);
    dan.receive(&b.bytes).unwrap();
    let a2 = mal.post(&text("more on A"), T0 + 20, &mut rng).unwrap();
    let key = mal.rotate_my_key(T0 + 30, &mut rng).unwrap();
    deliver(&a2.bytes, &mut [&mut ana, &mut ben]);
    assert!(matches!(
        dan.receive(&a2.bytes),
        Err(Rejection::Equivocation(_))
    ));
    deliver(&key.bytes, &mut [&mut ana, &mut ben]);
    let at_dan = dan
        .receive(&key.bytes)
        .expect("a control entry above the fork is taken");
    assert_eq!(at_dan.equivocating_control.len(), 1, "kept and forwarded");
    assert!(
        matches!(at_dan.waiting, Some(Waiting::Gap { .. })),
        "the gap is still fetched"
    );
    assert_eq!(dan.membership().members, ana.membership().members);
    assert_eq!(
        dan.membership().current_epoch().map(|e| e.id),
        ana.membership().current_epoch().map(|e| e.id),
    );
    // Dan keeps it off his log; a member who missed it gets it first in his catch-up answer.
    let cy_marks = {
        let mut m = ana.marks();
        m.insert(mal.me(), b.entry.unsigned.seq);
        m
    };
    let request = SyncRequest::new(dan.id(), cy_marks, Vec::new(), 512).unwrap();
    let serving = dan.serving(&ana.me(), &request);
    assert!(dan.equivocating_controls(&serving).contains(&key.bytes));

    // A modified client: a post with a high clock, then a control entry with a lower one
    // (still above its epoch's commit). In order or control entry first: the same outcome.
    let mut low = ben.clone();
    let mut high = low.clone();
    high.lamport += 1_000;
    let post = high.post(&text("high clock"), T0 + 40, &mut rng).unwrap();
    low.logs = high.logs.clone();
    let rotation = low.rotate_my_key(T0 + 50, &mut rng).unwrap();
    assert!(rotation.entry.unsigned.lamport < post.entry.unsigned.lamport);
    assert_eq!(rotation.entry.unsigned.seq, post.entry.unsigned.seq + 1);
    let mut in_order = ana.clone();
    in_order.receive(&post.bytes).unwrap();
    in_order
        .receive(&rotation.bytes)
        .expect("in order, a control entry is judged by its epoch");
    let mut control_first = ana.clone();
    control_first.receive(&rotation.bytes).unwrap();
    control_first.receive(&post.bytes).unwrap();
    assert_eq!(
        in_order.membership().members,
        control_first.membership().members
    );
    assert_eq!(
        in_order.membership().current_epoch().map(|e| e.id),
        control_first.membership().current_epoch().map(|e| e.id),
    );
    // The log takes it when it comes again in order (sync re-sends what marks lack).
    let again = control_first.receive(&rotation.bytes).unwrap();
    assert_eq!(again.accepted.len(), 1, "now in its author's log");
    assert_eq!(control_first.marks(), in_order.marks());
}

/// A member added concurrently with a branch of the epoch tree cannot open the control
/// entries written on it (its epochs are not hers); the repair that merges the branch must give
/// her their secrets, or she keeps another membership for good. Found by the adversarial
/// simulation (seed 212): Mal rotated, changed her key in her own epoch, and Neo, added by Ana
/// meanwhile, never folded the key change.
#[test]
fn a_member_added_beside_a_branch_folds_its_control_entries_after_the_repair() {
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let (mut ana, mut ben, mut mal) = three(&mut rng);
    // Mal's branch: a rotation, then a key change written in her new epoch.
    let rotation = mal.rotate(T0 + 10, &mut rng).unwrap();
    let key = mal.rotate_my_key(T0 + 20, &mut rng).unwrap();
    // Meanwhile Ana, who has seen neither, adds Neo.
    let (add, mut neo) = admit_newcomer(&mut ana, "Neo", T0 + 15, &mut rng);
    for bytes in [&add.bytes, &rotation.bytes, &key.bytes] {
        deliver(bytes, &mut [&mut ben]);
    }
    for bytes in [&rotation.bytes, &key.bytes] {
        deliver(bytes, &mut [&mut ana, &mut neo]);
    }
    assert_ne!(
        neo.membership().members,
        ana.membership().members,
        "Neo cannot open the key change written in Mal's epoch"
    );
    // Ana repairs: her commit merges Mal's branch.
    assert!(ana.repair_due());
    let repair = ana.rotate(T0 + 30, &mut rng).unwrap();
    deliver(&repair.bytes, &mut [&mut ben, &mut neo]);
    assert_eq!(
        neo.membership().members,
        ana.membership().members,
        "the repair gave Neo the branch's secrets"
    );
    assert_eq!(
        neo.membership().current_epoch().map(|e| e.id),
        ana.membership().current_epoch().map(|e| e.id),
    );
    assert_eq!(ben.membership().members, ana.membership().members);
}

/// The same when the repair that merges the branch reaches the newcomer before the branch
/// does: the `extra` secrets for the branch's epochs cannot be judged yet (she does not know
/// those epochs), so her package waits until they are in her fold instead of being dropped.
/// Found by the adversarial simulation with Mal's odd-clock commits (seed 575): the package
/// was settled at once, the branch's secrets refused as unknown, and she never folded the
/// control entries written on it.
#[test]
fn a_merge_that_arrives_before_its_branch_still_gives_the_branchs_secrets() {
    let mut rng = ChaCha20Rng::seed_from_u64(103);
    let (mut ana, mut ben, mut mal) = three(&mut rng);
    // Mal's branch: a rotation, then a key change written in her new epoch.
    let rotation = mal.rotate(T0 + 10, &mut rng).unwrap();
    let key = mal.rotate_my_key(T0 + 20, &mut rng).unwrap();
    // Meanwhile Ana, who has seen neither, adds Neo; then she gets the branch and repairs.
    let (add, mut neo) = admit_newcomer(&mut ana, "Neo", T0 + 15, &mut rng);
    for bytes in [&add.bytes, &rotation.bytes, &key.bytes] {
        deliver(bytes, &mut [&mut ben]);
    }
    deliver(&rotation.bytes, &mut [&mut ana]);
    deliver(&key.bytes, &mut [&mut ana]);
    assert!(ana.repair_due());
    let repair = ana.rotate(T0 + 30, &mut rng).unwrap();
    deliver(&repair.bytes, &mut [&mut ben]);
    // Neo gets the repair first, then the branch it merges.
    neo.receive(&repair.bytes).unwrap();
    for bytes in [&rotation.bytes, &key.bytes] {
        let _ = neo.receive(bytes);
    }
    assert!(
        neo.held_epochs().contains(&EpochId::from(rotation.id)),
        "the repair's package gave Neo the branch's secret once she knew the branch"
    );
    assert_eq!(
        neo.membership().members,
        ana.membership().members,
        "Neo folds the key change written on the branch"
    );
    assert_eq!(
        neo.membership().current_epoch().map(|e| e.id),
        ana.membership().current_epoch().map(|e| e.id),
    );
    assert!(!neo.repair_due());
}

/// The same when the branch forked from an epoch the newcomer was never given and that she
/// merged herself without reading it: the repair that merges the branch's next commit must give
/// her the key of the epoch that commit was written in. Found by the adversarial simulation
/// (seed 2138).
#[test]
fn a_newcomer_who_merged_a_branch_blind_folds_what_grows_on_it_after_the_next_repair() {
    let mut rng = ChaCha20Rng::seed_from_u64(101);
    let (mut ana, mut ben, mut mal) = three(&mut rng);
    let branch = mal.rotate(T0 + 10, &mut rng).unwrap();
    let (add, mut neo) = admit_newcomer(&mut ana, "Neo", T0 + 15, &mut rng);
    // Neo merges Mal's branch (she can open its commit, not its epoch).
    neo.receive(&branch.bytes).unwrap();
    assert!(neo.repair_due());
    let blind = neo.rotate(T0 + 20, &mut rng).unwrap();
    // Mal, who has not seen that repair, changes her key in her own epoch.
    let key = mal.rotate_my_key(T0 + 25, &mut rng).unwrap();
    assert_eq!(key.entry.unsigned.epoch, EpochId::from(branch.id));
    for bytes in [&add.bytes, &branch.bytes, &blind.bytes, &key.bytes] {
        deliver(bytes, &mut [&mut ana, &mut ben]);
    }
    neo.receive(&key.bytes).unwrap();
    assert_ne!(neo.membership().members, ana.membership().members);
    assert!(ana.repair_due());
    let repair = ana.rotate(T0 + 30, &mut rng).unwrap();
    deliver(&repair.bytes, &mut [&mut ben, &mut neo]);
    assert_eq!(
        neo.membership().members,
        ana.membership().members,
        "the repair gave Neo the key of the epoch Mal's key change was written in"
    );
    assert_eq!(
        neo.membership().current_epoch().map(|e| e.id),
        ana.membership().current_epoch().map(|e| e.id),
    );
}

/// A repair that merges a branch the newcomer cannot read may be rejected in her fold for its
/// clock: the branch's newest commit, which she holds back for its (unreadable) epoch, is what
/// bounds the repair's clock for everyone else, and she cannot count it. The secrets she lacks
/// are in that repair's package, so she takes its `extra` secrets (confirmed, none from before
/// her Add) although the commit is not valid for her yet; then she folds the branch and the
/// repair fits. Found by the adversarial simulation with Mal's odd-clock commits (seed 722: an
/// honest repair by Ben; seeds 1259 and 2656: Mal's own merges): she kept another membership for
/// good.
#[test]
fn a_repair_rejected_for_a_clock_she_cannot_see_still_gives_the_branchs_secrets() {
    let mut rng = ChaCha20Rng::seed_from_u64(104);
    let (mut ana, mut ben, mut mal) = three(&mut rng);
    let before = ana.held_epochs();
    // Mal's branch, each commit as far ahead of its epoch as a writer goes: a rotation, a
    // key change Neo cannot open (it is written in Mal's epoch), and a rotation she holds back
    // for its epoch.
    let mut branch = Vec::new();
    for t in 0..3 {
        mal.lamport = mal.lamport.saturating_add(MAX_LAMPORT_JUMP);
        let now = T0 + 10 + t;
        branch.push(if t == 1 {
            mal.rotate_my_key(now, &mut rng).unwrap()
        } else {
            mal.rotate(now, &mut rng).unwrap()
        });
    }
    // Meanwhile Ana, who has seen none of it, adds Neo.
    let (add, mut neo) = admit_newcomer(&mut ana, "Neo", T0 + 15, &mut rng);
    // Ben writes in Mal's newest epoch, then learns of the Add and repairs: his clock is his
    // own post's, far beyond the Add's, within the bound of the branch tip he merges.
    for b in &branch {
        ben.receive(&b.bytes).unwrap();
    }
    let post = ben
        .post(&text("in Mal's epoch"), T0 + 20, &mut rng)
        .unwrap();
    ben.receive(&add.bytes).unwrap();
    assert!(ben.repair_due());
    let repair = ben.rotate(T0 + 30, &mut rng).unwrap();
    let tip = EpochId::from(branch[2].id);
    assert_eq!(
        ben.membership().epochs[&EpochId::from(repair.id)].merges,
        vec![tip]
    );
    for bytes in branch
        .iter()
        .map(|b| &b.bytes)
        .chain([&post.bytes, &repair.bytes])
    {
        deliver(bytes, &mut [&mut ana]);
    }
    // Neo gets the branch (she opens its first commit only), Ben's post and his repair.
    for bytes in branch.iter().map(|b| &b.bytes).chain([&post.bytes]) {
        let _ = neo.receive(bytes);
    }
    assert_ne!(neo.membership().members, ana.membership().members);
    // Her fold refuses the repair: the tip that bounds its clock is held back.
    let body = neo.open_control(&repair.entry).unwrap().unwrap();
    let probe = neo
        .fold_with(Some((repair.id, &repair.entry.unsigned, &body)))
        .unwrap();
    assert_eq!(
        probe.rejected.get(&repair.id),
        Some(&ControlRejection::ClockJump)
    );
    neo.receive(&repair.bytes).unwrap();
    assert_eq!(
        neo.membership().members,
        ana.membership().members,
        "Neo folds the branch once the repair gave her its secrets"
    );
    assert_eq!(
        neo.membership().current_epoch().map(|e| e.id),
        Some(EpochId::from(repair.id)),
        "the repair is valid for Neo once she folded the branch"
    );
    assert_eq!(
        ana.membership().current_epoch().map(|e| e.id),
        Some(EpochId::from(repair.id)),
    );
    assert!(neo.held_epochs().contains(&tip));
    assert!(neo.held_epochs().is_disjoint(&before), "Neo holds history");
    assert!(!neo.repair_due());
}

/// The other side of the rule above: a commit that is not valid in the recipient's fold gives
/// her neither its own secret nor one from before her Add, nor one that does not confirm.
#[test]
fn a_rejected_commit_gives_no_history_its_own_secret_or_a_planted_one() {
    let mut rng = ChaCha20Rng::seed_from_u64(105);
    let (mut ana, mut ben, mut mal) = three(&mut rng);
    let history = ana.control_epoch().unwrap().0;
    let real = mal.epoch_secrets[&history].clone();
    let branch = mal.rotate(T0 + 10, &mut rng).unwrap();
    let (add, mut neo) = admit_newcomer(&mut ana, "Neo", T0 + 15, &mut rng);
    deliver(&add.bytes, &mut [&mut ben, &mut mal]);
    deliver(&branch.bytes, &mut [&mut ana, &mut ben, &mut neo]);
    // Mal's commit leaves Ben out (rejected by everyone) and carries the history before
    // Neo's Add and a made-up secret for her own branch.
    let planted = EpochSecret::generate(&mut rng);
    let b = EpochId::from(branch.id);
    let recipients = vec![mal.me(), neo.me()];
    let forged = forge_commit(
        &mut mal,
        ControlOp::Rotate,
        recipients,
        vec![b],
        vec![(history, real), (b, planted)],
        T0 + 20,
        &mut rng,
    )
    .unwrap();
    neo.receive(&forged.bytes).unwrap();
    assert!(
        neo.membership().rejected.contains_key(&forged.id),
        "the forged commit is not valid"
    );
    let held = neo.held_epochs();
    assert!(!held.contains(&history), "Neo holds history");
    assert!(!held.contains(&b), "Neo holds a planted secret");
    assert!(!held.contains(&EpochId::from(forged.id)));
}

/// Two versions of a control entry in an epoch a member cannot read: she must keep the second
/// sealed, as she keeps the first in the log, so that once a repair gives her the epoch's key
/// she folds both like everyone. Refusing the version she could not open left her with another
/// set for good (adversarial simulation, seed 3543).
#[test]
fn an_unreadable_second_version_of_a_control_entry_is_kept_sealed() {
    let mut rng = ChaCha20Rng::seed_from_u64(102);
    let (mut ana, mut ben, mut mal) = three(&mut rng);
    let branch = mal.rotate(T0 + 10, &mut rng).unwrap();
    let (add, mut neo) = admit_newcomer(&mut ana, "Neo", T0 + 15, &mut rng);
    // In her own epoch Mal signs two control entries at one seq.
    let mut twin = mal.clone();
    let first = mal.rotate_my_key(T0 + 20, &mut rng).unwrap();
    let second = twin.rotate(T0 + 20, &mut rng).unwrap();
    assert_eq!(first.entry.unsigned.seq, second.entry.unsigned.seq);
    for bytes in [&add.bytes, &branch.bytes, &first.bytes, &second.bytes] {
        deliver(bytes, &mut [&mut ana, &mut ben]);
    }
    for bytes in [&branch.bytes, &first.bytes] {
        neo.receive(bytes).unwrap();
    }
    let kept = neo
        .receive(&second.bytes)
        .expect("the second version is kept, sealed");
    assert_eq!(kept.equivocating_control.len(), 1);
    assert!(ana.repair_due());
    let repair = ana.rotate(T0 + 30, &mut rng).unwrap();
    deliver(&repair.bytes, &mut [&mut ben, &mut neo]);
    for c in [&ben, &neo] {
        assert_eq!(c.membership().members, ana.membership().members);
        assert_eq!(
            c.membership().current_epoch().map(|e| e.id),
            ana.membership().current_epoch().map(|e| e.id),
        );
        assert_eq!(
            c.membership().leaves().len(),
            ana.membership().leaves().len()
        );
    }
}

/// A commit's clock is bounded by the epochs it descends from (its parent and the commits it
/// merges), in the fold, not by the entry before it in its author's log. Ben's clock ran far
/// ahead in Mal's epochs; his repair from Ana's older epoch carries that clock, and a member
/// who gets the repair before Ben's earlier entries (Neo, who cannot even read Mal's epochs)
/// must take it like everyone. Found by the adversarial simulation (seed 1789: Neo refused the
/// repair for good, "it jumps too far ahead"). And a commit that does jump too far is applied
/// by nobody.
#[test]
fn a_commit_is_bounded_by_the_epochs_it_descends_from() {
    let mut rng = ChaCha20Rng::seed_from_u64(100);
    let (mut ana, mut ben, mut mal) = three(&mut rng);
    // Mal runs her clock up by two rotations, each as far as a writer goes.
    mal.lamport = u64::MAX / 4;
    let first = mal.rotate(T0 + 10, &mut rng).unwrap();
    mal.lamport = u64::MAX / 4;
    let second = mal.rotate(T0 + 20, &mut rng).unwrap();
    let start = ana.membership().current_epoch().unwrap().position.0;
    assert!(second.entry.unsigned.lamport - start > MAX_LAMPORT_JUMP);
    // Meanwhile Ana, who sees neither, adds Neo.
    let (add, mut neo) = admit_newcomer(&mut ana, "Neo", T0 + 15, &mut rng);
    // Ben writes in Mal's newest epoch, then learns of the addition and repairs.
    deliver(&first.bytes, &mut [&mut ben]);
    deliver(&second.bytes, &mut [&mut ben]);
    let post = ben
        .post(&text("in Mal's epoch"), T0 + 25, &mut rng)
        .unwrap();
    ben.receive(&add.bytes).unwrap();
    assert!(ben.repair_due());
    let repair = ben.rotate(T0 + 30, &mut rng).unwrap();
    assert_eq!(
        ben.membership().epochs[&EpochId::from(repair.id)].parent,
        EpochId::from(add.id),
        "the repair starts from Ana's epoch"
    );
    assert!(repair.entry.unsigned.lamport - start > MAX_LAMPORT_JUMP);
    // Neo gets Mal's commits and the repair first; Ben's post (in an epoch she cannot read)
    // comes last.
    for bytes in [&first.bytes, &second.bytes, &repair.bytes, &post.bytes] {
        deliver(bytes, &mut [&mut ana, &mut neo]);
    }
    for c in [&ana, &neo] {
        assert_eq!(
            c.membership().current_epoch().map(|e| e.id),
            Some(EpochId::from(repair.id)),
            "the repair is taken"
        );
        assert!(!c.repair_due());
    }
    // A commit whose clock runs too far beyond the epochs it descends from is applied by
    // nobody: the fold refuses it, so even its own writer cannot take it.
    let mut liar = ana.clone();
    let top = liar.membership().current_epoch().unwrap().position.0;
    liar.head_lamports
        .insert(liar.me(), top + MAX_LAMPORT_JUMP + 10);
    assert!(matches!(
        liar.rotate(T0 + 40, &mut rng),
        Err(CircleError::Control(ControlRejection::ClockJump))
    ));
}

/// A member removed while she was away still learns of her removal: a peer serves her what
/// she lacks up to the Remove (the rotation before it included), nothing written after it,
/// and a member who merely left is served nothing.
#[test]
fn a_removed_member_who_missed_her_removal_is_served_up_to_it_and_no_further() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut all = circle_of(4, CircleSettings::default(), &mut rng);
    let (mut ana, mut ben, mut cy, mut dee) = {
        let mut it = all.drain(..);
        let mut next = || it.next().unwrap();
        (next(), next(), next(), next())
    };
    let mut written: BTreeMap<(MemberId, u64), (u64, Vec<u8>)> = BTreeMap::new();
    let mut keep = |a: &Authored| {
        let h = &a.entry.unsigned;
        written.insert((h.author, h.seq), (h.lamport, a.bytes.clone()));
    };
    // While Cy is away: Ben posts, Ana rotates, posts, removes Cy, and posts after.
    let before = ben
        .post(&text("while cy was away"), T0 + 10, &mut rng)
        .unwrap();
    ana.receive(&before.bytes).unwrap();
    let rotation = ana.rotate(T0 + 20, &mut rng).unwrap();
    let in_rotation = ana
        .post(&text("in the new epoch"), T0 + 30, &mut rng)
        .unwrap();
    let removal = ana.remove_member(&cy.me(), T0 + 40, &mut rng).unwrap();
    let after = ana
        .post(&text("after cy was removed"), T0 + 50, &mut rng)
        .unwrap();
    for a in [&before, &rotation, &in_rotation, &removal, &after] {
        keep(a);
    }
    // Dee leaves (she is not removed); Ana takes it.
    let leave = dee.leave(T0 + 60, &mut rng).unwrap();
    ana.receive(&leave.bytes).unwrap();
    assert_eq!(
        dee.my_departure().map(|d| d.removed_by),
        Some(None),
        "dee left by herself"
    );
    assert!(cy.am_member(), "cy has not heard of her removal yet");
    assert_eq!(cy.my_departure(), None);

    let request = SyncRequest::new(cy.id(), cy.marks(), Vec::new(), 512).unwrap();
    let serving = ana.serving(&cy.me(), &request);
    let limit = serving
        .lamport_limit
        .expect("a removed member is served up to her removal");
    assert_eq!(limit, removal.entry.unsigned.lamport);
    let answer = ana.answer_sync(&serving, &request, |author, from, at_most| {
        written
            .range((author, from)..=(author, u64::MAX))
            .take(at_most)
            .map(
                |(&(_, seq), (lamport, bytes))| crate::circle::StoredPosition {
                    seq,
                    lamport: *lamport,
                    bytes: bytes.clone(),
                },
            )
            .collect()
    });
    assert!(!answer.ask_back, "a removed member is no peer to sync from");
    let served: Vec<&Vec<u8>> = answer.response.entries.iter().collect();
    assert!(
        served.contains(&&removal.bytes),
        "the removal itself is served"
    );
    assert!(served.contains(&&rotation.bytes));
    assert!(
        !served.contains(&&after.bytes),
        "nothing written after the removal is served"
    );
    for bytes in served {
        cy.receive(bytes).unwrap();
    }
    assert!(!cy.am_member(), "cy learns she was removed");
    assert_eq!(
        cy.my_departure().map(|d| d.removed_by),
        Some(Some(ana.me())),
        "and by whom"
    );
    assert_eq!(ana.my_departure(), None, "a member has not departed");
    assert!(
        !cy.membership().members.contains_key(&cy.me()),
        "and her view agrees"
    );

    // A member who left, and a stranger, are served nothing.
    let request = SyncRequest::new(dee.id(), dee.marks(), Vec::new(), 512).unwrap();
    assert_eq!(ana.serving(&dee.me(), &request), Serving::default());
    let stranger = MemberSecret::generate(&mut rng).id();
    assert_eq!(ana.serving(&stranger, &request), Serving::default());
    // A current member has no limit.
    let request = SyncRequest::new(ben.id(), ben.marks(), Vec::new(), 512).unwrap();
    assert_eq!(ana.serving(&ben.me(), &request).lamport_limit, None);
}

/// L-M1: a commit stamped far in the future neither puts the next rotation off nor keeps an
/// older epoch's secret alive for good; one stamped in the past does not get it deleted early.
#[test]
fn a_commit_stamped_far_from_now_moves_neither_rotation_nor_key_deletion() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let mut all = circle_of(3, CircleSettings::default(), &mut rng);
    let (mut ana, _ben, mut mal) = {
        let mut it = all.drain(..);
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };
    let first = ana.membership().current_epoch().unwrap().id;
    const YEAR: u64 = 365 * 24 * 3600 * 1000;
    let hour = 3600 * 1000;
    let future = mal.rotate(T0 + 100 * YEAR, &mut rng).unwrap();
    ana.receive(&future.bytes).unwrap();
    assert_eq!(
        ana.membership().current_epoch().map(|e| e.id),
        Some(EpochId::from(future.id))
    );
    assert!(
        ana.rotation_due(T0 + hour),
        "an epoch dated 100 years ahead must be rotated at once"
    );
    let honest = ana.rotate(T0 + hour, &mut rng).unwrap();
    assert!(!ana.rotation_due(T0 + 2 * hour));
    let starts = ana.epoch_starts(T0 + 2 * hour);
    assert_eq!(starts[&EpochId::from(future.id)], T0 + hour);
    // The first epoch was superseded by the future-dated one, whose start is taken as its
    // successor's: its secret goes once the retention window has passed.
    let window = DEFAULT_KEY_RETENTION_MS;
    assert!(ana.forget_expired_keys(T0 + window / 2).is_empty());
    let forgotten = ana.forget_expired_keys(T0 + hour + window);
    assert!(forgotten.contains(&first), "forgotten: {forgotten:?}");
    assert!(ana.epoch_secrets.contains_key(&EpochId::from(honest.id)));

    // A commit dated 1970 does not make the epoch before it count as superseded in 1970.
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let mut all = circle_of(3, CircleSettings::default(), &mut rng);
    let (mut ana, _ben, mut mal) = {
        let mut it = all.drain(..);
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };
    let first = ana.membership().current_epoch().unwrap().id;
    let past = mal.rotate(0, &mut rng).unwrap();
    ana.receive(&past.bytes).unwrap();
    assert!(ana.epoch_starts(T0)[&EpochId::from(past.id)] >= T0);
    assert!(
        !ana.forget_expired_keys(T0 + window / 2).contains(&first),
        "a past-dated commit must not get the secret before it deleted early"
    );
}

/// M1: a Remove of the creator with no cutoff must not empty the circle.
#[test]
fn a_remove_with_no_cutoff_never_undoes_the_creation() {
    let mut rng = ChaCha20Rng::seed_from_u64(95);
    let mut all = circle_of(3, CircleSettings::default(), &mut rng);
    let ben_id = all[1].me();
    let promote = all[0].promote(&ben_id, T0 + 1, &mut rng).unwrap();
    for c in all.iter_mut().skip(1) {
        c.receive(&promote.bytes).unwrap();
    }
    let ana_id = all[0].me();
    let recipients: Vec<MemberId> = all[1]
        .member_ids()
        .into_iter()
        .filter(|m| *m != ana_id)
        .collect();
    // Ben's modified client writes it whatever his own circle says.
    let mut ben = all[1].clone();
    let bytes = forge_commit(
        &mut ben,
        ControlOp::Remove {
            member: ana_id,
            cutoff: None,
        },
        recipients,
        Vec::new(),
        Vec::new(),
        T0 + 2,
        &mut rng,
    )
    .unwrap()
    .bytes;
    let carol = &mut all[2];
    let _ = carol.receive(&bytes);
    assert!(
        carol.membership.creator.is_some(),
        "the creation was undone"
    );
    assert!(
        carol.membership.members.contains_key(&ben_id),
        "the circle lost its members"
    );
}

/// M2: a stranger cannot fill the held-entry queue, and a member only up to her cap.
#[test]
fn the_held_queue_takes_no_stranger_and_stays_within_its_caps() {
    let mut rng = ChaCha20Rng::seed_from_u64(96);
    let mut all = circle_of(2, CircleSettings::default(), &mut rng);
    let post = all[0].post(&text("x"), T0, &mut rng).unwrap();
    let stranger = MemberSecret::generate(&mut rng);
    for seq in 1..200u64 {
        let mut unsigned = post.entry.unsigned.clone();
        unsigned.author = stranger.id();
        unsigned.seq = seq;
        unsigned.prev = Some(EntryId::from_bytes([seq as u8; 32]));
        let bytes = unsigned.sign(&stranger).encode();
        assert!(
            all[1].receive(&bytes).is_err(),
            "a stranger's entry was held"
        );
    }
    assert_eq!(all[1].pending_count(), 0);
}

/// Builds a commit exactly as the author wishes: recipients, merges and extra secrets of her
/// choosing (a modified client).
fn forge_commit(
    author: &mut Circle,
    op: ControlOp,
    recipients: Vec<MemberId>,
    merges: Vec<EpochId>,
    extra: Vec<(EpochId, EpochSecret)>,
    now_ms: u64,
    rng: &mut ChaCha20Rng,
) -> Result<Authored, CircleError> {
    let (parent, _) = author.control_epoch()?;
    let parent_key = author.control_keys[&parent].clone();
    let secret = EpochSecret::generate(rng);
    let me = author.me.id();
    let circle = author.id;
    let signer = author.me.clone();
    let dhs: Vec<DhPublicKey> = recipients
        .iter()
        .map(|m| author.membership.members[m].public.dh)
        .collect();
    let body = forged_body(author, op, recipients, merges, &secret, parent);
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let authored = author.build_entry(
        EntryKind::Control,
        parent,
        |seq| parent_key.entry_key(&me, seq),
        &wire_body(&body),
        |seq| {
            let prologue = epoch::package_prologue(&circle, &me, seq, &parent);
            let mut prng = package_rng(seed);
            dhs.iter()
                .map(|dh| {
                    let payload = PackagePayload {
                        secret: secret.clone(),
                        extra: extra.clone(),
                    };
                    epoch::make_package(&signer, dh, &prologue, &payload, &mut prng)
                })
                .collect()
        },
        now_ms,
        rng,
    )?;
    author.accept_own(&authored);
    Ok(authored)
}

fn forged_body(
    author: &Circle,
    op: ControlOp,
    recipients: Vec<MemberId>,
    merges: Vec<EpochId>,
    secret: &EpochSecret,
    parent: EpochId,
) -> ControlBody {
    let (seq, _) = author.next_position();
    ControlBody {
        op,
        recipients,
        merges,
        confirmation: Some(secret.confirmation(&author.id, &author.me.id(), seq, &parent)),
    }
}

fn wire_body(body: &ControlBody) -> Vec<u8> {
    body.encode()
}

// ----- the adversarial simulation ---------------------------------------------------------

/// One run of the adversarial simulation: three honest members (Ana facilitates), a malicious
/// member Mal with a modified client, a stranger with a key of her own, and later a newcomer
/// Neo who gets no shared history. Mal mixes honest posts with forged commits (subset
/// recipients, planted extras, bogus merges), extreme and backdated Lamport clocks, absurd
/// timestamps, withholding (she sends to whom she likes), equivocation and floods of entries
/// that would wait; the stranger floods too. Ana removes Mal at some step (from then on Mal's
/// device and stale copies of it ask honest members for catch-up) and admits Neo at another.
/// After every step the invariants of issue 9 are checked.
/// The ids of each author's newest positions a member keeps in memory in the simulation:
/// small, so duplicates and forks of older positions need their stored ids.
const LOG_WINDOW: usize = 3;

/// How many times a member of the simulation recalled a forgotten id (every run of a process).
static RECALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many torsioned entries Mal wrote (each checked alone and in a batch, with one answer).
static TORSIONED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// How many repairs a member who was not the designated repairer wrote, after her delay.
static STAND_INS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many syncs of the removed member's device lacked her `Remove` and were served by a
/// member whose log holds it, and in how many she learnt it.
static REMOVE_DUE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static REMOVE_LEARNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many of the others left her a member only because what she needed was kept off the
/// serving member's logs (see `removed_sync`).
static WITHHELD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct Adversary {
    seed: u64,
    rng: ChaCha20Rng,
    now: u64,
    /// Honest members: Ana (facilitator), Ben, Cat, and Neo once admitted.
    honest: Vec<Circle>,
    /// Each honest member's repair timers (proto's, as her node keeps them).
    upkeep: Vec<Upkeep>,
    /// Mal's own (honest-looking) circle, and her stale copies used to forge.
    mal: Circle,
    mal_stale: Vec<Circle>,
    stranger: MemberSecret,
    /// Every entry any honest member accepted or wrote, for the healing sync.
    seen: BTreeMap<EntryId, Vec<u8>>,
    /// What each honest member already took, so healing sends only what she lacks.
    has: Vec<BTreeSet<EntryId>>,
    /// The epoch Mal's removal started, once Ana removed her.
    removal: Option<EpochId>,
    neo_joined: bool,
    equivocated: bool,
    /// Mal's entries signed with an order-8 point in `R` (`torsioned`): valid by ZIP 215,
    /// refused by the cofactorless check.
    torsioned: Vec<EntryId>,
}

impl Adversary {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut all = circle_of(4, CircleSettings::default(), &mut rng);
        // A small window, so that old positions are forgotten and recalled.
        for c in &mut all {
            c.set_log_window(LOG_WINDOW);
        }
        let mal = all.pop().unwrap();
        let stranger = MemberSecret::generate(&mut rng);
        Adversary {
            seed,
            rng,
            now: T0 + 1000,
            upkeep: vec![Upkeep::default(); all.len()],
            honest: all,
            mal_stale: vec![mal.clone()],
            mal,
            stranger,
            seen: BTreeMap::new(),
            has: vec![BTreeSet::new(); 5],
            removal: None,
            neo_joined: false,
            equivocated: false,
            torsioned: Vec::new(),
        }
    }

    fn ctx(&self) -> String {
        format!("(adversary seed {})", self.seed)
    }

    fn roll(&mut self, n: u32) -> u32 {
        self.rng.next_u32() % n
    }

    /// Sends bytes to the honest members chosen by `to` (a bit mask) and to Mal's circle.
    fn send(&mut self, bytes: &[u8], to: u32) {
        for (i, c) in self.honest.iter_mut().enumerate() {
            if to & (1 << i) == 0 {
                continue;
            }
            match take(c, bytes, self.now) {
                Ok(receipt) => {
                    if std::env::var_os("HEARTH_ADVERSARY_TRACE").is_some()
                        && let Some(w) = &receipt.waiting
                        && let Ok((entry, _)) = Entry::decode_and_verify(bytes)
                        && entry.unsigned.kind == EntryKind::Control
                    {
                        eprintln!(
                            "member {i} holds {:?} seq {} lamport {} kind {:?}: {w:?}",
                            entry.unsigned.author,
                            entry.unsigned.seq,
                            entry.unsigned.lamport,
                            entry.unsigned.kind
                        );
                    }
                    held(
                        &mut self.has[i],
                        &mut self.seen,
                        EntryId::of_encoded(bytes),
                        receipt,
                    );
                }
                Err(e) => {
                    if std::env::var_os("HEARTH_ADVERSARY_TRACE").is_some()
                        && !matches!(e, Rejection::UnknownAuthor)
                        && let Ok((entry, _)) = Entry::decode_and_verify(bytes)
                    {
                        eprintln!(
                            "member {i} refused {:?} seq {} lamport {} kind {:?}: {e}",
                            entry.unsigned.author,
                            entry.unsigned.seq,
                            entry.unsigned.lamport,
                            entry.unsigned.kind
                        );
                    }
                }
            }
        }
        let _ = self.mal.receive_at(bytes, self.now);
    }

    /// Mal posts or commits with a signature whose `R` carries a point of order 8: valid by
    /// ZIP 215, refused by the cofactorless check. Its check alone (gossip) and in a batch
    /// (sync) must give one answer (PROTOCOL.md §2); then members take it alone, and in `heal`
    /// half of them in batches, under every invariant (a torsioned commit that some took and
    /// others refused would split the membership).
    fn torsioned(&mut self) {
        use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
        use curve25519_dalek::scalar::{Scalar, clamp_integer};
        use sha2::{Digest, Sha512};
        let mut mal = self.mal.clone();
        let mut r = self.rng.clone();
        let written = if self.roll(2) == 0 {
            mal.rotate(self.now, &mut r)
        } else {
            mal.post(&text("torsioned"), self.now, &mut r)
        };
        let Ok(written) = written else {
            return;
        };
        self.rng = r;
        // Her signing scalar, as Ed25519 derives it from the key's seed.
        let seed: [u8; 32] = mal.me.to_bytes()[..32].try_into().unwrap();
        let a = Scalar::from_bytes_mod_order(clamp_integer(
            Sha512::digest(seed)[..32].try_into().unwrap(),
        ));
        let public = (a * ED25519_BASEPOINT_POINT).compress();
        assert_eq!(public.as_bytes(), mal.me().as_bytes());
        let unsigned = written.entry.unsigned.clone();
        let nonce = Scalar::from_bytes_mod_order([self.roll(255) as u8; 32]);
        let signature = crate::identity::torsioned_signature(a, nonce, &unsigned.signed_bytes());
        let bytes = Entry {
            unsigned,
            signature,
        }
        .encode();
        // Checked alone (gossip) and at the end of a batch of other entries (sync), it gets
        // one answer, and ZIP 215 accepts it.
        let alone = Entry::decode_and_verify(&bytes).map(|_| ());
        let mut batch: Vec<Vec<u8>> = self.seen.values().rev().take(15).cloned().collect();
        batch.push(bytes.clone());
        let together = CheckedEntry::check_all(batch).pop().unwrap().map(|_| ());
        assert_eq!(
            alone,
            together,
            "a torsioned signature alone and in a batch {}",
            self.ctx()
        );
        assert_eq!(
            alone,
            Ok(()),
            "ZIP 215 accepts a torsioned signature {}",
            self.ctx()
        );
        TORSIONED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = EntryId::of_encoded(&bytes);
        // Her own device takes the torsioned copy in place of the one it wrote, so her log
        // goes on from it.
        if self.mal.receive_at(&bytes, self.now).is_err() {
            return;
        }
        self.torsioned.push(id);
        self.seen.insert(id, bytes.clone());
        let to = self.roll(1 << self.honest.len());
        self.send(&bytes, to);
    }

    /// Member `i` takes `batch` as a sync response: checked together ([`CheckedEntry::check_all`],
    /// one signature batch), then each in order ([`Circle::receive_checked`]), as a node does.
    fn send_batch(&mut self, i: usize, batch: Vec<Vec<u8>>) {
        let c = &mut self.honest[i];
        for checked in CheckedEntry::check_all(batch).into_iter().flatten() {
            let result = match c.receive_checked(&checked) {
                Err(Rejection::NeedsStoredId { author, seq }) => {
                    match c.logs().stored_id(&author, seq) {
                        Some(id) if c.recall(&author, seq, id) => {
                            RECALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            c.receive_checked(&checked)
                        }
                        _ => continue,
                    }
                }
                other => other,
            };
            let Ok(receipt) = result else {
                continue;
            };
            held(&mut self.has[i], &mut self.seen, checked.id(), receipt);
        }
    }

    fn everyone(&self) -> u32 {
        (1 << self.honest.len()) - 1
    }

    /// An honest member writes; she repairs first if she has to (invariant 3).
    fn honest_post(&mut self, i: usize) {
        let mut r = self.rng.clone();
        let result = self.honest[i].post(&text("honest"), self.now, &mut r);
        let authored = match result {
            Ok(a) => a,
            Err(CircleError::RekeyPending) => {
                let repair = self.honest[i]
                    .rotate(self.now, &mut r)
                    .unwrap_or_else(|e| panic!("member {i} cannot repair: {e} {}", self.ctx()));
                self.seen.insert(repair.id, repair.bytes.clone());
                let all = self.everyone();
                self.send(&repair.bytes, all);
                self.honest[i]
                    .post(&text("honest"), self.now, &mut r)
                    .unwrap_or_else(|e| panic!("member {i} cannot post: {e} {}", self.ctx()))
            }
            Err(e) => panic!("member {i} cannot post: {e} {}", self.ctx()),
        };
        self.rng = r;
        self.seen.insert(authored.id, authored.bytes.clone());
        let all = self.everyone();
        self.send(&authored.bytes, all);
    }

    /// Mal writes a commit of her choosing from her own circle or a stale copy.
    fn forge(&mut self) {
        let stale = self.roll(2) == 0 && !self.mal_stale.is_empty();
        let mut author = if stale {
            // An old view of the circle, but her log's real head: forging at a used position
            // would be equivocation, which `equivocate` covers on its own.
            let i = self.roll(self.mal_stale.len() as u32) as usize;
            let mut old = self.mal_stale[i].clone();
            old.logs = self.mal.logs.clone();
            old.head_lamports = self.mal.head_lamports.clone();
            old.lamport = old.lamport.max(self.mal.lamport);
            old
        } else {
            self.mal.clone()
        };
        if !author.am_member() || author.control_epoch().is_err() {
            return;
        }
        let members = author.member_ids();
        let recipients: Vec<MemberId> = match self.roll(3) {
            0 => members.clone(),
            1 => vec![author.me()],
            _ => members
                .iter()
                .copied()
                .filter(|_| self.rng.next_u32().is_multiple_of(2))
                .collect(),
        };
        if recipients.is_empty() {
            return;
        }
        let mut known: Vec<EpochId> = self.honest[0].membership.epochs.keys().copied().collect();
        known.push(EpochId::from_bytes([self.roll(255) as u8; 32]));
        let pick = |r: &mut ChaCha20Rng| known[(r.next_u32() as usize) % known.len()];
        let merges: Vec<EpochId> = (0..self.roll(3)).map(|_| pick(&mut self.rng)).collect();
        let mut extra: Vec<(EpochId, EpochSecret)> = Vec::new();
        for _ in 0..self.roll(4) {
            let e = pick(&mut self.rng);
            let s = match author.epoch_secrets.get(&e) {
                Some(s) if self.roll(2) == 0 => s.clone(),
                _ => EpochSecret::generate(&mut self.rng),
            };
            extra.push((e, s));
        }
        let op = match self.roll(3) {
            0 => ControlOp::Rotate,
            1 => ControlOp::UpdateKey {
                dh: author.me.with_new_dh(&mut self.rng).dh_public(),
            },
            _ => ControlOp::Remove {
                member: self.honest[0].me(),
                cutoff: None,
            },
        };
        let mut r = self.rng.clone();
        let forged = forge_commit(&mut author, op, recipients, merges, extra, self.now, &mut r);
        self.rng = r;
        let Ok(forged) = forged else {
            return;
        };
        if stale {
            self.mal.accept_own(&forged);
        } else {
            self.mal = author;
        }
        let to = self.roll(1 << self.honest.len());
        self.send(&forged.bytes, to);
    }

    /// Mal (or any peer) sends again an entry the members already took, old or recent.
    fn replay(&mut self) {
        if self.seen.is_empty() {
            return;
        }
        let pick = self.roll(self.seen.len() as u32) as usize;
        let Some(bytes) = self.seen.values().nth(pick).cloned() else {
            return;
        };
        let to = self.roll(1 << self.honest.len());
        self.send(&bytes, to);
    }

    /// Mal posts, or commits (a `Rotate`), with a clock of her choosing: far ahead, at the limit,
    /// or backdated.
    fn odd_clock(&mut self) {
        let mut mal = self.mal.clone();
        mal.lamport = match self.roll(4) {
            0 => u64::MAX - 1,
            1 => mal
                .lamport
                .saturating_add(MAX_LAMPORT_JUMP - u64::from(self.roll(3))),
            2 => 0,
            _ => mal.lamport.saturating_add(1 << 40),
        };
        let when = match self.roll(3) {
            0 => u64::MAX / 2,
            1 => 0,
            _ => self.now,
        };
        let commit = self.roll(2) == 0;
        let mut r = self.rng.clone();
        let written = if commit {
            mal.rotate(when, &mut r)
        } else {
            mal.post(&text("odd clock"), when, &mut r)
        };
        if let Ok(written) = written {
            self.mal = mal;
            let to = self.roll(1 << self.honest.len());
            self.send(&written.bytes, to);
        }
        self.rng = r;
    }

    /// Mal writes two different entries at one position (two posts, two commits, or a
    /// commit and a post) and sends each to different members.
    fn equivocate(&mut self) {
        let mut twin = self.mal.clone();
        let mut r = self.rng.clone();
        let kind = self.roll(3);
        let now = self.now;
        let (a, b) = match kind {
            0 => (
                self.mal.post(&text("version a"), now, &mut r),
                twin.post(&text("version b"), now, &mut r),
            ),
            1 => (self.mal.rotate(now, &mut r), twin.rotate(now, &mut r)),
            _ => (
                self.mal.rotate_my_key(now, &mut r),
                twin.post(&text("version b"), now, &mut r),
            ),
        };
        let (Ok(a), Ok(b)) = (a, b) else {
            self.rng = r;
            return;
        };
        self.rng = r;
        self.equivocated = true;
        let mask = self.roll(1 << self.honest.len());
        self.send(&a.bytes, mask);
        let other = self.everyone() & !mask;
        self.send(&b.bytes, other);
    }

    /// Entries that would wait: from the stranger, and from Mal far ahead of her log.
    fn flood(&mut self) {
        let mut r = self.rng.clone();
        let Ok(template) = self.honest[1].clone().post(&text("t"), self.now, &mut r) else {
            self.rng = r;
            return;
        };
        self.rng = r;
        let base = self.mal.logs.head(&self.mal.me()).map_or(0, |(s, _)| s);
        for k in 0..(20 + self.roll(60)) {
            let (key, seq) = if k % 2 == 0 {
                (self.stranger.clone(), 5 + u64::from(k))
            } else {
                (self.mal.me.clone(), base + 3 + u64::from(k))
            };
            let mut unsigned = template.entry.unsigned.clone();
            unsigned.author = key.id();
            unsigned.seq = seq;
            unsigned.prev = Some(EntryId::from_bytes([k as u8; 32]));
            unsigned.lamport = template.entry.unsigned.lamport + u64::from(k);
            if self.roll(2) == 0 {
                unsigned.epoch = EpochId::from_bytes([self.roll(255) as u8; 32]);
            }
            let bytes = unsigned.sign(&key).encode();
            let to = self.roll(1 << self.honest.len());
            self.send(&bytes, to);
        }
    }

    /// Ana removes Mal (once).
    fn remove_mal(&mut self) {
        let mal_id = self.mal.me();
        let mut r = self.rng.clone();
        let removal = match self.honest[0].remove_member(&mal_id, self.now, &mut r) {
            Ok(a) => a,
            Err(CircleError::RekeyPending) => {
                let repair = self.honest[0].rotate(self.now, &mut r).unwrap();
                self.seen.insert(repair.id, repair.bytes.clone());
                let all = self.everyone();
                self.send(&repair.bytes, all);
                self.honest[0]
                    .remove_member(&mal_id, self.now, &mut r)
                    .unwrap_or_else(|e| panic!("Ana cannot remove Mal: {e} {}", self.ctx()))
            }
            Err(e) => panic!("Ana cannot remove Mal: {e} {}", self.ctx()),
        };
        self.rng = r;
        self.removal = Some(EpochId::from(removal.id));
        self.seen.insert(removal.id, removal.bytes.clone());
        // Mal's modified client keeps her state from before, to forge from.
        self.mal_stale.push(self.mal.clone());
        let all = self.everyone();
        self.send(&removal.bytes, all);
    }

    /// Ana admits Neo (once); the circle does not share history.
    fn admit_neo(&mut self) {
        let neo = MemberSecret::generate(&mut self.rng);
        let mut r = self.rng.clone();
        let admitted = self.honest[0].admit(neo.public(), Role::Member, "Neo", 1, self.now, &mut r);
        let (commit, welcome) = match admitted {
            Ok(x) => x,
            Err(CircleError::RekeyPending) => {
                let repair = self.honest[0].rotate(self.now, &mut r).unwrap();
                self.seen.insert(repair.id, repair.bytes.clone());
                let all = self.everyone();
                self.send(&repair.bytes, all);
                self.honest[0]
                    .admit(neo.public(), Role::Member, "Neo", 1, self.now, &mut r)
                    .unwrap_or_else(|e| panic!("Ana cannot admit: {e} {}", self.ctx()))
            }
            Err(e) => panic!("Ana cannot admit: {e} {}", self.ctx()),
        };
        self.rng = r;
        self.seen.insert(commit.id, commit.bytes.clone());
        let all = self.everyone();
        self.send(&commit.bytes, all);
        let mut neo = Circle::join(&welcome, neo)
            .unwrap_or_else(|e| panic!("Neo cannot join: {e} {}", self.ctx()));
        neo.set_log_window(LOG_WINDOW);
        self.honest.push(neo);
        self.upkeep.push(Upkeep::default());
        self.neo_joined = true;
    }

    /// Honest members sync everything among themselves and repair until the tree settles.
    fn heal(&mut self) {
        for _round in 0..4 {
            for _pass in 0..8 {
                // Progress is anything new taken by anyone: an entry refused or held in one
                // pass may be taken in the next, once what it needed arrived (as sync repeats).
                let progress =
                    |s: &Self| (s.seen.len(), s.has.iter().map(BTreeSet::len).sum::<usize>());
                let before = progress(self);
                let all: Vec<(EntryId, Vec<u8>)> =
                    self.seen.iter().map(|(id, b)| (*id, b.clone())).collect();
                // Members 0, 2 and 4 take what they lack one by one (as gossip), members 1 and 3
                // in one batch each (as a sync response): single and batch signature checks
                // must agree.
                let mut batches: Vec<Vec<Vec<u8>>> = vec![Vec::new(); self.honest.len()];
                for (id, bytes) in &all {
                    let lacking = (0..self.honest.len())
                        .filter(|i| !self.has[*i].contains(id))
                        .fold(0u32, |mask, i| mask | (1 << i));
                    let alone = lacking & 0x5555_5555;
                    if alone != 0 {
                        self.send(bytes, alone);
                    }
                    for (i, batch) in batches.iter_mut().enumerate() {
                        if lacking & (1 << i) != 0 && i % 2 == 1 {
                            batch.push(bytes.clone());
                        }
                    }
                }
                for (i, batch) in batches.into_iter().enumerate() {
                    if !batch.is_empty() {
                        self.send_batch(i, batch);
                    }
                }
                if progress(self) == before {
                    break;
                }
            }
            // Each honest member asks proto's upkeep, as a node does every 250 ms: the
            // designated repairer commits at once; when she is Mal, or sees no fork herself,
            // time moves on in 250 ms steps until another member's delay and jitter are up.
            let mut repaired = false;
            let mut waited = 0;
            while waited <= DEFAULT_REPAIR_DELAY_MS + 2_100 {
                for i in 0..self.honest.len() {
                    if std::env::var_os("HEARTH_ADVERSARY_TRACE").is_some() {
                        let c = &self.honest[i];
                        eprintln!(
                            "heal: member {i} repair_due {} designated {:?} me {:?}",
                            c.repair_due(),
                            c.designated_repairer(),
                            c.me()
                        );
                    }
                    if self.upkeep[i]
                        .due(&self.honest[i], self.now, DEFAULT_REPAIR_DELAY_MS)
                        .is_none()
                    {
                        continue;
                    }
                    let mut r = self.rng.clone();
                    if let Ok(repair) = self.honest[i].rotate(self.now, &mut r) {
                        self.seen.insert(repair.id, repair.bytes.clone());
                        let all = self.everyone();
                        self.send(&repair.bytes, all);
                        repaired = true;
                        if waited > 0 {
                            STAND_INS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    self.rng = r;
                }
                if repaired || !self.honest.iter().any(Circle::repair_due) {
                    break;
                }
                self.now += 250;
                waited += 250;
            }
            if !repaired {
                break;
            }
        }
    }

    /// The lamport and bytes of what honest member `i`'s log holds at `(author, seq)`, as
    /// her node's store keeps them: the bytes are in `seen` (or, for the founding commits
    /// written before the simulation, in her control set).
    fn stored(&self, i: usize, author: &MemberId, seq: u64) -> (u64, Vec<u8>) {
        let server = &self.honest[i];
        let id = server.logs().stored_id(author, seq).unwrap_or_else(|| {
            panic!(
                "harness: member {i} holds seq {seq} with no id {}",
                self.ctx()
            )
        });
        let bytes = self
            .seen
            .get(&id)
            .cloned()
            .or_else(|| server.control.get(&id).map(|r| r.entry.encode()))
            .unwrap_or_else(|| {
                panic!(
                    "harness: no bytes for member {i}'s seq {seq} {}",
                    self.ctx()
                )
            });
        let entry: Entry = crate::wire::decode(&bytes, MAX_ENTRY_LEN, "entry").unwrap();
        (entry.unsigned.lamport, bytes)
    }

    /// Whether `mal` would learn her removal if honest member `i` gave her every entry of her
    /// logs up to `limit` (and with `off_log`, every control entry she keeps off them too),
    /// in lamport order, again until nothing more is taken.
    fn could_learn(&self, i: usize, mut mal: Circle, limit: u64, off_log: bool) -> bool {
        let server = &self.honest[i];
        let mut all: Vec<(u64, Vec<u8>)> = server
            .logs()
            .lacking(&HighWaterMarks::new())
            .iter()
            .flat_map(|w| w.seqs().map(move |seq| (w.author, seq)))
            .map(|(author, seq)| self.stored(i, &author, seq))
            .chain(
                server
                    .control
                    .values()
                    .filter(|_| off_log)
                    .map(|r| (r.entry.unsigned.lamport, r.entry.encode())),
            )
            .filter(|(lamport, _)| *lamport <= limit)
            .collect();
        all.sort();
        for _ in 0..4 {
            let before = (mal.marks(), mal.control.len());
            for (_, bytes) in &all {
                let _ = take(&mut mal, bytes, self.now);
            }
            if !mal.am_member() || (mal.marks(), mal.control.len()) == before {
                break;
            }
        }
        !mal.am_member()
    }

    /// The batch honest member `i` answers `request` with when the peer proved she is (or
    /// was) `member`: `Circle::answer_sync`, as a node's `serve_sync` calls it, over the
    /// harness's store (every position her log took, its bytes kept in `seen` or, for the
    /// founding commits written before the simulation, in her control set).
    fn serve(&self, i: usize, member: &MemberId, request: &SyncRequest) -> (Serving, Vec<Vec<u8>>) {
        let server = &self.honest[i];
        let serving = server.serving(member, request);
        let answer = server.answer_sync(&serving, request, |author, from, at_most| {
            (from..from.saturating_add(at_most as u64))
                .map(|seq| {
                    let (lamport, bytes) = self.stored(i, &author, seq);
                    crate::circle::StoredPosition {
                        seq,
                        lamport,
                        bytes,
                    }
                })
                .collect()
        });
        (serving, answer.response.entries)
    }

    /// Once Ana removed her, Mal's device asks an honest member for catch-up as a node does,
    /// and takes every entry served; sometimes it is one of her stale copies (a device that
    /// missed its removal), synced on a copy so `forge` keeps its old views. Checks the rule
    /// of PROTOCOL.md §11 "The exchange", step 2: nothing above her removal's lamport nor
    /// written in an epoch that descends from it; a device that lacked the `Remove` learns it;
    /// a member who left and a stranger are served nothing.
    fn removed_sync(&mut self) {
        let Some(removal) = self.removal else {
            return;
        };
        let ctx = self.ctx();
        let i = self.roll(self.honest.len() as u32) as usize;
        // Which of her states: her device (0), or a stale copy (1 + its index).
        let which = if self.roll(2) == 0 {
            1 + self.roll(self.mal_stale.len() as u32) as usize
        } else {
            0
        };
        let stale = which > 0;
        let mut mal = if stale {
            self.mal_stale[which - 1].clone()
        } else {
            self.mal.clone()
        };
        // Mostly a node's whole batch; sometimes a small one, so rounds end mid-stream.
        let max = if self.roll(4) == 0 { 16 } else { 512 };
        let mal_id = mal.me();
        let removal_id = EntryId::from_bytes(*removal.as_bytes());
        let remove = self.honest[0].control[&removal_id].entry.unsigned.clone();
        let server = &self.honest[i];
        let removed_here = server.membership().removal_of(&mal_id).is_some();
        let on_log = server.logs().holds(&remove.author, remove.seq)
            && server.logs().stored_id(&remove.author, remove.seq) == Some(removal_id);
        let lacked = mal
            .marks()
            .get(&remove.author)
            .is_none_or(|m| *m < remove.seq);
        let after: Vec<BTreeSet<EpochId>> = self
            .honest
            .iter()
            .map(|c| c.membership().descendants(removal))
            .collect();
        let unsynced = mal.clone();
        let mut served_remove = false;
        let mut rounds = 0;
        for _ in 0..8 {
            rounds += 1;
            let request = SyncRequest::new(mal.id(), mal.marks(), Vec::new(), max).unwrap();
            let (serving, batch) = self.serve(i, &mal_id, &request);
            // Checked against her Remove itself, whatever limit the serving member applied.
            for bytes in batch.iter().filter(|_| removed_here) {
                let (entry, id) = Entry::decode_and_verify(bytes).unwrap();
                let h = &entry.unsigned;
                assert!(
                    h.lamport <= remove.lamport,
                    "member {i} served the removed member an entry above her removal: seq {} \
                     of {:?}, lamport {} > {} {ctx}",
                    h.seq,
                    h.author,
                    h.lamport,
                    remove.lamport
                );
                assert!(
                    after.iter().all(|a| !a.contains(&h.epoch)),
                    "member {i} served the removed member an entry written after her removal \
                     (seq {} of {:?}) {ctx}",
                    h.seq,
                    h.author
                );
                served_remove |= id == removal_id;
            }
            if removed_here {
                assert_eq!(
                    serving.lamport_limit,
                    Some(remove.lamport),
                    "member {i} serves the removed member without her removal's limit {ctx}"
                );
            }
            let before = mal.marks();
            for bytes in &batch {
                let _ = take(&mut mal, bytes, self.now);
            }
            if batch.is_empty() || mal.marks() == before {
                break;
            }
        }
        if std::env::var_os("HEARTH_ADVERSARY_TRACE").is_some() {
            eprintln!(
                "removed sync from member {i}: state {which} max {max} rounds {rounds} removed \
                 there {removed_here} on log {on_log} lacked {lacked} served {served_remove} \
                 still a member {}",
                mal.am_member()
            );
        }
        // The limit never stops her removal's author's stream before it: every entry before
        // it in that log has a lower lamport. A whole batch holds all this simulation writes;
        // small ones may stop early when she can take nothing (as below).
        if removed_here && on_log && lacked {
            REMOVE_DUE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            assert!(
                served_remove || max < 512,
                "member {i} never served the removed member her Remove {ctx}"
            );
            // Unless her device cannot open it even given all of the member's logs up to the
            // limit: what it needs is kept off them (other versions and control entries
            // ahead of a gap are withheld from a removed member; Neo's anchor, the Add that
            // starts her copy of Ana's log, is served to nobody), or it broke itself (Mal's
            // modified client keeps no commit it forged in its own fold, a forged key change
            // threw her key away, a stale copy lacks her own entries).
            if !mal.am_member() {
                REMOVE_LEARNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            } else {
                assert!(
                    !self.could_learn(i, unsynced.clone(), remove.lamport, false),
                    "the removed member synced with member {i}, whose log holds her Remove, \
                     and still counts herself a member {ctx}"
                );
                let withheld = self.could_learn(i, unsynced, remove.lamport, true);
                if withheld {
                    WITHHELD.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if std::env::var_os("HEARTH_ADVERSARY_TRACE").is_some() {
                    eprintln!("removed sync: not learnt; what she lacked was withheld {withheld}");
                }
            }
        }
        // Her own commits aside: one she forged after her removal may merge its epoch, and a
        // member who has not folded the removal serves it back to her (seed 3244).
        for (a, c) in after.iter().zip(&self.honest) {
            let hers =
                |e: &EpochId| c.membership.epochs.get(e).map(|info| info.author) == Some(mal_id);
            assert!(
                mal.epoch_secrets.keys().all(|e| !a.contains(e) || hers(e)),
                "the removed member's sync gave her a later secret {ctx}"
            );
        }
        if !stale {
            self.mal = mal;
        }
        // A stranger, and a member who left (copies: a member leaves and the server takes it),
        // are served nothing.
        let server = &self.honest[i];
        let request =
            SyncRequest::new(server.id(), HighWaterMarks::new(), Vec::new(), 512).unwrap();
        assert_eq!(
            server.serving(&self.stranger.id(), &request),
            Serving::default(),
            "member {i} serves a stranger {ctx}"
        );
        let j = (i + 1 + self.roll(self.honest.len() as u32 - 1) as usize) % self.honest.len();
        let mut leaver = self.honest[j].clone();
        let mut server = self.honest[i].clone();
        let mut r = ChaCha20Rng::seed_from_u64(self.rng.next_u64());
        if let Ok(leave) = leaver.leave(self.now, &mut r) {
            let _ = take(&mut server, &leave.bytes, self.now);
            let left = server
                .membership()
                .departed
                .get(&leaver.me())
                .is_some_and(|d| d.removed_by.is_none());
            if std::env::var_os("HEARTH_ADVERSARY_TRACE").is_some() {
                eprintln!("removed sync: member {j} left in member {i}'s copy: {left}");
            }
            if left {
                let request =
                    SyncRequest::new(server.id(), leaver.marks(), Vec::new(), 512).unwrap();
                assert_eq!(
                    server.serving(&leaver.me(), &request),
                    Serving::default(),
                    "member {i} serves member {j} who left {ctx}"
                );
            }
        }
    }

    fn step(&mut self) {
        self.now += 1000 + u64::from(self.roll(60_000));
        let honest = self.roll(self.honest.len() as u32) as usize;
        let action = self.roll(20);
        if std::env::var_os("HEARTH_ADVERSARY_TRACE").is_some() {
            eprintln!(
                "seed {} action {action} equivocated {} removal {:?} neo {}",
                self.seed, self.equivocated, self.removal, self.neo_joined
            );
        }
        match action {
            5 if self.removal.is_none() => self.torsioned(),
            6..=9 if !self.equivocated => self.forge(),
            10..=11 => self.odd_clock(),
            12 if self.removal.is_none() => self.equivocate(),
            13..=14 => self.flood(),
            15 if self.removal.is_none() => self.remove_mal(),
            // Once she was removed, action 15 (an honest post until then) is her sync.
            15 => self.removed_sync(),
            16 if !self.neo_joined => self.admit_neo(),
            17 => {
                for c in &mut self.honest {
                    c.expire_held(self.now + HELD_TTL_MS);
                }
            }
            18 => self.heal(),
            19 => self.replay(),
            _ => self.honest_post(honest),
        }
    }

    /// Checks the invariants; `full` adds the costly ones (every member posts, Ana removes
    /// each member, on copies).
    fn check(&self, healed: bool, full: bool) {
        let ctx = self.ctx();
        for (i, c) in self.honest.iter().enumerate() {
            // (6) memory within its caps.
            assert!(c.pending_count() <= MAX_PENDING, "held count {ctx}");
            assert!(c.pending_bytes() <= MAX_HELD_BYTES, "held bytes {ctx}");
            assert!(
                c.pending_max_per_author() <= MAX_HELD_PER_AUTHOR,
                "held per author {ctx}"
            );
            assert!(c.payloads.len() <= c.control.len(), "payloads {ctx}");
            // Every secret an honest member holds is the one its commit delivered (a commit
            // that a later removal invalidated may leave its genuine secret behind).
            for (epoch, secret) in &c.epoch_secrets {
                assert!(
                    !c.membership.epochs.contains_key(epoch) || c.confirms(epoch, secret),
                    "member {i} holds an unconfirmed secret {ctx}"
                );
            }
            // (7) no stamp keeps a secret alive: an epoch an honest member's commit superseded
            // counts as started no later than now (give or take the believed clock skew), so
            // its secret is deleted on schedule.
            let honest_ids: BTreeSet<MemberId> = self.honest.iter().map(Circle::me).collect();
            let starts = c.epoch_starts(self.now);
            for e in c.membership.epochs.values() {
                if !honest_ids.contains(&e.author) {
                    continue;
                }
                for p in std::iter::once(&e.parent).chain(&e.merges) {
                    if let Some(start) = starts.get(p) {
                        assert!(
                            *start <= self.now + MAX_CLOCK_SKEW_MS,
                            "member {i}: epoch start {start} {ctx}"
                        );
                    }
                }
            }
            if !full {
                continue;
            }
            // (3) an honest member can post, and Ana can remove anyone.
            let mut r = ChaCha20Rng::seed_from_u64(1);
            let mut trial = c.clone();
            if trial.post(&text("probe"), self.now, &mut r).is_err() {
                trial.rotate(self.now, &mut r).unwrap_or_else(|e| {
                    panic!("member {i} can neither post nor repair: {e} {ctx}")
                });
                trial
                    .post(&text("probe"), self.now, &mut r)
                    .unwrap_or_else(|e| panic!("member {i} cannot post after repair: {e} {ctx}"));
            }
        }
        let ana = &self.honest[0];
        for target in ana.member_ids().into_iter().filter(|_| full) {
            if target == ana.me() {
                continue;
            }
            let mut r = ChaCha20Rng::seed_from_u64(2);
            let mut trial = ana.clone();
            if let Err(first) = trial.remove_member(&target, self.now, &mut r) {
                if std::env::var_os("HEARTH_ADVERSARY_TRACE").is_some() {
                    let (p, m) = trial.control_epoch().unwrap();
                    let info = &trial.membership.epochs[&p];
                    eprintln!(
                        "remove failed: {first}; parent {p:?} lamport {} author {:?} recipients {} merges {m:?} leaves {} current {:?} my lamport {}",
                        info.position.0,
                        info.author,
                        info.recipients.len(),
                        trial.membership.leaves().len(),
                        trial.membership.current_epoch().map(|e| e.id),
                        trial.lamport
                    );
                }
                trial
                    .rotate(self.now, &mut r)
                    .unwrap_or_else(|e| panic!("Ana can neither remove nor repair: {e} {ctx}"));
                trial
                    .remove_member(&target, self.now, &mut r)
                    .unwrap_or_else(|e| panic!("Ana cannot remove a member: {e} {ctx}"));
            }
        }
        // (1) Mal holds no secret of an epoch that descends from her removal.
        if let Some(removal) = self.removal {
            for c in &self.honest {
                let after = c.membership().descendants(removal);
                for mal in std::iter::once(&self.mal).chain(&self.mal_stale) {
                    assert!(
                        mal.epoch_secrets.keys().all(|e| !after.contains(e)),
                        "the removed member holds a later secret {ctx}"
                    );
                }
            }
        }
        // (2) Neo holds nothing from before her addition.
        if self.neo_joined {
            let neo = self.honest.last().unwrap();
            if let Some(before) = neo.history_before(&neo.me()) {
                assert!(
                    neo.epoch_secrets.keys().all(|e| !before.contains(e)),
                    "the newcomer holds history {ctx}"
                );
            }
        }
        // (4) honest members agree once healed.
        if healed {
            if std::env::var_os("HEARTH_ADVERSARY_TRACE").is_some() {
                for (i, c) in self.honest.iter().enumerate() {
                    let m = &c.membership;
                    eprintln!(
                        "member {i}: current {:?} members {} applied {} control {} pending {} leaves {:?}",
                        m.current_epoch().map(|e| e.id),
                        m.members.len(),
                        m.applied.len(),
                        c.control.len(),
                        c.pending_count(),
                        m.leaves()
                            .iter()
                            .map(|e| (e.id, e.position.0, e.recipients.len()))
                            .collect::<Vec<_>>()
                    );
                    for e in m.epochs.values() {
                        eprintln!(
                            "   epoch {:?} parent {:?} merges {:?} author {:?} lamport {} recipients {} held {}",
                            e.id,
                            e.parent,
                            e.merges,
                            e.author,
                            e.position.0,
                            e.recipients.len(),
                            c.epoch_secrets.contains_key(&e.id)
                        );
                    }
                    for (id, r) in &c.control {
                        eprintln!(
                            "   control {id:?} author {:?} seq {} epoch {:?} lamport {} op {:?} rejected {:?}",
                            r.entry.unsigned.author,
                            r.entry.unsigned.seq,
                            r.entry.unsigned.epoch,
                            r.entry.unsigned.lamport,
                            r.body.as_ref().map(|b| b.op.name()),
                            m.rejected.get(id)
                        );
                    }
                }
            }
            let first = &self.honest[0];
            for c in &self.honest[1..] {
                assert_eq!(
                    first.membership.members, c.membership.members,
                    "membership differs {ctx}"
                );
                assert_eq!(
                    first.membership.current_epoch().map(|e| e.id),
                    c.membership.current_epoch().map(|e| e.id),
                    "current epoch differs {ctx}"
                );
            }
        }
    }
}

/// `c` receives `bytes`; a position whose id its memory no longer keeps is looked up in the
/// store, as a node does.
/// Records what a member holds after taking the entry `id`: the entry itself if it was a
/// duplicate, what she accepted, and equivocating control entries (taken into the fold and
/// forwarded, as gossip and sync do); `seen` keeps the bytes of every entry anyone took.
fn held(
    has: &mut BTreeSet<EntryId>,
    seen: &mut BTreeMap<EntryId, Vec<u8>>,
    id: EntryId,
    receipt: Receipt,
) {
    if receipt.duplicate {
        has.insert(id);
    }
    for a in receipt.accepted {
        has.insert(a.id);
        seen.insert(a.id, a.bytes);
    }
    for (id, bytes) in receipt.equivocating_control {
        has.insert(id);
        seen.insert(id, bytes);
    }
}

fn take(c: &mut Circle, bytes: &[u8], now: u64) -> Result<Receipt, Rejection> {
    let result = c.receive_at(bytes, now);
    if let Err(Rejection::NeedsStoredId { author, seq }) = result
        && let Some(id) = c.logs().stored_id(&author, seq)
        && c.recall(&author, seq, id)
    {
        RECALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return c.receive_at(bytes, now);
    }
    result
}

fn run_adversary(seed: u64, steps: usize) {
    let mut sim = Adversary::new(seed);
    for step in 0..steps {
        sim.step();
        sim.check(false, step % 5 == 4);
    }
    sim.heal();
    sim.check(true, true);
}

fn run_seeds(seeds: std::ops::Range<u64>, steps: usize) {
    for seed in seeds {
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_adversary(seed, steps)));
        if outcome.is_err() {
            panic!("the adversarial simulation failed at seed {seed}; rerun it alone to debug");
        }
    }
}

/// 64 seeds of 40 steps in the normal suite; `HEARTH_ADVERSARY_SEEDS=100000` soaks, and
/// `HEARTH_ADVERSARY_SEED=n` (with `HEARTH_ADVERSARY_TRACE=1`) replays one seed verbosely.
#[test]
#[allow(clippy::disallowed_methods)] // the test harness reads its seed count and times itself
fn adversaries_never_break_the_invariants() {
    if let Some(seed) = std::env::var("HEARTH_ADVERSARY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run_adversary(seed, 40);
        return;
    }
    let seeds = std::env::var("HEARTH_ADVERSARY_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64u64);
    let started = std::time::Instant::now();
    run_seeds(0..seeds, 40);
    let recalls = RECALLS.load(std::sync::atomic::Ordering::Relaxed);
    let due = REMOVE_DUE.load(std::sync::atomic::Ordering::Relaxed);
    let learnt = REMOVE_LEARNT.load(std::sync::atomic::Ordering::Relaxed);
    let withheld = WITHHELD.load(std::sync::atomic::Ordering::Relaxed);
    let stand_ins = STAND_INS.load(std::sync::atomic::Ordering::Relaxed);
    let torsioned = TORSIONED.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "adversarial simulation: {seeds} seeds x 40 steps in {:.1} s, {recalls} forgotten ids recalled, {stand_ins} repairs by a member standing in after her delay; {due} syncs owed the removed member her Remove, {learnt} taught her, {withheld} could not as what she lacked was kept off the server's logs; {torsioned} torsioned entries written",
        started.elapsed().as_secs_f64()
    );
    assert!(
        torsioned > 0 || seeds < 64,
        "Mal never wrote a torsioned entry"
    );
    assert!(
        recalls > 0,
        "the simulation never met a position whose id its members no longer keep"
    );
    assert!(
        stand_ins > 0 || seeds < 64,
        "no member ever stood in for a designated repairer (upkeep's delay never ran out)"
    );
    assert!(
        learnt > 0 || seeds < 64,
        "the simulation never had a removed member's device learn its removal by sync"
    );
}

/// L-M2 (issue 9): a sealed "done / not done only" check-in is as long as any other, whatever
/// its note, mood and value, and its author still opens it; a plaintext whose padding is not
/// zeros is refused.
#[test]
fn sealed_check_ins_all_have_one_length() {
    use crate::content::{MAX_NOTE_BYTES, Mood, Note, Outcome, PrivatePart};
    let note = |text: String| Some(Note::parse(text).unwrap());
    let mood = |m| Some(Mood::new(m).unwrap());
    let mut rng = ChaCha20Rng::seed_from_u64(0x1a2);
    let circles = circle_of(1, CircleSettings::default(), &mut rng);
    let c = &circles[0];
    let goal = EntryId::from_bytes([7; 32]);
    let day = LocalDay::new(20_000).unwrap();
    let parts = [
        PrivatePart {
            outcome: Outcome::Done,
            note: None,
            mood: None,
        },
        PrivatePart {
            outcome: Outcome::Value(1),
            note: None,
            mood: mood(1),
        },
        PrivatePart {
            outcome: Outcome::Value(i64::MAX),
            note: note("x".repeat(MAX_NOTE_BYTES)),
            mood: mood(5),
        },
        PrivatePart {
            outcome: Outcome::Value(i64::MIN),
            note: note("é".repeat(MAX_NOTE_BYTES / 2)),
            mood: None,
        },
        PrivatePart {
            outcome: Outcome::Skipped,
            note: note("ok".into()),
            mood: mood(3),
        },
    ];
    let mut lengths = BTreeSet::new();
    for part in &parts {
        let content = c.seal_private_check_in(goal, day, part, &mut rng).unwrap();
        let Content::PrivateCheckIn { sealed, .. } = &content else {
            panic!("a private check-in");
        };
        lengths.insert((sealed.ciphertext().len(), content.encode().len()));
        assert!(c.open_private_check_in(&content).as_ref() == Some(part));
    }
    assert_eq!(
        lengths.len(),
        1,
        "sealed check-ins differ in length: {lengths:?}"
    );

    // The author's own key, a well-formed part, padding that is not zeros: refused.
    let mut padded = parts[1].encode_padded();
    let last = padded.len() - 1;
    padded[last] = 1;
    let nonce = [9u8; 12];
    let key = c.me.private_part_key(&c.id);
    let ciphertext = crate::epoch::seal(&key, &nonce, &private_aad(&goal, day), &padded);
    let content = Content::PrivateCheckIn {
        goal,
        day,
        done: true,
        sealed: SealedPart::new(nonce, ciphertext).unwrap(),
    };
    assert!(c.open_private_check_in(&content).is_none());
}

/// A circle of one needs no peers (its device would otherwise redial and look the circle up
/// every 15 s for nothing); once someone joins it does, and once the others are removed it
/// does not again. A removed member no longer counts anyone as her peer.
#[test]
fn only_a_circle_shared_with_someone_needs_peers() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let alone = circle_of(1, CircleSettings::default(), &mut rng);
    assert!(!alone[0].has_other_members());
    let mut two = circle_of(2, CircleSettings::default(), &mut rng);
    assert!(two[0].has_other_members() && two[1].has_other_members());
    let ben = two[1].me();
    let removal = two[0].remove_member(&ben, T0 + 10, &mut rng).unwrap();
    two[1].receive(&removal.bytes).unwrap();
    assert!(!two[0].has_other_members(), "Ana is alone again");
    assert!(!two[1].has_other_members(), "Ben is no longer a member");
}

/// A member who left offers her log for a week so her leave gets out; nobody else does (not
/// the others, not a removed member), and a leave from an empty circle is offered to nobody.
#[test]
fn a_leaver_offers_her_log_for_a_bounded_time() {
    use crate::circle::LEAVE_OFFER_MS;
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let (mut ana, mut ben, mut cy) = three(&mut rng);
    let leave = ben.leave(T0 + 10, &mut rng).unwrap();
    assert!(ben.offers_leave(T0 + 20));
    assert!(ben.offers_leave(T0 + 10 + LEAVE_OFFER_MS - 1));
    assert!(
        !ben.offers_leave(T0 + 10 + LEAVE_OFFER_MS),
        "a week, then no more"
    );
    deliver(&leave.bytes, &mut [&mut ana, &mut cy]);
    assert!(
        !ana.offers_leave(T0 + 20),
        "only the leaver offers for her leave"
    );
    let cy_id = cy.me();
    let removal = ana.remove_member(&cy_id, T0 + 30, &mut rng).unwrap();
    cy.receive(&removal.bytes).unwrap();
    assert!(!cy.am_member());
    assert!(
        !cy.offers_leave(T0 + 40),
        "a removed member has no leave to deliver"
    );
}
