/* On-device mode: stylize in this browser with onnxruntime-web (WebAssembly, or WebGPU when the
   browser has it). The photo never leaves the device; the server only sends static files: the
   ONNX model (downloaded once, kept in the Cache Storage) and onnxruntime-web itself.

   window.PainterlyOnDevice = {
     status(): Promise<{available, reason, model, ort}>,
     stylize({photo: Blob, style: Blob | URL string, styleKey?, alpha, preserveColor, size}, onProgress)
       -> Promise<{blob, canvas, width, height, seconds, backend}>
   }
   (alpha and preserveColor are the library's words; the older strength and keepColors still work.)
   Same pipeline as `painterly export` documents: style_encoder(style at <= 512 px) -> statistics,
   stylizer(content, statistics, alpha) -> image; "keep colours" = the photo's chroma (YIQ). */
(() => {
  "use strict";

  const CACHE = "painterly-ondevice-v1";
  let statusPromise = null;
  let runtimePromise = null;
  const statsCache = new Map(); // style key -> statistics tensor (a style is encoded once)

  function status() {
    if (!statusPromise) {
      statusPromise = fetch("/ondevice/status")
        .then((r) => (r.ok ? r.json() : { available: false, reason: `the server answered ${r.status}` }))
        .catch(() => ({ available: false, reason: "cannot reach the server" }))
        .then((s) => {
          if (s.available && typeof WebAssembly !== "object") {
            return { ...s, available: false, reason: "this browser cannot run WebAssembly" };
          }
          return s;
        });
    }
    return statusPromise;
  }

  async function webgpuAdapter() {
    if (!navigator.gpu) return false;
    try { return Boolean(await navigator.gpu.requestAdapter()); } catch (_) { return false; }
  }

  // The model files, from the Cache Storage when already downloaded (old versions are dropped).
  async function cachedBytes(url, onProgress) {
    let cache = null;
    try { cache = window.caches ? await caches.open(CACHE) : null; } catch (_) { cache = null; }
    let response = cache ? await cache.match(url) : null;
    if (!response) {
      onProgress && onProgress(true);
      response = await fetch(url);
      if (!response.ok) throw new Error(`Could not download the model (${response.status}).`);
      if (cache) {
        try { await cache.put(url, response.clone()); } catch (_) { /* storage full: still works */ }
      }
    }
    return new Uint8Array(await response.arrayBuffer());
  }

  async function dropOldModels(current) {
    if (!window.caches) return;
    try {
      const cache = await caches.open(CACHE);
      for (const request of await cache.keys()) {
        if (!current.some((u) => request.url.endsWith(u))) await cache.delete(request);
      }
    } catch (_) { /* not important */ }
  }

  function runtime(onProgress) {
    if (!runtimePromise) {
      runtimePromise = (async () => {
        const s = await status();
        if (!s.available) throw new Error(`On-device mode is unavailable: ${s.reason}.`);
        const gpu = await webgpuAdapter();
        const base = new URL(s.ort.base, location.href).href;
        const ort = await import(base + (gpu ? s.ort.webgpu : s.ort.wasm));
        ort.env.wasm.wasmPaths = base;
        ort.env.wasm.proxy = false;
        ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
        const providers = gpu ? ["webgpu", "wasm"] : ["wasm"];
        const mb = (s.model.bytes / 1e6).toFixed(0);
        const [enc, sty] = await Promise.all([
          cachedBytes(s.model.style_encoder, () => onProgress(`Downloading the model (${mb} MB, once)…`, 5)),
          cachedBytes(s.model.stylizer, () => onProgress(`Downloading the model (${mb} MB, once)…`, 5)),
        ]);
        dropOldModels([s.model.style_encoder, s.model.stylizer]);
        onProgress("Starting the model…", 30);
        const options = { executionProviders: providers, graphOptimizationLevel: "all" };
        const encoder = await ort.InferenceSession.create(enc, options);
        const stylizer = await ort.InferenceSession.create(sty, options);
        return { ort, encoder, stylizer, backend: gpu ? "WebGPU" : "WebAssembly", styleSize: s.model.style_size };
      })();
      runtimePromise.catch(() => { runtimePromise = null; });
    }
    return runtimePromise;
  }

  // A Blob or URL -> RGBA pixels, longest side at most `side` (never enlarged).
  async function pixels(source, side) {
    const blob = typeof source === "string" ? await (await fetch(source)).blob() : source;
    const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image" });
    const scale = Math.min(1, side / Math.max(bitmap.width, bitmap.height));
    const w = Math.max(1, Math.round(bitmap.width * scale)), h = Math.max(1, Math.round(bitmap.height * scale));
    const canvas = document.createElement("canvas");
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(bitmap, 0, 0, w, h);
    bitmap.close && bitmap.close();
    return ctx.getImageData(0, 0, w, h);
  }

  // RGBA uint8 (H, W, 4) -> float32 (1, 3, H, W) in [0, 1]
  function toTensor(ort, image) {
    const { width: w, height: h, data } = image;
    const n = w * h, out = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) {
      out[i] = data[4 * i] / 255;
      out[n + i] = data[4 * i + 1] / 255;
      out[2 * n + i] = data[4 * i + 2] / 255;
    }
    return new ort.Tensor("float32", out, [1, 3, h, w]);
  }

  // float32 (1, 3, H, W) -> canvas; preserveColor: the result's luminance with the photo's chroma
  // (YIQ: I and Q rows sum to 0, so RGB = photo RGB + (Y_result - Y_photo)).
  function toCanvas(result, content, preserveColor) {
    const [, , h, w] = result.dims;
    const src = result.data, n = w * h;
    const canvas = document.createElement("canvas");
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    const px = img.data, c = content.data;
    for (let i = 0; i < n; i++) {
      let r = src[i], g = src[n + i], b = src[2 * n + i];
      if (preserveColor) {
        const cr = c[4 * i] / 255, cg = c[4 * i + 1] / 255, cb = c[4 * i + 2] / 255;
        const dy = 0.299 * (r - cr) + 0.587 * (g - cg) + 0.114 * (b - cb);
        r = cr + dy; g = cg + dy; b = cb + dy;
      }
      px[4 * i] = Math.round(Math.min(1, Math.max(0, r)) * 255);
      px[4 * i + 1] = Math.round(Math.min(1, Math.max(0, g)) * 255);
      px[4 * i + 2] = Math.round(Math.min(1, Math.max(0, b)) * 255);
      px[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    return canvas;
  }

  async function stylize(request, onProgress = () => {}) {
    const started = performance.now();
    onProgress("Preparing the on-device model…", 2);
    const rt = await runtime(onProgress);
    onProgress("Reading the images…", 40);
    const content = await pixels(request.photo, request.size || 512);
    if (Math.min(content.width, content.height) < 16) throw new Error("The photo is too small (16 px at least).");
    let stats = request.styleKey ? statsCache.get(request.styleKey) : null;
    if (!stats) {
      onProgress("Reading the style…", 45);
      const style = await pixels(request.style, rt.styleSize || 512);
      stats = (await rt.encoder.run({ style: toTensor(rt.ort, style) })).statistics;
      if (request.styleKey) statsCache.set(request.styleKey, stats);
    }
    onProgress(`Stylizing on this device (${rt.backend})…`, 60);
    await new Promise((r) => setTimeout(r, 0)); // let the page paint the progress first
    const alpha = new rt.ort.Tensor("float32", new Float32Array([request.alpha ?? request.strength ?? 1]), [1]);
    const out = await rt.stylizer.run({ content: toTensor(rt.ort, content), statistics: stats, alpha });
    const canvas = toCanvas(out.image, content, Boolean(request.preserveColor ?? request.keepColors));
    onProgress("Finishing…", 95);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    const result = { blob, canvas, width: canvas.width, height: canvas.height,
                     seconds: (performance.now() - started) / 1000, backend: rt.backend };
    window.PainterlyOnDevice.last = result; // for tests and the curious
    return result;
  }

  // The "On this device" choice says whether it can run here, and why not.
  async function describe() {
    const input = document.getElementById("q-device");
    const note = document.getElementById("q-device-time");
    if (!input || !note) return;
    const s = await status();
    input.disabled = !s.available;
    const label = document.querySelector('label[for="q-device"]');
    if (s.available) {
      note.textContent = `private · ${(s.model.bytes / 1e6).toFixed(s.model.bytes < 1e7 ? 1 : 0)} MB model, once`;
      if (label) label.title = "Stylize in this browser: the photo never leaves your device.";
    } else {
      note.textContent = "unavailable here";
      if (label) label.title = `On-device mode is unavailable: ${s.reason}`;
      const hint = document.getElementById("ondevice-note");
      if (hint) { hint.textContent = `On-device mode is unavailable: ${s.reason}.`; hint.hidden = false; }
    }
    input.dataset.ready = String(s.available);
  }

  window.PainterlyOnDevice = { status, stylize, last: null };
  document.addEventListener("DOMContentLoaded", describe);
})();
