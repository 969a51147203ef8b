// The daemon's local API, as the page calls it: same origin, the session cookie (HttpOnly, so
// the page never sees it), JSON in and out.

/** An error the daemon answered, with its stable code (API.md). */
export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** Kind words for the codes a person meets; other errors keep the daemon's own sentence. */
const KIND = {
  wrong_passphrase: 'That passphrase did not open your profile. Nothing was changed; please try again.',
  unauthorized: 'This page is no longer logged in. Run `hearth open` on this computer for a fresh link.',
  locked: 'Hearth is locked. Please unlock it with your passphrase.',
  unreachable: 'We could not reach the other device in time. It may be offline; your data is safe, please try again when it is online.',
  invite_expired: 'This invite has expired. Please ask a facilitator of the circle for a new one.',
  invite_used_up: 'This invite has already been used. Please ask a facilitator of the circle for a new one.',
  invalid_ticket: 'This does not look like a whole Hearth invite. Please check that you copied all of it.',
  not_permitted: 'Only a facilitator of this circle can do that, or you are no longer in this circle.',
  try_again: 'The circle is busy for a moment (it is sharing a new key). Please try again in a few seconds.',
  already_member: 'You are already in this circle.',
};

function sentence(s) {
  if (!s) return s;
  const t = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/** Sends one request; resolves to the JSON answer and the response, or rejects with an ApiError. */
async function request(method, path, body) {
  const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(`/v1${path}`, opts);
  } catch {
    throw new ApiError('no_daemon', 'Hearth is not running on this computer. Start it again with `hearth open`.', 0);
  }
  const type = r.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await r.json().catch(() => null) : await r.text();
  if (!r.ok) {
    const code = data?.error?.code ?? 'internal';
    const msg = KIND[code] ?? sentence(data?.error?.message) ?? `Hearth answered with an error (${r.status}).`;
    throw new ApiError(code, msg, r.status);
  }
  return { data, response: r };
}

/** Calls the API; resolves to the JSON answer or rejects with an ApiError. */
export async function api(method, path, body) {
  return (await request(method, path, body)).data;
}

/** Reads one page of a circle's timeline (API.md, "Timeline pages"): resolves to
 *  `{items, older}`, the items oldest first and `older` the cursor of the page before
 *  (the `Hearth-Older` header), or null when nothing older exists. */
export async function timelinePage(circle, limit, before) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (before) query.set('before', before);
  const { data, response } = await request('GET', `/circles/${seg(circle)}/timeline?${query}`);
  return { items: Array.isArray(data) ? data : [], older: response.headers.get('Hearth-Older') || null };
}

/** Percent-encodes one path segment (a circle's id, a member's id). */
export const seg = (s) => encodeURIComponent(s);
