// The player: hls.js over the signed manifest, a quality menu, trickplay previews on the
// seek bar, resume, and heartbeats that report progress and renew the signed media path.
// Heartbeats also carry what the viewer experienced since the last one (time played, time
// stalled, quality switches, errors): the platform publishes them as playback events.
import { api, session } from "./api.js";
import { esc, h, navigate, toast } from "./app.js";

const SIGNED = /\/media\/s\/[^/]+\/\d+\/[^/]+\/[0-9a-f]{32}\//;
const fmt = (s) => {
  s = Math.max(0, Math.floor(s || 0));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
};

export async function renderPlayer(root, titleId) {
  const pressed = performance.now(); // time to first frame counts from here
  let title;
  let play;
  try {
    [title, play] = await Promise.all([
      api(`/v1/catalog/titles/${titleId}`),
      api("/v1/playback/sessions", { method: "POST", body: { title_id: titleId, device: "web" } }),
    ]);
  } catch (err) {
    toast(err.message, 6000);
    navigate(`/title/${titleId}`, true);
    return null;
  }
  let prefix = play.media_prefix;
  const el = h(`<div class="player" id="player">
    <video playsinline preload="auto" ${play.poster_url ? `poster="${esc(play.poster_url)}"` : ""}></video>
    <div class="spinner" id="spinner"></div>
    <div class="overlay">
      <div class="top"><button class="icon-btn" id="back" aria-label="Back">←</button><h2>${esc(title.name)}</h2></div>
      <div class="bottom">
        <div class="seek" id="seek"><div class="bar"><div class="buffered"></div><div class="played"></div></div>
          <div class="thumb" id="thumb"><span></span></div></div>
        <div class="controls">
          <button class="icon-btn" id="toggle" aria-label="Play or pause">▶</button>
          <button class="icon-btn" id="back10" aria-label="Back 10 seconds">⟲</button>
          <button class="icon-btn" id="fwd10" aria-label="Forward 10 seconds">⟳</button>
          <span class="time" id="time">0:00 / ${fmt(play.duration_s)}</span>
          <span class="spacer"></span>
          <div class="quality"><button class="icon-btn" id="quality-button" aria-label="Quality" style="font-size:15px">Auto</button>
            <div class="quality-menu" id="quality-menu" hidden></div></div>
          <button class="icon-btn" id="fullscreen" aria-label="Full screen">⤢</button>
        </div>
      </div>
    </div></div>`);
  root.append(el);
  const video = el.querySelector("video");
  const $ = (id) => el.querySelector(`#${id}`);
  const state = { hls: null, sessionId: play.session_id, errors: [], switches: 0, stopped: false };
  window.__player = state;
  state.video = video;
  const firstFrame = () => { state.ttff_ms ??= performance.now() - pressed; };

  // --- what the viewer experienced, reported with the next heartbeat
  const report = { watchedMs: 0, rebufferMs: 0, events: [], playingSince: null, stalledSince: null, seeking: false };
  state.report = report;
  const MAX_EVENTS = 32;
  const note = (event) => { if (report.events.length < 4 * MAX_EVENTS) report.events.push(event); };
  const settlePlaying = () => {
    if (report.playingSince != null) report.watchedMs += performance.now() - report.playingSince;
    report.playingSince = video.paused ? null : performance.now();
  };
  video.addEventListener("playing", () => {
    if (report.stalledSince != null) { // a stall after the first frame that was not a seek
      const ms = Math.round(performance.now() - report.stalledSince);
      report.rebufferMs += ms;
      note({ type: "rebuffer", duration_ms: Math.min(ms, 60000) });
      report.stalledSince = null;
    }
    report.seeking = false;
    report.playingSince = performance.now();
  });
  video.addEventListener("waiting", () => {
    settlePlaying();
    report.playingSince = null;
    if (state.ttff_ms != null && !report.seeking) report.stalledSince = performance.now();
  });
  video.addEventListener("seeking", () => { report.seeking = true; report.stalledSince = null; });
  video.addEventListener("pause", () => { settlePlaying(); report.playingSince = null; });
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(firstFrame);
  else video.addEventListener("playing", firstFrame, { once: true });

  // --- the stream
  const rewrite = (url) => url.replace(SIGNED, prefix);
  if (window.Hls && window.Hls.isSupported()) {
    const hls = new window.Hls({
      startPosition: play.resume_at_s > 0 ? play.resume_at_s : -1,
      xhrSetup: (xhr, url) => xhr.open("GET", rewrite(url), true),
      maxBufferLength: 30,
      enableWorker: true,
      startFragPrefetch: true, // fetch the first segment while the playlist is parsed
    });
    state.hls = hls;
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => { drawQualities(); video.play().catch(() => {}); });
    hls.on(window.Hls.Events.LEVEL_SWITCHED, (_e, data) => {
      const from = state.level != null ? hls.levels[state.level] : null;
      const to = hls.levels[data.level];
      if (to && from !== to) note({ type: "quality_switch", from_rendition: from ? `${from.height}p` : null, to_rendition: `${to.height}p` });
      state.switches += 1; state.level = data.level; drawQualities();
    });
    hls.on(window.Hls.Events.ERROR, (_e, data) => {
      if (!data.fatal) return;
      state.errors.push(`${data.type}:${data.details}`);
      note({ type: "error", code: String(data.details || data.type).slice(0, 64).replace(/[^\w.:-]/g, "_"),
        fatal: true, before_first_frame: state.ttff_ms == null });
      beat();
      if (data.type === window.Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
      else if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else toast(`Playback failed: ${data.details}`, 8000);
    });
    hls.loadSource(play.manifest_url);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = play.manifest_url; // Safari plays HLS natively
    video.addEventListener("loadedmetadata", () => { if (play.resume_at_s > 0) video.currentTime = play.resume_at_s; }, { once: true });
    video.play().catch(() => {});
  } else {
    toast("This browser cannot play HLS video.", 8000);
  }
  video.addEventListener("error", () => state.errors.push(`video:${video.error?.code}`));

  // --- controls
  const toggle = () => (video.paused ? video.play() : video.pause());
  $("toggle").addEventListener("click", toggle);
  video.addEventListener("click", toggle);
  video.addEventListener("play", () => { $("toggle").textContent = "❚❚"; });
  video.addEventListener("pause", () => { $("toggle").textContent = "▶"; beat("paused"); });
  video.addEventListener("waiting", () => { $("spinner").hidden = false; });
  video.addEventListener("playing", () => { $("spinner").hidden = true; });
  video.addEventListener("canplay", () => { $("spinner").hidden = true; });
  $("back10").addEventListener("click", () => { video.currentTime = Math.max(0, video.currentTime - 10); });
  $("fwd10").addEventListener("click", () => { video.currentTime = Math.min(play.duration_s, video.currentTime + 10); });
  $("back").addEventListener("click", () => history.length > 1 ? history.back() : navigate(`/title/${titleId}`));
  $("fullscreen").addEventListener("click", () => (document.fullscreenElement ? document.exitFullscreen() : el.requestFullscreen()));
  video.addEventListener("timeupdate", () => {
    const d = video.duration || play.duration_s;
    $("time").textContent = `${fmt(video.currentTime)} / ${fmt(d)}`;
    el.querySelector(".played").style.width = `${(video.currentTime / d) * 100}%`;
    const b = video.buffered;
    if (b.length) el.querySelector(".buffered").style.width = `${(b.end(b.length - 1) / d) * 100}%`;
  });
  const seek = $("seek");
  const at = (e) => {
    const r = seek.getBoundingClientRect();
    return Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)) * (video.duration || play.duration_s);
  };
  seek.addEventListener("click", (e) => { video.currentTime = at(e); beat("seeking"); });
  const onKey = (e) => {
    if (e.key === " ") { e.preventDefault(); toggle(); }
    if (e.key === "ArrowLeft") video.currentTime -= 10;
    if (e.key === "ArrowRight") video.currentTime += 10;
    if (e.key === "Escape" && !document.fullscreenElement) $("back").click();
  };
  document.addEventListener("keydown", onKey);
  let idle;
  const wake = () => { el.classList.remove("idle"); clearTimeout(idle); idle = setTimeout(() => !video.paused && el.classList.add("idle"), 3000); };
  el.addEventListener("mousemove", wake);
  wake();

  // --- quality menu
  function drawQualities() {
    const hls = state.hls;
    if (!hls) return;
    const menu = $("quality-menu");
    const auto = hls.autoLevelEnabled;
    const current = hls.levels[hls.currentLevel];
    $("quality-button").textContent = auto ? `Auto${current ? ` (${current.height}p)` : ""}` : `${current?.height || ""}p`;
    const items = [["Auto", -1], ...hls.levels.map((l, i) => [`${l.height}p · ${(l.bitrate / 1e6).toFixed(1)} Mbps`, i])
      .sort((a, b) => hls.levels[b[1]].height - hls.levels[a[1]].height)];
    menu.replaceChildren(...items.map(([label, i]) => {
      const b = h(`<button data-level="${i}">${esc(label)}</button>`);
      b.classList.toggle("active", i === -1 ? auto : !auto && i === hls.currentLevel);
      b.addEventListener("click", () => { hls.currentLevel = i; menu.hidden = true; drawQualities(); });
      return b;
    }));
  }
  $("quality-button").addEventListener("click", () => { $("quality-menu").hidden = !$("quality-menu").hidden; });

  // --- trickplay previews
  if (play.thumbnails_url) loadThumbnails(play.thumbnails_url, seek, $("thumb"), () => prefix, at);

  // --- heartbeats: progress for resume, and a renewed signed prefix
  function takeReport() {
    settlePlaying();
    const out = {
      watched_ms: Math.min(Math.round(report.watchedMs), 60000),
      rebuffer_ms: Math.min(Math.round(report.rebufferMs), 60000),
      events: report.events.splice(0, MAX_EVENTS),
    };
    report.watchedMs = 0;
    report.rebufferMs = 0;
    return out;
  }
  async function beat(kind) {
    if (state.stopped) return;
    const level = state.hls?.levels?.[state.hls.currentLevel];
    const sent = takeReport();
    try {
      const r = await api(`/v1/playback/sessions/${play.session_id}/heartbeat`, {
        method: "POST",
        body: { position_s: video.currentTime || 0, state: kind || (video.paused ? "paused" : "playing"),
          rendition: level ? `${level.height}p` : null, ...sent },
      });
      prefix = r.media_prefix;
      state.beats = (state.beats || 0) + 1;
    } catch (err) {
      report.events.unshift(...sent.events); // kept for the next heartbeat
      if (err.status === 409) toast("This play session ended.");
    }
  }
  const timer = setInterval(() => beat(), play.heartbeat_interval_s * 1000);
  const stop = () => {
    if (state.stopped) return;
    state.stopped = true;
    const { access_token } = session.load();
    fetch(`/v1/playback/sessions/${play.session_id}/stop`, {
      method: "POST", keepalive: true,
      headers: { "content-type": "application/json", authorization: `Bearer ${access_token}` },
      body: JSON.stringify({ position_s: video.currentTime || 0, events: takeReport().events }),
    }).catch(() => {});
  };
  window.addEventListener("pagehide", stop);
  return () => {
    clearInterval(timer);
    stop();
    window.removeEventListener("pagehide", stop);
    document.removeEventListener("keydown", onKey);
    state.hls?.destroy();
  };
}

async function loadThumbnails(url, seek, thumb, currentPrefix, at) {
  const text = await fetch(url).then((r) => (r.ok ? r.text() : "")).catch(() => "");
  const cues = [];
  const re = /(\d+):(\d+):(\d+)\.(\d+) --> (\d+):(\d+):(\d+)\.(\d+)\s*\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)/g;
  for (let m; (m = re.exec(text));) {
    const t = (a, b, c, d) => +a * 3600 + +b * 60 + +c + +d / 1000;
    cues.push({ start: t(m[1], m[2], m[3], m[4]), end: t(m[5], m[6], m[7], m[8]), file: m[9],
      x: +m[10], y: +m[11], w: +m[12], h: +m[13] });
  }
  if (!cues.length) return;
  seek.addEventListener("mousemove", (e) => {
    const time = at(e);
    const cue = cues.find((c) => time >= c.start && time < c.end) || cues[cues.length - 1];
    const r = seek.getBoundingClientRect();
    Object.assign(thumb.style, {
      display: "block", width: `${cue.w}px`, height: `${cue.h}px`, left: `${e.clientX - r.left}px`,
      backgroundImage: `url('${currentPrefix()}trickplay/${cue.file}')`, backgroundPosition: `-${cue.x}px -${cue.y}px`,
    });
    thumb.querySelector("span").textContent = fmt(time);
  });
  seek.addEventListener("mouseleave", () => { thumb.style.display = "none"; });
}
