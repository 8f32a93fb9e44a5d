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
const MOCK_A = env('MOCK_A_URL');
const MOCK_B = env('MOCK_B_URL');
const KEY_ALICE = env('KEY_ALICE');
const KEY_BOB = env('KEY_BOB');
const BOB = 'bob <i>x</i>';   // a key name with markup and spaces
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
// Local calendar days, as the page and the gateway count them.
const dayOf = d => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
const dayAdd = (day, n) => { const [y, m, d] = day.split('-').map(Number); return dayOf(new Date(y, m - 1, d + n, 12)); };
const TODAY = dayOf(new Date());

async function chat(model) {
  return chatAs(CLIENT_KEY, model);
}
async function chatAs(key, model) {
  const res = await fetch(GW + '/v1/chat/completions', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json' },
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

// At phone width: the page does not scroll sideways (nor does any table
// box), and each row of the table is a card whose cells all show, inside
// the screen, each with its column's name as label.
async function cardsFit(page, table, rows, labels) {
  const r = await page.evaluate(([table, rows, labels]) => {
    const bad = [];
    const se = document.scrollingElement;
    if (se.scrollWidth > innerWidth) bad.push(`page scrollWidth ${se.scrollWidth} > ${innerWidth}`);
    const wrap = document.querySelector(table).closest('.table-wrap');
    if (wrap.scrollWidth > wrap.clientWidth) bad.push(`table box scrollWidth ${wrap.scrollWidth} > ${wrap.clientWidth}`);
    const trs = [...document.querySelectorAll(`${table} tbody ${rows}`)];
    if (!trs.length) bad.push('no rows');
    for (const tr of trs) {
      const seen = [];
      for (const c of tr.children) {
        const b = c.getBoundingClientRect();
        if (!c.getClientRects().length || b.width < 1) continue;
        if (b.left < 0 || b.right > innerWidth + 0.5) bad.push(`${c.dataset.label} at ${Math.round(b.left)}..${Math.round(b.right)}`);
        const label = getComputedStyle(c, '::before').content;
        if (labels.includes(c.dataset.label) && label !== `"${c.dataset.label}"`) bad.push(`${c.dataset.label}: label shows ${label}`);
        seen.push(c.dataset.label);
      }
      const missing = labels.filter(l => !seen.includes(l));
      if (missing.length) bad.push(`a card lacks ${missing}`);
      if (tr.getBoundingClientRect().right > innerWidth) bad.push('a card is wider than the screen');
    }
    return bad.slice(0, 6);
  }, [table, rows, labels]);
  return r.length ? r.join('; ') : true;
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

  await test('the newer provider keys (More settings) save when given, and empty ones are not written', async () => {
    const a = card('alpha');
    if (await a.locator('.p-more').evaluate(d => d.open)) return 'More settings open for a provider that sets none of them';
    await a.locator('.p-more > summary').click();
    const adv = a.locator('.p-adv');
    await adv.locator('[name=anthropic_base_url]').fill(MOCK_A);
    // A new destination for the key: the gateway wants it typed again.
    await a.locator('.p-fields [name=api_key]').fill('sk-alpha-secret-0001');
    await adv.locator('[name=anthropic_auth]').selectOption('bearer');
    await adv.locator('[name=headers]').fill('X-Team: blue\nX-Route: eu-1');
    await adv.locator('[name=forward_headers]').fill('X-Trace-Id');
    await adv.locator('[name=model_retries]').fill('0');
    await adv.locator('[name=first_token_timeout]').fill('30');
    await adv.locator('[name=stream_usage]').selectOption('false');
    const m0 = a.locator('.map-list .map').first();
    await m0.locator('[name=first_token_timeout]').fill('20');
    await m0.locator('[name=continuation]').selectOption('prefill');
    await page.click('#cfg-save');
    await page.waitForFunction(() => /Saved and reloaded/.test(document.querySelector('#cfg-status').textContent));
    const file = fs.readFileSync(CONFIG, 'utf8');
    const alpha = file.slice(file.indexOf('name: "alpha"'), file.indexOf('name: "beta"'));
    const want = [`anthropic_base_url: "${MOCK_A}"`, 'anthropic_auth: bearer', 'headers: { "X-Team": "blue", "X-Route": "eu-1" }',
      'forward_headers: ["X-Trace-Id"]', 'model_retries: 0', 'first_token_timeout: 30', 'stream_usage: false',
      'first_token_timeout: 20', 'continuation: prefill'];
    const missing = want.filter(w => !alpha.includes(w));
    if (missing.length) return `not in alpha's block: ${missing.join(' | ')}\n${alpha}`;
    for (const k of ['response_model', 'continuation: none', 'probe: chat', 'base_url: ""'])
      if (file.includes(k)) return `"${k}" was written though nobody set it`;
    const cfg = await admin('GET', '/api/admin/config');
    const p = cfg.data.providers.find(x => x.name === 'alpha');
    if (p.anthropic_base_url !== MOCK_A || p.stream_usage !== false || p.model_retries !== 0 || p.model_mappings[0].continuation !== 'prefill')
      return `running config: ${JSON.stringify(p)}`;
    // The form comes back with them (header values masked), More settings open.
    if (!(await a.locator('.p-more').evaluate(d => d.open))) return 'More settings closed after the reload';
    const hv = await adv.locator('[name=headers]').inputValue();
    if (hv !== 'X-Team: …\nX-Route: …') return `headers shown as ${JSON.stringify(hv)}`;
    if ((await page.textContent('#cfg-status')) === 'Unsaved changes') return 'the reloaded form counts as changed';
  });

  await card('alpha').locator('.p-more').scrollIntoViewIfNeeded();
  await shot(page, 'desktop-providers-more', false);

  await test('masked header values sent back keep the file\'s values, and the headers reach the upstream', async () => {
    await card('alpha').locator('.p-fields [name=timeout]').fill('61');
    await page.click('#cfg-save');
    await page.waitForFunction(() => /Saved and reloaded/.test(document.querySelector('#cfg-status').textContent));
    const file = fs.readFileSync(CONFIG, 'utf8');
    if (!file.includes('headers: { "X-Team": "blue", "X-Route": "eu-1" }')) return 'the header values were not kept';
    // alpha gets 1 in 8 of the chat requests: look at what it received.
    for (let i = 0; i < 16; i++) {
      const r = await chat('chat');
      if (r.provider !== 'alpha') continue;
      const rec = await (await fetch(MOCK_A + '/_mock/requests?n=1')).json();
      const hm = rec[0].header_map;
      return hm['x-team'] === 'blue' && hm['x-route'] === 'eu-1' ? true : `alpha received ${JSON.stringify(hm)}`;
    }
    return 'alpha answered none of 16 requests';
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

  // ---- keys and usage ----
  await page.click('[data-tab=keys]');
  await page.waitForSelector('#tab-keys:not([hidden]) #k-body tr.key');
  await page.waitForSelector('#u-body tr.urow');
  const keyRow = name => page.locator(`#k-body tr.key[data-name="${name.replace(/"/g, '\\"')}"]`);
  const cellText = (name, cls) => keyRow(name).locator('.' + cls).innerText();

  await test('Keys & Usage lists the named keys (masked) with models and limits, and the other callers', async () => {
    const names = await page.$$eval('#k-body tr.key', r => r.map(t => `${t.dataset.name}|${t.dataset.status || 'other'}`));
    if (names.join(',') !== `alice|active,${BOB}|active,api_keys[0]|other`) return `rows: ${names}`;
    const got = {
      key: await cellText('alice', 'c-key'), models: await keyRow('alice').locator('.c-models .pill').allTextContents(),
      rpm: await keyRow('alice').locator('.c-rpm .meta').textContent(), flight: await keyRow('alice').locator('.c-flight .meta').textContent(),
      cap: await keyRow('alice').locator('.c-tokens .meta').textContent(), expires: await cellText('alice', 'c-expires'),
      bmodels: await cellText(BOB, 'c-models'), bflight: await keyRow(BOB).locator('.c-flight .meta').textContent(),
      bexp: await cellText(BOB, 'c-expires'), bcap: await keyRow(BOB).locator('.c-tokens .meta').textContent(),
    };
    const want = { key: 'sk-…0001', models: ['chat', 'fa*'], rpm: 'of 100 rpm', flight: 'no limit', expires: 'never',
      bmodels: 'all models', bflight: 'of 2 at once', bexp: '2099-12-31', bcap: 'no daily cap' };
    for (const [k, v] of Object.entries(want))
      if (JSON.stringify(got[k]) !== JSON.stringify(v)) return `${k}: ${JSON.stringify(got[k])}, want ${JSON.stringify(v)}`;
    if (!/^of 100,000 \(\d+ %\)$/.test(got.cap)) return `alice's cap: ${got.cap}`;
    if (await page.evaluate(() => document.querySelectorAll('#k-body i').length)) return 'the <i> of a key name became an element';
    if ((await keyRow(BOB).locator('.kname').textContent()) !== BOB) return 'the name is not shown literally';
    const html = await page.content();
    if (html.includes(KEY_ALICE) || html.includes(KEY_BOB)) return 'a full key is in the page';
  });

  await test('the keys\' live state (this minute, in flight, tokens today against the cap, answers) follows the gateway', async () => {
    const r = await chatAs(KEY_ALICE, 'chat');
    if (r.status !== 200) return `alice's request: ${r.status}`;
    let last = '';
    const same = await until(async () => {
      const d = (await admin('GET', '/api/admin/keys')).data;
      const st = d.keys.find(k => k.name === 'alice').state;
      const ui = await page.$eval('#k-body tr.key[data-name="alice"]', t => ({
        rpm: t.querySelector('.c-rpm .v').textContent, flight: t.querySelector('.c-flight .v').textContent,
        tokens: t.querySelector('.c-tokens .v').textContent, fill: t.querySelector('.meter-fill').style.width,
        now: t.querySelector('.meter').getAttribute('aria-valuenow'), answers: t.querySelector('.c-answers').textContent,
      }));
      const want = { rpm: st.rpm_used.toLocaleString('en-US'), flight: String(st.in_flight), tokens: st.tokens_today.toLocaleString('en-US'),
        fill: `${(st.tokens_today / 1000).toFixed(1)}%`, now: String(st.tokens_today) };
      last = `ui ${JSON.stringify(ui)} gateway ${JSON.stringify(st)}`;
      return Object.entries(want).every(([k, v]) => ui[k] === v) && st.tokens_today > 0 && st.rpm_used >= 1 &&
        ui.answers.includes(`2xx ${st.answers['2xx']}`) && ui.answers.includes('refused: model 1');
    }, 8000);
    if (!same) return last;
    const other = await page.$eval('#k-body tr.other .c-tokens .v', e => e.textContent);
    if (!/^[\d,]+$/.test(other) || other === '0') return `api_keys[0] tokens today: ${other}`;
  });

  let token = '';
  await test('Add key: the token is shown once with a warning and a copy button; it works at once', async () => {
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: GW }).catch(() => {});
    await page.click('#k-add');
    await page.waitForSelector('#key-dlg[open]');
    await page.fill('#kd-name', 'carol');
    await page.fill('#kd-models', 'fast, emb*');
    await page.fill('#kd-rpm', '5');
    const req = page.waitForRequest(r => r.method() === 'POST' && r.url().endsWith('/api/admin/keys'));
    await page.click('#kd-save');
    const body = JSON.parse((await req).postData());
    if (JSON.stringify(body) !== '{"name":"carol","models":["fast","emb*"],"rpm":5}') return `POST body ${JSON.stringify(body)}`;
    await page.waitForSelector('#token-dlg[open]');
    token = await page.inputValue('#td-token');
    if (!/^sk-as-[0-9a-f]{48}$/.test(token)) return `token ${token}`;
    const warn = await page.textContent('#token-dlg .alert');
    if (!/carol/.test(warn) || !/not shown again/.test(warn)) return `warning: ${warn}`;
    await page.click('#td-copy');
    await page.waitForFunction(() => document.querySelector('#td-status').textContent !== '');
    const copied = await page.textContent('#td-status');
    if (!/^Copied/.test(copied)) return `copy: ${copied}`;
    const clip = await page.evaluate(() => navigator.clipboard.readText()).catch(() => null);
    if (clip != null && clip !== token) return `clipboard holds ${clip}`;
    await shot(page, 'desktop-keys-token', false);
    const models = await fetch(GW + '/v1/models', { headers: { Authorization: 'Bearer ' + token } });
    const ids = models.ok ? (await models.json()).data.map(m => m.id) : [];
    if (models.status !== 200 || ids.join(',') !== 'embed,fast') return `/v1/models with the new key: ${models.status} ${ids}`;
  });

  await test('... and once closed, the token is nowhere: not in the page, the API or the file (only its SHA-256)', async () => {
    await page.click('#td-done');
    await page.waitForSelector('#token-dlg:not([open])', { state: 'attached' });
    await keyRow('carol').waitFor();
    if ((await page.content()).includes(token) || (await page.inputValue('#td-token'))) return 'the token is still in the page';
    if (JSON.stringify(await admin('GET', '/api/admin/keys')).includes(token)) return 'the keys API shows the token';
    const file = fs.readFileSync(CONFIG, 'utf8');
    const sha = require('crypto').createHash('sha256').update(token).digest('hex');
    if (file.includes(token) || !file.includes(sha)) return 'the file holds the token, or not its SHA-256';
    const shown = await cellText('carol', 'c-key');
    if (shown !== `SHA-256 ${sha.slice(0, 12)}…`) return `key cell: ${shown}`;
    if ((await keyRow('carol').locator('.c-rpm .meta').textContent()) !== 'of 5 rpm') return 'rpm limit not shown';
  });

  await test('the server\'s message shows in the dialog: a duplicate name (409)', async () => {
    expectedStatus = [409];
    await page.click('#k-add');
    await page.fill('#kd-name', 'alice');
    await page.click('#kd-save');
    const err = page.locator('#kd-error');
    await err.waitFor({ state: 'visible' });
    const msg = await err.textContent();
    await sleep(150);
    expectedStatus = [];
    const open = await page.$('#key-dlg[open]');
    await page.click('#kd-cancel');
    if (msg !== 'a key with this name exists') return `message: ${msg}`;
    if (!open) return 'the dialog closed';
  });

  await test('Edit: disabling a key sends only that change, and the key gets 401 at once', async () => {
    await keyRow('carol').locator('.k-edit').click();
    await page.waitForSelector('#key-dlg[open]');
    if ((await page.inputValue('#kd-models')) !== 'fast, emb*' || (await page.inputValue('#kd-rpm')) !== '5') return 'the dialog does not show the key';
    if (!(await page.$eval('#kd-name', e => e.readOnly))) return 'the name is editable';
    await page.check('#kd-disabled');
    const req = page.waitForRequest(r => r.method() === 'PUT');
    await page.click('#kd-save');
    const put = await req;
    if (!put.url().endsWith('/api/admin/keys/carol') || put.postData() !== '{"disabled":true}') return `PUT ${put.url()} ${put.postData()}`;
    await page.waitForSelector('#k-body tr.key[data-name="carol"][data-status="disabled"]');
    const badge = await keyRow('carol').locator('.badge').textContent();
    if (badge !== 'Disabled') return `badge ${badge}`;
    const r = await fetch(GW + '/v1/models', { headers: { Authorization: 'Bearer ' + token } });
    if (r.status !== 401) return `/v1/models with the disabled key: ${r.status}`;
    const file = fs.readFileSync(CONFIG, 'utf8');
    const carol = file.slice(file.indexOf('name: "carol"'));
    if (!/disabled: true/.test(carol.split('\n- ')[0]) || !/rpm: 5/.test(carol)) return `carol in the file:\n${carol}`;
  });

  await test('Edit of a name with markup and spaces (URL-encoded): limits change, an emptied field goes back to its default', async () => {
    await keyRow(BOB).locator('.k-edit').click();
    await page.waitForSelector('#key-dlg[open]');
    await page.fill('#kd-daily_tokens', '5000');
    await page.fill('#kd-expires', '');
    const req = page.waitForRequest(r => r.method() === 'PUT');
    await page.click('#kd-save');
    const put = await req;
    if (!put.url().endsWith('/api/admin/keys/bob%20%3Ci%3Ex%3C%2Fi%3E')) return `PUT ${put.url()}`;
    if (put.postData() !== '{"daily_tokens":5000,"expires":null}') return `body ${put.postData()}`;
    await page.waitForFunction(n => {
      const t = [...document.querySelectorAll('#k-body tr.key')].find(r => r.dataset.name === n);
      return t && /^of 5,000/.test(t.querySelector('.c-tokens .meta').textContent) && t.querySelector('.c-expires').textContent === 'never';
    }, BOB);
    const k = (await admin('GET', '/api/admin/keys')).data.keys.find(x => x.name === BOB);
    if (k.daily_tokens !== 5000 || k.expires !== null || k.max_concurrent !== 2) return `gateway: ${JSON.stringify(k)}`;
    const r = await chatAs(KEY_BOB, 'fast');
    if (r.status !== 200) return `bob's key after the change: ${r.status}`;
  });

  await test('Remove asks first (in-page dialog); the key is gone and refused', async () => {
    await keyRow('carol').locator('.k-remove').click();
    await page.waitForSelector('#ask[open]');
    const q = await page.textContent('#ask-title');
    await page.click('#ask-ok');
    await keyRow('carol').waitFor({ state: 'detached' });
    if (q !== 'Remove carol?') return `question: ${q}`;
    const d = (await admin('GET', '/api/admin/keys')).data;
    if (d.keys.some(k => k.name === 'carol')) return 'the gateway still has carol';
    if (fs.readFileSync(CONFIG, 'utf8').includes('carol')) return 'carol is still in the file';
    const r = await fetch(GW + '/v1/models', { headers: { Authorization: 'Bearer ' + token } });
    if (r.status !== 401) return `/v1/models with the removed key: ${r.status}`;
    if (dialogs.length) return `native dialogs: ${dialogs}`;
  });

  // The usage table against the API's rows, summed here.
  async function usageMatches(group, from, to) {
    const rows = (await admin('GET', `/api/admin/usage?from=${from}&to=${to}`)).data.rows;
    const want = {};
    for (const r of rows) {
      const w = want[r[group]] || (want[r[group]] = { requests: 0, prompt_tokens: 0, completion_tokens: 0, cached_tokens: 0, total_tokens: 0 });
      for (const c of Object.keys(w)) w[c] += r[c];
    }
    const ui = await page.$$eval('#u-body tr.urow', trs => Object.fromEntries(trs.map(t => [t.dataset.group,
      Object.fromEntries([...t.querySelectorAll('td[data-count]')].map(c => [c.dataset.count, +c.dataset.value]))])));
    const shown = await page.$$eval('#u-body tr.urow td[data-count=total_tokens]', tds => tds.map(t => t.textContent));
    const order = await page.$$eval('#u-body tr.urow', trs => trs.map(t => t.dataset.group));
    const byTotal = Object.keys(want).sort((a, b) => want[b].total_tokens - want[a].total_tokens);
    const foot = await page.$eval('#u-foot td[data-count=total_tokens]', t => +t.dataset.value);
    const sum = rows.reduce((n, r) => n + r.total_tokens, 0);
    if (JSON.stringify(ui, Object.keys(ui).sort()) !== JSON.stringify(want, Object.keys(want).sort()))
      return `by ${group}: page ${JSON.stringify(ui)}\napi ${JSON.stringify(want)}`;
    if (order[0] !== byTotal[0]) return `first row ${order[0]}, the largest is ${byTotal[0]}`;
    if (foot !== sum) return `total ${foot}, rows sum to ${sum}`;
    if (!shown.every(t => /^\d{1,3}(,\d{3})*$/.test(t))) return `numbers shown as ${shown}`;
    return rows;
  }

  await test('usage: the last 7 local days by default; the table sums the rows by key, alias and provider', async () => {
    const from = await page.inputValue('#u-from'), to = await page.inputValue('#u-to');
    if (from !== dayAdd(TODAY, -6) || to !== TODAY) return `range ${from} .. ${to}`;
    await page.click('#k-refresh');
    await sleep(300);
    for (const g of ['key', 'alias', 'provider']) {
      await page.selectOption('#u-group', g);
      const r = await usageMatches(g, from, to);
      if (typeof r === 'string') return r;
      if (g === 'key' && !r.some(x => x.key === BOB && x.day === dayAdd(TODAY, -3))) return 'the seeded rows are not there';
      if (r.some(x => x.day < from)) return 'a row before the range';
    }
    const head = await page.textContent('#u-group-head');
    await page.selectOption('#u-group', 'key');
    if (head !== 'Provider') return `column head ${head}`;
    const bob = await page.$$eval('#u-body tr.urow th', t => t.map(x => x.textContent));
    if (!bob.includes(BOB)) return `groups ${bob}`;
  });

  await test('usage chart: inline SVG, one bar per day with usage, a title per bar, axis labels', async () => {
    const check = async (from, want) => {
      const rows = (await admin('GET', `/api/admin/usage?from=${from}&to=${TODAY}`)).data.rows;
      const perDay = {};
      for (const r of rows) perDay[r.day] = (perDay[r.day] || 0) + r.total_tokens;
      const bars = await page.$$eval('#u-chart svg rect.bar', rs => rs.map(r => [r.dataset.day, r.querySelector('title').textContent, +r.getAttribute('height')]));
      const days = Object.keys(perDay).filter(d => perDay[d] > 0).sort();
      if (bars.map(b => b[0]).join(',') !== days.join(',') || days.join(',') !== want.join(','))
        return `bars for ${bars.map(b => b[0])}, usage on ${days}, expected ${want}`;
      for (const [d, title] of bars)
        if (!title.startsWith(`${d}: ${perDay[d].toLocaleString('en-US')} tokens`)) return `title of ${d}: ${title}`;
      const top = bars.reduce((m, b) => (perDay[b[0]] > perDay[m[0]] ? b : m));
      const k = top[2] / perDay[top[0]];
      if (!bars.every(([d, , hgt]) => Math.abs(hgt - perDay[d] * k) <= 1.01)) return `heights not proportional: ${bars.map(b => b[2])}`;
      const labels = await page.$$eval('#u-chart svg text.axis', t => t.map(x => x.textContent));
      if (!labels.includes('0') || !labels.includes(TODAY.slice(5))) return `axis labels ${labels}`;
      return true;
    };
    const inBox = await page.$eval('#u-chart svg', s => s.getBoundingClientRect().width <= s.parentElement.clientWidth);
    if (!inBox) return 'the chart is wider than its box';
    let r = await check(dayAdd(TODAY, -6), [dayAdd(TODAY, -3), dayAdd(TODAY, -1), TODAY]);
    if (r !== true) return r;
    await page.fill('#u-from', dayAdd(TODAY, -12));
    await page.dispatchEvent('#u-from', 'change');
    await page.waitForFunction(() => document.querySelectorAll('#u-chart rect.bar').length === 4);
    r = await check(dayAdd(TODAY, -12), [dayAdd(TODAY, -10), dayAdd(TODAY, -3), dayAdd(TODAY, -1), TODAY]);
    await page.fill('#u-from', dayAdd(TODAY, -6));
    await page.dispatchEvent('#u-from', 'change');
    await page.waitForFunction(() => document.querySelectorAll('#u-chart rect.bar').length === 3);
    return r;
  });
  await shot(page, 'desktop-keys');

  // ---- phone ----
  await page.setViewportSize({ width: 360, height: 740 });
  for (const tab of ['health', 'providers', 'keys', 'logs']) {
    await page.click(`[data-tab=${tab}]`);
    await page.waitForSelector(`#tab-${tab}:not([hidden])`);
    if (tab === 'health') await page.waitForSelector('#h-body tr.model');
    if (tab === 'keys') await page.waitForSelector('#u-body tr.urow');
    if (tab === 'logs') {
      await chat('chat');
      await page.locator('#l-view .ll .lm', { hasText: 'POST /v1/chat/completions' }).first().waitFor({ timeout: 4000 });
    }
    await sleep(200);
    await test(`360 px wide: no horizontal page overflow on ${tab}`, () => noPageOverflow(page));
    if (tab === 'health') {
      await test('360 px wide: Health shows one card per model with every field, label: value', () => cardsFit(page, '#h-table', 'tr.model',
        ['State', 'Failures', 'Requests', 'Success', 'Latency p50 / p95', 'TTFT p50', 'Last error', 'Next probe']));
      await test('360 px wide: the failing model\'s card shows its failures, last error and next probe', async () => {
        const t = await page.$eval('#h-body tr[data-upstream="b-chat"][data-provider="beta"]', tr => [...tr.children]
          .map(c => `${getComputedStyle(c, '::before').content.replace(/"/g, '')}: ${c.innerText.replace(/\n/g, ' ')}`).join('\n'));
        return /Failures: 2 \/ 2/.test(t) && /Last error: .*500/.test(t) && /Next probe: (in|due)/.test(t) ? true : `card text: ${t}`;
      });
    }
    if (tab === 'keys') {
      await test('360 px wide: Keys show one card per key with every field', () => cardsFit(page, '#k-table', 'tr.key:not(.other)',
        ['Key', 'Models', 'This minute', 'In flight', 'Tokens today', 'Expires']));
      await test('360 px wide: Usage shows one card per group, and the chart fits', async () => {
        const r = await cardsFit(page, '#u-table', 'tr.urow', ['Requests', 'Prompt tokens', 'Completion tokens', 'Cached tokens', 'Total tokens']);
        if (r !== true) return r;
        const c = await page.$eval('#u-chart svg', s => ({ w: s.getBoundingClientRect().right, bars: s.querySelectorAll('rect.bar').length }));
        if (c.w > 360 || c.bars !== 3) return `chart right edge ${c.w}, ${c.bars} bars`;
      });
    }
    await shot(page, `phone-${tab}`);
  }
  await page.click('[data-tab=keys]');
  await page.click('#k-add');
  await page.waitForSelector('#key-dlg[open]');
  await test('360 px wide: the key dialog fits the screen', async () => {
    const b = await page.$eval('#key-dlg', d => { const r = d.getBoundingClientRect(); return [r.left, r.right]; });
    return b[0] >= 0 && b[1] <= 360 ? true : `dialog at ${b}`;
  });
  await shot(page, 'phone-keys-dialog', false);
  await page.click('#kd-cancel');

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
  await page.click('[data-tab=keys]');
  await page.waitForSelector('#u-chart rect.bar');
  await shot(page, 'desktop-keys-dark');
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
