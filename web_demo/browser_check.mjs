// Drive the web demo in headless Chromium (playwright-core, the system's browser; nothing
// is downloaded) and print what the page computed, as JSON, for tests/test_web_demo.py and
// benchmarks/web_demo.py to compare with the expected PNGs and the Python LiteRT outputs.
//
//   node web_demo/browser_check.mjs --url http://127.0.0.1:PORT/web_demo/index.html \
//        --chromium /usr/bin/chromium --root REPO [--runs 10] [--ui] [--screenshot out.png] \
//        [--faces PHOTO --faces-model MANIFEST] [--faces-sr PHOTO --faces-sr-model MANIFEST] \
//        [--faces-many PHOTO --faces-many-model MANIFEST] [--no-face PHOTO] [--detect PHOTO ...] \
//        android_demo_assets/vnet/model_int8_mixed_samples.json ...
//
// Per manifest: the page's output for every sample (base64 RGB), and with --ui the same
// restore done through the controls a person uses (file inputs, the Restore button) plus a
// painted stroke on the hole canvas (with "a square I place"); with --runs N the median
// latency of N runs. With --faces: a photo chosen with "the faces found", the faces and
// crops the page made, "Find the occluder" on them and the whole photo restored by the
// inpainting model; with --faces-sr and --faces-many the same with another photo and
// model (SR; several faces); with --no-face, what the page offers for a photo without a
// face (the square); with --detect (repeatable), the faces the page finds on each photo and
// its detector's counts (no restore).

import {chromium} from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function parse(argv) {
  const a = {runs: 0, ui: false, manifests: [], screenshot: null, chromium: '/usr/bin/chromium',
             root: process.cwd(), url: null, timeout: 120000, faces: null, facesModel: null,
             facesSr: null, facesSrModel: null, facesMany: null, facesManyModel: null, noFace: null,
             detect: []};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--url') a.url = argv[++i];
    else if (k === '--chromium') a.chromium = argv[++i];
    else if (k === '--root') a.root = argv[++i];
    else if (k === '--runs') a.runs = Number(argv[++i]);
    else if (k === '--timeout') a.timeout = Number(argv[++i]);
    else if (k === '--screenshot') a.screenshot = argv[++i];
    else if (k === '--ui') a.ui = true;
    else if (k === '--faces') a.faces = argv[++i];
    else if (k === '--faces-model') a.facesModel = argv[++i];
    else if (k === '--faces-sr') a.facesSr = argv[++i];
    else if (k === '--faces-sr-model') a.facesSrModel = argv[++i];
    else if (k === '--faces-many') a.facesMany = argv[++i];
    else if (k === '--faces-many-model') a.facesManyModel = argv[++i];
    else if (k === '--no-face') a.noFace = argv[++i];
    else if (k === '--detect') a.detect.push(argv[++i]);
    else if (k.startsWith('--')) throw new Error(`unknown option ${k}`);
    else a.manifests.push(k);
  }
  if (!a.url) throw new Error('--url is required');
  return a;
}

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function main() {
  const args = parse(process.argv.slice(2));
  evalTimeout = args.timeout;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tfface-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: args.chromium, headless: true, args: FLAGS,
    viewport: {width: 1000, height: 1250}, timeout: args.timeout,
  });
  const log = [];
  const failed = [];
  const out = {browser: context.browser()?.version() ?? null, files: [], log, failed};
  try {
    const page = context.pages()[0] ?? await context.newPage();
    page.setDefaultTimeout(args.timeout);
    page.on('console', (m) => { if (m.type() === 'error') log.push(`console: ${m.text()}`); });
    page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
    page.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`); });
    await page.goto(args.url);
    await limited(page.evaluate(() => window.tffaceDemo.ready), 'opening the page');
    // the shipped files the page offers, as paths from the repository root
    out.offered = await page.evaluate(() => [...document.querySelectorAll('#model option')]
        .map((o) => new URL(o.value).pathname.replace(/^\//, '')));
    out.finderListed = await page.evaluate(() => window.tffaceDemo.finderListed());
    out.detector = await page.evaluate(() => window.tffaceDemo.detector());
    out.userAgent = await page.evaluate(() => navigator.userAgent);
    const base = new URL('../', args.url);
    for (const rel of args.manifests) {
      const murl = new URL(rel, base).href;
      const data = JSON.parse(fs.readFileSync(path.join(args.root, rel), 'utf8'));
      const res = {manifest: rel, samples: []};
      step(`load ${rel}`);
      res.info = await limited(page.evaluate((u) => window.tffaceDemo.loadShipped(u), murl), `loading ${rel}`);
      res.runtime = await page.evaluate(() => window.tffaceDemo.runtime());
      for (let i = 0; i < data.samples.length; i++) {
        step(`sample ${i}`);
        res.samples.push(await limited(page.evaluate((k) => window.tffaceDemo.runSample(k), i),
                                       `sample ${i} of ${rel}`));
      }
      if (args.runs > 0) {
        res.benchmark = await limited(page.evaluate((n) => window.tffaceDemo.benchmarkSample(0, n), args.runs),
                                      `timing ${rel}`);
      }
      step('controls');
      if (args.ui) res.ui = await throughControls(page, args, murl, rel, data);
      out.files.push(res);
    }
    if (args.ui && args.manifests.length >= 2) out.badInputs = await badInputs(page, args);
    if (args.faces) out.faces = await facesFound(page, base, args.faces, args.facesModel, args.runs);
    if (args.facesSr) out.facesSr = await facesFound(page, base, args.facesSr, args.facesSrModel, args.runs);
    if (args.facesMany) out.facesMany = await facesFound(page, base, args.facesMany, args.facesManyModel);
    if (args.noFace) {
      step('no face');
      await page.setInputFiles('#photo', args.noFace);
      await settle(page);
      out.noFace = {found: await page.evaluate(() => window.tffaceDemo.faces()),
                    regions: await page.evaluate(() => window.tffaceDemo.regions()),
                    cropHidden: await page.evaluate(() => document.getElementById('crop-controls').hidden)};
    }
    if (args.detect.length) out.detect = [];
    for (const photo of args.detect) {
      step(`detect ${photo}`);
      await page.setInputFiles('#photo', photo);
      await settle(page);
      out.detect.push({photo: path.basename(photo), found: await page.evaluate(() => window.tffaceDemo.faces())});
    }
    if (args.screenshot) await page.screenshot({path: args.screenshot, fullPage: true});
  } finally {
    await context.close();
    fs.rmSync(profile, {recursive: true, force: true});
  }
  process.stdout.write(JSON.stringify(out));
}

let evalTimeout = 120000;
/** page.evaluate with a time limit (it has none): a page stuck in WebAssembly fails the
 * run with the step's name instead of hanging it. */
function limited(promise, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the page did not finish: ${what}`)), evalTimeout);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}
const settle = (page) => limited(page.evaluate(() => window.tffaceDemo.state.pending), 'an action');
const t0 = Date.now();
const step = (what) => { if (process.env.TFFACE_WEB_VERBOSE) process.stderr.write(`${((Date.now() - t0) / 1e3).toFixed(1)} s ${what}\n`); };

/** Sample 0 restored the way a person does it: pick the model in the list, choose the
 * photo (and the mask PNG) with the file inputs, press Restore, read the "after" canvas. */
async function throughControls(page, args, murl, rel, data) {
  const dir = path.dirname(path.join(args.root, rel));
  const item = data.samples[0];
  await page.selectOption('#model', murl);
  await settle(page);
  // the sample is an aligned face already: it is fed as it is, through the square
  await page.check('#mode-square');
  const image = Object.entries(item.inputs).find(([k]) => k !== 'mask')[1];
  await page.setInputFiles('#photo', path.join(dir, image));
  await settle(page);
  const ui = {};
  if (item.inputs.mask && await page.evaluate(() => window.tffaceDemo.finderListed())) {
    // the shipped occluder segmenter finds the hole on the crop
    step('find hole');
    await page.click('#find-hole');
    await settle(page);
    ui.foundHole = await page.evaluate(() => window.tffaceDemo.hole());
    ui.foundStatus = await page.evaluate(() => window.tffaceDemo.status());
  }
  if (item.inputs.mask) {
    // a painted stroke first: it marks hole pixels where the pointer went, and Clear empties it
    await page.click('#clear-mask');
    const box = await page.locator('#mask-canvas').boundingBox();
    const y = box.y + box.height / 2;
    await page.mouse.move(box.x + box.width * 0.25, y);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.75, y, {steps: 8});
    await page.mouse.up();
    ui.painted = await page.evaluate(() => window.tffaceDemo.hole());
    await page.setInputFiles('#mask-file', path.join(dir, item.inputs.mask));
    await settle(page);
  }
  step('run');
  await page.click('#run');
  await settle(page);
  step('ran');
  ui.latencyText = await page.textContent('#latency');
  ui.status = await page.evaluate(() => window.tffaceDemo.status());
  ui.after = await page.evaluate(() => window.tffaceDemo.afterPixels());
  ui.probs = await page.evaluate(() => window.tffaceDemo.lastProbs());
  step('pasted');
  ui.pasted = await page.evaluate(() => window.tffaceDemo.pastedPixels());
  if (item.inputs.mask) {
    // and with a smaller box moved off-centre: the photo outside it must stay as it was
    step('small crop');
    await page.evaluate(() => window.tffaceDemo.setCrop(24, 8, 96));
    await page.click('#run');
    await settle(page);
    ui.pastedSmallCrop = await page.evaluate(() => window.tffaceDemo.pastedPixels());
    ui.smallCropHole = await page.evaluate(() => window.tffaceDemo.hole());
  }
  step('drop');
  // a photo dropped on the drop zone replaces the one chosen (the undamaged target here)
  const target = fs.readFileSync(path.join(dir, item.target)).toString('base64');
  await page.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], 'dropped.png', {type: 'image/png'}));
    document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
  }, target);
  await settle(page);
  ui.dropped = await page.evaluate(() => window.tffaceDemo.photoSize());
  ui.droppedInput = await page.evaluate(() => window.tffaceDemo.inputPixels());
  return ui;
}

/** A photo restored with "the faces found": the model picked in the list, the photo
 * chosen, (inpainting) "Find the occluder", Restore; what the page found, fed and made. */
async function facesFound(page, base, photo, manifest, runs = 0) {
  step(`faces: ${manifest} on ${photo}`);
  await page.selectOption('#model', new URL(manifest, base).href);
  await settle(page);
  await page.check('#mode-faces');
  await page.setInputFiles('#photo', photo);
  await settle(page);
  const demo = (fn, arg) => page.evaluate(([f, a]) => window.tffaceDemo[f](a), [fn, arg]);
  const out = {found: await demo('faces'), regionsBefore: await demo('regions')};
  // with --runs: the time to find the faces (median of runs), and the wall time of the
  // clicks that follow, from the click until the page has settled
  if (runs > 0) out.detectTime = await limited(demo('timeDetect', runs), 'timing the detector');
  const timed = async (what) => {
    const t = Date.now();
    await page.click(what);
    await settle(page);
    return Date.now() - t;
  };
  if (await page.isVisible('#find-hole')) {
    step('faces: find the occluder');
    out.findMs = await timed('#find-hole');
    out.findText = await page.textContent('#latency');
  }
  step('faces: restore');
  out.restoreMs = await timed('#run');
  out.status = await demo('status');
  out.latencyText = await page.textContent('#latency');
  out.regions = await demo('regions');
  out.lastRun = await demo('lastRun');
  out.input = await demo('inputPixels');
  out.output = await demo('regionOutput', 0);
  out.after = await demo('afterPixels');
  out.pasted = await demo('pastedPixels');
  out.background = await demo('backgroundPixels');
  out.stageInfo = await page.textContent('#faces-info');
  return out;
}

/** Files that do not go together, loaded with "load your own": the page says what is
 * wrong in one line and keeps the model it had. */
async function badInputs(page, args) {
  const files = args.manifests.map((rel) => {
    const data = JSON.parse(fs.readFileSync(path.join(args.root, rel), 'utf8'));
    const dir = path.dirname(path.join(args.root, rel));
    return {dir, model: path.join(dir, data.model), card: path.join(dir, data.card)};
  });
  // The other card comes from another model's folder: the int8 and fp16 twins of one
  // model share their inputs, so one's card fits the other.
  const a = files[0];
  const b = files.find((f) => f.dir !== a.dir) || files[1];
  const out = {};
  const attempt = async (model, card) => {
    step(`load own ${path.basename(model)} + ${path.basename(card)}`);
    await page.setInputFiles('#model-file', model);
    await page.setInputFiles('#card-file', card);
    await page.click('#load-own');
    await settle(page);
    const r = {status: await page.evaluate(() => window.tffaceDemo.status()),
               info: await page.textContent('#model-info')};
    return r;
  };
  await page.click('#model-section summary');  // open "load your own"
  out.before = await page.textContent('#model-info');
  out.wrongCard = await attempt(a.model, b.card);
  out.notTflite = await attempt(a.card, a.card);
  out.notJson = await attempt(a.model, a.model);
  return out;
}

main().catch((e) => {
  process.stderr.write(`browser_check: ${e.message ?? e}\n`);
  process.exit(1);
});
