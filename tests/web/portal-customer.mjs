// SPDX-License-Identifier: GPL-2.0
// The utility portal as a customer sees it, in headless Chromium (issue 14).
// Run by the fixture (tests/web/README):
//   build/host/web/portal_world --run node tests/web/portal-customer.mjs
// or with GM_WORLD=DIR/world.json (or the path as the first argument) when
// portal_world already runs. Every expectation comes from world.json: the
// bill totals the database holds, the hours the fixture itself sent.
import fs from 'node:fs';
import path from 'node:path';
import { launch, Tap, pageFigures } from './browser.mjs';

const worldPath = process.argv[2] || process.env.GM_WORLD;
const tap = new Tap('portal-customer');
if (!worldPath || !fs.existsSync(worldPath)) {
  tap.skipped('portal customer pages', 'no world.json (run through build/host/web/portal_world --run)');
  process.exit(tap.done());
}
const world = JSON.parse(fs.readFileSync(worldPath, 'utf8'));
const A = world.customers.a, B = world.customers.b;
const money = (minor) => `£${(minor / 100).toFixed(2)}`;

async function login(page, base, who) {
  await page.goto(`${base}/login`);
  await page.getByLabel('Login').fill(who.login);
  await page.getByLabel('Password').fill(who.password);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
}

const browser = await launch();
let status = 1;
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const figures = [];

  await tap.step('a wrong password is refused', async () => {
    await login(page, world.url, { login: A.login, password: 'not-' + A.password });
    const alert = await page.locator('[role=alert]').textContent();
    return new URL(page.url()).pathname === '/login' && /wrong/i.test(alert);
  });

  await tap.step('customer a signs in and lands on their bills', async () => {
    await login(page, world.url, A);
    return new URL(page.url()).pathname === '/bills';
  });

  await tap.step('every bill with the total the database holds', async () => {
    const rows = await page.locator('#bills tbody tr').evaluateAll((trs) => trs.map((tr) => ({
      id: Number(tr.dataset.bill),
      total: Number(tr.querySelector('[data-total-minor]').dataset.totalMinor),
      text: tr.textContent,
    })));
    const want = [...A.bills].sort((x, y) => y.month - x.month);
    const bad = want.filter((b, i) => !rows[i] || rows[i].id !== b.id || rows[i].total !== b.total_minor ||
      !rows[i].text.includes(money(b.total_minor)));
    if (bad.length || rows.length !== want.length) console.log(`# rows ${JSON.stringify(rows)}`);
    return rows.length === want.length && !bad.length;
  });

  const issued = A.bills.find((b) => b.state === 'issued');
  await tap.step('an issued bill: its lines add up to its total', async () => {
    await page.goto(`${world.url}/bills/${issued.id}`);
    const lines = await page.locator('#bill-lines tbody [data-minor]').evaluateAll(
      (tds) => tds.map((td) => Number(td.dataset.minor)));
    const total = Number(await page.locator('#bill-facts [data-total-minor]').getAttribute('data-total-minor'));
    return lines.length >= 3 && lines.reduce((s, v) => s + v, 0) === issued.total_minor &&
      total === issued.total_minor;
  });

  await tap.step('its letter is a PDF made on demand', async () => {
    const href = await page.locator('#letter').getAttribute('href');
    const r = await page.request.get(world.url + href);
    const body = await r.body();
    return r.status() === 200 && r.headers()['content-type'] === 'application/pdf' &&
      body.subarray(0, 5).toString() === '%PDF-' && body.length > 1000;
  });

  await tap.step("the day's hourly graph holds exactly the hours sent for that day", async () => {
    await page.goto(`${world.url}/usage?view=day&date=${A.day}`);
    const data = JSON.parse(await page.locator('#usage-chart script.gm-chart-data').textContent());
    const x = A.day_hours.map((h) => h.x), v = A.day_hours.map((h) => h.import_mwh);
    const ok = JSON.stringify(data.x) === JSON.stringify(x) &&
      JSON.stringify(data.series[0].values) === JSON.stringify(v);
    if (!ok) console.log(`# got ${JSON.stringify(data)}`);
    return ok;
  });

  await tap.step('the chart is drawn (uPlot instance with 24 points)', async () => {
    await page.waitForFunction(() => window.gmCharts && window.gmCharts['usage-chart'], null, { timeout: 5000 });
    return page.evaluate(() => window.gmCharts['usage-chart'].data[0].length === 24);
  });

  await tap.step('the month graph: one bar a day, summing to the month sent', async () => {
    await page.goto(`${world.url}/usage?view=month&date=${A.day}`);
    const data = JSON.parse(await page.locator('#usage-chart script.gm-chart-data').textContent());
    const sum = data.series[0].values.reduce((s, v) => s + v, 0);
    return data.x.length === 31 && sum === A.month_import_mwh;
  });

  if (process.env.GM_SCREENSHOTS) {
    await page.goto(`${world.url}/usage?view=day&date=${A.day}`);
    await page.waitForFunction(() => window.gmCharts && window.gmCharts['usage-chart'], null, { timeout: 5000 }).catch(() => {});
    fs.mkdirSync(process.env.GM_SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(process.env.GM_SCREENSHOTS, 'portal-customer.png'), fullPage: false });
  }

  await tap.step("another customer's bill by its number: 404, nothing of theirs", async () => {
    let ok = true;
    for (const b of B.bills) {
      const r = await page.goto(`${world.url}/bills/${b.id}`);
      const html = await page.content();
      ok = ok && r.status() === 404 && !html.includes(money(b.total_minor)) && !html.includes('Brunel');
      const pdf = await page.request.get(`${world.url}/bills/${b.id}/letter.pdf`);
      ok = ok && pdf.status() === 404;
    }
    return ok;
  });

  await tap.step("no page of a's shows b's name, address or totals", async () => {
    const leaks = [];
    for (const p of ['/bills', '/usage', '/usage?view=year', '/notices', '/alerts', ...A.bills.map((b) => `/bills/${b.id}`)]) {
      await page.goto(world.url + p);
      const text = await page.content();
      for (const s of ['Brunel', 'High Street', ...B.bills.map((b) => money(b.total_minor))])
        if (text.includes(s)) leaks.push(`${p}: ${s}`);
    }
    if (leaks.length) console.log(`# ${leaks.join('\n# ')}`);
    return leaks.length === 0;
  });

  await tap.step('notices: how they reach a, and a bill notice in the history', async () => {
    await page.goto(`${world.url}/notices`);
    const medium = await page.locator('#medium').textContent();
    const hist = await page.locator('#notice-list').textContent();
    return /e-mail/.test(medium) && medium.includes('Mill Lane') && /electricity bill/i.test(hist);
  });

  await tap.step('alerts: the one about their meter', async () => {
    await page.goto(`${world.url}/alerts`);
    return (await page.locator(`[data-alert="${A.alert}"]`).count()) === 1;
  });

  await tap.step('on a phone: no horizontal scrolling', async () => {
    const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, storageState: await ctx.storageState() });
    const pp = await phone.newPage();
    let ok = true;
    for (const p of ['/bills', `/bills/${issued.id}`, `/usage?view=day&date=${A.day}`]) {
      await pp.goto(world.url + p);
      const w = await pp.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      if (w[0] > w[1]) { ok = false; console.log(`# ${p}: ${w[0]} px wide in ${w[1]}`); }
    }
    await phone.close();
    return ok;
  });

  await tap.step('a POST without the CSRF token is refused (403)', async () => {
    const r = await page.request.post(`${world.url}/logout`, { form: { x: '1' } });
    const r2 = await page.request.post(`${world.url}/logout`, { form: { csrf: 'A'.repeat(43) } });
    return r.status() === 403 && r2.status() === 403;
  });

  await tap.step('sign out ends the session', async () => {
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: /sign out/i }).click()]);
    await page.goto(`${world.url}/bills`);
    return new URL(page.url()).pathname === '/login';
  });

  await tap.step('a session idle longer than configured ends (5 s portal)', async () => {
    const c2 = await browser.newContext();
    const p2 = await c2.newPage();
    await login(p2, world.url_short, B);
    const before = new URL(p2.url()).pathname;
    await p2.waitForTimeout(6500);
    await p2.goto(`${world.url_short}/bills`);
    const after = new URL(p2.url()).pathname;
    await c2.close();
    return before === '/bills' && after === '/login';
  });

  // page weight and first paint of a first visit (empty cache), signed in as a
  const state = await ctx.storageState();
  await login(page, world.url, A);
  const signedIn = await ctx.storageState();
  for (const [name, p] of [['bills', '/bills'], ['bill', `/bills/${issued.id}`],
    ['usage (day chart)', `/usage?view=day&date=${A.day}`]]) {
    const c = await browser.newContext({ storageState: signedIn });
    const pg = await c.newPage();
    await pg.goto(world.url + p, { waitUntil: 'load' });
    await pg.waitForFunction(() => performance.getEntriesByName('first-contentful-paint').length > 0,
      null, { timeout: 5000 }).catch(() => {});
    figures.push([name, await pageFigures(pg)]);
    await c.close();
  }
  void state;
  for (const pid of world.portal_pids || []) {
    try {
      const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const rss = /VmRSS:\s+(\d+) kB/.exec(st), hwm = /VmHWM:\s+(\d+) kB/.exec(st);
      if (rss) console.log(`# figure: maind-portal RSS ${rss[1]} kB (peak ${hwm ? hwm[1] : '?'} kB) after the customer test, pid ${pid}`);
    } catch { /* not ours to read */ }
  }
  for (const [name, f] of figures)
    console.log(`# figure: portal-customer ${name} page: ${f.bytes} bytes in ${f.requests} requests, first contentful paint ${f.fcp_ms} ms`);
  status = 0;
} catch (e) {
  tap.ok(false, 'portal-customer ran to the end', e && e.stack ? e.stack : e);
} finally {
  await browser.close();
}
process.exit(tap.done() || status);
