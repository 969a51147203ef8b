//! A local support circle, for real: four members as libp2p nodes on 127.0.0.1, each with its
//! own encrypted store in a temporary directory.
//!
//! Run: `cargo run --release --example circle_demo`
//!
//! The story: Ana creates a circle with guidelines and invites Ben, Chloe and Dev; they read and
//! accept the guidelines and join; they talk (a reply, a content warning, encouragement), set
//! goals and check in; the weekly summary is printed; Chloe goes offline and catches up when she
//! comes back; Ana removes Dev, and Dev's node is shown to read nothing new.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use hearth::node::{Client, ItemBody, NodeConfig, TimelineItem};
use hearth::proto::content::{
    Cadence, Content, GraceDays, LocalDay, Mood, Note, Outcome, RestDays, Visibility,
};
use hearth::proto::ids::{CircleId, EntryId, MemberId};
use hearth::proto::membership::{CircleSettings, Role};
use hearth::store::{KdfParams, Passphrase};
use tokio::task::JoinHandle;

const GUIDELINES: &str = "1. What is said here stays here.\n\
                          2. Speak from your own experience.\n\
                          3. Be kind: a missed day is a missed day, never a shame.";

struct Member {
    name: &'static str,
    client: Client,
    task: JoinHandle<()>,
    config: NodeConfig,
}

#[tokio::main]
async fn main() -> Result<()> {
    let started = Instant::now();
    let root = tempfile::tempdir().context("creating a temporary directory")?;
    say(
        "",
        "Starting four members, each a libp2p node on 127.0.0.1 with its own encrypted store.",
    );
    let ana = start("Ana", root.path()).await?;
    let ben = start("Ben", root.path()).await?;
    let mut chloe = start("Chloe", root.path()).await?;
    let dev = start("Dev", root.path()).await?;

    // --- Ana creates the circle and invites the others -------------------------------------
    let circle = ana
        .client
        .create_circle(
            "Tuesday evening circle",
            GUIDELINES,
            CircleSettings::default(),
            "Ana",
        )
        .await?;
    say(
        "Ana",
        &format!("created \"Tuesday evening circle\" ({})", circle.short()),
    );
    for joiner in [&ben, &chloe, &dev] {
        let ticket = ana
            .client
            .make_invite(circle, Role::Member, Duration::from_secs(3600), 1)
            .await?;
        say(
            "Ana",
            &format!(
                "invites {} with a one-time ticket ({} characters)",
                joiner.name,
                ticket.len()
            ),
        );
        let preview = joiner.client.preview_join(&ticket).await?;
        say(
            joiner.name,
            &format!(
                "reads the guidelines of \"{}\" (version {}) and accepts",
                preview.circle_name, preview.guidelines_version
            ),
        );
        joiner.client.accept_join(preview.join, joiner.name).await?;
    }
    for m in [&ana, &ben, &chloe, &dev] {
        wait_for(&format!("{} to see four members", m.name), || async {
            Ok(m.client.members(circle).await?.members.len() == 4)
        })
        .await?;
    }
    say("", "All four see each other as members.");

    // --- They talk --------------------------------------------------------------------------
    let first = post(
        &ben,
        circle,
        text(
            "Rough week. I went to the Tuesday meeting anyway.",
            None,
            None,
        ),
    )
    .await?;
    // People answer what they have read: wait until Ben's message reached the others.
    for m in [&ana, &chloe, &dev] {
        wait_for(&format!("{} to read Ben's message", m.name), || async {
            Ok(m.client
                .timeline(circle, 50)
                .await?
                .iter()
                .any(|i| i.id == first))
        })
        .await?;
    }
    post(
        &chloe,
        circle,
        text(
            "Proud of you for going. I nearly skipped mine.",
            Some(first),
            None,
        ),
    )
    .await?;
    post(
        &dev,
        circle,
        text(
            "My brother relapsed on Saturday. I am not sure how to help him.",
            None,
            Some("relapse"),
        ),
    )
    .await?;
    post(
        &ana,
        circle,
        Content::Encouragement {
            target: first,
            note: Some("I see you, Ben.".parse().unwrap()),
        },
    )
    .await?;
    post(
        &chloe,
        circle,
        Content::Reaction {
            target: first,
            emoji: "💛".parse().unwrap(),
        },
    )
    .await?;

    // --- Goals and check-ins ----------------------------------------------------------------
    let today = today();
    let walk = post(
        &chloe,
        circle,
        Content::Goal {
            title: "Walk 20 minutes a day".parse().unwrap(),
            why: Some("It clears my head.".parse().unwrap()),
            cadence: Cadence::Daily,
            visibility: Visibility::Circle,
            grace_days: GraceDays::new(1)?,
            rest_days: RestDays::NONE,
            start: today.plus(-6),
        },
    )
    .await?;
    for back in [6, 5, 4, 2, 1, 0] {
        let note = (back == 0).then(|| Note::parse("Around the lake with my dog.").unwrap());
        let check_in = Content::CheckIn {
            goal: walk,
            day: today.plus(-back),
            outcome: Outcome::Done,
            note,
            mood: Some(Mood::new(4).unwrap()),
        };
        post(&chloe, circle, check_in).await?;
    }
    say(
        "Chloe",
        "checked in six of the last seven days (one missed day, covered by her grace day)",
    );
    let meetings = post(
        &ben,
        circle,
        Content::Goal {
            title: "Three meetings a week".parse().unwrap(),
            why: None,
            cadence: Cadence::times_per_week(3)?,
            visibility: Visibility::Circle,
            grace_days: GraceDays::NONE,
            rest_days: RestDays::NONE,
            start: today.plus(-7),
        },
    )
    .await?;
    post(
        &ben,
        circle,
        Content::CheckIn {
            goal: meetings,
            day: today,
            outcome: Outcome::Done,
            note: None,
            mood: Some(Mood::new(3).unwrap()),
        },
    )
    .await?;
    wait_for("Ana to receive every check-in", || async {
        let progress = ana.client.goal_progress(circle, today).await?;
        Ok(progress.iter().map(|g| g.total_check_ins).sum::<u32>() >= 7)
    })
    .await?;

    banner("Progress, as every member's device computes it");
    for goal in ana.client.goal_progress(circle, today).await? {
        println!(
            "  {:<24} by {:<6} streak {:>2} (best {:>2}), {:>2} check-ins",
            goal_title(&ana.client, circle, goal.goal).await?,
            name_of(&ana.client, circle, goal.author).await?,
            goal.current_streak,
            goal.best_streak,
            goal.total_check_ins,
        );
        for milestone in &goal.milestones {
            let what = match milestone.check_ins {
                1 => "first check-in".to_owned(),
                n => format!("{n} check-ins"),
            };
            println!("    milestone: {what}, reached on {}", milestone.reached_on);
        }
    }
    let summary = ana
        .client
        .weekly_summary(circle, today.week_start(), today)
        .await?;
    println!("  Week of {}:", today.week_start());
    for member in &summary.members {
        println!(
            "    {:<6} {} check-in(s) this week, {} active goal(s)",
            name_of(&ana.client, circle, member.member).await?,
            member.check_ins,
            member.active_goals
        );
    }

    // --- A private goal and a check-in round ------------------------------------------------
    banner("A private goal and a check-in round");
    let sober = post(
        &dev,
        circle,
        Content::Goal {
            title: "One day at a time".parse().unwrap(),
            why: None,
            cadence: Cadence::Daily,
            visibility: Visibility::DoneOnly,
            grace_days: GraceDays::NONE,
            rest_days: RestDays::NONE,
            start: today,
        },
    )
    .await?;
    let private_note = "Craved a drink at 9pm, called my sponsor instead.";
    dev.client
        .check_in(
            circle,
            sober,
            today,
            Outcome::Done,
            Some(private_note.parse()?),
            Some(Mood::new(2)?),
        )
        .await?;
    say(
        "Dev",
        "checks in to a \"done / not done only\" goal; the note is sealed for Dev alone",
    );
    wait_for("Ana to see Dev's check-in", || async {
        Ok(ana.client.timeline(circle, 200).await?.iter().any(|i| {
            matches!(&i.body, ItemBody::Content(Content::PrivateCheckIn { goal, done: true, .. }) if *goal == sober)
        }))
    })
    .await?;
    let ana_sees_note = format!("{:?}", ana.client.timeline(circle, 200).await?).contains("sponsor")
        || ana.client.timeline(circle, 200).await?.iter().any(|i| {
            matches!(&i.body, ItemBody::Content(Content::CheckIn { note: Some(n), .. }) if n.contains("sponsor"))
        });
    say(
        "Ana",
        &format!(
            "sees that Dev checked in today; can read Dev's note: {}",
            if ana_sees_note { "YES (bug)" } else { "no" }
        ),
    );
    if ana_sees_note {
        bail!("another member read a done-only note");
    }
    let round = ana
        .client
        .open_round(circle, "How is everyone this week?".parse()?)
        .await?;
    say(
        "Ana",
        "opens a check-in round: \"How is everyone this week?\"",
    );
    for m in [&ben, &chloe] {
        wait_for(&format!("{} to see the round", m.name), || async {
            Ok(m.client
                .rounds(circle)
                .await?
                .iter()
                .any(|r| r.round.round == round))
        })
        .await?;
    }
    ben.client
        .answer_round(
            circle,
            round,
            Mood::new(3)?,
            Some("Tired but hopeful.".parse()?),
        )
        .await?;
    chloe
        .client
        .answer_round(circle, round, Mood::new(4)?, None)
        .await?;
    wait_for("Ana to see two answers", || async {
        Ok(ana
            .client
            .rounds(circle)
            .await?
            .iter()
            .any(|r| r.round.round == round && r.answered.len() == 2))
    })
    .await?;
    let status = ana
        .client
        .rounds(circle)
        .await?
        .into_iter()
        .find(|r| r.round.round == round)
        .context("the round")?;
    let mut answered = Vec::new();
    for member in &status.answered {
        answered.push(name_of(&ana.client, circle, *member).await?);
    }
    let mut waiting = Vec::new();
    for member in &status.not_answered {
        waiting.push(name_of(&ana.client, circle, *member).await?);
    }
    say(
        "",
        &format!(
            "  Round: answered by {}; not yet: {}",
            answered.join(", "),
            waiting.join(", ")
        ),
    );

    // --- Chloe goes offline and catches up ----------------------------------------------------
    banner("Chloe goes offline");
    chloe.client.shutdown().await?;
    let _ = (&mut chloe.task).await;
    for n in 1..=20 {
        let who = if n % 2 == 0 { &ana } else { &ben };
        post_quiet(
            who,
            circle,
            text(
                &format!("While Chloe is away, message {n} of 20."),
                None,
                None,
            ),
        )
        .await?;
    }
    say("", "Ana and Ben wrote 20 messages while Chloe was offline.");
    let back = Instant::now();
    let (client, task) = hearth::node::spawn(chloe.config.clone()).await?;
    chloe.client = client;
    chloe.task = task;
    for peer in [&ana, &ben] {
        for address in peer.client.status().await?.listen_addrs {
            let _ = chloe
                .client
                .dial(
                    address
                        .with_p2p(peer.client.peer_id())
                        .unwrap_or_else(|a| a),
                )
                .await;
        }
    }
    wait_for("Chloe to catch up", || async {
        let timeline = chloe.client.timeline(circle, 200).await?;
        Ok(timeline
            .iter()
            .filter(|i| is_text_containing(i, "While Chloe is away"))
            .count()
            == 20)
    })
    .await?;
    say(
        "Chloe",
        &format!(
            "restarted from her data directory and caught up on all 20 messages in {} ms",
            back.elapsed().as_millis()
        ),
    );

    // --- Ana removes Dev ---------------------------------------------------------------------
    banner("Ana removes Dev");
    let dev_id = member_named(&ana.client, circle, "Dev").await?;
    let dev_read_before = readable_texts(&dev.client, circle).await?;
    ana.client.remove_member(circle, dev_id).await?;
    say(
        "Ana",
        "removed Dev; the circle moved to a new epoch key that Dev does not have",
    );
    for m in [&ben, &chloe] {
        wait_for(&format!("{} to see the removal", m.name), || async {
            Ok(m.client.members(circle).await?.members.len() == 3)
        })
        .await?;
    }
    post(
        &ben,
        circle,
        text(
            "Checking in after tonight's meeting: still sober, day 41.",
            None,
            None,
        ),
    )
    .await?;
    wait_for("Chloe to read Ben's new message", || async {
        Ok(chloe
            .client
            .timeline(circle, 200)
            .await?
            .iter()
            .any(|i| is_text_containing(i, "day 41")))
    })
    .await?;
    // Give Dev's node every chance to receive it too: it is still connected and subscribed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let dev_read_after = readable_texts(&dev.client, circle).await?;
    let dev_sees_new = dev
        .client
        .timeline(circle, 500)
        .await?
        .iter()
        .any(|i| is_text_containing(i, "day 41"));
    println!(
        "  Dev's node could read {dev_read_before} messages before the removal and {dev_read_after} after it; \
         Ben's new message readable by Dev: {}",
        if dev_sees_new {
            "YES (this would be a bug)"
        } else {
            "no"
        }
    );
    if dev_sees_new {
        bail!("the removed member read a message written after her removal");
    }

    banner("The circle's timeline, as Ana sees it (causal order)");
    let mut while_away = 0;
    for item in ana.client.timeline(circle, 500).await? {
        if is_text_containing(&item, "While Chloe is away") {
            while_away += 1;
            continue;
        }
        if while_away > 0 {
            println!("  ({while_away} messages written while Chloe was away)");
            while_away = 0;
        }
        if let Some(line) = render(&item) {
            println!("  {line}");
        }
    }

    for m in [ana, ben, chloe, dev] {
        m.client.shutdown().await?;
        let _ = m.task.await;
    }
    println!(
        "\nDone in {:.1} s. The removed member read nothing new.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn start(name: &'static str, root: &Path) -> Result<Member> {
    let mut config = NodeConfig::local_test(root.join(name.to_lowercase()));
    // Real at-rest protection: Argon2id with the interactive parameters and a fresh passphrase.
    config.kdf = KdfParams::INTERACTIVE;
    config.passphrase = Passphrase::new(format!("{name} demo passphrase {}", std::process::id()));
    let (client, task) = hearth::node::spawn(config.clone()).await?;
    Ok(Member {
        name,
        client,
        task,
        config,
    })
}

fn text(body: &str, reply_to: Option<EntryId>, warning: Option<&str>) -> Content {
    Content::Text {
        body: body.parse().unwrap(),
        reply_to,
        content_warning: warning.map(|w| w.parse().unwrap()),
    }
}

async fn post(member: &Member, circle: CircleId, content: Content) -> Result<EntryId> {
    let line = describe(&content);
    let id = post_quiet(member, circle, content).await?;
    if let Some(line) = line {
        say(member.name, &line);
    }
    Ok(id)
}

async fn post_quiet(member: &Member, circle: CircleId, content: Content) -> Result<EntryId> {
    Ok(member.client.post(circle, content).await?)
}

fn describe(content: &Content) -> Option<String> {
    Some(match content {
        Content::Text {
            body,
            reply_to,
            content_warning,
        } => {
            let mut line = String::new();
            if reply_to.is_some() {
                line.push_str("(reply) ");
            }
            if let Some(w) = content_warning {
                line.push_str(&format!("[content warning: {w}, hidden until revealed] "));
            }
            line.push_str(&format!("\"{body}\""));
            line
        }
        Content::Encouragement { note, .. } => {
            format!("encourages: {}", note.as_deref().unwrap_or("I see you"))
        }
        Content::Reaction { emoji, .. } => format!("reacts {emoji}"),
        Content::Goal { title, .. } => format!("sets a goal: \"{title}\""),
        _ => return None,
    })
}

fn render(item: &TimelineItem) -> Option<String> {
    let who = &item.author_name;
    Some(match &item.body {
        ItemBody::Content(Content::Text {
            body,
            content_warning: Some(w),
            ..
        }) => {
            format!(
                "{who}: [content warning: {w}] ({} characters, select to reveal)",
                body.chars().count()
            )
        }
        ItemBody::Content(Content::Text { body, .. }) => {
            let extras = if item.encouragements.is_empty() {
                String::new()
            } else {
                "  (I see you)".into()
            };
            let reactions: String = item.reactions.keys().cloned().collect();
            format!("{who}: {body} {reactions}{extras}")
        }
        ItemBody::Content(Content::Goal { title, .. }) => format!("{who} set a goal: {title}"),
        ItemBody::Content(Content::CheckIn { day, .. }) => format!("{who} checked in for {day}"),
        ItemBody::Membership {
            op, subject_name, ..
        } => {
            format!("— {who}: {op} {}", subject_name.clone().unwrap_or_default())
        }
        _ => return None,
    })
}

fn is_text_containing(item: &TimelineItem, needle: &str) -> bool {
    matches!(&item.body, ItemBody::Content(Content::Text { body, .. }) if body.contains(needle))
}

async fn readable_texts(client: &Client, circle: CircleId) -> Result<usize> {
    let timeline = client.timeline(circle, 500).await?;
    Ok(timeline
        .iter()
        .filter(|i| matches!(i.body, ItemBody::Content(Content::Text { .. })))
        .count())
}

async fn member_named(client: &Client, circle: CircleId, name: &str) -> Result<MemberId> {
    let members = client.members(circle).await?;
    members
        .members
        .iter()
        .find(|m| m.display_name == name)
        .map(|m| m.member)
        .with_context(|| format!("no member named {name}"))
}

async fn name_of(client: &Client, circle: CircleId, member: MemberId) -> Result<String> {
    let members = client.members(circle).await?;
    Ok(members
        .members
        .iter()
        .find(|m| m.member == member)
        .map_or_else(|| member.short(), |m| m.display_name.clone()))
}

async fn goal_title(client: &Client, circle: CircleId, goal: EntryId) -> Result<String> {
    let timeline = client.timeline(circle, 500).await?;
    Ok(timeline
        .iter()
        .find_map(|i| match &i.body {
            ItemBody::Content(Content::Goal { title, .. }) if i.id == goal => {
                Some(title.to_string())
            }
            _ => None,
        })
        .unwrap_or_else(|| goal.short()))
}

/// Polls `check` until it holds, for at most 20 seconds.
async fn wait_for<F, Fut>(what: &str, check: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("timed out waiting for {what}")
}

fn today() -> LocalDay {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    LocalDay::clamped((secs / 86_400) as i32)
}

fn say(who: &str, what: &str) {
    if who.is_empty() {
        println!("{what}");
    } else {
        println!("  {who:<6} {what}");
    }
}

fn banner(title: &str) {
    println!("\n== {title}");
}
