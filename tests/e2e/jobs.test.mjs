// The job runner (docs/jobs.md): `modelhub jobs list|retry|cancel` against a running
// server, retries then the dead-letter state, a job cut short by SIGKILL picked up after
// the restart once its lease expired, per-kind /metrics, and the cap on streamed
// responses (503 + Retry-After past MODELHUB_MAX_STREAMS).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { createRepo, uploadFiles } from "@huggingface/hub";
import { startServer } from "./lib/server.mjs";

process.env.MODELHUB_TEST_JOBS = "1"; // the CLI (server.cli) may queue test jobs too

let server;
let alice;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

function jobs(...args) {
  const r = server.cli(["jobs", "list", "--json", ...args], { check: true });
  return JSON.parse(r.stdout);
}

function job(id) {
  return jobs("--limit", "1000").find((j) => j.id === id);
}

async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function metrics() {
  const r = await fetch(`${server.url}/metrics`);
  assert.equal(r.status, 200);
  return r.text();
}

function addJob(kind, ...args) {
  const r = server.cli(["jobs", "add", kind, ...args], { check: true });
  return Number(r.stdout.trim());
}

before(async () => {
  // One node: the stream cap and the job metrics are per process (MODELHUB_E2E_NODES);
  // scaleout.test.mjs runs jobs across two nodes.
  server = await startServer({
    nodes: 1,
    env: { MODELHUB_TEST_JOBS: "1", MODELHUB_JOB_LEASE_MS: "1500", MODELHUB_MAX_STREAMS: "1" },
  });
  alice = server.makeUser("alice", "write");
});

after(async () => {
  await server?.stop();
});

test("an LFS upload is converted for Xet by a job that `modelhub jobs list` shows", async () => {
  const data = randomBytes(300 * 1024);
  const hub = { repo: "alice/conv", accessToken: alice, hubUrl: server.url };
  await createRepo({ ...hub });
  await uploadFiles({ ...hub, useXet: false, files: [{ path: "w.bin", content: new Blob([data]) }] });
  // Reading it through the API sees it unconverted and queues the conversion.
  const done = await until("the conversion job", async () => {
    await fetch(`${server.url}/api/models/alice/conv/paths-info/main`, {
      method: "POST",
      headers: { Authorization: `Bearer ${alice}`, "Content-Type": "application/json" },
      body: JSON.stringify({ paths: ["w.bin"] }),
    }).then((r) => r.arrayBuffer());
    return jobs("--kind", "xet.convert").find((j) => j.key === sha256(data) && j.state === "done");
  });
  assert.equal(done.attempts, 1);
  const text = server.cli(["jobs", "list"], { check: true }).stdout;
  assert.match(text, /^ID\s+KIND\s+STATE/m);
  assert.match(text, new RegExp(`xet\\.convert\\s+done\\s+1/3 .*${sha256(data).slice(0, 40)}`));
  assert.match(await metrics(), /modelhub_jobs_done_total\{kind="xet\.convert"\} [1-9]/);
});

test("a failing job is retried with backoff, then dead; `jobs retry` queues it again", async () => {
  const id = addJob("test.fail");
  let j = await until("the dead letter", () => {
    const x = job(id);
    return x?.state === "dead" && x;
  });
  assert.equal(j.attempts, 3);
  assert.equal(j.max_attempts, 3);
  assert.match(j.last_error, /fails on purpose/);
  let m = await metrics();
  assert.match(m, /modelhub_jobs_dead\{kind="test\.fail"\} 1\n/);
  assert.match(m, /modelhub_jobs_retries_total\{kind="test\.fail"\} 2\n/);
  assert.match(m, /modelhub_jobs_failed_total\{kind="test\.fail"\} 3\n/);
  assert.match(m, /modelhub_jobs_dead_total\{kind="test\.fail"\} 1\n/);
  assert.match(m, /modelhub_threads\{name="job-runner"\} [1-9]/);
  assert.match(server.log(), new RegExp(`job ${id} test\\.fail .*failed 3 times, dead`));

  const r = server.cli(["jobs", "retry", String(id)], { check: true });
  assert.match(r.stdout, /queued again/);
  j = await until("the second dead letter", () => {
    const x = job(id);
    return x?.state === "dead" && x.updated > j.updated && x;
  });
  assert.equal(j.attempts, 3);
  m = await metrics();
  assert.match(m, /modelhub_jobs_failed_total\{kind="test\.fail"\} 6\n/);

  // A queued job may be cancelled, a done or cancelled one not; unknown ids are errors.
  assert.match(server.cli(["jobs", "cancel", String(id)], { check: true }).stdout, /cancelled/);
  assert.equal(job(id).state, "cancelled");
  assert.notEqual(server.cli(["jobs", "cancel", String(id)]).status, 0);
  assert.notEqual(server.cli(["jobs", "retry", "999999"]).status, 0);
  assert.equal(server.cli(["jobs", "retry", "x"]).status, 2);
  assert.equal(jobs("--state", "cancelled", "--kind", "test.fail").length, 1);
});

test("a job cut short by SIGKILL runs again after the restart, once in effect", async () => {
  const id = addJob("test.slow", "--payload", "4000");
  const logFile = path.join(server.dataDir, "tmp", `test-job-${id}.log`);
  await until("the job to start", () => existsSync(logFile) && readFileSync(logFile, "utf8").includes("start 1"));
  const running = job(id);
  assert.equal(running.state, "running");
  // SIGKILL the process running it (node 1 unless MODELHUB_E2E_NODES: the lease names its pid)
  const runner = server.nodes.find((n) => running.lease_owner.includes(`:${n.pid}:`));
  if (!runner || runner.index === 1) await server.crashAndRestart();
  else {
    await runner.kill("SIGKILL");
    await runner.start();
  }
  // The dead node's lease (1.5 s here) runs out; the new process claims the job again.
  const j = await until("the job to finish", () => {
    const x = job(id);
    return x?.state === "done" && x;
  }, 30000);
  assert.equal(j.attempts, 2);
  assert.equal(readFileSync(logFile, "utf8"), "start 1\nstart 2\ndone\n");
});

test("past MODELHUB_MAX_STREAMS a streamed response answers 503 with Retry-After", async () => {
  // Two 12 MB incompressible files: the pack of a clone is far larger than socket buffers,
  // so a client that stops reading keeps its stream (and producer thread) alive.
  await createRepo({ repo: "alice/big", accessToken: alice, hubUrl: server.url });
  const files = [randomBytes(12 * 1024 * 1024), randomBytes(12 * 1024 * 1024)];
  const ndjson =
    JSON.stringify({ key: "header", value: { summary: "big" } }) +
    "\n" +
    files
      .map((f, i) => JSON.stringify({ key: "file", value: { path: `f${i}.bin`, content: f.toString("base64"), encoding: "base64" } }))
      .join("\n") +
    "\n";
  const c = await fetch(`${server.url}/api/models/alice/big/commit/main`, {
    method: "POST",
    headers: { Authorization: `Bearer ${alice}`, "Content-Type": "application/x-ndjson" },
    body: ndjson,
  });
  const cj = await c.json();
  assert.equal(c.status, 200, JSON.stringify(cj));
  const sha = cj.commitOid;
  assert.match(sha, /^[0-9a-f]{40}$/);

  const want = `want ${sha}\n`;
  const body = `${(want.length + 4).toString(16).padStart(4, "0")}${want}00000009done\n`;
  const url = new URL(`${server.url}/alice/big.git/git-upload-pack`);
  const held = await new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: "POST",
        headers: { "Content-Type": "application/x-git-upload-pack-request" } },
      (res) => {
        res.once("data", () => {
          res.pause(); // stop reading: the stream stays open
          resolve(res);
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
  assert.equal(held.statusCode, 200);

  const refs = () => fetch(`${server.url}/alice/big.git/info/refs?service=git-upload-pack`);
  const busy = await refs();
  await busy.arrayBuffer();
  assert.equal(busy.status, 503);
  assert.equal(busy.headers.get("x-error-code"), "ServiceUnavailable");
  assert.match(busy.headers.get("retry-after") ?? "", /^\d+$/);

  // Reading the held stream to its end frees the slot.
  let got = 0;
  held.on("data", (d) => (got += d.length));
  const ended = new Promise((r) => held.on("end", r));
  held.resume();
  await ended;
  assert.ok(got > 20 * 1024 * 1024, `pack of ${got} bytes`);
  const ok = await until("a free stream slot", async () => {
    const r = await refs();
    await r.arrayBuffer();
    return r.status === 200;
  }, 5000);
  assert.ok(ok);
  assert.match(await metrics(), /modelhub_http_requests_total\{.*status="503"\} [1-9]/);
});
