// Faces in the page as the Python path finds and frames them (tfface/faces/detect.py,
// align.py and pipeline.py): MediaPipe's BlazeFace short-range .tflite run with LiteRT.js,
// its anchors decoded and merged by weighted non-maximum suppression, with detect.py's
// second look, small-face pass, reframing look and strong-first-look rule (the reframing
// look and its tight looks at tfface's own 64 and 96 px inputs, withInputSide; every other
// look a 128 px draw), the mouth corners placed from its six keypoints, the five-point
// similarity to the training template, and
// the pieces of the restore: native-resolution crops, super-resolution tiles blended with
// tent weights, hole and face blend weights.
//
// Pure arithmetic except BlazeFace.detect, which is handed a function that draws a
// square of the photo at 128 px (app.js does it with a canvas). Points are (x, y) in
// pixel-index coordinates (pixel centres at integers), as in the Python code; a 2x3
// matrix [[a, b, c], [d, e, f]] maps (x, y) to (a x + b y + c, d x + e y + f).

import {loadAndCompile, Tensor} from '@litertjs/core';
import {initRuntime, roundHalfEven} from './restorer.js';

/** The constants of tfface/faces/detect.py (tests/test_web_demo.py checks they agree). */
export const BLAZEFACE = {
  size: 128,            // BlazeFaceDetector.SIZE
  threshold: 0.6,       // its default minimum score
  nmsIou: 0.3,          // weighted NMS overlap
  mouthRatio: 0.937,    // BLAZEFACE_MOUTH_RATIO: mouth-corner distance / eye distance
  mouthShift: -0.156,   // BLAZEFACE_MOUTH_SHIFT: eye distances along the face's down axis
  searchSide: 448,      // longer side (px) of the finer search level
  // The second look at every face: tfface's two upright looks (VERIFY_LOOKS: eyes 16 px
  // apart in a 64 px input and 32 px in a 96 px one) at their own scale, eyes 16 and 32 px
  // apart, centred in the page's 128 px input (LiteRT.js cannot resize a model's input;
  // withInputSide makes tfface's 64 and 96 px ones, which only the reframing look uses so
  // far): the network sees the face at tfface's size, with more of the photo around it. A face
  // is kept when their mean reaches verifyThreshold. That photo around the face lets
  // more non-faces score higher than in tfface's smaller inputs, so the page asks more
  // than tfface's 0.64 (on 520 composed photos, docs/web_demo.md: at 0.64 the page kept 13
  // non-faces; at 0.70, with the reframing rule of then, 1, and 2 faces more than before).
  tffaceLooks: [[64, 16], [96, 32]],
  verifyThreshold: 0.70,
  // The small-face pass (BlazeFaceDetector's small_faces, on by default): first-look
  // detections of at least smallThreshold, below threshold, at most smallMaxInput px wide
  // in the finest level's input and overlapping no first-look detection get a closer look.
  smallThreshold: 0.2,        // its small_threshold default
  smallMaxInput: 28,          // SMALL_MAX_INPUT
  // SMALL_LOOK (input side, box side) px: the candidate's box 40 px in a 96 px input.
  // LiteRT.js cannot resize the input, so the page draws the same framing at 128 px (the
  // box at 40 / 96 of it: 53.3 px).
  smallLook: [96, 40],
  smallLookThreshold: 0.7,    // SMALL_LOOK_THRESHOLD: what that look must score
  smallMinLook: 0.6,          // SMALL_MIN_LOOK: what each of the two second looks must score
  // The reframing look (REFRAME_LOOK, reframe on by default): before the second look drops
  // a first-look face, the photo around its box, the box 28 px in a 64 px input, run at
  // 64 px as tfface runs it (withInputSide). The face it finds is kept, as tfface keeps it,
  // when tfface's own second looks from its keypoints (tffaceLooks at their 64 and 96 px
  // inputs, the tight looks) reach tightThreshold (its verify_threshold) and the page's
  // second looks (tfface's context looks) contextThreshold (its context_threshold). Until
  // 2026-12 the page stood in for the tight looks with its 128 px looks blacked beyond 64
  // or 96 px; those scored a space suit 0.684 and 0.652 where tfface's inputs score it
  // 0.52-0.55, and kept it as a face (docs/web_demo.md).
  reframeLook: [64, 28],
  smallerInputs: [64, 96],    // the input sides of tfface's tight looks and reframing look
  tightThreshold: 0.64,
  contextThreshold: 0.65,
  // The strong first look (tfface's strong rule, on by default; docs/faces.md "A strong
  // first look that the wider looks confirm"): a first-look face scoring at least
  // strongFirst (STRONG_FIRST) that the second look and the reframing look would drop
  // stays when the mean of four looks that see the photo around it reaches strongThreshold
  // (strong_threshold's default): the context looks (CONTEXT_LOOKS: eyes 16 and 32 px apart
  // in a 128 px input, which the page's second looks already are), one more upright look
  // between them (STRONG_LOOK: eyes 24 px apart in a 128 px input) and the small-face
  // pass's look from its box (smallLook, 0.05 and up). Three of the four are tfface's own
  // 128 px inputs; only the box look is drawn at 128 px (as in the small-face pass).
  contextLooks: [[128, 16], [128, 32]],
  strongFirst: 0.7,
  strongLook: [128, 24],
  strongThreshold: 0.66,
};

/** Centre (x, y) and half-axes of the ellipse, in fractions of an aligned face crop's
 * side, outside which the occluder segmenter's hole is dropped: tfface's
 * OccluderSegmenter.FACE_SUPPORT (tests/test_web_demo.py checks they agree). What it cuts
 * is background and hair beside the head, where a false hole would smear the photo. */
export const FACE_SUPPORT = [0.5, 0.56, 0.42, 0.50];

/** The occluder segmenter's edge threshold: pixels above it 8-connected to the hole
 * (p > 0.5) join it: tfface's OccluderSegmenter.EDGE_THRESHOLD (tests/test_web_demo.py
 * checks they agree). */
export const SEGMENTER_EDGE = 0.1;

/** The hole (0/1, w x h, row-major) of an aligned face crop with every pixel outside
 * FACE_SUPPORT cleared, in place; pixel centres at (i + 0.5) / side, as in tfface. */
export function clipToFace(hole, w, h) {
  const [cx, cy, rx, ry] = FACE_SUPPORT;
  for (let y = 0; y < h; y++) {
    const dy = ((y + 0.5) / h - cy) / ry;
    for (let x = 0; x < w; x++) {
      const dx = ((x + 0.5) / w - cx) / rx;
      if (dx * dx + dy * dy > 1) hole[y * w + x] = 0;
    }
  }
  return hole;
}

/** Anchor centres (fractions, [x0, y0, x1, y1, ...], 896 of them) of BlazeFace short
 * range: strides 8 (2 anchors a cell) and 16 (6 anchors a cell). */
export function anchors(size = BLAZEFACE.size) {
  const out = [];
  for (const [stride, per] of [[8, 2], [16, 6]]) {
    const n = size / stride;
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        for (let k = 0; k < per; k++) out.push((x + 0.5) / n, (y + 0.5) / n);
      }
    }
  }
  return Float32Array.from(out);
}

/** The model's two outputs for one square of side `side` px (an input of `size` px; `anc`
 * its anchors) -> detections above `threshold` in that square's coordinates: {box: [x0, y0,
 * x1, y1] (continuous, pixel i covers i..i+1), kps: [[x, y] x 6] (continuous), score}. */
export function decode(reg, logits, anc, side, threshold = BLAZEFACE.threshold, size = BLAZEFACE.size) {
  const s = size;
  const f = Math.fround;
  const dets = [];
  for (let i = 0; i < logits.length; i++) {
    const z = Math.min(50, Math.max(-50, logits[i]));
    const score = f(1 / (1 + Math.exp(-z)));
    if (!(score >= threshold)) continue;
    const r = reg.subarray(16 * i, 16 * i + 16);
    const ax = anc[2 * i], ay = anc[2 * i + 1];
    const cx = ax + r[0] / s, cy = ay + r[1] / s, w = r[2] / s, h = r[3] / s;
    const box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2].map((v) => v * side);
    const kps = [];
    for (let k = 0; k < 6; k++) kps.push([(r[4 + 2 * k] / s + ax) * side, (r[5 + 2 * k] / s + ay) * side]);
    dets.push({box, kps, score});
  }
  return dets;
}

export function iou(a, b) {
  const x0 = Math.max(a[0], b[0]), y0 = Math.max(a[1], b[1]);
  const x1 = Math.min(a[2], b[2]), y1 = Math.min(a[3], b[3]);
  const inter = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  const area = (q) => (q[2] - q[0]) * (q[3] - q[1]);
  return inter / Math.max(area(a) + area(b) - inter, 1e-9);
}

/** MediaPipe's weighted NMS: detections overlapping the best remaining one by IoU >=
 * `thr` are one face, its box and keypoints their score-weighted mean. */
export function weightedNms(dets, thr = BLAZEFACE.nmsIou) {
  const order = [...dets].sort((a, b) => b.score - a.score);
  const used = new Array(order.length).fill(false);
  const out = [];
  for (let i = 0; i < order.length; i++) {
    if (used[i]) continue;
    const group = [];
    for (let j = 0; j < order.length; j++) {
      if (!used[j] && (j === i || iou(order[i].box, order[j].box) >= thr)) group.push(j);
    }
    let wsum = 0;
    const box = [0, 0, 0, 0];
    const kps = Array.from({length: 6}, () => [0, 0]);
    for (const j of group) {
      used[j] = true;
      const d = order[j], w = d.score;
      wsum += w;
      for (let c = 0; c < 4; c++) box[c] += d.box[c] * w;
      for (let k = 0; k < 6; k++) { kps[k][0] += d.kps[k][0] * w; kps[k][1] += d.kps[k][1] * w; }
    }
    out.push({box: box.map((v) => v / wsum), kps: kps.map(([x, y]) => [x / wsum, y / wsum]),
              score: order[i].score});
  }
  return out;
}

/** BlazeFace's six keypoints (right eye, left eye, nose, mouth centre, ears, as the
 * subject sees them) -> the five landmarks (image-left eye first, nose, mouth corners). */
export function fivePoints(kp) {
  let eyes = [kp[0], kp[1]];
  if (eyes[0][0] > eyes[1][0]) eyes = [eyes[1], eyes[0]];
  const ev = [eyes[1][0] - eyes[0][0], eyes[1][1] - eyes[0][1]];
  const half = [0.5 * BLAZEFACE.mouthRatio * ev[0], 0.5 * BLAZEFACE.mouthRatio * ev[1]];
  const down = [-ev[1], ev[0]];
  const mouth = [kp[3][0] + BLAZEFACE.mouthShift * down[0], kp[3][1] + BLAZEFACE.mouthShift * down[1]];
  return [eyes[0], eyes[1], kp[2], [mouth[0] - half[0], mouth[1] - half[1]],
          [mouth[0] + half[0], mouth[1] + half[1]]];
}

/** Offsets of `tile`-px tiles over 0..n stepping by tile - overlap, the last one flush
 * with the end (pipeline.sr_tiles; [0] when n <= tile). */
export function tileStarts(n, tile, overlap) {
  if (tile <= overlap) throw new Error(`the overlap (${overlap}) must be smaller than the tile (${tile})`);
  const starts = [];
  for (let x = 0; x <= Math.max(n - tile, 0); x += tile - overlap) starts.push(x);
  if (n > tile && starts[starts.length - 1] !== n - tile) starts.push(n - tile);
  return starts;
}

/** The squares [x, y, side, largest face] (photo px) BlazeFace looks at, each drawn at
 * 128 px (black beyond the photo), at the two levels tfface.faces.detect searches:
 *  - level 0: the whole photo, its longer side at 128 px, as MediaPipe runs it (faces
 *    from about a ninth of the longer side up to the whole photo);
 *  - level 1: the photo with its longer side at `searchSide` px (never enlarged; only
 *    when that is at least 1.5 x 128), for faces down to about 14 px there. Python runs
 *    the network once on that whole image (it is fully convolutional); LiteRT.js cannot
 *    resize an input, so the page covers it with 128 px tiles overlapping by half. A tile
 *    holds whole only faces up to half its side, and larger ones are level 0's (a ninth
 *    of the longer side is less than half a tile), so a tile's detections larger than
 *    that are not kept: cut off from their surroundings, they were false faces. */
export function searchSquares(h, w, {searchSide = BLAZEFACE.searchSide} = {}) {
  const size = BLAZEFACE.size;
  const L = Math.max(h, w);
  const out = [[0, 0, L, Infinity]];
  const fine = Math.min(searchSide, L);
  if (fine >= 1.5 * size) {
    const f = fine / L;
    const fw = Math.max(1, Math.round(w * f)), fh = Math.max(1, Math.round(h * f));
    for (const y of tileStarts(fh, size, size / 2)) {
      for (const x of tileStarts(fw, size, size / 2)) out.push([x / f, y / f, size / f, size / 2 / f]);
    }
  }
  return out;
}

/** The photo -> `size` px input matrix of an upright look at a detection (six keypoints,
 * pixel indices): the face upright, its eyes `eyePx` apart, the point between the eyes'
 * midpoint and the mouth in the middle (cv2.getRotationMatrix2D's rotation and scale, as
 * detect.py's second_look builds it). */
export function uprightMatrix(kps, eyePx, size = BLAZEFACE.size) {
  const s = size;
  let v = [kps[1][0] - kps[0][0], kps[1][1] - kps[0][1]];
  const d = Math.max(Math.hypot(v[0], v[1]), 1e-3);
  if (v[0] < 0) v = [-v[0], -v[1]];  // the image-left eye first
  const cx = 0.5 * ((kps[0][0] + kps[1][0]) / 2 + kps[3][0]);
  const cy = 0.5 * ((kps[0][1] + kps[1][1]) / 2 + kps[3][1]);
  const angle = Math.atan2(v[1], v[0]), scale = eyePx / d;
  const a = scale * Math.cos(angle), b = scale * Math.sin(angle);
  return [[a, b, (1 - a) * cx - b * cy + s / 2 - 0.5 - cx],
          [-b, a, b * cx + (1 - a) * cy + s / 2 - 0.5 - cy]];
}

/** A copy of a BlazeFace short-range .tflite (bytes) whose input is `side` x `side` px
 * (a multiple of 16): tfface's smaller inputs (64 and 96 px), which LiteRT.js cannot resize
 * to. The network is fully convolutional and its reshapes take -1, so only the shapes of
 * the flatbuffer's activations change (its weights stay as they are): every square
 * [1, n, n, c] (n = 128, 64, ... 8) becomes [1, n * side / 128, ...], the anchors' 512, 384
 * and 896 rows those of the smaller input. tests/test_web_demo.py checks the file against
 * LiteRT's resize_tensor_input, as tfface runs its smaller inputs. */
export function withInputSide(bytes, side) {
  const k = side / BLAZEFACE.size;
  const b = Uint8Array.from(bytes);
  const dv = new DataView(b.buffer);
  const u32 = (p) => dv.getUint32(p, true), i32 = (p) => dv.getInt32(p, true);
  const ref = (p) => p + u32(p);
  const bad = (why) => new Error(`the face detector file cannot be run at ${side} px (${why})`);
  if (!(side % 16 === 0 && side > 0 && side <= BLAZEFACE.size)) throw bad('not a multiple of 16');
  // a flatbuffer table's field i (its position, or null when absent)
  const field = (t, i) => {
    const vt = t - i32(t);
    if (vt < 0 || vt + 4 > b.length) throw bad('not a flatbuffer');
    if (4 + 2 * i >= dv.getUint16(vt, true)) return null;
    const o = dv.getUint16(vt + 4 + 2 * i, true);
    return o ? t + o : null;
  };
  const vector = (t, i) => {  // [length, position of the first element] of a vector field
    const at = field(t, i);
    if (at === null) return [0, 0];
    const v = ref(at);
    return [u32(v), v + 4];
  };
  const model = ref(0);
  const [, subgraphs] = vector(model, 2);
  const [nBuffers, buffers] = vector(model, 4);
  const [nTensors, tensors] = vector(ref(subgraphs), 0);
  if (!nTensors) throw bad('no tensors');
  const rows = {512: 2 * (16 * k) ** 2, 384: 6 * (8 * k) ** 2, 896: 2 * (16 * k) ** 2 + 6 * (8 * k) ** 2};
  const square = new Set([128, 64, 32, 16, 8]);
  let changed = 0;
  for (let i = 0; i < nTensors; i++) {
    const t = ref(tensors + 4 * i);
    const buf = field(t, 2) === null ? 0 : u32(field(t, 2));
    if (buf > 0 && buf < nBuffers && vector(ref(buffers + 4 * buf), 0)[0] > 0) continue;  // a weight
    for (const f of [0, 7]) {  // shape, shape_signature
      const [n, at] = vector(t, f);
      const dims = Array.from({length: n}, (_, j) => i32(at + 4 * j));
      if (n === 4 && dims[0] === 1 && dims[1] === dims[2] && square.has(dims[1])) {
        dv.setInt32(at + 4, dims[1] * k, true);
        dv.setInt32(at + 8, dims[2] * k, true);
        changed += 1;
      } else if (n === 3 && dims[0] === 1 && rows[dims[1]]) {
        dv.setInt32(at + 4, rows[dims[1]], true);
        changed += 1;
      }
    }
  }
  if (!changed) throw bad('no input of 128 x 128 px');
  return b;
}

/** A framing of tfface's (input side, px of the face there) drawn at the page's 128 px
 * input: the same fraction of it (e.g. [96, 40] -> 53.3 px). */
export function at128([side, px]) {
  return (px / side) * BLAZEFACE.size;
}

/** Scale of the finest level searchSquares searches (its input px per photo px): the
 * photo at `searchSide` px on its longer side (never enlarged), or level 0's 128 px when
 * that finer level is not searched. */
export function finestScale(h, w, {searchSide = BLAZEFACE.searchSide} = {}) {
  const L = Math.max(h, w), fine = Math.min(searchSide, L);
  return (fine >= 1.5 * BLAZEFACE.size ? fine : BLAZEFACE.size) / L;
}

/** Whether boxes a and b share any area (detect.py's _overlap). */
export function overlaps(a, b) {
  return Math.min(a[2], b[2]) > Math.max(a[0], b[0]) && Math.min(a[3], b[3]) > Math.max(a[1], b[1]);
}

/** The small-face pass's candidates, as detect.py picks them: of the first look's
 * detections `all` (photo px, kept down to smallThreshold), those scoring below
 * `threshold` whose box is at most BLAZEFACE.smallMaxInput px wide in the finest level's
 * input (`scale` input px per photo px), merged by weighted NMS, and of those the ones
 * overlapping none of `firsts` (the merged detections at or above the threshold, whether
 * the second look kept them or not). */
export function smallCandidates(all, firsts, scale, {threshold = BLAZEFACE.threshold,
                                                     smallThreshold = BLAZEFACE.smallThreshold} = {}) {
  const weak = all.filter((d) => d.score < threshold && d.score >= smallThreshold &&
                                 (d.box[2] - d.box[0]) * scale <= BLAZEFACE.smallMaxInput);
  return weightedNms(weak).filter((c) => !firsts.some((f) => overlaps(c.box, f.box)));
}

/** The photo -> `size` px input matrix (pixel indices) of a look from a box (detect.py's
 * box_look): axis-aligned, the box's longer side at `look` = (input side, box px) drawn
 * at `size` px (the same fraction of it: at128 at 128 px), its centre in the input's
 * middle. In continuous coordinates a photo point x goes to f (x - c) + size / 2, c the
 * box's centre. */
export function boxMatrix(box, look, size = BLAZEFACE.size) {
  const s = size;
  const f = (look[1] / look[0]) * size / Math.max(box[2] - box[0], box[3] - box[1], 1e-3);
  const ox = s / 2 - f * (box[0] + box[2]) / 2, oy = s / 2 - f * (box[1] + box[3]) / 2;
  return [[f, 0, ox + 0.5 * f - 0.5], [0, f, oy + 0.5 * f - 0.5]];
}

/** BlazeFace short range compiled by LiteRT.js (one thread: it is a helper model). */
export class BlazeFace {
  static async load(bytes, {wasmDir, allowThreads = true} = {}) {
    await initRuntime(wasmDir, {allowThreads});
    const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    if (String.fromCharCode(...u8.slice(4, 8)) !== 'TFL3') {
      throw new Error('the face detector file is not a .tflite flatbuffer');
    }
    const model = await loadAndCompile(u8, {accelerator: 'wasm', cpuOptions: {numThreads: 1}});
    const ins = model.getInputDetails(), outs = model.getOutputDetails();
    const shape = (d) => Array.from(d.shape).join('x');
    const byWidth = Object.fromEntries(outs.map((d, i) => [d.shape[d.shape.length - 1], i]));
    if (ins.length !== 1 || shape(ins[0]) !== '1x128x128x3' || outs.length !== 2 ||
        byWidth[16] === undefined || byWidth[1] === undefined ||
        outs.some((d) => d.shape[1] !== 896)) {
      model.delete();
      throw new Error('the face detector file is not BlazeFace short range ' +
                      '(one 1x128x128x3 input, outputs 1x896x16 and 1x896x1)');
    }
    // tfface's smaller inputs: the tight second looks' and the reframing look's
    const models = {[BLAZEFACE.size]: model};
    try {
      for (const side of BLAZEFACE.smallerInputs) {
        models[side] = await loadAndCompile(withInputSide(u8, side),
                                            {accelerator: 'wasm', cpuOptions: {numThreads: 1}});
      }
    } catch (e) {
      for (const m of Object.values(models)) m.delete();
      throw e;
    }
    return new BlazeFace(models, byWidth[16], byWidth[1]);
  }

  /** `models`: the compiled network by input side (128 and BLAZEFACE.smallerInputs). */
  constructor(models, regIndex, clsIndex) {
    this.models = models ?? {};
    this.regIndex = regIndex;
    this.clsIndex = clsIndex;
    this.anchorsBySize = Object.fromEntries([BLAZEFACE.size, ...BLAZEFACE.smallerInputs]
        .map((side) => [side, anchors(side)]));
    this.anchors = this.anchorsBySize[BLAZEFACE.size];
  }

  /** One `size` x `size` RGBA image -> the raw outputs (the input's anchors only). */
  async run(img, size = BLAZEFACE.size) {
    const model = this.models[size];
    if (!model) throw new Error(`no face detector for a ${size} px input`);
    const n = size * size;
    const x = new Float32Array(n * 3);
    const f = Math.fround;
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) x[3 * i + c] = f(f(img.data[4 * i + c] / 127.5) - 1);
    }
    const t = new Tensor(x, [1, size, size, 3]);
    let res;
    try {
      res = await model.run([t]);
    } finally {
      t.delete();
    }
    const count = this.anchorsBySize[size].length / 2;
    const reg = res[this.regIndex].toTypedArray().slice(0, 16 * count);
    const logits = res[this.clsIndex].toTypedArray().slice(0, count);
    for (const r of res) r.delete();
    return {reg, logits};
  }

  /** An upright look at a detection: {score, kps (photo pixel indices) or null} of the
   * network run on `warp(m, size)`, the `size` px upright crop of uprightMatrix(kps, eyePx,
   * size); the detection there whose box holds the crop's middle (any score above 0.05). */
  async secondLook(warp, kps, eyePx, size = BLAZEFACE.size) {
    const m = uprightMatrix(kps, eyePx, size);
    const {reg, logits} = await this.run(await warp(m, size), size);
    const mid = size / 2;
    let best = null;
    for (const d of decode(reg, logits, this.anchorsBySize[size], size, 0.05, size)) {
      const [x0, y0, x1, y1] = d.box;
      if (x0 <= mid && x1 >= mid && y0 <= mid && y1 >= mid && (!best || d.score > best.score)) best = d;
    }
    if (!best) return {score: 0, kps: null};
    const inv = invert(m);
    return {score: best.score, kps: best.kps.map(([x, y]) => apply(inv, [x - 0.5, y - 0.5]))};
  }

  /** The look from a box (detect.py's box_look): the network on `warp(boxMatrix(box,
   * look, size), size)` (a `size` px input); the detections there at least `threshold`
   * whose box holds the input's middle, merged by weighted NMS: {box (continuous photo px),
   * kps (pixel indices), score} of the best, or null. */
  async boxLook(warp, box, look, threshold, size = BLAZEFACE.size) {
    const m = boxMatrix(box, look, size);
    const {reg, logits} = await this.run(await warp(m, size), size);
    const mid = size / 2;
    const at = decode(reg, logits, this.anchorsBySize[size], size, threshold, size)
        .filter(({box: [x0, y0, x1, y1]}) => x0 <= mid && x1 >= mid && y0 <= mid && y1 >= mid);
    if (!at.length) return null;
    const best = weightedNms(at)[0];
    const inv = invert(m);
    // continuous coordinates are pixel indices + 0.5 on both sides
    const [x0, y0] = apply(inv, [best.box[0] - 0.5, best.box[1] - 0.5]);
    const [x1, y1] = apply(inv, [best.box[2] - 0.5, best.box[3] - 0.5]);
    return {box: [x0 + 0.5, y0 + 0.5, x1 + 0.5, y1 + 0.5], score: best.score,
            kps: best.kps.map(([x, y]) => apply(inv, [x - 0.5, y - 0.5]))};
  }

  /** The second look at a face (BLAZEFACE.tffaceLooks at their own scale in the 128 px
   * input: tfface's context looks), or with `tight` tfface's own second looks (the same
   * looks in its 64 and 96 px inputs, detect.py's _looks): {scores, mean, kps: the mean of
   * `kps` and every look's keypoints}. */
  async tffaceLooks(warp, kps, {tight = false} = {}) {
    const looks = [];
    for (const [side, eye] of BLAZEFACE.tffaceLooks) {
      looks.push(await this.secondLook(warp, kps, eye, tight ? side : BLAZEFACE.size));
    }
    const scores = looks.map((l) => l.score);
    return {scores, mean: scores.reduce((a, b) => a + b, 0) / scores.length,
            kps: meanPoints([kps, ...looks.map((l) => l.kps).filter(Boolean)])};
  }

  /** The strong rule's four looks at a first-look face (its box, continuous photo px, and
   * six keypoints, pixel indices), as detect.py's strong_looks: the context looks and the
   * upright strongLook (BLAZEFACE.contextLooks and strongLook: eyes that far apart in the
   * 128 px input) and the look from its box (BLAZEFACE.smallLook; a look that finds
   * nothing at the input's middle scores 0): {scores, mean, kps: the mean of `kps` and
   * every look's keypoints}. */
  async strongLooks(warp, box, kps) {
    const looks = [];
    for (const [, eye] of [...BLAZEFACE.contextLooks, BLAZEFACE.strongLook]) {
      looks.push(await this.secondLook(warp, kps, eye));
    }
    const z = await this.boxLook(warp, box, BLAZEFACE.smallLook, 0.05);
    looks.push(z ? {score: z.score, kps: z.kps} : {score: 0, kps: null});
    const scores = looks.map((l) => l.score);
    return {scores, mean: scores.reduce((a, b) => a + b, 0) / scores.length,
            kps: meanPoints([kps, ...looks.map((l) => l.kps).filter(Boolean)])};
  }

  /** Faces of a w x h photo, best first: {box (continuous px), landmarks (five
   * points, pixel indices: centres at integers), score, secondLook, look}. `square(x, y,
   * side)` returns that square of the photo (black beyond its edges) drawn at 128 x 128
   * px; with `warp(m, size)` (the photo through the 2x3 matrix m, size x size px; 128 unless
   * a look runs tfface's 64 or 96 px input) every detection
   * gets tfface's second look (tffaceLooks: two upright looks at fixed sizes) and is kept
   * only if their mean reaches BLAZEFACE.verifyThreshold (its keypoints then the mean of
   * all three looks), as tfface.faces.detect does; `dropped` counts the others. With
   * `warp` also, as tfface.faces.detect does by default (docs/web_demo.md), two passes and
   * a rule:
   *  - `reframe`: a face that second look would drop is looked at from its box
   *    (BLAZEFACE.reframeLook, in tfface's 64 px input) and kept, as tfface keeps it, if
   *    from the keypoints found there tfface's tight looks (tffaceLooks with `tight`) reach
   *    tightThreshold and the second looks contextThreshold (`look` 'reframed', secondLook
   *    the mean of those four, its keypoints the reframing look's and the tight looks';
   *    `reframed` counts them);
   *  - `strong`: a face both would drop whose first look scored at least
   *    BLAZEFACE.strongFirst is kept when the mean of the four strongLooks reaches
   *    strongThreshold, its keypoints their mean with the first look's (`look` 'strong';
   *    `strongKept` counts them);
   *  - `smallFaces`: every small-face candidate (smallCandidates; `smallLooks` counts
   *    them) is looked at from its box (BLAZEFACE.smallLook) and, when that scores at
   *    least smallLookThreshold, given the second look; a face when each of its two
   *    scores reaches smallMinLook and their mean verifyThreshold, unless it overlaps a
   *    face already found by IoU >= 0.3 (`look` 'small'; `smallFound` counts them). */
  async detect(square, w, h, {threshold = BLAZEFACE.threshold, searchSide = BLAZEFACE.searchSide,
                              warp = null, smallFaces = true, reframe = true, strong = true,
                              smallThreshold = BLAZEFACE.smallThreshold} = {}) {
    const small = Boolean(warp) && smallFaces;
    const low = small ? Math.min(threshold, smallThreshold) : threshold;
    const all = [];
    for (const [x0, y0, side, largest] of searchSquares(h, w, {searchSide})) {
      const {reg, logits} = await this.run(await square(x0, y0, side));
      for (const d of decode(reg, logits, this.anchors, side, low)) {
        if (Math.max(d.box[2] - d.box[0], d.box[3] - d.box[1]) > largest) continue;
        all.push({box: [d.box[0] + x0, d.box[1] + y0, d.box[2] + x0, d.box[3] + y0],
                  kps: d.kps.map(([x, y]) => [x + x0 - 0.5, y + y0 - 0.5]), score: d.score});
      }
    }
    const firsts = weightedNms(all.filter((d) => d.score >= threshold));
    const found = [];
    Object.assign(this, {dropped: 0, reframed: 0, strongKept: 0, smallLooks: 0, smallFound: 0});
    for (const d of firsts) {
      let kps = d.kps, look = null, how = 'first';
      if (warp) {
        look = await this.tffaceLooks(warp, kps);
        if (look.mean < BLAZEFACE.verifyThreshold && reframe) {
          // detect.py's reframing look: its box look, tight looks and context looks
          const z = await this.boxLook(warp, d.box, BLAZEFACE.reframeLook, threshold,
                                       BLAZEFACE.reframeLook[0]);
          const tight = z && await this.tffaceLooks(warp, z.kps, {tight: true});
          if (tight && tight.mean >= BLAZEFACE.tightThreshold) {
            const wide = await this.tffaceLooks(warp, z.kps);
            if (wide.mean >= BLAZEFACE.contextThreshold) {
              this.reframed += 1;
              const scores = [...tight.scores, ...wide.scores];
              look = {scores, mean: scores.reduce((a, b) => a + b, 0) / scores.length, kps: tight.kps};
              how = 'reframed';
            }
          }
        }
        if (how === 'first' && look.mean < BLAZEFACE.verifyThreshold && strong &&
            d.score >= BLAZEFACE.strongFirst) {
          const wide = await this.strongLooks(warp, d.box, d.kps);
          if (wide.mean >= BLAZEFACE.strongThreshold) {
            this.strongKept += 1;
            [look, how] = [wide, 'strong'];
          }
        }
        if (how === 'first' && look.mean < BLAZEFACE.verifyThreshold) {
          this.dropped += 1;
          continue;
        }
        kps = look.kps;
      }
      found.push({box: d.box, kps, score: d.score, secondLook: look?.mean ?? null, look: how});
    }
    if (small) {
      const scale = finestScale(h, w, {searchSide});
      for (const c of smallCandidates(all, firsts, scale, {threshold, smallThreshold})) {
        this.smallLooks += 1;
        const z = await this.boxLook(warp, c.box, BLAZEFACE.smallLook, BLAZEFACE.smallLookThreshold);
        if (!z) continue;
        const {scores, mean, kps} = await this.tffaceLooks(warp, z.kps);
        if (mean < BLAZEFACE.verifyThreshold || Math.min(...scores) < BLAZEFACE.smallMinLook) continue;
        if (found.some((f) => iou(z.box, f.box) >= BLAZEFACE.nmsIou)) continue;  // found already
        this.smallFound += 1;
        found.push({box: z.box, kps, score: z.score, secondLook: mean, look: 'small'});
      }
    }
    return found.sort((a, b) => b.score - a.score).map((f) => ({
      box: [Math.min(Math.max(f.box[0], 0), w), Math.min(Math.max(f.box[1], 0), h),
            Math.min(Math.max(f.box[2], 0), w), Math.min(Math.max(f.box[3], 0), h)],
      landmarks: fivePoints(f.kps), score: f.score, secondLook: f.secondLook, look: f.look,
    }));
  }

  delete() {
    for (const m of Object.values(this.models)) m.delete();
  }
}

// ---------------------------------------------------------------- alignment

/** Least-squares similarity (rotation, uniform scale, translation; no reflection) that
 * maps the points `src` onto `dst`, as tfface.faces.align.similarity. */
export function similarity(src, dst) {
  const n = src.length;
  let sx = 0, sy = 0, dx = 0, dy = 0;
  for (let i = 0; i < n; i++) { sx += src[i][0]; sy += src[i][1]; dx += dst[i][0]; dy += dst[i][1]; }
  sx /= n; sy /= n; dx /= n; dy /= n;
  let v = 0, p = 0, q = 0;
  for (let i = 0; i < n; i++) {
    const ax = src[i][0] - sx, ay = src[i][1] - sy, bx = dst[i][0] - dx, by = dst[i][1] - dy;
    v += ax * ax + ay * ay;
    p += ax * bx + ay * by;
    q += ax * by - ay * bx;
  }
  const a = p / Math.max(v, 1e-12), b = q / Math.max(v, 1e-12);
  return [[a, -b, dx - (a * sx - b * sy)], [b, a, dy - (b * sx + a * sy)]];
}

/** The mean of several lists of points (each [[x, y], ...], all of one length). */
export function meanPoints(lists) {
  return lists[0].map((_, k) => [0, 1].map((c) => lists.reduce((a, p) => a + p[k][c], 0) / lists.length));
}

export function invert(m) {
  const [[a, b, c], [d, e, f]] = m;
  const det = a * e - b * d;
  return [[e / det, -b / det, (b * f - c * e) / det], [-d / det, a / det, (c * d - a * f) / det]];
}

/** m after n (apply n first). */
export function compose(m, n) {
  return [0, 1].map((r) => [
    m[r][0] * n[0][0] + m[r][1] * n[1][0],
    m[r][0] * n[0][1] + m[r][1] * n[1][1],
    m[r][0] * n[0][2] + m[r][1] * n[1][2] + m[r][2]]);
}

export function apply(m, [x, y]) {
  return [m[0][0] * x + m[0][1] * y + m[0][2], m[1][0] * x + m[1][1] * y + m[1][2]];
}

export function matrixScale(m) {
  return Math.sqrt(Math.abs(m[0][0] * m[1][1] - m[0][1] * m[1][0]));
}

/** Photo px -> crop px of a `size`-pixel aligned crop: a template point t (fractions)
 * lands at t * size - 0.5. */
export function alignmentMatrix(landmarks, size, template) {
  return similarity(landmarks, template.map(([x, y]) => [x * size - 0.5, y * size - 0.5]));
}

/** The crop side at which the face keeps the photo's resolution (scale 1). */
export function nativeSize(landmarks, template) {
  return 1000 / matrixScale(alignmentMatrix(landmarks, 1000, template));
}

/** The axis-aligned `size` crop at integer offsets centred where the template framing
 * puts the crop (align.native_crop): its photo -> crop matrix (a pure translation). */
export function nativeCropMatrix(landmarks, size, template) {
  const c = apply(invert(alignmentMatrix(landmarks, size, template)), [size / 2 - 0.5, size / 2 - 0.5]);
  const x0 = roundHalfEven(c[0] - size / 2 + 0.5), y0 = roundHalfEven(c[1] - size / 2 + 0.5);
  return [[1, 0, -x0], [0, 1, -y0]];
}

/** An axis-aligned w x h box at (x, y) (photo px) resized to tw x th: its photo -> crop
 * matrix. */
export function squareMatrix(x, y, w, h, tw, th) {
  const sx = tw / w, sy = th / h;
  // pixel centres: crop (i + 0.5) = (photo (j + 0.5) - x) * s
  return [[sx, 0, 0.5 * sx - 0.5 - x * sx], [0, sy, 0.5 * sy - 0.5 - y * sy]];
}

/** Photo -> crop matrix at k times both resolutions (pipeline._sr_matrix). */
export function srMatrix(m, k) {
  const a = [[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5]];
  return compose(compose(a, m), invert(a));
}

/** The canvas transform of a pixel-index matrix (canvas coordinates put pixel centres at
 * i + 0.5): [a, b, c, d, e, f] for ctx.setTransform. */
export function canvasTransform(m) {
  const [[a, b, c], [d, e, f]] = m;
  return [a, d, b, e, c + 0.5 - 0.5 * (a + b), f + 0.5 - 0.5 * (d + e)];
}

// ---------------------------------------------------------------- super-resolution tiles

/** Blends the k-times outputs of overlapping tiles with tent weights, exactly as
 * pipeline.sr_tiles (float64 sums in the same order, numpy's rounding). */
export class TileBlender {
  constructor(n, tile, k, overlap = Math.max(2, Math.floor(tile / 4))) {
    Object.assign(this, {n, tile, k, overlap});
    this.starts = tileStarts(n, tile, overlap);
    const m = tile * k, N = n * k;
    this.acc = new Float64Array(N * N * 3);
    this.wsum = new Float64Array(N * N);
    const tent = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      const ramp = Math.min(i + 0.5, m - i - 0.5);
      tent[i] = Math.min(1, Math.max(0.05, ramp / (overlap * k / 2 + 1e-9)));
    }
    this.tent = tent;
  }

  /** [x, y] offsets of every tile (rows outer), in the crop's pixels. */
  tiles() {
    return this.starts.flatMap((y) => this.starts.map((x) => [x, y]));
  }

  add(x, y, img) {
    const m = this.tile * this.k, N = this.n * this.k, t = this.tent;
    const X = x * this.k, Y = y * this.k;
    for (let j = 0; j < m; j++) {
      for (let i = 0; i < m; i++) {
        const w = Math.min(t[j], t[i]);
        const o = (Y + j) * N + X + i, p = 4 * (j * m + i);
        this.acc[3 * o] += img.data[p] * w;
        this.acc[3 * o + 1] += img.data[p + 1] * w;
        this.acc[3 * o + 2] += img.data[p + 2] * w;
        this.wsum[o] += w;
      }
    }
  }

  /** RGBA pixels of the blended n*k square. */
  result() {
    const N = this.n * this.k;
    const out = new Uint8ClampedArray(N * N * 4);
    for (let o = 0; o < N * N; o++) {
      for (let c = 0; c < 3; c++) out[4 * o + c] = roundHalfEven(this.acc[3 * o + c] / this.wsum[o]);
      out[4 * o + 3] = 255;
    }
    return {data: out, width: N, height: N};
  }
}

/** `img` ({data: RGBA, width, height}) mirrored left to right. */
export function mirrorX(img) {
  const {width: w, height: h} = img;
  const out = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = 4 * (y * w + x), q = 4 * (y * w + w - 1 - x);
      for (let c = 0; c < 4; c++) out[p + c] = img.data[q + c];
    }
  }
  return {data: out, width: w, height: h};
}

/** The mean of a tile's output and the output of its mirrored run (mirrored back), in
 * float64, for TileBlender.add: tfface.restore.sr.sr_image's `mirror` ((a + b) * 0.5). */
export function mirrorMean(a, mirroredRun) {
  const b = mirrorX(mirroredRun).data;
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = (a.data[i] + b[i]) * 0.5;
  return {data: out, width: a.width, height: a.height};
}

// ---------------------------------------------------------------- blend weights

/** 1 inside a w x h crop, ramping to exactly 0 over its outer `px` pixels. */
export function borderWeight(w, h = w, px = 2) {
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const ry = Math.min(1, Math.min(y, h - 1 - y) / px);
    for (let x = 0; x < w; x++) out[y * w + x] = Math.min(ry, Math.min(1, Math.min(x, w - 1 - x) / px));
  }
  return out;
}

/** `px` pixels of a 128 px crop in a crop of `side` px (align.crop_px): a found hole's
 * growth and feather cover the same part of the face at 128 and at 256 px. */
export function cropPx(px, side) {
  return side <= 128 ? px : Math.round(px * side / 128);
}

/** Blend weight of a hole (1 = hole) on a w x h grid: the hole grown by `grow` px,
 * then falling to 0 over `feather` px outward (city-block rings; align.hole_weight). */
export function holeWeight(hole, w, h, grow = 2, feather = 2) {
  const dist = new Int32Array(w * h).fill(-1);
  let ring = [];
  for (let i = 0; i < w * h; i++) if (hole[i]) { dist[i] = 0; ring.push(i); }
  for (let d = 1; d <= grow + feather && ring.length; d++) {
    const next = [];
    for (const i of ring) {
      const x = i % w, y = (i - x) / w;
      for (const j of [x > 0 ? i - 1 : -1, x < w - 1 ? i + 1 : -1, y > 0 ? i - w : -1, y < h - 1 ? i + w : -1]) {
        if (j >= 0 && dist[j] < 0) { dist[j] = d; next.push(j); }
      }
    }
    ring = next;
  }
  const out = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) {
    const d = dist[i];
    if (d < 0) continue;
    out[i] = d <= grow ? 1 : 1 - (d - grow) / (feather + 1);
  }
  return out;
}

/** Blend weight of a whole restored face (align.face_weight): 0 on the outer feather/2
 * of the w x h crop, rising over `feather` of its side to 1, corners rounded. */
export function faceWeight(w, h = w, feather = 0.1) {
  const f = Math.max(2, Math.round(Math.min(w, h) * feather));
  const out = new Float32Array(w * h);
  const lo = f / 2, r = f;  // distance from the border where the ramp starts; its width
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const dx = Math.min(x, w - 1 - x) - lo, dy = Math.min(y, h - 1 - y) - lo;
      // distance inside a square inset by lo, its corners rounded with radius r
      let d;
      if (dx < r && dy < r) d = r - Math.hypot(r - Math.min(dx, r), r - Math.min(dy, r));
      else d = Math.min(dx, dy);
      const t = Math.min(1, Math.max(0, d / r));
      out[y * w + x] = t * t * (3 - 2 * t);
    }
  }
  return out;
}
