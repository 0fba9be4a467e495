// Generation throughput of a running `vramfit serve` with C concurrent clients: each client sends R
// completions of exactly T tokens (greedy, no stop, so every request decodes the same count) and
// the aggregate rate is tokens / wall seconds, the median of REPEATS runs. Plain fetch, no npm
// package. Pair it with `vramfit bench -m MODEL` (single context, memory bandwidth measured in the
// same run) to see what the slots' turn-taking costs.
//   node bench/serve_clients.mjs URL CLIENTS [REQUESTS=4] [TOKENS=64] [REPEATS=3]
const [url, clients, requests = 4, tokens = 64, repeats = 3] = process.argv.slice(2);
if (!url || !clients) {
  console.error('usage: node bench/serve_clients.mjs http://127.0.0.1:PORT CLIENTS [REQUESTS] [TOKENS] [REPEATS]');
  process.exit(2);
}
const key = process.env.VRAMFIT_API_KEY;

async function completion(i) {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ prompt: `Once upon a time ${i}`, max_tokens: Number(tokens), temperature: 0 }),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(JSON.stringify(body));
  return body.usage.completion_tokens;
}

async function run() {
  const start = performance.now();
  const counts = await Promise.all(Array.from({ length: Number(clients) }, async (_, c) => {
    let n = 0;
    for (let r = 0; r < Number(requests); r++) n += await completion(c * 1000 + r);
    return n;
  }));
  const seconds = (performance.now() - start) / 1000;
  const generated = counts.reduce((a, b) => a + b, 0);
  return { generated, seconds, rate: generated / seconds };
}

await completion(-1);  // warm up
const runs = [];
for (let i = 0; i < Number(repeats); i++) runs.push(await run());
runs.sort((a, b) => a.rate - b.rate);
const median = runs[Math.floor(runs.length / 2)];
console.log(`${clients} clients x ${requests} requests x ${tokens} tokens: ${median.rate.toFixed(1)} tok/s ` +
            `aggregate (median of ${repeats}: ${median.generated} tokens in ${median.seconds.toFixed(2)} s; ` +
            `runs ${runs.map((r) => r.rate.toFixed(1)).join(', ')} tok/s)`);
