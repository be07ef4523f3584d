/* Painterly page: plain JavaScript, no build step. Talks to /api/v1. */
(() => {
  "use strict";

  const API = "/api/v1";
  const $ = (id) => document.getElementById(id);
  const RECENT_KEY = "painterly.recent.v1";
  const KEY_KEY = "painterly.apikey";
  const MAX_RECENT = 12;
  const DEFAULT_SIZES = { fast: 1024, optimize: 512 }; // the size first offered for each method
  const FULL = 1e9; // a remembered "Full size" choice

  const state = {
    health: null,
    styles: [],
    photo: null,          // Blob to upload (a photo, or a video file as chosen)
    media: "image",       // what state.photo is: "image" | "video"
    videoSeconds: 0,      // the chosen video's duration (0 = unknown)
    photoName: "",
    photoUrl: null,
    photoW: 0,            // size of the photo as uploaded (0 = the browser cannot decode it)
    photoH: 0,
    sizes: {},            // method -> the size the user chose (FULL = the photo's own)
    estimateSeq: 0,
    run: null,            // {photoName, styleTitle} of the job being run
    style: null,          // {kind: "builtin", name, title} | {kind: "upload", blob, title}
    job: null,            // current job id
    polling: null,
    resultUrl: null,
    resultJpegUrl: null,
    videoUrl: null,       // object URL of the chosen video (its preview)
    busy: false,
  };

  // --- helpers -------------------------------------------------------------------------------
  function apiKey() { return localStorage.getItem(KEY_KEY) || ""; }

  async function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    const key = apiKey();
    if (key) headers.set("X-API-Key", key);
    let response;
    try {
      response = await fetch(API + path, { ...options, headers });
    } catch (err) {
      throw new ApiError(0, "Cannot reach the server. Check your connection and try again.");
    }
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const body = await response.json();
        if (typeof body.detail === "string") message = body.detail;
        else if (Array.isArray(body.detail)) message = body.detail.map((d) => d.msg).join("; ");
      } catch (_) { /* not JSON */ }
      if (response.status === 401) showKeyBar(true);
      throw new ApiError(response.status, message, response.headers.get("Retry-After"));
    }
    return response;
  }

  class ApiError extends Error {
    constructor(status, message, retryAfter) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter ? Number(retryAfter) : null;
    }
  }

  function formatSeconds(s) {
    if (s == null || !isFinite(s)) return "";
    s = Math.max(0, Math.round(s));
    if (s < 1) return "less than a second";
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60), r = s % 60;
    return r ? `${m} min ${r} s` : `${m} min`;
  }

  function formatBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  function setHint(text) { $("hint").textContent = text; }

  function showKeyBar(show) {
    $("key-bar").hidden = !show;
    if (show) $("api-key").focus();
  }

  // The first bytes of the image formats the server reads (for files this browser cannot show).
  function looksLikeImage(b) {
    const at = (offset, text) => [...text].every((c, k) => b[offset + k] === c.charCodeAt(0));
    return (b[0] === 0x89 && at(1, "PNG")) || (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) || at(0, "GIF8") ||
      (at(0, "RIFF") && at(8, "WEBP")) || at(0, "BM") || (at(0, "II") && b[2] === 42 && b[3] === 0) ||
      (at(0, "MM") && b[2] === 0 && b[3] === 42) || at(4, "ftyp");
  }

  // Video containers by their first bytes (for files the browser gives no type): MP4/MOV (not
  // the HEIC/AVIF photos that share their box format), Matroska/WebM, AVI, Ogg.
  function looksLikeVideo(b) {
    const at = (offset, text) => [...text].every((c, k) => b[offset + k] === c.charCodeAt(0));
    if (at(4, "ftyp")) return !["heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "avif", "avis"].some((brand) => at(8, brand));
    return (b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) || (at(0, "RIFF") && at(8, "AVI ")) || at(0, "OggS");
  }

  async function isVideoFile(file) {
    if (file.type) return file.type.startsWith("video/");
    return looksLikeVideo(new Uint8Array(await file.slice(0, 16).arrayBuffer()));
  }

  // A video's duration and frame size from its header, as this browser reads it ({0, 0, 0} when
  // it cannot: the server may still read it).
  function videoMetadata(url) {
    return new Promise((resolve) => {
      const v = document.createElement("video");
      const done = (info) => { clearTimeout(timer); v.removeAttribute("src"); v.load(); resolve(info); };
      const timer = setTimeout(() => done({ seconds: 0, width: 0, height: 0 }), 8000);
      v.preload = "metadata";
      v.muted = true;
      v.onloadedmetadata = () => done({ seconds: isFinite(v.duration) ? v.duration : 0, width: v.videoWidth, height: v.videoHeight });
      v.onerror = () => done({ seconds: 0, width: 0, height: 0 });
      v.src = url;
    });
  }

  // Decode a chosen file: {blob, width, height} reduced to ``side`` (EXIF orientation applied;
  // PNG kept for transparency), {blob, width: 0, height: 0} for an image format this browser
  // cannot show (the server reads it), or null when it is not an image at all.
  async function prepareImage(file, side) {
    let bitmap = null;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (_) {
      const head = new Uint8Array(await file.slice(0, 16).arrayBuffer());
      return looksLikeImage(head) ? { blob: file, width: 0, height: 0 } : null;
    }
    const scale = Math.min(1, side / Math.max(bitmap.width, bitmap.height));
    const w = Math.max(1, Math.round(bitmap.width * scale)), h = Math.max(1, Math.round(bitmap.height * scale));
    if (scale >= 1 && file.size < 4 * 1024 * 1024) { bitmap.close && bitmap.close(); return { blob: file, width: w, height: h }; }
    const canvas = document.createElement("canvas");
    canvas.width = w; canvas.height = h;
    canvas.getContext("2d").drawImage(bitmap, 0, 0, w, h);
    bitmap.close && bitmap.close();
    const type = file.type === "image/png" ? "image/png" : "image/jpeg";
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, type, 0.92));
    return { blob: blob || file, width: w, height: h };
  }

  // Photos are reduced in the browser to the largest size the server offers.
  function uploadSide() {
    const choices = state.health && state.health.size_choices;
    return choices ? Math.max(...Object.values(choices).flat()) : 2048;
  }

  function thumbnailDataUrl(src, side = 240) {
    return new Promise((resolve) => {
      const img = new Image();
      img.onload = () => {
        const scale = Math.min(1, side / Math.max(img.naturalWidth, img.naturalHeight));
        const canvas = document.createElement("canvas");
        canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
        canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
        canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
        try { resolve(canvas.toDataURL("image/jpeg", 0.8)); } catch (_) { resolve(null); }
      };
      img.onerror = () => resolve(null);
      img.src = src;
    });
  }

  // --- server status and styles --------------------------------------------------------------
  async function loadHealth() {
    const pill = $("server-status");
    try {
      const res = await fetch(API + "/health");
      state.health = await res.json();
    } catch (_) {
      pill.textContent = "Server offline";
      pill.className = "pill bad";
      return;
    }
    const h = state.health;
    const fast = h.modes.fast, optimize = h.modes.optimize;
    $("q-fast").disabled = !fast;
    $("q-optimize").disabled = !optimize;
    const q = h.default_method === "optimize" || !fast ? "q-optimize" : "q-fast";
    $(q).checked = true;
    pill.textContent = fast ? "Fast mode ready" : optimize ? "Best quality only" : "No stylizer available";
    pill.className = "pill " + (fast || optimize ? "ok" : "bad");
    if (h.auth_required && !apiKey()) showKeyBar(true);
    renderSizes();
  }

  // --- result sizes and time estimates -------------------------------------------------------
  // The sizes offered for a method: the server's choices under the photo's own side, then
  // "Full" (the photo's side) when the photo is smaller than the largest choice.
  function sizeChoices(method) {
    const h = state.health;
    const video = state.media === "video";
    const list = (video ? h && h.video_size_choices : h && h.size_choices && h.size_choices[method]) || [512, 768, 1024];
    const long = Math.max(state.photoW, state.photoH);
    if (!long || long > list[list.length - 1]) return list.map((v) => ({ value: v, label: `${v} px` }));
    const out = list.filter((v) => v < long).map((v) => ({ value: v, label: `${v} px` }));
    const minSide = (h && h.limits.min_size) || 64;
    out.push({ value: Math.max(long, minSide), label: `Full · ${long} px`, full: true });
    return out;
  }

  // The choice for a method: the largest not above what the user chose (or the default).
  function pickSize(method) {
    const choices = sizeChoices(method);
    const key = state.media === "video" ? "video" : method;
    const videoDefault = (state.health && state.health.limits.video_default_size) || 512;
    const want = state.sizes[key] || (key === "video" ? videoDefault : DEFAULT_SIZES[method]) || 512;
    let pick = choices[0];
    for (const c of choices) if (c.value <= want) pick = c;
    return pick;
  }

  function renderSizes() {
    const method = selectedValue("method") || "fast";
    const box = $("size-choices");
    const pick = pickSize(method);
    box.textContent = "";
    for (const c of sizeChoices(method)) {
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "size";
      input.id = `s-${c.value}`;
      input.value = String(c.value);
      input.checked = c === pick || c.value === pick.value;
      const key = state.media === "video" ? "video" : method;
      input.addEventListener("change", () => { state.sizes[key] = c.full ? FULL : c.value; updateEstimates(); });
      const label = document.createElement("label");
      label.htmlFor = input.id;
      label.textContent = c.label;
      box.append(input, label);
    }
    updateEstimates();
  }

  // "about N s" under each quality: for the chosen photo and size once there is a photo (the
  // plan corrected by the server's measured runs, GET /estimate), else the server's figure for a default-size photo.
  async function updateEstimates() {
    const h = state.health;
    if (!h) return;
    const seq = ++state.estimateSeq;
    const video = state.media === "video";
    for (const q of ["fast", "optimize"]) {
      const el = $(`q-${q}-time`);
      if (!h.modes[q]) { el.textContent = "not on this server"; continue; }
      if (video && q === "optimize") { el.textContent = "photos only"; continue; }
      let seconds = (h.estimated_seconds || {})[q];
      if (state.photoW) {
        const params = new URLSearchParams({ width: state.photoW, height: state.photoH, size: pickSize(q).value, method: q });
        if (video) params.set("frames", "1"); // the measured time per frame
        try {
          seconds = (await (await api(`/estimate?${params}`)).json()).seconds;
        } catch (_) { continue; }
      }
      if (seq !== state.estimateSeq) return; // a newer photo or size is being estimated
      if (video && state.photoW && seconds != null) { el.textContent = `about ${formatSeconds(seconds)} a frame`; continue; }
      if (video) { el.textContent = "frame by frame"; continue; }
      if (seconds != null) el.textContent = `about ${formatSeconds(seconds)}`;
      el.dataset.seconds = seconds;
    }
  }

  async function loadStyles() {
    let list = [];
    try {
      list = await (await fetch(API + "/styles")).json();
    } catch (_) {
      return;
    }
    state.styles = list;
    const grid = $("style-grid");
    const own = $("own-style-tile");
    list.forEach((s, i) => {
      const tile = document.createElement("button");
      tile.type = "button";
      tile.className = "style-tile";
      tile.setAttribute("role", "radio");
      tile.setAttribute("aria-checked", "false");
      tile.dataset.style = s.name;
      tile.title = s.description;
      const img = document.createElement("img");
      img.src = s.thumbnail_url;
      img.alt = "";
      img.loading = "lazy";
      img.width = 192; img.height = 192;
      const label = document.createElement("span");
      label.className = "style-name";
      label.textContent = s.title;
      tile.append(img, label);
      tile.addEventListener("click", () => selectStyle({ kind: "builtin", name: s.name, title: s.title }, tile));
      grid.insertBefore(tile, own);
      if (i === 0) selectStyle({ kind: "builtin", name: s.name, title: s.title }, tile);
    });
  }

  function selectStyle(style, tile) {
    state.style = style;
    document.querySelectorAll(".style-tile").forEach((t) => t.setAttribute("aria-checked", String(t === tile)));
    updateButton();
  }

  // --- photo ---------------------------------------------------------------------------------
  async function setPhoto(file) {
    showError("");
    if (!file) return;
    if (await isVideoFile(file)) { await setVideo(file); return; }
    const name = file.name || "photo";
    const prepared = await prepareImage(file, uploadSide());
    if (!prepared) {
      showError(`“${name}” is not an image (or not one this page can read): choose a JPEG, PNG or WebP photo.`);
      return;
    }
    const { blob, width, height } = prepared;
    const limit = state.health ? state.health.limits.max_upload_bytes : Infinity;
    if (blob.size > limit) {
      showError(`This photo is ${formatBytes(blob.size)}; the server accepts up to ${formatBytes(limit)}.`);
      return;
    }
    setMedia("image");
    state.photo = blob;
    state.photoName = name;
    state.photoW = width;
    state.photoH = height;
    if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
    state.photoUrl = URL.createObjectURL(blob);
    $("photo-name").textContent = name;
    $("photo-info").textContent = width ? `${width} × ${height} · ${formatBytes(blob.size)}` : formatBytes(blob.size);
    document.querySelector(".dz-empty").hidden = true;
    document.querySelector(".dz-chosen").hidden = false;
    const original = $("original-img");
    $("photo-thumb").hidden = !width;
    original.hidden = !width;
    $("original-ph").hidden = !!width;
    $("original-ph").textContent = width ? "Your photo" : "No preview of this format in this browser; the server will read it.";
    if (width) {
      $("photo-thumb").src = state.photoUrl;
      original.src = state.photoUrl;
    }
    document.querySelector(".layout").classList.add("has-photo");
    clearResult();
    renderSizes();
    updateButton();
  }

  // A video: checked against the server's limits when this browser can read its header, shown
  // in a <video>; always sent as it is (the server reduces it), in Fast mode.
  async function setVideo(file) {
    const name = file.name || "video";
    const h = state.health;
    if (h && !h.video) {
      showError(`“${name}” is a video; this server does not stylize videos (${h.video_unavailable || "video is off"}).`);
      return;
    }
    const limits = (h && h.limits) || {};
    if (limits.max_video_bytes && file.size > limits.max_video_bytes) {
      showError(`This video is ${formatBytes(file.size)}; the server accepts up to ${formatBytes(limits.max_video_bytes)}.`);
      return;
    }
    const url = URL.createObjectURL(file);
    const meta = await videoMetadata(url);
    const long = Math.max(meta.width, meta.height), short = Math.min(meta.width, meta.height);
    let problem = "";
    if (limits.max_video_seconds && meta.seconds > limits.max_video_seconds + 0.1) {
      problem = `This video is ${formatSeconds(meta.seconds)} long; the server takes clips of up to ${formatSeconds(limits.max_video_seconds)}. Trim it first.`;
    } else if (limits.max_video_side && (long > limits.max_video_side || short > limits.max_video_short_side)) {
      problem = `This video is ${meta.width} × ${meta.height}; the server takes up to ${limits.max_video_side} × ${limits.max_video_short_side} (1080p). Scale it down first.`;
    }
    if (problem) { URL.revokeObjectURL(url); showError(problem); return; }
    setMedia("video");
    state.photo = file;
    state.photoName = name;
    state.photoW = meta.width;
    state.photoH = meta.height;
    state.videoSeconds = meta.seconds;
    if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
    state.photoUrl = null;
    if (state.videoUrl) URL.revokeObjectURL(state.videoUrl);
    state.videoUrl = url;
    const readable = meta.width > 0;
    $("photo-name").textContent = name;
    $("photo-info").textContent = [readable ? `${meta.width} × ${meta.height}` : "", meta.seconds ? `${meta.seconds.toFixed(1)} s` : "",
                                   formatBytes(file.size)].filter(Boolean).join(" · ");
    document.querySelector(".dz-empty").hidden = true;
    document.querySelector(".dz-chosen").hidden = false;
    $("photo-thumb").hidden = true;
    $("original-img").hidden = true;
    const thumb = $("video-thumb"), original = $("original-video");
    thumb.hidden = !readable;
    original.hidden = !readable;
    $("original-ph").hidden = readable;
    $("original-ph").textContent = readable ? "Your photo" : "No preview of this video format in this browser; the server will read it.";
    if (readable) {
      thumb.src = url;
      original.src = url;
    }
    document.querySelector(".layout").classList.add("has-photo");
    clearResult();
    renderSizes();
    updateButton();
  }

  // Photo or video: a video runs in Fast mode on the server (no Best, no On this device) and
  // offers the smooth-motion switch.
  function setMedia(media) {
    state.media = media;
    const video = media === "video";
    if (!video) {
      state.videoSeconds = 0;
      const v = $("original-video");
      v.pause(); v.removeAttribute("src"); v.load(); v.hidden = true;
      $("video-thumb").hidden = true;
      $("video-thumb").removeAttribute("src");
      if (state.videoUrl) { URL.revokeObjectURL(state.videoUrl); state.videoUrl = null; }
    }
    const modes = (state.health && state.health.modes) || {};
    $("q-optimize").disabled = video || !modes.optimize;
    $("q-device").disabled = video || $("q-device").dataset.ready !== "true";
    if (video && !$("q-fast").disabled) $("q-fast").checked = true;
    $("video-note").hidden = !video;
    $("temporal-field").hidden = !video;
    $("photo-input").setAttribute("aria-label", video ? "Chosen video" : "Chosen photo");
  }

  async function setOwnStyle(file) {
    showError("");
    if (!file) return;
    const prepared = await prepareImage(file, 1024);
    if (!prepared) {
      showError(`“${file.name || "style"}” is not an image (or not one this page can read).`);
      return;
    }
    const blob = prepared.blob;
    const thumb = $("own-style-thumb");
    thumb.src = URL.createObjectURL(blob);
    thumb.hidden = false;
    const tile = $("own-style-tile");
    tile.classList.add("has-image");
    tile.querySelector(".own-icon").hidden = true;
    selectStyle({ kind: "upload", blob, title: file.name || "your style" }, tile);
  }

  function updateButton() {
    const button = $("stylize");
    if (state.busy) return;
    button.disabled = !(state.photo && state.style);
    if (!state.photo) setHint("Choose a photo to start.");
    else if (state.media === "video" && state.style) setHint(`Ready: ${state.style.title} on your video, ${$("strength").value}% strength.`);
    else if (!state.style) setHint("Pick a style.");
    else setHint(`Ready: ${state.style.title}, ${$("strength").value}% strength.`);
  }

  // --- running a job -------------------------------------------------------------------------
  function clearResult() {
    const video = $("result-video");
    video.pause();
    video.hidden = true;
    $("result-img").hidden = true;
    $("result-ph").hidden = false;
    $("download").hidden = true;
    $("download-jpeg").hidden = true;
    $("result-meta").textContent = "";
    $("result-caption").textContent = "";
  }

  function setProgress(visible, text, percent, eta) {
    $("progress").hidden = !visible;
    if (!visible) return;
    $("progress-text").textContent = text;
    $("progress-bar").style.width = `${Math.max(2, Math.min(100, percent || 0))}%`;
    $("progress-eta").textContent = eta || "";
  }

  function setBusy(busy) {
    state.busy = busy;
    const button = $("stylize");
    button.disabled = busy;
    button.textContent = busy ? "Stylizing…" : "Stylize";
    if (!busy) updateButton();
  }

  function selectedValue(name) {
    const el = document.querySelector(`input[name="${name}"]:checked`);
    return el ? el.value : null;
  }

  async function stylize() {
    if (!state.photo || !state.style || state.busy) return;
    showError("");
    clearResult();
    setBusy(true);
    const video = state.media === "video";
    const method = video ? "fast" : selectedValue("method");
    state.run = { photoName: state.photoName, styleTitle: state.style.title, media: state.media };
    if (method === "device") { await stylizeOnDevice(); return; } // ondevice.js: nothing is uploaded
    setProgress(true, video ? "Uploading the video…" : "Uploading…", 1, "");
    if (window.matchMedia("(max-width: 900px)").matches) document.querySelector(".stage").scrollIntoView({ behavior: "smooth", block: "start" });
    const form = new FormData();
    form.append("content", state.photo, state.photoName);
    if (state.style.kind === "builtin") form.append("style", state.style.name);
    else form.append("style", state.style.blob, "style");
    // the library's words: alpha (the Strength slider), preserve_color (Keep my colours), method
    form.append("alpha", String(Number($("strength").value) / 100));
    form.append("preserve_color", $("keep-colors").checked ? "luminance" : "off");
    if (method) form.append("method", method);
    form.append("size", selectedValue("size") || String(pickSize(method || "fast").value));
    if (video) form.append("temporal", $("temporal").checked ? "true" : "false");
    const started = Date.now();
    let job;
    for (let attempt = 0; ; attempt++) {
      try {
        job = await (await api("/jobs", { method: "POST", body: form })).json();
        break;
      } catch (err) {
        if (err.status === 429 && attempt < 20) {
          const wait = Math.max(1, err.retryAfter || 2);
          setProgress(true, "The server is busy", 1, `Trying again in ${formatSeconds(wait)}…`);
          await new Promise((r) => setTimeout(r, wait * 1000));
          continue;
        }
        setProgress(false);
        setBusy(false);
        showError(err.message);
        return;
      }
    }
    state.job = job.id;
    poll(job, started, method);
  }

  async function stylizeOnDevice() {
    const started = Date.now();
    try {
      const builtin = state.style.kind === "builtin";
      const out = await window.PainterlyOnDevice.stylize({
        photo: state.photo, style: builtin ? `${API}/styles/${state.style.name}/image` : state.style.blob,
        styleKey: builtin ? state.style.name : null, alpha: Number($("strength").value) / 100,
        preserveColor: $("keep-colors").checked, size: Number(selectedValue("size") || 512),
      }, (text, percent) => setProgress(true, text, percent, ""));
      if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
      state.resultUrl = URL.createObjectURL(out.blob);
      const img = $("result-img");
      img.onload = null;
      img.src = state.resultUrl;
      img.hidden = false;
      $("result-ph").hidden = true;
      $("result-caption").textContent = `· ${state.style.title} · on this device`;
      $("result-meta").textContent = `${out.width} × ${out.height} · ${((Date.now() - started) / 1000).toFixed(1)} s in this browser (${out.backend})`;
      Object.assign($("download"), { href: state.resultUrl, download: "stylized-on-device.png", hidden: false });
      setHint("Done in your browser: the photo never left your device.");
    } catch (err) {
      showError(err.message || String(err));
    }
    setProgress(false);
    setBusy(false);
  }

  function describe(job) {
    if (job.status === "queued") {
      const pos = job.queue_position;
      return [pos && pos > 1 ? `Waiting in line · ${pos - 1} ahead` : "Starting…", job.eta_seconds != null ? `About ${formatSeconds(job.eta_seconds)} left` : ""];
    }
    const pct = `${job.percent}%`;
    if (job.kind === "video" && job.frames) {
      const eta = job.eta_seconds != null && job.percent < 100 ? `About ${formatSeconds(job.eta_seconds)} left` : "Finishing…";
      return [`Stylizing · frame ${Math.min(job.frames_done || 0, job.frames)} of ${job.frames} · ${pct}`, eta];
    }
    return [`Stylizing · ${pct}`, job.eta_seconds != null && job.percent < 100 ? `About ${formatSeconds(job.eta_seconds)} left` : "Finishing…"];
  }

  function poll(job, started, method) {
    const interval = method === "optimize" ? 1000 : 300;
    const tick = async () => {
      if (state.job !== job.id) return;
      let status;
      try {
        status = await (await api(`/jobs/${job.id}`)).json();
      } catch (err) {
        if (err.status === 0) { state.polling = setTimeout(tick, 2000); return; }
        finish(null, err.message);
        return;
      }
      if (status.status === "succeeded") { await showResult(status, started); return; }
      if (status.status === "failed") { finish(null, status.error || "The stylization failed."); return; }
      if (status.status === "cancelled") { finish(null, "Cancelled."); return; }
      const [text, eta] = describe(status);
      setProgress(true, text, status.status === "queued" ? 2 : status.percent, eta);
      state.polling = setTimeout(tick, interval);
    };
    const [text, eta] = describe(job);
    setProgress(true, text, 2, eta);
    state.polling = setTimeout(tick, 150);
  }

  function finish(job, error) {
    clearTimeout(state.polling);
    state.job = null;
    setProgress(false);
    setBusy(false);
    if (error) showError(error === "Cancelled." ? "" : error);
    if (error === "Cancelled.") setHint("Cancelled.");
  }

  async function fetchBlobUrl(path) {
    const blob = await (await api(path)).blob();
    return URL.createObjectURL(blob);
  }

  // The finished job's result as a blob URL (the previous one released); null after an error.
  async function downloadResult(job, message) {
    setProgress(true, "Stylizing · 100%", 100, message);
    let url;
    try {
      url = await fetchBlobUrl(`/jobs/${job.id}/result`);
    } catch (err) {
      finish(null, err.message);
      return null;
    }
    if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
    state.resultUrl = url;
    return url;
  }

  async function showResult(job, started) {
    if (job.kind === "video") { await showVideoResult(job, started); return; }
    const url = await downloadResult(job, "Downloading the result…");
    if (!url) return;
    const img = $("result-img");
    img.onload = async () => {
      img.classList.remove("fade-in"); void img.offsetWidth; img.classList.add("fade-in");
      const seconds = (Date.now() - started) / 1000;
      $("result-meta").textContent = `${img.naturalWidth} × ${img.naturalHeight} · ${seconds.toFixed(1)} s`;
      await addRecent(job, url);
    };
    img.src = url;
    img.hidden = false;
    img.dataset.jobId = job.id;
    $("result-ph").hidden = true;
    $("result-caption").textContent = `· ${state.run ? state.run.styleTitle : ""}`;
    setDownloads(job.id, url);
    finish(job, null);
    setHint("Done! Try another style or strength.");
  }

  async function showVideoResult(job, started) {
    const url = await downloadResult(job, "Downloading the video…");
    if (!url) return;
    const video = $("result-video");
    video.onloadeddata = async () => {
      video.onloadeddata = null;
      const seconds = (Date.now() - started) / 1000;
      $("result-meta").textContent = `${job.width} × ${job.height} · ${job.frames} frames · ${seconds.toFixed(1)} s`;
      await addRecent(job, url, videoFrameDataUrl(video, 360));
    };
    video.src = url;
    video.hidden = false;
    video.dataset.jobId = job.id;
    video.play().catch(() => { /* autoplay refused: the controls are there */ });
    $("result-img").hidden = true;
    $("result-ph").hidden = true;
    $("result-caption").textContent = `· ${state.run ? state.run.styleTitle : ""}`;
    setVideoDownload(job.id, url);
    finish(job, null);
    setHint("Done! Play it, download it, or try another style.");
  }

  // The current frame of a <video> as a small JPEG data URL (a recent result's preview).
  function videoFrameDataUrl(video, side) {
    if (!video.videoWidth || video.readyState < 2) return null; // no frame decoded yet
    const scale = Math.min(1, side / Math.max(video.videoWidth, video.videoHeight));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(video.videoWidth * scale));
    canvas.height = Math.max(1, Math.round(video.videoHeight * scale));
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    try { return canvas.toDataURL("image/jpeg", 0.8); } catch (_) { return null; }
  }

  function resultName(jobId, ext) {
    const run = state.run || {};
    const slug = (text) => (text || "").toLowerCase().replace(/\.[a-z0-9]+$/, "").replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
    const base = [slug(run.photoName), slug(run.styleTitle)].filter(Boolean).join("-") || "stylized";
    return `${base}-${jobId.slice(0, 6)}.${ext}`;
  }

  function setVideoDownload(jobId, url) {
    const link = $("download");
    link.href = url;
    link.download = resultName(jobId, "mp4");
    link.textContent = "Download MP4";
    link.hidden = false;
    $("download-jpeg").hidden = true;
  }

  function setDownloads(jobId, url) {
    const run = state.run || {};
    const slug = (text) => (text || "").toLowerCase().replace(/\.[a-z0-9]+$/, "").replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
    const base = [slug(run.photoName), slug(run.styleTitle)].filter(Boolean).join("-") || "stylized";
    const png = $("download");
    png.href = url;
    png.download = `${base}-${jobId.slice(0, 6)}.png`;
    png.textContent = "Download PNG";
    png.hidden = false;
    const jpeg = $("download-jpeg");
    jpeg.hidden = false;
    jpeg.href = "#";
    jpeg.onclick = async (event) => {
      if (jpeg.dataset.ready === jobId) return; // second click: the browser downloads the blob
      event.preventDefault();
      try {
        const jurl = await fetchBlobUrl(`/jobs/${jobId}/result?format=jpeg`);
        if (state.resultJpegUrl) URL.revokeObjectURL(state.resultJpegUrl);
        state.resultJpegUrl = jurl;
        jpeg.href = jurl;
        jpeg.download = `${base}-${jobId.slice(0, 6)}.jpg`;
        jpeg.dataset.ready = jobId;
        jpeg.click();
      } catch (err) {
        showError(err.message);
      }
    };
  }

  async function cancel() {
    const id = state.job;
    if (!id) return;
    state.job = null;
    clearTimeout(state.polling);
    try { await api(`/jobs/${id}`, { method: "DELETE" }); } catch (_) { /* already gone */ }
    finish(null, "Cancelled.");
  }

  // --- recent results ------------------------------------------------------------------------
  function loadRecent() {
    try { return JSON.parse(localStorage.getItem(RECENT_KEY) || "[]"); } catch (_) { return []; }
  }

  function saveRecent(list) {
    for (;;) {
      try { localStorage.setItem(RECENT_KEY, JSON.stringify(list)); return; } catch (_) {
        if (!list.length) return;
        list.pop(); // storage full: drop the oldest
      }
    }
  }

  async function addRecent(job, resultUrl, videoThumb) {
    const video = job.kind === "video";
    const [thumb, original] = video ? [videoThumb, videoFrameDataUrl($("original-video"), 360)]
      : await Promise.all([thumbnailDataUrl(resultUrl, 360), thumbnailDataUrl(state.photoUrl, 360)]);
    if (!thumb) return;
    const list = loadRecent().filter((r) => r.id !== job.id);
    const run = state.run || {};
    list.unshift({ id: job.id, thumb, original, photo: run.photoName || "", style: run.styleTitle || "", at: Date.now(),
                   expires: job.expires_at ? job.expires_at * 1000 : null, size: `${job.width}×${job.height}`,
                   kind: job.kind || "image" });
    saveRecent(list.slice(0, MAX_RECENT));
    renderRecent();
  }

  function renderRecent() {
    const list = loadRecent();
    const ul = $("recent-list");
    ul.textContent = "";
    $("recent-empty").hidden = list.length > 0;
    $("clear-recent").hidden = list.length === 0;
    for (const item of list) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "recent-item";
      const photo = item.photo || "Photo";
      button.title = `${photo} in ${item.style} · ${new Date(item.at).toLocaleString()}`;
      const img = document.createElement("img");
      img.src = item.thumb;
      img.alt = `${photo} in ${item.style}`;
      const caption = document.createElement("span");
      const strong = document.createElement("strong");
      strong.textContent = photo;
      const style = document.createElement("span");
      style.textContent = item.style;
      caption.append(strong, style, timeAgo(item.at));
      button.append(img, caption);
      button.addEventListener("click", () => openRecent(item));
      li.append(button);
      ul.append(li);
    }
  }

  function timeAgo(t) {
    const s = (Date.now() - t) / 1000;
    if (s < 60) return "just now";
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return new Date(t).toLocaleDateString();
  }

  async function openRecent(item) {
    showError("");
    if (item.kind === "video") { await openRecentVideo(item); return; }
    let url = item.thumb, full = false;
    if (!item.expires || item.expires > Date.now()) {
      try { url = await fetchBlobUrl(`/jobs/${item.id}/result`); full = true; } catch (_) { /* expired: thumbnail */ }
    }
    const img = $("result-img");
    img.onload = null;
    img.src = url;
    img.hidden = false;
    $("result-video").pause();
    $("result-video").hidden = true;
    $("result-ph").hidden = true;
    $("result-caption").textContent = `· ${item.style}`;
    state.run = { photoName: item.photo, styleTitle: item.style };
    if (item.original) {
      $("original-img").src = item.original;
      $("original-img").hidden = false;
      $("original-ph").hidden = true;
    }
    $("result-meta").textContent = full ? `${item.size} · from ${timeAgo(item.at)}` : "Preview only: the full result has expired on the server.";
    if (full) setDownloads(item.id, url);
    else { $("download").hidden = true; $("download-jpeg").hidden = true; }
    document.querySelector(".stage").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  async function openRecentVideo(item) {
    let url = null;
    if (!item.expires || item.expires > Date.now()) {
      try { url = await fetchBlobUrl(`/jobs/${item.id}/result`); } catch (_) { /* expired */ }
    }
    state.run = { photoName: item.photo, styleTitle: item.style, media: "video" };
    const img = $("result-img"), video = $("result-video");
    $("result-ph").hidden = true;
    $("result-caption").textContent = `· ${item.style}`;
    if (url) {
      if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
      state.resultUrl = url;
      img.hidden = true;
      video.src = url;
      video.hidden = false;
      setVideoDownload(item.id, url);
      $("result-meta").textContent = `${item.size} · video · from ${timeAgo(item.at)}`;
    } else {
      video.pause();
      video.hidden = true;
      img.onload = null;
      img.src = item.thumb;
      img.hidden = false;
      $("download").hidden = true;
      $("download-jpeg").hidden = true;
      $("result-meta").textContent = "Preview only: the video has expired on the server.";
    }
    document.querySelector(".stage").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  // --- wiring --------------------------------------------------------------------------------
  function wire() {
    const input = $("photo-input");
    input.addEventListener("change", () => setPhoto(input.files[0]));
    $("style-input").addEventListener("change", (e) => setOwnStyle(e.target.files[0]));
    const zone = $("dropzone");
    zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
    ["dragenter", "dragover"].forEach((type) => zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("drag"); }));
    ["dragleave", "dragend"].forEach((type) => zone.addEventListener(type, () => zone.classList.remove("drag")));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("drag");
      const file = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
      if (file) setPhoto(file);
    });
    // A photo dropped anywhere on the page counts too (and the browser must not navigate to it).
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => {
      e.preventDefault();
      const file = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
      if (file && !zone.contains(e.target)) setPhoto(file);
    });
    document.addEventListener("paste", (e) => {
      const item = [...(e.clipboardData ? e.clipboardData.items : [])].find((i) => i.type.startsWith("image/"));
      if (item) setPhoto(item.getAsFile());
    });
    const strength = $("strength");
    strength.addEventListener("input", () => { $("strength-value").textContent = `${strength.value}%`; updateButton(); });
    document.querySelectorAll('input[name="method"]').forEach((input) => input.addEventListener("change", renderSizes));
    $("stylize").addEventListener("click", stylize);
    $("cancel").addEventListener("click", cancel);
    $("clear-recent").addEventListener("click", () => { localStorage.removeItem(RECENT_KEY); renderRecent(); });
    $("api-key-save").addEventListener("click", () => {
      localStorage.setItem(KEY_KEY, $("api-key").value.trim());
      showKeyBar(false);
      showError("");
    });
  }

  document.addEventListener("DOMContentLoaded", async () => {
    wire();
    renderRecent();
    await loadHealth();
    await loadStyles();
    updateButton();
  });
})();
