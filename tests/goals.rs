//! Goals and check-ins across nodes: a "done / not done only" check-in is sealed so that
//! another member's node cannot read its note even with that node's passphrase; milestones
//! are announced on every device; pausing; progress views identical on every device.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use hearth_node::{ItemBody, NodeEvent, TimelineItem};
use hearth_proto::circle::{Circle, Opened};
use hearth_proto::content::{Cadence, Content, GoalState, Outcome, PrivatePart, Visibility};
use hearth_proto::entry::Entry;
use hearth_proto::{CircleId, EntryId, wire};
use hearth_store::Store;

const NOTE: &str = "relapsed on tuesday, told nobody 7c1f9e";

fn item(items: &[TimelineItem], id: EntryId) -> Option<&TimelineItem> {
    items.iter().find(|i| i.id == id)
}

/// Everything a node's store holds for a circle, decrypted with the node's passphrase: the
/// encoded entries, the cached plaintext, the circle state, and every body the node's member
/// keys open (sealed check-ins opened with `open_private_check_in`).
fn readable_by_node(
    dir: &std::path::Path,
    circle: CircleId,
) -> Result<(Vec<Vec<u8>>, Vec<PrivatePart>)> {
    let store = open_store(dir)?;
    let mut blobs = Vec::new();
    let record = store.circle(circle)?.context("the circle is stored")?;
    blobs.push(record.state.expose().to_vec());
    let mut positions = Vec::new();
    let mut entries = Vec::new();
    for stored in store.all_entries(circle) {
        let stored = stored?;
        positions.push((stored.author, stored.seq, stored.id));
        blobs.push(stored.bytes.clone());
        if let Some(plaintext) = store.plaintext(stored.id)? {
            blobs.push(plaintext);
        }
        entries.push(stored.bytes);
    }
    positions.sort_by_key(|(a, s, _)| (*a, *s));
    let member = Circle::restore(record.state.expose(), positions)?;
    let mut opened_parts = Vec::new();
    for bytes in entries {
        let (entry, _) = Entry::decode_and_verify(&bytes)?;
        if let Opened::Content(content) = member.open(&entry) {
            blobs.push(content.encode());
            if let Some(part) = member.open_private_check_in(&content) {
                opened_parts.push(part);
            }
        }
    }
    Ok((blobs, opened_parts))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_done_only_note_is_sealed_from_other_members_and_milestones_are_announced() -> Result<()>
{
    let started = std::time::Instant::now();
    let root = tempfile::tempdir()?;
    let mut nodes = start_nodes(root.path(), 2).await?;
    let circle = circle_of(&nodes, "done only").await?;
    let (ana, ben) = (nodes[0].client.clone(), nodes[1].client.clone());
    let today = utc_today();
    let goal = ana
        .post(
            circle,
            goal(
                "no drinking",
                Cadence::Daily,
                Visibility::DoneOnly,
                today.plus(-3),
            ),
        )
        .await?;
    wait_until("ben sees the goal", Duration::from_secs(10), || {
        let ben = ben.clone();
        async move { Ok(item(&ben.timeline(circle, 100).await?, goal).is_some()) }
    })
    .await?;
    for node in &mut nodes {
        drain_events(&mut node.events);
    }
    let mut ben_watch = ben.events();

    // Ana checks in with a note and a value through the API meant for it, and skips a day
    // through a plain post (also sealed: the node seals any check-in to a done-only goal).
    let done = ana
        .check_in(
            circle,
            goal,
            today.plus(-1),
            Outcome::Value(2500),
            Some(NOTE.parse()?),
            Some(hearth_proto::content::Mood::new(2)?),
        )
        .await?;
    let skipped = ana
        .post(
            circle,
            Content::CheckIn {
                goal,
                day: today,
                outcome: Outcome::Skipped,
                note: Some(format!("{NOTE} (skip)").parse()?),
                mood: Some(hearth_proto::content::Mood::new(1).unwrap()),
            },
        )
        .await?;
    // Ben only learns that a day was done.
    wait_until("ben sees the check-in", Duration::from_secs(10), || {
        let ben = ben.clone();
        async move { Ok(item(&ben.timeline(circle, 100).await?, done).is_some()) }
    })
    .await?;
    let ben_items = ben.timeline(circle, 100).await?;
    match &item(&ben_items, done).context("ben's check-in item")?.body {
        ItemBody::Content(Content::PrivateCheckIn {
            goal: g,
            day,
            done: true,
            ..
        }) => {
            assert_eq!((*g, *day), (goal, today.plus(-1)));
        }
        other => panic!("ben should see only that the day was done, got {other:?}"),
    }
    assert!(
        item(&ben_items, skipped).is_none(),
        "a day not done is not shown to others"
    );
    // Ana's own timeline opens her private part.
    let ana_items = ana.timeline(circle, 100).await?;
    assert_eq!(
        item(&ana_items, done).context("ana's item")?.body,
        ItemBody::Content(Content::CheckIn {
            goal,
            day: today.plus(-1),
            outcome: Outcome::Value(2500),
            note: Some(NOTE.parse()?),
            mood: Some(hearth_proto::content::Mood::new(2).unwrap())
        })
    );
    assert!(matches!(
        &item(&ana_items, skipped).context("ana's skipped day")?.body,
        ItemBody::Content(Content::CheckIn {
            outcome: Outcome::Skipped,
            ..
        })
    ));

    // The first done day is a milestone, announced on both devices and marked on the item.
    for (node, name) in nodes.iter_mut().zip(["ana", "ben"]) {
        let milestone = next_event(&mut node.events, Duration::from_secs(5), |e| match e {
            NodeEvent::Milestone {
                circle: c,
                goal: g,
                milestone,
                ..
            } if *c == circle && *g == goal => Some(*milestone),
            _ => None,
        })
        .await
        .with_context(|| format!("{name} announces the milestone"))?;
        assert_eq!(
            (milestone.check_ins, milestone.reached_on),
            (1, today.plus(-1))
        );
        let items = node.client.timeline(circle, 100).await?;
        assert_eq!(
            item(&items, done)
                .and_then(|i| i.milestone)
                .map(|m| m.check_ins),
            Some(1),
            "{name}"
        );
    }
    // Ben's check-in event said "done" and nothing more.
    let ben_events = drain_events(&mut ben_watch);
    let ben_check_ins: Vec<Outcome> = ben_events
        .iter()
        .filter_map(|e| match e {
            NodeEvent::CheckIn { outcome, .. } => Some(*outcome),
            _ => None,
        })
        .collect();
    assert_eq!(
        ben_check_ins,
        vec![Outcome::Done],
        "one done day, nothing more"
    );
    for event in &ben_events {
        if let NodeEvent::Entry { item, .. } = event {
            assert!(
                !matches!(item.body, ItemBody::Content(Content::CheckIn { .. })),
                "no readable check-in reaches ben"
            );
        }
    }

    // Pausing: a goal status from tomorrow on, the same state on both devices.
    ana.set_goal_status(circle, goal, GoalState::Paused, today.plus(1))
        .await?;
    wait_until("ben sees the pause", Duration::from_secs(10), || {
        let ben = ben.clone();
        async move {
            let progress = ben.goal_progress(circle, today.plus(1)).await?;
            Ok(progress
                .iter()
                .any(|p| p.goal == goal && p.state == GoalState::Paused))
        }
    })
    .await?;
    assert_eq!(
        ana.goal_progress(circle, today.plus(1)).await?,
        ben.goal_progress(circle, today.plus(1)).await?
    );
    // Only the goal's author checks in to it.
    assert!(
        ben.check_in(circle, goal, today, Outcome::Done, None, None)
            .await
            .is_err()
    );

    // Ben's node: nothing it stored or received holds the note or the sealed plaintext,
    // in its files or decrypted with its passphrase and its member keys.
    let part = PrivatePart {
        outcome: Outcome::Value(2500),
        note: Some(NOTE.parse()?),
        mood: Some(hearth_proto::content::Mood::new(2).unwrap()),
    };
    let sealed_plaintext = wire::encode(&part);
    let dirs: Vec<_> = {
        let mut dirs = Vec::new();
        for node in nodes {
            dirs.push(node.stop().await?);
        }
        dirs
    };
    for needle in [NOTE.as_bytes(), &sealed_plaintext] {
        assert!(
            files_containing(&dirs[1], needle)?.is_empty(),
            "ben's files hold the note"
        );
    }
    let (blobs, parts) = readable_by_node(&dirs[1], circle)?;
    assert!(blobs.len() > 5, "ben's store was read");
    for blob in &blobs {
        assert!(
            !contains(blob, NOTE.as_bytes()) && !contains(blob, &sealed_plaintext),
            "ben's store holds the note"
        );
    }
    assert!(parts.is_empty(), "ben's member keys open no private part");
    // Ana's node (the control): her member key opens both of her sealed check-ins.
    let (_, parts) = readable_by_node(&dirs[0], circle)?;
    assert_eq!(parts.len(), 2);
    assert!(parts.contains(&part));
    eprintln!("done-only test took {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_weekly_summary_are_the_same_on_every_device() -> Result<()> {
    let started = std::time::Instant::now();
    let root = tempfile::tempdir()?;
    let nodes = start_nodes(root.path(), 3).await?;
    let circle = circle_of(&nodes, "progress").await?;
    let today = utc_today();
    let cadences = [
        (Cadence::Daily, Visibility::Circle),
        (Cadence::times_per_week(3)?, Visibility::DoneOnly),
        (Cadence::Weekly, Visibility::Circle),
    ];
    let mut expected_check_ins = 0;
    for (i, node) in nodes.iter().enumerate() {
        let (cadence, visibility) = cadences[i];
        let goal = node
            .client
            .post(
                circle,
                goal(&format!("goal {i}"), cadence, visibility, today.plus(-20)),
            )
            .await?;
        // Different histories: node i checks in on the last 3 + i days, skipping one.
        for back in 0..(3 + i as i32) {
            let outcome = if back == 1 {
                Outcome::Skipped
            } else {
                Outcome::Done
            };
            node.client
                .check_in(
                    circle,
                    goal,
                    today.plus(-back),
                    outcome,
                    Some(format!("note {back}").parse()?),
                    Some(hearth_proto::content::Mood::new(3)?),
                )
                .await?;
            if outcome.is_done() {
                expected_check_ins += 1;
            }
        }
    }
    let week = today;
    // Every device converges on the same figures.
    let mut summaries = Vec::new();
    for node in &nodes {
        let client = node.client.clone();
        wait_until("all check-ins", Duration::from_secs(10), || {
            let client = client.clone();
            async move {
                let progress = client.goal_progress(circle, today).await?;
                Ok(progress.len() == 3
                    && progress.iter().map(|p| p.total_check_ins).sum::<u32>()
                        == expected_check_ins)
            }
        })
        .await?;
        summaries.push((
            client.weekly_summary(circle, week, today).await?,
            client.goal_progress(circle, today).await?,
        ));
    }
    assert_eq!(summaries[0], summaries[1]);
    assert_eq!(summaries[0], summaries[2]);
    let (summary, progress) = &summaries[0];
    assert!(summary.check_ins > 0);
    // A done-only goal's streak is never listed in the summary.
    let done_only: Vec<EntryId> = progress
        .iter()
        .filter(|p| p.visibility == Visibility::DoneOnly)
        .map(|p| p.goal)
        .collect();
    assert_eq!(done_only.len(), 1);
    assert!(
        summary
            .members
            .iter()
            .all(|m| m.streaks.iter().all(|s| !done_only.contains(&s.goal)))
    );
    for node in nodes {
        node.stop().await?;
    }
    eprintln!("progress test took {:?}", started.elapsed());
    Ok(())
}
