//! The timeline read model: what a reader sees of a circle's entries.

use super::*;
use crate::content::{Cadence, GraceDays, LocalDay, RestDays};

fn member(n: u8) -> MemberId {
    MemberId::from_bytes([n; 32])
}

fn id(n: u8) -> EntryId {
    EntryId::from_bytes([n; 32])
}

fn entry(n: u8, author: u8, lamport: u64, content: Content) -> ViewEntry {
    ViewEntry {
        id: id(n),
        author: member(author),
        seq: lamport,
        lamport,
        timestamp_ms: 1000 + lamport,
        body: ViewBody::Content(content),
    }
}

fn text(body: &str) -> Content {
    Content::Text {
        body: body.parse().unwrap(),
        reply_to: None,
        content_warning: None,
    }
}

fn no_private(_: &Content) -> Option<PrivatePart> {
    None
}

/// The timeline of `viewer`, nothing hidden or muted.
fn timeline_of(
    entries: &[ViewEntry],
    joined: &BTreeMap<MemberId, String>,
    viewer: u8,
) -> Vec<TimelineItem> {
    let (hidden, muted) = (BTreeMap::new(), BTreeSet::new());
    let options = ViewOptions {
        viewer: member(viewer),
        hidden: &hidden,
        muted: &muted,
        today: LocalDay::new(100).unwrap(),
        open_private: &no_private,
    };
    whole_timeline(entries, joined, &options)
}

/// The timeline of every entry, with the context computed from the same entries.
fn whole_timeline(
    entries: &[ViewEntry],
    joined: &BTreeMap<MemberId, String>,
    options: &ViewOptions<'_>,
) -> Vec<TimelineItem> {
    let names = display_names(entries, joined);
    let visibility = goal_visibilities(entries);
    let goal_events = progress_events(entries);
    let context = TimelineContext {
        names: &names,
        visibility: &visibility,
        goal_events: &goal_events,
    };
    build_timeline(entries, &context, options)
}

fn goal(visibility: Visibility) -> Content {
    Content::Goal {
        title: "walk".parse().unwrap(),
        why: None,
        cadence: Cadence::Daily,
        visibility,
        grace_days: GraceDays::NONE,
        rest_days: RestDays::NONE,
        start: LocalDay::new(0).unwrap(),
    }
}

#[test]
fn edits_deletes_reactions_and_names_are_applied() {
    let entries = vec![
        entry(
            3,
            2,
            3,
            Content::Edit {
                target: id(1),
                body: "hello, edited".parse().unwrap(),
            },
        ),
        entry(1, 1, 1, text("hello")),
        entry(2, 2, 2, text("hi")),
        entry(
            4,
            2,
            4,
            Content::Edit {
                target: id(2),
                body: "hi again".parse().unwrap(),
            },
        ),
        entry(5, 1, 5, Content::Delete { target: id(1) }),
        entry(
            6,
            1,
            6,
            Content::Reaction {
                target: id(2),
                emoji: "❤".parse().unwrap(),
            },
        ),
        entry(
            7,
            1,
            7,
            Content::Reaction {
                target: id(2),
                emoji: "❤".parse().unwrap(),
            },
        ),
        entry(
            8,
            2,
            8,
            Content::Profile {
                display_name: "Bea".parse().unwrap(),
            },
        ),
        entry(
            9,
            1,
            9,
            Content::Encouragement {
                target: id(2),
                note: None,
            },
        ),
    ];
    let joined: BTreeMap<MemberId, String> =
        [(member(1), "Ana".into()), (member(2), "B".into())].into();
    let items = timeline_of(&entries, &joined, 1);
    assert_eq!(items.len(), 2);
    // Someone else's edit is ignored, the author's deletion applies.
    assert_eq!(items[0].body, ItemBody::Deleted);
    assert_eq!(items[1].body, ItemBody::Content(text("hi again")));
    assert!(items[1].edited);
    assert_eq!(items[1].author_name, "Bea");
    assert_eq!(items[1].reactions.get("❤"), Some(&vec![member(1)]));
    assert_eq!(items[1].encouragements, vec![(member(1), None)]);
}

#[test]
fn done_only_check_ins_are_filtered_for_others() {
    let goal = goal(Visibility::DoneOnly);
    let check_in = |outcome| Content::CheckIn {
        goal: id(1),
        day: LocalDay::new(5).unwrap(),
        outcome,
        note: Some("private note".parse().unwrap()),
        mood: Some(crate::content::Mood::new(2).unwrap()),
    };
    let entries = vec![
        entry(1, 1, 1, goal),
        entry(2, 1, 2, check_in(Outcome::Value(3))),
        entry(3, 1, 3, check_in(Outcome::Skipped)),
    ];
    let others = timeline_of(&entries, &BTreeMap::new(), 2);
    assert_eq!(others.len(), 2);
    assert_eq!(
        others[1].body,
        ItemBody::Content(Content::CheckIn {
            goal: id(1),
            day: LocalDay::new(5).unwrap(),
            outcome: Outcome::Done,
            note: None,
            mood: None
        })
    );
    let own = timeline_of(&entries, &BTreeMap::new(), 1);
    assert_eq!(own.len(), 3);
}

#[test]
fn hidden_entries_and_muted_members_content_are_left_out() {
    let entries = vec![
        entry(1, 1, 1, text("kind words")),
        entry(2, 2, 2, text("something hurtful")),
        entry(3, 3, 3, text("from a muted member")),
        entry(
            4,
            3,
            4,
            Content::Reaction {
                target: id(1),
                emoji: "❤".parse().unwrap(),
            },
        ),
        entry(
            5,
            1,
            5,
            Content::Reaction {
                target: id(2),
                emoji: "❤".parse().unwrap(),
            },
        ),
    ];
    let hidden = BTreeMap::from([(id(2), member(1))]);
    let muted = BTreeSet::from([member(3)]);
    let options = ViewOptions {
        viewer: member(1),
        hidden: &hidden,
        muted: &muted,
        today: LocalDay::new(100).unwrap(),
        open_private: &no_private,
    };
    let items = whole_timeline(&entries, &BTreeMap::new(), &options);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].body, ItemBody::Content(text("kind words")));
    assert!(
        items[0].reactions.is_empty(),
        "the muted member's reaction is not shown"
    );
    let names = BTreeMap::new();
    assert!(single_item(&entries[1], &names, None, &options).is_none());
    assert!(single_item(&entries[2], &names, None, &options).is_none());
    assert!(single_item(&entries[0], &names, None, &options).is_some());
}

#[test]
fn sealed_check_ins_open_for_their_author_only_and_milestones_are_marked() {
    let sealed = |n: u8, done| Content::PrivateCheckIn {
        goal: id(1),
        day: LocalDay::new(i32::from(n)).unwrap(),
        done,
        sealed: crate::content::SealedPart::new([n; 12], vec![n; 20]).unwrap(),
    };
    let entries = vec![
        entry(1, 1, 1, goal(Visibility::DoneOnly)),
        entry(2, 1, 2, sealed(2, true)),
        entry(3, 1, 3, sealed(3, false)),
        entry(
            4,
            2,
            4,
            Content::Encouragement {
                target: id(2),
                note: Some("I see you".parse().unwrap()),
            },
        ),
    ];
    let open = |c: &Content| match c {
        Content::PrivateCheckIn { done, .. } => Some(PrivatePart {
            outcome: if *done {
                Outcome::Value(3)
            } else {
                Outcome::Skipped
            },
            note: Some("the note".parse().unwrap()),
            mood: Some(crate::content::Mood::new(4).unwrap()),
        }),
        _ => None,
    };
    let (hidden, muted) = (BTreeMap::new(), BTreeSet::new());
    let author = ViewOptions {
        viewer: member(1),
        hidden: &hidden,
        muted: &muted,
        today: LocalDay::new(100).unwrap(),
        open_private: &open,
    };
    let own = whole_timeline(&entries, &BTreeMap::new(), &author);
    assert_eq!(own.len(), 3);
    assert_eq!(
        own[1].body,
        ItemBody::Content(Content::CheckIn {
            goal: id(1),
            day: LocalDay::new(2).unwrap(),
            outcome: Outcome::Value(3),
            note: Some("the note".parse().unwrap()),
            mood: Some(crate::content::Mood::new(4).unwrap())
        })
    );
    assert_eq!(
        own[1].milestone.map(|m| m.check_ins),
        Some(1),
        "the first check-in is a milestone"
    );
    assert_eq!(
        own[1].encouragements,
        vec![(member(2), Some("I see you".into()))]
    );
    let others = timeline_of(&entries, &BTreeMap::new(), 2);
    assert_eq!(others.len(), 2, "the not-done day is not shown to others");
    assert_eq!(others[1].body, ItemBody::Content(sealed(2, true)));
    assert_eq!(others[1].milestone.map(|m| m.check_ins), Some(1));
}

#[test]
fn a_content_warning_is_exposed_on_the_item() {
    let warned = Content::Text {
        body: "hard day".parse().unwrap(),
        reply_to: None,
        content_warning: Some("grief".parse().unwrap()),
    };
    let items = timeline_of(
        &[entry(1, 1, 1, warned), entry(2, 1, 2, text("plain"))],
        &BTreeMap::new(),
        2,
    );
    assert_eq!(items[0].content_warning(), Some("grief"));
    assert_eq!(items[1].content_warning(), None);
}
