// The vidlens web app: a hash-routed single page over the REST API. No build step, no dependencies.
// Every value that comes from the library is inserted as text (never as HTML).
"use strict";

const API = "/api/v1";
const view = document.getElementById("view");

// ---------------------------------------------------------------------------------------------------
// small helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style") el.setAttribute("style", v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function token() { return localStorage.getItem("vidlens.token") || ""; }

class ApiError extends Error {
  constructor(status, detail) { super(typeof detail === "string" ? detail : JSON.stringify(detail)); this.status = status; }
}

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (token()) headers["Authorization"] = "Bearer " + token();
  if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.json); }
  const res = await fetch(API + path, { method: opts.method || "GET", headers, body: opts.body });
  const isJson = (res.headers.get("content-type") || "").includes("json");
  const data = isJson ? await res.json() : await res.text();
  if (!res.ok) throw new ApiError(res.status, (data && data.detail) || data || res.statusText);
  return data;
}

function fmtDuration(s) {
  s = Math.round(Number(s) || 0);
  const m = Math.floor(s / 60), r = s % 60;
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(r).padStart(2, "0")}`
                 : `${m}:${String(r).padStart(2, "0")}`;
}
function fmtTime(s) { return s === null || s === undefined ? "" : fmtDuration(s); }
function fmtBytes(n) {
  const u = ["B", "KB", "MB", "GB"]; let i = 0; n = Number(n) || 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}
function pct(x) { return `${(100 * (Number(x) || 0)).toFixed(1)}%`; }

function errorBox(err) { return h("p", { class: "error" }, t("common.error", { e: err.message || err })); }
function section(title, ...body) { return h("section", { class: "card" }, h("h2", {}, title), ...body); }
function render(...nodes) { view.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false)); }

function sendFeedback(event) {
  if (!token()) return;  // feedback is a write: only with a token
  api("/feedback", { method: "POST", json: { events: [event] } }).catch(() => {});
}

function videoCard(item, query, position) {
  const thumb = item.thumbnail_url
    ? h("img", { src: item.thumbnail_url, alt: "", loading: "lazy" })
    : h("div", { class: "thumb-placeholder" }, "▶");
  return h("a", {
      class: "video-card", href: `#/video/${item.id}`, dataset: { videoId: item.id },
      onclick: () => query && sendFeedback({ event: "click", video_id: item.id, query, position }),
    },
    h("div", { class: "thumb" }, thumb, h("span", { class: "badge" }, fmtDuration(item.duration))),
    h("div", { class: "video-title" }, item.title || item.id.slice(0, 10)),
    item.score !== undefined
      ? h("div", { class: "muted small" }, `${t("video.score")} ${Number(item.score).toFixed(2)}`,
          item.matched && item.matched.length ? ` · ${t("search.matched")}: ${item.matched.join(", ")}` : "")
      : null);
}

function barChart(rows, { width = 560, bar = 20, labelWidth = 150 } = {}) {
  // rows: [{label, value, title?}]; horizontal bars scaled to the largest value.
  const max = Math.max(1, ...rows.map((r) => r.value));
  const height = rows.length * (bar + 6) + 4;
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, width, role: "img" });
  rows.forEach((r, i) => {
    const y = i * (bar + 6) + 2;
    const w = Math.max(1, ((width - labelWidth - 60) * r.value) / max);
    chart.append(
      svg("text", { x: labelWidth - 6, y: y + bar * 0.72, "text-anchor": "end", class: "chart-label" }, r.label),
      svg("rect", { x: labelWidth, y, width: w, height: bar, rx: 3, class: "chart-bar" }, svg("title", {}, r.title || `${r.label}: ${r.value}`)),
      svg("text", { x: labelWidth + w + 6, y: y + bar * 0.72, class: "chart-value" }, r.display || String(r.value)));
  });
  return chart;
}

// ---------------------------------------------------------------------------------------------------
// pages

async function overviewPage() {
  render(h("p", { class: "muted" }, t("common.loading")));
  const [status, videos, jobs] = await Promise.all([api("/status"), api("/videos?limit=12"), api("/jobs?limit=8")]);
  const cards = h("div", { class: "stats" },
    [["overview.videos", status.videos], ["overview.hours", (status.total_duration_s / 3600).toFixed(2)],
     ["overview.audio", status.with_audio], ["overview.errors", status.errors],
     ["overview.jobs", `${status.jobs.running} / ${status.jobs.queued}`]]
      .map(([k, v]) => h("div", { class: "stat" }, h("div", { class: "stat-value", id: `stat-${k.split(".")[1]}` }, v),
                         h("div", { class: "muted" }, t(k)))));
  let categories;
  if (status.categories && status.categories.length) {
    const rows = status.categories.map((c) => ({ label: c.name, value: c.count || 0 }));
    categories = barChart(rows.sort((a, b) => b.value - a.value).slice(0, 30));
  } else {
    categories = h("p", { class: "muted" }, t("overview.no_categories"));
  }
  const features = h("table", { class: "table" },
    h("tbody", {}, Object.entries(status.features).map(([f, counts]) =>
      h("tr", {}, h("td", {}, f), h("td", {}, Object.entries(counts).map(([k, v]) => `${k}: ${v}`).join(" · "))))));
  const recent = videos.items.length
    ? h("div", { class: "grid" }, videos.items.map((v) => videoCard(v)))
    : h("p", { class: "muted" }, t("overview.empty"));
  const jobRows = h("table", { class: "table" }, h("tbody", {}, jobs.map((j) =>
    h("tr", {}, h("td", {}, j.kind), h("td", { class: `status-${j.status}` }, j.status),
      h("td", {}, j.total !== null ? `${j.done}/${j.total}` : ""), h("td", { class: "muted small" }, j.message || j.error || "")))));
  render(h("h1", {}, t("overview.title")), cards,
    section(t("overview.categories"), categories),
    section(t("overview.recent"), recent),
    h("div", { class: "two-col" }, section(t("overview.features"), features), section(t("overview.recent_jobs"), jobRows)));
}

async function searchPage(params) {
  const q = params.get("q") || "";
  const input = h("input", { id: "search-input", type: "search", name: "q", value: q, placeholder: t("search.placeholder"), autofocus: true });
  const minD = h("input", { id: "filter-min", type: "number", min: 0, step: 1, value: params.get("min_duration") || "", placeholder: t("search.min") });
  const maxD = h("input", { id: "filter-max", type: "number", min: 0, step: 1, value: params.get("max_duration") || "", placeholder: t("search.max") });
  const speech = h("select", { id: "filter-speech" },
    h("option", { value: "" }, t("search.any")), h("option", { value: "true" }, t("search.yes")), h("option", { value: "false" }, t("search.no")));
  speech.value = params.get("has_speech") || "";
  const lang = h("select", { id: "filter-lang" }, ["", "zh", "en"].map((l) => h("option", { value: l }, l || t("search.any"))));
  lang.value = params.get("language") || "";
  const category = h("input", { id: "filter-category", type: "text", value: params.get("category") || "", placeholder: t("search.category") });
  const form = h("form", { class: "search-form", onsubmit: (e) => {
      e.preventDefault();
      const p = new URLSearchParams();
      if (input.value.trim()) p.set("q", input.value.trim());
      if (minD.value) p.set("min_duration", minD.value);
      if (maxD.value) p.set("max_duration", maxD.value);
      if (speech.value) p.set("has_speech", speech.value);
      if (lang.value) p.set("language", lang.value);
      if (category.value.trim()) p.set("category", category.value.trim());
      location.hash = `#/search?${p}`;
    } },
    h("div", { class: "row" }, input, h("button", { id: "search-button", type: "submit" }, t("search.button"))),
    h("div", { class: "row filters" },
      h("label", {}, t("search.min"), minD), h("label", {}, t("search.max"), maxD),
      h("label", {}, t("search.speech"), speech), h("label", {}, t("search.lang"), lang),
      h("label", {}, t("search.category"), category)));
  const results = h("div", { id: "search-results" });
  render(h("h1", {}, t("search.title")), form, results);
  if (!q) return;
  results.append(h("p", { class: "muted" }, t("common.loading")));
  const p = new URLSearchParams(params); p.set("limit", "48");
  try {
    const data = await api(`/search?${p}`);
    results.replaceChildren(
      h("p", { class: "muted", id: "search-count" }, t("search.results", { n: data.total }), ` · ${t("search.engine")}: ${data.engine}`),
      data.items.length
        ? h("div", { class: "grid" }, data.items.map((item, i) => videoCard(item, q, i)))
        : h("p", {}, t("search.none")));
  } catch (err) { results.replaceChildren(errorBox(err)); }
}

function uploadPage() {
  const file = h("input", { id: "upload-file", type: "file", accept: "video/*,audio/*", required: true });
  const title = h("input", { id: "upload-title", type: "text", maxlength: 500 });
  const summary = h("textarea", { id: "upload-summary", rows: 3, maxlength: 5000 });
  const statusLine = h("p", { id: "upload-status", class: "muted" });
  const bar = h("progress", { id: "upload-progress", max: 100, value: 0, hidden: true });
  const result = h("div", { id: "upload-result" });
  const button = h("button", { id: "upload-button", type: "submit" }, t("upload.button"));
  const form = h("form", { class: "upload-form", onsubmit: async (e) => {
      e.preventDefault();
      if (!token()) { statusLine.textContent = t("token.missing"); return; }
      if (!file.files.length) return;
      button.disabled = true; bar.hidden = false; result.replaceChildren();
      try {
        const answer = await uploadFile(file.files[0], title.value, summary.value, (p) => {
          bar.value = p; statusLine.textContent = t("upload.sending", { p });
        });
        if (answer.status !== "added") result.append(h("p", { class: "muted" }, t("upload.exists")));
        const link = h("a", { id: "upload-open", href: `#/video/${answer.video_id}` }, t("upload.open"));
        if (answer.job) {
          statusLine.textContent = t("upload.queued");
          const job = await followJob(answer.job.id, (j) => {
            if (j.total) { bar.value = Math.round((100 * j.done) / j.total); }
            statusLine.textContent = t("upload.progress", { done: j.done, total: j.total ?? "?" });
          });
          statusLine.textContent = job.status === "done" ? t("upload.done") : t("upload.failed", { e: job.error || job.status });
          statusLine.dataset.state = job.status;
        }
        result.append(link);
      } catch (err) {
        statusLine.textContent = t("common.error", { e: err.message }); statusLine.dataset.state = "error";
      } finally { button.disabled = false; }
    } },
    h("label", {}, t("upload.file"), file), h("label", {}, t("upload.vtitle"), title),
    h("label", {}, t("upload.summary"), summary), button);
  render(h("h1", {}, t("upload.title")), section("", form, bar, statusLine, result));
}

function uploadFile(file, title, summary, onProgress) {
  // The raw file is the request body (streamed by the browser); metadata goes in the query string.
  return new Promise((resolve, reject) => {
    const p = new URLSearchParams();
    if (title.trim()) p.set("title", title.trim());
    if (summary.trim()) p.set("summary", summary.trim());
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${API}/videos?${p}`);
    xhr.setRequestHeader("Authorization", "Bearer " + token());
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(Math.round((100 * e.loaded) / e.total));
    xhr.onload = () => {
      let body; try { body = JSON.parse(xhr.responseText); } catch { body = { detail: xhr.responseText }; }
      xhr.status < 300 ? resolve(body) : reject(new ApiError(xhr.status, body.detail || xhr.statusText));
    };
    xhr.onerror = () => reject(new Error("network error"));
    xhr.send(file);
  });
}

async function followJob(id, onUpdate) {
  for (;;) {
    const job = await api(`/jobs/${id}`);
    onUpdate(job);
    if (["done", "failed", "cancelled"].includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function videoPage(id) {
  render(h("p", { class: "muted" }, t("common.loading")));
  const v = await api(`/videos/${encodeURIComponent(id)}`);
  const player = v.has_video
    ? h("video", { id: "player", controls: true, preload: "metadata", src: v.media_url, poster: v.thumbnail_url || null })
    : h("audio", { id: "player", controls: true, preload: "metadata", src: v.media_url });
  const seek = (s) => { player.currentTime = Number(s) || 0; player.play().catch(() => {}); };
  player.addEventListener("play", () => sendFeedback({ event: "play", video_id: v.id }), { once: true });

  const cats = v.categories.length
    ? h("ul", { class: "scores", id: "video-categories" }, v.categories.map((c) =>
        h("li", {}, h("span", {}, c.level2 ? `${c.level1 || ""} › ${c.level2}` : (c.name || c.level1 || "")),
          h("meter", { min: 0, max: 1, value: c.score ?? c.confidence ?? 0 }), h("span", { class: "muted" }, pct(c.score ?? c.confidence)))))
    : h("p", { class: "muted" }, t("video.no_categories"));
  const tags = v.tags.length
    ? h("table", { class: "table", id: "video-tags" }, h("thead", {}, h("tr", {}, h("th", {}, t("video.tags")), h("th", {}, t("video.score")), h("th", {}, t("video.channel")))),
        h("tbody", {}, v.tags.map((g) => h("tr", {}, h("td", {}, g.name || g.tag), h("td", {}, Number(g.score || 0).toFixed(3)),
          h("td", { class: "muted" }, [g.role, Array.isArray(g.channels) ? g.channels.join(", ") : g.channel].filter(Boolean).join(" · "))))))
    : h("p", { class: "muted" }, t("video.no_tags"));
  const transcript = v.transcript && v.transcript.text
    ? h("div", { id: "video-transcript" },
        h("p", { class: "muted small" }, v.transcript.language || ""),
        h("ol", { class: "segments" }, (v.transcript.segments.length ? v.transcript.segments : [{ start: 0, end: 0, text: v.transcript.text }])
          .map((s) => h("li", {}, h("button", { class: "link", type: "button", onclick: () => seek(s.start) }, fmtTime(s.start)), " ", s.text))))
    : h("p", { class: "muted", id: "video-transcript" }, t("video.none"));
  const ocr = v.ocr.length
    ? h("ul", { id: "video-ocr", class: "segments" }, v.ocr.map((l) =>
        h("li", {}, h("button", { class: "link", type: "button", onclick: () => seek(l.start) }, fmtTime(l.start)), " ", l.text,
          l.score !== null && l.score !== undefined ? h("span", { class: "muted small" }, ` (${Number(l.score).toFixed(2)})`) : "")))
    : h("p", { class: "muted", id: "video-ocr" }, t("video.none"));
  const concepts = v.concepts.length
    ? h("p", {}, v.concepts.map((c) => h("span", { class: "chip" }, `${c.name} ${Number(c.score).toFixed(2)}`)))
    : h("p", { class: "muted" }, t("video.none"));
  const meta = h("table", { class: "table" }, h("tbody", {},
    [[t("video.duration"), fmtDuration(v.duration)], [t("video.size"), fmtBytes(v.size_bytes)],
     ["", v.width ? `${v.width}×${v.height} · ${v.fps ? v.fps.toFixed(1) + " fps" : ""}` : ""],
     ["container", v.container || ""], ["labels", (v.labels || []).join(", ")], ["id", v.id]]
      .filter(([, val]) => val).map(([k, val]) => h("tr", {}, h("td", { class: "muted" }, k), h("td", {}, val)))));
  const features = h("p", {}, Object.entries(v.features).map(([f, s]) =>
    h("span", { class: `chip status-${s.status}`, title: s.message || "" }, `${f}: ${s.status}`)));
  const similar = h("div", { id: "video-similar" }, h("p", { class: "muted" }, t("common.loading")));

  render(
    h("h1", { id: "video-title" }, v.title || v.id),
    v.summary ? h("p", { class: "muted" }, v.summary) : null,
    h("div", { class: "video-layout" },
      h("div", {}, player, section(t("video.transcript"), transcript), section(t("video.ocr"), ocr)),
      h("div", {}, section(t("video.categories"), cats), section(t("video.tags"), tags),
        section(t("video.concepts"), concepts), section(t("video.meta"), meta), section(t("video.features"), features),
        v.errors.length ? section(t("video.errors"), h("ul", {}, v.errors.map((e) => h("li", { class: "error" }, `${e.stage}: ${e.message}`)))) : null)),
    section(t("video.similar"), similar));
  try {
    const sim = await api(`/videos/${v.id}/similar?limit=8`);
    similar.replaceChildren(sim.items.length ? h("div", { class: "grid" }, sim.items.map((item) => videoCard(item))) : h("p", { class: "muted" }, t("video.none")));
  } catch (err) { similar.replaceChildren(errorBox(err)); }
}

async function tagsPage() {
  render(h("h1", {}, t("tags.title")), h("p", { class: "muted" }, t("common.loading")));
  let data;
  try { data = await api("/tags/candidates"); } catch (err) {
    render(h("h1", {}, t("tags.title")), err.status === 404 ? h("p", { class: "muted", id: "tags-unavailable" }, t("tags.unavailable")) : errorBox(err));
    return;
  }
  const items = Array.isArray(data) ? data : (data.items || data.candidates || []);
  const list = h("table", { class: "table", id: "tag-candidates" }, h("tbody", {}, items.map((c) => {
    const id = c.id ?? c.name ?? c.tag;
    const row = h("tr", { dataset: { tagId: id } }, h("td", {}, c.name || c.tag || String(id)), h("td", { class: "muted" }, c.score !== undefined && c.score !== null ? Number(c.score).toFixed(3) : ""),
      h("td", { class: "muted small" }, [c.kind, c.source, ...((c.evidence && c.evidence.examples) || [])].filter(Boolean).slice(0, 5).join(" · ")),
      h("td", {},
        h("button", { type: "button", onclick: () => review(id, "approve", row) }, t("tags.approve")), " ",
        h("button", { type: "button", class: "secondary", onclick: () => review(id, "reject", row) }, t("tags.reject"))));
    return row;
  })));
  render(h("h1", {}, t("tags.title")), items.length ? list : h("p", { class: "muted" }, t("tags.empty")));
}

async function review(id, decision, row) {
  try {
    await api(`/tags/${encodeURIComponent(id)}/${decision}`, { method: "POST" });
    row.remove();
  } catch (err) { row.append(h("td", { class: "error" }, err.message)); }
}

async function reportsPage(name) {
  if (name) return reportView(name);
  const list = await api("/reports");
  render(h("h1", {}, t("reports.title")), list.length
    ? h("table", { class: "table", id: "report-list" }, h("tbody", {}, list.map((r) => h("tr", {},
        h("td", {}, h("a", { href: `#/reports/${r.name}` }, r.name)), h("td", { class: "muted" }, r.kind),
        h("td", { class: "muted" }, fmtBytes(r.size_bytes)), h("td", { class: "muted small" }, r.modified.slice(0, 19).replace("T", " "))))))
    : h("p", { class: "muted" }, t("reports.empty")));
}

function findKey(obj, names) {
  for (const n of names) if (obj && obj[n] !== undefined) return obj[n];
  return undefined;
}

async function reportView(name) {
  const url = `${API}/reports/${name.split("/").map(encodeURIComponent).join("/")}`;
  const back = h("a", { href: "#/reports" }, "← ", t("common.back"));
  const ext = name.split(".").pop().toLowerCase();
  if (ext === "html" || ext === "htm") {
    render(back, h("h1", {}, name), h("iframe", { class: "report-frame", sandbox: "", src: url }));
    return;
  }
  if (["png", "jpg", "svg"].includes(ext)) { render(back, h("h1", {}, name), h("img", { src: url, class: "report-image" })); return; }
  if (ext !== "json") { const text = await (await fetch(url)).text(); render(back, h("h1", {}, name), h("pre", {}, text)); return; }
  const report = await api(`/reports/${name.split("/").map(encodeURIComponent).join("/")}`);
  const parts = [back, h("h1", {}, name)];
  const scalars = Object.entries(report).filter(([, v]) => v === null || ["string", "number", "boolean"].includes(typeof v));
  if (scalars.length) parts.push(section(t("reports.summary"), h("table", { class: "table" }, h("tbody", {}, scalars.map(([k, v]) =>
    h("tr", {}, h("td", { class: "muted" }, k), h("td", {}, typeof v === "number" ? (Number.isInteger(v) ? v : v.toFixed(4)) : String(v))))))));
  const perClass = findKey(report, ["per_class", "per_class_metrics", "classes"]);
  if (perClass && typeof perClass === "object") {
    const rows = Array.isArray(perClass) ? perClass : Object.entries(perClass).map(([k, v]) => Object.assign({ class: k }, v));
    const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    parts.push(section(t("reports.per_class"), h("table", { class: "table", id: "report-per-class" },
      h("thead", {}, h("tr", {}, cols.map((c) => h("th", {}, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, cols.map((c) => h("td", {}, typeof r[c] === "number" && !Number.isInteger(r[c]) ? r[c].toFixed(3) : String(r[c] ?? "")))))))));
  }
  const confusion = findKey(report, ["confusion_matrix", "confusion"]);
  if (confusion) {
    const matrix = Array.isArray(confusion) ? confusion : confusion.matrix;
    const labels = (!Array.isArray(confusion) && confusion.labels) || report.labels || (matrix || []).map((_, i) => String(i));
    if (Array.isArray(matrix)) {
      const max = Math.max(1, ...matrix.flat());
      parts.push(section(t("reports.confusion"), h("div", { class: "scroll" }, h("table", { class: "confusion", id: "report-confusion" },
        h("thead", {}, h("tr", {}, h("th", {}, ""), labels.map((l) => h("th", { class: "vertical" }, l)))),
        h("tbody", {}, matrix.map((row, i) => h("tr", {}, h("th", {}, labels[i]), row.map((n) =>
          h("td", { style: `background: rgba(37, 99, 235, ${(n / max).toFixed(3)}); color: ${n / max > 0.5 ? "#fff" : "inherit"}` }, n)))))))));
    }
  }
  const modalities = findKey(report, ["modality_contribution", "modality_contributions", "modalities"]);
  if (modalities && typeof modalities === "object" && !Array.isArray(modalities)) {
    const rows = Object.entries(modalities).filter(([, v]) => typeof v === "number")
      .map(([k, v]) => ({ label: k, value: Math.abs(v), display: Number(v).toFixed(3) }));
    if (rows.length) parts.push(section(t("reports.modalities"), barChart(rows)));
  }
  parts.push(h("details", {}, h("summary", {}, t("reports.raw")), h("pre", {}, JSON.stringify(report, null, 2))));
  render(...parts);
}

// ---------------------------------------------------------------------------------------------------
// routing and chrome

async function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || "");
  const page = parts[0] || "overview";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.route === page);
  try {
    if (page === "search") await searchPage(params);
    else if (page === "upload") uploadPage();
    else if (page === "video" && parts[1]) await videoPage(parts[1]);
    else if (page === "tags") await tagsPage();
    else if (page === "reports") await reportsPage(parts.slice(1).join("/"));
    else await overviewPage();
  } catch (err) { render(errorBox(err)); }
}

function setupChrome() {
  applyStaticText();
  document.getElementById("lang-toggle").addEventListener("click", () => {
    localStorage.setItem("vidlens.lang", currentLang() === "zh" ? "en" : "zh");
    applyStaticText(); route();
  });
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  const button = document.getElementById("token-button");
  const mark = () => { button.classList.toggle("has-token", !!token()); button.title = token() ? t("token.set") : ""; };
  button.addEventListener("click", () => { input.value = token(); dialog.showModal(); });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "save") localStorage.setItem("vidlens.token", input.value.trim());
    if (dialog.returnValue === "clear") localStorage.removeItem("vidlens.token");
    mark();
  });
  mark();
  fetch("/healthz").then((r) => r.json()).then((hz) => {
    document.getElementById("footer").textContent = t("footer", { v: hz.version });
  }).catch(() => {});
}

window.addEventListener("hashchange", route);
setupChrome();
route();
