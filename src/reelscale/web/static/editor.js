// The editor page: pick a title, upload a source video in resumable chunks, and watch the
// transcode progress until the title is playable.
import { api } from "./api.js";
import { esc, h, toast } from "./app.js";

export async function renderEditor(root) {
  const el = h(`<div class="page editor"><h1>Upload a video</h1>
    <div class="field"><input id="title-search" placeholder="Find the title (type to search)" autocomplete="off"></div>
    <div id="title-results" class="grid" style="grid-template-columns:repeat(auto-fill,minmax(120px,1fr))"></div>
    <div id="chosen" hidden>
      <h2 id="chosen-name"></h2>
      <div class="dropzone" id="drop">Drop a video file here, or <label style="color:#fff;text-decoration:underline;cursor:pointer">
        choose one<input type="file" id="file" accept="video/*" hidden></label></div>
      <div id="uploads"></div>
      <h3>Assets</h3><table class="assets"><thead><tr><th>State</th><th>Source</th><th>Renditions</th><th>Job</th></tr></thead>
      <tbody id="assets"></tbody></table>
    </div></div>`);
  root.append(el);
  let chosen = null;
  let poll = null;
  let debounce;
  el.querySelector("#title-search").addEventListener("input", (e) => {
    clearTimeout(debounce);
    debounce = setTimeout(async () => {
      const q = e.target.value.trim();
      if (q.length < 2) return;
      const hits = await api(`/v1/catalog/search?q=${encodeURIComponent(q)}&limit=12`);
      el.querySelector("#title-results").replaceChildren(...hits.map(({ title }) => {
        const b = h(`<button class="card" style="border:0;padding:0" data-title="${title.id}">
          <img alt="${esc(title.name)}" src="/v1/catalog/artwork/${title.id}/poster.svg"></button>`);
        b.addEventListener("click", () => choose(title));
        return b;
      }));
    }, 250);
  });

  function choose(title) {
    chosen = title;
    el.querySelector("#chosen").hidden = false;
    el.querySelector("#chosen-name").textContent = `${title.name} (${title.release_year})`;
    el.querySelector("#title-results").replaceChildren();
    refreshAssets();
    clearInterval(poll);
    poll = setInterval(refreshAssets, 1000);
  }

  async function refreshAssets() {
    if (!chosen) return;
    const assets = await api(`/v1/media/titles/${chosen.id}/assets`).catch(() => []);
    el.querySelector("#assets").replaceChildren(...assets.map((a) => {
      const job = a.jobs[a.jobs.length - 1];
      const pct = Math.round((job?.progress || 0) * 100);
      const cls = a.state === "ready" ? "ok" : a.state === "failed" ? "bad" : "";
      return h(`<tr data-asset="${a.id}"><td><span class="pill ${cls}">${esc(a.state)}</span></td>
        <td>${a.width}×${a.height}, ${a.duration_s.toFixed(1)} s</td>
        <td>${a.renditions.map((r) => `<span class="pill">${esc(r.name)}</span>`).join("") || "—"}</td>
        <td style="min-width:220px">${job ? `<small>${esc(job.stage)} · ${pct}%</small>
          <div class="progress-line"><i style="width:${pct}%"></i></div>${job.error ? `<small class="error">${esc(job.error)}</small>` : ""}` : ""}</td></tr>`);
    }));
  }

  const drop = el.querySelector("#drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); send(e.dataTransfer.files[0]); });
  el.querySelector("#file").addEventListener("change", (e) => send(e.target.files[0]));

  async function send(file) {
    if (!file || !chosen) return;
    const line = h(`<div class="job"><b>${esc(file.name)}</b> <small>${(file.size / 1e6).toFixed(1)} MB</small>
      <div class="progress-line"><i></i></div><small class="status">starting…</small></div>`);
    el.querySelector("#uploads").prepend(line);
    const bar = line.querySelector("i");
    const status = line.querySelector(".status");
    try {
      let upload = await api("/v1/media/uploads", { method: "POST",
        body: { title_id: chosen.id, filename: file.name, size: file.size } });
      const chunk = Math.min(upload.chunk_max_bytes || 8 << 20, 8 << 20);
      let offset = 0;
      while (offset < file.size) {
        const r = await api(`/v1/media/uploads/${upload.id}`, { method: "PATCH", raw: true,
          body: file.slice(offset, offset + chunk),
          headers: { "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" } });
        const body = await r.json();
        if (r.status === 409 && body.upload_offset !== undefined) { offset = body.upload_offset; continue; }
        if (!r.ok) throw new Error(body.detail || `HTTP ${r.status}`);
        upload = body;
        offset = upload.received;
        bar.style.width = `${(offset / file.size) * 100}%`;
        status.textContent = `uploading ${Math.round((offset / file.size) * 100)}%`;
      }
      status.textContent = "received — transcoding (see below)";
      refreshAssets();
    } catch (err) {
      status.textContent = err.message;
      status.classList.add("error");
      toast(err.message, 6000);
    }
  }
  return () => clearInterval(poll);
}
