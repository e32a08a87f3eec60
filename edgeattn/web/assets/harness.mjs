// The page edgeattn's ort-web runner drives: `edgeattnHarness.open(...)` loads onnxruntime-web and the
// model once; `run(url, type, dims)` fetches a prepared input from the runner's local server, runs it,
// and returns the output as base64 with the in-page latency; `rerun()` repeats the last input (timing).
import { loadOrt, openSession, runTensor } from "./edgeattn-web.mjs";

const state = { ort: null, session: null, last: null };

function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function packed({ output, ms }) {
  const d = output.data;
  const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  return { ms, type: output.type, dims: Array.from(output.dims), data: toBase64(bytes) };
}

const TYPED = { float32: Float32Array, float16: Uint16Array };

globalThis.edgeattnHarness = {
  async open(ortBase, modelUrl, backend, threads) {
    state.ort = await loadOrt(new URL(ortBase, location.href), backend, threads);
    const { session, info } = await openSession(state.ort, modelUrl, backend);
    state.session = session;
    return info;
  },
  async run(url, type, dims) {
    const buffer = await (await fetch(url, { cache: "no-store" })).arrayBuffer();
    const data = new TYPED[type](buffer);
    state.last = { type, data, dims };
    return packed(await runTensor(state.ort, state.session, type, data, dims));
  },
  async rerun() {
    const { type, data, dims } = state.last;
    return packed(await runTensor(state.ort, state.session, type, data, dims));
  },
};
globalThis.edgeattnHarnessReady = true;
