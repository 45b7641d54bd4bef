// Member activity for the platform's browse analytics and recommendations: which rows a
// profile was shown (impressions), which titles it opened (clicks), what it searched for.
// Batched: sent every few seconds, or when 20 are waiting, or as the page goes away.
import { api, session } from "./api.js";

const FLUSH_MS = 5000;
const BATCH = 20;
let queue = [];
let timer = null;
let surface = "home";

export function setSurface(name) { surface = name; }

export function track(event) {
  if (!session.load().profile) return; // activity belongs to a profile
  queue.push({ ...event, surface: event.surface ?? surface });
  if (queue.length >= BATCH) flush();
  else timer ??= setTimeout(flush, FLUSH_MS);
}

export function impression(row, titleIds) {
  const ids = titleIds.filter(Boolean).slice(0, 100);
  if (row && ids.length) track({ type: "impression", row: rowName(row), title_ids: ids });
}

export function search(queryChars, results) {
  if (!session.load().profile) return;
  queue.push({ type: "search", query_chars: Math.min(queryChars, 200), results: Math.min(results, 10000) });
  timer ??= setTimeout(flush, FLUSH_MS);
}

const rowName = (id) => String(id).replace(/^row-/, "").replace(/[^\w.:-]/g, "_").slice(0, 64) || "row";

// A click on any title card: its row and its place in that row.
document.addEventListener("click", (e) => {
  const a = e.target.closest("a.card");
  const id = a?.getAttribute("href")?.match(/^\/title\/([0-9a-f-]{36})$/)?.[1];
  if (!id) return;
  const row = a.closest("section.row");
  const rank = Array.prototype.indexOf.call(a.parentElement.children, a);
  track({ type: "click", title_id: id, row: row?.id ? rowName(row.id) : null, rank: rank >= 0 ? rank : null });
}, true);

export function flush({ keepalive = false } = {}) {
  clearTimeout(timer);
  timer = null;
  if (!queue.length) return;
  const events = queue.splice(0, 50);
  if (keepalive) {
    const { access_token } = session.load();
    fetch("/v1/playback/activity", {
      method: "POST", keepalive: true,
      headers: { "content-type": "application/json", authorization: `Bearer ${access_token}` },
      body: JSON.stringify({ events }),
    }).catch(() => {});
  } else {
    api("/v1/playback/activity", { method: "POST", body: { events } }).catch(() => {});
  }
  if (queue.length) timer = setTimeout(flush, 0);
}

window.addEventListener("pagehide", () => flush({ keepalive: true }));
