// autoswitch admin page.  Plain JavaScript, no dependencies.  All text
// that comes from the server goes into the page through textContent or
// input values, never as HTML.
'use strict';
(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const KEY = 'autoswitch.admin_key';
  const GLOBALS = ['max_retries', 'max_failures', 'recovery_interval', 'health_check_period'];
  const HEALTH_MS = 3000, LOGS_MS = 2000, LOG_KEEP = 5000;

  // h('div', {class: 'x', text: 'y'}, child, 'text', ...)
  function h(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of kids.flat()) if (c != null && c !== false) e.append(c);
    return e;
  }
  const show = (e, on) => { e.hidden = !on; };
  function say(e, msg) { e.textContent = msg || ''; show(e, !!msg); }

  // ---------------- API ----------------

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  let adminKey = sessionStorage.getItem(KEY) || '';
  let epoch = 0;   // bumped at sign-out: answers to older requests are dropped
  // A header value is a byte string: send the key's UTF-8 bytes.
  const headerKey = k => String.fromCharCode(...new TextEncoder().encode(k));

  async function call(method, path, body, auth = true) {
    const init = { method, headers: {}, cache: 'no-store' };
    if (auth) init.headers['X-API-Key'] = headerKey(adminKey);
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try { res = await fetch(path, init); } catch (e) { throw new ApiError(0, 'Cannot reach the gateway.'); }
    let env = null;
    try { env = await res.json(); } catch (e) { /* not JSON */ }
    const msg = (env && env.message) || `HTTP ${res.status} ${res.statusText}`.trim();
    return { status: res.status, ok: res.ok, msg, data: env ? env.data : null };
  }

  async function api(method, path, body) {
    const r = await call(method, path, body);
    if (r.status === 401) signOut('The admin key is no longer accepted. Sign in again.');
    else if (r.status === 403) signOut(r.msg);
    if (!r.ok) throw new ApiError(r.status, r.msg);
    return r.data;
  }

  // ---------------- time ----------------

  const pad = n => String(n).padStart(2, '0');
  const clock = d => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  function span(sec) {
    if (sec < 60) return `${sec} s`;
    if (sec < 3600) return `${Math.round(sec / 60)} min`;
    if (sec < 86400) return `${Math.round(sec / 3600)} h`;
    return `${Math.round(sec / 86400)} d`;
  }
  function rel(t, now = Date.now()) {
    const s = Math.round((t - now) / 1000);
    if (s === 0) return 'now';
    return s > 0 ? `in ${span(s)}` : `${span(-s)} ago`;
  }
  function fullTime(t) {
    const d = new Date(t);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(d)}`;
  }
  // <time> whose text is kept relative by the ticker
  function relTime(iso, kind) {
    const t = Date.parse(iso);
    return h('time', { datetime: iso, title: fullTime(t), 'data-at': t, 'data-kind': kind || '', text: relText(t, kind) });
  }
  function relText(t, kind) {
    if (kind === 'probe' && t <= Date.now()) return 'due now';
    return rel(t);
  }
  function tick() {
    for (const e of $$('time[data-at]')) e.textContent = relText(+e.dataset.at, e.dataset.kind);
  }

  // ---------------- confirm dialog ----------------

  function ask(title, text, okLabel) {
    const d = $('#ask');
    $('#ask-title').textContent = title;
    $('#ask-text').textContent = text;
    $('#ask-ok').textContent = okLabel || 'OK';
    d.returnValue = '';
    d.showModal();
    return new Promise(resolve => d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true }));
  }

  // ---------------- login ----------------

  function showLogin(msg) {
    show($('#app'), false);
    show($('#login'), true);
    say($('#login-error'), msg);
    $('#login-key').focus();
  }

  async function login(ev) {
    ev.preventDefault();
    const k = $('#login-key').value;
    if (!k) { say($('#login-error'), 'Enter the admin key.'); return; }
    const btn = $('#login-btn');
    btn.disabled = true;
    say($('#login-error'), '');
    try {
      const r = await call('POST', '/api/admin/login', { api_key: k }, false);
      if (r.ok) {
        adminKey = k;
        sessionStorage.setItem(KEY, k);
        $('#login-key').value = '';
        startApp();
      } else {
        say($('#login-error'), r.status === 401 ? 'Wrong admin key.' : r.msg);
        $('#login-key').select();
      }
    } catch (e) {
      say($('#login-error'), e.message);
    } finally {
      btn.disabled = false;
    }
  }

  function signOut(msg) {
    if (!adminKey && !$('#login').hidden) return;
    adminKey = '';
    epoch++;
    sessionStorage.removeItem(KEY);
    stopAll();
    resetConfig();
    resetLogs();
    $('#h-body').replaceChildren();
    $('#h-tiles').replaceChildren();
    showLogin(msg);
  }

  async function logout() {
    if (C.dirty && !await ask('Log out?', 'The provider changes you have not saved will be lost.', 'Log out')) return;
    signOut('');
  }

  // ---------------- tabs ----------------

  let current = '';
  const TABS = {
    health: { enter: refreshHealth, leave: () => clearTimeout(H.timer) },
    providers: { enter: enterConfig, leave: () => {} },
    logs: { enter: enterLogs, leave: () => clearTimeout(L.timer) },
  };

  function showTab(name) {
    if (!TABS[name]) name = 'health';
    if (current && current !== name) {
      TABS[current].leave();
      window.scrollTo(0, 0);
    }
    current = name;
    for (const b of $$('[role=tab]')) {
      const on = b.dataset.tab === name;
      b.setAttribute('aria-selected', on);
      b.tabIndex = on ? 0 : -1;
    }
    for (const k of Object.keys(TABS)) show($('#tab-' + k), k === name);
    if (location.hash !== '#' + name) history.replaceState(null, '', '#' + name);
    TABS[name].enter();
  }

  function tabKeys(ev) {
    const names = Object.keys(TABS);
    const i = names.indexOf(current);
    const j = ev.key === 'ArrowRight' ? i + 1 : ev.key === 'ArrowLeft' ? i - 1 : -9;
    if (j === -9) return;
    const n = names[(j + names.length) % names.length];
    showTab(n);
    $(`[data-tab=${n}]`).focus();
  }

  function startApp() {
    show($('#login'), false);
    show($('#app'), true);
    current = '';
    showTab(location.hash.slice(1));
  }

  function stopAll() {
    clearTimeout(H.timer);
    clearTimeout(L.timer);
    current = '';
  }

  // ---------------- health ----------------

  const H = { timer: 0 };
  const STATE_TEXT = { healthy: 'Healthy', cooling_down: 'Cooling down', unhealthy: 'Unhealthy', degraded: 'Degraded' };

  const badge = (state, extra) => h('span', { class: 'badge s-' + state }, STATE_TEXT[state] || state, extra);
  const dash = () => h('span', { class: 'muted', text: '—' });
  const ms = v => (v == null ? null : `${v} ms`);
  const pct = (rate, total) => (total ? `${(+rate).toFixed(rate >= 99.95 || rate == 0 ? 0 : 1)} %` : null);

  async function refreshHealth() {
    clearTimeout(H.timer);
    const e0 = epoch;
    try {
      const data = await api('GET', '/api/admin/health');
      if (e0 !== epoch) return;
      renderHealth(data || []);
      $('#h-updated').textContent = 'Updated ' + clock(new Date());
      say($('#h-error'), '');
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) say($('#h-error'), 'Could not refresh: ' + e.message);
    }
    clearTimeout(H.timer);
    if (current === 'health' && $('#h-auto').checked) H.timer = setTimeout(refreshHealth, HEALTH_MS);
  }

  function renderHealth(list) {
    const rows = [];
    const n = { models: 0, healthy: 0, cooling_down: 0, unhealthy: 0, total: 0, ok: 0 };
    for (const p of list) {
      const models = p.model_healths || [];
      const bad = models.filter(m => m.state === 'unhealthy').length;
      const cool = models.filter(m => m.state === 'cooling_down').length;
      const ps = bad ? (bad === models.length ? 'unhealthy' : 'degraded') : cool ? 'cooling_down' : 'healthy';
      n.total += p.total_requests;
      n.ok += p.success_requests;
      rows.push(h('tr', { class: 'prov', 'data-state': ps },
        h('th', { scope: 'rowgroup' },
          h('span', { class: 'pname', text: p.name }),
          h('span', { class: 'meta', text: `priority ${p.priority} · weight ${p.weight} · ${models.length} model${models.length === 1 ? '' : 's'}` })),
        h('td', null, models.length ? badge(ps) : dash()),
        h('td', { class: 'num' }),
        h('td', { class: 'num' }, String(p.total_requests)),
        h('td', { class: 'num' }, pct(p.success_rate, p.total_requests) || dash()),
        h('td', { colspan: 4 })));
      for (const m of models) {
        n.models++;
        n[m.state] = (n[m.state] || 0) + 1;
        rows.push(modelRow(m));
      }
    }
    if (!list.length)
      rows.push(h('tr', null, h('td', { colspan: 9, class: 'empty', text: 'No providers configured. Add one in the Providers tab.' })));
    $('#h-body').replaceChildren(...rows);
    renderTiles(n);
  }

  function modelRow(m) {
    const fails = m.consecutive_failures || 0;
    let stateExtra = null;
    if (m.state === 'cooling_down' && m.cooldown_until) stateExtra = h('span', { class: 'meta' }, 'ends ', relTime(m.cooldown_until));
    else if (m.probing) stateExtra = h('span', { class: 'meta', text: 'probing…' });
    const err = m.last_error
      ? h('div', { class: 'err' }, h('span', { class: 'errtext', title: m.last_error, text: m.last_error }),
        m.last_error_at ? h('span', { class: 'meta' }, relTime(m.last_error_at)) : null)
      : dash();
    const probe = m.state !== 'unhealthy' ? [dash()]
      : [m.next_probe_at ? relTime(m.next_probe_at, 'probe') : m.probe === 'none' ? 'next request' : dash(),
        h('span', { class: 'meta', text: m.probe === 'none' ? 'no probe' : m.probe + ' probe' })];
    return h('tr', { class: 'model s-' + m.state, 'data-state': m.state, 'data-provider': m.provider_name, 'data-alias': m.model_alias, 'data-upstream': m.upstream_model },
      h('td', { class: 'mcell' },
        h('span', { class: 'alias', text: m.model_alias }),
        h('span', { class: 'meta mono', text: '→ ' + m.upstream_model }),
        h('span', { class: 'meta', text: `priority ${m.effective_priority} · weight ${m.effective_weight}` })),
      h('td', null, badge(m.state), stateExtra),
      h('td', { class: 'num' + (fails ? ' bad' : '') }, `${fails} / ${m.max_failures}`),
      h('td', { class: 'num' }, String(m.total_requests),
        m.failure_count ? h('span', { class: 'meta', text: `${m.failure_count} failed` }) : null,
        m.in_flight ? h('span', { class: 'meta', text: `${m.in_flight} in flight` }) : null),
      h('td', { class: 'num' }, pct(m.success_rate, m.total_requests) || dash()),
      h('td', { class: 'num' }, m.latency_p50_ms == null ? dash() : `${m.latency_p50_ms} / ${ms(m.latency_p95_ms)}`),
      h('td', { class: 'num' }, ms(m.ttft_p50_ms) || dash()),
      h('td', { class: 'ecell' }, err),
      h('td', null, ...probe));
  }

  function renderTiles(n) {
    const tile = (cls, value, label, sub) => h('div', { class: 'tile ' + cls },
      h('span', { class: 'tv', text: value }), h('span', { class: 'tl', text: label }), sub ? h('span', { class: 'meta', text: sub }) : null);
    $('#h-tiles').replaceChildren(
      tile('t-ok', `${n.healthy} / ${n.models}`, 'Healthy models'),
      tile(n.cooling_down ? 't-warn' : '', String(n.cooling_down), 'Cooling down'),
      tile(n.unhealthy ? 't-bad' : '', String(n.unhealthy), 'Unhealthy'),
      tile('', String(n.total), 'Requests', n.total ? `${pct(n.ok * 100 / n.total, n.total)} succeeded` : null));
  }

  // ---------------- providers (config form) ----------------

  const C = { loaded: false, baseline: '', dirty: false, saving: false };
  const list = () => $('#cfg-providers');
  const field = (root, name) => $(`[name=${name}]`, root);

  function enterConfig() {
    if (!C.dirty && !C.saving) loadConfig();
  }

  async function loadConfig() {
    const e0 = epoch;
    try {
      const d = await api('GET', '/api/admin/config');
      if (e0 !== epoch) return false;
      renderConfig(d);
      return true;
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) say($('#cfg-error'), 'Could not load the config: ' + e.message);
      return false;
    }
  }

  function resetConfig() {
    list().replaceChildren();
    C.loaded = false;
    C.baseline = '';
    setDirty(false);
    say($('#cfg-error'), '');
    $('#cfg-status').textContent = 'No changes';
  }

  function renderConfig(d) {
    for (const k of GLOBALS) $('#g-' + k).value = d[k] == null ? '' : d[k];
    list().replaceChildren(...(d.providers || []).map(providerCard));
    clearErrors();
    C.loaded = true;
    C.baseline = JSON.stringify(collect(false));
    checkDirty();
  }

  const setv = (root, name, v) => { field(root, name).value = v == null ? '' : v; };

  function providerCard(p) {
    const card = $('#tpl-provider').content.firstElementChild.cloneNode(true);
    const f = $('.p-fields', card);
    for (const k of ['name', 'base_url', 'api_key', 'weight', 'priority', 'timeout', 'ca_file']) setv(f, k, p[k]);
    setv(f, 'exclude_params', (p.exclude_params || []).join(', '));
    field(f, 'api_key').dataset.masked = p.api_key && p.api_key.includes('…') ? '1' : '';
    $('.map-list', card).append(...(p.model_mappings || []).map(mappingRow));
    titleCard(card);
    return card;
  }

  function mappingRow(m) {
    const row = $('#tpl-map').content.firstElementChild.cloneNode(true);
    for (const k of ['upstream', 'alias', 'priority', 'weight', 'max_failures']) setv(row, k, m[k]);
    field(row, 'probe').value = m.probe || 'chat';
    return row;
  }

  function titleCard(card) {
    const f = $('.p-fields', card);
    const name = field(f, 'name').value.trim();
    $('.p-title', card).textContent = name || 'New provider';
    const n = $$('.map-list > .map', card).length;
    const url = field(f, 'base_url').value.trim();
    $('.p-sub', card).textContent = (url ? url + ' · ' : '') + `${n} model${n === 1 ? '' : 's'}`;
  }

  // The form as the API wants it.  strict: refuse what is not a whole
  // number (marking the field) instead of passing the text on.
  function num(input, path, strict) {
    const v = input.value.trim();
    if (input.validity.badInput || (v !== '' && !/^-?\d+$/.test(v))) {
      if (strict) throw fieldError(input, `${path} must be a whole number`);
      return 'bad:' + v;
    }
    return v === '' ? null : Number(v);
  }
  const str = input => input.value.trim();

  function collect(strict) {
    const out = { providers: [] };
    // An empty global means its default (the placeholder): null would keep the file's value.
    for (const k of GLOBALS) out[k] = num($('#g-' + k), k, strict) ?? Number($('#g-' + k).placeholder);
    $$('.pcard', list()).forEach((card, i) => {
      const f = $('.p-fields', card), path = `providers[${i}]`;
      const p = {
        name: str(field(f, 'name')),
        base_url: str(field(f, 'base_url')),
        api_key: field(f, 'api_key').value.trim(),
        weight: num(field(f, 'weight'), path + '.weight', strict),
        priority: num(field(f, 'priority'), path + '.priority', strict),
        timeout: num(field(f, 'timeout'), path + '.timeout', strict),
        exclude_params: str(field(f, 'exclude_params')).split(',').map(s => s.trim()).filter(Boolean),
        ca_file: str(field(f, 'ca_file')) || null,
        model_mappings: [],
      };
      $$('.map-list > .map', card).forEach((row, j) => {
        const mp = `${path}.model_mappings[${j}]`;
        p.model_mappings.push({
          upstream: str(field(row, 'upstream')),
          alias: str(field(row, 'alias')) || null,
          priority: num(field(row, 'priority'), mp + '.priority', strict),
          weight: num(field(row, 'weight'), mp + '.weight', strict),
          max_failures: num(field(row, 'max_failures'), mp + '.max_failures', strict),
          probe: field(row, 'probe').value,
        });
      });
      out.providers.push(p);
    });
    return out;
  }

  function setDirty(d) {
    C.dirty = d;
    show($('#tab-btn-providers .dot'), d);
    $('#cfg-discard').disabled = !d;
    const s = $('#cfg-status');
    if (d) {
      s.textContent = 'Unsaved changes';
      s.className = 'status dirty';
    } else if (s.classList.contains('dirty')) {
      s.textContent = 'No changes';
      s.className = 'status';
    }
  }

  function checkDirty() {
    if (C.loaded) setDirty(JSON.stringify(collect(false)) !== C.baseline);
    show($('#cfg-empty'), C.loaded && !$$('.pcard', list()).length);
  }

  function fieldError(input, msg) {
    const e = new Error(msg);
    e.input = input;
    return e;
  }

  function clearErrors() {
    say($('#cfg-error'), '');
    for (const e of $$('.invalid', $('#cfg-form'))) e.classList.remove('invalid');
    for (const e of $$('[aria-invalid]', $('#cfg-form'))) e.removeAttribute('aria-invalid');
    for (const e of $$('.p-err', list())) say(e, '');
  }

  // Put the server's message next to the form, and next to the provider,
  // model or field it names (e.g. "providers[1].model_mappings[0]: ...").
  function placeError(msg, input) {
    say($('#cfg-error'), msg);
    $('#cfg-status').textContent = 'Not saved';
    $('#cfg-status').className = 'status bad';
    let target = input || null;
    const m = /providers\[(\d+)\](?:\.model_mappings\[(\d+)\])?(?:\.(\w+)|: (\w+) is required)?/.exec(msg);
    if (m && !target) {
      const card = $$('.pcard', list())[+m[1]];
      if (card) {
        const row = m[2] != null ? $$('.map-list > .map', card)[+m[2]] : null;
        const scope = row || $('.p-fields', card);
        target = (m[3] || m[4]) && field(scope, m[3] || m[4]);
        if (!target) target = row || card;
      }
    } else if (!target) {
      const g = new RegExp('^(?:invalid config: .*?: )?(' + GLOBALS.join('|') + ')\\b').exec(msg);
      if (g) target = $('#g-' + g[1]);
    }
    if (!target) return;
    const card = target.closest('.pcard');
    if (card) {
      expand(card, true);
      say($('.p-err', card), msg);
    }
    target.classList.add('invalid');
    if (target.matches('input,select')) target.setAttribute('aria-invalid', 'true');
    target.scrollIntoView({ block: 'center', behavior: 'smooth' });
    if (target.matches('input,select')) target.focus({ preventScroll: true });
  }

  async function save(ev) {
    ev.preventDefault();
    if (C.saving) return;
    clearErrors();
    let body;
    try {
      body = collect(true);
    } catch (e) {
      placeError(e.message, e.input);
      return;
    }
    const btn = $('#cfg-save');
    C.saving = true;
    btn.disabled = true;
    btn.textContent = 'Saving…';
    try {
      await api('POST', '/api/admin/config', body);
      setDirty(false);
      await loadConfig();
      $('#cfg-status').textContent = 'Saved and reloaded at ' + clock(new Date());
      $('#cfg-status').className = 'status good';
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) placeError(e.message);
    } finally {
      C.saving = false;
      btn.disabled = false;
      btn.textContent = 'Save';
    }
  }

  async function discard() {
    if (C.dirty && !await ask('Discard changes?', 'The form goes back to the configuration the gateway is running.', 'Discard')) return;
    setDirty(false);
    if (await loadConfig()) {
      $('#cfg-status').textContent = 'No changes';
      $('#cfg-status').className = 'status';
    }
  }

  function expand(card, open) {
    card.classList.toggle('collapsed', !open);
    const t = $('.p-toggle', card);
    t.setAttribute('aria-expanded', open);
    t.title = open ? 'Collapse' : 'Expand';
    t.setAttribute('aria-label', t.title);
  }

  async function formClick(ev) {
    const b = ev.target.closest('button');
    if (!b) return;
    const card = b.closest('.pcard');
    if (b.id === 'add-provider') {
      const c = providerCard({ weight: 1, priority: 0, timeout: 60, model_mappings: [{ priority: 0, weight: 1, probe: 'chat' }] });
      list().append(c);
      checkDirty();
      c.scrollIntoView({ block: 'start', behavior: 'smooth' });
      field(c, 'name').focus({ preventScroll: true });
    } else if (b.classList.contains('p-remove')) {
      const name = field($('.p-fields', card), 'name').value.trim() || 'this provider';
      if (!await ask(`Remove ${name}?`, 'It leaves the configuration when you save.', 'Remove')) return;
      card.remove();
      checkDirty();
    } else if (b.classList.contains('p-addmap')) {
      const row = mappingRow({ priority: 0, weight: 1, probe: 'chat' });
      $('.map-list', card).append(row);
      titleCard(card);
      checkDirty();
      field(row, 'upstream').focus();
    } else if (b.classList.contains('m-remove')) {
      b.closest('.map').remove();
      titleCard(card);
      checkDirty();
    } else if (b.classList.contains('p-toggle')) {
      expand(card, card.classList.contains('collapsed'));
    }
  }

  function formInput(ev) {
    const t = ev.target;
    if (t.classList.contains('invalid')) {
      t.classList.remove('invalid');
      t.removeAttribute('aria-invalid');
    }
    if (t.name === 'api_key') t.dataset.masked = '';
    const card = t.closest('.pcard');
    if (card && (t.name === 'name' || t.name === 'base_url')) titleCard(card);
    checkDirty();
  }

  // ---------------- logs ----------------

  const L = { since: 0, timer: 0, busy: false, count: 0, unseen: 0, q: '', nogap: false, levels: new Set(['DEBUG', 'INFO', 'WARN', 'ERROR']) };
  // This page's own polling, hidden unless asked for.
  const LOG_RE = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?) (DEBUG|INFO|WARN|ERROR) ([\s\S]*)$/;
  const view = () => $('#l-view');

  function enterLogs() {
    jump();
    pollLogs();
  }

  function resetLogs() {
    view().replaceChildren();
    L.since = 0;
    L.count = 0;
    L.unseen = 0;
    show($('#l-jump'), false);
    countLogs();
  }

  async function pollLogs() {
    if (L.busy) return;   // the running poll schedules the next one
    L.busy = true;
    clearTimeout(L.timer);
    const e0 = epoch;
    let again = false;
    try {
      const d = await api('GET', `/api/admin/logs?since=${L.since}&lines=${L.since ? 5000 : 500}`);
      if (e0 !== epoch) return;
      if (L.since && d.last_seq < L.since) {
        // The gateway restarted: its numbering began again.
        resetLogs();
        again = true;
      } else {
        appendLogs(d.lines || []);
        L.since = d.last_seq;
      }
      say($('#l-error'), '');
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) say($('#l-error'), 'Could not fetch the log: ' + e.message);
    } finally {
      L.busy = false;
    }
    clearTimeout(L.timer);
    if (e0 === epoch && current === 'logs' && (again || $('#l-live').checked)) L.timer = setTimeout(pollLogs, again ? 0 : LOGS_MS);
  }

  function logMatch(e) {
    return L.levels.has(e.dataset.level) && (!L.q || e.dataset.lc.includes(L.q));
  }

  function logLine(l) {
    const m = LOG_RE.exec(l.text);
    const lvl = m ? m[3] : 'INFO';
    const e = m
      ? h('div', { class: 'll lv-' + lvl.toLowerCase() },
        h('span', { class: 'lt', title: m[1] + ' ' + m[2], text: m[2] }), h('span', { class: 'lvl', text: lvl }), h('span', { class: 'lm', text: m[4] }))
      : h('div', { class: 'll lv-info' }, h('span', { class: 'lm', text: l.text }));
    e.dataset.level = lvl;
    e.dataset.lc = l.text.toLowerCase();
    e.hidden = !logMatch(e);
    return e;
  }

  function atBottom(v) {
    return v.scrollHeight - v.scrollTop - v.clientHeight < 40;
  }

  function appendLogs(lines) {
    if (!lines.length) return;
    const v = view();
    const stick = atBottom(v);
    const frag = document.createDocumentFragment();
    const skipped = lines[0].seq - L.since - 1;
    if (L.since && skipped > 0 && !L.nogap)
      frag.append(h('div', { class: 'll gap', text: `… ${skipped} line${skipped === 1 ? '' : 's'} not shown` }));
    L.nogap = false;
    let visible = 0;
    for (const l of lines) {
      const e = logLine(l);
      if (!e.hidden) visible++;
      frag.append(e);
    }
    v.append(frag);
    L.count += lines.length;
    while (v.childElementCount > LOG_KEEP) v.firstElementChild.remove();
    if (stick) {
      v.scrollTop = v.scrollHeight;
    } else if (visible) {
      L.unseen += visible;
      $('#l-jump').textContent = `${L.unseen} new line${L.unseen === 1 ? '' : 's'} below`;
      show($('#l-jump'), true);
    }
    countLogs();
  }

  function countLogs() {
    const all = $$('.ll:not(.gap)', view());
    const shown = all.filter(e => !e.hidden).length;
    $('#l-count').textContent = all.length === shown ? `${all.length} lines` : `${shown} of ${all.length} lines`;
  }

  function filterLogs() {
    const stick = atBottom(view());
    L.levels = new Set($$('.chips input:checked').map(i => i.value));
    L.q = $('#l-filter').value.trim().toLowerCase();
    for (const e of $$('.ll:not(.gap)', view())) e.hidden = !logMatch(e);
    countLogs();
    if (stick) jump();
  }

  async function clearLogs() {
    if (!await ask('Clear the log?', 'This empties the gateway\'s in-memory log and its log file, for everyone.', 'Clear')) return;
    try {
      await api('DELETE', '/api/admin/logs');
      view().replaceChildren();
      L.unseen = 0;
      L.nogap = true;
      show($('#l-jump'), false);
      countLogs();
      pollLogs();
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) say($('#l-error'), 'Could not clear the log: ' + e.message);
    }
  }

  function jump() {
    const v = view();
    v.scrollTop = v.scrollHeight;
  }

  // ---------------- wiring ----------------

  function init() {
    $('#login-form').addEventListener('submit', login);
    $('#logout').addEventListener('click', logout);
    for (const b of $$('[role=tab]')) b.addEventListener('click', () => showTab(b.dataset.tab));
    $('.tabs').addEventListener('keydown', tabKeys);

    $('#h-refresh').addEventListener('click', refreshHealth);
    const auto = $('#h-auto');
    auto.checked = localStorage.getItem('autoswitch.auto') !== '0';
    auto.addEventListener('change', () => {
      localStorage.setItem('autoswitch.auto', auto.checked ? '1' : '0');
      if (auto.checked) refreshHealth(); else clearTimeout(H.timer);
    });

    const form = $('#cfg-form');
    form.addEventListener('submit', save);
    form.addEventListener('click', formClick);
    form.addEventListener('input', formInput);
    form.addEventListener('change', formInput);
    form.addEventListener('focusin', ev => {
      if (ev.target.name === 'api_key' && ev.target.dataset.masked) ev.target.select();
    });
    $('#cfg-reload').addEventListener('click', discard);
    $('#cfg-discard').addEventListener('click', discard);

    $('#l-live').addEventListener('change', () => { if ($('#l-live').checked) pollLogs(); else clearTimeout(L.timer); });
    $('#l-clear').addEventListener('click', clearLogs);
    for (const c of $$('.chips input')) c.addEventListener('change', filterLogs);
    let deb = 0;
    $('#l-filter').addEventListener('input', () => { clearTimeout(deb); deb = setTimeout(filterLogs, 120); });
    $('#l-jump').addEventListener('click', jump);
    view().addEventListener('scroll', () => {
      if (atBottom(view())) { L.unseen = 0; show($('#l-jump'), false); }
    });

    window.addEventListener('hashchange', () => { if (adminKey) showTab(location.hash.slice(1)); });
    window.addEventListener('beforeunload', ev => { if (C.dirty) ev.preventDefault(); });
    document.addEventListener('visibilitychange', () => {
      // Catch up at once when the page comes back into view.
      if (!document.hidden && adminKey && current) TABS[current].enter();
    });
    setInterval(tick, 1000);

    if (adminKey) startApp();
    else showLogin('');
  }

  init();
})();
