// edgeattn's browser inference core: load ONNX Runtime Web, open the model, turn an image into the
// model's input exactly as its manifest says, run it, and report what ran (backend, threads, SIMD,
// cross-origin isolation, versions, timings). Used by index.html (app.mjs) and by the ort-web runner's
// harness page. No dependencies beyond the onnxruntime-web bundle next to it.

const BUNDLES = {
  wasm: "ort.wasm.bundle.min.mjs",
  webgpu: "ort.webgpu.bundle.min.mjs",
};

// A one-instruction WebAssembly module using a v128 op: validates only where SIMD is supported.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

export function simdSupported() {
  try {
    return WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

// Load the onnxruntime-web bundle for `backend` from the folder `ortBase` (a URL ending in "/").
export async function loadOrt(ortBase, backend, threads) {
  const file = BUNDLES[backend];
  if (!file) throw new Error(`unknown backend ${backend} (use wasm or webgpu)`);
  const ort = await import(new URL(file, ortBase).href);
  ort.env.logLevel = "error";
  // 0 = onnxruntime-web's default: min(4, ceil(cores / 2)) when cross-origin isolated, else 1.
  ort.env.wasm.numThreads = Number.isInteger(threads) && threads > 0 ? threads : 0;
  ort.env.wasm.proxy = false;
  return ort;
}

// Open `modelUrl`; returns {session, info} with what a deployment needs to know about the run.
export async function openSession(ort, modelUrl, backend) {
  let adapter = "";
  if (backend === "webgpu") {
    if (!("gpu" in navigator)) throw new Error("this browser has no WebGPU (navigator.gpu is missing)");
    const found = await navigator.gpu.requestAdapter();
    if (!found) throw new Error("this browser has WebGPU but no GPU adapter");
    const a = found.info || {};
    adapter = [a.vendor, a.architecture, a.description].filter(Boolean).join(" ");
  }
  const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
  const start = performance.now();
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: [backend],
    graphOptimizationLevel: "all",
  });
  const sessionMs = performance.now() - start;
  const info = {
    ort_web: ort.env.versions.web,
    backend,
    // onnxruntime-web writes back the thread count it really uses (1 without cross-origin isolation).
    threads: backend === "wasm" ? ort.env.wasm.numThreads : null,
    simd: simdSupported(),
    cross_origin_isolated: Boolean(globalThis.crossOriginIsolated),
    hardware_concurrency: navigator.hardwareConcurrency || null,
    user_agent: navigator.userAgent,
    session_ms: sessionMs,
    model_bytes: bytes.byteLength,
    input: session.inputNames[0],
    output: session.outputNames[0],
    adapter,
  };
  return { session, info };
}

// Run one input tensor; returns {output, ms} with the output tensor's data copied to the CPU.
export async function runTensor(ort, session, type, data, dims) {
  const start = performance.now();
  const feeds = { [session.inputNames[0]]: new ort.Tensor(type, data, dims) };
  const results = await session.run(feeds);
  const out = results[session.outputNames[0]];
  const values = out.location === "cpu" || out.location === undefined ? out.data : await out.getData(true);
  const ms = performance.now() - start;
  return { output: { type: out.type, dims: out.dims, data: values }, ms };
}

// Python's round(): halves to even (timm's CenterCrop offsets use it).
function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// Image (img, canvas or ImageBitmap) -> Float32Array NCHW of `spec` (size, mean, std, crop_pct), the
// way edgeattn (timm's eval transform) preprocesses: shorter side to floor(size / crop_pct), the longer
// side truncated, center crop, /255, (x - mean) / std.
export function imageToTensor(image, spec, canvas) {
  const [th, tw] = spec.size;
  const w = image.naturalWidth || image.width;
  const h = image.naturalHeight || image.height;
  let nw = tw;
  let nh = th;
  if (w !== tw || h !== th) {
    const scaleTo = Math.floor(Math.max(th, tw) / (spec.crop_pct || 1));
    if (h <= w) {
      nh = scaleTo;
      nw = Math.max(tw, Math.trunc((scaleTo * w) / h));
    } else {
      nw = scaleTo;
      nh = Math.max(th, Math.trunc((scaleTo * h) / w));
    }
  }
  const c = canvas || document.createElement("canvas");
  c.width = tw;
  c.height = th;
  const ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(image, -roundHalfEven((nw - tw) / 2), -roundHalfEven((nh - th) / 2), nw, nh);
  const rgba = ctx.getImageData(0, 0, tw, th).data;
  const plane = th * tw;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let ch = 0; ch < 3; ch++) {
      out[ch * plane + i] = (rgba[i * 4 + ch] / 255 - spec.mean[ch]) / spec.std[ch];
    }
  }
  return out;
}

export function softmax(logits) {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

// The k most likely classes: [{index, name, probability}], best first.
export function topK(logits, classes, k = 5) {
  const probs = softmax(logits);
  return probs
    .map((p, i) => ({ index: i, name: classes[i] ?? `class ${i}`, probability: p }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k);
}
