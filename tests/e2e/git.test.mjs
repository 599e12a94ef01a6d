// Git smart HTTP (docs/git.md): clone, fetch (v0 and v2, shallow, gzip bodies), push
// (branches, tags, deletions), auth challenges, and the pre-receive checks, driven by
// Debian's git in an isolated HOME against a real `modelhub serve`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { isolatedGitEnv } from "./lib/gitenv.mjs";
import { startServer } from "./lib/server.mjs";

let server;
let admin; // admin write token
let work; // temp dir: HOME and clones
let gitEnv;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function hostPort() {
  return server.url.replace(/^http:\/\//, "");
}
/** Remote URL, optionally with the token as Basic password (any user name). */
function remote(repoPath, token) {
  return token ? `http://hf_user:${token}@${hostPort()}/${repoPath}` : `${server.url}/${repoPath}`;
}

/** Run git; returns {status, stdout, stderr}. Throws unless it exits 0 when ok is true. */
function git(args, { cwd = work, ok = true, env = {} } = {}) {
  const r = spawnSync("git", args, { cwd, env: { ...gitEnv, ...env }, encoding: "utf8", timeout: 60000 });
  if (r.error) throw r.error;
  // Hooks run the (maybe ASan) modelhub binary; their stderr reaches git as "remote: …".
  if (/Sanitizer|runtime error:/.test(r.stderr)) throw new Error(`sanitizer report in git output:\n${r.stderr}`);
  if (ok && r.status !== 0) {
    throw new Error(`git ${args.join(" ")} exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return r;
}

async function api(method, p, { token, json, headers = {}, body } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    body = JSON.stringify(json);
    h["Content-Type"] = "application/json";
  }
  const res = await fetch(server.url + p, { method, headers: h, body });
  const buf = Buffer.from(await res.arrayBuffer());
  let parsed;
  try {
    parsed = JSON.parse(buf.toString("utf8"));
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, buf, text: buf.toString("utf8"), json: parsed };
}

async function createRepo(name, extra = {}) {
  const r = await api("POST", "/api/repos/create", { token: admin, json: { name, ...extra } });
  assert.equal(r.status, 200, r.text);
}

let cloneNo = 0;
function clone(url, extraArgs = [], opts = {}) {
  const dir = path.join(work, `clone-${++cloneNo}`);
  const r = git(["clone", ...extraArgs, url, dir], opts);
  return { dir, r };
}

function commitFile(dir, file, content, msg = `add ${file}`) {
  writeFileSync(path.join(dir, file), content);
  git(["add", "--", file], { cwd: dir });
  git(["commit", "-q", "-m", msg], { cwd: dir });
  return git(["rev-parse", "HEAD"], { cwd: dir }).stdout.trim();
}

/** ls-remote as a map ref → sha. */
function lsRemote(url) {
  const out = git(["ls-remote", url]).stdout;
  const refs = {};
  for (const line of out.split("\n").filter(Boolean)) {
    const [sha, ref] = line.split("\t");
    refs[ref] = sha;
  }
  return refs;
}

before(async () => {
  server = await startServer();
  admin = server.adminToken;
  work = mkdtempSync(path.join(tmpdir(), "modelhub-git-e2e-"));
  const home = path.join(work, "home");
  gitEnv = isolatedGitEnv(home);
  git(["config", "--global", "init.defaultBranch", "main"]);
  git(["config", "--global", "advice.detachedHead", "false"]);
});

after(async () => {
  if (work) rmSync(work, { recursive: true, force: true });
  if (server) await server.stop();
});

test("anonymous clone of a public repo created through the API", async () => {
  await createRepo("clone-me");
  const { dir } = clone(remote("admin/clone-me"));
  assert.ok(existsSync(path.join(dir, ".gitattributes")));
  assert.match(readFileSync(path.join(dir, ".gitattributes"), "utf8"), /filter=lfs/);
  const info = await api("GET", "/api/models/admin/clone-me");
  assert.equal(git(["rev-parse", "HEAD"], { cwd: dir }).stdout.trim(), info.json.sha);
});

test("info/refs: content type, service pkt-line, no-cache; dumb protocol refused", async () => {
  await createRepo("adv");
  const r = await api("GET", "/admin/adv/info/refs?service=git-upload-pack");
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "application/x-git-upload-pack-advertisement");
  assert.match(r.headers.get("cache-control"), /no-cache/);
  assert.ok(r.text.startsWith("001e# service=git-upload-pack\n0000"), r.text.slice(0, 60));
  assert.match(r.text, /refs\/heads\/main/);
  const dumb = await api("GET", "/admin/adv/info/refs");
  assert.equal(dumb.status, 403);
  const v2 = await api("GET", "/admin/adv.git/info/refs?service=git-upload-pack", {
    headers: { "Git-Protocol": "version=2" },
  });
  assert.equal(v2.status, 200);
  assert.match(v2.text, /version 2/);
  // A Git-Protocol value with other characters is dropped (v0 advertisement), not passed on.
  const bad = await api("GET", "/admin/adv/info/refs?service=git-upload-pack", {
    headers: { "Git-Protocol": "version=2 $(id)" },
  });
  assert.equal(bad.status, 200);
  assert.doesNotMatch(bad.text, /version 2/);
});

test("push a text file with the token in the URL; the API sees it", async () => {
  await createRepo("push-me");
  const { dir } = clone(remote("admin/push-me"));
  const sha = commitFile(dir, "hello.txt", "hello from git\n");
  git(["push", remote("admin/push-me", admin), "main"], { cwd: dir });
  const info = await api("GET", "/api/models/admin/push-me");
  assert.equal(info.status, 200);
  assert.equal(info.json.sha, sha);
  assert.ok(info.json.siblings.some((s) => s.rfilename === "hello.txt"), JSON.stringify(info.json.siblings));
  const raw = await api("GET", "/admin/push-me/resolve/main/hello.txt");
  assert.equal(raw.text, "hello from git\n");
});

test("push creates a branch and tags, and deletes a branch", async () => {
  await createRepo("refs-repo");
  const url = remote("admin/refs-repo", admin);
  const { dir } = clone(url);
  git(["checkout", "-q", "-b", "dev"], { cwd: dir });
  const dev = commitFile(dir, "dev.txt", "dev\n");
  git(["tag", "v1"], { cwd: dir });
  git(["tag", "-a", "v2", "-m", "annotated"], { cwd: dir });
  git(["push", url, "dev", "v1", "v2"], { cwd: dir });
  let refs = lsRemote(remote("admin/refs-repo"));
  assert.equal(refs["refs/heads/dev"], dev);
  assert.equal(refs["refs/tags/v1"], dev);
  assert.equal(refs["refs/tags/v2^{}"], dev);
  const apiRefs = await api("GET", "/api/models/admin/refs-repo/refs");
  assert.ok(apiRefs.json.branches.some((b) => b.name === "dev"), apiRefs.text);
  assert.ok(apiRefs.json.tags.some((t) => t.name === "v1"), apiRefs.text);

  git(["push", url, ":dev", ":refs/tags/v1"], { cwd: dir });
  refs = lsRemote(remote("admin/refs-repo"));
  assert.equal(refs["refs/heads/dev"], undefined);
  assert.equal(refs["refs/tags/v1"], undefined);
  assert.ok(refs["refs/heads/main"]);
  // The default branch cannot be deleted.
  const r = git(["push", url, ":main"], { cwd: dir, ok: false });
  assert.notEqual(r.status, 0);
  assert.ok(lsRemote(remote("admin/refs-repo"))["refs/heads/main"]);
});

test("private repo: anonymous gets a 401 challenge, tokens work, outsiders get 404", async () => {
  await createRepo("secret", { private: true });
  const anon = await api("GET", "/admin/secret/info/refs?service=git-upload-pack");
  assert.equal(anon.status, 401);
  assert.equal(anon.headers.get("www-authenticate"), 'Basic realm="modelhub"');
  // A repo that does not exist looks the same to an anonymous caller.
  const missing = await api("GET", "/admin/no-such-repo/info/refs?service=git-upload-pack");
  assert.equal(missing.status, 401);
  const bob = server.makeUser("bob");
  const outsider = await api("GET", "/admin/secret/info/refs?service=git-upload-pack", { token: bob });
  assert.equal(outsider.status, 404);
  const badToken = await api("GET", "/admin/secret/info/refs?service=git-upload-pack", {
    headers: { Authorization: "Basic " + Buffer.from("x:hf_not_a_token").toString("base64") },
  });
  assert.equal(badToken.status, 401);
  assert.equal(badToken.headers.get("www-authenticate"), 'Basic realm="modelhub"');

  const failed = git(["clone", remote("admin/secret"), path.join(work, "secret-anon")], { ok: false });
  assert.notEqual(failed.status, 0);
  assert.ok(!existsSync(path.join(work, "secret-anon", ".gitattributes")));
  const { dir } = clone(remote("admin/secret", admin));
  assert.ok(existsSync(path.join(dir, ".gitattributes")));
  const other = git(["clone", remote("admin/secret", bob), path.join(work, "secret-bob")], { ok: false });
  assert.notEqual(other.status, 0);
  assert.match(other.stderr, /not found/i);
});

test("push with a read token fails with a clear message; anonymous push is challenged", async () => {
  await createRepo("read-only");
  const readTok = server.makeToken("admin", "read");
  const { dir } = clone(remote("admin/read-only"));
  const before = lsRemote(remote("admin/read-only"))["refs/heads/main"];
  commitFile(dir, "nope.txt", "nope\n");
  const r = git(["push", remote("admin/read-only", readTok), "main"], { cwd: dir, ok: false });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /read-only/);
  const anon = await api("GET", "/admin/read-only/info/refs?service=git-receive-pack");
  assert.equal(anon.status, 401);
  assert.equal(anon.headers.get("www-authenticate"), 'Basic realm="modelhub"');
  const anonPush = git(["push", remote("admin/read-only"), "main"], { cwd: dir, ok: false });
  assert.notEqual(anonPush.status, 0);
  const post = await api("POST", "/admin/read-only/git-receive-pack", {
    headers: { "Content-Type": "application/x-git-receive-pack-request" },
    body: "0000",
  });
  assert.equal(post.status, 401);
  assert.equal(lsRemote(remote("admin/read-only"))["refs/heads/main"], before);
});

test("a pushed LFS pointer to an object never uploaded is rejected; the branch is unchanged", async () => {
  await createRepo("lfs-missing");
  const url = remote("admin/lfs-missing", admin);
  const { dir } = clone(url);
  const before = lsRemote(url)["refs/heads/main"];
  const oid = "a".repeat(64);
  commitFile(dir, "weights.bin", `version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize 1234\n`);
  const r = git(["push", url, "main"], { cwd: dir, ok: false });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /weights\.bin/);
  assert.match(r.stderr, new RegExp(oid));
  assert.match(r.stderr, /never uploaded/);
  assert.equal(lsRemote(url)["refs/heads/main"], before);
  const info = await api("GET", "/api/models/admin/lfs-missing");
  assert.ok(!info.json.siblings.some((s) => s.rfilename === "weights.bin"));
});

test("paths the commit API refuses are refused by push too", async () => {
  await createRepo("bad-path");
  const url = remote("admin/bad-path", admin);
  const { dir } = clone(url);
  commitFile(dir, "back\\slash.txt", "x\n");
  const r = git(["push", url, "main"], { cwd: dir, ok: false });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /not allowed/);
});

test("a push to refs/pr/1 is refused", async () => {
  await createRepo("pr-repo");
  const url = remote("admin/pr-repo", admin);
  const { dir } = clone(url);
  commitFile(dir, "pr.txt", "pr\n");
  const r = git(["push", url, "HEAD:refs/pr/1"], { cwd: dir, ok: false });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /refs\/pr\//);
  assert.equal(lsRemote(url)["refs/pr/1"], undefined);
});

test("shallow clone, protocol v0 and v2 fetches, gzip request bodies", async () => {
  await createRepo("history");
  const url = remote("admin/history", admin);
  const { dir } = clone(url);
  for (let i = 0; i < 3; i++) commitFile(dir, `f${i}.txt`, `${i}\n`);
  git(["push", url, "main"], { cwd: dir });
  const head = git(["rev-parse", "HEAD"], { cwd: dir }).stdout.trim();

  const shallow = clone(remote("admin/history"), ["--depth", "1"]).dir;
  assert.equal(git(["rev-list", "--count", "HEAD"], { cwd: shallow }).stdout.trim(), "1");
  assert.equal(git(["rev-parse", "HEAD"], { cwd: shallow }).stdout.trim(), head);
  git(["fetch", "-q", "--unshallow"], { cwd: shallow });
  assert.equal(git(["rev-list", "--count", "HEAD"], { cwd: shallow }).stdout.trim(), "4"); // initial + 3

  // An old clone catches up with both protocol versions.
  const old = clone(remote("admin/history"), ["--depth", "1"]).dir;
  commitFile(dir, "later.txt", "later\n");
  git(["push", url, "main"], { cwd: dir });
  const newHead = git(["rev-parse", "HEAD"], { cwd: dir }).stdout.trim();
  const v2 = git(["-c", "protocol.version=2", "fetch", "origin"], { cwd: old, env: { GIT_TRACE_PACKET: "1" } });
  assert.match(v2.stderr, /git< version 2/);
  assert.equal(git(["rev-parse", "origin/main"], { cwd: old }).stdout.trim(), newHead);
  const v0dir = clone(remote("admin/history"), ["-c", "protocol.version=0", "--depth", "1"]).dir;
  const v0 = git(["-c", "protocol.version=0", "fetch", "--deepen", "2", "origin"], {
    cwd: v0dir,
    env: { GIT_TRACE_PACKET: "1" },
  });
  assert.doesNotMatch(v0.stderr, /git< version 2/);

  // A gzip-encoded upload-pack request, as git sends for long negotiations.
  const want = `want ${newHead} side-band-64k\n`;
  const pkt = (s) => (s.length + 4).toString(16).padStart(4, "0") + s;
  const body = gzipSync(Buffer.from(pkt(want) + "0000" + pkt("done\n")));
  const r = await api("POST", "/admin/history/git-upload-pack", {
    headers: { "Content-Type": "application/x-git-upload-pack-request", "Content-Encoding": "gzip" },
    body,
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "application/x-git-upload-pack-result");
  assert.ok(r.buf.includes(Buffer.from("PACK")), "response carries a pack");
  const badGzip = await api("POST", "/admin/history/git-upload-pack", {
    headers: { "Content-Type": "application/x-git-upload-pack-request", "Content-Encoding": "gzip" },
    body: Buffer.from("definitely not gzip"),
  });
  assert.equal(badGzip.status, 400);
  const badType = await api("POST", "/admin/history/git-upload-pack", {
    headers: { "Content-Type": "text/plain" },
    body: "0000",
  });
  assert.equal(badType.status, 400);
});

test("dataset prefix with a .git suffix: clone and push", async () => {
  await createRepo("ds", { type: "dataset" });
  const url = remote("datasets/admin/ds.git", admin);
  const { dir } = clone(remote("datasets/admin/ds.git"));
  const sha = commitFile(dir, "data.csv", "a,b\n1,2\n");
  git(["push", url, "main"], { cwd: dir });
  const info = await api("GET", "/api/datasets/admin/ds");
  assert.equal(info.json.sha, sha);
  assert.ok(info.json.siblings.some((s) => s.rfilename === "data.csv"));
  // The same name without the prefix is a different (missing) repo.
  const r = git(["ls-remote", remote("admin/ds", admin)], { ok: false });
  assert.notEqual(r.status, 0);
});

test("git-lfs locks: empty lists with the LFS content type", async () => {
  await createRepo("locks");
  const v = await api("POST", "/admin/locks.git/info/lfs/locks/verify", {
    token: admin,
    headers: { "Content-Type": "application/vnd.git-lfs+json", Accept: "application/vnd.git-lfs+json" },
    body: JSON.stringify({ ref: { name: "refs/heads/main" } }),
  });
  assert.equal(v.status, 200);
  assert.equal(v.headers.get("content-type"), "application/vnd.git-lfs+json");
  assert.deepEqual(v.json, { ours: [], theirs: [] });
  const l = await api("GET", "/admin/locks.git/info/lfs/locks", { token: admin });
  assert.equal(l.status, 200);
  assert.deepEqual(l.json, { locks: [] });
});

test("no git children left behind (reaped, none killed mid-way)", async () => {
  // A client that disconnects in the middle of a response: the child must be killed and
  // reaped. The pack (16 MiB of random bytes) is larger than the pipe and socket
  // buffers, so while the client reads nothing, git upload-pack is still there, blocked
  // writing; the test first sees it, then sees it gone after the abort. (With the
  // advertisement of an empty repo, git had exited before anyone looked, and the check
  // passed whether or not a child ever ran.)
  await createRepo("abandon");
  const url = remote("admin/abandon", admin);
  const { dir } = clone(url);
  // 128 files of 128 KiB: more objects than receive.unpackLimit, so the server keeps the
  // pushed pack, stored uncompressed and without deltas (random bytes do not compress, and
  // looking for deltas between them is slow), and upload-pack sends it as it is.
  mkdirSync(path.join(dir, "noise"));
  for (let i = 0; i < 128; i++) writeFileSync(path.join(dir, "noise", `n${i}.txt`), randomBytes(128 << 10));
  const raw = ["-c", "core.compression=0", "-c", "pack.window=0"];
  git([...raw, "add", "noise"], { cwd: dir });
  git([...raw, "commit", "-q", "-m", "noise"], { cwd: dir });
  git([...raw, "push", "-q", url, "main"], { cwd: dir });
  const head = git(["rev-parse", "HEAD"], { cwd: dir }).stdout.trim();
  // every node's children (MODELHUB_E2E_NODES: the request may land on any node)
  const allKids = () => server.nodes.flatMap((n) => children(n.pid));
  const gitKids = () => allKids().filter((k) => / git$/.test(k));
  for (let i = 0; i < 100 && allKids().length; i++) await sleep(50);
  assert.deepEqual(allKids(), [], "no child before the request");

  const pkt = (s) => (s.length + 4).toString(16).padStart(4, "0") + s;
  const ctl = new AbortController();
  const res = await fetch(`${server.url}/admin/abandon/git-upload-pack`, {
    method: "POST",
    headers: { "Content-Type": "application/x-git-upload-pack-request" },
    body: pkt(`want ${head}\n`) + "0000" + pkt("done\n"),
    signal: ctl.signal,
  });
  assert.equal(res.status, 200);
  let seen = [];
  for (let i = 0; i < 200 && !seen.length; i++) {
    seen = gitKids();
    if (!seen.length) await sleep(25);
  }
  assert.ok(seen.length > 0, "git upload-pack runs while the response is unread");
  assert.ok(!seen.some((k) => / Z git$/.test(k)), `the child is still working, not a zombie: ${seen}`);
  ctl.abort();
  for (let i = 0; i < 300 && allKids().length; i++) await sleep(50);
  assert.deepEqual(allKids(), [], "the child was killed and reaped");
});

/** Child processes of pid, as "pid state comm" strings (Linux /proc). */
function children(pid) {
  const out = [];
  for (const ent of readdirSync("/proc")) {
    if (!/^\d+$/.test(ent)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${ent}/stat`, "utf8");
    } catch {
      continue;
    }
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(rest[1]) === pid) out.push(`${ent} ${rest[0]} ${stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))}`);
  }
  return out;
}

test("git-lfs end to end: push uploads the object, then the pointer is accepted; clone smudges", async () => {
  await createRepo("lfs-e2e");
  const url = remote("admin/lfs-e2e", admin);
  const { dir } = clone(url);
  git(["lfs", "install", "--local"], { cwd: dir });
  const payload = Buffer.alloc(300 * 1024);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7919) & 0xff;
  writeFileSync(path.join(dir, "model.bin"), payload);
  git(["add", "model.bin"], { cwd: dir });
  git(["commit", "-q", "-m", "weights"], { cwd: dir });
  const pushed = git(["push", url, "main"], { cwd: dir, ok: false });
  assert.equal(pushed.status, 0, pushed.stderr);
  assert.doesNotMatch(pushed.stderr, /locking/i); // locks/verify answered, no warning
  const info = await api("GET", "/api/models/admin/lfs-e2e");
  assert.ok(info.json.siblings.some((s) => s.rfilename === "model.bin"));
  const dl = await api("GET", "/admin/lfs-e2e/resolve/main/model.bin");
  assert.equal(dl.status, 200);
  assert.ok(dl.buf.equals(payload), "download through the API returns the pushed bytes");

  const other = path.join(work, "lfs-e2e-clone");
  git(["lfs", "install", "--skip-repo"]);
  git(["clone", url, other]);
  assert.ok(readFileSync(path.join(other, "model.bin")).equals(payload), "git-lfs smudged the file");
});
