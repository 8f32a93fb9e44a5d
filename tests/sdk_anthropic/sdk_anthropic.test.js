// The official Anthropic SDK (npm "@anthropic-ai/sdk") against a running
// gateway: messages (plain, streamed both ways, beta), count_tokens, the
// model list, failover, and SDK-shaped errors.  Prints TAP.
// env: GW_URL (the gateway, no /v1), CLIENT_KEY, MOCK_URL (the mock upstream
// behind provider pa, to see what it got), PROVIDER_KEY (pa's key)
'use strict';
const Anthropic = require('@anthropic-ai/sdk');

let n = 0;
let failed = 0;
function ok(cond, msg, extra) {
  n += 1;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${msg}`);
  if (!cond) {
    failed += 1;
    if (extra !== undefined) console.log(`#   ${String(extra).split('\n').join('\n#   ')}`);
  }
}

const WORDS8 = 'w1 w2 w3 w4 w5 w6 w7 w8 ';
const USER = [{ role: 'user', content: 'hi' }];
const KEY = process.env.CLIENT_KEY;

// The SDK's own fetch, recording the headers of every request it sends.
const sent = [];
function recordingFetch(url, init) {
  sent.push({ url: String(url), headers: new Headers(init && init.headers) });
  return fetch(url, init);
}

async function lastUpstream() {
  const recs = await (await fetch(`${process.env.MOCK_URL}/_mock/requests?n=1`)).json();
  return recs[recs.length - 1] || { header_map: {} };
}

async function main() {
  const opts = { baseURL: process.env.GW_URL, maxRetries: 0, timeout: 15000, fetch: recordingFetch };
  const client = new Anthropic({ ...opts, apiKey: KEY });

  // ---- messages.create, not streamed
  const m = await client.messages.create({ model: 'sdk', max_tokens: 64, messages: USER });
  ok(m.type === 'message' && m.content[0].type === 'text' && m.content[0].text === WORDS8,
    'messages.create through the SDK', JSON.stringify(m));
  ok(m.model === 'sdk', 'the SDK sees the alias as the model', m.model);
  ok(m.stop_reason === 'end_turn' && m.usage.input_tokens === 10 && m.usage.output_tokens === 8,
    'stop_reason and usage reach the SDK', JSON.stringify(m.usage));
  const mine = sent[sent.length - 1].headers;
  const up = await lastUpstream();
  const uh = up.header_map;
  ok(up.path === '/v1/messages' && up.model === 'a-sdk', 'the upstream got /v1/messages with the upstream model',
    `${up.path} ${up.model}`);
  ok(uh['x-api-key'] === process.env.PROVIDER_KEY && !('authorization' in uh),
    "the upstream got the provider's key as x-api-key", JSON.stringify(uh));
  ok(!Object.values(uh).some((v) => v.includes(KEY)), "the SDK's key never reaches the upstream", JSON.stringify(uh));
  ok(mine.get('anthropic-version') && uh['anthropic-version'] === mine.get('anthropic-version'),
    "the SDK's anthropic-version reaches the upstream", `${mine.get('anthropic-version')} -> ${uh['anthropic-version']}`);

  // The same with the key in x-api-key (Anthropic's own header) instead of a bearer.
  const xk = new Anthropic({ ...opts, apiKey: 'placeholder', defaultHeaders: { Authorization: null, 'x-api-key': KEY } });
  const mx = await xk.messages.create({ model: 'sdk', max_tokens: 64, messages: USER });
  const xh = sent[sent.length - 1].headers;
  ok(mx.content[0].text === WORDS8 && xh.get('x-api-key') === KEY && !xh.has('authorization'),
    'a client sending x-api-key (no Authorization) is served', `${xh.get('x-api-key')} ${xh.get('authorization')}`);

  // ---- messages.stream: the helper's text events and final message
  const st = client.messages.stream({ model: 'sdk', max_tokens: 64, messages: USER });
  let text = '';
  st.on('text', (t) => { text += t; });
  const fin = await st.finalMessage();
  ok(text === WORDS8, 'messages.stream: the text deltas, in order', JSON.stringify(text));
  ok(fin.content[0].text === WORDS8 && fin.model === 'sdk' && fin.stop_reason === 'end_turn',
    'messages.stream: the final message, model the alias', JSON.stringify(fin));
  ok(fin.usage.input_tokens === 10 && fin.usage.output_tokens === 8, 'messages.stream: usage', JSON.stringify(fin.usage));

  // ---- messages.create with stream: true: the raw events
  const raw = await client.messages.create({ model: 'sdk', max_tokens: 64, messages: USER, stream: true });
  const types = [];
  let rtext = '';
  let startModel = null;
  for await (const ev of raw) {
    types.push(ev.type);
    if (ev.type === 'message_start') startModel = ev.message.model;
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') rtext += ev.delta.text;
  }
  // (the SDK's iterator drops ping events itself)
  const want = ['message_start', 'content_block_start', ...Array(8).fill('content_block_delta'),
    'content_block_stop', 'message_delta', 'message_stop'];
  ok(JSON.stringify(types) === JSON.stringify(want), 'create({stream: true}): every event, in order', types.join(','));
  ok(rtext === WORDS8 && startModel === 'sdk', 'create({stream: true}): text, and the alias in message_start',
    `${JSON.stringify(rtext)} ${startModel}`);

  // ---- beta messages: the anthropic-beta flags pass, and so does a query
  // string (older SDKs sent ?beta=true; here given as a request option)
  const bm = await client.beta.messages.create({
    model: 'sdk', max_tokens: 64, messages: USER, betas: ['token-efficient-tools-2025-02-19'],
  }, { query: { beta: 'true' } });
  const bsent = sent[sent.length - 1];
  const bup = await lastUpstream();
  ok(bm.content[0].text === WORDS8, 'beta.messages.create through the SDK', JSON.stringify(bm));
  ok(bsent.headers.get('anthropic-beta') && bup.header_map['anthropic-beta'] === bsent.headers.get('anthropic-beta'),
    "the upstream got the SDK's anthropic-beta flags", `${bsent.headers.get('anthropic-beta')} -> ${bup.header_map['anthropic-beta']}`);
  ok(/\?beta=true$/.test(bsent.url) && bup.path === '/v1/messages?beta=true', 'the upstream got the query string',
    `${bsent.url} -> ${bup.path}`);

  // ---- count_tokens
  const ct = await client.messages.countTokens({ model: 'sdk', messages: USER });
  ok(ct.input_tokens === 10, 'messages.countTokens', JSON.stringify(ct));
  const cup = await lastUpstream();
  ok(cup.path === '/v1/messages/count_tokens' && cup.model === 'a-sdk', 'the upstream got count_tokens with the upstream model',
    `${cup.path} ${cup.model}`);

  // ---- models
  const ids = [];
  for await (const mod of client.models.list()) ids.push(mod.id);
  ok(JSON.stringify(ids) === JSON.stringify(['broken', 'cut', 'fo', 'sdk']),
    'models.list: the Anthropic aliases (not the OpenAI-only one), sorted', ids.join(','));
  const page = await client.models.list();
  ok(page.has_more === false && page.first_id === 'broken' && page.last_id === 'sdk', 'models.list: one page, first_id, last_id',
    `${page.has_more} ${page.first_id} ${page.last_id}`);
  const one = await client.models.retrieve('sdk');
  ok(one.id === 'sdk' && one.type === 'model' && typeof one.display_name === 'string' && !isNaN(Date.parse(one.created_at)),
    'models.retrieve', JSON.stringify(one));

  // ---- failover is invisible to the SDK
  const fo = await client.messages.create({ model: 'fo', max_tokens: 64, messages: USER });
  ok(fo.content[0].text === WORDS8 && fo.model === 'fo', 'a 529 on the first provider: the SDK gets the next one\'s answer',
    JSON.stringify(fo));
  const fs = client.messages.stream({ model: 'fo', max_tokens: 64, messages: USER });
  const ffin = await fs.finalMessage();
  ok(ffin.content[0].text === WORDS8 && ffin.model === 'fo', 'the same streamed', JSON.stringify(ffin));

  // ---- errors
  try {
    await client.messages.create({ model: 'no-such-model', max_tokens: 8, messages: USER });
    ok(false, 'an unknown model raises');
  } catch (e) {
    ok(e instanceof Anthropic.NotFoundError && e.status === 404 && e.type === 'not_found_error',
      'an unknown model: NotFoundError 404 not_found_error', `${e.constructor.name} ${e.status} ${e.type}`);
  }
  try {
    await client.messages.create({ model: 'oa', max_tokens: 8, messages: USER });
    ok(false, 'an alias only an OpenAI provider serves raises');
  } catch (e) {
    ok(e instanceof Anthropic.NotFoundError && e.status === 404,
      'an alias only an OpenAI provider serves: NotFoundError 404', `${e.constructor.name} ${e.status}`);
  }
  for (const [name, bad] of [
    ['bearer', new Anthropic({ ...opts, apiKey: 'wrong' })],
    ['x-api-key', new Anthropic({ ...opts, apiKey: 'placeholder', defaultHeaders: { Authorization: null, 'x-api-key': 'wrong' } })],
  ]) {
    try {
      await bad.messages.create({ model: 'sdk', max_tokens: 8, messages: USER });
      ok(false, `a wrong key (${name}) raises`);
    } catch (e) {
      ok(e instanceof Anthropic.AuthenticationError && e.status === 401 && e.type === 'authentication_error',
        `a wrong key (${name}): AuthenticationError 401 authentication_error`, `${e.constructor.name} ${e.status} ${e.type}`);
    }
  }
  try {
    await new Anthropic({ ...opts, apiKey: 'wrong' }).models.list();
    ok(false, 'models.list with a wrong key raises');
  } catch (e) {
    ok(e instanceof Anthropic.AuthenticationError && e.status === 401, 'models.list with a wrong key: AuthenticationError 401',
      `${e.constructor.name} ${e.status}`);
  }
  try {
    await client.messages.create({ model: 'broken', max_tokens: 8, messages: USER });
    ok(false, 'all providers failing raises');
  } catch (e) {
    ok(e instanceof Anthropic.InternalServerError && e.status === 502 && e.type === 'api_error' &&
      /all providers failed/.test(e.message),
    'all providers failing: InternalServerError 502 api_error with the reason', `${e.constructor.name} ${e.status} ${e.type} ${e.message}`);
  }

  // A stream that breaks after it started: the SDK raises our error event.
  let got = '';
  try {
    const s = await client.messages.create({ model: 'cut', max_tokens: 64, messages: USER, stream: true });
    for await (const ev of s) {
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') got += ev.delta.text;
    }
    ok(false, 'a cut-off stream raises', got);
  } catch (e) {
    ok(e instanceof Anthropic.APIError && ['api_error', 'overloaded_error'].includes(e.type || (e.error && e.error.error && e.error.error.type)),
      'a stream cut off mid-way raises an APIError (api_error or overloaded_error) in the SDK',
      `${e.constructor.name} ${e.type} ${e.message}`);
    ok(got === 'w1 w2 w3 ', '... after the text that came before the cut', JSON.stringify(got));
  }

  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  ok(false, 'unexpected exception', e.stack);
  console.log(`1..${n}`);
  process.exit(1);
});
