//! The read model's IO side: every screen reads only what it shows. How the entries read
//! (what is an item, what is applied to it, what a reader is shown) is proto's to decide
//! ([`hearth_proto::view`]); this module finds the entries in the store.
//!
//! - A timeline page walks the store's timeline index back from its cursor until it has its
//!   items ([`view::is_item`]), then reads, per item, the entries indexed as referring to it
//!   (edits, deletions, reactions, encouragements: [`view::is_applied`]), and builds the
//!   page with [`view::build_timeline`].
//! - Members, names and last-seen times come from the circle's [`Tally`] (hearth-proto),
//!   which the node folds as it stores each entry and persists now and then; at load it
//!   refolds only what was stored after the last save.
//! - A goal's progress reads the goal, the entries indexed under it (check-ins, statuses,
//!   deletions) and the deletions of those; the weekly summary does that for every goal the
//!   tally knows.
//!
//! Every stored entry is indexed under the entry it refers to ([`Content::target`]), in the
//! same transaction that stores it. Stores written before that are upgraded once, when a
//! circle without a saved tally is loaded.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use hearth_proto::circle::{Accepted, Opened};
use hearth_proto::content::{Content, LocalDay, Visibility};
use hearth_proto::membership::ControlRejection;
use hearth_proto::progress::{self, GoalProgress, ProgressEvent, WeeklySummary};
use hearth_proto::sync::delivery;
use hearth_proto::tally::{Folded, FoldedAt, Tally};
use hearth_proto::view::{self, TimelineContext, ViewBody, ViewEntry};
use hearth_proto::{CircleId, EntryId};
use hearth_store::StoredEntry;

use super::EventLoop;
use super::circles::{CircleSlot, decode_stored, uncache};
use crate::error::NodeError;
use crate::event::TimelinePage;

/// The circle-local key under which the node keeps the circle's [`Tally`] (sealed at rest).
pub(crate) const TALLY_KEY: &str = "hearth-node/tally";
/// How many index rows a timeline walk or a refold reads at a time.
const WALK_CHUNK: usize = 256;

/// The position and time of a stored entry, for the tally.
fn folded_at(stored: &StoredEntry) -> FoldedAt {
    FoldedAt {
        id: stored.id,
        author: stored.author,
        seq: stored.seq,
        lamport: stored.lamport,
        timestamp_ms: stored.timestamp_ms,
    }
}

/// Folds a stored entry, with its cached plaintext (if any), into a tally. A control entry the
/// membership `rejected` counts only by its position and time: a refused `Add` must not name
/// anyone (any member can write one for a former member, with any name).
pub(crate) fn fold(
    tally: &mut Tally,
    stored: &StoredEntry,
    cache: Option<&[u8]>,
    rejected: &BTreeMap<EntryId, ControlRejection>,
) -> bool {
    let body = cache.and_then(uncache);
    let folded = match &body {
        Some(ViewBody::Content(content)) => Folded::Content(content),
        Some(ViewBody::Control(control)) if !rejected.contains_key(&stored.id) => {
            Folded::Control(control)
        }
        Some(ViewBody::Control(_)) | None => Folded::Unreadable,
    };
    tally.fold(folded_at(stored), folded)
}

/// Reads an opened entry back into a view entry.
fn view_entry_of(stored: &StoredEntry, body: ViewBody) -> ViewEntry {
    ViewEntry {
        id: stored.id,
        author: stored.author,
        seq: stored.seq,
        lamport: stored.lamport,
        timestamp_ms: stored.timestamp_ms,
        body,
    }
}

fn progress_event(entry: &ViewEntry) -> Option<ProgressEvent> {
    match &entry.body {
        ViewBody::Content(content) => Some(ProgressEvent {
            entry: entry.id,
            author: entry.author,
            seq: entry.seq,
            made_at_ms: entry.timestamp_ms,
            content: content.clone(),
        }),
        ViewBody::Control(_) => None,
    }
}

impl EventLoop {
    /// A stored entry of the slot's circle as the reader sees it: `None` if it is not valid
    /// under the current membership or this member cannot open it.
    pub(super) fn view_entry(
        &self,
        slot: &CircleSlot,
        stored: &StoredEntry,
    ) -> Result<Option<ViewEntry>, NodeError> {
        if stored.circle != slot.circle.id() {
            return Ok(None);
        }
        let Some(entry) = decode_stored(&stored.bytes) else {
            return Ok(None);
        };
        if slot.circle.check_writer(&entry).is_err() {
            return Ok(None);
        }
        let body = match self
            .store
            .plaintext(stored.id)?
            .as_deref()
            .and_then(uncache)
        {
            Some(body) => body,
            None => match slot.circle.open(&entry) {
                Opened::Content(content) => ViewBody::Content(content),
                _ => return Ok(None),
            },
        };
        Ok(Some(view_entry_of(stored, body)))
    }

    /// The circle's tally: the saved one with what was stored after it refolded, or (for a
    /// circle stored before tallies, or whose tally is unreadable) one folded from the whole
    /// history, which also indexes every entry under the entry it refers to. Returns whether
    /// it differs from the saved one.
    pub(super) fn load_tally(
        &self,
        circle: CircleId,
        rejected: &BTreeMap<EntryId, ControlRejection>,
    ) -> Result<(Tally, bool), NodeError> {
        let saved = self
            .store
            .local(circle, TALLY_KEY)?
            .and_then(|bytes| match Tally::decode(&bytes) {
                Ok(tally) => Some(tally),
                Err(e) => {
                    tracing::warn!(circle = %circle.short(), error = %e, "the saved tally is unreadable; folding the history again");
                    None
                }
            });
        let upgrade = saved.is_none();
        let mut tally = saved.unwrap_or_default();
        let mut changed = upgrade;
        let mut refs = Vec::new();
        // Each author's log in seq order, from the first entry not folded yet.
        for (author, (head, _)) in self.store.heads(circle)? {
            let mut from = tally.folded().get(&author).map_or(0, |s| s + 1);
            while from <= head {
                let page = self.store.author_log(circle, author, from, WALK_CHUNK)?;
                let Some(last) = page.last() else { break };
                from = last.seq + 1;
                for stored in &page {
                    let cache = self.store.plaintext(stored.id)?;
                    changed |= fold(&mut tally, stored, cache.as_deref(), rejected);
                    if upgrade
                        && let Some(ViewBody::Content(content)) = cache.as_deref().and_then(uncache)
                        && let Some(target) = content.target()
                        && stored.goal != Some(target)
                    {
                        refs.push((stored.id, target));
                    }
                }
            }
        }
        if !refs.is_empty() {
            tracing::info!(circle = %circle.short(), entries = refs.len(), "indexing what older entries refer to");
            self.store.set_references(&refs)?;
        }
        Ok((tally, changed))
    }

    /// Persists the tally of circles whose tally changed (all of them, or those that changed
    /// at least a second ago). A tally lost in a crash is refolded from the entries.
    pub(super) fn save_tallies(&mut self, all: bool) {
        let now = Instant::now();
        for (id, slot) in &mut self.circles {
            let due = slot
                .tally_dirty
                .is_some_and(|t| all || now.duration_since(t) >= std::time::Duration::from_secs(1));
            if !due {
                continue;
            }
            slot.tally_dirty = None;
            if let Err(e) = self.store.put_local(*id, TALLY_KEY, &slot.tally.encode()) {
                tracing::warn!(circle = %id.short(), error = %e, "could not save the circle's tally; it will be folded again at the next start");
            }
        }
    }

    /// Folds entries just made durable into their circle's tally; `accepted`, when given,
    /// holds the same entries as proto opened them.
    pub(super) fn tally_stored(
        &mut self,
        circle: CircleId,
        stored: &[StoredEntry],
        caches: &[Option<Vec<u8>>],
        accepted: Option<&[Accepted]>,
    ) {
        let Some(slot) = self.circles.get_mut(&circle) else {
            return;
        };
        let mut changed = false;
        let rejected = &slot.circle.membership().rejected;
        for (i, (entry, cache)) in stored.iter().zip(caches).enumerate() {
            let opened = accepted.and_then(|a| a.get(i)).map(|a| &a.opened);
            changed |= match opened {
                // The content its cache holds, decoded already.
                Some(Opened::Content(content)) => {
                    slot.tally.fold(folded_at(entry), Folded::Content(content))
                }
                _ => fold(&mut slot.tally, entry, cache.as_deref(), rejected),
            };
        }
        if changed {
            slot.tally_dirty.get_or_insert_with(Instant::now);
        }
    }

    /// The progress reducer's input for one goal: the goal, the entries indexed under it,
    /// and the deletions of its check-ins and statuses.
    pub(super) fn goal_events(
        &self,
        slot: &CircleSlot,
        goal: EntryId,
    ) -> Result<Vec<ProgressEvent>, NodeError> {
        self.indexed_events(slot, goal, |content| {
            matches!(
                content,
                Content::CheckIn { .. }
                    | Content::PrivateCheckIn { .. }
                    | Content::GoalStatus { .. }
            )
        })
    }

    /// The rounds reducer's input for one round: its opening entry, the entries indexed under
    /// it (answers, its deletion) and the deletions of the answers.
    pub(super) fn round_events(
        &self,
        slot: &CircleSlot,
        round: EntryId,
    ) -> Result<Vec<ProgressEvent>, NodeError> {
        self.indexed_events(slot, round, |content| {
            matches!(content, Content::RoundAnswer { .. })
        })
    }

    /// `root` as an event, every entry the store indexes under it, and the deletions of those
    /// of them that `deletable` names; nothing if `root` is not stored or not readable here.
    fn indexed_events(
        &self,
        slot: &CircleSlot,
        root: EntryId,
        deletable: impl Fn(&Content) -> bool,
    ) -> Result<Vec<ProgressEvent>, NodeError> {
        let circle = slot.circle.id();
        let mut out = Vec::new();
        let Some(stored) = self.store.entry(root)?.filter(|e| e.circle == circle) else {
            return Ok(out);
        };
        let Some(event) = self
            .view_entry(slot, &stored)?
            .as_ref()
            .and_then(progress_event)
        else {
            return Ok(out);
        };
        out.push(event);
        for stored in self.store.goal_checkins(circle, root)? {
            let Some(entry) = self.view_entry(slot, &stored)? else {
                continue;
            };
            let Some(event) = progress_event(&entry) else {
                continue;
            };
            if deletable(&event.content) {
                for later in self.store.goal_checkins(circle, entry.id)? {
                    if let Some(delete) = self
                        .view_entry(slot, &later)?
                        .as_ref()
                        .and_then(progress_event)
                        && matches!(delete.content, Content::Delete { .. })
                    {
                        out.push(delete);
                    }
                }
            }
            out.push(event);
        }
        Ok(out)
    }

    /// The progress reducer's input for every goal of the circle.
    fn all_goal_events(&self, slot: &CircleSlot) -> Result<Vec<ProgressEvent>, NodeError> {
        let mut out = Vec::new();
        for goal in slot.tally.goals().keys() {
            out.extend(self.goal_events(slot, *goal)?);
        }
        Ok(out)
    }

    pub(super) fn goal_progress(
        &self,
        circle: CircleId,
        today: LocalDay,
    ) -> Result<Vec<GoalProgress>, NodeError> {
        let slot = self.slot(circle)?;
        let events = self.all_goal_events(slot)?;
        Ok(progress::goal_progress(&events, today)
            .into_values()
            .collect())
    }

    pub(super) fn weekly_summary(
        &self,
        circle: CircleId,
        week: LocalDay,
        today: LocalDay,
    ) -> Result<WeeklySummary, NodeError> {
        let slot = self.slot(circle)?;
        let events = self.all_goal_events(slot)?;
        Ok(progress::weekly_summary(&events, week, today))
    }

    /// The goal whose progress an entry may change, if any: a goal itself, the goal of a
    /// check-in or status, or the goal of what a deletion deletes.
    pub(super) fn goal_touched(
        &self,
        slot: &CircleSlot,
        id: EntryId,
        content: &Content,
    ) -> Option<EntryId> {
        let goal = match content {
            Content::Goal { .. } => Some(id),
            Content::CheckIn { goal, .. }
            | Content::PrivateCheckIn { goal, .. }
            | Content::GoalStatus { goal, .. } => Some(*goal),
            Content::Delete { target } if slot.tally.goals().contains_key(target) => Some(*target),
            Content::Delete { target } => self.store.entry(*target).ok()??.goal,
            _ => None,
        }?;
        slot.tally.goals().contains_key(&goal).then_some(goal)
    }

    /// A page of the timeline: the `limit` latest items, or those just before the item
    /// `before`, oldest first.
    pub(super) fn timeline_page(
        &self,
        circle: CircleId,
        limit: usize,
        before: Option<EntryId>,
    ) -> Result<TimelinePage, NodeError> {
        let slot = self.slot(circle)?;
        let mut cursor = match before {
            Some(id) => Some(
                self.store
                    .entry(id)?
                    .filter(|e| e.circle == circle)
                    .ok_or_else(|| {
                        NodeError::InvalidInput(format!(
                            "there is no entry {} in this circle to read before",
                            id.short()
                        ))
                    })?
                    .timeline_pos(),
            ),
            None => None,
        };
        let visibility: BTreeMap<EntryId, Visibility> = slot
            .tally
            .goals()
            .iter()
            .map(|(id, g)| (*id, g.visibility))
            .collect();
        let visibility_of = |entry: &ViewEntry| match &entry.body {
            ViewBody::Content(content) => content
                .target()
                .and_then(|goal| visibility.get(&goal).copied()),
            ViewBody::Control(_) => None,
        };
        // Walk back until the page is full and one more item shows there are older ones.
        let mut page: Vec<ViewEntry> = Vec::new();
        let mut more = false;
        let chunk = limit.saturating_add(1).clamp(16, WALK_CHUNK);
        'walk: loop {
            let rows = match cursor {
                None => self.store.timeline_latest(circle, chunk)?,
                Some(pos) => self.store.timeline_before(circle, pos, chunk)?,
            };
            for stored in &rows {
                let Some(entry) = self.view_entry(slot, stored)? else {
                    continue;
                };
                let shown =
                    slot.with_view_options(|o| view::is_item(&entry, visibility_of(&entry), o));
                if shown {
                    if page.len() == limit {
                        more = true;
                        break 'walk;
                    }
                    page.push(entry);
                }
            }
            match rows.last() {
                Some(last) if rows.len() == chunk => cursor = Some(last.timeline_pos()),
                _ => break,
            }
        }
        let older = if more {
            page.last().map(|e| e.id)
        } else {
            None
        };
        // What is applied to the items, and the goals of the check-ins among them.
        let mut entries = Vec::with_capacity(page.len());
        let mut goals = BTreeSet::new();
        for item in &page {
            for stored in self.store.goal_checkins(circle, item.id)? {
                if let Some(applied) = self.view_entry(slot, &stored)?
                    && view::is_applied(&applied)
                {
                    entries.push(applied);
                }
            }
            if let ViewBody::Content(
                Content::CheckIn { goal, .. } | Content::PrivateCheckIn { goal, .. },
            ) = &item.body
            {
                goals.insert(*goal);
            }
        }
        let mut goal_events = Vec::new();
        for goal in goals {
            goal_events.extend(self.goal_events(slot, goal)?);
        }
        let seqs: HashMap<EntryId, u64> = page.iter().map(|e| (e.id, e.seq)).collect();
        entries.extend(page);
        let names = slot.names();
        let context = TimelineContext {
            names: &names,
            visibility: &visibility,
            goal_events: &goal_events,
        };
        let mut items =
            slot.with_view_options(|options| view::build_timeline(&entries, &context, options));
        // Delivery of my own entries, from the marks members' devices reported (in memory).
        // A former member's device no longer hears from theirs: nothing is claimed.
        let me = slot.circle.me();
        let members = &slot.circle.membership().members;
        let member = slot.circle.am_member();
        for item in items.iter_mut().filter(|i| member && i.author == me) {
            if let Some(seq) = seqs.get(&item.id) {
                item.delivery = Some(delivery::delivery(
                    me,
                    *seq,
                    members.keys(),
                    &slot.member_marks,
                ));
            }
        }
        Ok(TimelinePage { items, older })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use hearth_proto::circle::Circle;
    use hearth_proto::content::{Cadence, GraceDays, Outcome, RestDays};
    use hearth_proto::identity::MemberSecret;
    use hearth_proto::membership::{CircleSettings, ControlOp, Role};
    use hearth_proto::rounds;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use tokio::sync::oneshot;

    use super::*;
    use crate::client::Command;
    use crate::config::NodeConfig;
    use crate::event::TimelineItem;

    fn text(i: usize) -> Content {
        Content::Text {
            body: format!("message {i}").parse().unwrap(),
            reply_to: None,
            content_warning: None,
        }
    }

    async fn start(dir: &std::path::Path) -> EventLoop {
        let (_client, event_loop) = crate::node::new(NodeConfig::local_test(dir))
            .await
            .expect("a node starts");
        event_loop
    }

    fn create(el: &mut EventLoop) -> CircleId {
        let (reply, mut rx) = oneshot::channel();
        el.handle_command(Command::CreateCircle {
            name: "pages".into(),
            guidelines: "be kind".into(),
            settings: CircleSettings::default(),
            display_name: "Ana".into(),
            reply,
        });
        rx.try_recv().expect("a reply").expect("a circle")
    }

    /// The whole timeline built the way it was before pages: every entry at once, the
    /// names, visibilities and milestones computed from all of them.
    fn whole(el: &EventLoop, circle: CircleId) -> Vec<TimelineItem> {
        let slot = el.slot(circle).unwrap();
        let entries = el.view_entries(slot).unwrap();
        let names = view::display_names(&entries, &slot.names());
        let visibility = view::goal_visibilities(&entries);
        let goal_events = view::progress_events(&entries);
        let context = TimelineContext {
            names: &names,
            visibility: &visibility,
            goal_events: &goal_events,
        };
        slot.with_view_options(|o| view::build_timeline(&entries, &context, o))
    }

    /// The whole timeline read page by page, newest page first, put back in order.
    fn paged(el: &EventLoop, circle: CircleId, limit: usize) -> Vec<TimelineItem> {
        let mut pages = Vec::new();
        let mut before = None;
        for _ in 0..1000 {
            let page = el.timeline_page(circle, limit, before).unwrap();
            assert!(page.items.len() <= limit);
            pages.push(page.items);
            match page.older {
                Some(id) => before = Some(id),
                None => break,
            }
        }
        pages
            .into_iter()
            .rev()
            .flatten()
            .map(without_delivery)
            .collect()
    }

    fn without_delivery(mut item: TimelineItem) -> TimelineItem {
        item.delivery = None;
        item
    }

    /// Writes a history with everything a page applies or marks: profiles, a goal with
    /// check-ins (milestones), reactions, an edit, deletions, encouragement.
    fn write_history(el: &mut EventLoop, circle: CircleId) -> BTreeMap<&'static str, EntryId> {
        let mut ids = BTreeMap::new();
        el.post(
            circle,
            Content::Profile {
                display_name: "Ana B.".parse().unwrap(),
            },
        )
        .unwrap();
        let today = super::super::circles::reader_today();
        let goal = el
            .post(
                circle,
                Content::Goal {
                    title: "walk".parse().unwrap(),
                    why: None,
                    cadence: Cadence::Daily,
                    visibility: Visibility::Circle,
                    grace_days: GraceDays::new(1).unwrap(),
                    rest_days: RestDays::NONE,
                    start: today.plus(-40),
                },
            )
            .unwrap();
        ids.insert("goal", goal);
        let mut last_text = None;
        for i in 0..60usize {
            let id = match i % 6 {
                0 => el
                    .check_in(
                        circle,
                        goal,
                        today.plus(-30 + i as i32 / 6),
                        Outcome::Done,
                        Some("good".parse().unwrap()),
                        Some(hearth_proto::content::Mood::new(4).unwrap()),
                    )
                    .unwrap(),
                3 if last_text.is_some() => el
                    .post(
                        circle,
                        Content::Reaction {
                            target: last_text.unwrap(),
                            emoji: "❤".parse().unwrap(),
                        },
                    )
                    .unwrap(),
                _ => {
                    let id = el.post(circle, text(i)).unwrap();
                    last_text = Some(id);
                    id
                }
            };
            if i == 6 {
                ids.insert("check-in", id);
            }
            if i == 10 {
                ids.insert("edited", id);
            }
            if i == 20 {
                ids.insert("deleted", id);
            }
        }
        let edited = ids["edited"];
        el.post(
            circle,
            Content::Edit {
                target: edited,
                body: "edited".parse().unwrap(),
            },
        )
        .unwrap();
        el.post(
            circle,
            Content::Delete {
                target: ids["deleted"],
            },
        )
        .unwrap();
        el.post(
            circle,
            Content::Encouragement {
                target: ids["check-in"],
                note: Some("I see you".parse().unwrap()),
            },
        )
        .unwrap();
        ids.insert(
            "reaction",
            el.post(
                circle,
                Content::Reaction {
                    target: edited,
                    emoji: "🌱".parse().unwrap(),
                },
            )
            .unwrap(),
        );
        ids
    }

    #[tokio::test]
    async fn pages_put_together_are_the_whole_timeline_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut el = start(dir.path()).await;
        let circle = create(&mut el);
        let ids = write_history(&mut el, circle);
        let whole_before = whole(&el, circle);
        assert!(whole_before.len() > 40);
        assert!(whole_before.iter().any(|i| i.milestone.is_some()));
        assert!(whole_before.iter().any(|i| i.edited));
        assert!(
            whole_before
                .iter()
                .any(|i| i.body == crate::event::ItemBody::Deleted)
        );
        assert!(whole_before.iter().any(|i| !i.encouragements.is_empty()));
        assert!(whole_before.iter().all(|i| i.author_name == "Ana B."));
        for limit in [1, 7, 50, 1000] {
            assert_eq!(paged(&el, circle, limit), whole_before, "pages of {limit}");
        }
        let latest = el.timeline_page(circle, 5, None).unwrap();
        assert_eq!(latest.items.len(), 5);
        assert_eq!(latest.older, Some(latest.items[0].id));
        let all = el.timeline_page(circle, 1000, None).unwrap();
        assert_eq!(all.older, None, "nothing is older than the whole timeline");
        // Tomorrow, so every check-in written (up to today) counts.
        let tomorrow = super::super::circles::reader_today().plus(1);
        let progress = el.goal_progress(circle, tomorrow).unwrap();
        let slot = el.slot(circle).unwrap();
        let events = view::progress_events(&el.view_entries(slot).unwrap());
        let expected: Vec<GoalProgress> = progress::goal_progress(&events, tomorrow)
            .into_values()
            .collect();
        assert_eq!(progress, expected);
        assert_eq!(progress[0].total_check_ins, 10);
        assert_eq!(
            el.members(circle).unwrap().members[0].display_name,
            "Ana B."
        );

        // A restart with the tally saved: the same pages.
        el.save_dirty(true);
        drop(el);
        let mut el = start(dir.path()).await;
        for limit in [3, 50] {
            assert_eq!(paged(&el, circle, limit), whole_before, "after a restart");
        }

        // A store from before: no saved tally and a reaction not indexed under its
        // target. The first load indexes it again.
        el.store
            .set_references(&[(ids["reaction"], ids["goal"])])
            .unwrap();
        el.store.delete_local(circle, TALLY_KEY).unwrap();
        el.circles.clear();
        drop(el);
        let el = start(dir.path()).await;
        assert_eq!(paged(&el, circle, 50), whole_before, "after the upgrade");
        assert_eq!(
            el.members(circle).unwrap().members[0].display_name,
            "Ana B."
        );
    }

    /// Admits `who` as `name` into the node's circle (the node writes and stores the `Add`):
    /// the commit's bytes and the welcome.
    /// The rounds screen reads each round the tally lists and what the store indexes under
    /// it, and shows what a walk over the whole history shows, also after the tally is lost.
    #[tokio::test]
    async fn rounds_read_through_the_index_are_the_rounds_of_the_whole_history() {
        let mood = |n| hearth_proto::content::Mood::new(n).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut el = start(dir.path()).await;
        let circle = create(&mut el);
        write_history(&mut el, circle);
        let first = el
            .open_round(circle, "how was your week?".parse().unwrap())
            .unwrap();
        let second = el
            .open_round(circle, "one word for today?".parse().unwrap())
            .unwrap();
        let gone = el
            .open_round(circle, "asked by mistake".parse().unwrap())
            .unwrap();
        el.answer_round(circle, first, mood(3), Some("tired".parse().unwrap()))
            .unwrap();
        el.answer_round(circle, first, mood(4), Some("better now".parse().unwrap()))
            .unwrap();
        let withdrawn = el.answer_round(circle, second, mood(2), None).unwrap();
        el.post(circle, Content::Delete { target: withdrawn })
            .unwrap();
        el.post(circle, Content::Delete { target: gone }).unwrap();

        let expected = |el: &EventLoop| {
            let slot = el.slot(circle).unwrap();
            let membership = slot.circle.membership();
            let mut entries = el.view_entries(slot).unwrap();
            entries.retain(|e| !membership.hidden.contains_key(&e.id));
            rounds::rounds(
                &view::progress_events(&entries),
                &rounds::openers(membership),
            )
        };
        let shown: Vec<_> = el
            .rounds(circle)
            .unwrap()
            .into_iter()
            .map(|r| r.round)
            .collect();
        assert_eq!(shown, expected(&el));
        assert_eq!(shown.len(), 2, "the deleted round is gone");
        // Rounds opened in the same millisecond are ordered by id: find each by its id.
        let round = |id| shown.iter().find(|r| r.round == id).unwrap();
        assert_eq!(round(first).answers.len(), 1, "her latest answer counts");
        assert_eq!(round(first).answers[0].note.as_deref(), Some("better now"));
        assert!(
            round(second).answers.is_empty(),
            "the withdrawn answer is gone"
        );

        // Without a saved tally the history is folded again at load: the same rounds.
        el.save_dirty(true);
        el.store.delete_local(circle, TALLY_KEY).unwrap();
        drop(el);
        let el = start(dir.path()).await;
        let again: Vec<_> = el
            .rounds(circle)
            .unwrap()
            .into_iter()
            .map(|r| r.round)
            .collect();
        assert_eq!(again, shown);
    }

    fn admit(
        el: &mut EventLoop,
        circle: CircleId,
        who: &MemberSecret,
        name: &str,
        role: Role,
    ) -> (Vec<u8>, Vec<u8>) {
        let public = who.public();
        let cache = super::super::commands::control(ControlOp::Add {
            member: public,
            role,
            display_name: name.into(),
            accepted_guidelines: 1,
            horizon: Vec::new(),
        });
        let mut welcome = None;
        let commit = el
            .write_own(
                circle,
                |_| cache,
                |c, now, rng| {
                    let (commit, bytes) = c.admit(public, role, name, 1, now, rng)?;
                    welcome = Some(bytes);
                    Ok(commit)
                },
            )
            .expect("the node admits");
        (commit.bytes, welcome.expect("a welcome").to_vec())
    }

    /// Hands the node an entry as if a peer sent it, and stores it.
    fn deliver(el: &mut EventLoop, circle: CircleId, bytes: &[u8]) {
        let store = el.store.clone();
        let slot = el.circles.get_mut(&circle).unwrap();
        let receipt = super::super::circles::receive_entry(&*store, &mut slot.circle, bytes)
            .expect("the node accepts the entry");
        assert_eq!(el.apply_receipt(circle, vec![receipt]), 1);
        el.flush_received();
    }

    #[tokio::test]
    async fn a_removed_member_cannot_rename_herself_with_a_profile_beyond_her_cutoff() {
        // Ana's node adds Cleo (a facilitator) and Ben. Cleo removes Ben after his "hello";
        // Ben, not knowing it yet, renames himself "Admin". Ana's node stores the rename
        // first (it is valid as far as it knows), then the removal.
        let dir = tempfile::tempdir().unwrap();
        let mut el = start(dir.path()).await;
        let circle = create(&mut el);
        let mut rng = StdRng::seed_from_u64(9);
        let (cleo, ben) = (
            MemberSecret::generate(&mut rng),
            MemberSecret::generate(&mut rng),
        );
        let ben_id = ben.public().id;
        let (_, to_cleo) = admit(&mut el, circle, &cleo, "Cleo", Role::Facilitator);
        let (add_ben, to_ben) = admit(&mut el, circle, &ben, "Ben", Role::Member);
        let mut cleo = Circle::join(&to_cleo, cleo).unwrap();
        cleo.receive(&add_ben).unwrap();
        let mut ben = Circle::join(&to_ben, ben).unwrap();
        let now = super::super::now_ms();
        let hello = ben.post(&text(1), now, &mut rng).unwrap();
        deliver(&mut el, circle, &hello.bytes);
        cleo.receive(&hello.bytes).unwrap();
        let removal = cleo.remove_member(&ben_id, now + 1, &mut rng).unwrap();
        let rename = ben
            .post(
                &Content::Profile {
                    display_name: "Admin".parse().unwrap(),
                },
                now + 2,
                &mut rng,
            )
            .unwrap();
        deliver(&mut el, circle, &rename.bytes);
        let ben_named = |el: &EventLoop| {
            let view = el.members(circle).unwrap();
            let current = view.members.iter().find(|m| m.member == ben_id);
            current
                .map(|m| m.display_name.clone())
                .or_else(|| view.departed_names.get(&ben_id).cloned())
        };
        assert_eq!(ben_named(&el).as_deref(), Some("Admin"), "a member renames");
        deliver(&mut el, circle, &removal.bytes);

        let check = |el: &EventLoop, when: &str| {
            let view = el.members(circle).unwrap();
            assert_eq!(view.departed, [ben_id], "{when}");
            assert_eq!(ben_named(el).as_deref(), Some("Ben"), "{when}");
            let names = el.slot(circle).unwrap().names();
            assert_eq!(
                names.get(&ben_id).map(String::as_str),
                Some("Ben"),
                "{when}"
            );
            let page = el.timeline_page(circle, 100, None).unwrap();
            let said_hello = page.items.iter().find(|i| i.id == hello.id).expect("hello");
            assert_eq!(said_hello.author_name, "Ben", "{when}");
            assert!(!format!("{page:?}").contains("Admin"), "{when}: {page:?}");
        };
        check(&el, "once the removal arrives");
        el.save_dirty(true);
        drop(el);
        let mut el = start(dir.path()).await;
        check(&el, "after a restart");
        el.store.delete_local(circle, TALLY_KEY).unwrap();
        el.circles.clear();
        drop(el);
        let el = start(dir.path()).await;
        check(&el, "after the history is folded again");
    }

    #[tokio::test]
    async fn a_long_history_opens_from_its_newest_positions_and_still_knows_old_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut el = start(dir.path()).await;
        let circle = create(&mut el);
        let window = hearth_proto::sync::RECENT_IDS_PER_AUTHOR;
        let first = el.post(circle, text(0)).unwrap();
        for i in 1..window + 20 {
            el.post(circle, text(i)).unwrap();
        }
        let (marks, held) = {
            let slot = el.slot(circle).unwrap();
            (slot.circle.marks(), slot.circle.logs().len())
        };
        el.save_dirty(true);
        drop(el);

        let mut el = start(dir.path()).await;
        let store = el.store.clone();
        let slot = el.circles.get_mut(&circle).unwrap();
        let me = slot.circle.me();
        assert_eq!(slot.circle.marks(), marks, "every position up to the head");
        assert_eq!(slot.circle.logs().len(), held);
        assert!(
            slot.circle.logs().kept_ids() <= window + 1,
            "{} ids in memory for a window of {window}",
            slot.circle.logs().kept_ids()
        );
        // The creation (a control entry) was recalled at open; an old post was not.
        let creation = store.author_positions(circle, me, 0, 1).unwrap()[0].1;
        assert_eq!(slot.circle.logs().id_at(&me, 0), Some(creation));
        let old = store.entry(first).unwrap().unwrap();
        assert_eq!(slot.circle.logs().id_at(&me, old.seq), None);
        // It arrives again (a replay): the store tells it is the one held.
        let receipt = super::super::circles::receive_entry(&*store, &mut slot.circle, &old.bytes)
            .expect("a duplicate, not a rejection");
        assert!(receipt.duplicate);
        assert_eq!(slot.circle.marks(), marks);
        // And the device writes on.
        el.post(circle, text(9999)).unwrap();
    }

    /// The member key lives only in the circle's state: nothing writes a second copy, and one
    /// an earlier version wrote is deleted at open; proofs still verify after a restart.
    #[tokio::test]
    async fn the_member_key_has_one_copy_and_an_old_second_copy_is_deleted() {
        use crate::node::circles::MEMBER_SECRET_KEY;
        use hearth_proto::sync::proof::{self, Binding, Side};
        let dir = tempfile::tempdir().unwrap();
        let mut el = start(dir.path()).await;
        let circle = create(&mut el);
        let store = el.store.clone();
        assert_eq!(store.local(circle, MEMBER_SECRET_KEY).unwrap(), None);
        store
            .put_local(circle, MEMBER_SECRET_KEY, &[7; 64])
            .unwrap();
        el.save_dirty(true);
        drop(store);
        drop(el);
        let el = start(dir.path()).await;
        assert_eq!(el.store.local(circle, MEMBER_SECRET_KEY).unwrap(), None);
        let slot = el.slot(circle).unwrap();
        let binding = Binding {
            requester: b"requester",
            responder: b"responder",
            requester_challenge: [1; 32],
            responder_challenge: [2; 32],
        };
        let sealed = slot
            .circle
            .prove_membership(Side::Requester, &binding)
            .unwrap();
        let member = proof::check(
            slot.circle.membership(),
            &slot.circle.proof_seal_key(),
            &sealed,
            Side::Requester,
            &circle,
            &binding,
        )
        .unwrap();
        assert_eq!(member, slot.circle.me());
    }

    #[tokio::test]
    async fn reading_before_an_entry_of_another_circle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut el = start(dir.path()).await;
        let circle = create(&mut el);
        let other = create(&mut el);
        let id = el.post(other, text(1)).unwrap();
        let err = el.timeline_page(circle, 10, Some(id)).unwrap_err();
        assert!(matches!(err, NodeError::InvalidInput(_)), "{err}");
    }
}
