// SPDX-License-Identifier: GPL-2.0
// The browser tests' common part: Debian's Chromium driven by playwright-core
// (build/npm/node_modules, from web/package-lock.json). The browser is never
// downloaded: executablePath is Debian's binary (GM_CHROMIUM overrides it).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const top = path.resolve(here, '../..');
const require = createRequire(path.join(top, 'build/npm/package.json'));
const { chromium } = require('playwright-core');

export async function launch() {
  return chromium.launch({
    executablePath: process.env.GM_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Counts TAP-style results; the run script sums every file's last line
// "NAME: N passed, N failed, N skipped".
export class Tap {
  constructor(name) { this.name = name; this.n = 0; this.pass = 0; this.fail = 0; this.skip = 0; }
  ok(cond, what, detail) {
    this.n++;
    if (cond) { this.pass++; console.log(`ok ${this.n} - ${what}`); }
    else { this.fail++; console.log(`not ok ${this.n} - ${what}`); if (detail !== undefined) console.log(`# ${String(detail).split('\n').join('\n# ')}`); }
    return !!cond;
  }
  skipped(what, why) { this.n++; this.skip++; console.log(`ok ${this.n} - ${what} # SKIP ${why}`); }
  async step(what, fn) {
    try { const r = await fn(); return this.ok(r !== false, what); }
    catch (e) { return this.ok(false, what, e && e.stack ? e.stack : e); }
  }
  done() {
    console.log(`${this.name}: ${this.pass} passed, ${this.fail} failed, ${this.skip} skipped`);
    return this.fail === 0 ? 0 : 1;
  }
}

// Bytes transferred and time to first contentful paint of one page load,
// read from the browser's own Resource/Paint Timing.
export async function pageFigures(page) {
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    let bytes = nav ? nav.transferSize : 0;
    for (const r of res) bytes += r.transferSize;
    return { bytes, requests: res.length + 1, fcp_ms: fcp ? Math.round(fcp.startTime) : null };
  });
}
