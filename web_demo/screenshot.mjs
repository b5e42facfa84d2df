// The screenshot of docs/web_demo.md: the page restoring a photo with a painted hole, in headless
// Chromium (playwright-core, the system's browser).
//
//   node web_demo/screenshot.mjs --url URL --photo PHOTO --crop X,Y,SIZE \
//        --stroke X0,Y0,X1,Y1 [--brush 5] [--chromium /usr/bin/chromium] --out shot.png
//   node web_demo/screenshot.mjs --url URL --photo PHOTO --find --out shot.png
//
// --crop is the square in photo pixels ("a square I place"); without it the page uses the
// faces it finds. --stroke is a painted line on the hole canvas, in model-input pixels
// (128 px for the shipped V-Net); --find presses "Find the occluder" instead.
import {chromium} from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const a = {chromium: '/usr/bin/chromium', brush: '5'};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--find') a.find = true;
  else a[argv[i].replace(/^--/, '')] = argv[++i];
}
for (const k of ['url', 'photo', 'out']) {
  if (!a[k]) throw new Error(`--${k} is required`);
}
if (!a.stroke && !a.find) throw new Error('--stroke X0,Y0,X1,Y1 or --find is required');
const nums = (s) => s.split(',').map(Number);

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tfface-chromium-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: a.chromium, headless: true, viewport: {width: 1000, height: 900},
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = ctx.pages()[0] ?? await ctx.newPage();
  const settle = () => page.evaluate(() => window.tffaceDemo.state.pending);
  await page.goto(a.url);
  await page.evaluate(() => window.tffaceDemo.ready);
  await page.check(a.crop ? '#mode-square' : '#mode-faces');
  await page.setInputFiles('#photo', a.photo);
  await settle();
  if (a.crop) {
    const [x, y, size] = nums(a.crop);
    await page.evaluate(([x, y, size]) => window.tffaceDemo.setCrop(x, y, size), [x, y, size]);
  }
  if (a.find) {
    await page.click('#find-hole');
    await settle();
  } else {
    const box = await page.locator('#mask-canvas').boundingBox();
    const side = await page.evaluate(() => window.tffaceDemo.plan().mask.width);
    const [x0, y0, x1, y1] = nums(a.stroke).map((v) => v / side * box.width);
    await page.fill('#brush', a.brush);
    await page.mouse.move(box.x + x0, box.y + y0);
    await page.mouse.down();
    await page.mouse.move(box.x + x1, box.y + y1, {steps: 12});
    await page.mouse.up();
  }
  await page.click('#run');
  await settle();
  await page.click('#bench');  // the latency line then shows a median, not the first run
  await settle();
  const status = await page.evaluate(() => window.tffaceDemo.status());
  if (status) throw new Error(status);
  await page.screenshot({path: a.out, fullPage: true});
} finally {
  await ctx.close();
  fs.rmSync(profile, {recursive: true, force: true});
}
