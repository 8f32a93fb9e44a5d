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
    for (const d of $$('dialog[open]')) d.close();
    forgetToken();
    $('#k-body').replaceChildren();
    K.sig = '';
    $('#u-body').replaceChildren();
    $('#u-foot').replaceChildren();
    $('#u-chart').replaceChildren();
    say($('#k-status'), '');
    U.rows = [];
    U.from = '';
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
    keys: { enter: enterKeys, leave: () => clearTimeout(K.timer) },
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
    clearTimeout(K.timer);
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
      // A mapping answers per dialect (OpenAI, Anthropic) and endpoint class:
      // name them where the same model has more than one entry.
      const id = m => m.model_alias + '\n' + m.upstream_model, seen = new Map();
      for (const m of models) seen.set(id(m), (seen.get(id(m)) || 0) + 1);
      for (const m of models) {
        n.models++;
        n[m.state] = (n[m.state] || 0) + 1;
        rows.push(modelRow(m, seen.get(id(m)) > 1));
      }
    }
    if (!list.length)
      rows.push(h('tr', null, h('td', { colspan: 9, class: 'empty', text: 'No providers configured. Add one in the Providers tab.' })));
    $('#h-body').replaceChildren(...rows);
    labelCells($('#h-table'));
    renderTiles(n);
  }

  const DIALECT_TEXT = { openai: 'OpenAI API', anthropic: 'Anthropic API' };
  function modelRow(m, many) {
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
    return h('tr', { class: 'model s-' + m.state, 'data-state': m.state, 'data-provider': m.provider_name, 'data-alias': m.model_alias,
      'data-upstream': m.upstream_model, 'data-dialect': m.dialect, 'data-class': m.class },
      h('td', { class: 'mcell' },
        h('span', { class: 'alias', text: m.model_alias }),
        h('span', { class: 'meta mono', text: '→ ' + m.upstream_model }),
        many ? h('span', { class: 'meta', text: `${DIALECT_TEXT[m.dialect] || m.dialect} · ${m.class}` }) : null,
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

  // The provider keys under "More settings": optional, empty = not written
  // (the file keeps its default, or the global value).
  const ADV_TEXT = ['anthropic_base_url', 'model_retries', 'first_token_timeout'];
  const ADV_SELECT = ['anthropic_auth', 'continuation', 'response_model'];
  const adv = card => $('.p-adv', card);

  function providerCard(p) {
    const card = $('#tpl-provider').content.firstElementChild.cloneNode(true);
    const f = $('.p-fields', card), a = adv(card);
    for (const k of ['name', 'base_url', 'api_key', 'weight', 'priority', 'timeout', 'ca_file']) setv(f, k, p[k]);
    setv(f, 'exclude_params', (p.exclude_params || []).join(', '));
    field(f, 'api_key').dataset.masked = p.api_key && p.api_key.includes('…') ? '1' : '';
    // A renamed provider names its old self, so the gateway keeps its masked key.
    card.dataset.name = p.name || '';
    for (const k of [...ADV_TEXT, ...ADV_SELECT]) setv(a, k, p[k]);
    setv(a, 'stream_usage', p.stream_usage == null ? '' : String(p.stream_usage));
    setv(a, 'headers', Object.entries(p.headers || {}).map(([n, v]) => `${n}: ${v}`).join('\n'));
    setv(a, 'forward_headers', (p.forward_headers || []).join(', '));
    $('.p-more', card).open = $$('input, select, textarea', a).some(e => e.value !== '');
    $('.map-list', card).append(...(p.model_mappings || []).map(mappingRow));
    titleCard(card);
    return card;
  }

  function mappingRow(m) {
    const row = $('#tpl-map').content.firstElementChild.cloneNode(true);
    for (const k of ['upstream', 'alias', 'priority', 'weight', 'max_failures', 'first_token_timeout']) setv(row, k, m[k]);
    // Absent: the gateway's default (chat, or messages for an Anthropic-only provider).
    field(row, 'probe').value = m.probe || '';
    field(row, 'continuation').value = m.continuation || '';
    return row;
  }

  function titleCard(card) {
    const f = $('.p-fields', card);
    const name = field(f, 'name').value.trim();
    $('.p-title', card).textContent = name || 'New provider';
    const n = $$('.map-list > .map', card).length;
    const url = field(f, 'base_url').value.trim() || field(adv(card), 'anthropic_base_url').value.trim();
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
  const list_ = input => str(input).split(',').map(s => s.trim()).filter(Boolean);

  // "Name: value" lines as an object; null when there are none.
  function headerMap(input, path, strict) {
    const out = {}, seen = new Set();
    const lines = input.value.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i].trim();
      if (!l) continue;
      const c = l.indexOf(':');
      const name = c > 0 ? l.slice(0, c).trim() : '';
      let why = '';
      if (!name) why = `line ${i + 1} is not "Name: value"`;
      else if (seen.has(name.toLowerCase())) why = `${name} is given twice`;
      if (why) {
        if (strict) throw fieldError(input, `${path}.headers: ${why}`);
        return 'bad:' + input.value;
      }
      seen.add(name.toLowerCase());
      out[name] = l.slice(c + 1).trim();
    }
    return seen.size ? out : null;
  }

  function collect(strict) {
    const out = { providers: [] };
    // An empty global means its default (the placeholder): null would keep the file's value.
    for (const k of GLOBALS) out[k] = num($('#g-' + k), k, strict) ?? Number($('#g-' + k).placeholder);
    $$('.pcard', list()).forEach((card, i) => {
      const f = $('.p-fields', card), path = `providers[${i}]`;
      const a = adv(card), su = field(a, 'stream_usage').value;
      const p = {
        name: str(field(f, 'name')),
        // null, not "": a provider may have only an Anthropic base URL.
        base_url: str(field(f, 'base_url')) || null,
        api_key: field(f, 'api_key').value.trim(),
        weight: num(field(f, 'weight'), path + '.weight', strict),
        priority: num(field(f, 'priority'), path + '.priority', strict),
        timeout: num(field(f, 'timeout'), path + '.timeout', strict),
        exclude_params: list_(field(f, 'exclude_params')),
        ca_file: str(field(f, 'ca_file')) || null,
        anthropic_base_url: str(field(a, 'anthropic_base_url')) || null,
        anthropic_auth: field(a, 'anthropic_auth').value || null,
        headers: headerMap(field(a, 'headers'), path, strict),
        forward_headers: list_(field(a, 'forward_headers')),
        model_retries: num(field(a, 'model_retries'), path + '.model_retries', strict),
        first_token_timeout: num(field(a, 'first_token_timeout'), path + '.first_token_timeout', strict),
        continuation: field(a, 'continuation').value || null,
        response_model: field(a, 'response_model').value || null,
        stream_usage: su === '' ? null : su === 'true',
        model_mappings: [],
      };
      if (!p.forward_headers.length) p.forward_headers = null;
      if (card.dataset.name && card.dataset.name !== p.name) p.previous_name = card.dataset.name;
      $$('.map-list > .map', card).forEach((row, j) => {
        const mp = `${path}.model_mappings[${j}]`;
        p.model_mappings.push({
          upstream: str(field(row, 'upstream')),
          alias: str(field(row, 'alias')) || null,
          priority: num(field(row, 'priority'), mp + '.priority', strict),
          weight: num(field(row, 'weight'), mp + '.weight', strict),
          max_failures: num(field(row, 'max_failures'), mp + '.max_failures', strict),
          probe: field(row, 'probe').value || null,
          first_token_timeout: num(field(row, 'first_token_timeout'), mp + '.first_token_timeout', strict),
          continuation: field(row, 'continuation').value || null,
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
        const name = m[3] || m[4];
        target = name && (field(scope, name) || (!row && field(adv(card), name)));
        if (!target) target = row || card;
      }
    } else if (!target) {
      const g = new RegExp('^(?:invalid config: .*?: )?(' + GLOBALS.join('|') + ')\\b').exec(msg);
      if (g) target = $('#g-' + g[1]);
    }
    if (!target) return;
    const card = target.closest('.pcard');
    const more = target.closest('details');
    if (more) more.open = true;
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
      const c = providerCard({ weight: 1, priority: 0, timeout: 60, model_mappings: [{ priority: 0, weight: 1 }] });
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
      const row = mappingRow({ priority: 0, weight: 1 });
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
    if (card && ['name', 'base_url', 'anthropic_base_url'].includes(t.name)) titleCard(card);
    checkDirty();
  }

  // ---------------- keys and usage ----------------

  const K = { timer: 0, keys: [], sig: '', editing: null, saving: false };
  const U = { rows: [], from: '', to: '', seq: 0 };
  const NUMS = ['rpm', 'max_concurrent', 'daily_tokens'];
  const fmt = n => Number(n || 0).toLocaleString('en-US');
  function dayOf(d) { return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`; }
  // Local calendar arithmetic (noon, so no DST change moves the day).
  function dayAdd(day, n) {
    const [y, m, d] = day.split('-').map(Number);
    return dayOf(new Date(y, m - 1, d + n, 12));
  }
  const today = () => dayOf(new Date());

  function enterKeys() {
    if (!$('#u-from').value || !$('#u-to').value) {
      $('#u-to').value = today();
      $('#u-from').value = dayAdd(today(), -6);
    }
    refreshKeys();
    loadUsage();
  }

  async function refreshKeys() {
    clearTimeout(K.timer);
    const e0 = epoch;
    try {
      const d = await api('GET', '/api/admin/keys');
      if (e0 !== epoch) return;
      // Unchanged: keep the rows (and the focus on their buttons).
      const sig = JSON.stringify(d);
      if (sig !== K.sig) renderKeys(d || {});
      K.sig = sig;
      $('#k-updated').textContent = 'Updated ' + clock(new Date());
      say($('#k-error'), '');
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) say($('#k-error'), 'Could not load the keys: ' + e.message);
    }
    clearTimeout(K.timer);
    if (e0 === epoch && current === 'keys') K.timer = setTimeout(refreshKeys, HEALTH_MS);
  }

  // A figure and what limits it: "3" over "of 10" / "no limit".
  function used(value, limit, unit) {
    return [h('span', { class: 'v', text: fmt(value) }),
      h('span', { class: 'meta', text: limit ? `of ${fmt(limit)}${unit || ''}` : 'no limit' })];
  }

  function tokenCell(st, cap) {
    const t = st.tokens_today || 0;
    if (!cap) return [h('span', { class: 'v', text: fmt(t) }), h('span', { class: 'meta', text: 'no daily cap' })];
    const share = t / cap;
    const fill = h('span', { class: 'meter-fill' });
    fill.style.width = `${Math.min(100, share * 100).toFixed(1)}%`;
    const level = share >= 1 ? 'bad' : share >= 0.8 ? 'warn' : 'ok';
    return [h('span', { class: 'v', text: fmt(t) }),
      h('span', { class: 'meter m-' + level, role: 'meter', 'aria-label': 'tokens today', 'aria-valuemin': 0,
        'aria-valuemax': cap, 'aria-valuenow': Math.min(t, cap), title: `${(share * 100).toFixed(1)} % of the daily cap` }, fill),
      h('span', { class: 'meta', text: `of ${fmt(cap)} (${Math.round(share * 100)} %)` })];
  }

  function answersCell(st) {
    const a = Object.entries(st.answers || {}).filter(([, n]) => n);
    const r = Object.entries(st.refused || {}).filter(([, n]) => n);
    if (!a.length && !r.length) return [dash()];
    const label = c => (c === 'error' ? 'no answer' : c);
    return [a.length ? h('span', { class: 'answers', text: a.map(([c, n]) => `${label(c)} ${fmt(n)}`).join(' · ') }) : null,
      r.length ? h('span', { class: 'meta bad', text: 'refused: ' + r.map(([c, n]) => `${c.replace('_', ' ')} ${fmt(n)}`).join(', ') }) : null];
  }

  function keyStatus(k) {
    if (k.disabled) return ['disabled', 'Disabled'];
    if (k.expires && k.expires <= today()) return ['expired', 'Expired'];
    return ['active', 'Active'];
  }

  function keyRow(k) {
    const st = k.state || {};
    const [status, statusText] = keyStatus(k);
    const shown = k.key ? k.key : k.key_sha256 ? `SHA-256 ${k.key_sha256.slice(0, 12)}…` : '—';
    const models = k.models && k.models.length
      ? h('span', { class: 'chips-ro' }, k.models.map(m => h('code', { class: 'pill', text: m })))
      : h('span', { class: 'muted', text: 'all models' });
    return h('tr', { class: 'key st-' + status, 'data-name': k.name, 'data-status': status },
      h('td', { class: 'c-name' }, h('span', { class: 'kname', text: k.name }),
        h('span', { class: 'badge k-' + status, text: statusText })),
      h('td', { class: 'c-key' }, h('code', { class: 'mono', title: k.key_sha256 || null, text: shown })),
      h('td', { class: 'c-models' }, models),
      h('td', { class: 'num c-rpm' }, used(st.rpm_used, k.rpm, ' rpm')),
      h('td', { class: 'num c-flight' }, used(st.in_flight, k.max_concurrent, ' at once')),
      h('td', { class: 'c-tokens' }, tokenCell(st, k.daily_tokens)),
      h('td', { class: 'c-expires' + (status === 'expired' ? ' bad' : '') }, k.expires || h('span', { class: 'muted', text: 'never' })),
      h('td', { class: 'c-answers' }, answersCell(st)),
      h('td', { class: 'c-act' },
        h('button', { type: 'button', class: 'btn small k-edit', 'data-act': 'edit', text: 'Edit' }),
        h('button', { type: 'button', class: 'btn small ghost danger k-remove', 'data-act': 'remove', text: 'Remove' })));
  }

  // Callers that are not named keys (the api_keys list, an open gateway).
  function otherRow(o) {
    const st = o.state || {};
    return h('tr', { class: 'key other', 'data-name': o.name },
      h('td', { class: 'c-name' }, h('span', { class: 'kname', text: o.name }),
        h('span', { class: 'meta', text: o.name === '(open)' ? 'no key (an open gateway)' : 'api_keys entry' })),
      h('td', { class: 'c-key' }, dash()),
      h('td', { class: 'c-models' }, h('span', { class: 'muted', text: 'all models' })),
      h('td', { class: 'num c-rpm' }, used(st.rpm_used, 0)),
      h('td', { class: 'num c-flight' }, used(st.in_flight, 0)),
      h('td', { class: 'c-tokens' }, tokenCell(st, 0)),
      h('td', { class: 'c-expires' }, h('span', { class: 'muted', text: 'never' })),
      h('td', { class: 'c-answers' }, answersCell(st)),
      h('td', { class: 'c-act' }));
  }

  function renderKeys(d) {
    K.keys = d.keys || [];
    const rows = K.keys.map(keyRow);
    if (!K.keys.length)
      rows.push(h('tr', null, h('td', { colspan: 9, class: 'empty', text: 'No named keys. Add one to give a client its own limits and usage.' })));
    const others = d.others || [];
    if (others.length) rows.push(h('tr', { class: 'group' }, h('th', { colspan: 9, scope: 'rowgroup', text: 'Other callers' })), ...others.map(otherRow));
    $('#k-body').replaceChildren(...rows);
    labelCells($('#k-table'));
  }

  function keyStatusNote(msg) {
    const s = $('#k-status');
    s.textContent = msg;
    s.className = 'status good';
    show(s, !!msg);
  }

  // ---- the key dialog ----

  function openKeyDialog(k) {
    K.editing = k || null;
    const d = $('#key-dlg');
    $('#kd-title').textContent = k ? `Change ${k.name}` : 'Add key';
    $('#kd-save').textContent = k ? 'Save' : 'Create key';
    const name = $('#kd-name');
    name.value = k ? k.name : '';
    name.readOnly = !!k;
    $('#kd-name-note').textContent = k ? 'a key keeps its name; add a new one to rename' : 'who uses it: shown in usage and logs';
    $('#kd-models').value = k ? (k.models || []).join(', ') : '';
    for (const n of NUMS) $('#kd-' + n).value = k && k[n] ? k[n] : '';
    $('#kd-expires').value = (k && k.expires) || '';
    $('#kd-disabled').checked = !!(k && k.disabled);
    for (const e of $$('.invalid', d)) e.classList.remove('invalid');
    say($('#kd-error'), '');
    d.showModal();
    (k ? $('#kd-models') : name).focus();
  }

  // The dialog's values; null for what is left empty.
  function keyForm() {
    const out = { name: $('#kd-name').value.trim() };
    if (!out.name) throw fieldError($('#kd-name'), 'Give the key a name.');
    const models = list_($('#kd-models'));
    out.models = models.length ? models : null;
    for (const n of NUMS) {
      const e = $('#kd-' + n), v = e.value.trim();
      if (e.validity.badInput || (v !== '' && !/^\d+$/.test(v))) throw fieldError(e, `${e.previousElementSibling.textContent} must be a whole number, 0 or more.`);
      out[n] = v === '' ? null : Number(v);
    }
    const ex = $('#kd-expires');
    if (ex.validity.badInput) throw fieldError(ex, 'Expires must be a date.');
    out.expires = ex.value || null;
    out.disabled = $('#kd-disabled').checked;
    return out;
  }

  // What a PUT sends: only the members that changed (null: back to the default).
  function keyChanges(k, f) {
    const ch = {};
    if ((k.models || []).join(',') !== (f.models || []).join(',')) ch.models = f.models;
    for (const n of NUMS) if ((k[n] || 0) !== (f[n] || 0)) ch[n] = f[n];
    if ((k.expires || null) !== f.expires) ch.expires = f.expires;
    if (!!k.disabled !== f.disabled) ch.disabled = f.disabled;
    return ch;
  }

  async function saveKey(ev) {
    ev.preventDefault();
    if (K.saving) return;
    for (const e of $$('#key-dlg .invalid')) e.classList.remove('invalid');
    say($('#kd-error'), '');
    let f;
    try {
      f = keyForm();
    } catch (e) {
      say($('#kd-error'), e.message);
      if (e.input) { e.input.classList.add('invalid'); e.input.focus(); }
      return;
    }
    const k = K.editing, btn = $('#kd-save');
    let body;
    if (k) {
      body = keyChanges(k, f);
      if (!Object.keys(body).length) { $('#key-dlg').close(); return; }
    } else {
      body = {};
      for (const [n, v] of Object.entries(f)) if (v != null && v !== false) body[n] = v;
    }
    K.saving = true;
    btn.disabled = true;
    try {
      const path = '/api/admin/keys' + (k ? '/' + encodeURIComponent(k.name) : '');
      const d = await api(k ? 'PUT' : 'POST', path, body);
      $('#key-dlg').close();
      if (k) keyStatusNote(`${k.name}: saved and in force.`);
      else {
        keyStatusNote(`${f.name}: created.`);
        showToken(d && d.name, d && d.key);
      }
      refreshKeys();
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) say($('#kd-error'), e.message);
    } finally {
      K.saving = false;
      btn.disabled = false;
    }
  }

  async function removeKey(k) {
    say($('#k-error'), '');
    if (!await ask(`Remove ${k.name}?`, 'Its requests are refused (401) at once. Its usage history stays.', 'Remove')) return;
    try {
      await api('DELETE', '/api/admin/keys/' + encodeURIComponent(k.name));
      keyStatusNote(`${k.name}: removed.`);
      refreshKeys();
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) say($('#k-error'), `Could not remove ${k.name}: ${e.message}`);
    }
  }

  function keysClick(ev) {
    const b = ev.target.closest('button[data-act]');
    if (!b) return;
    const name = b.closest('tr').dataset.name;
    const k = K.keys.find(x => x.name === name);
    if (!k) return;
    if (b.dataset.act === 'edit') openKeyDialog(k);
    else removeKey(k);
  }

  // ---- the new token, shown once ----

  function showToken(name, token) {
    $('#td-name').textContent = name || '';
    $('#td-token').value = token || '';
    $('#td-status').textContent = '';
    $('#token-dlg').showModal();
    $('#td-token').select();
  }

  async function copyToken() {
    const input = $('#td-token');
    let done = false;
    try {
      await navigator.clipboard.writeText(input.value);
      done = true;
    } catch (e) {
      input.select();
      try { done = document.execCommand('copy'); } catch (e2) { done = false; }
    }
    $('#td-status').textContent = done ? 'Copied to the clipboard.' : 'Could not copy: select the key and copy it by hand.';
  }

  function forgetToken() {
    $('#td-token').value = '';
    $('#td-name').textContent = '';
    $('#td-status').textContent = '';
  }

  // ---- usage ----

  async function loadUsage() {
    const from = $('#u-from').value, to = $('#u-to').value;
    if (!from || !to) { say($('#u-error'), 'Choose both dates.'); return; }
    if (from > to) { say($('#u-error'), 'From is after To.'); return; }
    const e0 = epoch, seq = ++U.seq;
    try {
      const d = await api('GET', `/api/admin/usage?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
      if (e0 !== epoch || seq !== U.seq) return;
      U.rows = (d && d.rows) || [];
      U.from = from;
      U.to = to;
      renderUsage();
      say($('#u-error'), '');
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) say($('#u-error'), 'Could not load the usage: ' + e.message);
    }
  }

  const COUNTS = ['requests', 'prompt_tokens', 'completion_tokens', 'cached_tokens', 'total_tokens'];
  const GROUP_TEXT = { key: 'Key', alias: 'Model alias', provider: 'Provider' };

  function sumBy(rows, keyOf) {
    const m = new Map();
    for (const r of rows) {
      const k = keyOf(r);
      let s = m.get(k);
      if (!s) m.set(k, s = { name: k, requests: 0, prompt_tokens: 0, completion_tokens: 0, cached_tokens: 0, total_tokens: 0 });
      for (const c of COUNTS) s[c] += Number(r[c]) || 0;
    }
    return m;
  }

  function renderUsage() {
    const g = $('#u-group').value in GROUP_TEXT ? $('#u-group').value : 'key';
    $('#u-group-head').textContent = GROUP_TEXT[g];
    const groups = [...sumBy(U.rows, r => r[g]).values()].sort((a, b) => b.total_tokens - a.total_tokens || (a.name < b.name ? -1 : 1));
    const cells = s => COUNTS.map(c => h('td', { class: 'num', 'data-count': c, 'data-value': s[c] }, fmt(s[c])));
    const rows = groups.map(s => h('tr', { class: 'urow', 'data-group': s.name },
      h('th', { scope: 'row', class: 'gname', text: s.name }), cells(s)));
    if (!rows.length) rows.push(h('tr', null, h('td', { colspan: 6, class: 'empty', text: 'No usage in these days.' })));
    $('#u-body').replaceChildren(...rows);
    const all = sumBy(U.rows, () => 'Total').get('Total');
    $('#u-foot').replaceChildren(...(all ? [h('tr', { class: 'utotal' }, h('th', { scope: 'row', text: 'Total' }), cells(all))] : []));
    labelCells($('#u-table'));
    $('#u-range').textContent = U.from === U.to ? U.from : `${U.from} to ${U.to}`;
    drawChart();
  }

  // ---- the chart: total tokens per day, inline SVG ----

  const SVGNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null) e.setAttribute(k, v);
    for (const c of kids.flat()) if (c != null) e.append(c);
    return e;
  }
  function short(n) {
    const u = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']].find(([v]) => n >= v);
    if (!u) return String(n);
    const x = n / u[0];
    return (x >= 10 || Number.isInteger(x) ? Math.round(x) : x.toFixed(1)) + u[1];
  }
  // A round step that cuts max into at most four parts.
  function niceStep(max) {
    const raw = max / 4, p = 10 ** Math.floor(Math.log10(raw));
    return [1, 2, 5, 10].map(m => m * p).find(s => s >= raw);
  }

  function drawChart() {
    const box = $('#u-chart');
    if (!U.from) return;
    const days = [];
    for (let d = U.from; d <= U.to && days.length < 3700; d = dayAdd(d, 1)) days.push(d);
    const perDay = sumBy(U.rows, r => r.day);
    const byKey = new Map();
    for (const r of U.rows) {
      const m = byKey.get(r.day) || new Map();
      m.set(r.key, (m.get(r.key) || 0) + (Number(r.total_tokens) || 0));
      byKey.set(r.day, m);
    }
    const max = Math.max(0, ...days.map(d => (perDay.get(d) || {}).total_tokens || 0));
    const W = Math.max(260, box.clientWidth || 600), H = 200;
    const step = max ? niceStep(max) : 1, top = max ? Math.ceil(max / step) * step : 1;
    const ticks = [];
    for (let v = 0; v <= top; v += step) ticks.push(v);
    const L = 12 + 7 * Math.max(...ticks.map(v => short(v).length)), R = 8, T = 10, B = 26;
    const pw = W - L - R, ph = H - T - B, slot = pw / days.length;
    const bw = Math.max(1, Math.min(slot * 0.7, 44));
    const y = v => T + ph - (v / top) * ph;
    const parts = [];
    for (const v of ticks)
      parts.push(svg('line', { class: 'grid-line', x1: L, x2: W - R, y1: y(v), y2: y(v) }),
        svg('text', { class: 'axis', x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, short(v)));
    const every = Math.max(1, Math.ceil(days.length / Math.max(1, Math.floor(pw / 46))));
    days.forEach((d, i) => {
      const s = perDay.get(d), cx = L + slot * i + slot / 2;
      if (s && s.total_tokens > 0) {
        const hgt = Math.max(1, (s.total_tokens / top) * ph);
        const who = [...byKey.get(d)].filter(([, n]) => n).sort((a, b) => b[1] - a[1]).slice(0, 6)
          .map(([k, n]) => `\n${k}: ${fmt(n)}`).join('');
        parts.push(svg('rect', { class: 'bar', x: (cx - bw / 2).toFixed(1), y: (T + ph - hgt).toFixed(1), width: bw.toFixed(1),
          height: hgt.toFixed(1), rx: Math.min(3, bw / 4), 'data-day': d, 'data-total': s.total_tokens },
        svg('title', null, `${d}: ${fmt(s.total_tokens)} tokens, ${fmt(s.requests)} request${s.requests === 1 ? '' : 's'}${who}`)));
      }
      if ((days.length - 1 - i) % every === 0)
        parts.push(svg('text', { class: 'axis', x: cx, y: H - 8, 'text-anchor': 'middle' }, d.slice(5)));
    });
    parts.push(svg('line', { class: 'base-line', x1: L, x2: W - R, y1: T + ph, y2: T + ph }));
    if (!max) parts.push(svg('text', { class: 'axis', x: L + pw / 2, y: T + ph / 2, 'text-anchor': 'middle' }, 'No tokens in these days'));
    box.replaceChildren(svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img',
      'aria-label': `Total tokens per day, ${U.from} to ${U.to}: ${fmt(max)} at most` }, parts));
  }

  // ---- tables as cards on phones: each cell names its column ----

  function labelCells(table) {
    const heads = $$('thead th', table).map(th => th.textContent.trim());
    for (const tr of $$('tbody tr, tfoot tr', table)) {
      let col = 0;
      for (const c of tr.children) {
        if (!c.hasAttribute('data-label')) c.dataset.label = heads[col] || '';
        col += c.colSpan || 1;
      }
    }
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

    $('#k-refresh').addEventListener('click', () => { refreshKeys(); loadUsage(); });
    $('#k-add').addEventListener('click', () => openKeyDialog(null));
    $('#k-body').addEventListener('click', keysClick);
    $('#kd-form').addEventListener('submit', saveKey);
    $('#kd-cancel').addEventListener('click', () => $('#key-dlg').close());
    $('#td-copy').addEventListener('click', copyToken);
    $('#td-done').addEventListener('click', () => $('#token-dlg').close());
    $('#token-dlg').addEventListener('close', forgetToken);
    for (const id of ['#u-from', '#u-to']) $(id).addEventListener('change', loadUsage);
    $('#u-group').addEventListener('change', () => { if (U.from) renderUsage(); });
    let rz = 0;
    window.addEventListener('resize', () => {
      clearTimeout(rz);
      rz = setTimeout(() => { if (current === 'keys') drawChart(); }, 120);
    });

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
