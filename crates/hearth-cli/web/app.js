// Hearth's web app: small hand-written ES modules, no framework and no build step, so the
// daemon embeds these files as they are and `cargo build` builds the whole app.
import { api as call, seg, ApiError, timelinePage } from './api.js';
import { h, field, fill, announce, when, today, id } from './dom.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');

const MOODS = { 1: 'Very low', 2: 'Low', 3: 'Okay', 4: 'Good', 5: 'Great' };
const EMOJI = ['❤️', '👍', '🙏', '🌱'];
// Items in one page of the conversation: the newest page first, then one more each time the
// reader presses "Show earlier messages".
const PAGE = 100;
// The most items the API returns in one page.
const MAX_LIMIT = 1000;
// How many older pages a refresh reads at most to join the newest items to those on screen
// (after more than a whole window arrived at once); past that it starts again from the newest.
const MAX_CATCH_UP_PAGES = 10;

const state = {
  circles: [],
  circle: null, // the open circle's id
  tab: 'talk',
  talk: null, // the conversation on screen: {circle, items (oldest first), older, asked, drawn}
  replyTo: null,
  revealed: new Set(),
  events: null,
  refreshTimer: null,
  nav: 0, // bumped by every navigation; a render started before it draws nothing
};

/** A new navigation: renders started earlier stop before touching the page. */
function navigate() {
  state.nav += 1;
  return state.nav;
}

/** Entries this page wrote: it redraws after each write itself, so their live events are not
 *  drawn again (a second redraw could swap a form out from under the person). */
const posted = new Set();

async function api(method, path, body) {
  const answer = await call(method, path, body);
  if (method === 'POST' && /\/entries(\?|$)/.test(path) && answer && answer.id) {
    posted.add(answer.id);
    if (posted.size > 500) posted.delete(posted.values().next().value);
  }
  return answer;
}

// ----- small pieces ---------------------------------------------------------------------------

function errorBox() {
  return h('p', { class: 'error', role: 'alert', hidden: true });
}

function showError(box, e) {
  box.hidden = false;
  box.textContent = e instanceof ApiError ? e.message : 'Something went wrong. Nothing was changed; please try again.';
}

/** The button that had the focus when `busy` disabled it (which takes the focus away). */
let busyFocus = null;

/** Runs `f` with the form's button busy, showing any error in `box`. A button that had the
 *  focus gets it back, or its twin in a redrawn item does (`patchList`). */
async function busy(button, box, f) {
  if (box) { box.hidden = true; box.textContent = ''; }
  const hadFocus = document.activeElement === button;
  if (hadFocus) busyFocus = button;
  button.disabled = true;
  try {
    await f();
  } catch (e) {
    if (e instanceof ApiError && e.code === 'locked') { await start(); return; }
    if (box) showError(box, e); else announce(e.message);
  } finally {
    button.disabled = false;
    if (busyFocus === button) busyFocus = null;
    const lost = !document.activeElement || document.activeElement === document.body;
    if (hadFocus && lost && button.isConnected) button.focus({ preventScroll: true });
  }
}

function page(title, ...children) {
  fill(main, h('h1', {}, title), ...children);
  document.title = `${title} · Hearth`;
}

function focusMain() {
  main.focus({ preventScroll: false });
}

function seenKey(circle) { return `hearth.seen.${circle}`; }

function notificationsOn() {
  return localStorage.getItem('hearth.notify') === 'on' && 'Notification' in window && Notification.permission === 'granted';
}

// ----- start: locked, first run, or the circles ----------------------------------------------

async function start() {
  navigate();
  closeEvents();
  let s;
  try {
    s = await api('GET', '/session');
  } catch (e) {
    nav.hidden = true;
    page('Hearth', h('p', { class: 'error', role: 'alert' }, e.message));
    return;
  }
  if (!s.profile) return firstRun();
  if (!s.unlocked) return unlockPage();
  nav.hidden = false;
  openEvents();
  return showCircles();
}

function firstRun() {
  nav.hidden = true;
  const pass = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const again = h('input', { type: 'password', autocomplete: 'new-password', required: true });
  const box = errorBox();
  const button = h('button', { type: 'submit' }, 'Create my profile');
  const form = h('form', { class: 'card narrow' },
    h('p', {}, 'Hearth keeps your circles on this computer, encrypted with a passphrase only you know. Nobody can recover it for you, so choose one you will remember: a few words is best.'),
    field('Choose a passphrase', pass, 'At least 8 characters.'),
    field('Type it again', again),
    box, button);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (pass.value !== again.value) {
      showError(box, new ApiError('invalid_input', 'The two passphrases are different. Nothing was created; please type them again.'));
      return;
    }
    busy(button, box, async () => {
      await api('POST', '/session/create', { passphrase: pass.value });
      pass.value = ''; again.value = '';
      announce('Your profile is ready.');
      await start();
    });
  });
  page('Welcome to Hearth', form);
  pass.focus();
}

function unlockPage(message) {
  nav.hidden = true;
  const pass = h('input', { type: 'password', autocomplete: 'current-password', required: true });
  const box = errorBox();
  const button = h('button', { type: 'submit' }, 'Unlock');
  const form = h('form', { class: 'card narrow' },
    message ? h('p', { class: 'note' }, message) : null,
    h('p', {}, 'Hearth is locked. Your passphrase opens your circles on this computer.'),
    field('Passphrase', pass),
    box, button);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(button, box, async () => {
      await api('POST', '/session/unlock', { passphrase: pass.value });
      pass.value = '';
      announce('Unlocked.');
      await start();
    });
  });
  page('Welcome back', form);
  pass.focus();
}

async function lockNow() {
  navigate();
  closeEvents();
  try { await api('POST', '/session/lock'); } catch { /* the page shows the state below */ }
  state.circle = null;
  unlockPage('Locked. Every key was cleared from memory.');
  announce('Hearth is locked.');
}

// ----- live updates ----------------------------------------------------------------------------

function openEvents() {
  if (state.events) return;
  const es = new EventSource('/v1/events');
  state.events = es;
  const refresh = () => {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(refreshView, 60);
  };
  es.addEventListener('timeline', (ev) => {
    const data = JSON.parse(ev.data);
    const item = data.item;
    if (!item.mine && item.content.type === 'text' && document.hidden && notificationsOn()) {
      const c = state.circles.find((x) => x.id === item.circle);
      // Never the message itself: only which circle has news.
      new Notification('Hearth', { body: `New message in ${c ? c.name : 'one of your circles'}`, tag: item.circle });
    }
    if (!posted.has(item.id)) refresh();
  });
  for (const t of ['membership', 'milestone', 'guidelines_to_accept', 'retention_enforced', 'lagged']) {
    es.addEventListener(t, refresh);
  }
}

function closeEvents() {
  if (state.events) state.events.close();
  state.events = null;
}

/** Re-reads what the current screen shows. A tab with a half-filled form is left alone, so
 *  live updates never wipe what someone is typing (the conversation keeps its composer),
 *  unless she is no longer in the circle: then nothing she types could be sent any more. */
async function refreshView() {
  try {
    const body = document.getElementById('tab-body');
    const typing = body && (state.tab !== 'talk' ? body.querySelector('form[data-dirty]') : body.querySelector('#timeline form.edit'));
    if (state.circle) await renderCircleBody(false, true, Boolean(typing));
    else if (main.dataset.view === 'circles' && !main.querySelector('form[data-dirty]')) await showCircles(false);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'locked') await start();
  }
}

// ----- circles ---------------------------------------------------------------------------------

async function showCircles(focus = true) {
  const nav0 = focus ? navigate() : state.nav;
  if (focus) state.circle = null;
  const circles = await api('GET', '/circles');
  if (state.nav !== nav0) return;
  state.circles = circles;
  const list = h('ul', { class: 'circles' }, state.circles.map((c) => {
    const seen = Number(localStorage.getItem(seenKey(c.id)) || 0);
    const unread = Math.max(0, c.entries - seen);
    return h('li', {},
      h('button', { type: 'button', class: 'circle-link', onclick: () => openCircle(c.id) },
        h('span', { class: 'name' }, c.name),
        h('span', { class: 'meta' }, c.member ? `${c.member_count} ${c.member_count === 1 ? 'member' : 'members'}` : 'You are no longer in this circle'),
        unread > 0 ? h('span', { class: 'badge' }, `${unread} new`) : null));
  }));
  const empty = h('p', {}, 'You are not in any circle yet. Start one below, or join one with an invite.');
  main.dataset.view = 'circles';
  page('Your circles', state.circles.length ? list : empty, createCircleForm());
  if (focus) focusMain();
}

function createCircleForm() {
  const name = h('input', { type: 'text', required: true, maxlength: 64 });
  const me = h('input', { type: 'text', required: true, maxlength: 64, autocomplete: 'nickname' });
  const rules = h('textarea', { rows: 3 }, 'Be kind. What is said here stays here.');
  const box = errorBox();
  const button = h('button', { type: 'submit' }, 'Start the circle');
  const form = h('form', { class: 'card', 'aria-labelledby': 'start-h' },
    h('h2', { id: 'start-h' }, 'Start a circle'),
    field('Circle name', name),
    field('Your name in this circle', me),
    field('Guidelines everyone agrees to', rules),
    box, button);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(button, box, async () => {
      const c = await api('POST', '/circles', { name: name.value, guidelines: rules.value, display_name: me.value });
      announce(`You started ${c.name}.`);
      await openCircle(c.id);
    });
  });
  return form;
}

// ----- one circle ------------------------------------------------------------------------------

// [tab, label, only for members]. Someone no longer in the circle keeps what she saw before,
// read only (the conversation, members, goals, rounds, guidelines); inviting and the circle's
// settings are gone, since nothing there can be done any more.
const TABS = [
  ['talk', 'Conversation'], ['members', 'Members'], ['goals', 'Goals'], ['rounds', 'Rounds'],
  ['guidelines', 'Guidelines'], ['invite', 'Invite', true], ['settings', 'Circle settings', true],
];

/** The tabs a circle shows: all of them to a member, the read-only ones to a former member. */
function tabsFor(detail) {
  return TABS.filter(([, , membersOnly]) => detail.member || !membersOnly);
}

async function openCircle(circleId, tab = 'talk') {
  navigate();
  state.circle = circleId;
  state.tab = tab;
  state.talk = null;
  state.replyTo = null;
  main.dataset.view = 'circle';
  await renderCircleBody(true);
}

/** Draws the open circle's current tab; `full` redraws the whole circle and focuses it.
 *  `onlyIfLeft` (a live update while she is typing) draws only if she is no longer in the
 *  circle. */
async function renderCircleBody(full, live = false, onlyIfLeft = false) {
  const nav0 = state.nav;
  const circleId = state.circle;
  let tab = state.tab;
  const detail = await api('GET', `/circles/${seg(circleId)}`);
  // Another circle, tab or screen was chosen meanwhile: that render draws the page.
  if (state.nav !== nav0 || state.circle !== circleId || state.tab !== tab) return;
  // Being removed (or leaving) redraws the whole circle: the banner, no composer, no actions.
  const lostMembership = !detail.member && !main.querySelector('p.note[role=status]');
  if (onlyIfLeft && !lostMembership) return;
  localStorage.setItem(seenKey(circleId), String(detail.entries));
  const section = document.getElementById('tab-body');
  const shown = tabsFor(detail);
  // A tab that only a member has (Invite, Circle settings) closes: she goes to the conversation.
  const closed = shown.some(([t]) => t === tab) ? null : TABS.find(([t]) => t === tab);
  if (closed) {
    state.tab = 'talk';
    tab = 'talk';
  }
  if (full || !section || lostMembership || closed) {
    // The focus was on something this redraw takes away: it goes to the tab shown instead.
    const hadFocus = document.activeElement !== main && main.contains(document.activeElement);
    const tabs = h('nav', { class: 'tabs', 'aria-label': 'Circle' }, h('ul', {}, shown.map(([t, label]) =>
      h('li', {}, h('button', {
        type: 'button',
        'aria-current': state.tab === t ? 'page' : null,
        onclick: () => { navigate(); state.tab = t; renderCircleBody(true).then(() => document.getElementById('tab-body')?.focus()); },
      }, label)))));
    page(detail.name,
      detail.member ? null : h('p', { class: 'note', role: 'status' }, 'You are no longer in this circle. Nothing new will arrive here; what you saw before stays on this computer.'),
      tabs,
      h('section', { id: 'tab-body', tabindex: '-1', 'aria-label': TABS.find(([t]) => t === state.tab)[1] }));
    if (full) focusMain();
    else if (hadFocus) document.getElementById('tab-body').focus({ preventScroll: true });
    if (!full && closed) announce(`You are no longer in this circle, so “${closed[1]}” is closed. You are back in the conversation.`);
    else if (!full && lostMembership) announce('You are no longer in this circle.');
    full = true;
  }
  const body = document.getElementById('tab-body');
  if (state.tab === 'talk') {
    await renderTalk(body, detail, full);
    return;
  }
  // Other tabs are drawn aside and swapped in only if nobody started typing meanwhile.
  const render = { members: renderMembers, goals: renderGoals, rounds: renderRounds, guidelines: renderGuidelines, invite: renderInvite, settings: renderCircleSettings }[state.tab];
  const aside = h('div');
  await render(aside, detail, full);
  if (state.nav !== nav0 || state.circle !== circleId || state.tab !== tab || !body.isConnected) return;
  if (!full && body.querySelector('form[data-dirty]')) return;
  body.replaceChildren(...aside.childNodes);
}

// ----- conversation ----------------------------------------------------------------------------

/** "1 check-in", "2 check-ins": a count with its noun. */
function plural(n, noun) {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function describe(item, byId) {
  const c = item.content;
  const who = item.mine ? 'You' : item.author_name;
  switch (c.type) {
    case 'membership': {
      const aboutMe = c.subject && c.subject === byId.me;
      const subject = aboutMe ? 'You' : c.subject_name || 'someone';
      const words = {
        create: `${who} started the circle`,
        add: aboutMe ? 'You joined the circle' : `${subject} joined the circle`,
        remove: aboutMe ? 'You are no longer in the circle' : `${subject} is no longer in the circle`,
        leave: `${who} left the circle`,
        promote: aboutMe ? 'You are now a facilitator' : `${subject} is now a facilitator`,
        guidelines: `${who} changed the guidelines`,
        hide: `${who} hid an entry`,
      }[c.op];
      return words ?? null;
    }
    case 'goal': return `${who} set a goal: ${c.title}`;
    case 'check_in': {
      const g = byId.goals.get(c.goal);
      const what = c.outcome.kind === 'done' ? 'did it' : c.outcome.kind === 'skipped' ? 'took a pause' : `logged ${c.outcome.value / 1000}`;
      return `${who} checked in${g ? ` on “${g.title}”` : ''}: ${what}${c.mood ? `, feeling ${MOODS[c.mood].toLowerCase()}` : ''}${c.note ? ` — ${c.note}` : ''}`;
    }
    case 'private_check_in': {
      const g = byId.goals.get(c.goal);
      return `${who} checked in${g ? ` on “${g.title}”` : ''}: did it`;
    }
    case 'goal_status': return `${who} marked a goal as ${c.status}`;
    case 'round_open': return `${who} opened a round: ${c.question}`;
    case 'round_answer': return `${who} answered a round, feeling ${MOODS[c.mood]?.toLowerCase() ?? 'something'}${c.note ? ` — ${c.note}` : ''}`;
    case 'guidelines_accepted': return `${who} accepted the guidelines (version ${c.version})`;
    case 'profile': return `${who} is now called ${c.display_name}`;
    case 'deleted': return 'This entry was deleted.';
    case 'unreadable': return 'This entry could not be read on this computer.';
    default: return null;
  }
}

/** Joins a fresh read of the newest items (`fresh`, oldest first; `older` its cursor) to the
 *  items on screen: those older than the fresh read stay (the pages the reader loaded), the
 *  rest is replaced by the fresh read, which carries their latest edits and reactions. Returns
 *  null when the two do not meet (more arrived than the fresh read holds). */
function joinNewest(shown, fresh, older) {
  if (!shown.items.length || !older) return { items: fresh, older };
  const ids = new Set(fresh.map((i) => i.id));
  const meet = shown.items.findIndex((i) => ids.has(i.id));
  if (meet < 0) return null;
  if (meet === 0) return { items: fresh, older };
  return { items: [...shown.items.slice(0, meet).filter((i) => !ids.has(i.id)), ...fresh], older: shown.older };
}

/** Reads the newest items, as many as are on screen (one page at least, at most what the API
 *  gives at once), and joins them to what is on screen. */
async function readNewest(circleId, shown) {
  const limit = Math.min(MAX_LIMIT, Math.max(PAGE, shown.items.length));
  let { items, older } = await timelinePage(circleId, limit);
  let joined = joinNewest(shown, items, older);
  // More arrived than one read holds: walk back until the pages meet what is on screen.
  for (let n = 0; !joined && n < MAX_CATCH_UP_PAGES; n += 1) {
    const page = await timelinePage(circleId, PAGE, older);
    items = [...page.items, ...items];
    older = page.older;
    joined = joinNewest(shown, items, older);
  }
  return joined ?? { items, older };
}

/** The item at the top of the log, and how far below the log's top edge it starts: the one the
 *  reader is looking at, kept in place when items are added above it. */
function topItem(log) {
  const top = log.getBoundingClientRect().top;
  for (const li of log.querySelectorAll('ol.timeline > li')) {
    const r = li.getBoundingClientRect();
    if (r.bottom > top) return { id: li.id, offset: r.top - top };
  }
  return null;
}

async function renderTalk(body, detail, full) {
  const circleId = detail.id;
  if (!state.talk || state.talk.circle !== circleId) {
    state.talk = { circle: circleId, items: [], older: null, asked: 0, drawn: 0 };
  }
  const talk = state.talk;
  talk.asked += 1;
  const asked = talk.asked;
  const [joined, goals] = await Promise.all([
    readNewest(circleId, talk),
    api('GET', `/circles/${seg(circleId)}/goals?today=${today()}`).catch(() => []),
  ]);
  // A newer render (another circle or tab) draws the log instead.
  if (state.circle !== circleId || state.tab !== 'talk' || !body.isConnected || state.talk !== talk) return;
  // A read that started earlier and answered later would bring back an older view.
  if (asked < talk.drawn) return;
  talk.drawn = asked;
  // Pages loaded meanwhile stay: join to what is on screen now.
  const now = joinNewest(talk, joined.items, joined.older) ?? joined;
  talk.items = now.items;
  talk.older = now.older;
  talk.goals = goals;
  talk.detail = detail;
  drawTalk(body, detail, full);
}

/** Loads the page before the oldest item on screen and adds it above, keeping the item the
 *  reader is looking at where it is. */
async function showEarlier(button) {
  const talk = state.talk;
  if (!talk || !talk.older || button.getAttribute('aria-disabled') === 'true') return;
  button.setAttribute('aria-disabled', 'true');
  button.textContent = 'Loading earlier messages…';
  try {
    const page = await timelinePage(talk.circle, PAGE, talk.older);
    if (state.talk !== talk || state.tab !== 'talk') return;
    const ids = new Set(talk.items.map((i) => i.id));
    const log = document.getElementById('timeline');
    const before = log ? log.querySelectorAll('ol.timeline > li').length : 0;
    talk.items = [...page.items.filter((i) => !ids.has(i.id)), ...talk.items];
    talk.older = page.older;
    drawTalk(document.getElementById('tab-body'), talk.detail, false, true);
    const after = log ? log.querySelectorAll('ol.timeline > li').length : 0;
    const n = Math.max(0, after - before);
    announce(n === 0 ? 'There was nothing more to show.' : `Loaded ${plural(n, 'earlier message')}.`);
    // The button is gone when nothing older is left: the focus it had goes to the log.
    const lost = !document.activeElement || document.activeElement === document.body;
    if (!talk.older && log && lost) log.focus({ preventScroll: true });
  } catch (e) {
    if (e instanceof ApiError && e.code === 'locked') { await start(); return; }
    announce(e instanceof ApiError ? e.message : 'The earlier messages could not be loaded. Please try again.');
  } finally {
    button.removeAttribute('aria-disabled');
    button.textContent = 'Show earlier messages';
  }
}

/** Draws the conversation on screen from `state.talk`. A reader at the bottom stays at the
 *  bottom; anyone else keeps the item she was looking at in place. The list is patched, not
 *  rebuilt (`patchList`), so a live update leaves alone what did not change. */
function drawTalk(body, detail, full, keepTop = false) {
  const talk = state.talk;
  const items = talk.items;
  const byId = { items: new Map(items.map((i) => [i.id, i])), goals: new Map((talk.goals || []).map((g) => [g.id, g])), me: detail.me };
  let log = document.getElementById('timeline');
  const wasAtBottom = !log || full || log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const anchor = log && !full && (keepTop || !wasAtBottom) ? topItem(log) : null;
  const fresh = [];
  for (const item of items) {
    const li = renderItem(item, byId, detail);
    if (!li) continue;
    // Taken before the time labels are filled in: "just now" turning into "2 min ago" is no
    // reason to replace an item (its label is updated where it is, below).
    drawnAs.set(li, li.outerHTML);
    fresh.push(li);
  }
  if (!log || full) {
    log = h('div', { id: 'timeline', class: 'log', role: 'log', 'aria-label': 'Messages, newest at the bottom', tabindex: '0' });
    fill(body, h('h2', { class: 'visually-hidden' }, 'Conversation'), log, detail.member ? composer(detail) : null);
  }
  // The button stays the same element across redraws, so it keeps the focus.
  let earlier = document.getElementById('show-earlier');
  if (talk.older && !earlier) {
    earlier = h('button', { type: 'button', id: 'show-earlier', class: 'quiet' }, 'Show earlier messages');
    earlier.addEventListener('click', () => showEarlier(earlier));
  }
  let list = log.querySelector('ol.timeline');
  if (!list) {
    list = h('ol', { class: 'timeline' });
    log.append(list);
  }
  if (talk.older) {
    if (earlier.parentNode !== log) log.prepend(earlier);
  } else if (earlier) {
    earlier.remove();
  }
  patchList(list, fresh, log);
  for (const t of list.querySelectorAll('time[datetime]')) {
    const label = when(Date.parse(t.dateTime));
    if (t.textContent !== label) t.textContent = label;
  }
  if (anchor) {
    const li = document.getElementById(anchor.id);
    // At once, not smoothly: the reader should not see the log move.
    if (li) log.scrollTo({ top: log.scrollTop + li.getBoundingClientRect().top - log.getBoundingClientRect().top - anchor.offset, behavior: 'instant' });
  } else if (wasAtBottom) {
    log.scrollTop = log.scrollHeight;
  }
}

/** The markup each item's element was drawn with (time labels left out). Two draws of an item
 *  with the same markup show the same thing, so the element on screen can stay. */
const drawnAs = new WeakMap();

/** Makes `list` hold the elements `fresh` stands for, in its order, matched by id: an element
 *  on screen drawn as its fresh one stays the very same node (a screen reader does not read it
 *  again in the log, and focus inside it stays); a changed one is replaced where it is; new
 *  ones are inserted in order; the rest go. Focus inside a replaced element moves to the same
 *  control in its new element, or to the new element itself; focus in one that went moves to
 *  `fallback`. */
function patchList(list, fresh, fallback) {
  const active = document.activeElement && document.activeElement !== document.body ? document.activeElement : busyFocus;
  const focused = active && list.contains(active) ? active : null;
  const focusedItem = focused && focused.closest('ol.timeline > li');
  const shown = new Map([...list.children].map((el) => [el.id, el]));
  const wanted = fresh.map((el) => {
    const old = shown.get(el.id);
    return old && drawnAs.get(old) === drawnAs.get(el) ? old : el;
  });
  const keep = new Set(wanted);
  for (const el of [...list.children]) if (!keep.has(el)) el.remove();
  // What stayed is in order already (items come and go, they do not swap places), so this
  // inserts; an element that is out of place all the same is moved.
  let next = list.firstElementChild;
  for (const el of wanted) {
    if (el === next) next = next.nextElementSibling;
    else list.insertBefore(el, next);
  }
  // Moving an element takes the focus out of it too.
  if (!focused || document.activeElement === focused) return;
  let target = focused.isConnected ? focused : null;
  const item = !target && focusedItem && document.getElementById(focusedItem.id);
  if (item && list.contains(item)) {
    target = sameControl(item, focused);
    if (!target) {
      item.tabIndex = -1;
      target = item;
    }
  }
  (target || fallback).focus({ preventScroll: true });
}

/** The control in `el` that does what `control` did in the element `el` replaces: the same
 *  kind, name and words. */
function sameControl(el, control) {
  for (const c of el.querySelectorAll(control.localName)) {
    if (c.getAttribute('aria-label') === control.getAttribute('aria-label') && c.textContent === control.textContent) return c;
  }
  return null;
}

function renderItem(item, byId, detail) {
  const c = item.content;
  if (['reaction', 'encouragement', 'edit', 'delete'].includes(c.type)) return null;
  if (c.type === 'membership' && c.op === 'rotate') return null;
  // Its words ("5 min ago") are filled in by drawTalk, which keeps them current.
  const time = h('time', { datetime: new Date(item.timestamp_ms).toISOString(), title: new Date(item.timestamp_ms).toLocaleString() });
  if (c.type !== 'text') {
    const text = describe(item, byId);
    if (!text) return null;
    const li = h('li', { class: 'event', id: `e-${item.id}` }, h('p', {}, text, ' · ', time));
    if (item.milestone) li.append(h('p', { class: 'milestone' }, `🌟 Milestone: ${item.milestone.check_ins} ${item.milestone.check_ins === 1 ? 'day' : 'days'} done`));
    if (detail.member && !item.mine && (c.type === 'check_in' || c.type === 'private_check_in')) li.append(actions(item, detail, false));
    appendReactions(li, item);
    return li;
  }
  const parts = [];
  if (c.reply_to) {
    const target = byId.items.get(c.reply_to);
    const snippet = target && target.content.type === 'text' ? (target.content_warning ? `(${target.content_warning})` : target.content.body.slice(0, 80)) : 'an earlier message';
    parts.push(h('p', { class: 'reply-to' }, `Replying to ${target ? (target.mine ? 'you' : target.author_name) : 'someone'}: ${snippet}`));
  }
  const warning = item.content_warning || c.content_warning;
  if (warning && !state.revealed.has(item.id)) {
    // From the item's id, not a counter, so the same item draws the same markup each time.
    const bodyId = `cw-${item.id}`;
    parts.push(h('p', { class: 'cw' }, h('span', { class: 'cw-label' }, `Content warning: ${warning}`), ' ',
      h('button', {
        type: 'button', class: 'small', 'aria-controls': bodyId, 'aria-expanded': 'false',
        onclick: (ev) => {
          state.revealed.add(item.id);
          const p = ev.target.closest('li').querySelector('.body');
          p.hidden = false;
          ev.target.setAttribute('aria-expanded', 'true');
          ev.target.remove();
        },
      }, 'Show message')));
    parts.push(h('p', { class: 'body', id: bodyId, hidden: true }, c.body));
  } else {
    if (warning) parts.push(h('p', { class: 'cw' }, h('span', { class: 'cw-label' }, `Content warning: ${warning}`)));
    parts.push(h('p', { class: 'body' }, c.body));
  }
  const li = h('li', { class: item.mine ? 'msg mine' : 'msg', id: `e-${item.id}` },
    h('p', { class: 'who' }, h('strong', {}, item.mine ? 'You' : item.author_name), ' · ', time, item.edited ? ' · edited' : ''),
    parts);
  appendReactions(li, item);
  if (item.mine && item.delivery) li.append(h('p', { class: 'meta delivery' }, deliveryText(item.delivery)));
  if (detail.member) li.append(actions(item, detail, true));
  return li;
}

// What members' devices reported holding (best effort; not a read receipt).
function deliveryText(d) {
  if (d.of === 0) return 'No other member in this circle';
  if (d.held_by === 0) return 'Saved on this device; no member’s device has confirmed it yet';
  return `Reached ${d.held_by} of ${d.of} members`;
}

function appendReactions(li, item) {
  const bits = [];
  for (const r of item.reactions || []) bits.push(h('span', { class: 'reaction', title: r.names.join(', ') }, `${r.emoji} ${r.names.length}`, h('span', { class: 'visually-hidden' }, ` from ${r.names.join(', ')}`)));
  if ((item.encouragements || []).length) bits.push(h('span', { class: 'reaction' }, `“I see you” from ${item.encouragements.map((e) => e.name).join(', ')}`));
  if (bits.length) li.append(h('p', { class: 'reactions' }, bits));
}

function actions(item, detail, isText) {
  const circleId = detail.id;
  const post = async (content) => {
    await api('POST', `/circles/${seg(circleId)}/entries?today=${today()}`, content);
    await renderCircleBody(false);
  };
  const label = isText ? `message from ${item.mine ? 'you' : item.author_name}` : `check-in of ${item.author_name}`;
  const bar = h('div', { class: 'actions', role: 'group', 'aria-label': `Actions for this ${label}` });
  if (isText) {
    bar.append(h('button', { type: 'button', class: 'small', onclick: () => {
      state.replyTo = item;
      const t = document.getElementById('compose-text');
      updateReplyNote();
      t?.focus();
    } }, 'Reply'));
    for (const e of EMOJI) {
      bar.append(h('button', { type: 'button', class: 'small emoji', 'aria-label': `React with ${e}`, onclick: (ev) => busy(ev.currentTarget, null, () => post({ type: 'reaction', target: item.id, emoji: e })) }, e));
    }
  }
  if (!item.mine) {
    bar.append(h('button', { type: 'button', class: 'small', onclick: (ev) => busy(ev.currentTarget, null, async () => { await post({ type: 'encouragement', target: item.id }); announce('You sent “I see you”.'); }) }, 'I see you'));
  }
  if (item.mine && isText) {
    bar.append(h('button', { type: 'button', class: 'small', onclick: () => editInPlace(item, detail) }, 'Edit'));
    bar.append(h('button', { type: 'button', class: 'small', onclick: (ev) => {
      if (!window.confirm('Delete this message for everyone? Devices that already have it are asked to remove it; this is best effort.')) return;
      busy(ev.currentTarget, null, () => post({ type: 'delete', target: item.id }));
    } }, 'Delete'));
  }
  return bar;
}

function editInPlace(item, detail) {
  const li = document.getElementById(`e-${item.id}`);
  const text = h('textarea', { rows: 2 }, item.content.body);
  const box = errorBox();
  const save = h('button', { type: 'submit', class: 'small' }, 'Save');
  const form = h('form', { class: 'edit' }, field('Edit your message', text), box, save,
    h('button', { type: 'button', class: 'small quiet', onclick: () => renderCircleBody(false) }, 'Cancel'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(save, box, async () => {
      await api('POST', `/circles/${seg(detail.id)}/entries`, { type: 'edit', target: item.id, body: text.value });
      await renderCircleBody(false);
    });
  });
  li.querySelector('.body')?.replaceWith(form);
  // The next draw replaces the element, form and all, even if the item did not change (Cancel).
  drawnAs.delete(li);
  text.focus();
}

function updateReplyNote() {
  const note = document.getElementById('reply-note');
  if (!note) return;
  if (!state.replyTo) { note.hidden = true; fill(note); return; }
  note.hidden = false;
  fill(note, `Replying to ${state.replyTo.mine ? 'yourself' : state.replyTo.author_name}: ${state.replyTo.content.body.slice(0, 60)} `,
    h('button', { type: 'button', class: 'small quiet', onclick: () => { state.replyTo = null; updateReplyNote(); document.getElementById('compose-text')?.focus(); } }, 'Cancel reply'));
}

function composer(detail) {
  const text = h('textarea', { id: 'compose-text', rows: 3, required: true });
  const cw = h('input', { type: 'text', maxlength: 120 });
  const box = errorBox();
  const button = h('button', { type: 'submit' }, 'Send');
  const note = h('p', { id: 'reply-note', class: 'reply-to', hidden: true });
  const form = h('form', { class: 'composer', 'aria-label': 'Write a message' },
    note,
    field('Your message', text),
    h('details', {}, h('summary', {}, 'Add a content warning'), field('Content warning (shown before the message)', cw)),
    box, button);
  text.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) form.requestSubmit();
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(button, box, async () => {
      const content = { type: 'text', body: text.value };
      if (state.replyTo) content.reply_to = state.replyTo.id;
      if (cw.value.trim()) content.content_warning = cw.value.trim();
      await api('POST', `/circles/${seg(detail.id)}/entries`, content);
      text.value = ''; cw.value = ''; state.replyTo = null;
      updateReplyNote();
      announce('Sent. It is saved here and reaches the others when their devices are online.');
      await renderCircleBody(false);
      const log = document.getElementById('timeline');
      if (log) log.scrollTop = log.scrollHeight;
      text.focus();
    });
  });
  setTimeout(updateReplyNote, 0);
  return form;
}

// ----- members ---------------------------------------------------------------------------------

async function renderMembers(body, detail) {
  const circleId = detail.id;
  const muted = await api('GET', `/circles/${seg(circleId)}/muted`).catch(() => []);
  const mutedIds = new Set(muted.map((m) => m.id));
  const facilitator = detail.role === 'facilitator';
  const box = errorBox();
  const rows = detail.members.map((m) => {
    const acts = [];
    if (!m.me && detail.member) {
      if (facilitator && m.role !== 'facilitator') {
        acts.push(h('button', { type: 'button', class: 'small', onclick: (ev) => busy(ev.currentTarget, box, async () => {
          await api('POST', `/circles/${seg(circleId)}/members/${seg(m.id)}/promote`);
          announce(`${m.name} is now a facilitator.`);
          await renderCircleBody(true);
        }) }, `Make ${m.name} a facilitator`));
      }
      if (facilitator) {
        acts.push(h('button', { type: 'button', class: 'small', onclick: (ev) => {
          if (!window.confirm(`Remove ${m.name} from ${detail.name}? She will not read anything written after this.`)) return;
          busy(ev.currentTarget, box, async () => {
            await api('DELETE', `/circles/${seg(circleId)}/members/${seg(m.id)}`);
            announce(`${m.name} is no longer in the circle.`);
            await renderCircleBody(true);
          });
        } }, `Remove ${m.name}`));
      }
      const isMuted = mutedIds.has(m.id);
      acts.push(h('button', { type: 'button', class: 'small quiet', onclick: (ev) => busy(ev.currentTarget, box, async () => {
        await api(isMuted ? 'DELETE' : 'PUT', `/circles/${seg(circleId)}/muted/${seg(m.id)}`);
        announce(isMuted ? `${m.name} is no longer muted.` : `${m.name} is muted on this computer only.`);
        await renderCircleBody(true);
      }) }, isMuted ? `Unmute ${m.name}` : `Mute ${m.name}`));
    }
    return h('li', { class: 'member' },
      h('p', {}, h('strong', {}, m.me ? `${m.name} (you)` : m.name), ' · ', m.role === 'facilitator' ? 'Facilitator' : 'Member',
        m.last_seen_ms ? ` · last seen ${when(m.last_seen_ms)}` : '', mutedIds.has(m.id) ? ' · muted here' : ''),
      acts.length ? h('div', { class: 'actions' }, acts) : null);
  });
  fill(body, h('h2', {}, 'Members'),
    detail.member ? null : h('p', { class: 'hint' }, 'These are the members as this computer last knew them. The list no longer changes here.'),
    h('ul', { class: 'members' }, rows),
    detail.member ? h('p', { class: 'hint' }, 'Muting hides someone’s messages on this computer only; nobody is told.') : null, box);
}

// ----- goals -----------------------------------------------------------------------------------

function cadenceText(c) {
  if (c.kind === 'daily') return 'every day';
  if (c.kind === 'weekly') return 'once a week';
  return `${c.times ?? c.value} times a week`;
}

async function renderGoals(body, detail) {
  const circleId = detail.id;
  const [goals, summary] = await Promise.all([
    api('GET', `/circles/${seg(circleId)}/goals?today=${today()}`),
    api('GET', `/circles/${seg(circleId)}/summary?today=${today()}`).catch(() => null),
  ]);
  const list = h('ul', { class: 'goals' }, goals.map((g) => {
    const streak = g.current_streak === null ? 'shares only whether a day was done'
      : `streak ${g.current_streak} (best ${g.best_streak})`;
    const li = h('li', { class: 'goal card' },
      h('h3', {}, `${g.mine ? 'Your' : `${g.author_name}’s`} goal: ${g.title}`),
      g.why ? h('p', {}, `Why: ${g.why}`) : null,
      h('p', { class: 'meta' }, `${cadenceText(g.cadence)} · ${streak} · ${plural(g.total_check_ins, 'check-in')} · ${g.done_this_period} done this period`),
      g.milestones.length ? h('p', { class: 'milestone' }, `🌟 Milestones: ${g.milestones.map((m) => `${m.check_ins} ${m.check_ins === 1 ? 'day' : 'days'}`).join(', ')}`) : null);
    if (g.mine && detail.member && g.state === 'active') li.append(checkInForm(detail, g));
    return li;
  }));
  const weekly = summary ? h('section', { class: 'card', 'aria-labelledby': 'week-h' },
    h('h3', { id: 'week-h' }, `This week (from ${summary.week_start})`),
    h('ul', {}, summary.members.map((m) => h('li', {}, `${m.name}: ${plural(m.check_ins, 'check-in')}, ${plural(m.active_goals, 'active goal')}`)))) : null;
  fill(body, h('h2', {}, 'Goals'),
    h('p', { class: 'hint' }, 'A missed day is just a missed day. Grace and rest days keep a streak going.'),
    goals.length ? list : h('p', {}, 'No goals yet.'), weekly, detail.member ? addGoalForm(detail) : null);
}

function checkInForm(detail, goal) {
  const outcome = h('select', {}, h('option', { value: 'done' }, 'I did it'), h('option', { value: 'skipped' }, 'Not today'));
  const mood = h('select', {}, h('option', { value: '' }, 'Rather not say'), Object.entries(MOODS).map(([v, t]) => h('option', { value: v }, t)));
  const note = h('input', { type: 'text', maxlength: 500 });
  const box = errorBox();
  const button = h('button', { type: 'submit' }, 'Check in');
  const form = h('form', { class: 'inline', 'aria-label': `Check in on ${goal.title}` },
    field('How did it go today?', outcome), field('Mood', mood), field('Note (optional)', note), box, button);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(button, box, async () => {
      const content = { type: 'check_in', goal: goal.id, day: today(), outcome: { kind: outcome.value } };
      if (mood.value) content.mood = Number(mood.value);
      if (note.value.trim()) content.note = note.value.trim();
      await api('POST', `/circles/${seg(detail.id)}/entries?today=${today()}`, content);
      announce('Checked in. Well done for showing up.');
      await renderCircleBody(false);
    });
  });
  return form;
}

function addGoalForm(detail) {
  const title = h('input', { type: 'text', required: true, maxlength: 100 });
  const why = h('input', { type: 'text', maxlength: 300 });
  const cadence = h('select', {}, h('option', { value: 'daily' }, 'Every day'), h('option', { value: 'weekly' }, 'Once a week'),
    h('option', { value: '3' }, '3 times a week'), h('option', { value: '5' }, '5 times a week'));
  const grace = h('input', { type: 'number', min: 0, max: 7, value: '1' });
  const days = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
  const names = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
  const rest = days.map((d, i) => {
    const cb = h('input', { type: 'checkbox', value: d, id: id('rest') });
    return h('span', { class: 'check' }, cb, h('label', { for: cb.id }, names[i]));
  });
  const visibility = h('select', {}, h('option', { value: 'circle' }, 'The circle sees my check-ins'),
    h('option', { value: 'done_only' }, 'The circle sees only whether I did it'));
  const box = errorBox();
  const button = h('button', { type: 'submit' }, 'Add goal');
  const form = h('form', { class: 'card', 'aria-labelledby': 'goal-h' },
    h('h3', { id: 'goal-h' }, 'Add a goal'),
    field('What is your goal?', title), field('Why it matters to you (optional)', why),
    field('How often', cadence), field('Grace days (missed days that keep a streak)', grace),
    h('fieldset', {}, h('legend', {}, 'Rest days'), rest),
    field('Who sees what', visibility), box, button);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(button, box, async () => {
      const c = cadence.value === 'daily' || cadence.value === 'weekly' ? { kind: cadence.value } : { kind: 'times_per_week', times: Number(cadence.value) };
      const content = { type: 'goal', title: title.value, cadence: c, visibility: visibility.value, grace_days: Number(grace.value || 0),
        rest_days: rest.map((r) => r.querySelector('input')).filter((x) => x.checked).map((x) => x.value) };
      if (why.value.trim()) content.why = why.value.trim();
      await api('POST', `/circles/${seg(detail.id)}/entries?today=${today()}`, content);
      announce('Your goal is added.');
      await renderCircleBody(false);
    });
  });
  return form;
}

// ----- rounds ----------------------------------------------------------------------------------

async function renderRounds(body, detail) {
  const circleId = detail.id;
  const rounds = await api('GET', `/circles/${seg(circleId)}/rounds`);
  const items = rounds.slice().reverse().map((r) => {
    const mood = h('select', {}, Object.entries(MOODS).map(([v, t]) => h('option', { value: v }, t)));
    const note = h('input', { type: 'text', maxlength: 500 });
    const box = errorBox();
    const button = h('button', { type: 'submit' }, 'Answer');
    const form = h('form', { class: 'inline', 'aria-label': `Answer: ${r.question}` }, field('Mood', mood), field('Note (optional)', note), box, button);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      busy(button, box, async () => {
        await api('POST', `/circles/${seg(circleId)}/rounds/${seg(r.id)}/answers`, { mood: Number(mood.value), note: note.value.trim() || null });
        announce('Thank you for answering.');
        await renderCircleBody(false);
      });
    });
    return h('li', { class: 'card' }, h('h3', {}, r.question),
      h('p', { class: 'meta' }, `Opened by ${r.opened_by.name} · ${r.answered.length} answered · ${r.not_answered.length} not yet`),
      h('ul', {}, r.answers.map((a) => h('li', {}, `${a.member.name}: ${MOODS[a.mood]}${a.note ? ` — ${a.note}` : ''}`))),
      detail.member ? form : null);
  });
  let open = null;
  if (detail.role === 'facilitator' && detail.member) {
    const q = h('input', { type: 'text', required: true, maxlength: 200 });
    const box = errorBox();
    const button = h('button', { type: 'submit' }, 'Open the round');
    open = h('form', { class: 'card', 'aria-labelledby': 'round-h' }, h('h3', { id: 'round-h' }, 'Open a round'), field('Question', q), box, button);
    open.addEventListener('submit', (ev) => {
      ev.preventDefault();
      busy(button, box, async () => {
        await api('POST', `/circles/${seg(circleId)}/rounds`, { question: q.value });
        await renderCircleBody(false);
      });
    });
  }
  fill(body, h('h2', {}, 'Rounds'), items.length ? h('ul', { class: 'plain' }, items) : h('p', {}, 'No rounds yet.'), open);
}

// ----- guidelines ------------------------------------------------------------------------------

async function renderGuidelines(body, detail) {
  const circleId = detail.id;
  const g = await api('GET', `/circles/${seg(circleId)}/guidelines`);
  const box = errorBox();
  const parts = [h('h2', {}, `Guidelines (version ${g.version})`), h('blockquote', { class: 'guidelines' }, g.text || 'No guidelines written yet.')];
  if (g.you_accepted < g.version && detail.member) {
    const button = h('button', { type: 'button', onclick: () => busy(button, box, async () => {
      await api('POST', `/circles/${seg(circleId)}/guidelines/accept`, { version: g.version });
      announce('You accepted the guidelines.');
      await renderCircleBody(false);
    }) }, 'I accept these guidelines');
    parts.push(h('p', { class: 'note' }, 'These guidelines changed since you last accepted them.'), button);
  } else {
    parts.push(h('p', { class: 'meta' }, `You accepted version ${g.you_accepted}.`));
  }
  if (detail.role === 'facilitator' && detail.member) {
    const text = h('textarea', { rows: 4 }, g.text);
    const save = h('button', { type: 'submit' }, 'Publish new guidelines');
    const form = h('form', { class: 'card', 'aria-labelledby': 'gl-h' }, h('h3', { id: 'gl-h' }, 'Change the guidelines'), field('New guidelines', text, 'Everyone is asked to accept the new version.'), save);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      busy(save, box, async () => {
        await api('PUT', `/circles/${seg(circleId)}/guidelines`, { text: text.value });
        announce('New guidelines published.');
        await renderCircleBody(false);
      });
    });
    parts.push(form);
  }
  parts.push(box);
  fill(body, parts);
}

// ----- invite ----------------------------------------------------------------------------------

async function renderInvite(body, detail) {
  if (detail.role !== 'facilitator') {
    fill(body, h('h2', {}, 'Invite'), h('p', {}, 'Only a facilitator can invite people to this circle. Ask one of them for an invite.'));
    return;
  }
  const expires = h('select', {}, h('option', { value: '3600' }, '1 hour'), h('option', { value: '86400', selected: true }, '1 day'), h('option', { value: '604800' }, '1 week'));
  const uses = h('input', { type: 'number', min: 1, max: 100, value: '1' });
  const role = h('select', {}, h('option', { value: 'member' }, 'Member'), h('option', { value: 'facilitator' }, 'Facilitator'));
  const box = errorBox();
  const button = h('button', { type: 'submit' }, 'Make an invite');
  const result = h('div', { id: 'invite-result' });
  // Whether a ticket from this device would work in another home: said before and after it is
  // made, in the same words as the CLI's warning, as a calm note (not an error).
  const reachNote = h('div', { class: 'note', id: 'reach-note', role: 'status', hidden: true });
  const form = h('form', { class: 'card', 'aria-labelledby': 'inv-h', 'aria-describedby': 'reach-note' }, h('h3', { id: 'inv-h' }, 'Invite someone'),
    reachNote, field('Valid for', expires), field('How many people may use it', uses), field('Their role', role), box, button);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(button, box, async () => {
      const inv = await api('POST', `/circles/${seg(detail.id)}/invites`, { expires_in_secs: Number(expires.value), uses: Number(uses.value), role: role.value });
      const svg = await api('POST', '/qr', { text: inv.ticket });
      const ticket = h('textarea', { id: 'ticket', readonly: true, rows: 3 }, inv.ticket);
      const copy = h('button', { type: 'button', onclick: async () => {
        try { await navigator.clipboard.writeText(inv.ticket); announce('Invite copied.'); copy.textContent = 'Copied'; } catch { ticket.select(); announce('Select the invite and copy it.'); }
      } }, 'Copy invite');
      fill(result, h('section', { class: 'card', 'aria-labelledby': 'ticket-h' },
        h('h3', { id: 'ticket-h' }, 'Your invite'),
        h('p', {}, `Share it privately: whoever holds it can join ${inv.circle_name} as ${inv.role === 'facilitator' ? 'a facilitator' : 'a member'} until ${new Date(inv.expires_at_ms).toLocaleString()}, ${inv.uses} ${inv.uses === 1 ? 'time' : 'times'}.`),
        h('img', { class: 'qr', src: `data:image/svg+xml;base64,${btoa(svg)}`, alt: 'QR code of the invite', width: 200, height: 200 }),
        field('Invite text', ticket), copy));
      announce('Your invite is ready.');
      await showReachNote(reachNote);
    });
  });
  fill(body, h('h2', {}, 'Invite'), form, result);
  await showReachNote(reachNote);
}

/** Reachability words that mean others outside this network can reach this device. */
const REACHABLE = ['public', 'mapped', 'relayed'];

/** "not known yet: …" → "Not known yet: ….", for a reason shown as a sentence. */
function sentence(text) {
  const t = String(text || '').trim();
  if (!t) return '';
  const s = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/** Shows the note when a ticket made now may only work on this device's own network (the CLI's
 *  rule: reachability is neither public nor relayed); hides it otherwise. The status is only
 *  advice, so when it cannot be read the note stays as it was. */
async function showReachNote(note) {
  let s;
  try { s = await api('GET', '/status'); } catch { return; }
  if (REACHABLE.includes(s.reachability)) {
    note.hidden = true;
    note.replaceChildren();
    return;
  }
  note.hidden = false;
  fill(note,
    h('p', {}, h('strong', {}, 'An invite from this computer may only work on your own network.'),
      ' Someone in another home may not be able to join with it yet.'),
    s.reachability_reason ? h('p', { class: 'meta' }, `Why: ${sentence(s.reachability_reason)}`) : null,
    h('p', {}, 'To invite someone in another home, start Hearth with a relay (',
      h('code', {}, 'hearth up --relay <relay address>'),
      '), or ask a member whose device is reachable to invite them.'));
}

// ----- circle settings: your name, disappearing messages ----------------------------------

async function renderCircleSettings(body, detail) {
  const parts = [h('h2', {}, 'Circle settings')];
  const me = detail.members.find((m) => m.me);
  const name = h('input', { type: 'text', required: true, maxlength: 64, value: me ? me.name : '' });
  const nbox = errorBox();
  const save = h('button', { type: 'submit' }, 'Save my name');
  const nameForm = h('form', { class: 'card', 'aria-labelledby': 'nm-h' }, h('h3', { id: 'nm-h' }, 'Your name in this circle'),
    field('Name the others see', name), nbox, save);
  nameForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(save, nbox, async () => {
      await api('POST', `/circles/${seg(detail.id)}/entries`, { type: 'profile', display_name: name.value });
      announce('Your name is saved.');
      await renderCircleBody(false);
    });
  });
  parts.push(nameForm);
  const current = detail.retention_secs;
  const days = (n) => n * 86400;
  const choices = [[null, 'Keep everything'], [days(1), '1 day'], [days(7), '1 week'], [days(30), '30 days'], [days(365), '1 year']];
  if (detail.role === 'facilitator') {
    const sel = h('select', {}, choices.map(([v, t]) => h('option', { value: v === null ? 'off' : String(v), selected: v === current }, t)));
    const rbox = errorBox();
    const rsave = h('button', { type: 'submit' }, 'Save');
    const rform = h('form', { class: 'card', 'aria-labelledby': 'rt-h' }, h('h3', { id: 'rt-h' }, 'Disappearing messages'),
      field('Delete messages older than', sel, 'This deletes them from every member’s device, within minutes.'), rbox, rsave);
    rform.addEventListener('submit', (ev) => {
      ev.preventDefault();
      busy(rsave, rbox, async () => {
        await api('PUT', `/circles/${seg(detail.id)}/retention`, { retention_secs: sel.value === 'off' ? null : Number(sel.value) });
        announce('Saved.');
        await renderCircleBody(false);
      });
    });
    parts.push(rform);
  } else {
    const label = choices.find(([v]) => v === current)?.[1] ?? (current ? `${Math.round(current / 86400)} days` : 'Keep everything');
    parts.push(h('p', {}, `Disappearing messages: ${label}. A facilitator can change this.`));
  }
  const lbox = errorBox();
  const leave = h('button', { type: 'button', class: 'quiet', onclick: () => {
    if (!window.confirm(`Leave ${detail.name}? You will not read anything written after you leave.`)) return;
    busy(leave, lbox, async () => {
      await api('POST', `/circles/${seg(detail.id)}/leave`);
      announce(`You left ${detail.name}.`);
      await showCircles();
    });
  } }, 'Leave this circle');
  parts.push(h('section', { class: 'card', 'aria-labelledby': 'lv-h' }, h('h3', { id: 'lv-h' }, 'Leaving'), leave, lbox));
  fill(body, parts);
}

// ----- join ------------------------------------------------------------------------------------

function showJoin() {
  navigate();
  state.circle = null;
  main.dataset.view = 'join';
  const ticket = h('textarea', { rows: 3, required: true, spellcheck: 'false' });
  const box = errorBox();
  const button = h('button', { type: 'submit' }, 'Look at this invite');
  const preview = h('div', { id: 'join-preview' });
  const form = h('form', { class: 'card' }, field('Paste the invite you were given', ticket), box, button);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(button, box, async () => {
      const p = await api('POST', '/join/preview', { ticket: ticket.value.trim() });
      const name = h('input', { type: 'text', required: true, maxlength: 64, autocomplete: 'nickname' });
      const agree = h('input', { type: 'checkbox', id: id('agree'), required: true });
      const pbox = errorBox();
      const accept = h('button', { type: 'submit' }, 'Accept and join');
      const decline = h('button', { type: 'button', class: 'quiet', onclick: () => busy(decline, pbox, async () => {
        await api('POST', '/join/decline', { join: p.join });
        fill(preview, h('p', { role: 'status' }, 'You declined. Nothing was joined.'));
      }) }, 'Decline');
      const jf = h('form', { class: 'card', 'aria-labelledby': 'jp-h' },
        h('h2', { id: 'jp-h' }, `Join ${p.circle_name}`),
        h('p', {}, `You are invited as ${p.role === 'facilitator' ? 'a facilitator' : 'a member'}. Please read the circle’s guidelines.`),
        h('blockquote', { class: 'guidelines' }, p.guidelines.text || 'This circle has no written guidelines.'),
        field('Your name in this circle', name),
        h('p', { class: 'check' }, agree, h('label', { for: agree.id }, 'I accept these guidelines')),
        pbox, accept, ' ', decline);
      jf.addEventListener('submit', (e2) => {
        e2.preventDefault();
        busy(accept, pbox, async () => {
          const c = await api('POST', '/join', { ticket: ticket.value.trim(), join: p.join, accept_guidelines_version: p.guidelines.version, display_name: name.value });
          announce(`Welcome to ${c.name}.`);
          await openCircle(c.id);
        });
      });
      fill(preview, jf);
      name.focus();
    });
  });
  page('Join a circle', h('p', {}, 'Someone in a circle sent you an invite. Paste it here to see the circle and its guidelines before you decide.'), form, preview);
  focusMain();
}

// ----- status and settings ---------------------------------------------------------------------

async function showStatus() {
  const nav0 = navigate();
  state.circle = null;
  main.dataset.view = 'status';
  const s = await api('GET', '/status');
  if (state.nav !== nav0) return;
  const reach = {
    public: 'People in other homes can reach this computer directly.',
    mapped: 'People in other homes can reach this computer directly: your router forwards a port to it (UPnP).',
    relayed: 'People in other homes can reach this computer through a relay.',
    unreachable: 'People in other homes cannot reach this computer directly right now. Invites from it may only work on your own network.',
  }[s.reachability] ?? 'Not known yet.';
  const connections = s.connections || [];
  const direct = connections.filter((c) => !c.relayed).length;
  const relayed = connections.length - direct;
  const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const last = (ms) => (ms ? when(ms) : 'nothing yet');
  page('Status',
    h('dl', { class: 'facts' },
      h('dt', {}, 'Can others reach this computer?'),
      h('dd', { id: 'reachability' }, reach,
        s.reachability_reason ? h('span', { class: 'meta block' }, `Why: ${sentence(s.reachability_reason)}`) : null),
      h('dt', {}, 'Devices connected now'),
      h('dd', {}, String(s.connected_peers.length),
        connections.length ? ` (${count(direct, 'direct connection', 'direct connections')}, ${count(relayed, 'through a relay', 'through relays')})` : ''),
      s.hole_punches ? [h('dt', {}, 'Direct connections made through a router'), h('dd', {}, String(s.hole_punches))] : null,
      s.blocked_peers.length ? [h('dt', {}, 'Devices blocked'), h('dd', {}, String(s.blocked_peers.length))] : null,
      s.rejected_messages ? [h('dt', {}, 'Messages turned away as not valid'), h('dd', {}, String(s.rejected_messages))] : null,
      s.throttled_messages ? [h('dt', {}, 'Messages held back for arriving too fast'), h('dd', {}, String(s.throttled_messages))] : null),
    h('h2', {}, 'Circles'),
    s.circles.length ? h('ul', { class: 'plain' }, s.circles.map((c) => h('li', { class: 'card' },
      h('h3', {}, c.name),
      h('p', {}, `${count(c.peers.length, 'device', 'devices')} of this circle connected now${c.pending ? `; ${count(c.pending, 'message', 'messages')} waiting for earlier ones` : ''}${c.member ? '' : '; you are no longer in it'}.`),
      h('ul', {}, c.members.map((m) => h('li', {}, `${m.me ? `${m.name} (you)` : m.name}: last heard from ${last(m.last_seen_ms)}`)))))) : h('p', {}, 'You are not in any circle yet.'),
    h('details', {},
      h('summary', {}, 'Technical details'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'This device'), h('dd', { class: 'mono' }, s.peer_id),
        h('dt', {}, 'Listening on'), h('dd', {}, addrList(s.listen_addrs)),
        h('dt', {}, 'Addresses others confirmed'), h('dd', {}, addrList(s.external_addrs)),
        connections.length ? [h('dt', {}, 'Connections'), h('dd', {}, h('ul', { class: 'plain' }, connections.map((c) =>
          h('li', { class: 'mono' }, `${c.peer_id} ${c.outbound ? 'dialed' : 'came in'}${c.relayed ? ' through a relay' : ''} on ${c.address}`))))] : null)));
  focusMain();
}

/** A list of addresses, or "none". */
function addrList(list) {
  return list && list.length ? h('ul', { class: 'plain' }, list.map((a) => h('li', { class: 'mono' }, a))) : 'none';
}

function showSettings() {
  navigate();
  state.circle = null;
  main.dataset.view = 'settings';
  const status = h('p', { role: 'status' });
  const supported = 'Notification' in window;
  const on = notificationsOn();
  const toggle = h('button', { type: 'button', disabled: !supported, onclick: async () => {
    if (notificationsOn()) {
      localStorage.setItem('hearth.notify', 'off');
      status.textContent = 'Notifications are off.';
    } else {
      const p = await Notification.requestPermission();
      localStorage.setItem('hearth.notify', p === 'granted' ? 'on' : 'off');
      status.textContent = p === 'granted' ? 'Notifications are on. They say only which circle has news, never the message.' : 'The browser did not allow notifications.';
    }
    toggle.textContent = notificationsOn() ? 'Turn notifications off' : 'Turn notifications on';
  } }, on ? 'Turn notifications off' : 'Turn notifications on');
  const logout = h('button', { type: 'button', class: 'quiet', onclick: async () => {
    await api('POST', '/session/logout').catch(() => {});
    closeEvents();
    nav.hidden = true;
    page('Logged out', h('p', {}, 'This browser is logged out. Run `hearth open` for a new login link.'));
  } }, 'Log this browser out');
  page('Settings',
    h('section', { class: 'card', 'aria-labelledby': 'n-h' }, h('h2', { id: 'n-h' }, 'Notifications'),
      h('p', {}, 'When this page is in the background, Hearth can tell you that a circle has a new message. The notification never contains the message itself.'),
      toggle, status),
    h('section', { class: 'card', 'aria-labelledby': 'p-h' }, h('h2', { id: 'p-h' }, 'Your names'),
      h('p', {}, 'You have a separate name in each circle. You chose it when you started or joined the circle.')),
    h('section', { class: 'card', 'aria-labelledby': 's-h' }, h('h2', { id: 's-h' }, 'This browser'), logout));
  focusMain();
}

// ----- wiring ----------------------------------------------------------------------------------

async function go(where) {
  try {
    if (where === 'circles') await showCircles();
    else if (where === 'join') showJoin();
    else if (where === 'status') await showStatus();
    else if (where === 'settings') showSettings();
  } catch (e) {
    if (e instanceof ApiError && e.code === 'locked') await start();
    else announce(e.message);
  }
}

// A form someone has started to fill is "dirty" until it is sent or rendered again.
main.addEventListener('submit', (ev) => { delete ev.target.dataset.dirty; }, true);
for (const type of ['input', 'change']) {
  main.addEventListener(type, (ev) => {
    const form = ev.target.closest && ev.target.closest('form');
    if (form) form.dataset.dirty = '1';
  });
}

nav.addEventListener('click', (ev) => {
  const b = ev.target.closest('button[data-go]');
  if (b) go(b.dataset.go);
});
document.getElementById('lock-now').addEventListener('click', lockNow);

start();
