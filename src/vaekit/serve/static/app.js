// The latent explorer: plain JavaScript over the vaekit HTTP API (no build step, no dependencies).
"use strict";

const $ = (id) => document.getElementById(id);
const PALETTE = ["#3b5bdb", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#f08c00", "#5c940d", "#862e9c", "#495057"];
// State shared by the panels; exposed for the browser tests and the curious (window.vaekit).
const state = { run: null, detail: null, z: [], label: null, seed: 0, map: null, picked: null,
                stats: { decodes: 0, lastMs: null, totalMs: 0 } };
window.vaekit = state;

// -- talking to the API --------------------------------------------------------------------
function runPath(suffix) { return `/api/runs/${encodeURIComponent(state.run)}${suffix}`; }

async function api(path, options = {}, retry = true) {
  const headers = new Headers(options.headers || {});
  const token = sessionStorage.getItem("vaekit-token");
  if (token) headers.set("Authorization", `Bearer ${token}`);
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401 && retry) {
    const given = window.prompt("This server needs its access token:");
    if (given) { sessionStorage.setItem("vaekit-token", given.trim()); return api(path, options, false); }
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

const postJson = (body) => ({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
function setStatus(message) { $("status").textContent = message || ""; }

async function showBlob(img, response) {
  const url = URL.createObjectURL(await response.blob());
  const old = img.dataset.url;
  img.src = url;
  img.dataset.url = url;
  img.hidden = false;
  try { await img.decode(); } catch (e) { /* an empty image; the status says why */ }
  if (old) URL.revokeObjectURL(old);
}

// Run `task` with the latest arguments, one call at a time: while one is in flight, later calls
// only remember that another run is due (a slider fires far faster than a round trip).
function latestOnly(task) {
  let running = false, again = false;
  return async function run() {
    if (running) { again = true; return; }
    running = true;
    try {
      do { again = false; await task(); } while (again);
    } catch (e) { setStatus(e.message); } finally { running = false; }
  };
}

function withLabel(body) {
  if (state.detail && state.detail.conditional) body.label = state.label;
  return body;
}

// -- runs ------------------------------------------------------------------------------------
async function loadRuns() {
  const runs = await (await api("/api/runs")).json();
  const select = $("run-select");
  select.innerHTML = "";
  for (const run of runs) {
    const option = document.createElement("option");
    option.value = run.name;
    option.textContent = `${run.name} (${run.family}, ${run.latent_dim}-D${run.kind === "anomaly" ? ", detector" : ""})`;
    select.append(option);
  }
  if (!runs.length) { setStatus("No runs in this directory yet: train one with `vaekit train`."); return; }
  const wanted = new URLSearchParams(location.search).get("run");
  select.value = runs.some((r) => r.name === wanted) ? wanted : runs[0].name;
  await selectRun(select.value);
}

async function selectRun(name) {
  setStatus("");
  state.run = name;
  state.detail = await (await api(runPath(""))).json();
  const d = state.detail;
  const test = (d.metrics && d.metrics.test) || {};
  $("run-info").textContent = `${d.family} · latent ${d.latent_dim} · input ${d.input_shape.join("×")}` +
    (test.elbo !== undefined ? ` · test ELBO ${Number(test.elbo).toFixed(2)}` : "");
  for (const id of ["explore-card", "map-card", "interp-card", "sample-card"]) $(id).hidden = !d.image;
  $("map-card").hidden = !d.image || !d.has_data;
  $("anomaly-card").hidden = !(d.kind === "anomaly" && d.image);
  $("sampler").querySelector('option[value="gmm"]').disabled = !d.has_data;
  $("sampler").querySelector('option[value="diffusion"]').disabled = !d.has_diffusion;
  if (!d.has_data || ($("sampler").value === "diffusion" && !d.has_diffusion)) $("sampler").value = "prior";
  if (!d.image) setStatus(`Run ${name} models table rows: the page draws images only; use the API (/docs).`);
  setupLabels();
  state.z = new Array(d.latent_dim).fill(0);
  buildSliders();
  if (d.image) {
    decode();
    drawSamples();
    if (d.has_data) loadMap();
  }
}

function setupLabels() {
  const d = state.detail, select = $("label-select");
  $("label-row").hidden = !d.conditional;
  select.innerHTML = "";
  state.label = d.conditional ? 0 : null;
  if (!d.conditional) return;
  for (let k = 0; k < d.num_classes; k++) {
    const option = document.createElement("option");
    option.value = k;
    option.textContent = d.class_names ? d.class_names[k] : String(k);
    select.append(option);
  }
}

// -- sliders and the live decode ----------------------------------------------------------------
function buildSliders() {
  const box = $("sliders"), d = state.detail;
  box.innerHTML = "";
  for (const dim of d.dims_by_kl) {
    const kl = d.kl_per_dim ? d.kl_per_dim[dim] : null;
    const row = document.createElement("label");
    row.className = "dim" + (kl !== null && kl < 0.01 ? " collapsed" : "");
    row.title = kl === null ? "" : `mean KL ${kl.toFixed(3)} nats${kl < 0.01 ? " (collapsed: unused)" : ""}`;
    const name = document.createElement("span");
    name.textContent = `z${dim}` + (kl === null ? "" : ` · ${kl.toFixed(2)}`);
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: -3, max: 3, step: 0.02, value: 0 });
    input.className = "dim-slider";
    input.dataset.dim = dim;
    const out = document.createElement("output");
    out.textContent = "0.00";
    input.addEventListener("input", () => {
      state.z[dim] = Number(input.value);
      out.textContent = Number(input.value).toFixed(2);
      decode();
    });
    row.append(name, input, out);
    box.append(row);
  }
}

function setCode(code) {
  state.z = code.map(Number);
  for (const input of document.querySelectorAll(".dim-slider")) {
    const v = state.z[Number(input.dataset.dim)];
    input.value = v;
    input.nextElementSibling.textContent = v.toFixed(2);
  }
  decode();
}

const decode = latestOnly(async () => {
  const started = performance.now();
  const response = await api(runPath("/decode"), postJson(withLabel({ z: state.z.slice() })));
  await showBlob($("decoded"), response);
  const ms = performance.now() - started;
  Object.assign(state.stats, { decodes: state.stats.decodes + 1, lastMs: ms, totalMs: state.stats.totalMs + ms });
  $("decode-time").textContent = `decoded in ${ms.toFixed(1)} ms`;
});

// -- the latent map ----------------------------------------------------------------------------
async function loadMap() {
  const run = state.run;
  state.map = null;
  $("map-info").textContent = "Computing the map of the test-set codes…";
  drawMap();
  try {
    const map = await (await api(runPath("/map?n=500"))).json();
    if (run !== state.run) return;
    state.map = map;
    $("map-info").textContent = `${map.points.length} ${map.split} codes (${map.method}); click a point to decode it.`;
    drawMap();
  } catch (e) { $("map-info").textContent = `No map: ${e.message}`; }
}

function mapScale() {
  const canvas = $("map"), pad = 14, pts = state.map.points;
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (canvas.width - 2 * pad) / (x1 - x0 || 1), sy = (canvas.height - 2 * pad) / (y1 - y0 || 1);
  return (p) => [pad + (p[0] - x0) * sx, canvas.height - pad - (p[1] - y0) * sy];
}

function drawMap() {
  const canvas = $("map"), ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.map) return;
  const place = mapScale(), labels = state.map.labels;
  state.map.points.forEach((p, i) => {
    const [x, y] = place(p);
    ctx.fillStyle = labels ? PALETTE[labels[i] % PALETTE.length] : PALETTE[0];
    ctx.globalAlpha = 0.7;
    ctx.beginPath(); ctx.arc(x, y, 3, 0, 2 * Math.PI); ctx.fill();
  });
  ctx.globalAlpha = 1;
  if (state.picked !== null) {
    const [x, y] = place(state.map.points[state.picked]);
    ctx.strokeStyle = "#1d2430"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(x, y, 7, 0, 2 * Math.PI); ctx.stroke();
  }
}

// Where point i is drawn, in CSS pixels from the canvas's top-left corner (for tests and tools).
state.pointOnCanvas = (i) => {
  const canvas = $("map"), box = canvas.getBoundingClientRect(), [x, y] = mapScale()(state.map.points[i]);
  return { x: x * box.width / canvas.width, y: y * box.height / canvas.height };
};

$("map").addEventListener("click", (event) => {
  if (!state.map) return;
  const canvas = $("map"), box = canvas.getBoundingClientRect();
  const cx = (event.clientX - box.left) * canvas.width / box.width, cy = (event.clientY - box.top) * canvas.height / box.height;
  const place = mapScale();
  let best = null, bestDistance = Infinity;
  state.map.points.forEach((p, i) => {
    const [x, y] = place(p), distance = (x - cx) ** 2 + (y - cy) ** 2;
    if (distance < bestDistance) { best = i; bestDistance = distance; }
  });
  if (best === null || bestDistance > 20 ** 2) return;
  state.picked = best;
  if (state.detail.conditional && state.map.labels) { state.label = state.map.labels[best]; $("label-select").value = state.label; }
  drawMap();
  setCode(state.map.codes[best]);
});

// -- interpolation, samples, anomaly --------------------------------------------------------------
const interpolate = latestOnly(async () => {
  const a = $("file-a").files[0], b = $("file-b").files[0];
  if (!a || !b) return;
  const form = new FormData();
  form.append("file_a", a);
  form.append("file_b", b);
  form.append("steps", $("steps").value);
  if (state.detail.conditional) { form.append("label_a", state.label); form.append("label_b", state.label); }
  await showBlob($("strip"), await api(runPath("/interpolate"), { method: "POST", body: form }));
});

const drawSamples = latestOnly(async () => {
  const body = withLabel({ n: 16, nrow: 8, temperature: Number($("temperature").value), sampler: $("sampler").value,
                           seed: state.seed });
  await showBlob($("samples"), await api(runPath("/sample"), postJson(body)));
});

async function scoreUpload() {
  const file = $("anomaly-file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  try {
    const s = await (await api(runPath("/anomaly"), { method: "POST", body: form })).json();
    const scale = Math.max(s.score, s.threshold) * 1.25 || 1;
    $("anomaly-result").hidden = false;
    $("anomaly-bar").style.width = `${Math.min(100, (100 * s.score) / scale)}%`;
    $("anomaly-bar").className = s.anomaly ? "bad" : "";
    $("anomaly-threshold").style.left = `${(100 * s.threshold) / scale}%`;
    $("anomaly-text").textContent = `${s.anomaly ? "Anomalous" : "Normal"}: score ${s.score.toPrecision(4)} (${s.score_name}) ` +
      `${s.anomaly ? ">" : "≤"} threshold ${s.threshold.toPrecision(4)}`;
  } catch (e) { setStatus(e.message); }
}

// -- wiring ------------------------------------------------------------------------------------
$("run-select").addEventListener("change", (e) => {
  history.replaceState(null, "", `?run=${encodeURIComponent(e.target.value)}`);
  selectRun(e.target.value).catch((err) => setStatus(err.message));
});
$("label-select").addEventListener("change", (e) => { state.label = Number(e.target.value); decode(); drawSamples(); });
$("zero-button").addEventListener("click", () => setCode(new Array(state.detail.latent_dim).fill(0)));
$("random-button").addEventListener("click", () => {
  const normal = () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
  setCode(state.z.map(() => Math.max(-3, Math.min(3, normal()))));
});
$("file-a").addEventListener("change", interpolate);
$("file-b").addEventListener("change", interpolate);
$("steps").addEventListener("input", () => { $("steps-out").textContent = $("steps").value; interpolate(); });
$("temperature").addEventListener("input", () => {
  $("temperature-out").textContent = Number($("temperature").value).toFixed(1);
  drawSamples();
});
$("sampler").addEventListener("change", drawSamples);
$("resample-button").addEventListener("click", () => { state.seed += 1; drawSamples(); });
$("anomaly-file").addEventListener("change", scoreUpload);
for (const zone of document.querySelectorAll(".drop")) {
  const input = zone.querySelector("input");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) { input.files = e.dataTransfer.files; input.dispatchEvent(new Event("change")); }
  });
}

loadRuns().catch((e) => setStatus(e.message));
