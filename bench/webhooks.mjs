// Driver of bench/webhooks.sh: a receiver on loopback, one repo watched by W webhooks, and
// N commits (events), twice:
//   latency:    commits one after another while deliveries flow; per delivery, the time
//               from the commit's answer (the event is recorded before it) to its arrival;
//   throughput: the N events are recorded with the consumers paused, then released; the
//               time from the first of the N × W deliveries to the last.
// Every delivery is checked: each (webhook, commit) arrives, per webhook in commit order.
// Prints one JSON line. Usage: node webhooks.mjs HUB_URL TOKEN PAUSE_FILE N W
import http from "node:http";
import { writeFileSync, rmSync } from "node:fs";

const [hub, token, pauseFile, nStr, wStr] = process.argv.slice(2);
const N = Number(nStr), W = Number(wStr);
const now = () => Number(process.hrtime.bigint()) / 1e6;
const fail = (m) => {
  console.error(`webhooks bench: ${m}`);
  process.exit(1);
};

const arrivals = new Map(); // sha -> [{hook, t}] (first arrival per webhook)
const perHook = new Map(); // hook -> [sha in arrival order]
let received = 0;
const seqOf = new Map(); // sha -> commit number (set when the commit answered, which may
// be after its deliveries arrived)
const srv = http.createServer((req, res) => {
  let body = "";
  req.on("data", (d) => (body += d));
  req.on("end", () => {
    const t = now();
    res.end("ok");
    const p = JSON.parse(body);
    const sha = p.updatedRefs?.[0]?.newSha;
    if (!sha) return; // the repo's creation
    const hook = p.webhook.id;
    const a = arrivals.get(sha) ?? [];
    if (!a.some((x) => x.hook === hook)) {
      a.push({ hook, t });
      received++;
      const h = perHook.get(hook) ?? [];
      h.push(sha);
      perHook.set(hook, h);
    }
    arrivals.set(sha, a);
  });
});
function checkOrder() {
  for (const [hook, shas] of perHook) {
    const seqs = shas.map((s) => seqOf.get(s));
    if (seqs.some((x) => x === undefined)) fail(`webhook ${hook}: a delivery of an unknown commit`);
    for (let i = 1; i < seqs.length; i++)
      if (seqs[i] < seqs[i - 1]) fail(`webhook ${hook}: commit ${seqs[i]} after ${seqs[i - 1]}`);
  }
}
srv.keepAliveTimeout = 0;
await new Promise((ok) => srv.listen(0, "127.0.0.1", ok));
const recvUrl = `http://127.0.0.1:${srv.address().port}/hook`;

async function api(method, p, json, headers = {}) {
  const r = await fetch(hub + p, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(json ? { "Content-Type": "application/json" } : {}), ...headers },
    body: json ? JSON.stringify(json) : undefined,
  });
  const text = await r.text();
  if (!r.ok) fail(`${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
let seq = 0;
async function commit(repo) {
  const i = seq++;
  const body = [
    { key: "header", value: { summary: `c${i}`, description: "" } },
    { key: "file", value: { path: `f${i % 50}.txt`, content: Buffer.from(`${i}\n`).toString("base64"), encoding: "base64" } },
  ].map((l) => JSON.stringify(l)).join("\n") + "\n";
  const r = await fetch(`${hub}/api/models/${repo}/commit/main`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/x-ndjson" },
    body,
  });
  const j = await r.json();
  if (!r.ok) fail(`commit: ${r.status} ${JSON.stringify(j)}`);
  seqOf.set(j.commitOid, i);
  return { sha: j.commitOid, t: now() };
}
async function waitAll(want, ms) {
  const until = Date.now() + ms;
  while (received < want) {
    if (Date.now() > until) fail(`only ${received} of ${want} deliveries arrived`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

await api("POST", "/api/repos/create", { name: "hooked" });
for (let i = 0; i < W; i++)
  await api("POST", "/api/settings/webhooks", { watched: [{ type: "model", name: "admin/hooked" }], url: recvUrl, domains: ["repo"] });

// Phase 1: latency while events come one after another.
const commits = [];
for (let i = 0; i < N; i++) commits.push(await commit("admin/hooked"));
await waitAll(N * W, 600000);
checkOrder();
const lat = [];
for (const c of commits) for (const a of arrivals.get(c.sha)) lat.push(a.t - c.t);
lat.sort((a, b) => a - b);
const commitsPerS = N / ((commits.at(-1).t - commits[0].t) / 1000);

// Phase 2: throughput of a backlog of N events.
writeFileSync(pauseFile, "");
received = 0;
arrivals.clear();
perHook.clear();
const burst = [];
for (let i = 0; i < N; i++) burst.push(await commit("admin/hooked"));
const t0 = now();
rmSync(pauseFile);
await waitAll(N * W, 600000);
checkOrder();
// From the first delivery of the backlog to the last (the dispatcher notices the pause
// file's removal within a second; that wait is not delivery work).
const ts = [...arrivals.values()].flat().map((a) => a.t).sort((a, b) => a - b);
const drainS = (ts.at(-1) - ts[0]) / 1000;
const releaseS = (ts[0] - t0) / 1000;
srv.close();
console.log(JSON.stringify({
  events: N, webhooks: W, deliveries: N * W,
  p50_ms: +pct(lat, 50).toFixed(1), p99_ms: +pct(lat, 99).toFixed(1), max_ms: +lat.at(-1).toFixed(1),
  commits_per_s: +commitsPerS.toFixed(1),
  backlog_s: +drainS.toFixed(2), deliveries_per_s: Math.round((N * W - 1) / drainS),
  release_s: +releaseS.toFixed(2),
}));
process.exit(0);
