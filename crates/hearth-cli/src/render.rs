//! Human-readable output: timelines, tables, goals, the status screen, QR codes.

use std::collections::HashMap;
use std::fmt::Write as _;

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

use crate::api::DeliveryView;
use crate::api::{
    CadenceView, CircleDetail, CircleSummary, ContentView, EventView, GoalView, GuidelinesStatus,
    MemberView, OutcomeView, RetentionView, RoundView, StatusView, SummaryView, TimelineItem,
};
use crate::days;

/// The first 8 characters of an id.
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn ago(ms: Option<u64>) -> String {
    let Some(ms) = ms else {
        return "never".to_owned();
    };
    let now = days::now_ms();
    let secs = now.saturating_sub(ms) / 1000;
    match secs {
        0..=59 => "just now".to_owned(),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// The QR code of a ticket, for a terminal (light modules on a dark background read best
/// inverted, so the code is drawn dark-on-light with a quiet zone).
pub fn qr(ticket: &str) -> Option<String> {
    // Upper case lets the QR code use its compact alphanumeric mode; tickets parse either case.
    let code =
        QrCode::with_error_correction_level(ticket.to_ascii_uppercase().as_bytes(), EcLevel::L)
            .ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

/// A table of circles.
pub fn circles(list: &[CircleSummary]) -> String {
    if list.is_empty() {
        return "You are in no circle yet: create one with `hearth circle create <NAME>` or join one with `hearth join <TICKET>`.\n".to_owned();
    }
    let width = list
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:<8}  {:<width$}  {:<11}  {:>7}  {:>7}\n",
        "ID", "NAME", "ROLE", "MEMBERS", "ENTRIES"
    );
    for c in list {
        let role = match (&c.role, c.member) {
            (_, false) => "left",
            (Some(r), true) => r.as_str(),
            (None, true) => "?",
        };
        let _ = writeln!(
            out,
            "{:<8}  {:<width$}  {:<11}  {:>7}  {:>7}",
            short(&c.id),
            c.name,
            role,
            c.member_count,
            c.entries
        );
    }
    out
}

/// The guidelines version a member accepted, and whether it is behind `current`.
fn accepted(m: &MemberView, current: Option<u32>) -> String {
    match current {
        Some(c) if m.accepted_guidelines < c => {
            format!("v{} (not v{c} yet)", m.accepted_guidelines)
        }
        _ => format!("v{}", m.accepted_guidelines),
    }
}

/// A table of members, with the guidelines version each accepted (`current`: the circle's
/// version, to show who has not accepted it yet).
pub fn members(list: &[MemberView], current: Option<u32>) -> String {
    let width = list
        .iter()
        .map(|m| m.name.chars().count() + if m.me { 6 } else { 0 })
        .max()
        .unwrap_or(4)
        .max(4);
    let gw = list
        .iter()
        .map(|m| accepted(m, current).chars().count())
        .max()
        .unwrap_or(0)
        .max(10);
    let mut out = format!(
        "{:<8}  {:<width$}  {:<11}  {:<gw$}  {:>7}  LAST ENTRY\n",
        "ID", "NAME", "ROLE", "GUIDELINES", "ENTRIES"
    );
    for m in list {
        let name = if m.me {
            format!("{} (you)", m.name)
        } else {
            m.name.clone()
        };
        let _ = writeln!(
            out,
            "{:<8}  {:<width$}  {:<11}  {:<gw$}  {:>7}  {}",
            short(&m.id),
            name,
            m.role,
            accepted(m, current),
            m.entries,
            ago(m.last_seen_ms)
        );
    }
    out
}

/// `7 days`, `24 hours`, `90 minutes`, `2 weeks`: a duration in the largest whole unit.
pub fn duration(secs: u64) -> String {
    let units = [
        (7 * 86_400, "week"),
        (86_400, "day"),
        (3600, "hour"),
        (60, "minute"),
    ];
    for (size, name) in units {
        if secs >= size && secs.is_multiple_of(size) {
            return count(secs / size, name);
        }
    }
    count(secs, "second")
}

/// A circle's retention (disappearing messages).
pub fn retention(r: &RetentionView) -> String {
    match r.retention_secs {
        None => format!(
            "Disappearing messages are off in `{}`: entries are kept.\n",
            r.name
        ),
        Some(secs) => format!(
            "Disappearing messages are on in `{}`: entries older than {} are deleted from every member's device.\n",
            r.name,
            duration(secs)
        ),
    }
}

/// "The guidelines changed to version N: run `hearth guidelines accept <circle>`".
pub fn guidelines_to_accept(circle: &str, version: u32) -> String {
    format!(
        "The guidelines of `{circle}` changed to version {version}: read and accept them with `hearth guidelines accept \"{circle}\"`."
    )
}

/// A circle's guidelines, and who accepted which version.
pub fn guidelines(g: &GuidelinesStatus) -> String {
    let mut out = format!("Guidelines of `{}` (version {}):\n", g.name, g.version);
    for line in g.text.lines() {
        let _ = writeln!(out, "  {line}");
    }
    if g.text.trim().is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    out.push('\n');
    if g.you_accepted < g.version {
        let _ = writeln!(
            out,
            "You accepted version {}. {}",
            g.you_accepted,
            guidelines_to_accept(&g.name, g.version)
        );
    } else {
        let _ = writeln!(out, "You accepted this version.");
    }
    let behind: Vec<&str> = g
        .members
        .iter()
        .filter(|m| !m.me && m.accepted_guidelines < g.version)
        .map(|m| m.name.as_str())
        .collect();
    if behind.is_empty() {
        let _ = writeln!(out, "Every other member accepted it.");
    } else {
        let _ = writeln!(out, "Not accepted yet by: {}.", behind.join(", "));
    }
    out
}

/// "first check-in", "7 check-ins".
pub fn milestone_phrase(check_ins: u32) -> String {
    if check_ins == 1 {
        "first check-in".to_owned()
    } else {
        format!("{check_ins} check-ins")
    }
}

/// Member names by id.
pub type Names = HashMap<String, String>;

/// A milestone, new guidelines or a retention pass, as one line (`circle`: how the reader
/// named the circle).
pub fn event(e: &EventView, circle: &str, titles: &Titles, names: &Names) -> String {
    match e {
        EventView::Milestone {
            author,
            goal,
            check_ins,
            reached_on,
            ..
        } => {
            let who = names
                .get(author)
                .cloned()
                .unwrap_or_else(|| short(author).to_owned());
            let title = titles
                .get(goal)
                .cloned()
                .unwrap_or_else(|| short(goal).to_owned());
            format!(
                "🎉 {who} reached a milestone on \"{title}\": {} ({reached_on})",
                milestone_phrase(*check_ins)
            )
        }
        EventView::GuidelinesToAccept { version, text, .. } => {
            let mut s = format!("The guidelines changed to version {version}:");
            for line in text.lines() {
                let _ = write!(s, "\n    {line}");
            }
            let _ = write!(
                s,
                "\n  run `hearth guidelines accept \"{circle}\"` to accept them"
            );
            s
        }
        EventView::RetentionEnforced { entries, keys, .. } => format!(
            "(disappearing messages: {} and {} deleted from this device)",
            count(*entries, "expired entry"),
            count(*keys, "old key")
        ),
        other => format!("({})", other.name()),
    }
}

fn mood_line(mood: u8, note: Option<&str>) -> String {
    match note {
        Some(n) => format!("mood {mood}/5: {}", n.replace('\n', "\n      ")),
        None => format!("mood {mood}/5"),
    }
}

/// One round: the question, the answers with their notes, who has not answered.
pub fn round(r: &RoundView) -> String {
    let you = |m: &crate::api::MemberRef| {
        if m.me {
            format!("{} (you)", m.name)
        } else {
            m.name.clone()
        }
    };
    let mut out = format!(
        "{}  {}  {} asked: {}\n",
        short(&r.id),
        days::format_ms(r.opened_at_ms),
        you(&r.opened_by),
        r.question
    );
    if r.answers.is_empty() {
        let _ = writeln!(out, "  no answers yet");
    } else {
        let _ = writeln!(out, "  answered ({}):", r.answers.len());
        for a in &r.answers {
            let _ = writeln!(
                out,
                "    {}: {}",
                you(&a.member),
                mood_line(a.mood, a.note.as_deref())
            );
        }
    }
    if r.not_answered.is_empty() {
        let _ = writeln!(out, "  everyone answered");
    } else {
        let names: Vec<String> = r.not_answered.iter().map(you).collect();
        let _ = writeln!(
            out,
            "  not answered yet ({}): {}",
            names.len(),
            names.join(", ")
        );
    }
    out
}

/// Every round of a circle, oldest first.
pub fn rounds(list: &[RoundView]) -> String {
    if list.is_empty() {
        return "No rounds yet: a facilitator opens one with `hearth round open <CIRCLE> <QUESTION>`.\n".to_owned();
    }
    list.iter().map(round).collect::<Vec<_>>().join("\n")
}

/// A circle's details.
pub fn circle(c: &CircleDetail) -> String {
    let s = &c.summary;
    let mut out = String::new();
    let _ = writeln!(out, "{}  ({})", s.name, s.id);
    let _ = writeln!(
        out,
        "You are {} here, as member {}.",
        s.role
            .as_deref()
            .map_or("no longer a member".to_owned(), |r| format!("a {r}")),
        short(&s.me)
    );
    let _ = writeln!(
        out,
        "Newcomers {} read what was said before they joined.",
        if c.share_history { "can" } else { "cannot" }
    );
    let _ = writeln!(out, "\nGuidelines (version {}):", c.guidelines.version);
    for line in c.guidelines.text.lines() {
        let _ = writeln!(out, "  {line}");
    }
    if c.guidelines.text.trim().is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    if let Some(secs) = c.retention_secs {
        let _ = writeln!(
            out,
            "Disappearing messages: entries older than {} are deleted.",
            duration(secs)
        );
    }
    let _ = writeln!(out, "\nMembers ({}):", c.members.len());
    out.push_str(&members(&c.members, Some(c.guidelines.version)));
    out
}

fn cadence(c: CadenceView) -> String {
    match c {
        CadenceView::Daily => "daily".to_owned(),
        CadenceView::TimesPerWeek(n) => format!("{n}× a week"),
        CadenceView::Weekly => "weekly".to_owned(),
    }
}

fn unit(c: CadenceView) -> &'static str {
    match c {
        CadenceView::Daily => "day",
        _ => "week",
    }
}

/// `1 day`, `2 days`, `3 entries`.
pub fn count(n: impl Into<u64>, what: &str) -> String {
    let n = n.into();
    match what.strip_suffix("entry") {
        _ if n == 1 => format!("1 {what}"),
        Some(stem) => format!("{n} {stem}entries"),
        None => format!("{n} {what}s"),
    }
}

fn value(milli: i64) -> String {
    let whole = milli / 1000;
    let frac = (milli % 1000).abs();
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{}", format!("{frac:03}").trim_end_matches('0'))
    }
}

fn membership_phrase(op: &str, subject: Option<&str>) -> String {
    let who = subject.unwrap_or("someone");
    match op {
        "create" => "created the circle".to_owned(),
        "add" => format!("added {who}"),
        "remove" => format!("removed {who}"),
        "leave" => "left the circle".to_owned(),
        "promote" => format!("made {who} a facilitator"),
        "guidelines" => "changed the guidelines".to_owned(),
        "rotate" => "started a new key epoch".to_owned(),
        "update-key" => "renewed their key".to_owned(),
        "settings" => "changed the circle's settings".to_owned(),
        "hide" => "hid an entry".to_owned(),
        other => format!("changed the circle ({other})"),
    }
}

/// The delivery state of one of my entries, in words: what members' devices reported.
pub fn delivery(d: &DeliveryView) -> String {
    if d.of == 0 {
        "no other member in this circle".to_owned()
    } else if d.held_by == 0 {
        "saved on this device; no member’s device has confirmed it yet".to_owned()
    } else {
        format!("reached {} of {} members", d.held_by, d.of)
    }
}

/// Goal titles by id, for showing check-ins.
pub type Titles = HashMap<String, String>;

/// One timeline item, as lines of text.
pub fn item(i: &TimelineItem, titles: &Titles, show_cw: bool) -> String {
    let head = format!(
        "{}  {}  {}",
        short(&i.id),
        days::format_ms(i.timestamp_ms),
        i.author_name
    );
    let milestone = i
        .milestone
        .as_ref()
        .map(|m| format!("  🎉 {}", milestone_phrase(m.check_ins)))
        .unwrap_or_default();
    let title = |goal: &str| {
        titles
            .get(goal)
            .cloned()
            .unwrap_or_else(|| short(goal).to_owned())
    };
    let mut out = match &i.content {
        ContentView::Text {
            body,
            reply_to,
            content_warning,
        } => {
            let mut s = head.clone();
            if let Some(r) = reply_to {
                let _ = write!(s, "  ↪ {}", short(r));
            }
            match i.content_warning.as_ref().or(content_warning.as_ref()) {
                Some(cw) if !show_cw => {
                    let _ = write!(
                        s,
                        ": [content warning: {cw}] (hidden; `read --show-cw` shows it)"
                    );
                }
                Some(cw) => {
                    let _ = write!(
                        s,
                        ": [content warning: {cw}]\n    {}",
                        body.replace('\n', "\n    ")
                    );
                }
                None => {
                    let _ = write!(s, ": {}", body.replace('\n', "\n    "));
                }
            }
            if i.edited {
                s.push_str(" (edited)");
            }
            s
        }
        ContentView::Goal {
            title,
            why,
            cadence: c,
            grace_days,
            rest_days,
            ..
        } => {
            let mut s = format!("{head} set a goal: \"{title}\" ({}", cadence(*c));
            if *grace_days > 0 && *c == CadenceView::Daily {
                let _ = write!(
                    s,
                    ", {grace_days} grace day{}",
                    if *grace_days == 1 { "" } else { "s" }
                );
            }
            if !rest_days.is_empty() {
                let _ = write!(s, ", resting {}", rest_days.join(" "));
            }
            s.push(')');
            if let Some(w) = why {
                let _ = write!(s, "\n    why: {}", w.replace('\n', "\n    "));
            }
            s
        }
        ContentView::CheckIn {
            goal,
            day,
            outcome,
            note,
            mood,
        } => {
            let what = match outcome {
                OutcomeView::Done => "done".to_owned(),
                OutcomeView::Value(v) => format!("done ({})", value(*v)),
                OutcomeView::Skipped => "not today".to_owned(),
            };
            let mut s = format!("{head} checked in to \"{}\": {what}", title(goal));
            if let Some(d) = day {
                let _ = write!(s, " for {d}");
            }
            if let Some(m) = mood {
                let _ = write!(s, ", mood {m}/5");
            }
            s.push_str(&milestone);
            if let Some(n) = note {
                let _ = write!(s, "\n    {}", n.replace('\n', "\n    "));
            }
            s
        }
        ContentView::GoalStatus {
            goal,
            status,
            since,
        } => {
            format!(
                "{head} marked \"{}\" {status} from {}",
                title(goal),
                since.as_deref().unwrap_or("today")
            )
        }
        ContentView::Membership {
            op,
            subject_name,
            subject,
            ..
        } => {
            let who = subject_name
                .clone()
                .or_else(|| subject.as_deref().map(|s| short(s).to_owned()));
            format!("{head} {}", membership_phrase(op, who.as_deref()))
        }
        ContentView::PrivateCheckIn { goal, day, done } => format!(
            "{head} checked in to \"{}\": {} for {day}{milestone}",
            title(goal),
            if *done { "done" } else { "not today" }
        ),
        ContentView::RoundOpen { question } => format!("{head} opened a round: {question}"),
        ContentView::RoundAnswer { mood, note, .. } => {
            let mut s = format!("{head} answered the round: mood {mood}/5");
            if let Some(n) = note {
                let _ = write!(s, "\n    {}", n.replace('\n', "\n    "));
            }
            s
        }
        ContentView::GuidelinesAccepted { version } => {
            format!("{head} accepted the guidelines v{version}")
        }
        ContentView::Deleted => format!("{head}: (deleted)"),
        ContentView::Unreadable { reason } => format!("{head}: (unreadable: {reason})"),
        other => format!("{head}: ({})", other.kind()),
    };
    if !i.reactions.is_empty() {
        let r: Vec<String> = i
            .reactions
            .iter()
            .map(|r| format!("{} {}", r.emoji, r.names.join(", ")))
            .collect();
        let _ = write!(out, "\n    {}", r.join(" · "));
    }
    for e in &i.encouragements {
        match &e.note {
            Some(n) => {
                let _ = write!(out, "\n    {} sees you: {n}", e.name);
            }
            None => {
                let _ = write!(out, "\n    {} sees you", e.name);
            }
        }
    }
    if let Some(d) = &i.delivery {
        let _ = write!(out, "\n    ({})", delivery(d));
    }
    out
}

/// A table of goals.
pub fn goals(list: &[GoalView]) -> String {
    if list.is_empty() {
        return "No goals yet: set one with `hearth goal add <CIRCLE> <TITLE>`.\n".to_owned();
    }
    let mut out = String::new();
    for g in list {
        let who = if g.mine {
            "you".to_owned()
        } else {
            g.author_name.clone()
        };
        let _ = writeln!(
            out,
            "{}  \"{}\" — {who}, {}, {}",
            short(&g.id),
            g.title,
            cadence(g.cadence),
            g.state
        );
        let mut line = format!(
            "          {} done in total, {} this period",
            g.total_check_ins, g.done_this_period
        );
        match (g.current_streak, g.best_streak) {
            (Some(c), Some(b)) => {
                let _ = write!(line, "; streak {} (best {b})", count(c, unit(g.cadence)));
            }
            _ => line.push_str("; streak private"),
        }
        if let Some(last) = &g.last_check_in {
            let _ = write!(line, "; last {last}");
        }
        out.push_str(&line);
        out.push('\n');
        if let Some(why) = &g.why {
            let _ = writeln!(out, "          why: {why}");
        }
    }
    out
}

/// A circle's week.
pub fn summary(s: &SummaryView) -> String {
    let mut out = format!(
        "Week of {} (as of {}): {} check-in{} in the circle.\n",
        s.week_start,
        s.as_of,
        s.check_ins,
        if s.check_ins == 1 { "" } else { "s" }
    );
    for m in &s.members {
        let _ = write!(
            out,
            "  {}: {} check-in{}, {} active goal{}",
            m.name,
            m.check_ins,
            if m.check_ins == 1 { "" } else { "s" },
            m.active_goals,
            if m.active_goals == 1 { "" } else { "s" }
        );
        let streaks: Vec<String> = m
            .streaks
            .iter()
            .map(|st| {
                format!(
                    "\"{}\" {}",
                    st.title,
                    count(st.current_streak, st.unit.trim_end_matches('s'))
                )
            })
            .collect();
        if !streaks.is_empty() {
            let _ = write!(out, "; streaks: {}", streaks.join(", "));
        }
        out.push('\n');
    }
    out
}

/// The status screen.
pub fn status(s: &StatusView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Device (peer id): {}", s.peer_id);
    if s.listen_addrs.is_empty() {
        let _ = writeln!(out, "Listening on: nothing yet");
    } else {
        let _ = writeln!(out, "Listening on:");
        for a in &s.listen_addrs {
            let _ = writeln!(out, "  {a}");
        }
    }
    let reach = match s.reachability.as_str() {
        "public" => "public (other homes can connect to this device)",
        "mapped" => {
            "behind a NAT with a mapped port (the router forwards it: other homes can connect directly)"
        }
        "relayed" => "behind a NAT, reachable through a relay",
        "unreachable" => "not reachable from other homes",
        _ => "not known yet",
    };
    let _ = writeln!(out, "Reachability: {reach}");
    if !s.reachability_reason.is_empty() {
        let _ = writeln!(out, "  {}", s.reachability_reason);
    }
    let storage = match s.storage.as_str() {
        "healthy" | "" => "saving normally".to_owned(),
        "disk_full" => "THE DISK IS FULL: nothing new is saved until there is room again; Hearth retries by itself and fetches what it missed from other members".to_owned(),
        other => format!("{other}: saving is failing; Hearth retries by itself"),
    };
    let _ = writeln!(out, "Storage: {storage}");
    for a in &s.external_addrs {
        let _ = writeln!(out, "  confirmed external address {a}");
    }
    let _ = writeln!(out, "Connected peers: {}", s.connected_peers.len());
    for p in &s.connected_peers {
        let how = s
            .connections
            .iter()
            .filter(|c| c.peer_id == p.peer_id)
            .map(|c| {
                if c.relayed {
                    "through a relay"
                } else {
                    "direct"
                }
            })
            .min()
            .unwrap_or("");
        let _ = writeln!(out, "  {} {how}", p.peer_id);
    }
    if !s.blocked_peers.is_empty() {
        let _ = writeln!(out, "Blocked peers: {}", s.blocked_peers.len());
    }
    if s.rejected_messages > 0 || s.throttled_messages > 0 {
        let _ = writeln!(
            out,
            "Gossip refused since start: {} rejected, {} rate-limited",
            s.rejected_messages, s.throttled_messages
        );
    }
    for c in &s.circles {
        let _ = writeln!(
            out,
            "\n{} ({}){}",
            c.name,
            short(&c.circle),
            if c.member {
                ""
            } else {
                " — you are no longer a member"
            }
        );
        if c.pending > 0 {
            let _ = writeln!(out, "  {} entries waiting for earlier ones", c.pending);
        }
        if c.repair_due {
            let _ = writeln!(out, "  a key repair is due");
        }
        for m in &c.members {
            let who = if m.me {
                format!("{} (you)", m.name)
            } else {
                m.name.clone()
            };
            let _ = writeln!(
                out,
                "  {who}: {}, last entry {}",
                count(m.entries, "entry"),
                ago(m.last_seen_ms)
            );
        }
        if c.peers.is_empty() {
            let _ = writeln!(out, "  no member's device is connected now");
        }
        for p in &c.peers {
            let lag = match (p.behind_by, p.ahead_by) {
                (Some(0), Some(0)) => "in sync".to_owned(),
                (Some(b), Some(a)) => format!("lacks {b} of ours, has {a} we lack"),
                _ => "sync not compared yet".to_owned(),
            };
            let _ = writeln!(out, "  peer {}: {lag}", short_peer(&p.peer_id));
        }
    }
    out
}

fn short_peer(p: &str) -> String {
    let n = p.chars().count();
    if n > 12 {
        p.chars().skip(n - 8).collect::<String>()
    } else {
        p.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item_with(content: ContentView) -> TimelineItem {
        TimelineItem {
            id: "ab".repeat(32),
            circle: "cd".repeat(32),
            author: "ef".repeat(32),
            author_name: "Ana".into(),
            mine: false,
            lamport: 1,
            timestamp_ms: 0,
            content,
            edited: false,
            reactions: Vec::new(),
            encouragements: Vec::new(),
            milestone: None,
            content_warning: None,
            delivery: None,
        }
    }

    #[test]
    fn delivery_reads_as_what_members_devices_reported() {
        let mut i = item_with(ContentView::Text {
            body: "hi".into(),
            reply_to: None,
            content_warning: None,
        });
        i.delivery = Some(DeliveryView { held_by: 0, of: 2 });
        assert!(
            item(&i, &Titles::new(), false)
                .contains("saved on this device; no member’s device has confirmed it yet")
        );
        i.delivery = Some(DeliveryView { held_by: 3, of: 5 });
        assert!(item(&i, &Titles::new(), false).contains("reached 3 of 5 members"));
    }

    fn member(name: &str, me: bool, accepted: u32) -> MemberView {
        MemberView {
            id: format!("{:0>64}", name.len()),
            name: name.into(),
            role: "member".into(),
            me,
            accepted_guidelines: accepted,
            last_seen_ms: None,
            entries: 0,
        }
    }

    fn member_ref(name: &str, me: bool) -> crate::api::MemberRef {
        crate::api::MemberRef {
            id: "12".repeat(32),
            name: name.into(),
            me,
        }
    }

    #[test]
    fn milestones_and_guidelines_acceptances_read_as_sentences() {
        let goal = "12".repeat(32);
        let titles: Titles = [(goal.clone(), "Walk".to_owned())].into();
        let mut i = item_with(ContentView::CheckIn {
            goal: goal.clone(),
            day: Some("2026-11-21".into()),
            outcome: OutcomeView::Done,
            note: Some("felt good".into()),
            mood: None,
        });
        i.milestone = Some(crate::api::MilestoneView {
            check_ins: 7,
            reached_on: "2026-11-21".into(),
        });
        let s = item(&i, &titles, false);
        assert!(
            s.contains("\"Walk\": done for 2026-11-21  🎉 7 check-ins\n    felt good"),
            "{s}"
        );
        let mut sealed = item_with(ContentView::PrivateCheckIn {
            goal,
            day: "2026-11-21".into(),
            done: true,
        });
        sealed.milestone = Some(crate::api::MilestoneView {
            check_ins: 1,
            reached_on: "2026-11-21".into(),
        });
        assert!(item(&sealed, &titles, false).ends_with("done for 2026-11-21  🎉 first check-in"));

        let mut ben = item_with(ContentView::GuidelinesAccepted { version: 2 });
        ben.author_name = "Ben".into();
        let s = item(&ben, &titles, false);
        assert!(s.ends_with("Ben accepted the guidelines v2"), "{s}");
        assert!(!s.contains("guidelines_accepted"), "{s}");
    }

    #[test]
    fn the_item_level_content_warning_hides_the_body_too() {
        let mut i = item_with(ContentView::Text {
            body: "the hard part".into(),
            reply_to: None,
            content_warning: None,
        });
        i.content_warning = Some("grief".into());
        let hidden = item(&i, &Titles::new(), false);
        assert!(hidden.contains("content warning: grief") && !hidden.contains("the hard part"));
    }

    #[test]
    fn members_show_the_guidelines_version_each_accepted() {
        let list = [member("Ana", true, 2), member("Ben", false, 1)];
        let s = members(&list, Some(2));
        assert!(s.lines().next().unwrap().contains("GUIDELINES"), "{s}");
        let ana = s.lines().find(|l| l.contains("Ana (you)")).unwrap();
        let ben = s.lines().find(|l| l.contains("Ben")).unwrap();
        assert!(ana.contains("v2") && !ana.contains("not"), "{s}");
        assert!(ben.contains("v1 (not v2 yet)"), "{s}");
        assert!(!members(&list, None).contains("not v"));
    }

    #[test]
    fn a_round_lists_answers_with_notes_and_who_has_not_answered() {
        let r = RoundView {
            id: "ab".repeat(32),
            question: "How is everyone?".into(),
            opened_by: member_ref("Ana", true),
            opened_at_ms: 0,
            answers: vec![crate::api::RoundAnswerView {
                member: member_ref("Ben", false),
                entry: "cd".repeat(32),
                mood: 4,
                note: Some("a good week".into()),
            }],
            answered: vec![member_ref("Ben", false)],
            not_answered: vec![member_ref("Ana", true)],
        };
        let s = round(&r);
        assert!(s.contains("Ana (you) asked: How is everyone?"), "{s}");
        assert!(s.contains("Ben: mood 4/5: a good week"), "{s}");
        assert!(s.contains("not answered yet (1): Ana (you)"), "{s}");
        assert!(rounds(&[]).contains("No rounds yet"));
    }

    #[test]
    fn follow_events_read_as_sentences() {
        let titles: Titles = [("g".to_owned(), "Walk".to_owned())].into();
        let names: Names = [("a".to_owned(), "Ana".to_owned())].into();
        let milestone = EventView::Milestone {
            circle: "c".into(),
            author: "a".into(),
            goal: "g".into(),
            check_ins: 7,
            reached_on: "2026-11-21".into(),
        };
        assert_eq!(
            event(&milestone, "Walkers", &titles, &names),
            "🎉 Ana reached a milestone on \"Walk\": 7 check-ins (2026-11-21)"
        );
        let guidelines = EventView::GuidelinesToAccept {
            circle: "c".into(),
            version: 3,
            text: "Be kind.".into(),
        };
        let s = event(&guidelines, "Walkers", &titles, &names);
        assert!(s.starts_with("The guidelines changed to version 3:"), "{s}");
        assert!(
            s.contains("run `hearth guidelines accept \"Walkers\"`"),
            "{s}"
        );
        let retention = EventView::RetentionEnforced {
            circle: "c".into(),
            entries: 3,
            keys: 1,
        };
        assert!(
            event(&retention, "Walkers", &titles, &names)
                .contains("3 expired entries and 1 old key deleted")
        );
    }

    #[test]
    fn guidelines_say_whether_you_and_the_others_accepted_them() {
        let g = GuidelinesStatus {
            circle: "c".into(),
            name: "Walkers".into(),
            version: 2,
            text: "Be kind.\nListen.".into(),
            you_accepted: 1,
            members: vec![
                member("Ana", true, 1),
                member("Ben", false, 1),
                member("Cy", false, 2),
            ],
        };
        let s = guidelines(&g);
        assert!(
            s.starts_with("Guidelines of `Walkers` (version 2):\n  Be kind.\n  Listen.\n"),
            "{s}"
        );
        assert!(s.contains("You accepted version 1. The guidelines of `Walkers` changed to version 2: read and accept them with `hearth guidelines accept \"Walkers\"`."), "{s}");
        assert!(s.contains("Not accepted yet by: Ben."), "{s}");
        let done = GuidelinesStatus {
            you_accepted: 2,
            members: vec![member("Ana", true, 2)],
            ..g
        };
        let s = guidelines(&done);
        assert!(
            s.contains("You accepted this version.")
                && s.contains("Every other member accepted it."),
            "{s}"
        );
    }

    #[test]
    fn durations_use_the_largest_whole_unit() {
        assert_eq!(duration(7 * 86_400), "1 week");
        assert_eq!(duration(3 * 86_400), "3 days");
        assert_eq!(duration(36 * 3600), "36 hours");
        assert_eq!(duration(90 * 60), "90 minutes");
        assert_eq!(duration(61), "61 seconds");
    }

    #[test]
    fn content_warnings_hide_the_body_unless_asked() {
        let i = item_with(ContentView::Text {
            body: "the hard part".into(),
            reply_to: None,
            content_warning: Some("grief".into()),
        });
        let hidden = item(&i, &Titles::new(), false);
        assert!(hidden.contains("content warning: grief") && !hidden.contains("the hard part"));
        assert!(item(&i, &Titles::new(), true).contains("the hard part"));
    }

    #[test]
    fn check_ins_name_their_goal_and_value() {
        let goal = "12".repeat(32);
        let titles: Titles = [(goal.clone(), "Walk".to_owned())].into();
        let i = item_with(ContentView::CheckIn {
            goal,
            day: Some("2026-11-21".into()),
            outcome: OutcomeView::Value(2500),
            note: None,
            mood: Some(4),
        });
        let s = item(&i, &titles, false);
        assert!(
            s.contains("\"Walk\": done (2.5) for 2026-11-21, mood 4/5"),
            "{s}"
        );
    }

    #[test]
    fn a_ticket_makes_a_qr_code() {
        let q = qr("hearth1abcdefghijklmnopqrstuvwxyz234567").unwrap();
        assert!(q.lines().count() > 10);
    }

    #[test]
    fn values_print_without_trailing_zeros() {
        assert_eq!(value(2500), "2.5");
        assert_eq!(value(3000), "3");
        assert_eq!(value(1234), "1.234");
    }
}
