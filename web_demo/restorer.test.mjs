// How the page reads model cards (node --test web_demo/restorer.test.mjs; no browser):
// the shipped cards, the per-input description of newer cards, integer I/O, and cards
// that do not describe the file.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {planFromCard, encodeImage, encodeMask, decodeOutput, roundHalfEven, tensorKey,
        CardError, Restorer} from './restorer.js';

const root = new URL('../android_demo_assets/', import.meta.url);
const card = (rel) => JSON.parse(fs.readFileSync(new URL(rel, root), 'utf8'));
// the tensor details LiteRT.js reports for the shipped files (signature keys)
const det = (name, shape, dtype = 'float32') => ({name, shape: Int32Array.from(shape), dtype});
const VNET_IN = [det('occluded', [1, 128, 128, 3]), det('mask', [1, 128, 128, 1])];
const OUT128 = [det('restored', [1, 128, 128, 3])];

test('signature keys from tensor names', () => {
  assert.equal(tensorKey('serving_default_occluded:0'), 'occluded');
  assert.equal(tensorKey('StatefulPartitionedCall:0'), 'StatefulPartitionedCall');
});

test('shipped V-Net card: image in [-1, 1], mask 1 = hole', () => {
  const plan = planFromCard(card('vnet/model_int8_mixed.json'), VNET_IN, OUT128);
  assert.deepEqual(plan.inputs.map((t) => t.role), ['image', 'mask']);
  assert.equal(plan.task, 'inpaint');
  assert.deepEqual([plan.mask.hole, plan.mask.keep], [1, 0]);
  const img = {width: 128, height: 128, data: new Uint8ClampedArray(128 * 128 * 4)};
  img.data[0] = 0; img.data[1] = 255; img.data[2] = 128;
  const x = encodeImage(plan.image, img);
  assert.deepEqual([x[0], x[1]], [-1, 1]);
  assert.ok(Math.abs(x[2] - 0.5 / 127.5) < 1e-7);
  const hole = new Uint8Array(128 * 128);
  hole[5] = 1;
  const m = encodeMask(plan.mask, hole);
  assert.deepEqual([m[4], m[5]], [0, 1]);
  // y = -1, 0, 1 -> pixels 0, 128 (127.5 rounds half to even), 255; out of range is clipped
  const y = new Float32Array(128 * 128 * 3);
  y.set([-1, 0, 1, -3, 2, 0.999]);
  const px = decodeOutput(plan.outputs[0], y).data;
  assert.deepEqual(Array.from(px.slice(0, 8)), [0, 128, 255, 255, 0, 255, 255, 255]);
});

test('shipped SRGAN card: one low-resolution input', () => {
  const plan = planFromCard(card('srgan/model_int8_mixed.json'), [det('lr', [1, 32, 32, 3])], OUT128);
  assert.equal(plan.task, 'sr');
  assert.equal(plan.image.role, 'lowres');
  assert.equal(plan.mask, undefined);
});

// The two ways cards have described the mask: by what it is (key, kind, range 0..1) and,
// in the first cards, with the image's [-1, 1] range (which the samples never followed).
function withMask(c, entry) {
  const out = structuredClone(c);
  const {name, shape, dtype, quantization} = out.inputs[1];
  out.inputs[1] = {name, shape, dtype, quantization, ...entry};
  return out;
}

test('a card that says what each input is: mask in 0..1, no note', () => {
  const c = withMask(card('vnet/model_int8_mixed.json'), {
    key: 'mask', kind: 'mask', layout: 'NHWC, 1 channel', value_range: [0, 1],
    normalization: {mean: 0, std: 1, values: [0, 1]}});
  c.inputs[0] = {...c.inputs[0], key: 'occluded', kind: 'image'};
  const plan = planFromCard(c, VNET_IN, OUT128);
  assert.deepEqual(plan.inputs.map((t) => [t.key, t.role]), [['occluded', 'image'], ['mask', 'mask']]);
  assert.deepEqual([plan.mask.hole, plan.mask.keep], [1, 0]);
  assert.deepEqual(plan.notes, []);
  const sr = card('srgan/model_int8_mixed.json');
  sr.inputs[0] = {...sr.inputs[0], key: 'lr', kind: 'low-resolution image'};
  assert.equal(planFromCard(sr, [det('lr', [1, 32, 32, 3])], OUT128).image.role, 'lowres');
});

test('a first-format card (mask given the image range): fed 0/1 and noted', () => {
  const c = withMask(card('vnet/model_int8_mixed.json'), {
    layout: 'NHWC, RGB', value_range: [-1, 1],
    normalization: {mean: 127.5, std: 127.5, formula: 'x = (pixel - 127.5) / 127.5'}});
  delete c.inputs[0].kind;
  delete c.inputs[0].key;
  const plan = planFromCard(c, VNET_IN, OUT128);
  assert.deepEqual(plan.inputs.map((t) => t.role), ['image', 'mask']);
  assert.deepEqual([plan.mask.hole, plan.mask.keep], [1, 0]);
  assert.equal(plan.notes.length, 1);
  assert.match(plan.notes[0], /1 = hole/);
});

test('a card that names its own mask values', () => {
  const c = withMask(card('vnet/model_int8_mixed.json'), {kind: 'mask', hole_value: 0, keep_value: 1});
  const plan = planFromCard(c, VNET_IN, OUT128);
  const hole = new Uint8Array(128 * 128);
  hole[0] = 1;
  const m = encodeMask(plan.mask, hole);
  assert.deepEqual([m[0], m[1]], [0, 1]);
});

test('an image input given only as a value range', () => {
  const c = card('srgan/model_int8_mixed.json');
  c.inputs[0] = {...c.inputs[0], normalization: undefined, value_range: [0, 1]};
  const plan = planFromCard(c, [det('lr', [1, 32, 32, 3])], OUT128);
  const img = {width: 32, height: 32, data: new Uint8ClampedArray(32 * 32 * 4).fill(255)};
  assert.ok(Math.abs(encodeImage(plan.image, img)[0] - 1) < 1e-6);
});

test('uint8 I/O: quantized with the card scale and zero point', () => {
  const c = card('srgan/model_int8_mixed.json');
  const q = {scale: 2 / 255, zero_point: 128};
  c.inputs[0] = {...c.inputs[0], dtype: 'uint8', quantization: q};
  c.outputs[0] = {...c.outputs[0], dtype: 'uint8', quantization: q};
  const plan = planFromCard(c, [det('lr', [1, 32, 32, 3], 'uint8')],
                            [det('restored', [1, 128, 128, 3], 'uint8')]);
  const img = {width: 32, height: 32, data: new Uint8ClampedArray(32 * 32 * 4)};
  img.data.set([0, 255, 200]);
  const x = encodeImage(plan.image, img);
  assert.ok(x instanceof Uint8Array);
  // as the project's Python runner quantizes (tflite.harness.quantize: half away from
  // zero): pixels 0, 255, 200 -> 0, 255 (saturated), 201 (200 / 127.5 - 1 is a tie)
  assert.deepEqual(Array.from(x.slice(0, 3)), [0, 255, 201]);
  // and dequantizes: q 0, 128, 255 -> y -1.0039, 0, 0.99608 -> pixels 0, 128, 254
  const y = new Uint8Array(128 * 128 * 3);
  y.set([0, 128, 255]);
  assert.deepEqual(Array.from(decodeOutput(plan.outputs[0], y).data.slice(0, 3)), [0, 128, 254]);
  // an integer tensor without its parameters is refused
  delete c.inputs[0].quantization;
  assert.throws(() => planFromCard(c, [det('lr', [1, 32, 32, 3], 'uint8')],
                                   [det('restored', [1, 128, 128, 3], 'uint8')]), /no quantization/);
});

test('cards that do not describe the file are refused with the reason', () => {
  const v = card('vnet/model_int8_mixed.json');
  assert.throws(() => planFromCard(v, [det('lr', [1, 32, 32, 3])], OUT128), CardError);
  const wrongShape = structuredClone(v);
  wrongShape.inputs[0].shape = [1, 64, 64, 3];
  assert.throws(() => planFromCard(wrongShape, VNET_IN, OUT128), /shape \[1,64,64,3\].*\[1,128,128,3\]/);
  const int8 = structuredClone(v);
  int8.inputs[0].dtype = 'int8';
  assert.throws(() => planFromCard(int8, [det('occluded', [1, 128, 128, 3], 'int8'), VNET_IN[1]],
                                   OUT128), /float32 and uint8/);
  const zero = structuredClone(v);
  zero.inputs[0].normalization.std = 0;
  assert.throws(() => planFromCard(zero, VNET_IN, OUT128), /std is 0/);
  const text = structuredClone(v);
  text.inputs[0].normalization.mean = 'x';
  assert.throws(() => planFromCard(text, VNET_IN, OUT128), /not a number/);
  const bare = structuredClone(v);
  delete bare.inputs[0].normalization;
  delete bare.inputs[0].value_range;
  assert.throws(() => planFromCard(bare, VNET_IN, OUT128), /neither a normalization nor a value range/);
  assert.throws(() => planFromCard({}, VNET_IN, OUT128), /no inputs\/outputs/);
});

test('round half to even, as numpy', () => {
  assert.deepEqual([0.5, 1.5, 2.5, 127.5, 128.5, 3.2, 3.7].map(roundHalfEven), [0, 2, 2, 128, 128, 3, 4]);
});

test('a one-channel output is a hole map (occluder segmenter)', () => {
  const c = card('srgan/model_int8_mixed.json');
  c.task = 'segment-occluder';
  c.inputs[0] = {...c.inputs[0], name: 'serving_default_occluded:0', shape: [1, 4, 4, 3]};
  c.outputs[0] = {name: 'StatefulPartitionedCall:0', shape: [1, 4, 4, 1], dtype: 'float32',
                  value_range: [0, 1], quantization: null,
                  denormalization: {formula: 'probability that the pixel is occluded; hole = p > 0.5'}};
  const plan = planFromCard(c, [det('occluded', [1, 4, 4, 3])], [det('restored', [1, 4, 4, 1])]);
  assert.equal(plan.segment, true);
  assert.equal(plan.outputs[0].threshold, 0.5);
  const p = new Float32Array(16);
  p.set([1, 0.6, 0.4, 0], 4);  // row 1
  assert.deepEqual(Array.from(decodeOutput(plan.outputs[0], p).data.slice(16, 32)),
                   [255, 255, 255, 255, 153, 153, 153, 255, 102, 102, 102, 255, 0, 0, 0, 255]);
  const r = new Restorer(null, c, plan, {threadCount: 1});
  // same size: the threshold alone; then grown by one pixel (4-neighbours)
  assert.deepEqual(Array.from(r.holeFrom(p, 4, 4, 0)), [0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(r.holeFrom(p, 4, 4, 1)), [1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0]);
  // hysteresis: 0.4 joins the hole through the 0.6 pixel next to it; a lone 0.3 pixel
  // (row 3) does not, with no pixel above 0.5 beside it
  const q = new Float32Array(16);
  q.set([1, 0.6, 0.4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.3, 0], 0);
  assert.deepEqual(Array.from(r.holeFrom(q, 4, 4, 0, 0.2)), [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(r.holeFrom(q, 4, 4, 0, 0.5)), [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(r.holeFrom(q, 4, 4, 0)), [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  // twice the size: rows 2..3 hold the hole's row, bilinear between the map's pixels
  const big = r.holeFrom(p, 8, 8, 0);
  assert.deepEqual(Array.from(big.slice(16, 24)), [1, 1, 1, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(big.slice(24, 32)), [1, 1, 1, 0, 0, 0, 0, 0]);
  assert.equal(big.slice(0, 16).some((v) => v) || big.slice(32).some((v) => v), false);
  // a map with three channels or none is not taken for one
  const bad = structuredClone(c);
  bad.outputs[0].shape = [1, 4, 4, 2];
  assert.throws(() => planFromCard(bad, [det('occluded', [1, 4, 4, 3])], [det('restored', [1, 4, 4, 2])]),
                /2 channels/);
});
