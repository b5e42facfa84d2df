// The page's face arithmetic (node --test web_demo/faces.test.mjs; no browser): BlazeFace's
// anchors, decoding and weighted NMS, the five points, the similarity to the template, the
// super-resolution tiles and the blend weights. tests/test_web_demo.py compares the same
// functions with tfface's Python on shared inputs.
import test from 'node:test';
import assert from 'node:assert/strict';
import {anchors, decode, weightedNms, fivePoints, searchSquares, similarity, invert, apply,
        compose, alignmentMatrix, nativeSize, nativeCropMatrix, squareMatrix, canvasTransform,
        tileStarts, TileBlender, borderWeight, holeWeight, faceWeight, BLAZEFACE} from './faces.js';

const close = (a, b, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('896 anchors: 16 x 16 cells of 2, then 8 x 8 cells of 6', () => {
  const a = anchors();
  assert.equal(a.length, 2 * 896);
  assert.deepEqual(Array.from(a.slice(0, 4)), [1 / 32, 1 / 32, 1 / 32, 1 / 32]);
  assert.deepEqual(Array.from(a.slice(4, 6)), [3 / 32, 1 / 32]);
  // the first stride-16 anchor, after 512 stride-8 ones
  assert.deepEqual(Array.from(a.slice(1024, 1026)), [1 / 16, 1 / 16]);
  assert.deepEqual(Array.from(a.slice(-2)), [15 / 16, 15 / 16]);
});

test('decoding: offsets in 128-px units from the anchor, scaled to the square', () => {
  const anc = anchors();
  const reg = new Float32Array(896 * 16);
  const logits = new Float32Array(896).fill(-10);
  const i = 600;  // a stride-16 anchor
  logits[i] = 2;  // sigmoid 0.88
  reg.set([3.2, -6.4, 32, 48, 0, 0, 12.8, 0, 0, 0, 0, 0, 0, 0, 0, 0], 16 * i);
  const d = decode(reg, logits, anc, 256);
  assert.equal(d.length, 1);
  const cx = (anc[2 * i] + 3.2 / 128) * 256, cy = (anc[2 * i + 1] - 6.4 / 128) * 256;
  [cx - 32, cy - 48, cx + 32, cy + 48].forEach((v, k) => close(d[0].box[k], v, 1e-4));
  close(d[0].kps[1][0], (anc[2 * i] + 0.1) * 256, 1e-4);
  close(d[0].score, 1 / (1 + Math.exp(-2)), 1e-6);
  assert.equal(decode(reg, logits, anc, 256, 0.9).length, 0);  // below the threshold
});

test('weighted NMS averages overlapping detections by score, keeps the rest apart', () => {
  const kp = (x) => Array.from({length: 6}, () => [x, x]);
  const out = weightedNms([
    {box: [0, 0, 10, 10], kps: kp(1), score: 0.9},
    {box: [1, 0, 11, 10], kps: kp(3), score: 0.6},
    {box: [50, 50, 60, 60], kps: kp(7), score: 0.7},
  ]);
  assert.equal(out.length, 2);
  close(out[0].box[0], 0.6 / 1.5);
  close(out[0].kps[0][0], (0.9 * 1 + 0.6 * 3) / 1.5);
  assert.equal(out[0].score, 0.9);
  [50, 50, 60, 60].forEach((v, k) => close(out[1].box[k], v, 1e-9));
});

test('five points: eyes image-left first, mouth corners on the eye line around the mouth', () => {
  // right eye (subject's) first as BlazeFace gives it: at larger x
  const p = fivePoints([[60, 40], [40, 40], [50, 50], [50, 60], [30, 45], [70, 45]]);
  assert.deepEqual(p[0], [40, 40]);
  assert.deepEqual(p[1], [60, 40]);
  assert.deepEqual(p[2], [50, 50]);
  const mouthY = 60 + BLAZEFACE.mouthShift * 20;
  close(p[3][0], 50 - 0.5 * BLAZEFACE.mouthRatio * 20);
  close(p[3][1], mouthY);
  close(p[4][0], 50 + 0.5 * BLAZEFACE.mouthRatio * 20);
});

test('search: the whole photo, then 128-px tiles over it at 448 px on the longer side', () => {
  assert.deepEqual(searchSquares(150, 150), [[0, 0, 150, Infinity]]);  // no finer level
  const sq = searchSquares(600, 800);
  assert.deepEqual(sq[0], [0, 0, 800, Infinity]);
  const f = 448 / 800;  // tiles of 128 / f photo px, every 64 / f, last flush with the edge
  assert.equal(sq.length, 1 + 6 * 5);
  sq.slice(1).forEach(([x, y, s, largest]) => {
    close(s, 128 / f);
    close(largest, s / 2);  // a tile keeps faces up to half its side
    assert.ok(x >= 0 && y >= 0 && x + s <= 800 + 1e-6 && y + s <= 600 + 2);
  });
});

test('similarity: recovers a rotation, scale and shift; maps the template exactly', () => {
  const c = Math.cos(0.3) * 1.7, s = Math.sin(0.3) * 1.7;
  const m = [[c, -s, 12], [s, c, -5]];
  const src = [[0, 0], [10, 2], [4, 9], [-3, 7], [8, -6]];
  const got = similarity(src, src.map((p) => apply(m, p)));
  got.flat().forEach((v, k) => close(v, m.flat()[k], 1e-9));
  const id = compose(invert(m), m);
  [[1, 0, 0], [0, 1, 0]].flat().forEach((v, k) => close(id.flat()[k], v, 1e-12));
  const template = [[0.38, 0.43], [0.61, 0.43], [0.5, 0.57], [0.4, 0.67], [0.6, 0.67]];
  const lm = template.map(([x, y]) => [x * 200 + 30, y * 200 + 10]);
  // that face is 200 px at the template's framing: its native crop is 200 px
  close(nativeSize(lm, template), 200, 1e-9);
  const a = alignmentMatrix(lm, 128, template);
  close(apply(a, lm[0])[0], 0.38 * 128 - 0.5, 1e-9);
  // the native crop: a whole-pixel shift centred where the aligned crop is
  assert.deepEqual(nativeCropMatrix(lm, 200, template), [[1, 0, -30], [0, 1, -10]]);
});

test('a square resized to the input, and the canvas transform of pixel centres', () => {
  const m = squareMatrix(10, 20, 64, 64, 128, 128);
  // pixel (10, 20)'s centre -> crop (0.5, 0.5) in pixel indices; its left edge -> -0.5
  assert.deepEqual(apply(m, [10, 20]), [0.5, 0.5]);
  assert.deepEqual(apply(m, [9.5, 19.5]), [-0.5, -0.5]);
  // canvas coordinates: the photo's pixel (10, 20) covers 10..11, the crop's 0..2
  const [a, b, c, d, e, f] = canvasTransform(m);
  assert.deepEqual([a * 10 + c * 20 + e, b * 10 + d * 20 + f], [0, 0]);
  assert.deepEqual(canvasTransform([[1, 0, -3], [0, 1, -4]]), [1, 0, 0, 1, -3, -4]);
});

test('SR tiles: the starts of pipeline.sr_tiles, and a flat image stays flat', () => {
  assert.deepEqual(tileStarts(91, 32, 8), [0, 24, 48, 59]);
  assert.deepEqual(tileStarts(32, 32, 8), [0]);
  assert.deepEqual(tileStarts(179, 32, 8), [0, 24, 48, 72, 96, 120, 144, 147]);
  const b = new TileBlender(40, 32, 2);  // overlap 8
  assert.deepEqual(b.tiles(), [[0, 0], [8, 0], [0, 8], [8, 8]]);
  const tile = {data: new Uint8ClampedArray(64 * 64 * 4).fill(77), width: 64, height: 64};
  for (const [x, y] of b.tiles()) b.add(x, y, tile);
  const out = b.result();
  assert.equal(out.width, 80);
  assert.ok(out.data.every((v, i) => v === (i % 4 === 3 ? 255 : 77)));
});

test('blend weights: a hole grown and feathered, a face faded to 0 at its border', () => {
  const hole = new Uint8Array(15 * 15);
  hole[7 * 15 + 7] = 1;
  const w = holeWeight(hole, 15, 15, 1, 2);
  assert.equal(w[7 * 15 + 7], 1);
  assert.equal(w[7 * 15 + 8], 1);                 // grown by 1
  close(w[7 * 15 + 9], 2 / 3, 1e-6);              // then 2/3, 1/3, 0
  close(w[7 * 15 + 10], 1 / 3, 1e-6);
  assert.equal(w[7 * 15 + 11], 0);
  assert.equal(w[0], 0);
  const b = borderWeight(8, 8, 2);
  assert.deepEqual(Array.from(b.slice(3 * 8, 4 * 8)), [0, 0.5, 1, 1, 1, 1, 0.5, 0]);
  const f = faceWeight(100, 100, 0.1);
  assert.equal(f[50 * 100 + 2], 0);               // the outer feather / 2
  assert.equal(f[50 * 100 + 50], 1);
  assert.equal(f[0], 0);
  assert.ok(f[50 * 100 + 10] > 0 && f[50 * 100 + 10] < 1);
});
