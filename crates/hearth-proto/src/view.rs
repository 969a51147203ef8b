//! The timeline read model: how a circle's accepted entries read to one member. Pure
//! functions, no IO: the node walks its store's indexes and hands the entries here
//! (PROTOCOL.md §13, "Support-circle features").
//!
//! Rules (what a UI expects):
//! - Items are in causal order: ascending (lamport, author, seq).
//! - Entries the current membership says their author could not write (`check_writer`) and
//!   entries this member cannot open are left out by the caller.
//! - Entries a facilitator hid ([`Membership::hidden`]) are left out, with everything
//!   applied to them; so is the content of members muted on this device (their membership
//!   items stay, so the reader still sees who joined, left or was removed).
//! - An edit replaces the body of its target if both have the same author and the target is a
//!   text; the latest edit (by lamport) wins. A deletion by the target's author turns it into
//!   a tombstone ([`ItemBody::Deleted`]). Edits, deletions, reactions, encouragements and
//!   profiles are not items of their own: they are applied. A guidelines acceptance is an
//!   item (the timeline shows who accepted which version).
//! - A check-in to a goal whose visibility is `DoneOnly` is shown to others without its note,
//!   value and mood, and a skipped one not at all. A sealed check-in
//!   ([`Content::PrivateCheckIn`]) is shown to its author opened, as the
//!   [`Content::CheckIn`] she wrote, and to others as it is (only `done` is readable), and
//!   not at all when not done.
//! - Milestones: the check-in that made a goal's n-th done day (n in
//!   [`progress::MILESTONES`], computed by the progress reducer over all the
//!   goal's entries) carries it in [`TimelineItem::milestone`]: of that day's done check-ins
//!   not deleted by their author nor hidden, the one with the smallest entry id (the
//!   reducer's canonical one).
//! - A page of the timeline is built from the entries it shows and the entries applied to
//!   them ([`TimelineContext`] brings names, goal visibilities and the goals' entries), so it
//!   costs the same however long the history is.
//! - A text's content warning is at [`TimelineItem::content_warning`]: a UI shows the warning
//!   and reveals the body only when the reader asks.
//! - Display names: the author's latest profile, else the name she joined with (a former
//!   member keeps the name the circle last knew her by: the caller brings the tally's names,
//!   read through the current membership so that no profile beyond her cutoff counts), else
//!   the first 8 hex characters of her id.
//!
//! The items carry decrypted content for the UI: [`Content`]'s `Debug` is redacted, display
//! names are not.
//!
//! [`Membership::hidden`]: crate::membership::Membership::hidden

use std::collections::{BTreeMap, BTreeSet};

use crate::content::{Content, LocalDay, Outcome, PrivatePart, Visibility};
use crate::membership::{ControlBody, ControlOp};
use crate::progress::{self, Milestone, ProgressEvent};
use crate::sync::delivery::Delivery;
use crate::{EntryId, MemberId};

/// One line of a circle's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineItem {
    /// The entry.
    pub id: EntryId,
    /// Its author.
    pub author: MemberId,
    /// The author's display name (her latest profile, else the name she joined with).
    pub author_name: String,
    /// Its Lamport clock (timelines are ordered by it: causal order).
    pub lamport: u64,
    /// The author's clock when she wrote it (Unix ms, informational).
    pub timestamp_ms: u64,
    /// What it says.
    pub body: ItemBody,
    /// Whether its author edited it.
    pub edited: bool,
    /// Reactions to it: emoji → who.
    pub reactions: BTreeMap<String, Vec<MemberId>>,
    /// Encouragements ("I see you") for it: who, with an optional note.
    pub encouragements: Vec<(MemberId, Option<String>)>,
    /// The milestone this check-in reached (it made its goal's n-th done day), computed by
    /// the progress reducer. Set by [`build_timeline`] only (the node's `Client::timeline`),
    /// not by [`single_item`] (its entry events).
    pub milestone: Option<Milestone>,
    /// For my own entries while I am a member: how many of the other members' devices
    /// reported holding it in sync (best effort, [`crate::sync::delivery`]). Set only by the
    /// node's `Client::timeline`; `None` once I left or was removed (my device no longer
    /// hears from theirs).
    pub delivery: Option<Delivery>,
}

impl TimelineItem {
    /// The content warning of a text: a UI shows it instead of the body and reveals the body
    /// only when the reader chooses to.
    pub fn content_warning(&self) -> Option<&str> {
        match &self.body {
            ItemBody::Content(Content::Text {
                content_warning, ..
            }) => content_warning.as_deref(),
            _ => None,
        }
    }
}

/// The body of a timeline item.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemBody {
    /// Content (with the latest edit applied; check-ins filtered by the goal's visibility).
    Content(Content),
    /// A membership change.
    Membership {
        /// The operation's short name.
        op: &'static str,
        /// The member concerned, if any.
        subject: Option<MemberId>,
        /// Her display name, if known.
        subject_name: Option<String>,
    },
    /// Deleted by its author (a tombstone; best effort).
    Deleted,
}

/// An accepted, opened entry, as the timeline needs it.
#[derive(Debug, Clone)]
pub struct ViewEntry {
    /// Its id.
    pub id: EntryId,
    /// Its author.
    pub author: MemberId,
    /// Its seq.
    pub seq: u64,
    /// Its lamport.
    pub lamport: u64,
    /// Its timestamp.
    pub timestamp_ms: u64,
    /// What it opened to.
    pub body: ViewBody,
}

/// The opened body of a [`ViewEntry`].
#[derive(Debug, Clone)]
pub enum ViewBody {
    /// Content.
    Content(Content),
    /// A control entry.
    Control(ControlBody),
}

/// What the reading device applies on top of the circle's entries.
pub struct ViewOptions<'a> {
    /// The reader (her own sealed check-ins are opened, her own `DoneOnly` check-ins shown
    /// in full).
    pub viewer: MemberId,
    /// Entries hidden by a facilitator
    /// ([`Membership::hidden`](crate::membership::Membership::hidden)).
    pub hidden: &'a BTreeMap<EntryId, MemberId>,
    /// Members whose content this device does not show.
    pub muted: &'a BTreeSet<MemberId>,
    /// The reader's day, for the progress reducer's milestones (check-ins dated later than
    /// the day after it do not count yet).
    pub today: LocalDay,
    /// Opens the reader's own sealed check-ins
    /// ([`Circle::open_private_check_in`](crate::circle::Circle::open_private_check_in)).
    pub open_private: &'a dyn Fn(&Content) -> Option<PrivatePart>,
}

impl std::fmt::Debug for ViewOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewOptions")
            .field("viewer", &self.viewer)
            .field("hidden", &self.hidden.len())
            .field("muted", &self.muted.len())
            .field("today", &self.today)
            .finish_non_exhaustive()
    }
}

/// How a content entry is shown to the reader, or `None` if it is not shown to her:
/// check-ins filtered by their goal's visibility, her own sealed check-ins opened.
/// `visibility` is the visibility of the check-in's goal, if it is one and the goal is known.
pub fn present_content(
    author: &MemberId,
    content: &Content,
    visibility: Option<Visibility>,
    options: &ViewOptions<'_>,
) -> Option<Content> {
    match content {
        Content::CheckIn {
            goal,
            day,
            outcome,
            note,
            mood,
        } => {
            if *author != options.viewer && visibility == Some(Visibility::DoneOnly) {
                if !outcome.is_done() {
                    return None;
                }
                return Some(Content::CheckIn {
                    goal: *goal,
                    day: *day,
                    outcome: Outcome::Done,
                    note: None,
                    mood: None,
                });
            }
            Some(Content::CheckIn {
                goal: *goal,
                day: *day,
                outcome: *outcome,
                note: note.clone(),
                mood: *mood,
            })
        }
        Content::PrivateCheckIn {
            goal, day, done, ..
        } => {
            if *author == options.viewer
                && let Some(part) = (options.open_private)(content)
            {
                return Some(Content::CheckIn {
                    goal: *goal,
                    day: *day,
                    outcome: part.outcome,
                    note: part.note,
                    mood: part.mood,
                });
            }
            done.then(|| content.clone())
        }
        other => Some(other.clone()),
    }
}

/// Whether an entry is left out for the reader: hidden by a facilitator, or content by a
/// member she muted.
pub fn left_out(entry: &ViewEntry, options: &ViewOptions<'_>) -> bool {
    options.hidden.contains_key(&entry.id)
        || (matches!(entry.body, ViewBody::Content(_)) && options.muted.contains(&entry.author))
}

/// The subject of a control operation, if it names one.
pub fn control_subject(op: &ControlOp) -> Option<MemberId> {
    match op {
        ControlOp::Add { member, .. } => Some(member.id),
        ControlOp::Remove { member, .. } | ControlOp::Promote { member } => Some(*member),
        _ => None,
    }
}

/// Display names: each author's latest profile (by lamport) over the names they joined with.
/// `entries` must be valid under the current membership (as the node's views are), so a
/// profile a former member wrote beyond her cutoff never counts.
pub fn display_names(
    entries: &[ViewEntry],
    joined_as: &BTreeMap<MemberId, String>,
) -> BTreeMap<MemberId, String> {
    let mut names: BTreeMap<MemberId, String> =
        joined_as.iter().map(|(m, n)| (*m, n.clone())).collect();
    let mut latest: BTreeMap<MemberId, u64> = BTreeMap::new();
    for entry in entries {
        match &entry.body {
            ViewBody::Content(Content::Profile { display_name })
                if latest
                    .get(&entry.author)
                    .is_none_or(|l| *l <= entry.lamport) =>
            {
                latest.insert(entry.author, entry.lamport);
                names.insert(entry.author, display_name.to_string());
            }
            ViewBody::Control(ControlBody {
                op:
                    ControlOp::Add {
                        member,
                        display_name,
                        ..
                    },
                ..
            }) => {
                names
                    .entry(member.id)
                    .or_insert_with(|| display_name.clone());
            }
            ViewBody::Control(ControlBody {
                op: ControlOp::Create { display_name, .. },
                ..
            }) => {
                names
                    .entry(entry.author)
                    .or_insert_with(|| display_name.clone());
            }
            _ => {}
        }
    }
    names
}

fn name_of(names: &BTreeMap<MemberId, String>, member: &MemberId) -> String {
    names.get(member).cloned().unwrap_or_else(|| member.short())
}

/// What a timeline needs besides its entries, read from the circle's tally and indexes
/// rather than from its whole history.
#[derive(Debug)]
pub struct TimelineContext<'a> {
    /// Display names by member.
    pub names: &'a BTreeMap<MemberId, String>,
    /// The visibility of goals, by goal id (at least those of the check-ins shown).
    pub visibility: &'a BTreeMap<EntryId, Visibility>,
    /// The progress reducer's input for the goals of the check-ins shown (for milestones).
    pub goal_events: &'a [ProgressEvent],
}

/// Whether [`build_timeline`] makes an item of an entry (rather than applying it to another
/// or leaving it out). `visibility` is that of the goal of a check-in, if known.
pub fn is_item(
    entry: &ViewEntry,
    visibility: Option<Visibility>,
    options: &ViewOptions<'_>,
) -> bool {
    if left_out(entry, options) {
        return false;
    }
    match &entry.body {
        ViewBody::Content(
            Content::Edit { .. }
            | Content::Delete { .. }
            | Content::Reaction { .. }
            | Content::Encouragement { .. }
            | Content::Profile { .. },
        ) => false,
        ViewBody::Content(content) => {
            present_content(&entry.author, content, visibility, options).is_some()
        }
        ViewBody::Control(_) => true,
    }
}

/// Whether an entry is applied to its target rather than shown as an item: edits, deletions,
/// reactions and encouragements.
pub fn is_applied(entry: &ViewEntry) -> bool {
    matches!(
        entry.body,
        ViewBody::Content(
            Content::Edit { .. }
                | Content::Delete { .. }
                | Content::Reaction { .. }
                | Content::Encouragement { .. }
        )
    )
}

/// Builds the timeline seen by `options.viewer` from accepted, opened entries (any order):
/// the items among them, with the edits, deletions, reactions and encouragements among them
/// applied.
pub fn build_timeline(
    entries: &[ViewEntry],
    context: &TimelineContext<'_>,
    options: &ViewOptions<'_>,
) -> Vec<TimelineItem> {
    let mut sorted: Vec<&ViewEntry> = entries.iter().collect();
    sorted.sort_by_key(|e| (e.lamport, e.author, e.seq));
    let names = context.names;
    let authors: BTreeMap<EntryId, MemberId> = entries.iter().map(|e| (e.id, e.author)).collect();
    let goal_visibility = context.visibility;

    let mut items: Vec<TimelineItem> = Vec::new();
    let mut index: BTreeMap<EntryId, usize> = BTreeMap::new();
    let mut edits: Vec<&ViewEntry> = Vec::new();
    let mut deletes: Vec<&ViewEntry> = Vec::new();
    let mut reactions: Vec<(&ViewEntry, EntryId, String)> = Vec::new();
    let mut encouragements: Vec<(&ViewEntry, EntryId, Option<String>)> = Vec::new();

    for entry in sorted {
        if left_out(entry, options) {
            continue;
        }
        let body = match &entry.body {
            ViewBody::Content(content) => match content {
                Content::Edit { .. } => {
                    edits.push(entry);
                    continue;
                }
                Content::Delete { .. } => {
                    deletes.push(entry);
                    continue;
                }
                Content::Reaction { target, emoji } => {
                    reactions.push((entry, *target, emoji.to_string()));
                    continue;
                }
                Content::Encouragement { target, note } => {
                    encouragements.push((entry, *target, note.clone().map(String::from)));
                    continue;
                }
                Content::Profile { .. } => continue,
                other => {
                    let visibility = other
                        .target()
                        .and_then(|goal| goal_visibility.get(&goal).copied());
                    match present_content(&entry.author, other, visibility, options) {
                        Some(content) => ItemBody::Content(content),
                        None => continue,
                    }
                }
            },
            ViewBody::Control(body) => {
                let subject = control_subject(&body.op);
                ItemBody::Membership {
                    op: body.op.name(),
                    subject,
                    subject_name: subject.map(|s| name_of(names, &s)),
                }
            }
        };
        index.insert(entry.id, items.len());
        items.push(new_item(entry, names, body));
    }

    // Edits arrive sorted by lamport, so the last one applied wins.
    for edit in edits {
        let ViewBody::Content(Content::Edit { target, body }) = &edit.body else {
            continue;
        };
        if authors.get(target) != Some(&edit.author) {
            continue;
        }
        if let Some(item) = index.get(target).and_then(|i| items.get_mut(*i))
            && let ItemBody::Content(Content::Text { body: old, .. }) = &mut item.body
        {
            *old = body.clone();
            item.edited = true;
        }
    }
    for delete in deletes {
        let ViewBody::Content(Content::Delete { target }) = &delete.body else {
            continue;
        };
        if authors.get(target) != Some(&delete.author) {
            continue;
        }
        if let Some(item) = index.get(target).and_then(|i| items.get_mut(*i)) {
            item.body = ItemBody::Deleted;
            item.reactions.clear();
            item.encouragements.clear();
        }
    }
    for (entry, target, emoji) in reactions {
        if let Some(item) = index.get(&target).and_then(|i| items.get_mut(*i))
            && item.body != ItemBody::Deleted
        {
            let who = item.reactions.entry(emoji).or_default();
            if !who.contains(&entry.author) {
                who.push(entry.author);
            }
        }
    }
    for (entry, target, note) in encouragements {
        if let Some(item) = index.get(&target).and_then(|i| items.get_mut(*i))
            && item.body != ItemBody::Deleted
        {
            item.encouragements.push((entry.author, note));
        }
    }
    mark_milestones(context.goal_events, options, &mut items, &index);
    items
}

/// The visibility of every goal among `entries`, by goal id.
pub fn goal_visibilities(entries: &[ViewEntry]) -> BTreeMap<EntryId, Visibility> {
    entries
        .iter()
        .filter_map(|e| match &e.body {
            ViewBody::Content(Content::Goal { visibility, .. }) => Some((e.id, *visibility)),
            _ => None,
        })
        .collect()
}

/// The progress reducer's input: every content entry.
pub fn progress_events(entries: &[ViewEntry]) -> Vec<ProgressEvent> {
    entries
        .iter()
        .filter_map(|e| match &e.body {
            ViewBody::Content(content) => Some(ProgressEvent {
                entry: e.id,
                author: e.author,
                seq: e.seq,
                made_at_ms: e.timestamp_ms,
                content: content.clone(),
            }),
            ViewBody::Control(_) => None,
        })
        .collect()
}

/// Puts each goal's milestones on the check-in items that reached them: of the milestone's
/// day, the done check-in by the goal's author with the smallest entry id that is neither
/// deleted by its author nor hidden, if the reader sees it. `events` are the progress
/// reducer's input for the goals concerned (all of each goal's entries).
fn mark_milestones(
    events: &[ProgressEvent],
    options: &ViewOptions<'_>,
    items: &mut [TimelineItem],
    index: &BTreeMap<EntryId, usize>,
) {
    let goals = progress::goal_progress(events, options.today);
    if goals.values().all(|g| g.milestones.is_empty()) {
        return;
    }
    let authors: BTreeMap<EntryId, MemberId> = events.iter().map(|e| (e.entry, e.author)).collect();
    let deleted: BTreeSet<EntryId> = events
        .iter()
        .filter_map(|e| match &e.content {
            Content::Delete { target } if authors.get(target) == Some(&e.author) => Some(*target),
            _ => None,
        })
        .collect();
    // (goal, day) of every live done check-in by the goal's author, smallest entry id first.
    let mut done: BTreeMap<(EntryId, LocalDay), EntryId> = BTreeMap::new();
    for event in events {
        let (goal, day, is_done) = match &event.content {
            Content::CheckIn {
                goal, day, outcome, ..
            } => (*goal, *day, outcome.is_done()),
            Content::PrivateCheckIn {
                goal, day, done, ..
            } => (*goal, *day, *done),
            _ => continue,
        };
        let own_goal = goals.get(&goal).is_some_and(|g| g.author == event.author);
        let live = !deleted.contains(&event.entry) && !options.hidden.contains_key(&event.entry);
        if is_done && own_goal && live {
            let slot = done.entry((goal, day)).or_insert(event.entry);
            *slot = (*slot).min(event.entry);
        }
    }
    for (goal, progress) in &goals {
        for milestone in &progress.milestones {
            if let Some(i) = done
                .get(&(*goal, milestone.reached_on))
                .and_then(|id| index.get(id))
                && items[*i].body != ItemBody::Deleted
            {
                items[*i].milestone = Some(*milestone);
            }
        }
    }
}

fn new_item(entry: &ViewEntry, names: &BTreeMap<MemberId, String>, body: ItemBody) -> TimelineItem {
    TimelineItem {
        id: entry.id,
        author: entry.author,
        author_name: name_of(names, &entry.author),
        lamport: entry.lamport,
        timestamp_ms: entry.timestamp_ms,
        body,
        edited: false,
        reactions: BTreeMap::new(),
        encouragements: Vec::new(),
        milestone: None,
        delivery: None,
    }
}

/// One entry as an event item (nothing applied), presented as in [`build_timeline`]:
/// `None` if the reader does not see it. `visibility` is the visibility of the goal of a
/// check-in, if known.
pub fn single_item(
    entry: &ViewEntry,
    names: &BTreeMap<MemberId, String>,
    visibility: Option<Visibility>,
    options: &ViewOptions<'_>,
) -> Option<TimelineItem> {
    if left_out(entry, options) {
        return None;
    }
    let body = match &entry.body {
        ViewBody::Content(content) => ItemBody::Content(present_content(
            &entry.author,
            content,
            visibility,
            options,
        )?),
        ViewBody::Control(body) => {
            let subject = control_subject(&body.op);
            ItemBody::Membership {
                op: body.op.name(),
                subject,
                subject_name: subject.map(|s| name_of(names, &s)),
            }
        }
    };
    Some(new_item(entry, names, body))
}

#[cfg(test)]
mod tests;
