// Drives the bridge's web control surface in Debian's headless Chromium for the Rust test
// tests/tests/web_surface.rs. Reads one JSON command per line on stdin, answers one line on
// stdout: `OK <json result>` or `ERR <message>`. Each command has its own deadline, so nothing
// here waits forever; the Rust side owns the scenario and checks the gateway and bridges.
//
// Commands: open {url}; reload {}; pin {pin}; text {selector}; waitText {selector, contains};
// drag {target, to, hold}; up {}; waitValue {target, value}; touchTwo {targets, to};
// screenshot {path}; frames {}; quit {}.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const DEADLINE_MS = 15000;
const executablePath = process.env.KUBEKNOBS_CHROMIUM || '/usr/bin/chromium';
const userDataDir = mkdtempSync(join(tmpdir(), 'kubeknobs-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  viewport: { width: 430, height: 932 },
  deviceScaleFactor: 2,
  hasTouch: true,
});
const page = context.pages()[0] || await context.newPage();
page.setDefaultTimeout(DEADLINE_MS);
// Every frame the page sends on its WebSocket, to check coalescing and touch/release order.
const sent = [];
page.on('websocket', (ws) => ws.on('framesent', (f) => sent.push(String(f.payload))));

const track = (target) => page.locator(`.card[data-target="${target}"] .track`);

// Where `fraction` of a fader is on screen; scrolls it to the middle first (unless `stay`),
// clear of the sticky arm key at the bottom.
async function point(target, fraction, stay) {
  if (!stay) {
    await track(target).evaluate((el) => el.scrollIntoView({ block: 'center', behavior: 'instant' }));
  }
  const box = await track(target).boundingBox();
  if (!box) throw new Error(`no fader for ${target}`);
  return { x: box.x + 2 + fraction * (box.width - 4), y: box.y + box.height / 2 };
}

const commands = {
  async open({ url }) {
    await page.goto(url);
    await page.waitForFunction(
      () => document.querySelector('#controls .card') || !document.getElementById('pin').hidden,
    );
    return page.title();
  },
  // Reloads the page (its WebSocket closes, whatever it held) and waits for the controls.
  async reload() {
    await page.reload();
    await page.waitForSelector('#controls .card');
    return true;
  },
  async pin({ pin }) {
    await page.fill('#pin-input', pin);
    await page.click('#pin button');
    return true;
  },
  async text({ selector }) {
    return page.locator(selector).first().textContent();
  },
  async waitText({ selector, contains }) {
    await page.waitForFunction(
      ([s, c]) => [...document.querySelectorAll(s)].some((e) => e.textContent.includes(c)),
      [selector, contains],
    );
    return page.locator(selector).first().textContent();
  },
  // A mouse drag: pointer down at the fader's start, moves in small steps (many per frame),
  // and up at the end unless `hold`.
  async drag({ target, to, hold }) {
    const start = await point(target, 0);
    const end = await point(target, to);
    await page.mouse.move(start.x, start.y);
    await page.mouse.down();
    await page.mouse.move(end.x, end.y, { steps: 40 });
    if (!hold) await page.mouse.up();
    return true;
  },
  async up() {
    await page.mouse.up();
    return true;
  },
  async waitValue({ target, value }) {
    await page.waitForFunction(
      ([t, v]) => {
        const el = document.querySelector(`.card[data-target="${t}"] .track`);
        return el && Math.abs(Number(el.dataset.value) - v) < 1e-6;
      },
      [target, value],
    );
    return true;
  },
  // Two fingers on two faders at once (a real touch screen's events, through the DevTools
  // protocol): both touch, both slide to `to`, both lift.
  async touchTwo({ targets, to }) {
    const cdp = await context.newCDPSession(page);
    await point(targets[0], 0);
    const starts = await Promise.all(targets.map((t) => point(t, 0.02, true)));
    const ends = await Promise.all(targets.map((t) => point(t, to, true)));
    const at = (ps) => ps.map((p, id) => ({ x: p.x, y: p.y, id }));
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: at(starts) });
    for (let i = 1; i <= 10; i++) {
      const mid = starts.map((s, k) => ({
        x: s.x + (ends[k].x - s.x) * i / 10, y: s.y,
      }));
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: at(mid) });
    }
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    return true;
  },
  async screenshot({ path }) {
    await page.screenshot({ path });
    return path;
  },
  // The frames sent so far (and forgets them).
  async frames() {
    return sent.splice(0).map((f) => JSON.parse(f));
  },
  async quit() {
    return true;
  },
};

const lines = createInterface({ input: process.stdin });
process.stdout.write('READY\n');
for await (const line of lines) {
  if (!line.trim()) continue;
  let quit = false;
  try {
    const command = JSON.parse(line);
    const run = commands[command.cmd];
    if (!run) throw new Error(`unknown command ${command.cmd}`);
    quit = command.cmd === 'quit';
    const result = await run(command);
    process.stdout.write(`OK ${JSON.stringify(result ?? null)}\n`);
  } catch (e) {
    process.stdout.write(`ERR ${String(e && e.message ? e.message : e).split('\n')[0]}\n`);
  }
  if (quit) break;
}
await context.close();
rmSync(userDataDir, { recursive: true, force: true });
