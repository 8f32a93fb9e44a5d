#!/usr/bin/env node
// Browser test of the admin page, run by tests/integration/browser.t (which
// starts the mocks and the gateway).  Plain node + playwright-core driving
// Debian's chromium; prints TAP lines numbered from $TAP_OFFSET + 1, for
// the caller to count in its plan.  Without TAP_OFFSET it prints its own
// plan.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const env = name => {
  const v = process.env[name];
  if (!v) { console.log(`Bail out! ${name} is not set (run tests/integration/browser.t)`); process.exit(1); }
  return v;
};
const GW = env('GW_URL');
const NOADMIN = process.env.NOADMIN_URL || '';
const ADMIN_KEY = env('ADMIN_KEY');
const CLIENT_KEY = env('CLIENT_KEY');
const CONFIG = env('CONFIG');
const MOCK_B = env('MOCK_B_URL');
const SHOTS = process.env.SHOT_DIR || path.join(__dirname, '..', 'screenshots');
const OFFSET = +(process.env.TAP_OFFSET || 0);
const XSS = '<img src=x onerror=alert(1)>';

let count = 0, failures = 0;
function ok(pass, name, diag) {
  count++;
  console.log(`${pass ? 'ok' : 'not ok'} ${OFFSET + count} - ${name}`);
  if (!pass) {
    failures++;
    if (diag) console.log(String(diag).split('\n').slice(0, 12).map(l => '#   ' + l).join('\n'));
  }
}
// test(name, async fn): passes unless fn throws or returns false (or a string: the diagnosis)
async function test(name, fn) {
  const t = Date.now();
  try {
    const r = await fn();
    ok(r === undefined || r === true, name, typeof r === 'string' ? r : undefined);
  } catch (e) {
    ok(false, name, e && e.message);
  }
  if (Date.now() - t > 5000) console.log(`#   (that took ${Date.now() - t} ms)`);
}
const sleep = ms => new Promise(r => setTimeout(r, ms));
// until(async () => cond, ms): poll every 50 ms; the last value if it never holds
async function until(fn, ms = 4000) {
  const end = Date.now() + ms;
  let v;
  while (!(v = await fn().catch(() => false)) && Date.now() < end) await sleep(50);
  return v;
}

async function admin(method, p, body) {
  const res = await fetch(GW + p, {
    method,
    headers: { 'X-API-Key': ADMIN_KEY, 'Content-Type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  return res.json();
}
async function chat(model) {
  const res = await fetch(GW + '/v1/chat/completions', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + CLIENT_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.arrayBuffer();
  return { status: res.status, provider: res.headers.get('x-autoswitch-provider') };
}

// Console errors and native dialogs, per page.  A failed fetch shows in
// Chromium's console as "Failed to load resource: ... status of NNN"; the
// statuses a step provokes on purpose are allowed while it runs.
const consoleErrors = [];
const dialogs = [];
let expectedStatus = [];
function watch(page, label) {
  page.on('console', m => {
    if (m.type() !== 'error') return;
    const s = /status of (\d{3})/.exec(m.text());
    if (s && expectedStatus.includes(+s[1])) return;
    consoleErrors.push(`${label}: ${m.text()}`);
  });
  page.on('pageerror', e => consoleErrors.push(`${label}: uncaught ${e.message}`));
  page.on('dialog', d => { dialogs.push(`${label}: ${d.type()} ${d.message()}`); d.dismiss().catch(() => {}); });
}

// Full page from the top, or (full = false) what the viewport shows now.
async function shot(page, name, full = true) {
  if (full) await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(SHOTS, name + '.png'), fullPage: full });
}

async function login(page) {
  await page.goto(GW + '/');
  await page.fill('#login-key', ADMIN_KEY);
  await page.click('#login-btn');
  await page.waitForSelector('#app:not([hidden])', { timeout: 5000 });
}

// No horizontal scrolling of the page itself (tables scroll in their box).
async function noPageOverflow(page) {
  const r = await page.evaluate(() => {
    const d = document.documentElement;
    const wide = [];
    for (const e of document.querySelectorAll('body *')) {
      if (e.closest('.table-wrap, .logs, dialog, template') || !e.getClientRects().length) continue;
      const b = e.getBoundingClientRect();
      if (b.right > d.clientWidth + 1 || b.left < -1) wide.push(`${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${e.className} ${Math.round(b.left)}..${Math.round(b.right)}`);
    }
    return { sw: d.scrollWidth, cw: d.clientWidth, wide: wide.slice(0, 5) };
  });
  return r.sw <= r.cw && !r.wide.length ? true : `scrollWidth ${r.sw} > ${r.cw}; ${r.wide.join('; ')}`;
}

async function main() {
  const t0 = Date.now();
  fs.mkdirSync(SHOTS, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'autoswitch-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic'],
    viewport: { width: 1280, height: 860 },
    timeout: 30000,
  });
  ctx.setDefaultTimeout(8000);
  try {
    await run(ctx);
  } finally {
    await ctx.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(`# browser steps took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

async function run(ctx) {
  const page = ctx.pages()[0] || await ctx.newPage();
  watch(page, 'desktop');
  const origFile = fs.readFileSync(CONFIG, 'utf8');

  // ---- login ----
  await test('the page loads and asks for the admin key', async () => {
    await page.goto(GW + '/');
    await page.waitForSelector('#login:not([hidden]) #login-key');
    if (!(await page.locator('#app').isHidden())) return 'the app is visible before login';
  });
  await shot(page, 'desktop-login');

  await test('a wrong key shows an error and stays on the login page', async () => {
    expectedStatus = [401];
    await page.fill('#login-key', 'not-the-key');
    await page.click('#login-btn');
    const err = page.locator('#login-error');
    await err.waitFor({ state: 'visible' });
    const text = await err.textContent();
    await sleep(150);
    expectedStatus = [];
    if (!/wrong admin key/i.test(text)) return `error text: ${text}`;
    if (await page.evaluate(() => sessionStorage.length)) return 'something was stored';
    if (!(await page.locator('#app').isHidden())) return 'the app became visible';
  });
  await shot(page, 'desktop-login-error');

  await test('the right key logs in, keeps the key in sessionStorage, opens Health', async () => {
    await page.fill('#login-key', ADMIN_KEY);
    await page.click('#login-btn');
    await page.waitForSelector('#app:not([hidden])');
    await page.waitForSelector('#tab-health:not([hidden]) #h-body tr.model');
    const stored = await page.evaluate(() => Object.values(Object.assign({}, sessionStorage)));
    if (!stored.includes(ADMIN_KEY)) return 'key not in sessionStorage';
    if (await page.evaluate(() => localStorage.getItem('autoswitch.admin_key'))) return 'key in localStorage';
  });

  // ---- health ----
  await test('the health table lists every configured (provider, alias, upstream)', async () => {
    const rows = await page.$$eval('#h-body tr.model', trs => trs.map(t => `${t.dataset.provider}|${t.dataset.alias}|${t.dataset.upstream}|${t.dataset.state}`));
    const want = ['alpha|chat|a-chat|healthy', 'alpha|embed|a-embed|healthy', 'beta|chat|b-chat|healthy', 'beta|fast|b-fast|healthy',
      `${XSS}|<script>alert(2)</script>|x-<b>up</b>|healthy`];
    if (JSON.stringify(rows) !== JSON.stringify(want)) return `rows: ${JSON.stringify(rows)}`;
    const visible = await page.locator('#h-body tr.model .alias', { hasText: 'embed' }).isVisible();
    if (!visible) return 'alias text not visible';
  });

  await test('the health table shows provider summary rows, badges with text, max failures', async () => {
    const prov = await page.$$eval('#h-body tr.prov .pname', e => e.map(x => x.textContent));
    if (prov.join(',') !== `alpha,beta,${XSS}`) return `providers: ${prov}`;
    const badge = await page.locator('tr[data-upstream="b-fast"] .badge').textContent();
    if (badge.trim() !== 'Healthy') return `badge: ${badge}`;
    const fails = await page.locator('tr[data-upstream="b-fast"] td').nth(2).textContent();
    if (fails.trim() !== '0 / 3') return `failures cell: ${fails}`;
  });

  await test('the XSS provider name renders as literal text, nothing injected', async () => {
    const cell = page.locator('#h-body tr.prov .pname', { hasText: XSS });
    if (!(await cell.isVisible())) return 'literal name not visible';
    const injected = await page.evaluate(() => document.querySelectorAll('img[src="x"], #h-body script, #h-body b').length);
    if (injected) return `${injected} injected elements`;
    if (dialogs.length) return `dialogs: ${dialogs.join(', ')}`;
  });

  await test('the last-updated time advances with auto refresh (3 s)', async () => {
    const before = await page.textContent('#h-updated');
    await page.waitForFunction(b => document.querySelector('#h-updated').textContent !== b, before, { timeout: 6000 });
  });

  await test('the auto-refresh switch pauses polling', async () => {
    let polls = 0;
    const onReq = r => { if (r.url().endsWith('/api/admin/health')) polls++; };
    await page.uncheck('#h-auto');
    page.on('request', onReq);
    await sleep(3600);
    page.off('request', onReq);
    await page.check('#h-auto');
    if (polls) return `${polls} polls while paused`;
  });
  await page.waitForSelector('#h-body tr.model');
  await shot(page, 'desktop-health');

  // ---- providers ----
  await page.click('[data-tab=providers]');
  await page.waitForSelector('#tab-providers:not([hidden]) .pcard');
  const card = name => page.locator('.pcard').filter({ has: page.locator('.p-title', { hasText: name }) }).first();

  await test('the Providers tab shows the config: globals, providers, masked keys, mappings', async () => {
    const g = await page.$$eval('.globals input', i => i.map(x => x.value));
    if (g.join(',') !== '2,2,60,120') return `globals: ${g}`;
    const names = await page.$$eval('.pcard [name=name]', i => i.map(x => x.value));
    if (names.join(',') !== `alpha,beta,${XSS}`) return `names: ${names}`;
    const key = await card('beta').locator('[name=api_key]').inputValue();
    if (key !== 'sk-…0002') return `beta key shows ${key}`;
    if ((await page.content()).includes('secret')) return 'a full key is in the page';
    const ex = await card('beta').locator('[name=exclude_params]').inputValue();
    if (ex !== 'user') return `exclude_params: ${ex}`;
    const maps = await card('beta').locator('.map-list .map').count();
    if (maps !== 2) return `${maps} mappings for beta`;
    const probe = await card('beta').locator('.map-list .map').nth(1).locator('[name=probe]').inputValue();
    const mf = await card('beta').locator('.map-list .map').nth(1).locator('[name=max_failures]').inputValue();
    if (probe !== 'models' || mf !== '3') return `b-fast probe ${probe}, max_failures ${mf}`;
  });

  await test('the XSS provider name is shown literally in its card title', async () => {
    const t = await page.locator('.pcard .p-title').nth(2).textContent();
    if (t !== XSS) return `title: ${t}`;
    if (await page.evaluate(() => document.querySelectorAll('img[src="x"]').length)) return 'an img was injected';
  });
  await shot(page, 'desktop-providers');

  await test('a server validation error is shown next to the form; typed input is kept; nothing written', async () => {
    expectedStatus = [400];
    await card('beta').locator('.p-fields [name=weight]').fill('7');
    const up = card('alpha').locator('.map-list .map').first().locator('[name=upstream]');
    await up.fill('');
    if ((await page.textContent('#cfg-status')) !== 'Unsaved changes') return 'no unsaved-changes notice';
    await page.click('#cfg-save');
    const err = page.locator('#cfg-error');
    await err.waitFor({ state: 'visible' });
    const msg = await err.textContent();
    await sleep(150);
    expectedStatus = [];
    if (!/providers\[0\]\.model_mappings\[0\]\.upstream/.test(msg)) return `message: ${msg}`;
    const inline = await card('alpha').locator('.p-err').textContent();
    if (inline !== msg) return `inline message in the provider card: ${inline}`;
    if (!(await up.evaluate(e => e.classList.contains('invalid')))) return 'the empty upstream is not marked';
    const w = await card('beta').locator('.p-fields [name=weight]').inputValue();
    if (w !== '7' || (await up.inputValue()) !== '') return `form changed after the failed save: weight ${w}`;
    if (fs.readFileSync(CONFIG, 'utf8') !== origFile) return 'the file changed';
  });
  await shot(page, 'desktop-providers-error', false);

  await test('a weight change saves: confirmation, the file on disk, the running config', async () => {
    await card('alpha').locator('.map-list .map').first().locator('[name=upstream]').fill('a-chat');
    await page.click('#cfg-save');
    await page.waitForFunction(() => /Saved and reloaded/.test(document.querySelector('#cfg-status').textContent));
    if (await page.locator('#cfg-error').isVisible()) return 'error still shown';
    const file = fs.readFileSync(CONFIG, 'utf8');
    const beta = file.slice(file.indexOf('name: "beta"'), file.indexOf('name: "<img'));
    if (!/\n\s+weight: 7\n/.test(beta)) return `beta in the file:\n${beta}`;
    if (!file.includes('sk-beta-secret-0002')) return 'the masked key did not keep the real key';
    if (!file.includes('# browser test config')) return 'the comment outside providers was lost';
    const cfg = await admin('GET', '/api/admin/config');
    const b = cfg.data.providers.find(p => p.name === 'beta');
    if (b.weight !== 7) return `running config says weight ${b.weight}`;
    const w = await card('beta').locator('.p-fields [name=weight]').inputValue();
    if (w !== '7') return `form reloaded with weight ${w}`;
  });

  await test('routing follows the new weight (alpha 1 : beta 7)', async () => {
    const health = await admin('GET', '/api/admin/health');
    const bm = health.data.find(p => p.name === 'beta').model_healths.find(m => m.upstream_model === 'b-chat');
    if (bm.effective_weight !== 7) return `effective_weight ${bm.effective_weight}`;
    const seen = { alpha: 0, beta: 0 };
    for (let i = 0; i < 16; i++) {
      const r = await chat('chat');
      if (r.status !== 200) return `status ${r.status}`;
      seen[r.provider]++;
    }
    if (seen.beta < 12 || seen.alpha < 1) return `16 requests: ${JSON.stringify(seen)}`;
  });

  await test('Discard brings back the saved values', async () => {
    await card('alpha').locator('.p-fields [name=timeout]').fill('99');
    await page.click('#cfg-discard');
    await page.click('#ask-ok');
    const t = card('alpha').locator('.p-fields [name=timeout]');
    if (!(await until(async () => (await t.inputValue()) === '60'))) return `timeout ${await t.inputValue()}`;
    if (!(await page.locator('#cfg-discard').isDisabled())) return 'Discard still enabled';
  });

  // ---- a failing upstream turns red ----
  await page.click('[data-tab=health]');
  await page.waitForSelector('#tab-health:not([hidden]) #h-body tr.model');
  await test('a failing upstream turns red (unhealthy) within one refresh', async () => {
    const mode = await fetch(MOCK_B + '/_mock/mode', { method: 'POST', body: JSON.stringify({ model: 'b-chat', mode: '500' }) });
    if (!mode.ok) return 'mock control failed';
    // alpha:beta is 1:7, so b-chat is tried first by most; failures fail over to alpha.
    for (let i = 0; i < 6; i++) await chat('chat');
    const h = await admin('GET', '/api/admin/health');
    const st = h.data.find(p => p.name === 'beta').model_healths.find(m => m.upstream_model === 'b-chat').state;
    if (st !== 'unhealthy') return `gateway says ${st}`;
    // The page's next poll (at most 3 s away) must show it.
    const t = Date.now();
    const row = 'tr[data-provider="beta"][data-upstream="b-chat"]';
    const poll = await page.waitForResponse(r => r.url().endsWith('/api/admin/health') && r.request().timing().startTime >= t,
      { timeout: 3500 });
    await poll.finished();
    await page.waitForSelector(`${row}[data-state="unhealthy"]`, { timeout: 300 });
    const took = Date.now() - t;
    const badge = (await page.textContent(`${row} .badge`)).trim();
    if (badge !== 'Unhealthy') return `badge text ${badge}`;
    const colors = await page.$eval(row, r => {
      const c = getComputedStyle(r.querySelector('.badge')).color.match(/\d+/g).map(Number);
      return c;
    });
    if (!(colors[0] > colors[1] + 60 && colors[0] > colors[2] + 60)) return `badge colour rgb(${colors})`;
    const fails = (await page.locator(row + ' td').nth(2).textContent()).trim();
    if (fails !== '2 / 2') return `failures ${fails}`;
    const err = await page.textContent(`${row} .errtext`);
    if (!/500/.test(err)) return `last error: ${err}`;
    const probe = await page.locator(row + ' td').nth(8).textContent();
    if (!/^in \d+ (s|min)chat probe$/.test(probe)) return `next probe: ${probe}`;
    console.log(`# row turned red at the next poll, ${took} ms after the failures`);
  });
  await shot(page, 'desktop-health-failing');

  // ---- logs ----
  await page.click('[data-tab=logs]');
  await test('the Logs tab shows the access log line of a request', async () => {
    await page.waitForSelector('#l-view .ll');
    await chat('chat');
    await page.waitForFunction(() => [...document.querySelectorAll('#l-view .ll.lv-info:not([hidden]) .lm')]
      .some(e => /POST \/v1\/chat\/completions 200 .*-> alpha\/a-chat/.test(e.textContent)), null, { timeout: 5000 });
  });

  await test('log levels are coloured and can be filtered', async () => {
    const warn = await page.locator('#l-view .ll.lv-warn').count();
    if (!warn) return 'no WARN line (failed attempts) shown';
    const c = await page.$eval('#l-view .ll.lv-warn .lvl', e => getComputedStyle(e).color);
    const i = await page.$eval('#l-view .ll.lv-info .lvl', e => getComputedStyle(e).color);
    if (c === i) return `WARN and INFO share the colour ${c}`;
    await page.click('.chip.lv-info');
    const infoShown = await page.locator('#l-view .ll.lv-info:not([hidden])').count();
    const warnShown = await page.locator('#l-view .ll.lv-warn:not([hidden])').count();
    await page.click('.chip.lv-info');
    if (infoShown || !warnShown) return `with INFO off: ${infoShown} info, ${warnShown} warn visible`;
    await page.fill('#l-filter', 'marked unhealthy');
    await page.waitForFunction(() => /^1 of/.test(document.querySelector('#l-count').textContent));
    const txt = await page.locator('#l-view .ll:not([hidden]) .lm').textContent();
    await page.fill('#l-filter', '');
    if (!txt.includes('beta/b-chat marked unhealthy')) return `filtered line: ${txt}`;
  });
  await test('the page\'s own polling does not flood the log (the server logs it at DEBUG)', async () => {
    const polls = await page.locator('#l-view .lm', { hasText: /GET \/api\/admin\/(health|logs) 200/ }).count();
    if (polls) return `${polls} polling lines in the log view`;
  });
  await shot(page, 'desktop-logs');

  await test('the live tail appends new lines and keeps the view at the bottom', async () => {
    const before = await page.locator('#l-view .ll').count();
    for (let i = 0; i < 30; i++) await chat('fast');
    await page.waitForFunction(n => document.querySelectorAll('#l-view .ll').length >= n + 30, before, { timeout: 5000 });
    await sleep(100);
    const gap = await page.$eval('#l-view', v => v.scrollHeight - v.scrollTop - v.clientHeight);
    if (gap > 40) return `${gap} px from the bottom`;
  });

  await test('Clear asks first (in-page dialog), then empties the log', async () => {
    await page.click('#l-clear');
    await page.waitForSelector('#ask[open]');
    await page.click('#ask-ok');
    const lines = () => page.$$eval('#l-view .ll', ls => ls.map(e => e.textContent));
    const cleared = await until(async () => {
      const l = await lines();
      return l.some(t => /admin: logs cleared by/.test(t)) && !l.some(t => /POST \/v1\/chat/.test(t));
    });
    if (!cleared) return `lines after the clear: ${(await lines()).slice(0, 5).join(' | ')}`;
    const r = await admin('GET', '/api/admin/logs');
    if (r.data.lines.some(l => /POST \/v1\/chat/.test(l.text))) return 'the server still has the lines';
    if (dialogs.length) return `native dialogs: ${dialogs}`;
  });

  // ---- phone ----
  await page.setViewportSize({ width: 360, height: 740 });
  for (const tab of ['health', 'providers', 'logs']) {
    await page.click(`[data-tab=${tab}]`);
    await page.waitForSelector(`#tab-${tab}:not([hidden])`);
    if (tab === 'health') await page.waitForSelector('#h-body tr.model');
    if (tab === 'logs') {
      await chat('chat');
      await page.locator('#l-view .ll .lm', { hasText: 'POST /v1/chat/completions' }).first().waitFor({ timeout: 4000 });
    }
    await sleep(200);
    await test(`360 px wide: no horizontal page overflow on ${tab}`, () => noPageOverflow(page));
    await shot(page, `phone-${tab}`);
  }

  // Dark mode screenshots, to look at.
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.click('[data-tab=providers]');
  await shot(page, 'phone-providers-dark');
  await page.setViewportSize({ width: 1280, height: 860 });
  await page.click('[data-tab=health]');
  await page.waitForSelector('#h-body tr.model');
  await shot(page, 'desktop-health-dark');
  await page.click('[data-tab=logs]');
  await shot(page, 'desktop-logs-dark');
  await page.emulateMedia({ colorScheme: 'light' });

  await test('a reload keeps the session; Log out clears it', async () => {
    await page.reload();
    await page.waitForSelector('#app:not([hidden])');
    await page.click('#logout');
    await page.waitForSelector('#login:not([hidden])');
    if (await page.evaluate(() => sessionStorage.length)) return 'sessionStorage not empty';
    await page.reload();
    await page.waitForSelector('#login:not([hidden])');
  });

  if (NOADMIN) {
    await test('with admin_key unset, the page shows the server\'s 403 message', async () => {
      const p2 = await ctx.newPage();
      watch(p2, 'no-admin');
      expectedStatus = [403];
      await p2.goto(NOADMIN + '/');
      await p2.fill('#login-key', 'anything');
      await p2.click('#login-btn');
      const err = p2.locator('#login-error');
      await err.waitFor({ state: 'visible' });
      const t = await err.textContent();
      await sleep(150);
      expectedStatus = [];
      await p2.close();
      if (!/admin API disabled: set admin_key/.test(t)) return `message: ${t}`;
    });
  }

  await test('no console errors, no uncaught exceptions, no native dialogs', () =>
    consoleErrors.length || dialogs.length ? [...consoleErrors, ...dialogs].join('\n') : true);
}

main().catch(e => {
  ok(false, 'the browser test ran to the end', e && e.stack);
}).finally(() => {
  if (process.env.TAP_OFFSET == null) console.log(`1..${count}`);
  process.exitCode = failures ? 1 : 0;
});
