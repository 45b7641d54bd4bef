// The operations page: live platform analytics, pushed by the server as server-sent events
// and drawn as small SVG charts (no chart library, nothing fetched from elsewhere).
//
// EventSource cannot send an Authorization header and the API takes bearer tokens, so the
// stream is read with fetch and a stream reader. When it ends (the token expired, the server
// restarted) or fails, the page refreshes the token if needed and reconnects with backoff.
import { api, ApiError, session } from "./api.js";
import { esc, h } from "./app.js";

const MINUTES = 30;
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#e50914", "#2f6df6", "#1f9d55", "#e5a00d", "#7b3fe4", "#0e9f9f", "#ef6c00", "#d6338a"];
const titleNames = new Map(); // title id -> name (or the id while unknown)

export async function renderOps(root) {
  const el = h(`<div class="page ops"><div class="ops-head"><h1>Operations</h1>
      <span class="ops-status" id="ops-status">connecting…</span></div>
    <div class="ops-tiles">
      ${tile("viewers", "Viewers now")}${tile("plays", "Plays, last full minute")}${tile("rate", "Plays / min (5 min)")}
      ${tile("failures", "Start failures")}${tile("rebuffer", "Rebuffering")}${tile("rps", "Requests / s")}${tile("errors", "Server errors")}
    </div>
    <div class="ops-charts">
      ${panel("chart-viewers", "Concurrent viewers", "sampled every 10 s")}
      ${panel("chart-plays", "Plays per minute", "bars: each minute · line: 5-minute average")}
      ${panel("chart-starts", "Start failure ratio", "refused + failed before the first frame, over attempts")}
      ${panel("chart-rebuffer", "Rebuffer ratio", "stalled / (played + stalled)")}
      ${panel("chart-requests", "Requests per second, by service", "")}
      ${panel("chart-errors", "Server errors per minute, by service", "5xx responses")}
    </div>
    <div class="ops-tables">
      <section><h2>Top titles now</h2><p class="ops-note" id="top-window"></p>
        <table class="assets" id="top-titles"><thead><tr><th>#</th><th>Title</th><th>Sessions</th></tr></thead><tbody></tbody></table></section>
      <section><h2>Event streams</h2><p class="ops-note">Late, malformed and duplicate events are counted and dropped.</p>
        <table class="assets" id="ingest"><thead><tr><th>Stream</th><th>Behind</th><th>Applied</th><th>Late</th>
        <th>Malformed</th><th>Duplicates</th><th>Refused</th></tr></thead><tbody></tbody></table></section>
    </div></div>`);
  root.append(el);
  const state = { received: 0, stopped: false, controller: null };
  window.__ops = state; // for the browser tests and for a person in the console
  const draw = (snapshot) => {
    state.received += 1;
    state.last = snapshot;
    drawSnapshot(el, snapshot);
  };
  draw(await api(`/v1/ops/analytics?minutes=${MINUTES}`));
  follow(state, draw, el.querySelector("#ops-status"));
  return () => {
    state.stopped = true;
    state.controller?.abort();
  };
}

function tile(id, label) {
  return `<div class="ops-tile"><span class="ops-label">${esc(label)}</span><b id="ops-${id}">–</b></div>`;
}

function panel(id, title, note) {
  return `<section class="ops-panel"><h3>${esc(title)}</h3>${note ? `<p class="ops-note">${esc(note)}</p>` : ""}
    <svg class="chart" id="${id}" viewBox="0 0 520 180" preserveAspectRatio="none" role="img" aria-label="${esc(title)}"></svg>
    <div class="legend" id="${id}-legend"></div></section>`;
}

// ------------------------------------------------------------------ the live stream
async function follow(state, draw, status) {
  let backoff = 1000;
  while (!state.stopped) {
    try {
      state.controller = new AbortController();
      status.textContent = "live";
      status.classList.remove("down");
      for await (const message of events(`/v1/ops/analytics/live?minutes=${MINUTES}`, state.controller.signal)) {
        if (message.event === "snapshot") {
          draw(JSON.parse(message.data));
          status.textContent = `live · ${new Date().toLocaleTimeString()}`;
          backoff = 1000;
        }
        if (message.event === "expired") break; // reconnect with a refreshed token
      }
    } catch (err) {
      if (state.stopped) return;
      // Not allowed (any more), or signed out: retrying would not help.
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        status.textContent = err.message;
        status.classList.add("down");
        return;
      }
    }
    if (state.stopped) return;
    status.textContent = "reconnecting…";
    status.classList.add("down");
    await new Promise((resolve) => setTimeout(resolve, backoff));
    backoff = Math.min(backoff * 2, 15000);
  }
}

// Server-sent events over fetch: yields {event, data, id} for each message.
async function* events(path, signal) {
  let response = await open(path, signal);
  if (response.status === 401) {
    // An expired token: any API call refreshes it (api.js), then the stream is opened again.
    await api("/v1/ops/analytics?minutes=1");
    response = await open(path, signal);
  }
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({})));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message = { event: "message", data: [], id: null };
        for (const line of block.split("\n")) {
          const colon = line.indexOf(":");
          if (colon === 0) continue; // a comment
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") message.event = text;
          else if (field === "data") message.data.push(text);
          else if (field === "id") message.id = text;
        }
        if (message.data.length) yield { ...message, data: message.data.join("\n") };
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function open(path, signal) {
  const { access_token } = session.load();
  return fetch(path, {
    headers: { authorization: `Bearer ${access_token}`, accept: "text/event-stream" },
    cache: "no-store", signal,
  });
}

// ------------------------------------------------------------------ drawing
const pct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(v < 0.1 ? 2 : 1)}%`);
const num = (v, digits = 0) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
const time = (iso) => new Date(iso).getTime();

function drawSnapshot(el, s) {
  const c = s.current;
  setTile(el, "viewers", c.viewers, num(c.viewers));
  setTile(el, "plays", c.plays_last_minute, num(c.plays_last_minute));
  setTile(el, "rate", c.plays_per_minute_5m, num(c.plays_per_minute_5m, 1));
  setTile(el, "failures", c.start_failure_ratio, pct(c.start_failure_ratio));
  setTile(el, "rebuffer", c.rebuffer_ratio, pct(c.rebuffer_ratio));
  setTile(el, "rps", c.requests_per_s, num(c.requests_per_s, 1));
  setTile(el, "errors", c.error_ratio, pct(c.error_ratio));

  chart(el, "chart-viewers", [{ name: "viewers", points: s.viewers.map((p) => pt(p, p.viewers)) }]);
  chart(el, "chart-plays", [
    { name: "plays", bars: true, points: s.plays_per_minute.map((p) => pt(p, p.plays)) },
    { name: "5-minute average", points: s.plays_5m.map((p) => pt(p, p.per_minute)) },
  ]);
  chart(el, "chart-starts", [{ name: "failure ratio", points: s.starts.map((p) => pt(p, p.failure_ratio)) }], pct);
  chart(el, "chart-rebuffer", [{ name: "rebuffer ratio", points: s.rebuffering.map((p) => pt(p, p.rebuffer_ratio)) }], pct);
  const names = [...new Set(s.services.flatMap((p) => Object.keys(p.services)))].sort();
  chart(el, "chart-requests", names.map((name) => ({
    name, points: s.services.map((p) => pt(p, p.services[name]?.requests_per_s ?? 0)),
  })), (v) => num(v, 1));
  chart(el, "chart-errors", names.map((name) => ({
    name, points: s.services.map((p) => pt(p, p.services[name]?.errors ?? 0)),
  })));
  drawTop(el, s.top_titles);
  drawIngest(el, s.ingest, s.generated_at);
}

function setTile(el, id, value, text) {
  const b = el.querySelector(`#ops-${id}`);
  b.textContent = text;
  b.dataset.value = value === null || value === undefined ? "" : String(value);
}

// A point at its window's end; y null (no data, e.g. a ratio with no attempts) leaves a gap.
const pt = (p, y) => ({ start: time(p.start), x: time(p.end), y, final: p.final });

// The axis top: the next 1, 2 or 5 times a power of ten (ratios stop at 100%).
function niceCeiling(value, ratio) {
  if (!(value > 0)) return ratio ? 0.01 : 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const top = [1, 2, 5, 10].map((m) => m * power).find((v) => v >= value);
  return ratio ? Math.min(1, top) : Math.max(top, 1);
}

function tick(value, format) {
  if (format === pct) return `${+(value * 100).toPrecision(3)}%`;
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function chart(el, id, series, format = (v) => num(v)) {
  const svg = el.querySelector(`#${id}`);
  const W = 520, H = 180, left = 44, bottom = 20, top = 8;
  const all = series.flatMap((s) => s.points).filter((p) => p.y !== null);
  svg.replaceChildren();
  svg.dataset.points = String(all.length);
  const main = series[0]?.points.filter((p) => p.y !== null) || [];
  svg.dataset.last = main.length ? String(main[main.length - 1].y) : "";
  svg.dataset.total = String(main.reduce((sum, p) => sum + p.y, 0));
  if (!all.length) {
    add(svg, "text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-empty" }).textContent = "no data yet";
    el.querySelector(`#${id}-legend`).replaceChildren();
    return;
  }
  // Time runs from the first window's start to the last window's end; bars fill their window.
  const x0 = Math.min(...all.map((p) => p.start)), x1 = Math.max(...all.map((p) => p.x));
  const yMax = niceCeiling(Math.max(...all.map((p) => p.y)), format === pct);
  const sx = (x) => left + ((x - x0) / Math.max(1, x1 - x0)) * (W - left - 6);
  const sy = (y) => H - bottom - (y / yMax) * (H - bottom - top);
  for (const frac of [0, 0.5, 1]) {
    const y = sy(yMax * frac);
    add(svg, "line", { x1: left, x2: W - 6, y1: y, y2: y, class: "grid" });
    add(svg, "text", { x: left - 4, y: y + 4, "text-anchor": "end", class: "axis" }).textContent = tick(yMax * frac, format);
  }
  const clock = (x) => new Date(x).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  add(svg, "text", { x: left, y: H - 4, class: "axis" }).textContent = clock(x0);
  add(svg, "text", { x: W - 6, y: H - 4, "text-anchor": "end", class: "axis" }).textContent = clock(x1);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const points = s.points.filter((p) => p.y !== null);
    if (s.bars) {
      for (const p of points) {
        add(svg, "rect", { x: sx(p.start) + 1, y: sy(p.y), width: Math.max(1, sx(p.x) - sx(p.start) - 2),
          height: Math.max(0, H - bottom - sy(p.y)), fill: color, opacity: p.final ? 0.85 : 0.45 });
      }
      return;
    }
    // Final windows solid; the provisional tail (still open) dashed.
    const final = points.filter((p) => p.final);
    const open = points.slice(Math.max(0, final.length - 1));
    const path = (ps) => ps.map((p, k) => `${k ? "L" : "M"}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join("");
    if (final.length > 1) add(svg, "path", { d: path(final), stroke: color, class: "line" });
    if (open.length > 1) add(svg, "path", { d: path(open), stroke: color, class: "line provisional" });
    if (points.length === 1) add(svg, "circle", { cx: sx(points[0].x), cy: sy(points[0].y), r: 3, fill: color });
  });
  el.querySelector(`#${id}-legend`).replaceChildren(...series.map((s, i) =>
    h(`<span><i style="background:${COLORS[i % COLORS.length]}"></i>${esc(s.name)}</span>`)));
}

function add(svg, tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  svg.append(node);
  return node;
}

function drawTop(el, top) {
  const body = el.querySelector("#top-titles tbody");
  el.querySelector("#top-window").textContent = top
    ? `Distinct sessions from ${new Date(top.start).toLocaleTimeString()} to ${new Date(top.end).toLocaleTimeString()}${top.final ? "" : " (still filling)"}`
    : "No plays yet.";
  body.replaceChildren(...(top?.titles || []).map((t, i) => {
    const row = h(`<tr data-title="${esc(t.title_id)}"><td>${i + 1}</td><td class="name">${esc(titleNames.get(t.title_id) || t.title_id)}</td><td>${t.sessions}</td></tr>`);
    if (!titleNames.has(t.title_id)) nameTitle(t.title_id);
    return row;
  }));
}

// Title names come from the catalog, once per title; the id stays if it cannot be read.
function nameTitle(id) {
  titleNames.set(id, id);
  api(`/v1/catalog/titles/${encodeURIComponent(id)}`).then((t) => {
    titleNames.set(id, t.name);
    for (const cell of document.querySelectorAll(`#top-titles tr[data-title="${CSS.escape(id)}"] .name`)) cell.textContent = t.name;
  }).catch(() => {});
}

function drawIngest(el, ingest, generatedAt) {
  const now = time(generatedAt);
  el.querySelector("#ingest tbody").replaceChildren(...ingest.map((f) => {
    const behind = f.newest_event ? `${Math.max(0, (now - time(f.newest_event)) / 1000).toFixed(0)} s` : "–";
    return h(`<tr data-family="${esc(f.family)}"><td>${esc(f.family)}</td><td>${behind}</td><td>${f.applied}</td><td>${f.late}</td>
      <td>${f.malformed}</td><td>${f.duplicates}</td><td>${f.too_old + f.future + f.overflow + f.failed}</td></tr>`);
  }));
}
