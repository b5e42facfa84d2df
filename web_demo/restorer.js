// Runs a shipped tfface .tflite in the browser with LiteRT.js, fed exactly as its model
// card says: tensor names and shapes, per-input normalization (or value range), the mask
// convention, integer I/O quantization and the output's denormalization.
//
// Nothing here touches the page: app.js (the UI) and the browser test both use it.
// A card is data from someone else: only numbers and names are read from it, and a card
// that does not describe the file's tensors is an error, never a guess.

import {loadLiteRt, loadAndCompile, supportsFeature, Tensor, Environment} from '@litertjs/core';

export class CardError extends Error {}

let runtime = null;

/** Load LiteRT.js's WebAssembly runtime once (callers that come while it loads share the
 * same load): threaded when the page is cross-origin isolated and the browser has WASM
 * threads, else single-threaded. */
export function initRuntime(wasmDir, {allowThreads = true} = {}) {
  if (!runtime) {
    runtime = loadRuntime(wasmDir, allowThreads);
    runtime.catch(() => { runtime = null; });  // a failed load may be tried again
  }
  return runtime;
}

async function loadRuntime(wasmDir, allowThreads) {
  const isolated = self.crossOriginIsolated === true;
  const threads = allowThreads && isolated && (await supportsFeature('threads')) &&
      (await supportsFeature('relaxedSimd'));
  const lib = await loadLiteRt(wasmDir, {threads});
  // A CPU-only environment: no attempt to open a WebGPU device (the model runs on WASM).
  lib.setDefaultEnvironment(await Environment.create({webGpuDevice: null}));
  // The threaded runtime has a fixed pool of navigator.hardwareConcurrency workers, and a
  // model compiled for n threads holds n - 1 of them until it is deleted; a compile that
  // finds the pool empty blocks the page for good (seen: a third 2-thread model on a
  // 2-core machine). Two models are alive while one replaces the other, so each gets at
  // most 1 + cores / 2 threads; helpers (the occluder segmenter) run on one.
  const cores = navigator.hardwareConcurrency || 1;
  return {
    threads,
    isolated,
    allowThreads,
    threadCount: threads ? Math.max(1, Math.min(lib.liteRtWasm.getThreadCount(),
                                                1 + Math.floor(cores / 2))) : 1,
    hardwareConcurrency: cores,
  };
}

/** "serving_default_occluded:0" -> "occluded" (the signature key LiteRT.js names inputs by). */
export function tensorKey(name) {
  let key = String(name);
  key = key.replace(/:\d+$/, '');
  if (key.startsWith('serving_default_')) key = key.slice('serving_default_'.length);
  return key;
}

function finite(x, what) {
  const v = Number(x);
  if (!Number.isFinite(v)) throw new CardError(`the card's ${what} is not a number`);
  return v;
}

function perChannel(v, channels, what) {
  const arr = Array.isArray(v) ? v.map((x) => finite(x, what)) : [finite(v, what)];
  if (arr.length === 1) return new Array(channels).fill(arr[0]);
  if (arr.length !== channels) {
    throw new CardError(`the card's ${what} has ${arr.length} values for ${channels} channels`);
  }
  return arr;
}

function sameShape(a, b) {
  return a.length === b.length && a.every((v, i) => Number(v) === Number(b[i]));
}

/** What an input is: 'mask' (0/1 hole map), 'lowres' (the small face of an SR model) or
 * 'image'. A card that says it (`role`/`kind`) is followed; older cards are read by the
 * input's key and channel count. */
export function inputRole(entry, card) {
  const said = String(entry.role ?? entry.kind ?? entry.content ?? '').toLowerCase();
  if (said.includes('mask')) return 'mask';
  if (said.includes('low') || said === 'lr') return 'lowres';
  if (said.includes('image') || said.includes('face')) return card.task === 'sr' ? 'lowres' : 'image';
  const key = tensorKey(entry.name);
  const channels = Number(entry.shape?.[3]);
  if (key === 'mask' || channels === 1) return 'mask';
  if (card.task === 'sr' || key === 'lr') return 'lowres';
  return 'image';
}

/** Pixel (0..255) -> model value for an image input, from the card's normalization
 * (x = (pixel - mean) / std, scalar or per channel) or, failing that, its value range. */
function imageMapping(entry, channels) {
  const n = entry.normalization;
  if (n && n.mean !== undefined && n.std !== undefined) {
    const mean = perChannel(n.mean, channels, 'normalization mean');
    const std = perChannel(n.std, channels, 'normalization std');
    if (std.some((s) => s === 0)) throw new CardError("the card's normalization std is 0");
    return {mean, std, text: `x = (pixel - ${mean[0]}) / ${std[0]}`};
  }
  const r = entry.value_range;
  if (Array.isArray(r) && r.length === 2) {
    const lo = finite(r[0], 'value_range'), hi = finite(r[1], 'value_range');
    // pixel 0 -> lo, 255 -> hi
    const std = (255 / (hi - lo));
    return {mean: new Array(channels).fill(-lo * std), std: new Array(channels).fill(std),
            text: `x = ${lo} + pixel / 255 * ${hi - lo}`};
  }
  throw new CardError(`the card gives input ${entry.name} neither a normalization nor a value range`);
}

/** The two values a mask input takes. The convention of the project (and of every
 * shipped card's README) is 1 = hole, 0 = keep; a card may state its own values. */
function maskValues(entry) {
  const note = [];
  let hole = 1, keep = 0;
  if (entry.hole_value !== undefined || entry.keep_value !== undefined) {
    hole = finite(entry.hole_value ?? 1, 'hole_value');
    keep = finite(entry.keep_value ?? 0, 'keep_value');
  } else if (Array.isArray(entry.value_range) && entry.value_range.length === 2) {
    const lo = finite(entry.value_range[0], 'value_range');
    const hi = finite(entry.value_range[1], 'value_range');
    if (lo === 0 && hi === 1) {
      [keep, hole] = [0, 1];
    } else {
      note.push(`the card gives the mask input the range [${lo}, ${hi}]; fed as 0 = keep, ` +
                '1 = hole, the convention the sample inputs and the Android README use');
    }
  }
  return {hole, keep, note};
}

function quantParams(q, what) {
  if (!q) return null;
  return {scale: finite(q.scale, `${what} quantization scale`),
          zeroPoint: finite(q.zero_point, `${what} quantization zero_point`)};
}

const DTYPES = {float32: Float32Array, uint8: Uint8Array};

/** Build the feeding plan from the card and the file's own tensor details; throws
 * CardError naming the first disagreement. */
export function planFromCard(card, inputDetails, outputDetails) {
  if (!card || !Array.isArray(card.inputs) || !Array.isArray(card.outputs)) {
    throw new CardError('the model card has no inputs/outputs lists');
  }
  if (card.inputs.length !== inputDetails.length || card.outputs.length !== outputDetails.length) {
    throw new CardError(`the card describes ${card.inputs.length} input(s) and ` +
        `${card.outputs.length} output(s); the file has ${inputDetails.length} and ${outputDetails.length}`);
  }
  const notes = [];
  const match = (entry, details, i, kind) => {
    const key = entry.key ?? tensorKey(entry.name);
    // By key when the file's names are signature keys; a lone tensor by position.
    let d = details.find((x) => x.name === key);
    if (!d && details.length === 1) d = details[0];
    if (!d) d = details[i];
    const shape = Array.from(d.shape);
    if (!Array.isArray(entry.shape) || !sameShape(entry.shape, shape)) {
      throw new CardError(`the card says ${kind} ${entry.name} has shape ` +
          `[${entry.shape}], the file's ${d.name} has [${shape}]`);
    }
    if (String(entry.dtype) !== d.dtype) {
      throw new CardError(`the card says ${kind} ${entry.name} is ${entry.dtype}, ` +
          `the file's ${d.name} is ${d.dtype}`);
    }
    if (!(d.dtype in DTYPES)) {
      throw new CardError(`${kind} ${d.name} is ${d.dtype}: LiteRT.js feeds float32 and uint8 ` +
          'tensors only (use a float-I/O or --io uint8 file)');
    }
    if (shape.length !== 4 || shape[0] !== 1) {
      throw new CardError(`${kind} ${d.name} is not one NHWC image ([1, H, W, C]): [${shape}]`);
    }
    return {key: d.name, shape, dtype: d.dtype, height: shape[1], width: shape[2],
            channels: shape[3], quant: quantParams(entry.quantization, `${kind} ${entry.name}`)};
  };
  const inputs = card.inputs.map((entry, i) => {
    const t = match(entry, inputDetails, i, 'input');
    t.role = inputRole(entry, card);
    if (t.dtype === 'uint8' && !t.quant) {
      throw new CardError(`input ${entry.name} is uint8 but the card gives no quantization`);
    }
    if (t.role === 'mask') {
      if (t.channels !== 1) throw new CardError(`mask input ${entry.name} has ${t.channels} channels`);
      const m = maskValues(entry);
      t.hole = m.hole; t.keep = m.keep; notes.push(...m.note);
      t.text = `${t.hole} = hole, ${t.keep} = keep`;
    } else {
      if (t.channels !== 3) throw new CardError(`input ${entry.name} has ${t.channels} channels, not RGB`);
      Object.assign(t, imageMapping(entry, t.channels));
    }
    return t;
  });
  const outputs = card.outputs.map((entry, i) => {
    const t = match(entry, outputDetails, i, 'output');
    if (t.dtype === 'uint8' && !t.quant) {
      throw new CardError(`output ${entry.name} is uint8 but the card gives no quantization`);
    }
    if (t.channels === 1) {
      // a one-channel output is a map of the hole (an occluder segmenter): the
      // probability over its value range, a hole where it passes the range's middle
      const r = Array.isArray(entry.value_range) && entry.value_range.length === 2
          ? entry.value_range.map((v) => finite(v, 'value_range')) : [0, 1];
      if (r[1] <= r[0]) throw new CardError(`output ${entry.name} has an empty value range`);
      t.role = 'mask';
      t.lo = r[0]; t.hi = r[1];
      t.threshold = (r[0] + r[1]) / 2;
      return t;
    }
    if (t.channels !== 3) throw new CardError(`output ${entry.name} has ${t.channels} channels, not RGB or a mask`);
    t.role = 'image';
    const dn = entry.denormalization;
    if (dn && dn.mean !== undefined && dn.std !== undefined) {
      // pixel = (y - mean) / std: the TFLite-metadata form the cards use
      t.mean = perChannel(dn.mean, 3, 'denormalization mean');
      t.std = perChannel(dn.std, 3, 'denormalization std');
      if (t.std.some((s) => s === 0)) throw new CardError("the card's denormalization std is 0");
    } else if (Array.isArray(entry.value_range) && entry.value_range.length === 2) {
      const lo = finite(entry.value_range[0], 'value_range');
      const hi = finite(entry.value_range[1], 'value_range');
      t.mean = [lo, lo, lo]; t.std = new Array(3).fill((hi - lo) / 255);
    } else {
      throw new CardError(`the card gives output ${entry.name} no denormalization`);
    }
    return t;
  });
  const roles = inputs.map((t) => t.role);
  const segment = outputs[0].role === 'mask';
  if (!inputs.some((t) => t.role !== 'mask')) throw new CardError('the card describes no image input');
  return {inputs, outputs, notes, segment,
          task: segment ? 'segment' : card.task ?? (roles.includes('lowres') ? 'sr' : 'inpaint'),
          image: inputs.find((t) => t.role !== 'mask'), mask: inputs.find((t) => t.role === 'mask')};
}

/** numpy's round (half to even), so pixels match the Python reference bit for bit. */
export function roundHalfEven(x) {
  const r = Math.round(x);
  return (Math.abs(x % 1) === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

/** round(x / scale) + zero_point, half away from zero as TFLite's quantize kernel and the
 * project's runner round, saturated to uint8. */
function quantize(x, q) {
  const v = x / q.scale;
  const r = Math.sign(v) * Math.floor(Math.abs(v) + 0.5);
  return Math.min(255, Math.max(0, r + q.zeroPoint));
}

/** RGBA pixels (ImageData-like: data, width, height) -> the input's typed array. */
export function encodeImage(t, img) {
  if (img.width !== t.width || img.height !== t.height) {
    throw new Error(`image is ${img.width}x${img.height}, input ${t.key} needs ${t.width}x${t.height}`);
  }
  const n = t.width * t.height;
  const out = new DTYPES[t.dtype](n * 3);
  const src = img.data;
  const f = Math.fround;
  // In float32 and in the order the project's Python runner uses (pixel / std - mean / std,
  // e.g. pixel / 127.5 - 1): an int8 file's first QUANTIZE (scale 2/255) puts every input
  // value on a rounding tie, so one float32 ulp of difference moves it by one level.
  const std = t.std.map(f), shift = t.mean.map((m, c) => f(m / t.std[c]));
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const x = f(f(src[4 * i + c] / std[c]) - shift[c]);
      out[3 * i + c] = t.quant ? quantize(x, t.quant) : x;
    }
  }
  return out;
}

/** A hole map (Uint8Array, 1 = hole, one per pixel) -> the mask input's typed array. */
export function encodeMask(t, hole) {
  const n = t.width * t.height;
  if (hole.length !== n) throw new Error(`mask has ${hole.length} pixels, input ${t.key} needs ${n}`);
  const out = new DTYPES[t.dtype](n);
  for (let i = 0; i < n; i++) {
    const x = hole[i] ? t.hole : t.keep;
    out[i] = t.quant ? quantize(x, t.quant) : x;
  }
  return out;
}

/** Mask PNG pixels -> hole map: white (> 127) = hole, the samples' and the irregular
 * mask sets' convention. */
export function holeFromImage(img) {
  const n = img.width * img.height;
  const hole = new Uint8Array(n);
  for (let i = 0; i < n; i++) hole[i] = img.data[4 * i] > 127 ? 1 : 0;
  return hole;
}

/** A one-channel output's typed array -> its values (dequantized, float32). */
export function outputValues(t, arr) {
  if (!t.quant) return Float32Array.from(arr);
  return Float32Array.from(arr, (q) => (q - t.quant.zeroPoint) * t.quant.scale);
}

/** Hole probabilities -> grey levels over the value range (white = hole). */
function decodeMaskOutput(t, arr) {
  const p = outputValues(t, arr);
  const n = t.width * t.height;
  const rgba = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    const g = Math.round((p[i] - t.lo) / (t.hi - t.lo) * 255);
    rgba.fill(g, 4 * i, 4 * i + 3);
    rgba[4 * i + 3] = 255;
  }
  return typeof ImageData === 'function' ? new ImageData(rgba, t.width, t.height)
                                         : {data: rgba, width: t.width, height: t.height};
}

/** The output's typed array -> RGBA ImageData by the card's denormalization
 * (pixel = clip(round((y - mean) / std), 0, 255)); a hole map as grey levels. */
export function decodeOutput(t, arr) {
  if (t.role === 'mask') return decodeMaskOutput(t, arr);
  const n = t.width * t.height;
  const rgba = new Uint8ClampedArray(n * 4);
  const f = Math.fround;
  // float32, as the Python reference computes it: (y - mean) * (1 / std), e.g. (y + 1) * 127.5
  const gain = t.std.map((s) => f(1 / s));
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      let y = arr[3 * i + c];
      if (t.quant) y = f((y - t.quant.zeroPoint) * t.quant.scale);
      const p = roundHalfEven(f(f(y - t.mean[c]) * gain[c]));
      rgba[4 * i + c] = p < 0 ? 0 : p > 255 ? 255 : p;
    }
    rgba[4 * i + 3] = 255;
  }
  return typeof ImageData === 'function' ? new ImageData(rgba, t.width, t.height)
                                         : {data: rgba, width: t.width, height: t.height};
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A loaded model with its card: `restore({image, hole})` runs it once and times it. */
export class Restorer {
  static async load(modelBytes, card, {wasmDir, allowThreads = true, singleThread = false}) {
    const rt = await initRuntime(wasmDir, {allowThreads});
    const bytes = modelBytes instanceof Uint8Array ? modelBytes : new Uint8Array(modelBytes);
    const head = String.fromCharCode(...bytes.slice(4, 8));
    if (head !== 'TFL3') throw new Error('the model file is not a .tflite flatbuffer');
    const model = await loadAndCompile(bytes, {
      accelerator: 'wasm',
      cpuOptions: {numThreads: singleThread ? 1 : rt.threadCount},
    });
    let plan;
    try {
      plan = planFromCard(card, model.getInputDetails(), model.getOutputDetails());
    } catch (e) {
      model.delete();
      throw e;
    }
    return new Restorer(model, card, plan, {...rt, threadCount: singleThread ? 1 : rt.threadCount});
  }

  constructor(model, card, plan, rt) {
    this.model = model;
    this.card = card;
    this.plan = plan;
    this.runtime = rt;
    this.times = [];
  }

  /** One run. `image`: ImageData at the image input's size; `hole`: Uint8Array (1 = hole)
   * for a model with a mask input. Returns {output: ImageData, ms}. The time covers
   * the tensor copies in, the invoke and the copy out (what a page pays per restore). */
  async restore({image, hole}) {
    const plan = this.plan;
    const arrays = {};
    for (const t of plan.inputs) {
      if (t.role === 'mask') {
        if (!hole) throw new Error('this model needs a hole mask');
        arrays[t.key] = encodeMask(t, hole);
      } else {
        arrays[t.key] = encodeImage(t, image);
      }
    }
    const t0 = performance.now();
    const feed = {};
    for (const t of plan.inputs) feed[t.key] = new Tensor(arrays[t.key], t.shape);
    let results;
    try {
      results = await this.model.run(feed);
    } finally {
      for (const k of Object.keys(feed)) feed[k].delete();
    }
    const out = plan.outputs[0];
    const tensor = results[out.key] ?? Object.values(results)[0];
    const data = tensor.toTypedArray().slice();
    for (const r of Object.values(results)) r.delete();
    const ms = performance.now() - t0;
    this.times.push(ms);
    const res = {output: decodeOutput(out, data), ms};
    if (out.role === 'mask') res.probs = outputValues(out, data);
    return res;
  }

  /** A segmenter's hole map resized to w x h: probabilities interpolated bilinearly,
   * then a hole where they pass the threshold; with `edge` below the threshold, every
   * pixel above `edge` 8-connected to that hole joins it (hysteresis, as tfface's
   * OccluderSegmenter.hole_from: the occluder's uncertain edge is taken, a faint blob
   * with no confident pixel is not); then grown by `grow` pixels (the edge of an
   * occluder left outside the hole would be copied by the inpainting model). */
  holeFrom(probs, w, h, grow = 1, edge = null) {
    const t = this.plan.outputs[0];
    const lo = edge === null ? t.threshold : Math.min(edge, t.threshold);
    const hole = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) {
      const fy = Math.min(t.height - 1, Math.max(0, (y + 0.5) * t.height / h - 0.5));
      const y0 = Math.floor(fy), y1 = Math.min(t.height - 1, y0 + 1), wy = fy - y0;
      for (let x = 0; x < w; x++) {
        const fx = Math.min(t.width - 1, Math.max(0, (x + 0.5) * t.width / w - 0.5));
        const x0 = Math.floor(fx), x1 = Math.min(t.width - 1, x0 + 1), wx = fx - x0;
        const p = (1 - wy) * ((1 - wx) * probs[y0 * t.width + x0] + wx * probs[y0 * t.width + x1]) +
            wy * ((1 - wx) * probs[y1 * t.width + x0] + wx * probs[y1 * t.width + x1]);
        hole[y * w + x] = p > t.threshold ? 1 : p > lo ? 2 : 0;
      }
    }
    // hysteresis: 2 = above `edge` only, kept when 8-connected to a 1
    const stack = [];
    for (let i = 0; i < w * h; i++) if (hole[i] === 1) stack.push(i);
    while (stack.length) {
      const i = stack.pop(), x = i % w, y = (i - x) / w;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx, yy = y + dy;
          if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
          const j = yy * w + xx;
          if (hole[j] === 2) { hole[j] = 1; stack.push(j); }
        }
      }
    }
    for (let i = 0; i < w * h; i++) if (hole[i] === 2) hole[i] = 0;
    let cur = hole;
    for (let g = 0; g < grow; g++) {
      const next = cur.slice();
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          if (cur[y * w + x]) continue;
          if ((x > 0 && cur[y * w + x - 1]) || (x < w - 1 && cur[y * w + x + 1]) ||
              (y > 0 && cur[(y - 1) * w + x]) || (y < h - 1 && cur[(y + 1) * w + x])) next[y * w + x] = 1;
        }
      }
      cur = next;
    }
    return cur;
  }

  /** `runs` timed runs after `warmup` untimed ones on the same inputs: {p50_ms, min_ms, runs}. */
  async benchmark(inputs, {runs = 10, warmup = 2} = {}) {
    for (let i = 0; i < warmup; i++) await this.restore(inputs);
    const times = [];
    for (let i = 0; i < runs; i++) times.push((await this.restore(inputs)).ms);
    return {p50_ms: median(times), min_ms: Math.min(...times), runs};
  }

  /** What the page states next to a latency: the backend and its threads. */
  backendText() {
    const rt = this.runtime;
    return `WASM (XNNPACK), ${rt.threadCount} thread${rt.threadCount === 1 ? '' : 's'}` +
        (rt.threads ? '' : !rt.isolated ? ' (page not cross-origin isolated: no threads)'
                         : rt.allowThreads ? ' (this browser has no WASM threads)' : ' (?threads=0)');
  }

  delete() {
    this.model.delete();
  }
}
