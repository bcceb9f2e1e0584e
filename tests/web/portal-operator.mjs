// SPDX-License-Identifier: GPL-2.0
// The utility portal, operators (issue 14; Documentation/portal.md
// "Operators", Documentation/commands.md "Approving in the portal"), in
// Debian's Chromium against the world of tests/web/portal_world.c
// (GM_WORLD=.../world.json):
//
// - alice signs in with her password and TOTP code (computed here with
//   node's own HMAC-SHA-1, RFC 6238, independently of lib/web);
// - she issues a disconnect to 12 meters (above two_above, 10): the portal
//   prepares the commands, her browser signs them with her key file
//   (setInputFiles; gm-sign.js, WebCrypto Ed25519), and the key never
//   appears in any request; the operation waits ('awaiting-approval' in
//   signed_commands, read with psql);
// - a key file that is not hers is refused in the page, before anything
//   is sent; she cannot approve her own operation;
// - her TOTP code used a second time is refused;
// - bob signs in and approves in the portal with his key file: the twelve
//   are queued with both signatures, and every stored blob verifies here
//   (node's Ed25519) with two different operators' keys;
// - the audit log page shows the hash chain verified.
// GM_SCREENSHOTS=DIR: DIR/portal-operator.png (the approval page).
// Prints '# figure:' lines (page weight, first contentful paint) and last
// "portal-operator: N passed, N failed, N skipped".
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { launch, pageFigures, Tap } from './browser.mjs';

const tap = new Tap('portal-operator');
const world = JSON.parse(fs.readFileSync(process.env.GM_WORLD, 'utf8'));
const base = world.url;
const [alice, bob] = ['alice', 'bob'].map((n) => world.operators.find((o) => o.name === n));
const TOWN = world.towns[0];
const N = 12;
const DOMAIN = Buffer.from('gridmeter signed command v1');

function psql(sql) {
  return execFileSync('psql', [world.conninfo, '-XAtq', '-c', sql], { encoding: 'utf8' }).trim();
}

// RFC 6238 TOTP (SHA-1, 30 s, 6 digits) from a base32 secret, for step t
function totp(secret, step) {
  const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of secret.replace(/=+$/, '').toUpperCase()) bits += alpha.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.alloc(Math.floor(bits.length / 8));
  for (let i = 0; i < key.length; i++) key[i] = parseInt(bits.substr(8 * i, 8), 2);
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = crypto.createHmac('sha1', key).update(msg).digest();
  const o = h[h.length - 1] & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0');
}

function edKey(pkHex) {
  return crypto.createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'),
    Buffer.from(pkHex, 'hex')]), format: 'der', type: 'spki' });
}

// The wire form (lib/sign/gmcmd.h): body 42 bytes, nsig, nsig x (fpr 8, sig 64).
// Which registered keys signed it (each signature verified), or null.
function signersOf(blobHex, ops) {
  const b = Buffer.from(blobHex, 'hex');
  const nsig = b[42];
  if (b.length !== 43 + 72 * nsig) return null;
  const msg = Buffer.concat([DOMAIN, b.subarray(0, 42)]);
  const who = [];
  for (let i = 0; i < nsig; i++) {
    const sig = b.subarray(43 + 72 * i + 8, 43 + 72 * (i + 1));
    const op = ops.find((o) => crypto.verify(null, msg, edKey(o.pk), sig));
    if (!op) return null;
    who.push(op.name);
  }
  return who;
}

async function signIn(browser, op, code) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${base}/login`);
  await page.fill('#login', op.login);
  await page.fill('#password', op.password);
  await Promise.all([page.waitForURL(/\/totp$/), page.click('button[type=submit]')]);
  await page.fill('#code', code);
  await Promise.all([page.waitForLoadState('load'), page.click('main button[type=submit]')]);
  return { ctx, page };
}

// inside a step: the condition, and why when it fails (one TAP line per step)
function check(cond, what, detail) {
  if (!cond) console.log(`# ${what}: ${String(detail === undefined ? '' : detail).split('\n').join('\n# ')}`);
  return !!cond;
}

// the page's own figures, once its first contentful paint is recorded
async function figuresOf(page) {
  await page.waitForFunction(() => performance.getEntriesByName('first-contentful-paint').length,
    null, { timeout: 3000 }).catch(() => {});
  return pageFigures(page);
}

const step = () => Math.floor(Date.now() / 1000 / 30);
const figures = [];
const browser = await launch();
const sent = [];   // every request body the browser sent
let op = null;
try {
  // ---- alice: password, then TOTP
  const code = totp(alice.totp_secret, step());
  const a = await signIn(browser, alice, code);
  a.page.on('request', (r) => sent.push(r.postData() || ''));
  await tap.step('alice signs in with password and TOTP and lands on the towns', async () => {
    await a.page.waitForURL(/\/op\/towns$/);
    const rows = await a.page.locator('#towns tbody tr').count();
    return check(rows === world.towns.length, `${world.towns.length} towns listed`, rows);
  });
  figures.push(['towns', await figuresOf(a.page)]);
  await tap.step('a town\'s mode, backlog and alerts are shown in words and numbers', async () => {
    const row = a.page.locator(`#towns tr[data-town="${TOWN}"]`);
    const mode = await row.getAttribute('data-mode');
    const alerts = Number(psql(`SELECT count(*) FROM alerts WHERE town = ${TOWN} AND state = 'open'`));
    const cells = await row.locator('td').allTextContents();
    return ['normal', 'catching up', 'administrative', 'never seen'].includes(mode) &&
      cells[0].includes(mode) && Number(cells[5]) === alerts;
  });

  // ---- issue: 12 disconnects, signed in the browser
  await a.page.goto(`${base}/op/commands/new`);
  await a.page.selectOption('#action', 'disconnect');
  await a.page.fill('#targets', `${TOWN}:1-${N}`);
  await a.page.selectOption('#expires', '15m');
  await Promise.all([a.page.waitForLoadState('load'), a.page.click('main form button[type=submit]')]);
  await tap.step('the signing page says what is signed, in words', async () => {
    const s = await a.page.textContent('#summary');
    const msgs = await a.page.locator('li[data-msg]').count();
    return check(/Disconnect/.test(s) && s.includes(`${N} meters`) && s.includes(`town ${TOWN}`) &&
      /second operator/.test(s) && msgs === N, 'summary and 12 messages', s);
  });
  await tap.step('each message is the domain and a body of the portal\'s making', async () => {
    const m = await a.page.locator('li[data-msg]').evaluateAll((ls) => ls.map((l) => l.dataset.msg));
    return m.every((h) => Buffer.from(h, 'hex').subarray(0, DOMAIN.length).equals(DOMAIN) &&
      Buffer.from(h, 'hex').length === DOMAIN.length + 42);
  });
  // a key file that is not alice's: refused in the page, nothing sent
  const before = Number(psql('SELECT count(*) FROM signed_commands'));
  await a.page.setInputFiles('#gm-key', bob.key_file);
  await a.page.click('form.gm-sign button[type=submit]');
  await tap.step('bob\'s key file on alice\'s page is refused before anything is sent', async () => {
    await a.page.waitForFunction(() => document.querySelector('form.gm-sign').dataset.signState === 'error');
    const st = await a.page.textContent('#sign-status');
    return check(/Not signed/.test(st) && st.includes('bob') &&
      Number(psql('SELECT count(*) FROM signed_commands')) === before, 'refused in words', st);
  });
  await a.page.setInputFiles('#gm-key', alice.key_file);
  await Promise.all([a.page.waitForURL(/\/op\/operations\/\d+$/),
    a.page.click('form.gm-sign button[type=submit]')]);
  op = Number(a.page.url().match(/(\d+)$/)[1]);
  await tap.step('the mass disconnect waits for a second operator', async () => {
    const waiting = Number(psql(`SELECT count(*) FROM signed_commands WHERE op = ${op} AND ` +
      `state = 'awaiting-approval' AND issuer = 'alice' AND batch = ${N}`));
    const queued = Number(psql(`SELECT count(*) FROM commands c JOIN signed_commands s ON ` +
      `c.cmd_id = s.id WHERE s.op = ${op}`));
    const text = await a.page.textContent('#op-state');
    return check(waiting === N && queued === 0 && /another operator must approve/.test(text),
      `${N} awaiting-approval, none queued`, `${waiting} ${queued} ${text}`);
  });
  await tap.step('the key file never left the browser', async () => {
    const secret = fs.readFileSync(alice.key_file, 'utf8').trim().split(/\s+/)[1].toLowerCase();
    const seed = secret.slice(0, 64);
    return check(sent.length > 0 && sent.every((b) => !b.toLowerCase().includes(seed)),
      `${sent.length} request bodies without the secret`);
  });
  await tap.step('alice cannot approve her own operation', async () => {
    const resp = await a.page.goto(`${base}/op/operations/${op}/approve`);
    const why = await a.page.textContent('#why');
    const left = Number(psql(`SELECT count(*) FROM signed_commands WHERE op = ${op} AND ` +
      `state = 'awaiting-approval' AND array_length(signers, 1) = 1`));
    return check(resp.status() === 409 && /alice already signed/.test(why) && left === N,
      'refused, 409', `${resp.status()} ${why}`);
  });
  await tap.step('the refusal is in the audit log', async () =>
    Number(psql(`SELECT count(*) FROM audit_log WHERE what = 'approve-refused' AND actor = ` +
      `'alice' AND detail LIKE 'operation ${op}:%'`)) === 1);

  // ---- TOTP: alice's code a second time
  await tap.step('a TOTP code is accepted once only', async () => {
    const again = await signIn(browser, alice, code);
    const url = again.page.url();
    const err = await again.page.locator('main [role=alert]').count();
    await again.ctx.close();
    return check(/\/totp$/.test(url) && err === 1, 'replayed code refused', url);
  });

  // ---- bob approves in the portal
  const b = await signIn(browser, bob, totp(bob.totp_secret, step()));
  await tap.step('bob sees the operation awaiting his approval', async () => {
    await b.page.goto(`${base}/op/commands`);
    return (await b.page.locator(`#pending li[data-op="${op}"] a[href$="/approve"]`).count()) === 1;
  });
  await b.page.click(`#pending li[data-op="${op}"] a[href$="/approve"]`);
  await b.page.waitForURL(/\/approve$/);
  figures.push(['approve', await figuresOf(b.page)]);
  await tap.step('the approval page shows what alice signed', async () => {
    const s = await b.page.textContent('#summary');
    return check(s.includes(`${N} meters`) && s.includes('alice') &&
      (await b.page.locator('li[data-msg]').count()) === N, 'summary', s);
  });
  if (process.env.GM_SCREENSHOTS) {
    fs.mkdirSync(process.env.GM_SCREENSHOTS, { recursive: true });
    await b.page.setInputFiles('#gm-key', bob.key_file);
    await b.page.screenshot({ path: path.join(process.env.GM_SCREENSHOTS, 'portal-operator.png'),
      fullPage: false });
  }
  await b.page.setInputFiles('#gm-key', bob.key_file);
  await Promise.all([b.page.waitForURL(new RegExp(`/op/operations/${op}$`)),
    b.page.click('form.gm-sign button[type=submit]')]);
  await tap.step('approved: the twelve are queued with alice and bob as signers', async () => {
    const n = Number(psql(`SELECT count(*) FROM signed_commands WHERE op = ${op} AND state IN ` +
      `('queued', 'sent') AND signers = ARRAY['alice', 'bob'] AND town_tseq IS NOT NULL`));
    return check(n === N, `${N} queued`, n);
  });
  await tap.step('every queued blob verifies with two different operators\' keys', async () => {
    const rows = psql(`SELECT encode(c.blob, 'hex') FROM commands c JOIN signed_commands s ON ` +
      `c.cmd_id = s.id WHERE s.op = ${op}`).split('\n').filter(Boolean);
    const ok = rows.filter((h) => {
      const who = signersOf(h, world.operators);
      return who && who.length === 2 && who.includes('alice') && who.includes('bob');
    }).length;
    return check(rows.length === N && ok === N, `${ok} of ${rows.length} verify`);
  });
  await tap.step('the audit log page shows the chain verified', async () => {
    await b.page.goto(`${base}/op/audit`);
    figures.push(['audit', await figuresOf(b.page)]);
    const chain = await b.page.getAttribute('#chain', 'data-chain');
    const rows = Number(psql('SELECT count(*) FROM audit_log'));
    const text = await b.page.textContent('#chain');
    return check(chain === 'intact' && text.includes(`${rows} rows`), 'intact', text);
  });
  await tap.step('an alert shows its evidence', async () => {
    const id = psql('SELECT id FROM alerts ORDER BY id LIMIT 1');
    if (!id) return check(false, 'the world has an alert');
    await b.page.goto(`${base}/op/alerts/${id}`);
    const ev = await b.page.textContent('#evidence');
    return ev.length > 0;
  });
  await tap.step('customers\' pages are not operators\' and operators\' not customers\'', async () => {
    const r = await b.page.goto(`${base}/bills`);
    return r.status() === 404;
  });
  await a.ctx.close();
  await b.ctx.close();
} catch (e) {
  tap.ok(false, 'the run ended early', e && e.stack ? e.stack : e);
} finally {
  await browser.close();
}
for (const [name, f] of figures) {
  console.log(`# figure: portal-operator ${name}: ${f.bytes} bytes in ${f.requests} requests, ` +
    `first contentful paint ${f.fcp_ms} ms`);
}
process.exitCode = tap.done();
