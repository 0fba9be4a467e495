// Drives a running `vramfit serve` with the official OpenAI JavaScript client (npm `openai`, v4):
// the models list, a chat completion, the same chat streamed, a completion checked against
// llama.cpp's greedy tokens, bad requests (each with its HTTP status and OpenAI error body), a
// client that hangs up mid-stream, then a bounded load test (8 clients x 20 requests) in which
// every answer must be complete and well-formed while /v1/memory's device bytes stay inside the
// budget. Run by openai_client_test.sh, which starts the server; any failed check throws.
import OpenAI from 'openai';
import assert from 'node:assert/strict';

const baseURL = process.env.VRAMFIT_URL;  // http://127.0.0.1:PORT/v1
const apiKey = process.env.VRAMFIT_KEY;
const model = process.env.VRAMFIT_MODEL;
const budget = Number(process.env.VRAMFIT_BUDGET);
const maxBody = Number(process.env.VRAMFIT_MAX_BODY);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });

// llama.cpp's greedy continuation of the reference prompt (../shared/reference/logits).
const referencePrompt = 'Once upon a time, there was a little';
const referenceStart = ' girl named Lily. She loved to play outside in the park. One day';
const finishReasons = ['stop', 'length'];

async function get(path) {
  const res = await fetch(baseURL + path, { headers: { Authorization: `Bearer ${apiKey}` } });
  assert.equal(res.status, 200, `GET ${path}`);
  return res.json();
}

// The OpenAI error a call must fail with.
async function expectError(call, status, code, param) {
  try {
    await call();
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `${e}`);
    assert.equal(e.status, status, e.message);
    assert.equal(e.code ?? null, code, e.message);
    if (param !== undefined) assert.equal(e.param ?? null, param, e.message);
    assert.equal(typeof e.error?.message, 'string');
    assert.ok(e.error?.type, 'error.type');
    return e;
  }
  assert.fail(`expected HTTP ${status} ${code}`);
}

function checkUsage(usage, maxTokens) {
  assert.ok(Number.isInteger(usage.prompt_tokens) && usage.prompt_tokens > 0);
  assert.ok(Number.isInteger(usage.completion_tokens) && usage.completion_tokens <= maxTokens);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
}

function checkChat(chat, maxTokens) {
  assert.equal(chat.object, 'chat.completion');
  assert.match(chat.id, /^chatcmpl-/);
  assert.equal(chat.model, model);
  assert.equal(chat.choices.length, 1);
  assert.equal(chat.choices[0].message.role, 'assistant');
  assert.equal(typeof chat.choices[0].message.content, 'string');
  assert.ok(finishReasons.includes(chat.choices[0].finish_reason));
  checkUsage(chat.usage, maxTokens);
}

// Reads a stream to its end: the text, the finish reason, the usage chunk.
async function readStream(stream, field) {
  let text = '', finish = null, usage = null, chunks = 0, id = null;
  for await (const chunk of stream) {
    chunks++;
    id ??= chunk.id;
    assert.equal(chunk.id, id, 'one id per stream');
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices.length === 0) continue;
    assert.equal(finish, null, 'nothing after the finish reason but usage');
    text += field(chunk.choices[0]) ?? '';
    finish = chunk.choices[0].finish_reason;
  }
  return { text, finish, usage, chunks };
}

async function basics() {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [model]);
  assert.equal(models.data[0].object, 'model');
  assert.equal((await client.models.retrieve(model)).id, model);

  const messages = [{ role: 'user', content: 'Tell me a story about a cat.' }];
  const chat = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
  checkChat(chat, 16);
  assert.ok(chat.choices[0].message.content.length > 0);

  const streamed = await readStream(
    await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0, stream: true,
                                           stream_options: { include_usage: true } }),
    (c) => c.delta.content);
  assert.equal(streamed.text, chat.choices[0].message.content, 'streamed = not streamed (greedy)');
  assert.equal(streamed.finish, chat.choices[0].finish_reason);
  assert.deepEqual(streamed.usage, chat.usage);

  const completion = await client.completions.create({ model, prompt: referencePrompt, max_tokens: 24,
                                                        temperature: 0 });
  assert.equal(completion.object, 'text_completion');
  assert.ok(completion.choices[0].text.startsWith(referenceStart), completion.choices[0].text);
  assert.equal(completion.choices[0].finish_reason, 'length');
  assert.equal(completion.usage.completion_tokens, 24);

  const health = await get('/../health');
  assert.equal(health.status, 'ok');
}

async function badRequests() {
  const messages = [{ role: 'user', content: 'Hi' }];
  await expectError(() => client.chat.completions.create({ model, messages, max_tokens: 'lots' }), 400,
                    'invalid_type', 'max_tokens');
  await expectError(() => client.chat.completions.create({ model: 'gpt-4o', messages }), 404, 'model_not_found',
                    'model');
  await expectError(() => client.chat.completions.create({ model, messages: [] }), 400, 'empty_array', 'messages');
  await expectError(() => client.completions.create({ model, prompt: 'Once upon a time '.repeat(200) }), 400,
                    'context_length_exceeded', 'prompt');
  await expectError(() => client.completions.create({ model, prompt: 'x'.repeat(maxBody + 1) }), 413,
                    'request_too_large');
  await expectError(() => client.models.retrieve('gpt-4o'), 404, 'model_not_found', 'model');
  const nowhere = await fetch(`${baseURL}/nowhere`, { headers: { Authorization: `Bearer ${apiKey}` } });
  assert.equal(nowhere.status, 404);
  assert.equal((await nowhere.json()).error.code, 'unknown_url');
  const stranger = new OpenAI({ baseURL, apiKey: 'not-the-key', maxRetries: 0 });
  await expectError(() => stranger.models.list(), 401, 'invalid_api_key');
  // Malformed JSON, which the client library would never send.
  const res = await fetch(`${baseURL}/chat/completions`, {
    method: 'POST', body: '{"model": ', headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
  });
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(body.error.code, 'invalid_json');
  assert.equal(body.error.type, 'invalid_request_error');
  assert.ok('param' in body.error);
}

// A client that hangs up mid-stream: the server carries on serving.
async function hangUp() {
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model, messages: [{ role: 'user', content: 'Go on and on.' }], max_tokens: 200, stream: true },
    { signal: controller.signal });
  try {
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      controller.abort();
    }
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIUserAbortError || e.name === 'AbortError', `${e}`);
  }
  const after = await client.completions.create({ model, prompt: 'Once', max_tokens: 4 });
  assert.equal(after.object, 'text_completion');
}

// One request of the load test, by kind; returns the tokens generated.
async function oneRequest(kind, seed) {
  const maxTokens = 8;
  const messages = [{ role: 'user', content: `Story number ${seed}.` }];
  if (kind === 0) {
    const chat = await client.chat.completions.create({ model, messages, max_tokens: maxTokens, seed });
    checkChat(chat, maxTokens);
    return chat.usage.completion_tokens;
  }
  if (kind === 1) {
    const s = await readStream(await client.chat.completions.create(
      { model, messages, max_tokens: maxTokens, seed, stream: true, stream_options: { include_usage: true } }),
      (c) => c.delta.content);
    assert.ok(finishReasons.includes(s.finish), `finish ${s.finish}`);
    checkUsage(s.usage, maxTokens);
    return s.usage.completion_tokens;
  }
  const c = await client.completions.create({ model, prompt: `Once upon a time ${seed}`, max_tokens: maxTokens, seed });
  assert.equal(c.object, 'text_completion');
  assert.equal(typeof c.choices[0].text, 'string');
  assert.ok(finishReasons.includes(c.choices[0].finish_reason));
  checkUsage(c.usage, maxTokens);
  return c.usage.completion_tokens;
}

// 8 clients x 20 requests at once, /v1/memory polled all along: the device never holds more
// than the budget.
async function load() {
  const clients = 8, perClient = 20;
  let polling = true, polls = 0, worst = 0;
  const poller = (async () => {
    while (polling) {
      const memory = await get('/memory');
      const device = memory.devices.at(-1);
      assert.equal(device.budget, budget);
      worst = Math.max(worst, device.total, device.peak);
      assert.ok(device.total <= budget && device.peak <= budget, JSON.stringify(device));
      polls++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const start = performance.now();
  const counts = await Promise.all(Array.from({ length: clients }, async (_, c) => {
    let tokens = 0;
    for (let i = 0; i < perClient; i++) tokens += await oneRequest((c + i) % 3, c * perClient + i);
    return tokens;
  }));
  const seconds = (performance.now() - start) / 1000;
  polling = false;
  await poller;
  const memory = await get('/memory');
  assert.equal(memory.slots_busy, 0);
  const tokens = counts.reduce((a, b) => a + b, 0);
  console.log(`load: ${clients * perClient} requests, ${tokens} tokens generated in ${seconds.toFixed(2)} s; ` +
              `device bytes at most ${worst} of the ${budget} budget over ${polls} polls of /v1/memory`);
}

await basics();
await badRequests();
await hangUp();
await load();
console.log('openai client: all checks passed');
