// Several nodes (docs/scale-out.md, "Several nodes"): two `modelhub serve` processes on one
// data dir (git repos, SQLite in WAL mode, secrets) and one blob store (the data dir, or an
// S3 bucket with MODELHUB_E2E_STORE=s3) behind a round-robin nginx. Races across nodes lose
// no acknowledged commit and hand out unique PR numbers; bytes uploaded on one node come
// back byte-exact from the other (LFS, git-lfs, Xet); tokens, sessions and signed URLs are
// valid on both; one node SIGKILLed mid-upload, mid-commit and mid-job leaves the other
// serving, nothing acknowledged lost, no half-written object visible, jobs done once; event
// consumers (webhook deliveries) run once across nodes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { createRepo, downloadFile, uploadFiles } from "@huggingface/hub";
import { isolatedGitEnv } from "./lib/gitenv.mjs";
import { startServer } from "./lib/server.mjs";

let server;
let admin;
let alice;
let work;
let gitEnv;
let hookRecv;
const PASSWORD = "correct horse battery staple 42";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

async function api(base, method, p, { token = admin, json, headers = {}, body } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    body = JSON.stringify(json);
    h["Content-Type"] = "application/json";
  }
  const res = await fetch(p.startsWith("http") ? p : base + p, { method, headers: h, body, redirect: "manual" });
  const buf = Buffer.from(await res.arrayBuffer());
  let parsed;
  try {
    parsed = JSON.parse(buf.toString("utf8"));
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, buf, text: buf.toString("utf8"), json: parsed };
}

function commitBody(files, summary = "scale-out") {
  const lines = [{ key: "header", value: { summary, description: "" } }];
  for (const [p, content] of Object.entries(files))
    lines.push({ key: "file", value: { path: p, content: Buffer.from(content).toString("base64"), encoding: "base64" } });
  return lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
}

async function commit(base, repo, files, { token = alice, rev = "main", parent } = {}) {
  let body = commitBody(files);
  if (parent) {
    const lines = body.trim().split("\n").map((l) => JSON.parse(l));
    lines[0].value.parentCommit = parent;
    body = lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
  }
  return api(base, "POST", `/api/models/${repo}/commit/${encodeURIComponent(rev)}`, {
    token,
    headers: { "Content-Type": "application/x-ndjson" },
    body,
  });
}

async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function git(args, { cwd = work, ok = true } = {}) {
  const r = spawnSync("git", args, { cwd, env: gitEnv, encoding: "utf8", timeout: 120000 });
  if (r.error) throw r.error;
  if (ok && r.status !== 0) throw new Error(`git ${args.join(" ")} exited ${r.status}\n${r.stderr}`);
  return r;
}

/** git, asynchronously (pushes that race with API commits). */
function gitAsync(args, cwd) {
  return new Promise((resolve) => {
    const c = spawn("git", args, { cwd, env: gitEnv });
    let stderr = "";
    c.stderr.on("data", (d) => (stderr += d));
    c.on("exit", (status) => resolve({ status, stderr }));
  });
}

const remote = (base, repo, token = alice) => `http://hf_user:${token}@${new URL(base).host}/${repo}`;
const nodeUrl = (i) => server.nodes[i].url;

function jobs(...args) {
  return JSON.parse(server.cli(["jobs", "list", "--json", "--limit", "1000", ...args], { check: true }).stdout);
}

/** A loopback webhook receiver that counts deliveries. */
async function receiver() {
  const got = [];
  const srv = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      try {
        got.push(JSON.parse(body));
      } catch {
        got.push({ raw: body });
      }
      res.writeHead(200).end("ok");
    });
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  return { got, url: `http://127.0.0.1:${srv.address().port}/hook`, close: () => new Promise((r) => srv.close(r)) };
}

before(async () => {
  hookRecv = await receiver();
  server = await startServer({
    nodes: 2,
    env: {
      MODELHUB_TEST_JOBS: "1",
      MODELHUB_JOB_LEASE_MS: "1500",
      MODELHUB_WEBHOOK_ALLOW_PRIVATE: "1",
      MODELHUB_WEBHOOK_BACKOFF_MS: "100",
      MODELHUB_LOGIN_MAX_FAILURES: "4",
      MODELHUB_TRUSTED_PROXIES: "127.0.0.1",
    },
  });
  assert.equal(server.nodes.length, 2);
  admin = server.adminToken;
  alice = server.makeUser("alice", "write");
  work = mkdtempSync(path.join(tmpdir(), "modelhub-scaleout-e2e-"));
  gitEnv = isolatedGitEnv(path.join(work, "home"));
  git(["config", "--global", "init.defaultBranch", "main"]);
  git(["config", "--global", "advice.detachedHead", "false"]);
});

after(async () => {
  if (hookRecv) await hookRecv.close();
  if (server) await server.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("requests through nginx land on both nodes; URLs the hub returns point back at nginx", async () => {
  const pids = new Set();
  for (let i = 0; i < 6; i++) {
    const r = await api(server.url, "GET", "/api/whoami-v2", { token: alice });
    assert.equal(r.status, 200, r.text);
  }
  // each node answers on its own port too, and both share the database
  for (const n of server.nodes) {
    const r = await api(n.url, "GET", "/api/whoami-v2", { token: alice });
    assert.equal(r.status, 200, `${n.url}: ${r.text}`);
    assert.equal(r.json.name, "alice");
    pids.add(n.pid);
  }
  assert.equal(pids.size, 2);
  await createRepo({ repo: "alice/urls", accessToken: alice, hubUrl: server.url });
  const b = await api(server.url, "POST", "/alice/urls.git/info/lfs/objects/batch", {
    token: alice,
    headers: { Accept: "application/vnd.git-lfs+json" },
    json: { operation: "upload", objects: [{ oid: "ab".repeat(32), size: 10 }] },
  });
  assert.equal(b.status, 200, b.text);
  assert.ok(b.json.objects[0].actions.upload.href.startsWith(server.url + "/"), b.json.objects[0].actions.upload.href);
  const x = await api(server.url, "GET", "/api/models/alice/urls/xet-write-token/main", { token: alice });
  assert.equal(x.status, 200, x.text);
  assert.equal(x.json.casUrl, `${server.url}/xet-cas`);
});

test("tokens, sessions and signed URLs made on one node are valid on the other", async () => {
  // token made through node 1's API, used on node 2
  const mk = await api(nodeUrl(0), "POST", "/api/settings/tokens", { token: alice, json: { name: "made-on-1", role: "read" } });
  if (mk.status === 200 && mk.json?.token) {
    const t = mk.json.token;
    const w = await api(nodeUrl(1), "GET", "/api/whoami-v2", { token: t });
    assert.equal(w.status, 200, w.text);
  }
  // a web session made on node 1 is a session on node 2
  const r = spawnSync(server.bin, ["--data", server.dataDir, "user", "add", "wendy", "--password-stdin"], {
    input: PASSWORD + "\n",
    encoding: "utf8",
    env: server.cliEnv,
  });
  assert.equal(r.status, 0, r.stderr);
  const page = await fetch(`${nodeUrl(0)}/login`);
  const csrf = /mh_login_csrf=([0-9a-f]{64})/.exec(page.headers.get("set-cookie"))[1];
  await page.text();
  const login = await fetch(`${nodeUrl(0)}/login`, {
    method: "POST",
    redirect: "manual",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Cookie: `mh_login_csrf=${csrf}` },
    body: new URLSearchParams({ csrf, username: "wendy", password: PASSWORD, next: "/settings/tokens" }).toString(),
  });
  assert.equal(login.status, 303);
  const cookies = login.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  for (const n of server.nodes) {
    const s = await fetch(`${n.url}/settings/tokens`, { headers: { Cookie: cookies }, redirect: "manual" });
    assert.equal(s.status, 200, `session on ${n.url}`);
    assert.match(await s.text(), /wendy/);
  }
  // a signed LFS upload URL from node 1, used on node 2; its download URL from node 2 on node 1
  await createRepo({ repo: "alice/signed", accessToken: alice, hubUrl: server.url });
  const data = randomBytes(100 * 1024);
  const oid = sha256(data);
  const up = await api(nodeUrl(0), "POST", "/alice/signed.git/info/lfs/objects/batch", {
    token: alice,
    headers: { Accept: "application/vnd.git-lfs+json" },
    json: { operation: "upload", objects: [{ oid, size: data.length }] },
  });
  assert.equal(up.status, 200, up.text);
  const act = up.json.objects[0].actions;
  const href = act.upload.href.replace(new URL(nodeUrl(0)).host, new URL(nodeUrl(1)).host);
  assert.notEqual(href, act.upload.href);
  const put = await fetch(href, { method: "PUT", headers: act.upload.header || {}, body: data });
  assert.ok(put.status === 200 || put.status === 201, `signed PUT on the other node: ${put.status} ${await put.text()}`);
  if (act.verify) {
    const vhref = act.verify.href.replace(new URL(nodeUrl(0)).host, new URL(nodeUrl(1)).host);
    const v = await api(nodeUrl(1), "POST", vhref, {
      token: null,
      headers: { ...(act.verify.header || {}), "Content-Type": "application/vnd.git-lfs+json" },
      body: JSON.stringify({ oid, size: data.length }),
    });
    assert.equal(v.status, 200, v.text);
  }
  const down = await api(nodeUrl(1), "POST", "/alice/signed.git/info/lfs/objects/batch", {
    token: alice,
    headers: { Accept: "application/vnd.git-lfs+json" },
    json: { operation: "download", objects: [{ oid, size: data.length }] },
  });
  assert.equal(down.status, 200, down.text);
  const dact = down.json.objects[0].actions.download;
  const dhref = dact.href.replace(new URL(nodeUrl(1)).host, new URL(nodeUrl(0)).host);
  const got = await fetch(dhref, { headers: dact.header || {} });
  assert.equal(got.status, 200);
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(data), "signed download on the other node");
});

test("failed logins count on every node: the limit is the same behind the load balancer", async () => {
  const r = spawnSync(server.bin, ["--data", server.dataDir, "user", "add", "lara", "--password-stdin"], {
    input: PASSWORD + "\n",
    encoding: "utf8",
    env: server.cliEnv,
  });
  assert.equal(r.status, 0, r.stderr);
  async function login(base, password) {
    const page = await fetch(`${base}/login`);
    const csrf = /mh_login_csrf=([0-9a-f]{64})/.exec(page.headers.get("set-cookie"))[1];
    await page.text();
    const res = await fetch(`${base}/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Cookie: `mh_login_csrf=${csrf}` },
      body: new URLSearchParams({ csrf, username: "lara", password, next: "/" }).toString(),
    });
    await res.text();
    return res.status;
  }
  // 4 failures (the limit here), alternating nodes: each node saw only 2 of them
  for (let i = 0; i < 4; i++) assert.equal(await login(nodeUrl(i % 2), `wrong-${i}`), 401);
  for (const n of server.nodes) assert.equal(await login(n.url, PASSWORD), 429, `locked on ${n.url}`);
});

test("races: 50 commits split over both nodes, pushes and PR creations: every acknowledged commit is in the history, PR numbers unique", async () => {
  const repo = "alice/race";
  await createRepo({ repo, accessToken: alice, hubUrl: server.url });
  const seed = await commit(nodeUrl(0), repo, { "seed.txt": "seed\n" });
  assert.equal(seed.status, 200, seed.text);

  // a clone to push from: each push adds a commit on its own branch, and one races for main
  const dir = path.join(work, "race-clone");
  git(["clone", remote(nodeUrl(1), repo), dir]);
  const pushes = [];
  for (let i = 0; i < 4; i++) {
    git(["checkout", "-q", "-B", `push-${i}`, "origin/main"], { cwd: dir });
    writeFileSync(path.join(dir, `push-${i}.txt`), `push ${i}\n`);
    git(["add", "--", `push-${i}.txt`], { cwd: dir });
    git(["commit", "-q", "-m", `push ${i}`], { cwd: dir });
    const sha = git(["rev-parse", "HEAD"], { cwd: dir }).stdout.trim();
    pushes.push({ i, sha });
  }

  const commits = [];
  for (let i = 0; i < 50; i++)
    commits.push(
      commit(nodeUrl(i % 2), repo, { [`c/${i}.txt`]: `commit ${i}\n` }).then((r) => ({ i, r })),
    );
  const pushRuns = pushes.map((p) =>
    gitAsync(["push", remote(nodeUrl(p.i % 2), repo), `push-${p.i}:refs/heads/push-${p.i}`], dir).then((r) => ({ ...p, r })),
  );
  const prs = [];
  for (let i = 0; i < 10; i++)
    prs.push(
      api(nodeUrl(i % 2), "POST", `/api/models/${repo}/discussions`, {
        token: alice,
        json: { title: `pr ${i}`, description: "race", pullRequest: true },
      }),
    );
  const [cr, pr, prr] = await Promise.all([Promise.all(commits), Promise.all(pushRuns), Promise.all(prs)]);

  const acked = cr.filter((c) => c.r.status === 200);
  for (const c of cr) assert.ok([200, 409, 429, 503].includes(c.r.status), `commit ${c.i}: ${c.r.status} ${c.r.text}`);
  assert.ok(acked.length >= 45, `most commits acknowledged (${acked.length}/50): ${cr.filter((c) => c.r.status !== 200).map((c) => c.r.text).join(" | ")}`);
  for (const p of pr) assert.equal(p.r.status, 0, `push ${p.i}: ${p.r.stderr}`);
  const nums = prr.map((r) => {
    assert.equal(r.status, 200, r.text);
    return r.json.num;
  });
  assert.equal(new Set(nums).size, nums.length, `PR numbers unique: ${nums}`);

  // every acknowledged commit is in main's history, with its file in the tree
  git(["fetch", "-q", remote(nodeUrl(0), repo), "+refs/heads/*:refs/remotes/check/*"], { cwd: dir });
  const history = new Set(git(["rev-list", "check/main"], { cwd: dir }).stdout.trim().split("\n"));
  for (const c of acked) assert.ok(history.has(c.r.json.commitOid), `commit ${c.i} (${c.r.json.commitOid}) in history`);
  const tree = git(["ls-tree", "-r", "--name-only", "check/main"], { cwd: dir }).stdout;
  for (const c of acked) assert.ok(tree.includes(`c/${c.i}.txt`), `c/${c.i}.txt in the tree`);
  for (const p of pushes) assert.equal(git(["rev-parse", `check/push-${p.i}`], { cwd: dir }).stdout.trim(), p.sha);
  // the PRs' refs exist, one per number
  const ls = git(["ls-remote", remote(nodeUrl(1), repo)], { cwd: dir }).stdout;
  for (const n of nums) assert.match(ls, new RegExp(`\trefs/pr/${n}\n`));
  // the recorded head (read-your-writes on either node) is the branch's head
  const head = git(["rev-parse", "check/main"], { cwd: dir }).stdout.trim();
  for (const n of server.nodes) {
    const info = await until(`head on ${n.url}`, async () => {
      const r = await api(n.url, "GET", `/api/models/${repo}`, { token: alice });
      return r.json?.sha === head && r;
    });
    assert.equal(info.json.sha, head);
  }
  // one commit event per acknowledged commit
  const all = [];
  for (let before = ""; ; ) {
    const ev = await api(server.url, "GET", `/api/admin/events?repo=${repo}&limit=64${before}`);
    assert.equal(ev.status, 200, ev.text);
    all.push(...ev.json.events);
    if (ev.json.events.length < 64) break;
    before = `&before=${ev.json.events[ev.json.events.length - 1].id}`;
  }
  const mainEvents = all.filter((e) => e.ref === "refs/heads/main");
  for (const c of [seed, ...acked.map((a) => a.r)]) {
    const sha = c.json.commitOid;
    const named = mainEvents.filter((e) => e.new === sha);
    assert.equal(named.length, 1, `one event for ${sha}: ${JSON.stringify(named)}`);
    assert.equal(named[0].kind, "commit", JSON.stringify(named[0]));
  }
});

test("repo and token cache: a change acknowledged by one node is what the other serves next, while it answers from its cache", async () => {
  // Node B answers this repo's info from its repo cache (PostgreSQL: rows younger than
  // MODELHUB_REPO_CACHE_MS) while node A flips it between private and public; whoever
  // asks B right after A acknowledged a flip sees the flip (the write fence, db/db.h).
  await createRepo({ repo: "alice/cached", accessToken: alice, hubUrl: server.url });
  const a = nodeUrl(0);
  const b = nodeUrl(1);
  let hammering = true;
  const hammer = async () => {
    while (hammering) await api(b, "GET", "/api/models/alice/cached", { token: null });
  };
  const hammers = [hammer(), hammer(), hammer()];
  try {
    for (let i = 0; i < 20; i++) {
      const priv = i % 2 === 0;
      const put = await api(a, "PUT", "/api/models/alice/cached/settings", { token: alice, json: { private: priv } });
      assert.equal(put.status, 200, put.text);
      const anon = await api(b, "GET", "/api/models/alice/cached", { token: null });
      assert.equal(anon.status, priv ? 404 : 200, `flip ${i}: node B answered ${anon.status} for private=${priv}`);
      const own = await api(b, "GET", "/api/models/alice/cached", { token: alice });
      assert.equal(own.status, 200, own.text);
      assert.equal(own.json.private, priv, `flip ${i}: node B says private=${own.json.private}`);
    }
  } finally {
    hammering = false;
    await Promise.all(hammers);
  }
  // The same for tokens: node B knows this one from its cache when A revokes it.
  const mk = await api(a, "POST", "/api/settings/tokens", { token: alice, json: { name: "cached", role: "read" } });
  assert.equal(mk.status, 200, mk.text);
  const tok = mk.json.token;
  let using = true;
  const user = async () => {
    while (using) await api(b, "GET", "/api/whoami-v2", { token: tok });
  };
  const users = [user(), user()];
  try {
    await sleep(50);
    assert.equal((await api(b, "GET", "/api/whoami-v2", { token: tok })).status, 200);
    const del = await api(a, "DELETE", `/api/settings/tokens/${mk.json.id}`, { token: alice });
    assert.equal(del.status, 200, del.text);
    const after = await api(b, "GET", "/api/whoami-v2", { token: tok });
    assert.equal(after.status, 401, "node B still took a token node A had revoked");
  } finally {
    using = false;
    await Promise.all(users);
  }
  if (server.dbEngine === "postgres") {
    const m = await api(b, "GET", "/metrics", { token: admin });
    const hits = Number((m.text.match(/^modelhub_db_repo_lookups_cached_total (\d+)/m) || [])[1]);
    assert.ok(hits > 0, "node B answered nothing from its repo cache: the test proved nothing");
    const th = Number((m.text.match(/^modelhub_db_token_lookups_cached_total (\d+)/m) || [])[1]);
    assert.ok(th > 0, "node B answered no token from its cache: the test proved nothing");
  }
});

test("behind a trusted proxy the client is the address X-Forwarded-For names (audit, login limits)", async () => {
  // nginx appends the address it was called from; MODELHUB_TRUSTED_PROXIES names nginx
  // (127.0.0.1 here, like every test client), so the hop before it is the client.
  const mk = (name, xff) =>
    api(server.url, "POST", "/api/repos/create", { token: alice, json: { name, type: "model" }, headers: xff ? { "X-Forwarded-For": xff } : {} });
  assert.equal((await mk("xff-a", "203.0.113.9")).status, 200);
  assert.equal((await mk("xff-b", "not an address")).status, 200);
  assert.equal((await mk("xff-c")).status, 200);
  const r = await api(server.url, "GET", "/api/admin/audit-log?action=repo.create&limit=500", { token: admin });
  assert.equal(r.status, 200, r.text);
  const ipOf = (name) => r.json.find((e) => e.action === "repo.create" && JSON.stringify(e).includes(`alice/${name}`))?.ip;
  assert.equal(ipOf("xff-a"), "203.0.113.9");
  assert.equal(ipOf("xff-b"), "127.0.0.1", "a malformed hop is not taken");
  assert.equal(ipOf("xff-c"), "127.0.0.1");
});

test("pinned commits from both nodes: exactly one wins per parent", async () => {
  const repo = "alice/pinned";
  await createRepo({ repo, accessToken: alice, hubUrl: server.url });
  const base = await commit(nodeUrl(0), repo, { "a.txt": "a\n" });
  assert.equal(base.status, 200, base.text);
  const parent = base.json.commitOid;
  const rs = await Promise.all(
    [0, 1, 2, 3, 4, 5].map((i) => commit(nodeUrl(i % 2), repo, { [`p${i}.txt`]: `${i}\n` }, { parent })),
  );
  const ok = rs.filter((r) => r.status === 200);
  assert.equal(ok.length, 1, rs.map((r) => `${r.status} ${r.text}`).join(" | "));
  for (const r of rs) if (r.status !== 200) assert.equal(r.status, 412, r.text); // stale parentCommit
});

test("upload on node A, download on node B byte-exact: @huggingface/hub LFS, git-lfs, Xet", async () => {
  const lfsData = randomBytes(3 * 1024 * 1024 + 17);
  const hubA = { repo: "alice/xnode", accessToken: alice, hubUrl: nodeUrl(0) };
  const hubB = { repo: "alice/xnode", accessToken: alice, hubUrl: nodeUrl(1) };
  await createRepo(hubA);
  await uploadFiles({ ...hubA, useXet: false, files: [{ path: "lfs.bin", content: new Blob([lfsData]) }] });
  const b1 = await downloadFile({ ...hubB, path: "lfs.bin" });
  assert.ok(Buffer.from(await b1.arrayBuffer()).equals(lfsData), "LFS: bytes from node B");

  const xetData = randomBytes(2 * 1024 * 1024 + 5);
  await uploadFiles({ ...hubB, useXet: true, files: [{ path: "xet.bin", content: new Blob([xetData]) }] });
  const b2 = await downloadFile({ ...hubA, path: "xet.bin", xet: true });
  assert.ok(Buffer.from(await b2.arrayBuffer()).equals(xetData), "Xet: bytes from node A");
  const b3 = await downloadFile({ ...hubA, path: "xet.bin" });
  assert.ok(Buffer.from(await b3.arrayBuffer()).equals(xetData), "Xet file through plain resolve on node A");

  // git-lfs: push through node A, clone through node B
  const dir = path.join(work, "lfs-push");
  git(["clone", remote(nodeUrl(0), "alice/xnode"), dir]);
  git(["lfs", "install", "--local"], { cwd: dir });
  git(["lfs", "track", "*.weights"], { cwd: dir });
  const payload = randomBytes(700 * 1024);
  writeFileSync(path.join(dir, "m.weights"), payload);
  git(["add", ".gitattributes", "m.weights"], { cwd: dir });
  git(["commit", "-q", "-m", "weights"], { cwd: dir });
  git(["push", remote(nodeUrl(0), "alice/xnode"), "main"], { cwd: dir });
  const other = path.join(work, "lfs-clone-b");
  git(["lfs", "install", "--skip-repo"]);
  git(["clone", remote(nodeUrl(1), "alice/xnode"), other]);
  assert.ok(readFileSync(path.join(other, "m.weights")).equals(payload), "git-lfs: smudged from node B");
  assert.ok(readFileSync(path.join(other, "lfs.bin")).equals(lfsData), "git-lfs: the API-uploaded file from node B");
});

test("event consumers run once across nodes: one webhook delivery per commit", async () => {
  const repo = "alice/hooked";
  await createRepo({ repo, accessToken: alice, hubUrl: server.url });
  const h = await api(server.url, "POST", "/api/settings/webhooks", {
    token: alice,
    json: { watched: [{ type: "model", name: repo }], url: hookRecv.url, domains: ["repo"] },
  });
  assert.equal(h.status, 200, h.text);
  // commits on both nodes at once: each node's dispatcher (before: one per node) is woken
  const shas = [];
  for (let round = 0; round < 4; round++) {
    const rs = await Promise.all(
      [0, 1, 2, 3, 4, 5].map((i) => commit(nodeUrl(i % 2), repo, { [`f${round}-${i}.txt`]: `${i}\n` })),
    );
    for (const r of rs) {
      assert.equal(r.status, 200, r.text);
      shas.push(r.json.commitOid);
    }
  }
  await until("a delivery per commit", () =>
    shas.every((s) => hookRecv.got.some((g) => (g.updatedRefs || []).some((u) => u.newSha === s))),
  );
  await sleep(1500); // a second dispatcher would deliver again by now
  for (const s of shas) {
    const n = hookRecv.got.filter((g) => (g.updatedRefs || []).some((u) => u.newSha === s)).length;
    assert.equal(n, 1, `deliveries of the move to ${s}`);
  }
  // each consumer took each event once: what it processed is what its cursor passed
  // (every consumer of a new hub starts at the first event)
  const cursors = await until("every consumer caught up", () => {
    const last = Number(server.sql("SELECT coalesce(max(id), 0) FROM events"));
    const rows = server
      .sql("SELECT consumer, last_id, processed FROM event_cursors")
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split("|"));
    return rows.length && rows.every((r) => Number(r[1]) === last) && rows;
  });
  for (const [name, last, processed] of cursors)
    assert.equal(Number(processed), Number(last), `consumer ${name}: events processed once each`);
  // the index consumer ran too: card data visible on both nodes
  const card = await commit(nodeUrl(0), repo, { "README.md": "---\nlicense: mit\ntags: [scaleout]\n---\n# hi\n" });
  assert.equal(card.status, 200, card.text);
  for (const n of server.nodes)
    await until(`card data on ${n.url}`, async () => {
      const r = await api(n.url, "GET", `/api/models/${repo}`, { token: alice });
      return (r.json?.tags || []).includes("scaleout");
    });
});

test("SIGKILL of one node mid-uploads, mid-commits and mid-job: the other serves, nothing acknowledged lost, no half object, the job done once", async () => {
  const repo = "alice/faults";
  await createRepo({ repo, accessToken: alice, hubUrl: server.url });
  const victim = server.nodes[0];
  const survivor = server.nodes[1];

  // a slow job; the test waits until it runs, wherever
  const add = spawnSync(server.bin, ["--data", server.dataDir, "jobs", "add", "test.slow", "--payload", "3000"], {
    encoding: "utf8",
    env: { ...server.cliEnv, MODELHUB_TEST_JOBS: "1" },
  });
  assert.equal(add.status, 0, add.stderr);
  const jobId = Number(add.stdout.trim());
  const jobLog = path.join(server.dataDir, "tmp", `test-job-${jobId}.log`);
  await until("the job to start", () => existsSync(jobLog) && readFileSync(jobLog, "utf8").includes("start 1"));

  // uploads in flight on the victim: the signed PUT streams slowly
  const big = randomBytes(8 * 1024 * 1024);
  const bigOid = sha256(big);
  const up = await api(victim.url, "POST", `/${repo}.git/info/lfs/objects/batch`, {
    token: alice,
    headers: { Accept: "application/vnd.git-lfs+json" },
    json: { operation: "upload", objects: [{ oid: bigOid, size: big.length }] },
  });
  assert.equal(up.status, 200, up.text);
  const href = up.json.objects[0].actions.upload.href;
  const headers = up.json.objects[0].actions.upload.header || {};
  const slowPut = new Promise((resolve) => {
    const u = new URL(href);
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method: "PUT", headers: { ...headers, "Content-Length": big.length } },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode }));
      },
    );
    req.on("error", (e) => resolve({ error: String(e) }));
    let off = 0;
    const step = () => {
      if (off >= big.length / 2) return; // stops half way: the node dies before the rest
      req.write(big.subarray(off, off + 256 * 1024));
      off += 256 * 1024;
      setTimeout(step, 5);
    };
    step();
  });

  // commits in flight through nginx (either node)
  const inflight = [];
  for (let i = 0; i < 20; i++) inflight.push(commit(server.url, repo, { [`k/${i}.txt`]: `${i}\n` }).then((r) => ({ i, r })).catch((e) => ({ i, e })));
  await sleep(150);
  // which node runs the job: kill that one, so the job is cut short too when it is ours
  const running = jobs("--kind", "test.slow").find((j) => j.id === jobId);
  const owner = running?.lease_owner || "";
  const victimRuns = owner.includes(`:${victim.pid}:`);
  await victim.kill("SIGKILL");
  const put = await slowPut;
  assert.ok(put.error || put.status >= 400, `the cut upload was not acknowledged: ${JSON.stringify(put)}`);
  const results = await Promise.all(inflight);

  // the survivor serves (directly and through nginx) while the victim is down
  const hz = await api(survivor.url, "GET", "/healthz", { token: null });
  assert.equal(hz.status, 200, hz.text);
  const after = await commit(server.url, repo, { "after.txt": "after\n" });
  assert.equal(after.status, 200, after.text);

  // nothing acknowledged is lost
  const acked = results.filter((x) => x.r && x.r.status === 200);
  const dir = path.join(work, "faults-check");
  git(["clone", "-q", remote(survivor.url, repo), dir]);
  const history = new Set(git(["rev-list", "HEAD"], { cwd: dir }).stdout.trim().split("\n"));
  for (const c of acked) assert.ok(history.has(c.r.json.commitOid), `acknowledged commit ${c.i} kept`);
  assert.ok(history.has(after.json.commitOid));
  // no half-written object: the cut upload is not downloadable
  const dl = await api(survivor.url, "POST", `/${repo}.git/info/lfs/objects/batch`, {
    token: alice,
    headers: { Accept: "application/vnd.git-lfs+json" },
    json: { operation: "download", objects: [{ oid: bigOid, size: big.length }] },
  });
  assert.equal(dl.status, 200, dl.text);
  assert.ok(dl.json.objects[0].error, `no object for the cut upload: ${dl.text}`);
  // the job finishes, once in effect
  const done = await until("the job to finish", () => {
    const j = jobs("--kind", "test.slow").find((x) => x.id === jobId);
    return j?.state === "done" && j;
  }, 30000);
  const log = readFileSync(jobLog, "utf8");
  assert.equal((log.match(/^done$/gm) || []).length, 1, log);
  if (victimRuns) assert.equal(done.attempts, 2, log);

  // the victim comes back and serves the same data
  await victim.start();
  const again = await api(victim.url, "GET", `/api/models/${repo}/revision/main`, { token: alice });
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.sha, after.json.commitOid);
  // and the upload can be done again, completely, through it
  const retry = await api(victim.url, "POST", `/${repo}.git/info/lfs/objects/batch`, {
    token: alice,
    headers: { Accept: "application/vnd.git-lfs+json" },
    json: { operation: "upload", objects: [{ oid: bigOid, size: big.length }] },
  });
  const ra = retry.json.objects[0].actions;
  const p2 = await fetch(ra.upload.href, { method: "PUT", headers: ra.upload.header || {}, body: big });
  assert.ok(p2.status === 200 || p2.status === 201, `upload again: ${p2.status}`);
});
