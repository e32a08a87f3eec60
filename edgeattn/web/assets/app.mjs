// The demo page: pick or drop an image, see the model's top-5 classes, the latency of that run, and
// the backend and thread count in use. Settings from the URL: ?backend=wasm|webgpu&threads=N.
import { imageToTensor, loadOrt, openSession, runTensor, topK } from "./edgeattn-web.mjs";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { site: null, ort: null, session: null, info: null, busy: false };

function status(text, kind) {
  $("status").textContent = text;
  $("status").dataset.state = kind;
}

function showInfo(info) {
  $("backend").textContent = info.backend + (info.adapter ? ` (${info.adapter})` : "");
  const simd = info.simd ? "SIMD" : "no SIMD";
  $("threads").textContent =
    info.backend === "wasm"
      ? `${info.threads} (${simd}; ${info.cross_origin_isolated ? "cross-origin isolated" : "not cross-origin isolated"})`
      : "n/a (GPU)";
  $("session").textContent = `${info.session_ms.toFixed(0)} ms`;
  $("runtime").textContent = `onnxruntime-web ${info.ort_web}`;
  $("isolation-note").hidden = info.cross_origin_isolated || info.backend !== "wasm";
}

function showTop5(rows) {
  const list = $("top5");
  list.replaceChildren();
  for (const row of rows) {
    const li = document.createElement("li");
    li.dataset.class = row.name;
    li.dataset.index = String(row.index);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = row.name;
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${(row.probability * 100).toFixed(1)}%`;
    bar.append(fill);
    const prob = document.createElement("span");
    prob.className = "prob";
    prob.textContent = `${(row.probability * 100).toFixed(1)} %`;
    li.append(name, bar, prob);
    list.append(li);
  }
}

async function classify(file) {
  if (!state.session || state.busy) return;
  state.busy = true;
  status(`Classifying ${file.name}…`, "running");
  try {
    const bitmap = await createImageBitmap(file);
    const input = imageToTensor(bitmap, state.site.input.spec, $("preview"));
    const dims = [1, 3, ...state.site.input.spec.size];
    const { output, ms } = await runTensor(state.ort, state.session, "float32", input, dims);
    const rows = topK(Array.from(output.data), state.site.classes, 5);
    showTop5(rows);
    $("latency").textContent = `${ms.toFixed(1)} ms`;
    document.body.dataset.top1 = rows[0].name;
    document.body.dataset.latencyMs = ms.toFixed(3);
    status(`${file.name}: ${rows[0].name} (${(rows[0].probability * 100).toFixed(1)} %)`, "done");
  } catch (err) {
    status(`Could not classify ${file.name}: ${err.message || err}`, "error");
  } finally {
    state.busy = false;
  }
}

async function start() {
  try {
    state.site = await (await fetch("edgeattn-web.json")).json();
  } catch (err) {
    status(`Cannot read edgeattn-web.json (${err.message}); serve this folder over http(s).`, "error");
    return;
  }
  const site = state.site;
  document.title = `${site.title} — in-browser classifier`;
  $("title").textContent = site.title;
  $("subtitle").textContent = `${site.precision.toUpperCase()} · ${site.classes.length} classes · ${site.input.spec.size.join("×")} input`;
  const backends = Object.keys(site.ort_web.backends);
  const backend = backends.includes(params.get("backend")) ? params.get("backend") : backends[0];
  if (backends.length > 1) {
    const choice = $("backend-choice");
    for (const b of backends) choice.append(new Option(b, b, false, b === backend));
    choice.hidden = false;
    choice.onchange = () => {
      params.set("backend", choice.value);
      location.search = params.toString();
    };
  }
  try {
    const threads = Number.parseInt(params.get("threads") || "0", 10);
    state.ort = await loadOrt(new URL(site.ort_web.dir + "/", location.href), backend, threads);
    const { session, info } = await openSession(state.ort, site.model, backend);
    state.session = session;
    state.info = info;
    showInfo(info);
    // One untimed-for-display run first: the first run pays one-off allocations and kernel setup, so
    // the latency shown per image is the steady-state one a deployed page sees.
    const dims = [1, 3, ...site.input.spec.size];
    const zeros = new Float32Array(dims.reduce((a, b) => a * b, 1));
    const warm = await runTensor(state.ort, session, "float32", zeros, dims);
    $("warmup").textContent = `${warm.ms.toFixed(1)} ms`;
    status("Ready: drop or choose an image.", "ready");
  } catch (err) {
    status(`Could not load the model on ${backend}: ${err.message || err}`, "error");
  }
}

const drop = $("drop");
$("file").addEventListener("change", (e) => e.target.files[0] && classify(e.target.files[0]));
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) classify(e.dataTransfer.files[0]);
});
start();
