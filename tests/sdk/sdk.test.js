// The official OpenAI SDK (npm "openai") against a running gateway: plain
// completions, streams, a file upload, and SDK-shaped errors.  Prints TAP.
// env: GW_URL, CLIENT_KEY, MOCK_URL (the mock upstream, to see what it got)
'use strict';
const crypto = require('crypto');
const OpenAI = require('openai');

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

async function main() {
  const base = `${process.env.GW_URL}/v1`;
  const client = new OpenAI({ baseURL: base, apiKey: process.env.CLIENT_KEY, maxRetries: 0, timeout: 15000 });

  const r = await client.chat.completions.create({ model: 'sdk', messages: [{ role: 'user', content: 'hi' }] });
  ok(r.choices[0].message.content === 'hello from A', 'a completion through the SDK', JSON.stringify(r));
  ok(r.model === 'sdk', 'the SDK sees the alias as the model', r.model);

  const stream = await client.chat.completions.create({
    model: 'sdk', stream: true, messages: [{ role: 'user', content: 'hi' }],
  });
  let text = '';
  let chunks = 0;
  let models = new Set();
  for await (const chunk of stream) {
    chunks += 1;
    models.add(chunk.model);
    text += chunk.choices[0]?.delta?.content || '';
  }
  ok(chunks >= 3 && text === 'tok1 tok2 ', 'a stream through the SDK', `${chunks} chunks: ${JSON.stringify(text)}`);
  ok(models.size === 1 && models.has('sdk'), 'every chunk carries the alias', [...models].join(','));

  // A file upload: the SDK's own multipart body, the model field swapped
  // for the upstream model, the audio bytes untouched.
  const audio = Buffer.concat([Buffer.from('RIFF'), crypto.randomBytes(5000)]);
  const tr = await client.audio.transcriptions.create({
    file: await OpenAI.toFile(audio, 'a.wav', { type: 'audio/wav' }), model: 'sdk', language: 'en',
  });
  ok(tr.text === 'hello from A', 'an audio transcription upload through the SDK', JSON.stringify(tr));
  const recs = await (await fetch(`${process.env.MOCK_URL}/_mock/requests?n=1`)).json();
  const rec = recs[recs.length - 1] || {};
  ok(rec.model === 'a' && /\/v1\/audio\/transcriptions$/.test(rec.path), 'the upstream got the upstream model',
    `${rec.model} ${rec.path}`);
  const sent = Buffer.from(rec.body_b64 || '', 'base64');
  ok(sent.includes(audio), 'the upstream got the audio bytes unchanged', `${sent.length} bytes`);

  const list = await client.models.list();
  const ids = [];
  for await (const m of list) ids.push(m.id);
  ok(ids.includes('sdk') && ids.includes('broken'), 'models.list', ids.join(','));

  const emb = await client.embeddings.create({ model: 'sdk', input: 'hi' });
  ok(Array.isArray(emb.data) && emb.data.length > 0, 'embeddings through the SDK');

  try {
    await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] });
    ok(false, 'an unknown model raises');
  } catch (e) {
    ok(e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found',
      'an unknown model: NotFoundError 404 model_not_found', `${e.constructor.name} ${e.status} ${e.code}`);
  }

  const bad = new OpenAI({ baseURL: base, apiKey: 'wrong', maxRetries: 0 });
  try {
    await bad.chat.completions.create({ model: 'sdk', messages: [{ role: 'user', content: 'x' }] });
    ok(false, 'a wrong key raises');
  } catch (e) {
    ok(e instanceof OpenAI.AuthenticationError && e.status === 401,
      'a wrong key: AuthenticationError 401', `${e.constructor.name} ${e.status}`);
  }

  try {
    await client.chat.completions.create({ model: 'broken', messages: [{ role: 'user', content: 'x' }] });
    ok(false, 'all providers failing raises');
  } catch (e) {
    ok(e instanceof OpenAI.InternalServerError && e.status === 502 && /all providers failed/.test(e.message),
      'all providers failing: InternalServerError 502 with the reason', `${e.constructor.name} ${e.status} ${e.message}`);
  }

  try {
    await client.chat.completions.create({ model: 'sdk', messages: [] });
    ok(false, 'empty messages raise');
  } catch (e) {
    ok(e instanceof OpenAI.BadRequestError && /messages is required/.test(e.message),
      'empty messages: BadRequestError', `${e.constructor.name} ${e.message}`);
  }

  // A stream that breaks after it started: the SDK raises with our message.
  try {
    const s = await client.chat.completions.create({
      model: 'cut', stream: true, messages: [{ role: 'user', content: 'hi' }],
    });
    let got = '';
    for await (const chunk of s) got += chunk.choices[0]?.delta?.content || '';
    ok(false, 'a cut-off stream raises', got);
  } catch (e) {
    ok(/reset|closed|upstream/i.test(e.message), 'a stream cut off mid-way raises an error in the SDK', e.message);
  }

  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  ok(false, 'unexpected exception', e.stack);
  console.log(`1..${n}`);
  process.exit(1);
});
