// Webhooks (docs/webhooks.md): the Hub's /api/settings/webhooks API as huggingface_hub
// calls it, payloads (version 3) for commits, pushes, merges, branches, visibility
// changes, moves, discussions and comments, delivery in order per webhook with retries through receiver failures (500,
// timeout, connection refused) and across a SIGKILL, replay, the delivery log, no
// redirects followed, private targets refused without MODELHUB_WEBHOOK_ALLOW_PRIVATE,
// automatic disabling, and no events of a repo its watcher can no longer read.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import http from "node:http";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { isolatedGitEnv } from "./lib/gitenv.mjs";
import { startServer, freePort } from "./lib/server.mjs";

let server;
let admin;
let work;
let gitEnv;
let pauseFile;
let recv;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A receiver on loopback: records every request; `mode` says how it answers. */
async function receiver(port = 0) {
  const r = {
    got: [],
    mode: "ok", // "ok" | "500" | "hang" (never answers: the hub times out)
    port,
    server: null,
    sockets: new Set(),
    async open() {
      this.server = http.createServer((req, res) => {
        let body = "";
        req.on("data", (d) => (body += d));
        req.on("end", () => {
          const rec = { path: req.url, headers: req.headers, body, json: undefined, mode: this.mode };
          try {
            rec.json = JSON.parse(body);
          } catch {}
          this.got.push(rec);
          if (req.url.startsWith("/redirect")) {
            res.writeHead(302, { Location: `http://127.0.0.1:${this.port}/redirected` });
            return res.end();
          }
          if (this.mode === "hang" && !req.url.startsWith("/other")) return; // left open
          if (this.mode === "500" && !req.url.startsWith("/other")) {
            res.writeHead(500);
            return res.end("receiver down");
          }
          res.writeHead(200, { "Content-Type": "text/plain" });
          res.end("thanks " + "x".repeat(3000)); // longer than the 1 KB kept
        });
      });
      this.server.on("connection", (s) => {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
      });
      await new Promise((ok) => this.server.listen(this.port, "127.0.0.1", ok));
      this.port = this.server.address().port;
    },
    async close() {
      for (const s of this.sockets) s.destroy();
      await new Promise((ok) => this.server.close(ok));
    },
    url(p) {
      return `http://127.0.0.1:${this.port}${p}`;
    },
    on(p) {
      return this.got.filter((g) => g.path === p);
    },
    // At least once: an attempt the hub timed out on (this process was busy, e.g. in a
    // spawnSync git) may arrive again. One per delivery id, checking that ids never go
    // backwards (a webhook's deliveries go out in order).
    unique(p) {
      const seen = new Set();
      let last = 0;
      const out = [];
      for (const g of this.on(p).filter((x) => x.mode === "ok" || x.path.startsWith("/redirect"))) {
        const id = Number(g.headers["x-webhook-delivery"]);
        assert.ok(id >= last, `delivery ${id} after ${last} on ${p}`);
        last = id;
        if (!seen.has(id)) out.push(g);
        seen.add(id);
      }
      return out;
    },
  };
  await r.open();
  return r;
}

async function api(srv, method, p, { token = admin, json, headers = {}, body } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    body = JSON.stringify(json);
    h["Content-Type"] = "application/json";
  }
  const res = await fetch(srv.url + p, { method, headers: h, body });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, text, json: parsed };
}

async function commit(srv, repo, files, { rev = "main", createPr = false, token = admin } = {}) {
  const lines = [{ key: "header", value: { summary: "hook", description: "" } }];
  for (const [p, content] of Object.entries(files))
    lines.push({
      key: "file",
      value: { path: p, content: Buffer.from(content).toString("base64"), encoding: "base64" },
    });
  const r = await api(srv, "POST", `/api/models/${repo}/commit/${encodeURIComponent(rev)}${createPr ? "?create_pr=1" : ""}`, {
    token,
    headers: { "Content-Type": "application/x-ndjson" },
    body: lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
  });
  assert.equal(r.status, 200, r.text);
  return r.json.commitOid;
}

async function createRepo(srv, name, token = admin) {
  const r = await api(srv, "POST", "/api/repos/create", { token, json: { name } });
  assert.equal(r.status, 200, r.text);
}

async function head(srv, repo) {
  const r = await api(srv, "GET", `/api/models/${repo}/revision/main`);
  return r.json.sha;
}

async function createHook(srv, body, token = admin) {
  const r = await api(srv, "POST", "/api/settings/webhooks", { token, json: body });
  assert.equal(r.status, 200, r.text);
  return r.json.webhook;
}

async function deliveries(srv, id, token = admin) {
  const r = await api(srv, "GET", `/api/settings/webhooks/${id}/deliveries?limit=100`, { token });
  assert.equal(r.status, 200, r.text);
  return r.json.deliveries;
}

async function waitFor(fn, ms = 15000, what = "condition") {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function git(args, { cwd = work, ok = true } = {}) {
  const r = spawnSync("git", args, { cwd, env: gitEnv, encoding: "utf8", timeout: 60000 });
  if (r.error) throw r.error;
  if (ok && r.status !== 0) throw new Error(`git ${args.join(" ")} exited ${r.status}\n${r.stderr}`);
  return r;
}

function remote(srv, repo) {
  return `http://hf_user:${admin}@${new URL(srv.url).host}/${repo}`;
}

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), "modelhub-webhooks-e2e-"));
  pauseFile = path.join(work, "pause-consumers");
  recv = await receiver();
  server = await startServer({
    env: {
      MODELHUB_WEBHOOK_ALLOW_PRIVATE: "1",
      MODELHUB_WEBHOOK_TIMEOUT_MS: "700",
      MODELHUB_WEBHOOK_BACKOFF_MS: "100",
      MODELHUB_WEBHOOK_ATTEMPTS: "12",
      MODELHUB_JOB_LEASE_MS: "1500",
      MODELHUB_TEST_PAUSE_CONSUMERS: pauseFile,
    },
  });
  admin = server.adminToken;
  gitEnv = isolatedGitEnv(path.join(work, "home"));
  git(["config", "--global", "init.defaultBranch", "main"]);
});

after(async () => {
  if (recv) await recv.close();
  if (server) await server.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("the settings API answers what huggingface_hub sends and reads, per user, audited", async () => {
  await createRepo(server, "api-shape");
  // create_webhook: {watched, url, domains?, secret?} → {webhook: WebhookInfo}
  let r = await api(server, "POST", "/api/settings/webhooks", {
    json: {
      watched: [{ type: "model", name: "admin/api-shape" }, { type: "user", name: "admin" }],
      url: recv.url("/shape"),
      domains: ["repo"],
      secret: "s3cret",
    },
  });
  assert.equal(r.status, 200, r.text);
  const w = r.json.webhook;
  assert.match(w.id, /^[0-9a-f]{24}$/);
  assert.equal(w.url, recv.url("/shape"));
  assert.deepEqual(w.watched, [{ type: "model", name: "admin/api-shape" }, { type: "user", name: "admin" }]);
  assert.deepEqual(w.domains, ["repo"]);
  assert.equal(w.secret, "s3cret");
  assert.equal(w.disabled, false);
  assert.equal(w.job, null);
  // list_webhooks: a bare array; get_webhook: {webhook}
  r = await api(server, "GET", "/api/settings/webhooks");
  assert.ok(Array.isArray(r.json) && r.json.some((x) => x.id === w.id));
  r = await api(server, "GET", `/api/settings/webhooks/${w.id}`);
  assert.equal(r.json.webhook.id, w.id);
  // update_webhook sends watched [] when the caller leaves it out: the list is kept
  r = await api(server, "POST", `/api/settings/webhooks/${w.id}`, {
    json: { watched: [], url: recv.url("/shape2"), domains: ["repo", "discussion"] },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.webhook.url, recv.url("/shape2"));
  assert.equal(r.json.webhook.watched.length, 2);
  assert.deepEqual(r.json.webhook.domains, ["repo", "discussion"]);
  assert.equal(r.json.webhook.secret, "s3cret");
  // disable / enable
  r = await api(server, "POST", `/api/settings/webhooks/${w.id}/disable`);
  assert.equal(r.json.webhook.disabled, true);
  r = await api(server, "POST", `/api/settings/webhooks/${w.id}/enable`);
  assert.equal(r.json.webhook.disabled, false);

  // Bad input: HF-style errors
  const bad = [
    { watched: [{ type: "model", name: "admin/api-shape" }], url: "ftp://x/y" },
    { watched: [{ type: "repo", name: "admin/api-shape" }], url: recv.url("/x") },
    { watched: [], url: recv.url("/x") },
    { watched: [{ type: "model", name: "admin/nope" }], url: recv.url("/x") },
    { watched: [{ type: "model", name: "admin/api-shape" }], url: recv.url("/x"), domains: ["pushes"] },
  ];
  for (const body of bad) {
    r = await api(server, "POST", "/api/settings/webhooks", { json: body });
    assert.equal(r.status, 400, JSON.stringify(body) + " → " + r.text);
    assert.ok(r.headers.get("x-error-message"), "X-Error-Message on " + JSON.stringify(body));
  }

  // Another user neither sees nor changes it; a read token cannot manage webhooks.
  const bob = server.makeUser("bob-shape");
  r = await api(server, "GET", `/api/settings/webhooks/${w.id}`, { token: bob });
  assert.equal(r.status, 404);
  r = await api(server, "DELETE", `/api/settings/webhooks/${w.id}`, { token: bob });
  assert.equal(r.status, 404);
  r = await api(server, "GET", "/api/settings/webhooks", { token: bob });
  assert.deepEqual(r.json, []);
  const reader = server.makeToken("bob-shape", "read");
  r = await api(server, "GET", "/api/settings/webhooks", { token: reader });
  assert.equal(r.status, 403);
  r = await api(server, "GET", "/api/settings/webhooks", { token: null });
  assert.equal(r.status, 401);

  // delete_webhook
  r = await api(server, "DELETE", `/api/settings/webhooks/${w.id}`);
  assert.equal(r.status, 200);
  r = await api(server, "GET", `/api/settings/webhooks/${w.id}`);
  assert.equal(r.status, 404);

  r = await api(server, "GET", "/api/admin/audit-log?action=webhook.");
  const actions = r.json.filter((e) => e.target === `webhook:${w.id}`).map((e) => e.action).sort();
  assert.deepEqual(actions, ["webhook.create", "webhook.delete", "webhook.disable", "webhook.enable", "webhook.update"]);
});

test("commits, pushes, branches, a PR merge and a visibility change each deliver the right payload with the secret", async () => {
  const repo = "admin/payloads";
  const ns = await createHook(server, {
    watched: [{ type: "user", name: "admin" }],
    url: recv.url("/ns"),
    domains: ["repo"],
  });
  await createRepo(server, "payloads");
  const created = await head(server, repo);
  const hook = await createHook(server, {
    watched: [{ type: "model", name: repo }],
    url: recv.url("/payloads"),
    domains: ["repo"],
    secret: "topsecret",
  });
  const expected = [];
  const content = (ref, oldSha, newSha) => ({ scope: "repo.content", action: "update", refs: [{ ref, oldSha, newSha }] });

  let prev = created;
  let sha = await commit(server, repo, { "a.txt": "a\n" });
  expected.push(content("refs/heads/main", prev, sha));
  prev = sha;

  let r = await api(server, "POST", `/api/models/${repo}/branch/dev`, { json: {} });
  assert.equal(r.status, 200, r.text);
  expected.push(content("refs/heads/dev", null, prev));
  r = await api(server, "DELETE", `/api/models/${repo}/branch/dev`);
  assert.equal(r.status, 200, r.text);
  expected.push(content("refs/heads/dev", prev, null));

  const pr = await commit(server, repo, { "pr.txt": "pr\n" }, { createPr: true });
  expected.push(content("refs/pr/1", null, pr));
  r = await api(server, "POST", `/api/models/${repo}/discussions/1/merge`, { json: {} });
  assert.equal(r.status, 200, r.text);
  expected.push(content("refs/heads/main", prev, r.json.mergeCommitId));
  prev = r.json.mergeCommitId;

  const clone = path.join(work, "payloads-clone");
  git(["clone", remote(server, repo), clone]);
  writeFileSync(path.join(clone, "pushed.txt"), "pushed\n");
  git(["add", "pushed.txt"], { cwd: clone });
  git(["commit", "-m", "push"], { cwd: clone });
  git(["push", "origin", "main"], { cwd: clone });
  const pushed = git(["rev-parse", "HEAD"], { cwd: clone }).stdout.trim();
  expected.push(content("refs/heads/main", prev, pushed));
  git(["push", "origin", "main:refs/heads/feature"], { cwd: clone });
  expected.push(content("refs/heads/feature", null, pushed));

  r = await api(server, "PUT", `/api/models/${repo}/settings`, { json: { private: true } });
  assert.equal(r.status, 200, r.text);
  expected.push({ scope: "repo.config", action: "update", config: { private: true } });

  const got = await waitFor(() => recv.unique("/payloads").length >= expected.length && recv.unique("/payloads"), 20000, "payloads");
  assert.equal(got.length, expected.length, "one delivery per change");
  got.forEach((g, i) => {
    const want = expected[i];
    const p = g.json;
    assert.equal(g.headers["x-webhook-secret"], "topsecret");
    assert.equal(g.headers["content-type"], "application/json");
    assert.deepEqual(p.event, { action: want.action, scope: want.scope }, `delivery ${i}`);
    assert.equal(p.repo.type, "model");
    assert.equal(p.repo.name, repo);
    assert.match(p.repo.id, /^[0-9a-f]{24}$/);
    assert.match(p.repo.owner.id, /^[0-9a-f]{24}$/);
    assert.ok(p.repo.url.web.endsWith(`/${repo}`) && p.repo.url.api.endsWith(`/api/models/${repo}`));
    assert.deepEqual(p.webhook, { id: hook.id, version: 3 });
    if (want.refs) assert.deepEqual(p.updatedRefs, want.refs, `delivery ${i}`);
    if (want.config) {
      assert.deepEqual(p.updatedConfig, want.config);
      assert.equal(p.repo.private, true);
    }
  });
  // The namespace watcher saw the repo being created, without a secret header.
  const nsGot = await waitFor(() => recv.on("/ns").find((g) => g.json.event.scope === "repo"), 10000, "repo create");
  assert.deepEqual(nsGot.json.event, { action: "create", scope: "repo" });
  assert.equal(nsGot.json.repo.name, repo);
  assert.equal(nsGot.headers["x-webhook-secret"], undefined);

  // The delivery log: status, latency, a response excerpt of at most 1 KB. The receiver
  // has the last payload a moment before the deliverer records its answer: wait for that.
  const log = await waitFor(async () => {
    const l = await deliveries(server, hook.id);
    return l.length === expected.length && l.every((d) => d.state !== "pending") ? l : null;
  }, 10000, "every delivery recorded");
  assert.equal(log.length, expected.length);
  for (const d of log) {
    assert.equal(d.state, "ok");
    assert.equal(d.status, 200);
    assert.equal(typeof d.latencyMs, "number");
    assert.ok(d.response.startsWith("thanks") && d.response.length <= 1024, d.response.length);
  }
  await api(server, "DELETE", `/api/settings/webhooks/${ns.id}`);
  await api(server, "DELETE", `/api/settings/webhooks/${hook.id}`);
});

test("discussions, comments, a PR opened by commit and its merge deliver discussion payloads", async () => {
  const repo = "admin/talk";
  await createRepo(server, "talk");
  const hook = await createHook(server, { watched: [{ type: "model", name: repo }], url: recv.url("/talk"), domains: ["discussion"], secret: "d" });
  const repoOnly = await createHook(server, { watched: [{ type: "model", name: repo }], url: recv.url("/talk-repo"), domains: ["repo"] });
  let r = await api(server, "POST", `/api/models/${repo}/discussions`, { json: { title: "Hello there", description: "first" } });
  assert.equal(r.status, 200, r.text);
  const num = r.json.num;
  r = await api(server, "POST", `/api/models/${repo}/discussions/${num}/comment`, { json: { comment: "a comment" } });
  assert.equal(r.status, 200, r.text);
  const pr = await commit(server, repo, { "pr.txt": "pr\n" }, { createPr: true });
  r = await api(server, "GET", `/api/models/${repo}/discussions`);
  const prNum = r.json.discussions.find((d) => d.isPullRequest).num;
  r = await api(server, "POST", `/api/models/${repo}/discussions/${prNum}/merge`, { json: {} });
  assert.equal(r.status, 200, r.text);
  const got = await waitFor(() => recv.unique("/talk").length >= 4 && recv.unique("/talk"), 15000, "discussion payloads");
  assert.equal(got.length, 4);
  const [open, comment, prOpen, merged] = got.map((g) => g.json);
  assert.equal(got[0].headers["x-webhook-secret"], "d");
  assert.deepEqual(open.event, { action: "create", scope: "discussion" });
  assert.equal(open.discussion.num, num);
  assert.equal(open.discussion.title, "Hello there");
  assert.equal(open.discussion.isPullRequest, false);
  assert.equal(open.discussion.author.name, "admin");
  assert.equal(open.repo.name, repo);
  assert.deepEqual(comment.event, { action: "create", scope: "discussion.comment" });
  assert.equal(comment.discussion.num, num);
  assert.equal(comment.comment.content, "a comment");
  assert.match(comment.comment.id, /^[0-9a-f]{24}$/);
  assert.deepEqual(prOpen.event, { action: "create", scope: "discussion" });
  assert.equal(prOpen.discussion.num, prNum);
  assert.equal(prOpen.discussion.isPullRequest, true);
  assert.deepEqual(merged.event, { action: "update", scope: "discussion" });
  assert.equal(merged.discussion.status, "merged");
  assert.ok(!open.updatedRefs && !merged.updatedRefs);
  // The repo-domain webhook got the ref moves only (refs/pr/N, then main), not the threads.
  const refs = await waitFor(() => recv.unique("/talk-repo").length >= 2 && recv.unique("/talk-repo"), 10000, "ref moves");
  assert.deepEqual(refs.map((g) => g.json.event.scope), ["repo.content", "repo.content"]);
  assert.equal(refs[0].json.updatedRefs[0].newSha, pr);
  await sleep(200);
  assert.equal(recv.unique("/talk-repo").length, 2);
  await api(server, "DELETE", `/api/settings/webhooks/${hook.id}`);
  await api(server, "DELETE", `/api/settings/webhooks/${repoOnly.id}`);
});

test("a repo move delivers movedTo; a watcher who loses read access gets nothing more", async () => {
  const bob = server.makeUser("bob-watch");
  await createRepo(server, "moving");
  await createRepo(server, "going-private");
  const hook = await createHook(server, {
    watched: [{ type: "model", name: "admin/moving" }, { type: "model", name: "admin/going-private" }],
    url: recv.url("/bob"),
  }, bob);
  let r = await api(server, "POST", "/api/repos/move", { json: { fromRepo: "admin/moving", toRepo: "admin/moved" } });
  assert.equal(r.status, 200, r.text);
  const mv = await waitFor(() => recv.unique("/bob")[0], 10000, "move");
  assert.deepEqual(mv.json.event, { action: "move", scope: "repo" });
  assert.equal(mv.json.repo.name, "admin/moving");
  assert.equal(mv.json.movedTo.name, "admin/moved");
  assert.match(mv.json.movedTo.owner.id, /^[0-9a-f]{24}$/);
  await commit(server, "admin/going-private", { "public.txt": "public\n" });
  await waitFor(() => recv.unique("/bob").length >= 2, 10000, "public commit");

  // The repo goes private: bob cannot read it any more, so neither the visibility change
  // nor later commits reach his webhook (nor his delivery log).
  r = await api(server, "PUT", "/api/models/admin/going-private/settings", { json: { private: true } });
  assert.equal(r.status, 200, r.text);
  await commit(server, "admin/going-private", { "secret.txt": "private\n" });
  // A public commit elsewhere that bob's second webhook sees proves the consumer moved on.
  await createRepo(server, "after-private");
  const probe = await createHook(server, { watched: [{ type: "model", name: "admin/after-private" }], url: recv.url("/probe") }, bob);
  await commit(server, "admin/after-private", { "p.txt": "p\n" });
  await waitFor(() => recv.unique("/probe").length >= 1, 10000, "probe");
  await sleep(200);
  assert.equal(recv.unique("/bob").length, 2, "nothing of the private repo reached bob");
  const log = await deliveries(server, hook.id, bob);
  assert.equal(log.length, 2);
  await api(server, "DELETE", `/api/settings/webhooks/${hook.id}`, { token: bob });
  await api(server, "DELETE", `/api/settings/webhooks/${probe.id}`, { token: bob });
});

test("a receiver failing (500, timeout, connection refused) then recovering gets every event, in order", async () => {
  await createRepo(server, "flaky");
  const hook = await createHook(server, { watched: [{ type: "model", name: "admin/flaky" }], url: recv.url("/flaky") });
  recv.mode = "500";
  const shas = [];
  shas.push(await commit(server, "admin/flaky", { "1.txt": "1\n" }));
  shas.push(await commit(server, "admin/flaky", { "2.txt": "2\n" }));
  await waitFor(() => recv.on("/flaky").length >= 2, 10000, "two failed attempts");
  recv.mode = "hang";
  await waitFor(() => recv.on("/flaky").some((g) => g.mode === "hang"), 10000, "a timed-out attempt");
  await recv.close(); // connection refused for a while
  shas.push(await commit(server, "admin/flaky", { "3.txt": "3\n" }));
  await sleep(1200);
  recv.mode = "ok";
  await recv.open();
  const ok = await waitFor(() => recv.unique("/flaky").length >= 3 && recv.unique("/flaky"), 30000, "all three delivered");
  // Only the first event was tried while the receiver failed: the others waited their turn.
  const failed = recv.on("/flaky").filter((g) => g.mode !== "ok");
  assert.ok(failed.every((g) => g.json.updatedRefs[0].newSha === shas[0]), "later deliveries waited");
  assert.deepEqual(ok.map((g) => g.json.updatedRefs[0].newSha), shas, "in order, each once");
  const log = (await deliveries(server, hook.id)).reverse();
  assert.deepEqual(log.map((d) => d.state), ["ok", "ok", "ok"]);
  assert.ok(log[0].attempts >= 3, `first delivery took ${log[0].attempts} attempts`);
  await api(server, "DELETE", `/api/settings/webhooks/${hook.id}`);
});

test("deliveries pending when the server is SIGKILLed arrive after the restart, in order", async () => {
  await createRepo(server, "crashy");
  const hook = await createHook(server, { watched: [{ type: "model", name: "admin/crashy" }], url: recv.url("/crash") });
  await recv.close(); // refused: the first delivery is retried
  const a = await commit(server, "admin/crashy", { "a.txt": "a\n" });
  await waitFor(async () => (await deliveries(server, hook.id)).some((d) => d.attempts >= 1), 10000, "an attempt");
  writeFileSync(pauseFile, ""); // the next event stays unconsumed
  const b = await commit(server, "admin/crashy", { "b.txt": "b\n" });
  process.kill(server.pid, "SIGKILL");
  rmSync(pauseFile, { force: true });
  await recv.open();
  await server.crashAndRestart();
  const got = await waitFor(() => recv.unique("/crash").length >= 2 && recv.unique("/crash"), 20000, "both after restart");
  assert.deepEqual(got.map((g) => g.json.updatedRefs[0].newSha), [a, b]);
  await api(server, "DELETE", `/api/settings/webhooks/${hook.id}`);
});

test("replay sends a delivery's payload again and logs it", async () => {
  await createRepo(server, "replay");
  const hook = await createHook(server, { watched: [{ type: "model", name: "admin/replay" }], url: recv.url("/replay"), secret: "r" });
  await commit(server, "admin/replay", { "a.txt": "a\n" });
  await waitFor(() => recv.unique("/replay").length === 1, 10000, "first");
  const [d] = await deliveries(server, hook.id);
  let r = await api(server, "POST", `/api/settings/webhooks/${hook.id}/deliveries/${d.id}/replay`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.delivery.replayOf, d.id);
  await waitFor(() => recv.unique("/replay").length === 2, 10000, "replayed");
  const [first, again] = recv.unique("/replay");
  assert.equal(again.body, first.body);
  assert.equal(again.headers["x-webhook-secret"], "r");
  r = await api(server, "POST", `/api/settings/webhooks/${hook.id}/deliveries/999999/replay`);
  assert.equal(r.status, 404);
  const bob = server.makeUser("bob-replay");
  r = await api(server, "POST", `/api/settings/webhooks/${hook.id}/deliveries/${d.id}/replay`, { token: bob });
  assert.equal(r.status, 404);
  // The settings page shows the webhook and its deliveries.
  const page = await fetch(`${server.url}/settings/webhooks`, { headers: { Authorization: `Bearer ${admin}` } });
  const html = await page.text();
  assert.equal(page.status, 200);
  assert.ok(html.includes(recv.url("/replay")) && html.includes("repo.content"), "page lists the webhook");
  await api(server, "DELETE", `/api/settings/webhooks/${hook.id}`);
});

test("a redirect is not followed", async () => {
  await createRepo(server, "redir");
  const hook = await createHook(server, { watched: [{ type: "model", name: "admin/redir" }], url: recv.url("/redirect") });
  await commit(server, "admin/redir", { "a.txt": "a\n" });
  const d = await waitFor(async () => (await deliveries(server, hook.id)).find((x) => x.attempts >= 1), 10000, "an attempt");
  assert.equal(d.status, 302);
  assert.match(d.error, /redirect/);
  assert.equal(d.state, "pending"); // retried, never followed
  await sleep(300);
  assert.equal(recv.on("/redirected").length, 0);
  await api(server, "DELETE", `/api/settings/webhooks/${hook.id}`);
});

test("without MODELHUB_WEBHOOK_ALLOW_PRIVATE private targets are refused; give-ups disable a webhook until enabled by hand", async () => {
  const strict = await startServer({ env: { MODELHUB_WEBHOOK_DISABLE_AFTER: "2", MODELHUB_WEBHOOK_ATTEMPTS: "3" } });
  try {
    const tok = strict.adminToken;
    await createRepo(strict, "strict", tok);
    let r = await api(strict, "POST", "/api/settings/webhooks", {
      token: tok,
      json: { watched: [{ type: "model", name: "admin/strict" }], url: recv.url("/strict") },
    });
    assert.equal(r.status, 400, r.text);
    assert.match(r.headers.get("x-error-message"), /private or loopback/);
    for (const u of ["http://10.1.2.3/x", "http://[::1]:9/x", "http://169.254.169.254/latest"]) {
      r = await api(strict, "POST", "/api/settings/webhooks", { token: tok, json: { watched: [{ type: "model", name: "admin/strict" }], url: u } });
      assert.equal(r.status, 400, u);
    }
    // A name is checked when the connection is made: localhost resolves to loopback.
    const hook = await createHook(strict, { watched: [{ type: "model", name: "admin/strict" }], url: `http://localhost:${recv.port}/strict` }, tok);
    const before = recv.on("/strict").length;
    await commit(strict, "admin/strict", { "1.txt": "1\n" }, { token: tok });
    await commit(strict, "admin/strict", { "2.txt": "2\n" }, { token: tok });
    const w = await waitFor(async () => {
      const x = await api(strict, "GET", `/api/settings/webhooks/${hook.id}`, { token: tok });
      return x.json.webhook.disabled && x.json.webhook;
    }, 15000, "disabled after two give-ups");
    assert.equal(w.disabledReason, "failures");
    assert.equal(w.failures, 2);
    const log = await deliveries(strict, hook.id, tok);
    assert.ok(log.length === 2 && log.every((d) => d.state === "failed" && /refused|private|loopback/i.test(d.error)), JSON.stringify(log));
    assert.equal(recv.on("/strict").length, before, "nothing reached the receiver");
    // Events while disabled are not delivered; enabling by hand resets the run.
    await commit(strict, "admin/strict", { "3.txt": "3\n" }, { token: tok });
    r = await api(strict, "POST", `/api/settings/webhooks/${hook.id}/enable`, { token: tok });
    assert.equal(r.json.webhook.disabled, false);
    assert.equal(r.json.webhook.failures, 0);
    const page = await (await fetch(`${strict.url}/settings/webhooks`, { headers: { Authorization: `Bearer ${tok}` } })).text();
    assert.ok(page.includes("enabled"));
  } finally {
    await strict.stop();
  }
});
