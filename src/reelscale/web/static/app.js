// The reelscale web UI: a small client-side router over the platform's API.
import { api, ApiError, claims, session, signIn, signOut } from "./api.js";
import { renderPlayer } from "./player.js";
import { renderEditor } from "./editor.js";
import { renderOps } from "./ops.js";
import * as activity from "./activity.js";

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const COLORS = ["red", "blue", "green", "yellow", "purple", "teal", "orange", "pink"];
const LOCK = '<svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><path fill="#fff" d="M6 10V8a6 6 0 1 1 12 0v2h1a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V11a1 1 0 0 1 1-1zm2 0h8V8a4 4 0 0 0-8 0z"/></svg>';

export const h = (html) => {
  const t = document.createElement("template");
  t.innerHTML = html.trim();
  return t.content.firstElementChild;
};
export const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => (
  { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
export function toast(message, ms = 3500) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, ms);
}
export const navigate = (path, replace = false) => {
  if (replace) history.replaceState({}, "", path); else history.pushState({}, "", path);
  route();
};

// ------------------------------------------------------------------ routing
const routes = [
  [/^\/login$/, renderLogin, { public: true }],
  [/^\/profiles$/, renderProfiles, { profile: false }],
  [/^\/$/, renderHome],
  [/^\/browse$/, renderBrowse],
  [/^\/search$/, renderSearch],
  [/^\/title\/([0-9a-f-]{36})$/, renderTitle],
  [/^\/watch\/([0-9a-f-]{36})$/, renderPlayer, { chrome: false }],
  [/^\/editor$/, renderEditor],
  [/^\/ops$/, renderOps],
];

let cleanup = null;

async function route() {
  if (cleanup) { try { cleanup(); } catch { /* view already gone */ } cleanup = null; }
  const path = location.pathname;
  const found = routes.find(([re]) => re.test(path));
  const [re, render, opts = {}] = found || [/^/, renderNotFound, {}];
  const s = session.load();
  if (!opts.public && !s.refresh_token) return navigate("/login", true);
  if (!opts.public && opts.profile !== false && !s.profile) return navigate("/profiles", true);
  nav.hidden = opts.public || opts.profile === false || opts.chrome === false;
  if (!nav.hidden) drawNav();
  view.replaceChildren();
  window.scrollTo(0, 0);
  activity.setSurface({ "/": "home", "/browse": "browse", "/search": "search" }[path]
    || (path.startsWith("/watch/") ? "player" : "title"));
  try {
    const params = path.match(re).slice(1);
    cleanup = (await render(view, ...params)) || null;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) { session.clear(); return navigate("/login", true); }
    view.replaceChildren(h(`<div class="page"><h2>Something went wrong</h2><p class="error">${esc(err.message)}</p></div>`));
  }
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-link]");
  if (a && a.origin === location.origin && !e.metaKey && !e.ctrlKey) {
    e.preventDefault();
    navigate(a.pathname + a.search);
  }
});
window.addEventListener("popstate", route);
window.addEventListener("scroll", () => nav.classList.toggle("solid", window.scrollY > 40));

function drawNav() {
  const s = session.load();
  const p = s.profile || {};
  const button = document.getElementById("nav-profile");
  button.className = `avatar-button c-${p.avatar || "red"}`;
  button.textContent = (p.name || "?").slice(0, 1).toUpperCase();
  const scopes = (claims()?.scope || "").split(" ");
  document.getElementById("nav-editor").hidden = !scopes.includes("media:write");
  document.getElementById("nav-ops").hidden = !scopes.includes("ops:read");
  for (const a of nav.querySelectorAll("nav a")) a.classList.toggle("active", a.pathname === location.pathname);
}
document.getElementById("nav-profile").addEventListener("click", () => {
  const menu = document.getElementById("profile-menu");
  menu.hidden = !menu.hidden;
});
document.addEventListener("click", (e) => {
  if (!e.target.closest(".nav-right")) document.getElementById("profile-menu").hidden = true;
});
document.getElementById("sign-out").addEventListener("click", async () => {
  await signOut();
  navigate("/login");
});
document.getElementById("nav-search").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = new FormData(e.target).get("q");
  navigate(`/search?q=${encodeURIComponent(q)}`);
});

// ------------------------------------------------------------------ sign in
async function renderLogin(root) {
  const el = h(`<div class="auth-wrap"><form class="auth-card" id="login-form">
      <div class="logo" style="margin-bottom:28px">REELSCALE</div>
      <h1>Sign In</h1>
      <div class="field"><input name="email" type="email" placeholder="Email" autocomplete="username" required></div>
      <div class="field"><input name="password" type="password" placeholder="Password" autocomplete="current-password" required></div>
      <div class="error" id="login-error"></div>
      <button class="btn btn-primary btn-block" type="submit">Sign In</button>
      <p class="hint">Demo: <b>viewer@example.com</b> / <b>watch-reelscale</b><br>
      Editor: <b>editor@example.com</b> / <b>edit-reelscale</b></p></form></div>`);
  root.append(el);
  el.querySelector("form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    try {
      await signIn(form.get("email"), form.get("password"));
      navigate("/profiles");
    } catch (err) {
      el.querySelector("#login-error").textContent = err.message;
    }
  });
}

// ------------------------------------------------------------------ profiles
async function renderProfiles(root) {
  const profiles = await api("/v1/profiles");
  const el = h(`<div class="profiles"><div class="logo" style="position:absolute;top:20px;left:4vw">REELSCALE</div>
    <h1>Who's watching?</h1><div class="profile-grid"></div>
    <button class="btn btn-ghost" id="add-profile">Add profile</button></div>`);
  const grid = el.querySelector(".profile-grid");
  for (const p of profiles) {
    const tile = h(`<button class="profile-tile" data-profile="${esc(p.name)}">
      <div class="square c-${esc(p.avatar)}">${esc(p.name.slice(0, 1).toUpperCase())}
      ${p.has_pin ? `<span class="lock" title="Locked">${LOCK}</span>` : ""}
      ${p.is_kids ? '<span class="kids-badge">KIDS</span>' : ""}</div><span>${esc(p.name)}</span></button>`);
    tile.addEventListener("click", () => pick(p));
    grid.append(tile);
  }
  el.querySelector("#add-profile").hidden = profiles.length >= 5;
  el.querySelector("#add-profile").addEventListener("click", () => addProfile());
  root.append(el);
}

async function pick(profile, extra = {}) {
  try {
    const tokens = await api(`/v1/profiles/${profile.id}/select`, { method: "POST", body: extra });
    session.save({ access_token: tokens.access_token, profile });
    navigate("/");
  } catch (err) {
    if (err.status === 403 && err.problem.pin_required) return askPin(profile, err.message);
    if (err.status === 403 && err.problem.password_required) return askPassword(profile, err.message);
    toast(err.message);
  }
}

function askPin(profile, message) {
  const modal = h(`<div class="modal-back"><form class="modal"><h2>Profile lock</h2>
    <p>${esc(message === "wrong PIN" ? "Wrong PIN, try again." : `Enter the PIN for ${profile.name}.`)}</p>
    <div class="pin-boxes">${[0, 1, 2, 3].map(() => '<input inputmode="numeric" maxlength="1" pattern="[0-9]" required>').join("")}</div>
    <button class="btn btn-ghost" type="button" data-cancel>Cancel</button></form></div>`);
  const boxes = [...modal.querySelectorAll("input")];
  boxes.forEach((box, i) => box.addEventListener("input", () => {
    if (box.value && i < 3) boxes[i + 1].focus();
    if (boxes.every((b) => b.value)) { modal.remove(); pick(profile, { pin: boxes.map((b) => b.value).join("") }); }
  }));
  modal.querySelector("[data-cancel]").addEventListener("click", () => modal.remove());
  document.body.append(modal);
  boxes[0].focus();
}

function askPassword(profile, message) {
  const modal = h(`<div class="modal-back"><form class="modal"><h2>Leaving Kids</h2><p>${esc(message)}</p>
    <div class="field"><input type="password" name="password" placeholder="Account password" required></div>
    <button class="btn btn-primary" type="submit">Continue</button>
    <button class="btn btn-ghost" type="button" data-cancel>Cancel</button></form></div>`);
  modal.querySelector("form").addEventListener("submit", (e) => {
    e.preventDefault();
    modal.remove();
    pick(profile, { password: new FormData(e.target).get("password") });
  });
  modal.querySelector("[data-cancel]").addEventListener("click", () => modal.remove());
  document.body.append(modal);
}

function addProfile() {
  const modal = h(`<div class="modal-back"><form class="modal"><h2>Add profile</h2>
    <div class="field"><input name="name" placeholder="Name" maxlength="50" required></div>
    <label style="display:block;margin:10px 0"><input type="checkbox" name="kids"> Kids profile</label>
    <button class="btn btn-primary" type="submit">Save</button>
    <button class="btn btn-ghost" type="button" data-cancel>Cancel</button></form></div>`);
  modal.querySelector("form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    try {
      await api("/v1/profiles", { method: "POST", body: {
        name: form.get("name"), is_kids: form.get("kids") === "on",
        avatar: COLORS[Math.floor(Math.random() * COLORS.length)] } });
      modal.remove();
      route();
    } catch (err) { toast(err.message); }
  });
  modal.querySelector("[data-cancel]").addEventListener("click", () => modal.remove());
  document.body.append(modal);
}

// ------------------------------------------------------------------ home
let playableCache = null;
export async function playable() {
  playableCache ??= api("/v1/media/playable").then((items) => new Map(items.map((i) => [i.title_id, i])))
    .catch(() => new Map());
  return playableCache;
}

export function card(t, { progress = null, ready = false } = {}) {
  const el = h(`<a class="card" href="/title/${t.id}" data-link title="${esc(t.name)}">
    <img loading="lazy" alt="${esc(t.name)}" src="${esc(t.poster || `/v1/catalog/artwork/${t.id}/poster.svg`)}">
    ${ready ? '<span class="badge-play" aria-label="Ready to play">▶</span>' : ""}
    ${progress !== null ? `<span class="progress"><i style="width:${Math.round(progress * 100)}%"></i></span>` : ""}</a>`);
  return el;
}

function row(title, cards, id) {
  const el = h(`<section class="row" ${id ? `id="${id}"` : ""}><h2>${esc(title)}</h2><div class="row-track"></div></section>`);
  el.querySelector(".row-track").append(...cards);
  activity.impression(id || title, cards.map((c) => c.getAttribute("href")?.slice("/title/".length)));
  return el;
}

async function titleSafe(id) {
  try { return await api(`/v1/catalog/titles/${id}`); } catch { return null; }
}

async function renderHome(root) {
  playableCache = null;
  const [ready, recs] = await Promise.all([playable(), api("/v1/recs/home?device=web").catch(() => null)]);
  const readyTitles = (await Promise.all([...ready.keys()].map(titleSafe))).filter(Boolean);
  const page = h(`<div class="home"></div>`);
  const readyRow = readyTitles.length
    ? row("Ready to Watch", readyTitles.map((t) => card(t, { ready: true })), "row-ready") : null;
  if (recs && recs.rows.length) {
    // Rows chosen and ordered for this profile by the recommender.
    for (const r of recs.rows) {
      const cards = r.items.map((i) => card(i, { progress: i.progress ?? null, ready: ready.has(i.id) }));
      page.append(row(r.title, cards, `row-${r.id}`));
      if (r.id === "continue-watching" && readyRow) page.append(readyRow);
    }
    if (readyRow && !readyRow.isConnected) page.prepend(readyRow);
  } else {
    await homeWithoutRecs(page, ready, readyRow);
  }
  const heroTitle = readyTitles[0];
  if (heroTitle) root.append(hero(heroTitle, true));
  root.append(page);
  const panel = await onboarding().catch(() => null);
  if (panel && page.isConnected) page.prepend(panel);
}

// ------------------------------------------------------------------ onboarding picks
// A profile with no history and no picks is asked what it likes: a few genres and,
// optionally, a few titles. Recommendations lead its rows with them from the next page.
const MAX_GENRES = 10;
const MAX_TITLES = 20;
const skipKey = (id) => `reelscale.onboarding.skipped.${id}`;

async function onboarding() {
  const profile = session.load().profile;
  if (!profile?.id || sessionStorage.getItem(skipKey(profile.id))) return null;
  const [picks, history] = await Promise.all([
    api(`/v1/profiles/${profile.id}/picks`), api("/v1/playback/history").catch(() => [])]);
  if (picks.genres.length || picks.titles.length || history.length) return null;
  const [genres, popular] = await Promise.all([
    api("/v1/catalog/genres"), api("/v1/catalog/titles?limit=12").catch(() => ({ items: [] }))]);
  const offered = genres.filter((g) => g.titles > 0);
  if (!offered.length) return null;
  const el = h(`<section class="onboarding" id="onboarding" aria-labelledby="onboarding-title">
    <h2 id="onboarding-title">What do you like to watch?</h2>
    <p>Pick a few genres, and titles if you like, and your home page starts with them.</p>
    <h3 id="onboarding-genres">Genres</h3>
    <div class="chips" role="group" aria-labelledby="onboarding-genres">${offered.map((g) =>
      `<button type="button" class="chip" aria-pressed="false" data-pick-genre="${esc(g.slug)}">${esc(g.name)}</button>`).join("")}</div>
    ${popular.items.length ? `<h3 id="onboarding-titles">Titles you like <small>(optional)</small></h3>
    <div class="pick-titles" role="group" aria-labelledby="onboarding-titles">${popular.items.map((t) =>
      `<button type="button" class="pick-title" aria-pressed="false" data-pick-title="${esc(t.id)}">
        <img alt="" loading="lazy" src="${esc(t.poster || `/v1/catalog/artwork/${t.id}/poster.svg`)}"><span>${esc(t.name)}</span></button>`).join("")}</div>` : ""}
    <p class="hint" id="onboarding-status" role="status">Choose at least one genre.</p>
    <div class="actions"><button class="btn btn-primary" id="onboarding-save" disabled>Save my picks</button>
    <button class="btn btn-ghost" id="onboarding-skip" type="button">Not now</button></div></section>`);
  const chosen = (attr) => [...el.querySelectorAll(`[${attr}][aria-pressed="true"]`)].map((b) => b.getAttribute(attr));
  const status = el.querySelector("#onboarding-status");
  const update = () => {
    const g = chosen("data-pick-genre").length;
    const t = chosen("data-pick-title").length;
    el.querySelector("#onboarding-save").disabled = g === 0;
    status.textContent = g ? `${g} genre${g > 1 ? "s" : ""}${t ? ` and ${t} title${t > 1 ? "s" : ""}` : ""} chosen.`
      : "Choose at least one genre.";
  };
  const toggle = (button, attr, max) => {
    const on = button.getAttribute("aria-pressed") === "true";
    if (!on && chosen(attr).length >= max) { toast(`At most ${max} — unpick one first.`); return; }
    button.setAttribute("aria-pressed", String(!on));
    update();
  };
  for (const b of el.querySelectorAll("[data-pick-genre]")) b.addEventListener("click", () => toggle(b, "data-pick-genre", MAX_GENRES));
  for (const b of el.querySelectorAll("[data-pick-title]")) b.addEventListener("click", () => toggle(b, "data-pick-title", MAX_TITLES));
  el.querySelector("#onboarding-skip").addEventListener("click", () => {
    sessionStorage.setItem(skipKey(profile.id), "1");
    el.remove();
  });
  el.querySelector("#onboarding-save").addEventListener("click", async (e) => {
    e.target.disabled = true;
    status.textContent = "Saving…";
    try {
      await api(`/v1/profiles/${profile.id}/picks`, { method: "PUT",
        body: { genres: chosen("data-pick-genre"), titles: chosen("data-pick-title") } });
    } catch (err) {
      status.textContent = err.message;
      e.target.disabled = false;
      return;
    }
    await picksReached();
    route(); // the rows again, now led by the picks
  });
  return el;
}

// The recommender learns of new picks from the event stream, a moment after the save.
async function picksReached() {
  for (let i = 0; i < 20; i++) {
    const recs = await api("/v1/recs/home?device=web").catch(() => null);
    if (!recs || recs.rows[0]?.id === "top-picks") return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function homeWithoutRecs(page, ready, readyRow) {
  const [fresh, genres, cont] = await Promise.all([
    api("/v1/catalog/titles?sort=new&limit=20"), api("/v1/catalog/genres"),
    api("/v1/playback/continue-watching").catch(() => []),
  ]);
  if (cont.length) {
    const titles = await Promise.all(cont.map((c) => titleSafe(c.title_id)));
    const cards = cont.map((c, i) => titles[i] && card(titles[i], { progress: c.fraction, ready: true })).filter(Boolean);
    if (cards.length) page.append(row("Continue Watching", cards, "row-continue"));
  }
  if (readyRow) page.append(readyRow);
  page.append(row("New Releases", fresh.items.map((t) => card(t, { ready: ready.has(t.id) })), "row-new"));
  for (const g of [...genres].sort((a, b) => b.titles - a.titles).slice(0, 8)) {
    const placeholder = row(g.name, []);
    page.append(placeholder);
    api(`/v1/catalog/genres/${g.slug}/titles?limit=20`).then((p) => {
      placeholder.querySelector(".row-track").append(...p.items.map((t) => card(t, { ready: ready.has(t.id) })));
    });
  }
}

function hero(t, ready) {
  const backdrop = (t.artwork || []).find((a) => a.kind === "backdrop")?.url || `/v1/catalog/artwork/${t.id}/backdrop.svg`;
  const el = h(`<section class="hero" style="background-image:url('${esc(backdrop)}')"><div class="hero-body">
    <h1>${esc(t.name)}</h1>
    <div class="meta"><span>${t.release_year}</span><span class="rating">${esc(t.maturity_rating)}</span>
    ${t.runtime_minutes ? `<span>${t.runtime_minutes} min</span>` : ""}</div>
    <p>${esc(t.synopsis)}</p><div class="actions">
    ${ready ? `<a class="btn btn-light" href="/watch/${t.id}" data-link>▶ Play</a>` : ""}
    <a class="btn btn-ghost" href="/title/${t.id}" data-link>More Info</a></div></div></section>`);
  return el;
}

// ------------------------------------------------------------------ browse and search
async function renderBrowse(root) {
  const ready = await playable();
  const genres = await api("/v1/catalog/genres");
  const el = h(`<div class="page"><h1>Browse</h1>
    <div class="field" style="max-width:260px"><select id="genre"><option value="">All genres</option>
    ${genres.map((g) => `<option value="${esc(g.slug)}">${esc(g.name)} (${g.titles})</option>`).join("")}</select></div>
    <div class="grid" id="grid"></div><p style="text-align:center"><button class="btn btn-ghost" id="more">More</button></p></div>`);
  root.append(el);
  let offset = 0;
  const load = async (reset) => {
    if (reset) { offset = 0; el.querySelector("#grid").replaceChildren(); }
    const genre = el.querySelector("#genre").value;
    const page = await api(genre ? `/v1/catalog/genres/${genre}/titles?limit=24&offset=${offset}`
      : `/v1/catalog/titles?limit=24&offset=${offset}`);
    el.querySelector("#grid").append(...page.items.map((t) => card(t, { ready: ready.has(t.id) })));
    offset = page.next_offset ?? offset;
    el.querySelector("#more").hidden = page.next_offset === null;
  };
  el.querySelector("#genre").addEventListener("change", () => load(true));
  el.querySelector("#more").addEventListener("click", () => load(false));
  await load(true);
}

async function renderSearch(root) {
  const q = new URLSearchParams(location.search).get("q") || "";
  document.querySelector("#nav-search input").value = q;
  const ready = await playable();
  const el = h(`<div class="page"><h1>${q ? `Results for “${esc(q)}”` : "Search"}</h1><div class="grid" id="results"></div></div>`);
  root.append(el);
  if (!q.trim()) return;
  const hits = await api(`/v1/catalog/search?q=${encodeURIComponent(q)}&limit=40`);
  if (!hits.length) el.append(h(`<p class="empty">No titles match. Check the spelling or try a person or genre.</p>`));
  el.querySelector("#results").append(...hits.map((hit) => card(hit.title, { ready: ready.has(hit.title.id) })));
  activity.search(q.length, hits.length);
  activity.impression("results", hits.map((hit) => hit.title.id));
}

// ------------------------------------------------------------------ title page
async function renderTitle(root, id) {
  const [t, ready] = await Promise.all([api(`/v1/catalog/titles/${id}`), playable()]);
  const progress = (await api("/v1/playback/history").catch(() => [])).find((p) => p.title_id === id);
  const isReady = ready.has(id);
  const resume = progress && !progress.watched && progress.fraction >= 0.05;
  root.append(hero({ ...t, synopsis: t.synopsis }, false));
  const actions = root.querySelector(".actions");
  if (isReady) {
    actions.prepend(h(`<a class="btn btn-light" href="/watch/${t.id}" data-link id="play-button">▶ ${resume ? "Resume" : "Play"}</a>`));
  } else {
    actions.prepend(h(`<span class="btn btn-ghost" aria-disabled="true">Coming soon</span>`));
  }
  actions.querySelector('a[href^="/title/"]')?.remove();
  actions.append(thumbs(t.id));
  const seasons = t.seasons.map((s) => `<h3>${esc(s.name)}</h3><ul class="episodes">${s.episodes.map((e) =>
    `<li><span class="n">${e.number}</span><div><b>${esc(e.name)}</b> <small>${e.runtime_minutes} min</small><br>
    <span style="color:var(--muted)">${esc(e.synopsis)}</span></div></li>`).join("")}</ul>`).join("");
  const body = h(`<div class="title-body"><div>${seasons || ""}<section class="row" id="more-like-this"></section></div>
    <dl><dt>Cast</dt><dd>${t.cast.map((c) => esc(c.name)).join(", ") || "—"}</dd>
    <dt>Crew</dt><dd>${t.crew.map((c) => `${esc(c.name)} (${esc(c.role)})`).join(", ") || "—"}</dd>
    <dt>Genres</dt><dd>${t.genres.map((g) => `<a href="/browse" data-link>${esc(g.name)}</a>`).join(", ")}</dd>
    <dt>Audio</dt><dd>${t.audio_languages.join(", ")}</dd><dt>Subtitles</dt><dd>${t.subtitle_languages.join(", ")}</dd></dl></div>`);
  root.append(body);
  const similar = await api(`/v1/recs/titles/${t.id}/more-like-this`).catch(() => null);
  let items = similar?.items;
  if (!items && t.genres.length) {
    items = (await api(`/v1/catalog/genres/${t.genres[0].slug}/titles?limit=16`)).items;
  }
  const cards = (items || []).filter((x) => x.id !== t.id).map((x) => card(x, { ready: ready.has(x.id) }));
  if (cards.length) body.querySelector("#more-like-this").replaceWith(row("More Like This", cards));
}

// Thumbs up or down: a signal for recommendations, toggled like a streaming service's.
function thumbs(titleId) {
  const el = h(`<span class="thumbs"><button class="icon-btn" id="thumb-up" aria-label="I like this" aria-pressed="false">👍</button>
    <button class="icon-btn" id="thumb-down" aria-label="Not for me" aria-pressed="false">👎</button></span>`);
  const show = (value) => {
    el.querySelector("#thumb-up").setAttribute("aria-pressed", String(value === 1));
    el.querySelector("#thumb-down").setAttribute("aria-pressed", String(value === -1));
    el.dataset.thumb = String(value);
  };
  const set = async (value) => {
    const next = Number(el.dataset.thumb) === value ? 0 : value;
    try { show((await api(`/v1/playback/thumbs/${titleId}`, { method: "PUT", body: { thumb: next } })).thumb); }
    catch (err) { toast(err.message); }
  };
  el.querySelector("#thumb-up").addEventListener("click", () => set(1));
  el.querySelector("#thumb-down").addEventListener("click", () => set(-1));
  api(`/v1/playback/thumbs/${titleId}`).then((r) => show(r.thumb)).catch(() => show(0));
  return el;
}

function renderNotFound(root) {
  root.append(h(`<div class="page"><h1>Lost your way?</h1><p>That page does not exist. <a href="/" data-link>Home</a></p></div>`));
}

route();
