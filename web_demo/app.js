// The page: pick a model and a photo, place the square crop, paint the hole (inpainting
// models), restore on the device, compare before / after, read the measured latency.
// `window.tffaceDemo` exposes the same steps to the browser test.

import {Restorer, CardError, holeFromImage} from './restorer.js';

const WASM_DIR = new URL('./node_modules/@litertjs/core/wasm/', import.meta.url).href;
// index.html?threads=0 runs single-threaded (to compare); threads need cross-origin isolation
const ALLOW_THREADS = new URLSearchParams(location.search).get('threads') !== '0';
const $ = (id) => document.getElementById(id);

const state = {
  restorer: null,     // the loaded model
  label: '',          // what the page calls it
  manifest: null,     // {url, data} of a shipped file (its samples)
  photo: null,        // ImageBitmap of the picked photo
  crop: null,         // {x, y, w, h} in photo pixels, of the model's input aspect
  input: null,        // ImageData at the model's input size (the crop as fed)
  hole: null,         // Uint8Array, 1 = hole, at the model's input size
  result: null,       // last output ImageData
  pasted: null,       // {canvas, ctx}: the whole photo with the hole replaced
  probs: null,        // a segmenter's last output (hole probabilities)
  finderUrl: null,    // samples manifest of the shipped occluder segmenter, if any
  finder: null,       // its loaded Restorer
  pending: Promise.resolve(),
};

function status(msg) {
  $('status').textContent = msg || '';
}

/** Every action a control starts joins one promise, which settles when all of them have
 * (errors shown in the page): the test waits on it (`tffaceDemo.state.pending`). */
function track(p) {
  state.pending = Promise.all([state.pending, p]).then(() => undefined, fail);
  return state.pending;
}

function fail(e) {
  console.warn(e);  // the page says it; the console keeps the stack
  status(e instanceof CardError ? `Model card: ${e.message}` : `Error: ${e.message ?? e}`);
}

// ---------------------------------------------------------------- image helpers

/** A Blob/File -> ImageBitmap (EXIF orientation applied). The one decoder the page uses,
 * for a person's photo and for the sample PNGs alike. */
async function decodeImage(blob) {
  try {
    return await createImageBitmap(blob, {imageOrientation: 'from-image', premultiplyAlpha: 'none'});
  } catch {
    throw new Error('this file is not an image the browser can decode');
  }
}

function canvas2d(w, h) {
  const c = document.createElement('canvas');
  c.width = w;
  c.height = h;
  return [c, c.getContext('2d', {willReadFrequently: true})];
}

/** A region of a bitmap resized to w x h (high-quality smoothing; exact when no resize). */
function pixelsOf(bitmap, sx, sy, sw, sh, w, h) {
  const [, ctx] = canvas2d(w, h);
  ctx.imageSmoothingEnabled = sw !== w || sh !== h;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, sx, sy, sw, sh, 0, 0, w, h);
  return ctx.getImageData(0, 0, w, h);
}

function putScaled(canvas, img, w, h, smooth) {
  canvas.width = w;
  canvas.height = h;
  const [src, sctx] = canvas2d(img.width, img.height);
  sctx.putImageData(img, 0, 0);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = smooth;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(src, 0, 0, w, h);
}

async function fetchOk(url, what) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`cannot fetch ${what} (${r.status})`);
  return r;
}

/** A path written in a samples manifest, resolved next to it; only files in the
 * manifest's own folder (or below) on this server are fetched. */
function besideManifest(manifestUrl, rel) {
  const base = new URL('.', manifestUrl);
  const u = new URL(String(rel), manifestUrl);
  if (u.origin !== base.origin || !u.pathname.startsWith(base.pathname)) {
    throw new Error(`the samples manifest points outside its folder: ${rel}`);
  }
  return u.href;
}

// ---------------------------------------------------------------- model

function describe(r) {
  const c = r.card, p = r.plan;
  const img = p.image;
  const out = p.outputs[0];
  const task = p.segment ? `finds the occluder (hole map), ${img.width} px`
      : p.task === 'sr'
      ? `×${c.scale ?? out.width / img.width} super-resolution, ${img.width} → ${out.width} px`
      : `inpainting, ${img.width} px${p.mask ? ', hole mask input' : ''}`;
  const q = c.quality?.psnr_db_vs_ground_truth;
  const size = c.size_bytes ? `${(c.size_bytes / 1e6).toFixed(2)} MB` : '';
  return [c.architecture, task, c.quantization?.mode, size,
          q !== undefined ? `${q} dB PSNR on held-out faces` : '',
          `input ${img.text}`].filter(Boolean).join(' · ');
}

async function setModel(modelBytes, card, label, manifest) {
  status('');
  const before = $('model-info').textContent;
  $('model-info').textContent = `Loading ${label}…`;
  let r;
  try {
    r = await Restorer.load(modelBytes, card, {wasmDir: WASM_DIR, allowThreads: ALLOW_THREADS});
  } catch (e) {
    $('model-info').textContent = before;  // the model loaded before stays in use
    throw e;
  }
  if (state.restorer) state.restorer.delete();
  state.restorer = r;
  state.label = label;
  state.manifest = manifest;
  state.result = null;
  state.pasted = null;
  $('model-info').textContent = describe(r);
  const notes = $('notes');
  notes.replaceChildren(...r.plan.notes.map((n) => {
    const li = document.createElement('li');
    li.textContent = n;
    return li;
  }));
  const inpaint = Boolean(r.plan.mask);
  $('mask-section').hidden = !inpaint;
  $('find-hole').hidden = $('find-hint').hidden = !state.finderUrl;
  $('photo-section').classList.toggle('wide', !inpaint);
  $('run-step').textContent = inpaint ? '4' : '3';
  $('h-run').lastChild.textContent = r.plan.segment ? '. Find the occluder' : '. Restore';
  $('run').textContent = r.plan.segment ? 'Find the occluder' : 'Restore';
  state.probs = null;
  if (inpaint) $('mask-convention').textContent = String(r.plan.mask.hole);
  $('compare').hidden = $('slider').hidden = $('download').hidden = $('download-full').hidden = true;
  $('latency').textContent = '';
  resetHole();
  updateInput();
  return r;
}

async function loadShipped(manifestUrl, label) {
  const url = new URL(manifestUrl, location.href).href;
  const data = await (await fetchOk(url, 'the samples manifest')).json();
  const [bytes, card] = await Promise.all([
    fetchOk(besideManifest(url, data.model), 'the model').then((r) => r.arrayBuffer()),
    fetchOk(besideManifest(url, data.card), 'the model card').then((r) => r.json()),
  ]);
  return setModel(bytes, card, label ?? data.model, {url, data});
}

async function loadOwn() {
  const mf = $('model-file').files[0], cf = $('card-file').files[0];
  if (!mf || !cf) throw new Error('pick both the .tflite file and its card (.json)');
  let card;
  try {
    card = JSON.parse(await cf.text());
  } catch {
    throw new CardError(`${cf.name} is not JSON`);
  }
  await setModel(await mf.arrayBuffer(), card, mf.name, null);
}

// ---------------------------------------------------------------- photo and crop

const stage = {scale: 1, ox: 0, oy: 0};

function cropAspect() {
  const t = state.restorer?.plan.image;
  return t ? t.width / t.height : 1;
}

/** The largest centred box of the model's aspect, shrunk by the size slider. */
function defaultCrop() {
  const {width: W, height: H} = state.photo;
  const a = cropAspect();
  const f = Number($('crop-size').value) / 100;
  const w = Math.max(1, Math.round(Math.min(W, H * a) * f));
  const h = Math.max(1, Math.round(w / a));
  return {x: Math.round((W - w) / 2), y: Math.round((H - h) / 2), w, h};
}

function clampCrop(c) {
  const {width: W, height: H} = state.photo;
  c.x = Math.min(Math.max(0, Math.round(c.x)), W - c.w);
  c.y = Math.min(Math.max(0, Math.round(c.y)), H - c.h);
  return c;
}

function drawStage() {
  const cv = $('stage'), ctx = cv.getContext('2d');
  ctx.clearRect(0, 0, cv.width, cv.height);
  if (!state.photo) return;
  const {width: W, height: H} = state.photo;
  const s = Math.min(cv.width / W, cv.height / H);
  Object.assign(stage, {scale: s, ox: (cv.width - W * s) / 2, oy: (cv.height - H * s) / 2});
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(state.photo, stage.ox, stage.oy, W * s, H * s);
  const c = state.crop;
  ctx.fillStyle = 'rgba(0,0,0,0.45)';
  ctx.beginPath();
  ctx.rect(stage.ox, stage.oy, W * s, H * s);
  ctx.rect(stage.ox + c.x * s, stage.oy + c.y * s, c.w * s, c.h * s);
  ctx.fill('evenodd');
  ctx.strokeStyle = '#ffd000';
  ctx.lineWidth = 2;
  ctx.strokeRect(stage.ox + c.x * s, stage.oy + c.y * s, c.w * s, c.h * s);
}

async function setPhoto(blob) {
  status('');
  state.photo = await decodeImage(blob);
  state.crop = defaultCrop();
  state.result = null;
  state.pasted = null;
  resetHole();
  drawStage();
  updateInput();
}

/** The crop resized to the model's input: what the model is fed. */
function updateInput() {
  const r = state.restorer;
  if (!r || !state.photo) {
    state.input = null;
    $('run').disabled = $('bench').disabled = true;
    drawMaskCanvas();
    return;
  }
  const t = r.plan.image;
  if (!state.crop || Math.abs(state.crop.w / state.crop.h - cropAspect()) > 0.02) {
    state.crop = defaultCrop();
    drawStage();
  }
  const c = state.crop;
  state.input = pixelsOf(state.photo, c.x, c.y, c.w, c.h, t.width, t.height);
  if (r.plan.mask && (!state.hole || state.hole.length !== t.width * t.height)) resetHole();
  $('run').disabled = $('bench').disabled = false;
  drawMaskCanvas();
}

function stageToPhoto(ev) {
  const cv = $('stage'), b = cv.getBoundingClientRect();
  const px = (ev.clientX - b.left) * (cv.width / b.width);
  const py = (ev.clientY - b.top) * (cv.height / b.height);
  return [(px - stage.ox) / stage.scale, (py - stage.oy) / stage.scale];
}

let dragging = null;
function onStageDown(ev) {
  if (!state.photo) return;
  const [x, y] = stageToPhoto(ev);
  const c = state.crop;
  // Grab the box where it is clicked; a click outside moves its centre there.
  if (x < c.x || y < c.y || x > c.x + c.w || y > c.y + c.h) {
    Object.assign(c, clampCrop({...c, x: x - c.w / 2, y: y - c.h / 2}));
    drawStage();
  }
  dragging = {dx: x - c.x, dy: y - c.y};
  $('stage').setPointerCapture(ev.pointerId);
}
function onStageMove(ev) {
  if (!dragging) return;
  const [x, y] = stageToPhoto(ev);
  Object.assign(state.crop, clampCrop({...state.crop, x: x - dragging.dx, y: y - dragging.dy}));
  drawStage();
}
function onStageUp() {
  if (!dragging) return;
  dragging = null;
  updateInput();
}
function onCropSize() {
  if (!state.photo) return;
  const old = state.crop, next = defaultCrop();
  // keep the box's centre where the person put it
  next.x = old.x + old.w / 2 - next.w / 2;
  next.y = old.y + old.h / 2 - next.h / 2;
  state.crop = clampCrop(next);
  drawStage();
  updateInput();
}

// ---------------------------------------------------------------- hole painting

function resetHole() {
  const t = state.restorer?.plan.mask;
  state.hole = t ? new Uint8Array(t.width * t.height) : null;
  drawMaskCanvas();
}

function setHole(hole) {
  state.hole = hole;
  drawMaskCanvas();
}

function drawMaskCanvas() {
  const cv = $('mask-canvas'), ctx = cv.getContext('2d');
  ctx.clearRect(0, 0, cv.width, cv.height);
  const t = state.restorer?.plan.mask;
  if (!t) return;
  if (state.input) {
    const [src, sctx] = canvas2d(state.input.width, state.input.height);
    sctx.putImageData(state.input, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(src, 0, 0, cv.width, cv.height);
  }
  if (!state.hole) return;
  const [ov, octx] = canvas2d(t.width, t.height);
  const img = octx.createImageData(t.width, t.height);
  for (let i = 0; i < state.hole.length; i++) {
    if (state.hole[i]) img.data.set([255, 32, 32, 170], 4 * i);
  }
  octx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(ov, 0, 0, cv.width, cv.height);
}

function paintAt(ev, erase) {
  const t = state.restorer?.plan.mask;
  if (!t || !state.hole) return;
  const cv = $('mask-canvas'), b = cv.getBoundingClientRect();
  const x = (ev.clientX - b.left) / b.width * t.width;
  const y = (ev.clientY - b.top) / b.height * t.height;
  const r = Number($('brush').value);
  const value = erase ? 0 : 1;
  for (let j = Math.max(0, Math.floor(y - r)); j <= Math.min(t.height - 1, Math.ceil(y + r)); j++) {
    for (let i = Math.max(0, Math.floor(x - r)); i <= Math.min(t.width - 1, Math.ceil(x + r)); i++) {
      if ((i + 0.5 - x) ** 2 + (j + 0.5 - y) ** 2 <= r * r) state.hole[j * t.width + i] = value;
    }
  }
}

let painting = null;
let lastPaint = null;
function onMaskDown(ev) {
  if (!state.restorer?.plan.mask) return;
  ev.preventDefault();
  painting = {erase: ev.button === 2 || ev.shiftKey};
  lastPaint = ev;
  $('mask-canvas').setPointerCapture(ev.pointerId);
  paintAt(ev, painting.erase);
  drawMaskCanvas();
}
function onMaskMove(ev) {
  if (!painting) return;
  // fill the gap between two pointer events so a fast stroke stays connected
  const steps = Math.max(1, Math.ceil(Math.hypot(ev.clientX - lastPaint.clientX,
                                                 ev.clientY - lastPaint.clientY) / 3));
  for (let k = 1; k <= steps; k++) {
    const f = k / steps;
    paintAt({clientX: lastPaint.clientX + (ev.clientX - lastPaint.clientX) * f,
             clientY: lastPaint.clientY + (ev.clientY - lastPaint.clientY) * f}, painting.erase);
  }
  lastPaint = ev;
  drawMaskCanvas();
}
function onMaskUp() {
  painting = null;
}

/** The hole found by the shipped occluder segmenter on the current crop. */
async function findHole() {
  const t = state.restorer?.plan.mask;
  if (!t || !state.finderUrl) return;
  if (!state.photo) throw new Error('pick a photo first');
  if (!state.finder) {
    const url = state.finderUrl;
    const data = await (await fetchOk(url, 'the segmenter samples manifest')).json();
    const [bytes, card] = await Promise.all([
      fetchOk(besideManifest(url, data.model), 'the segmenter').then((r) => r.arrayBuffer()),
      fetchOk(besideManifest(url, data.card), 'the segmenter card').then((r) => r.json()),
    ]);
    state.finder = await Restorer.load(bytes, card, {wasmDir: WASM_DIR, allowThreads: ALLOW_THREADS,
                                                     singleThread: true});
    if (!state.finder.plan.segment) throw new CardError('the listed segmenter does not output a hole map');
  }
  const f = state.finder, fi = f.plan.image, c = state.crop;
  const {probs} = await f.restore({image: pixelsOf(state.photo, c.x, c.y, c.w, c.h, fi.width, fi.height)});
  setHole(f.holeFrom(probs, t.width, t.height, 1));
}

async function loadMaskFile(file) {
  const t = state.restorer?.plan.mask;
  if (!t) return;
  const bmp = await decodeImage(file);
  // a mask of another size is resized to the input (nearest: it stays 0/1)
  const [, ctx] = canvas2d(t.width, t.height);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(bmp, 0, 0, t.width, t.height);
  setHole(holeFromImage(ctx.getImageData(0, 0, t.width, t.height)));
}

// ---------------------------------------------------------------- restore and compare

/** Tint the pixels where `isHole(i)` red (the hole, as the page paints it). */
function tinted(img, isHole) {
  const shown = new ImageData(new Uint8ClampedArray(img.data), img.width, img.height);
  const d = shown.data;
  for (let i = 0; i < img.width * img.height; i++) {
    if (!isHole(i)) continue;
    d[4 * i] = 0.4 * d[4 * i] + 0.6 * 255;
    d[4 * i + 1] *= 0.4;
    d[4 * i + 2] *= 0.4;
  }
  return shown;
}

function showResult(output) {
  const r = state.restorer, out = r.plan.outputs[0];
  state.result = output;
  const view = 384;
  // before: the input as fed, its hole tinted red (an SR input shown at the output's size,
  // smoothed by the browser); after: the output, or for a segmenter the crop with the
  // hole it found tinted
  let before = state.input, after = output;
  if (r.plan.segment) {
    const [, ctx] = canvas2d(out.width, out.height);
    const [src, sctx] = canvas2d(state.input.width, state.input.height);
    sctx.putImageData(state.input, 0, 0);
    ctx.drawImage(src, 0, 0, out.width, out.height);
    after = tinted(ctx.getImageData(0, 0, out.width, out.height), (i) => state.probs[i] > out.threshold);
  } else if (r.plan.mask && state.hole) {
    before = tinted(state.input, (i) => state.hole[i]);
  }
  putScaled($('before'), before, out.width, out.height, true);
  putScaled($('after'), after, out.width, out.height, false);
  for (const id of ['before', 'after']) {
    $(id).style.width = `${view}px`;
    $(id).style.height = `${view * out.height / out.width}px`;
  }
  $('compare').hidden = $('slider').hidden = false;
  applySlider();
  // the download: the restored crop, or a segmenter's map (white = hole)
  const [c] = canvas2d(output.width, output.height);
  c.getContext('2d').putImageData(output, 0, 0);
  $('download').href = c.toDataURL('image/png');
  $('download').download = r.plan.segment ? 'hole.png' : 'restored.png';
  $('download').hidden = false;
  if (r.plan.mask && !r.plan.segment) {
    state.pasted = pasteBack();
    $('download-full').href = state.pasted.canvas.toDataURL('image/png');
    $('download-full').hidden = false;
  }
}

/** The whole photo with only the hole replaced: the output resized to the crop box and
 * drawn through the hole mask, grown by one model pixel and feathered over about one, so
 * no seam shows; every pixel outside that band is the photo's own. */
function pasteBack() {
  const r = state.restorer, t = r.plan.mask, c = state.crop, photo = state.photo;
  const [full, fctx] = canvas2d(photo.width, photo.height);
  fctx.drawImage(photo, 0, 0);
  const [out, octx] = canvas2d(state.result.width, state.result.height);
  octx.putImageData(state.result, 0, 0);
  const grown = new Uint8ClampedArray(t.width * t.height * 4);
  for (let y = 0; y < t.height; y++) {
    for (let x = 0; x < t.width; x++) {
      let near = 0;
      for (let dy = -1; dy <= 1 && !near; dy++) {
        for (let dx = -1; dx <= 1 && !near; dx++) {
          const yy = y + dy, xx = x + dx;
          if (yy >= 0 && yy < t.height && xx >= 0 && xx < t.width) near = state.hole[yy * t.width + xx];
        }
      }
      grown[4 * (y * t.width + x) + 3] = near ? 255 : 0;
    }
  }
  const [mask, mctx] = canvas2d(t.width, t.height);
  mctx.putImageData(new ImageData(grown, t.width, t.height), 0, 0);
  const [patch, pctx] = canvas2d(c.w, c.h);
  pctx.imageSmoothingEnabled = true;
  pctx.imageSmoothingQuality = 'high';
  pctx.drawImage(out, 0, 0, c.w, c.h);
  pctx.globalCompositeOperation = 'destination-in';
  pctx.filter = `blur(${Math.max(0.5, 0.5 * c.w / t.width)}px)`;
  pctx.drawImage(mask, 0, 0, c.w, c.h);
  fctx.drawImage(patch, c.x, c.y);
  return {canvas: full, ctx: fctx};
}

function applySlider() {
  const v = Number($('slider').value);
  $('after').style.clipPath = `inset(0 0 0 ${v}%)`;
  $('divider').style.left = `${v}%`;
}

/** Dragging on the picture moves the divider too. */
function onCompare(ev) {
  if (ev.type === 'pointerdown') $('compare').setPointerCapture(ev.pointerId);
  else if (!(ev.buttons & 1)) return;
  const b = $('compare').getBoundingClientRect();
  $('slider').value = String(Math.round(Math.min(1, Math.max(0, (ev.clientX - b.left) / b.width)) * 100));
  applySlider();
}

function inputsNow() {
  if (!state.input) throw new Error('pick a photo first');
  const r = state.restorer;
  if (r.plan.mask && !state.hole.some((v) => v)) {
    throw new Error('paint the hole first (or load a mask PNG)');
  }
  return {image: state.input, hole: state.hole};
}

async function restoreNow() {
  status('');
  const r = state.restorer;
  const {output, ms, probs} = await r.restore(inputsNow());
  state.probs = probs ?? null;
  showResult(output);
  const first = r.times.length === 1 ? ' (the first run includes XNNPACK set-up)' : '';
  $('latency').textContent = `This run: ${ms.toFixed(1)} ms${first} · ${r.backendText()}`;
  return {output, ms};
}

async function benchNow(runs = 10) {
  status('');
  const r = state.restorer;
  $('latency').textContent = `Timing ${runs} runs…`;
  const b = await r.benchmark(inputsNow(), {runs, warmup: 2});
  $('latency').textContent = `Median of ${b.runs} runs: ${b.p50_ms.toFixed(1)} ms ` +
      `(fastest ${b.min_ms.toFixed(1)} ms) · ${r.backendText()}`;
  return b;
}

// ---------------------------------------------------------------- samples (page and test)

async function imageDataOf(url) {
  const bmp = await decodeImage(await (await fetchOk(url, 'a sample')).blob());
  return pixelsOf(bmp, 0, 0, bmp.width, bmp.height, bmp.width, bmp.height);
}

/** Sample `index` of the loaded shipped file, as the page would feed it. */
async function sampleInputs(index) {
  const m = state.manifest;
  if (!m) throw new Error('no samples: this model was not loaded from a samples manifest');
  const item = m.data.samples[index];
  if (!item) throw new Error(`no sample ${index}`);
  const r = state.restorer;
  const feed = {};
  for (const [key, rel] of Object.entries(item.inputs)) {
    const img = await imageDataOf(besideManifest(m.url, rel));
    const t = r.plan.inputs.find((x) => x.key === key) ??
        (key === 'mask' ? r.plan.mask : r.plan.image);
    if (t.role === 'mask') feed.hole = holeFromImage(img);
    else feed.image = img;
  }
  return feed;
}

async function useSample() {
  const m = state.manifest;
  if (!m) throw new Error('the sample faces come with the shipped files');
  const item = m.data.samples[0];
  const imageRel = Object.entries(item.inputs).find(([k]) => k !== 'mask')[1];
  await setPhoto(await (await fetchOk(besideManifest(m.url, imageRel), 'a sample')).blob());
  if (item.inputs.mask) {
    await loadMaskFile(await (await fetchOk(besideManifest(m.url, item.inputs.mask), 'a sample')).blob());
  }
}

function f32Base64(arr) {
  const bytes = new Uint8Array(Float32Array.from(arr).buffer);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function rgbBase64(img) {
  const n = img.width * img.height;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) rgb.set(img.data.subarray(4 * i, 4 * i + 3), 3 * i);
  let s = '';
  for (let i = 0; i < rgb.length; i += 0x8000) s += String.fromCharCode(...rgb.subarray(i, i + 0x8000));
  return btoa(s);
}

// ---------------------------------------------------------------- wiring

async function init() {
  const list = await (await fetchOk(new URL('./models.json', import.meta.url), 'models.json')).json();
  const sel = $('model');
  const listUrl = new URL('./models.json', import.meta.url);
  // only the files this checkout ships (an entry whose samples manifest is absent is left out)
  const present = await Promise.all(list.models.map(async (m) => {
    const url = new URL(String(m.manifest), listUrl).href;
    const ok = await fetch(url, {method: 'HEAD'}).then((r) => r.ok, () => false);
    return ok ? {...m, url} : null;
  }));
  for (const m of present.filter(Boolean)) {
    const o = document.createElement('option');
    o.value = m.url;
    o.textContent = m.title;
    sel.append(o);
    if (m.finds_hole && !state.finderUrl) state.finderUrl = m.url;
  }
  sel.addEventListener('change', () => track(loadShipped(sel.value, sel.selectedOptions[0].textContent)));
  $('load-own').addEventListener('click', () => track(loadOwn()));
  $('photo').addEventListener('change', (e) => e.target.files[0] && track(setPhoto(e.target.files[0])));
  $('sample').addEventListener('click', () => track(useSample()));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const files = [...(e.dataTransfer?.files ?? [])];
    const f = files.find((x) => x.type.startsWith('image/')) ?? files[0];
    if (f) track(setPhoto(f));
  });
  const st = $('stage');
  st.addEventListener('pointerdown', onStageDown);
  st.addEventListener('pointermove', onStageMove);
  st.addEventListener('pointerup', onStageUp);
  st.addEventListener('pointercancel', onStageUp);
  $('crop-size').addEventListener('input', onCropSize);
  st.tabIndex = 0;
  st.addEventListener('keydown', (e) => {
    const step = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]}[e.key];
    if (!step || !state.photo) return;
    e.preventDefault();
    const d = Math.max(1, Math.round(state.crop.w * (e.shiftKey ? 0.1 : 0.02)));
    state.crop = clampCrop({...state.crop, x: state.crop.x + step[0] * d, y: state.crop.y + step[1] * d});
    drawStage();
    updateInput();
  });
  const mc = $('mask-canvas');
  mc.addEventListener('pointerdown', onMaskDown);
  mc.addEventListener('pointermove', onMaskMove);
  mc.addEventListener('pointerup', onMaskUp);
  mc.addEventListener('pointercancel', onMaskUp);
  mc.addEventListener('contextmenu', (e) => e.preventDefault());
  $('clear-mask').addEventListener('click', resetHole);
  $('find-hole').addEventListener('click', () => track(findHole()));
  $('mask-file').addEventListener('change', (e) => e.target.files[0] && track(loadMaskFile(e.target.files[0])));
  $('run').addEventListener('click', () => track(restoreNow()));
  $('bench').addEventListener('click', () => track(benchNow()));
  $('slider').addEventListener('input', applySlider);
  $('compare').addEventListener('pointerdown', onCompare);
  $('compare').addEventListener('pointermove', onCompare);
  if (sel.options.length) {
    await loadShipped(sel.value, sel.selectedOptions[0].textContent);
  }
}

const ready = init().catch((e) => { fail(e); throw e; });

// The test's handle on the page: the same functions the buttons call.
window.tffaceDemo = {
  ready,
  state,
  loadShipped: async (url) => describe(await loadShipped(url)),
  runtime: () => ({...state.restorer.runtime, backend: state.restorer.backendText()}),
  plan: () => state.restorer.plan,
  /** Run sample `index` of the loaded shipped file; the output as base64 RGB bytes. */
  async runSample(index) {
    const {output, ms, probs} = await state.restorer.restore(await sampleInputs(index));
    return {rgb: rgbBase64(output), width: output.width, height: output.height, ms,
            probs: probs ? f32Base64(probs) : null};
  },
  /** A segmenter's last output through the Restore button (base64 float32). */
  lastProbs: () => (state.probs ? f32Base64(state.probs) : null),
  finderListed: () => Boolean(state.finderUrl),
  async benchmarkSample(index, runs) {
    return state.restorer.benchmark(await sampleInputs(index), {runs, warmup: 3});
  },
  /** What the "after" canvas shows, at the model's output resolution. */
  afterPixels() {
    if (!state.result) return null;
    const c = $('after');
    return {rgb: rgbBase64(c.getContext('2d').getImageData(0, 0, c.width, c.height)),
            width: c.width, height: c.height};
  },
  hole: () => (state.hole ? Array.from(state.hole) : null),
  photoSize: () => (state.photo ? [state.photo.width, state.photo.height] : null),
  /** The whole photo with the hole replaced (what "Download the whole photo" gives). */
  pastedPixels() {
    if (!state.pasted) return null;
    const {canvas, ctx} = state.pasted;
    return {rgb: rgbBase64(ctx.getImageData(0, 0, canvas.width, canvas.height)),
            width: canvas.width, height: canvas.height};
  },
  /** The crop as fed to the model (base64 RGB at the input's size). */
  inputPixels: () => (state.input ? {rgb: rgbBase64(state.input), width: state.input.width,
                                     height: state.input.height} : null),
  /** Place the crop box (photo pixels: top-left and width), as dragging it does. */
  setCrop(x, y, w) {
    state.crop = clampCrop({x, y, w, h: Math.round(w / cropAspect())});
    drawStage();
    updateInput();
  },
  status: () => $('status').textContent,
};
