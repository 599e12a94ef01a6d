// Process lifecycle and durability: repository maintenance never races ref updates,
// SIGTERM drains (pushes and uploads in flight finish, no new work is taken), git
// children die with the server, refs moved behind the server's back are picked up at
// start-up, and a full disk answers 507 while reads, clones and fetches keep working.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  openSync,
  writeSync,
  closeSync,
  chmodSync,
} from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { isolatedGitEnv } from "./lib/gitenv.mjs";
import { startServer } from "./lib/server.mjs";
import { objectStored } from "./lib/store.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const work = mkdtempSync(path.join(tmpdir(), "modelhub-lifecycle-"));
const gitEnv = isolatedGitEnv(path.join(work, "home"));
const servers = [];
after(async () => {
  for (const s of servers) await s.stop();
  rmSync(work, { recursive: true, force: true });
});

async function start(opts) {
  const s = await startServer(opts);
  servers.push(s);
  return s;
}

function git(args, { cwd = work, ok = true } = {}) {
  const r = spawnSync("git", args, { cwd, env: gitEnv, encoding: "utf8", timeout: 60000 });
  if (r.error) throw r.error;
  if (/Sanitizer|runtime error:/.test(r.stderr)) throw new Error(`sanitizer report in git output:\n${r.stderr}`);
  if (ok && r.status !== 0) throw new Error(`git ${args.join(" ")} exited ${r.status}\n${r.stderr}`);
  return r;
}

/** git in the background; resolves to {status, stderr}. */
function gitAsync(args, { cwd = work } = {}) {
  return new Promise((resolve, reject) => {
    const c = spawn("git", args, { cwd, env: gitEnv });
    let stderr = "";
    c.stderr.on("data", (d) => (stderr += d));
    c.on("error", reject);
    c.on("exit", (status) => resolve({ status, stderr }));
  });
}

async function api(server, method, p, { token = server.adminToken, json, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    body = JSON.stringify(json);
    h["Content-Type"] = "application/json";
  }
  const res = await fetch(server.url + p, { method, headers: h, body });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: parsed };
}

async function createRepo(server, name) {
  const r = await api(server, "POST", "/api/repos/create", { json: { name } });
  assert.equal(r.status, 200, r.text);
}

/** NDJSON commit of small text files to admin/<name>@main. */
function commit(server, name, files, summary = "update") {
  const lines = [{ key: "header", value: { summary } }];
  for (const [p, content] of Object.entries(files))
    lines.push({ key: "file", value: { path: p, content: Buffer.from(content).toString("base64"), encoding: "base64" } });
  return api(server, "POST", `/api/models/admin/${name}/commit/main`, {
    body: lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
    headers: { "Content-Type": "application/x-ndjson" },
  });
}

/** The bare git directory of the only repo of a fresh server whose name is given. */
function repoDir(server) {
  const found = [];
  const walk = (d, depth) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const p = path.join(d, e.name);
      if (e.name.endsWith(".git")) found.push(p);
      else if (depth < 3) walk(p, depth + 1);
    }
  };
  walk(path.join(server.dataDir, "repos"), 0);
  assert.equal(found.length, 1, `repos: ${found.join(", ")}`);
  return found[0];
}

const remote = (server, name) => `http://hf_user:${server.adminToken}@${server.url.replace(/^http:\/\//, "")}/admin/${name}`;
const packCount = (dir) => readdirSync(path.join(dir, "objects/pack")).filter((f) => f.endsWith(".pack")).length;
const bareRev = (dir, ref) => git(["--git-dir", dir, "rev-parse", "--verify", "-q", ref], { ok: false }).stdout.trim();

let cloneNo = 0;
/** Node 1 of the server (itself unless MODELHUB_E2E_NODES): where a test that stops or
 * kills "the server" sends its git traffic, and whose first push writes the hooks. */
const node1 = (server) => ({ adminToken: server.adminToken, url: server.nodes[0].url });

function cloneOf(server, name) {
  const dir = path.join(work, `clone-${++cloneNo}`);
  git(["clone", "-q", remote(server, name), dir]);
  return dir;
}

function commitFile(dir, file, content) {
  writeFileSync(path.join(dir, file), content);
  git(["add", "--", file], { cwd: dir });
  git(["commit", "-q", "-m", `add ${file}`], { cwd: dir });
  return git(["rev-parse", "HEAD"], { cwd: dir }).stdout.trim();
}

/** Make git gc --auto eager in a bare repo: every push keeps its own pack, and two packs
 * are enough for gc. */
function eagerGc(dir) {
  git(["--git-dir", dir, "config", "receive.unpackLimit", "1"]);
  git(["--git-dir", dir, "config", "gc.autoPackLimit", "1"]);
}

async function branchNames(server, name) {
  const r = await api(server, "GET", `/api/models/admin/${name}/refs`);
  assert.equal(r.status, 200, r.text);
  return r.json.branches.map((b) => b.name);
}

test("pushes run no git gc, and branches deleted through the API stay deleted", async () => {
  const server = await start();
  await createRepo(server, "gcrace");
  const bare = repoDir(server);
  eagerGc(bare);
  const dir = cloneOf(server, "gcrace");
  const n = 8;
  for (let i = 0; i < n; i++) {
    commitFile(dir, `f${i}.txt`, `content ${i}\n`);
    git(["push", "-q", "origin", `HEAD:refs/heads/main`, `HEAD:refs/heads/b${i}`], { cwd: dir });
    const r = await api(server, "DELETE", `/api/models/admin/gcrace/branch/b${i}`);
    assert.equal(r.status, 200, `delete b${i}: ${r.status} ${r.text}`);
  }
  await sleep(1500); // a detached gc (the old behaviour) would have finished by now
  const names = await branchNames(server, "gcrace");
  assert.deepEqual(names, ["main"], `deleted branches came back: ${names}`);
  // receive-pack ran no gc: every push left its own pack (gc would have merged them).
  assert.ok(packCount(bare) >= n, `packs: ${packCount(bare)}`);
  assert.ok(!existsSync(path.join(bare, "gc.pid")) && !existsSync(path.join(bare, "gc.log")));
});

test("the server's maintenance packs objects and refs under the ref lock while branches are deleted", async () => {
  const server = await start({ env: { MODELHUB_MAINTENANCE_INTERVAL: "1" } });
  await createRepo(server, "maint");
  const bare = repoDir(server);
  git(["--git-dir", bare, "config", "receive.unpackLimit", "1"]); // a pack per push
  const dir = cloneOf(server, "maint");
  const refspecs = [];
  for (let i = 0; i < 80; i++) refspecs.push(`HEAD:refs/heads/k${i}`);
  for (let i = 0; i < 4; i++) {
    commitFile(dir, `m${i}.txt`, `maint ${i}\n`);
    git(["push", "-q", "origin", "HEAD:refs/heads/main", ...(i === 3 ? refspecs : [])], { cwd: dir });
  }
  assert.ok(packCount(bare) >= 4);
  git(["--git-dir", bare, "config", "gc.autoPackLimit", "1"]); // now gc --auto has work
  // Delete half of the branches while maintenance runs (it starts within a second).
  const deadline = Date.now() + 15000;
  let i = 0;
  while (Date.now() < deadline && (packCount(bare) > 1 || !existsSync(path.join(bare, "packed-refs")) || i < 40)) {
    if (i < 40) {
      const r = await api(server, "DELETE", `/api/models/admin/maint/branch/k${i * 2}`);
      assert.equal(r.status, 200, `delete k${i * 2}: ${r.status} ${r.text}`);
      i++;
      await sleep(40); // spread the deletes over the first maintenance passes
    } else {
      await sleep(100);
    }
  }
  assert.equal(packCount(bare), 1, "maintenance did not repack");
  assert.ok(existsSync(path.join(bare, "packed-refs")), "maintenance did not pack refs");
  await sleep(300);
  const names = new Set(await branchNames(server, "maint"));
  for (let k = 0; k < 80; k++) assert.equal(names.has(`k${k}`), k % 2 === 1, `k${k}`);
  git(["--git-dir", bare, "fsck", "--no-progress"]);
});

/** Replace the pre-receive hook with one that signals it started, then waits. The server
 * writes its hooks once per process at the first push, so push once before. */
function slowHook(server, seconds) {
  const hook = path.join(server.dataDir, "hooks", "pre-receive");
  const flag = path.join(server.dataDir, "hook-started");
  rmSync(flag, { force: true });
  writeFileSync(hook, `#!/bin/sh\ntouch "$MODELHUB_DATA/hook-started"\nsleep ${seconds}\nexec "$MODELHUB_BIN" hook pre-receive\n`);
  chmodSync(hook, 0o755);
  return flag;
}

async function waitFor(cond, ms, what) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test("SIGTERM during a push: the push finishes, git reports success, the ref and derived data moved", async () => {
  const server = await start();
  await createRepo(server, "termpush");
  const bare = repoDir(server);
  const dir = cloneOf(node1(server), "termpush");
  commitFile(dir, "a.txt", "a\n");
  git(["push", "-q", "origin", "HEAD:main"], { cwd: dir }); // writes the hooks
  const flag = slowHook(server, 2);
  // Over GIT_BODY_MEMORY_MAX: the pack moves from memory to a spool file on the way in.
  writeFileSync(path.join(dir, "blob.bin"), randomBytes(1536 * 1024));
  git(["add", "blob.bin"], { cwd: dir });
  const sha = commitFile(dir, "b.txt", "b\n");
  const push = gitAsync(["push", "-q", "origin", "HEAD:main"], { cwd: dir });
  await waitFor(() => existsSync(flag), 20000, "the push's pre-receive hook");
  const exit = server.terminate();
  const res = await push;
  assert.equal(res.status, 0, `push failed: ${res.stderr}`);
  const { code } = await exit;
  assert.equal(code, 0);
  assert.equal(bareRev(bare, "refs/heads/main"), sha);
  await server.restart();
  const info = await api(server, "GET", "/api/models/admin/termpush");
  assert.equal(info.json.sha, sha);
  const audit = await api(server, "GET", "/api/admin/audit-log?action=repo.push");
  assert.ok(audit.json.some((e) => e.details?.new === sha), "push not audited");
});

test("SIGKILL of the server ends its git children: an unfinished push moves no ref", async () => {
  const server = await start();
  await createRepo(server, "killpush");
  const bare = repoDir(server);
  const dir = cloneOf(node1(server), "killpush");
  const before = commitFile(dir, "a.txt", "a\n");
  git(["push", "-q", "origin", "HEAD:main"], { cwd: dir });
  const flag = slowHook(server, 2);
  commitFile(dir, "b.txt", "b\n");
  const push = gitAsync(["push", "-q", "origin", "HEAD:main"], { cwd: dir });
  await waitFor(() => existsSync(flag), 20000, "the push's pre-receive hook");
  await server.crashAndRestart(); // SIGKILL, then start again
  const res = await push;
  assert.notEqual(res.status, 0, "the client must not be told the push succeeded");
  await sleep(3000); // the hook's sleep is over: an orphaned receive-pack would move the ref now
  assert.equal(bareRev(bare, "refs/heads/main"), before, "an orphaned receive-pack moved the ref");
  const info = await api(server, "GET", "/api/models/admin/killpush");
  assert.equal(info.json.sha, before);
});

/** An HTTP request on a given agent; resolves to {status, headers, body, reused}. */
function request(url, { method = "GET", agent, headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString(), reused: req.reusedSocket }),
      );
    });
    req.on("error", reject);
    if (body) req.end(body);
    else req.end();
  });
}

test("SIGTERM during a slow LFS upload: it completes and is stored; no new connections; kept-alive ones get 503 + close", async () => {
  // one node: SIGTERM drains the process it is sent to (MODELHUB_E2E_NODES)
  const server = await start({ nodes: 1, env: { MODELHUB_SHUTDOWN_GRACE: "25" } });
  await createRepo(server, "termput");
  const data = randomBytes(1 << 20);
  const oid = createHash("sha256").update(data).digest("hex");
  const b = await api(server, "POST", "/admin/termput.git/info/lfs/objects/batch", {
    body: JSON.stringify({ operation: "upload", transfers: ["basic"], objects: [{ oid, size: data.length }] }),
    headers: { "Content-Type": "application/vnd.git-lfs+json", Accept: "application/vnd.git-lfs+json" },
  });
  assert.equal(b.status, 200, b.text);
  const href = JSON.parse(b.text).objects[0].actions.upload.href;

  const keep = new http.Agent({ keepAlive: true, maxSockets: 1 });
  assert.equal((await request(`${server.url}/healthz`, { agent: keep })).status, 200);

  // The body trickles in over about two seconds.
  const put = new Promise((resolve, reject) => {
    const req = http.request(href, { method: "PUT", agent: false, headers: { "Content-Length": data.length } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", reject);
    let off = 0;
    const step = () => {
      if (off >= data.length) return req.end();
      req.write(data.subarray(off, off + 65536));
      off += 65536;
      setTimeout(step, 120);
    };
    step();
  });
  await sleep(400);
  const t0 = Date.now();
  const exit = server.terminate();
  await sleep(200);
  // A request on the kept-alive connection: refused politely, connection closed.
  const ka = await request(`${server.url}/api/models/admin/termput`, { agent: keep });
  assert.equal(ka.reused, true);
  assert.equal(ka.status, 503, ka.body);
  assert.equal(ka.headers["connection"], "close");
  assert.equal(ka.headers["x-error-code"], "ServiceUnavailable");
  // A new connection: refused.
  await assert.rejects(request(`${server.url}/healthz`, { agent: false }), /ECONNREFUSED|ECONNRESET/);
  assert.equal(await put, 200);
  const { code } = await exit;
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 < 20000, "the server waited for more than the upload");
  keep.destroy();
  assert.ok(await objectStored(server, oid), "object not stored");
  assert.match(server.log(), /no request in flight, exiting/);
});

test("an upload that outlives the grace period is cut, nothing is stored, and the server exits", async () => {
  const server = await start({ env: { MODELHUB_SHUTDOWN_GRACE: "1" } });
  await createRepo(server, "stuck");
  const data = randomBytes(256 * 1024);
  const oid = createHash("sha256").update(data).digest("hex");
  const b = await api(server, "POST", "/admin/stuck.git/info/lfs/objects/batch", {
    body: JSON.stringify({ operation: "upload", transfers: ["basic"], objects: [{ oid, size: data.length }] }),
    headers: { "Content-Type": "application/vnd.git-lfs+json", Accept: "application/vnd.git-lfs+json" },
  });
  const href = JSON.parse(b.text).objects[0].actions.upload.href;
  const req = http.request(href, { method: "PUT", agent: false, headers: { "Content-Length": data.length } });
  const outcome = new Promise((resolve) => {
    req.on("response", (res) => resolve(`status ${res.statusCode}`));
    req.on("error", (e) => resolve(e.code));
  });
  req.write(data.subarray(0, 1000)); // and then nothing more
  await sleep(300);
  const { code } = await server.terminate();
  assert.equal(code, 0);
  assert.match(await outcome, /ECONNRESET|EPIPE|socket hang up|status 5\d\d/);
  req.destroy();
  assert.match(server.log(), /grace period over/);
  assert.ok(!(await objectStored(server, oid)));
});

test("start-up picks up a ref moved behind the server's back (index and audit)", async () => {
  const server = await start();
  await createRepo(server, "behind");
  const c = await commit(server, "behind", { "README.md": "---\nlicense: mit\n---\n# behind\n" });
  assert.equal(c.status, 200, c.text);
  const bare = repoDir(server);
  const old = bareRev(bare, "refs/heads/main");
  assert.equal((await api(server, "GET", "/api/models/admin/behind")).json.sha, old);
  assert.equal((await server.terminate()).code, 0);
  // Plain git in the bare repo: a new commit on main with a changed card.
  const blob = spawnSync("git", ["--git-dir", bare, "hash-object", "-w", "--stdin"], {
    input: "---\nlicense: apache-2.0\n---\n# moved\n",
    env: gitEnv,
    encoding: "utf8",
  }).stdout.trim();
  const tree = spawnSync("git", ["--git-dir", bare, "mktree"], { input: `100644 blob ${blob}\tREADME.md\n`, env: gitEnv, encoding: "utf8" }).stdout.trim();
  const moved = git(["--git-dir", bare, "commit-tree", tree, "-p", old, "-m", "outside the server"]).stdout.trim();
  git(["--git-dir", bare, "update-ref", "refs/heads/main", moved, old]);
  await server.restart();
  const info = await api(server, "GET", "/api/models/admin/behind");
  assert.equal(info.json.sha, moved);
  assert.equal(info.json.cardData?.license, "apache-2.0");
  const audit = await api(server, "GET", "/api/admin/audit-log?action=repo.ref.recovered");
  assert.equal(audit.status, 200, audit.text);
  const e = audit.json.find((x) => x.target === "model:admin/behind");
  assert.ok(e, audit.text);
  assert.equal(e.details.old, old);
  assert.equal(e.details.new, moved);
  // A second start finds nothing new.
  assert.equal((await server.terminate()).code, 0);
  await server.restart();
  const again = await api(server, "GET", "/api/admin/audit-log?action=repo.ref.recovered");
  assert.equal(again.json.filter((x) => x.target === "model:admin/behind").length, 1);
});

test("full disk: writes answer 507 InsufficientStorage; reads, clone and fetch keep working", async (t) => {
  const mnt = mkdtempSync(path.join(tmpdir(), "modelhub-full-"));
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=40m", "tmpfs", mnt], { encoding: "utf8" });
  if (m.status !== 0) {
    rmSync(mnt, { recursive: true, force: true });
    t.skip(`cannot mount a tmpfs here (${(m.stderr || m.error || "").toString().trim()}): full-disk test skipped`);
    return;
  }
  let server;
  try {
    server = await startServer({ dataDir: mnt, nodes: 1 }); // one node: its disk fills
    await createRepo(server, "full");
    const c = await commit(server, "full", { "README.md": "# full\n", "config.json": "{}\n" });
    assert.equal(c.status, 200, c.text);
    const dir = cloneOf(server, "full");
    // Fill the disk.
    const fd = openSync(path.join(mnt, "filler"), "w");
    const chunk = Buffer.alloc(1 << 20);
    try {
      for (;;) writeSync(fd, chunk);
    } catch (e) {
      assert.equal(e.code, "ENOSPC");
    }
    try {
      for (;;) writeSync(fd, chunk.subarray(0, 4096));
    } catch {}
    closeSync(fd);

    const full = (r, what) => {
      assert.equal(r.status, 507, `${what}: ${r.status} ${r.text}\n${server.log().split("\n").slice(-15).join("\n")}`);
      assert.equal(r.headers.get("x-error-code"), "InsufficientStorage", what);
      assert.match(r.headers.get("x-error-message"), /out of disk space/, what);
    };
    full(await commit(server, "full", { "big.txt": randomBytes(256 * 1024).toString("hex") }), "commit");
    full(await api(server, "POST", "/api/repos/create", { json: { name: "another" } }), "repo create");
    const data = randomBytes(512 * 1024);
    const oid = createHash("sha256").update(data).digest("hex");
    const b = await api(server, "POST", "/admin/full.git/info/lfs/objects/batch", {
      body: JSON.stringify({ operation: "upload", transfers: ["basic"], objects: [{ oid, size: data.length }] }),
      headers: { "Content-Type": "application/vnd.git-lfs+json", Accept: "application/vnd.git-lfs+json" },
    });
    assert.equal(b.status, 200, b.text);
    const href = JSON.parse(b.text).objects[0].actions.upload.href;
    const put = await fetch(href, { method: "PUT", body: data });
    // On PostgreSQL + S3 an LFS upload touches neither the full disk (the git volume here)
    // nor anything else on it: it lands. Otherwise the store or the database is on it.
    if (server.dbEngine === "postgres" && /^s3:/.test(server.env.MODELHUB_BLOB_STORE || "")) {
      assert.equal(put.status, 200, await put.text());
    } else {
      full({ status: put.status, headers: put.headers, text: await put.text() }, "LFS PUT");
    }

    // Reads still work.
    const info = await api(server, "GET", "/api/models/admin/full");
    assert.equal(info.status, 200, info.text);
    const readme = await fetch(`${server.url}/admin/full/resolve/main/README.md`);
    assert.equal(readme.status, 200);
    assert.equal(await readme.text(), "# full\n");
    const again = path.join(work, `clone-full-${Date.now()}`);
    git(["clone", "-q", remote(server, "full"), again]);
    assert.equal(readFileSync(path.join(again, "README.md"), "utf8"), "# full\n");
    git(["fetch", "-q", "origin"], { cwd: dir });
  } finally {
    if (server) await server.stop();
    spawnSync("umount", [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
});
