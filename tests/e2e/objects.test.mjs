// Per-repo object scope (db/objects.h; docs/lfs.md "Objects are per repo", docs/xet.md "Read
// scope"): the blob store is shared and deduplicated, but a repo answers only for the LFS and
// Xet objects it references. Driven with plain fetch (the way huggingface_hub, @huggingface/hub
// and git-lfs send these requests), git, and sqlite3 for the migration of an older data dir.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { isolatedGitEnv } from "./lib/gitenv.mjs";
import { startServer } from "./lib/server.mjs";
import { HELLO, HELLO_FILE, HELLO_XORB, HELLO_XORB_HASH, hashBytes, helloShard } from "./lib/xetgolden.mjs";

const LFS = "application/vnd.git-lfs+json";
let server;
let alice; // owner of alice/* (write)
let bob; // outsider with a public repo of his own (write)
let carol; // gated-repo visitor (read)
let scoped; // alice's fine-grained token: write on alice/pub only
let work;
let gitEnv;

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const obj = (buf) => ({ oid: sha256(buf), size: buf.length });

async function call(method, url, { token, json, body, headers = {}, lfs = false } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    body = JSON.stringify(json);
    h["Content-Type"] = lfs ? LFS : "application/json";
  }
  if (lfs) h.Accept = LFS;
  const res = await fetch(url.startsWith("http") ? url : server.url + url, { method, headers: h, body });
  const buf = Buffer.from(await res.arrayBuffer());
  let parsed;
  try {
    parsed = buf.length ? JSON.parse(buf.toString("utf8")) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, buf, text: buf.toString("utf8"), json: parsed };
}

const batch = (repo, body, token) => call("POST", `/${repo}.git/info/lfs/objects/batch`, { token, json: body, lfs: true });
const upload = (objects, extra = {}) => ({ operation: "upload", transfers: ["basic"], objects, hash_algo: "sha256", ref: { name: "main" }, ...extra });
const download = (objects) => ({ operation: "download", transfers: ["basic"], objects, hash_algo: "sha256" });

/** batch upload + signed PUT of `buf` to `repo`; returns the object. */
async function lfsPut(repo, token, buf) {
  const o = obj(buf);
  const r = await batch(repo, upload([o]), token);
  assert.equal(r.status, 200, r.text);
  const up = r.json.objects[0].actions?.upload;
  assert.ok(up, `an upload of new bytes to ${repo} gets actions: ${r.text}`);
  const put = await call("PUT", up.href, { body: buf });
  assert.equal(put.status, 200, put.text);
  return o;
}

function commitLfs(repo, token, file, o) {
  const body =
    JSON.stringify({ key: "header", value: { summary: `add ${file}` } }) +
    "\n" +
    JSON.stringify({ key: "lfsFile", value: { path: file, algo: "sha256", oid: o.oid, size: o.size } }) +
    "\n";
  return call("POST", `/api/models/${repo}/commit/main`, { token, body, headers: { "Content-Type": "application/x-ndjson" } });
}

const sql = (statement) => server.sql(statement);

/** A per-object batch answer without its oid and size, to compare two answers. */
const shape = (e) => ({ ...e, oid: undefined, size: undefined });


async function xetToken(repo, token, kind = "write") {
  const r = await call("GET", `/api/models/${repo}/xet-${kind}-token/main`, { token });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

/** Upload the golden xorb + shard through `repo`'s write token. */
async function xetHello(repo, token) {
  const t = await xetToken(repo, token);
  let r = await call("POST", `${t.casUrl}/v1/xorbs/default/${HELLO_XORB_HASH}`, { token: t.accessToken, body: HELLO_XORB });
  assert.equal(r.status, 200, r.text);
  r = await call("POST", `${t.casUrl}/v1/shards`, { token: t.accessToken, body: helloShard() });
  assert.equal(r.status, 200, r.text);
  return t;
}

// Bytes that only alice/priv (private) holds.
const SECRET = randomBytes(1500);
let secret;

before(async () => {
  server = await startServer();
  alice = server.makeUser("alice", "write");
  bob = server.makeUser("bob", "write");
  carol = server.makeUser("carol", "read");
  scoped = server
    .cli(["token", "create", "alice", "--name", "ci", "--role", "fineGrained", "--scopes",
      JSON.stringify([{ type: "repo", name: "alice/pub", permission: "write" }])], { check: true })
    .stdout.trim();
  for (const [name, token, extra] of [["priv", alice, { private: true }], ["pub", alice, {}], ["pub2", alice, {}], ["gated", alice, {}], ["pub", bob, {}]]) {
    const r = await call("POST", "/api/repos/create", { token, json: { name, ...extra } });
    assert.equal(r.status, 200, r.text);
  }
  secret = await lfsPut("alice/priv", alice, SECRET);
  const c = await commitLfs("alice/priv", alice, "secret.bin", secret);
  assert.equal(c.status, 200, c.text);
  work = mkdtempSync(path.join(tmpdir(), "modelhub-objects-e2e-"));
  gitEnv = isolatedGitEnv(path.join(work, "home"));
});

after(async () => {
  if (work) rmSync(work, { recursive: true, force: true });
  await server?.stop();
});

test("batch download of another repo's oid through a public repo answers like a missing object (anonymous, outsider, scoped token)", async () => {
  const missing = obj(randomBytes(1500));
  for (const [who, token, repo] of [["anonymous", null, "alice/pub"], ["outsider", bob, "alice/pub"], ["outsider", bob, "bob/pub"], ["scoped", scoped, "alice/pub"], ["owner", alice, "alice/pub"]]) {
    const r = await batch(repo, download([secret, missing]), token);
    assert.equal(r.status, 200, `${who} on ${repo}: ${r.text}`);
    const [got, none] = r.json.objects;
    assert.equal(got.actions, undefined, `${who} on ${repo} must get no download URL: ${r.text}`);
    assert.deepEqual(shape(got), shape(none), `${who} on ${repo}`);
    assert.deepEqual(none.error, { code: 404, message: "Object does not exist" });
  }
  // The owner reads it where it lives.
  const r = await batch("alice/priv", download([secret]), alice);
  const got = await call("GET", r.json.objects[0].actions.download.href);
  assert.ok(got.buf.equals(SECRET));
});

test("a wrong size answers like a missing object (no size oracle), in the batch and in verify", async () => {
  const missing = obj(randomBytes(1500));
  const r = await batch("alice/priv", download([{ oid: secret.oid, size: secret.size + 1 }, missing]), alice);
  assert.deepEqual(shape(r.json.objects[0]), shape(r.json.objects[1]));
  const v1 = await call("POST", "/alice/priv.git/info/lfs/verify", { token: alice, json: { oid: secret.oid, size: secret.size + 1 }, lfs: true });
  const v2 = await call("POST", "/alice/priv.git/info/lfs/verify", { token: alice, json: missing, lfs: true });
  assert.equal(v1.status, 404);
  assert.equal(v2.status, 404);
  assert.equal(v1.json.message.replace(secret.oid, "X"), v2.json.message.replace(missing.oid, "X"));
  const ok = await call("POST", "/alice/priv.git/info/lfs/verify", { token: alice, json: secret, lfs: true });
  assert.equal(ok.status, 200, ok.text);
});

test("lfsFile commit naming an object stored for another repo is refused; uploading the same bytes first makes it work", async () => {
  for (const [token, repo] of [[bob, "bob/pub"], [scoped, "alice/pub"]]) {
    const c = await commitLfs(repo, token, "stolen.bin", secret);
    assert.equal(c.status, 400, c.text);
    assert.match(c.headers.get("x-error-message"), /not uploaded to this repository/);
  }
  // bob holds the same bytes: the store already has them, but bob must still upload them.
  const r = await batch("bob/pub", upload([secret]), bob);
  const up = r.json.objects[0].actions?.upload;
  assert.ok(up, `upload actions for an object bob/pub does not reference: ${r.text}`);
  const bad = await call("PUT", up.href, { body: randomBytes(secret.size) });
  assert.equal(bad.status, 400, "the PUT verifies the bytes");
  assert.equal((await commitLfs("bob/pub", bob, "copy.bin", secret)).status, 400);
  const put = await call("PUT", up.href, { body: SECRET });
  assert.equal(put.status, 200, put.text);
  const again = await batch("bob/pub", upload([secret]), bob);
  assert.equal(again.json.objects[0].actions, undefined, "now referenced: no actions");
  const c = await commitLfs("bob/pub", bob, "copy.bin", secret);
  assert.equal(c.status, 200, c.text);
  const dl = await call("GET", "/bob/pub/resolve/main/copy.bin");
  assert.ok(dl.buf.equals(SECRET));
});

test("git push of an LFS pointer to an object the repo does not reference is refused by pre-receive", async () => {
  // Stored (for alice/priv), but not bob/pub's.
  const bytes = randomBytes(700);
  const theirs = await lfsPut("alice/priv", alice, bytes);
  const host = server.url.replace(/^http:\/\//, "");
  const url = `http://hf_user:${bob}@${host}/bob/pub`;
  const dir = path.join(work, "bob-pub");
  const git = (args, cwd = dir) => spawnSync("git", args, { cwd, env: gitEnv, encoding: "utf8", timeout: 60000 });
  assert.equal(git(["clone", "-q", url, dir], work).status, 0);
  git(["config", "user.email", "bob@example.com"]);
  git(["config", "user.name", "bob"]);
  for (const [file, o] of [["stolen.bin", theirs], ["wrong-size.bin", { oid: secret.oid, size: secret.size + 1 }]]) {
    writeFileSync(path.join(dir, file), `version https://git-lfs.github.com/spec/v1\noid sha256:${o.oid}\nsize ${o.size}\n`);
    git(["add", file]);
    git(["commit", "-q", "-m", `add ${file}`]);
    const r = git(["push", "-q", "origin", "main"]);
    assert.notEqual(r.status, 0, `${file}: ${r.stderr}`);
    assert.match(r.stderr, /never uploaded to this repository/);
    assert.doesNotMatch(r.stderr, /has \d+/, "no size of the stored object in the message");
    git(["reset", "-q", "--hard", "HEAD~1"]);
  }
  // An object bob/pub references (uploaded in the previous test) is accepted.
  writeFileSync(path.join(dir, "mine.bin"), `version https://git-lfs.github.com/spec/v1\noid sha256:${secret.oid}\nsize ${secret.size}\n`);
  git(["add", "mine.bin"]);
  git(["commit", "-q", "-m", "add mine.bin"]);
  const r = git(["push", "-q", "origin", "main"]);
  assert.equal(r.status, 0, r.stderr);
});

test("upload of bytes the store holds, multipart: parts are per upload, and completing without parts proves nothing", async () => {
  const data = randomBytes(9 * 1024 * 1024);
  const o = obj(data);
  const mp = (repo, token) => batch(repo, upload([o], { transfers: ["multipart"] }), token);
  const a = (await mp("alice/pub", alice)).json.objects[0].actions.upload;
  const b = (await mp("alice/pub", alice)).json.objects[0].actions.upload;
  assert.notEqual(a.header["00001"], b.header["00001"], "each upload has its own part URLs");
  const chunk = Number(a.header.chunk_size);
  for (const [i, k] of ["00001", "00002"].entries()) {
    const r = await call("PUT", a.header[k], { body: data.subarray(i * chunk, (i + 1) * chunk) });
    assert.equal(r.status, 200, r.text);
  }
  // A second uploader of the same object sends other bytes for part 1 meanwhile.
  const clobber = await call("PUT", b.header["00001"], { body: randomBytes(chunk) });
  assert.equal(clobber.status, 200);
  let r = await call("POST", a.href, { json: { oid: o.oid }, lfs: true });
  assert.equal(r.status, 200, r.text);
  // A part URL without its upload id, or with another one, is refused.
  const noUpload = new URL(a.header["00001"]);
  noUpload.searchParams.delete("upload");
  assert.equal((await call("PUT", noUpload.toString(), { body: data.subarray(0, chunk) })).status, 403);
  const swapped = new URL(a.header["00001"]);
  swapped.searchParams.set("upload", new URL(b.header["00001"]).searchParams.get("upload"));
  assert.equal((await call("PUT", swapped.toString(), { body: data.subarray(0, chunk) })).status, 403);

  // bob's repo: the store holds the object, so a completion without parts used to succeed.
  const bu = (await mp("bob/pub", bob)).json.objects[0].actions?.upload;
  assert.ok(bu, "bob/pub must upload the bytes itself");
  r = await call("POST", bu.href, { json: { oid: o.oid }, lfs: true });
  assert.equal(r.status, 400, r.text);
  r = await batch("bob/pub", download([o]), bob);
  assert.equal(r.json.objects[0].error?.code, 404);
  assert.equal((await commitLfs("bob/pub", bob, "big.bin", o)).status, 400);
});

test("Xet: reconstructions, xet-get and dedup answer only for files the token's repo may read", async () => {
  const own = await xetHello("alice/priv", alice);
  let c = await commitLfs("alice/priv", alice, "hello.txt", obj(HELLO));
  assert.equal(c.status, 200, c.text);
  const cas = own.casUrl;
  const rec = (token, v = "v2") => call("GET", `${cas}/${v}/reconstructions/${HELLO_FILE}`, { token });
  assert.equal((await rec(own.accessToken)).status, 200);
  for (const [repo, token] of [["bob/pub", bob], ["alice/pub", scoped]]) {
    const t = await xetToken(repo, token, "read");
    assert.equal((await rec(t.accessToken)).status, 404, `${repo}: v2`);
    assert.equal((await rec(t.accessToken, "v1")).status, 404, `${repo}: v1`);
    assert.equal((await call("GET", `${cas}/v1/files/${HELLO_FILE}`, { token: t.accessToken })).status, 404);
    // Dedup: nothing about chunks only a private repo holds.
    const dd = await call("GET", `${cas}/v1/chunks/default/${HELLO_XORB_HASH}`, { token: t.accessToken });
    assert.equal(dd.status, 404, `${repo}: dedup`);
    // Neither the batch (xet-get) nor a commit reaches it by naming its sha256.
    const b = await batch(repo, download([obj(HELLO)]), token);
    assert.deepEqual(b.json.objects[0].error, { code: 404, message: "Object does not exist" });
    c = await commitLfs(repo, token, "hello.txt", obj(HELLO));
    assert.equal(c.status, 400, c.text);
  }
  assert.equal((await call("GET", `${cas}/v1/chunks/default/${HELLO_XORB_HASH}`, { token: own.accessToken })).status, 200);
  // Once a public repo holds the file, its chunks are no secret: dedup offers them to anyone.
  await xetHello("alice/pub2", alice);
  const t = await xetToken("bob/pub", bob, "read");
  assert.equal((await call("GET", `${cas}/v1/chunks/default/${HELLO_XORB_HASH}`, { token: t.accessToken })).status, 200);
  assert.equal((await rec(t.accessToken)).status, 404, "still no reconstruction for bob/pub");
});

test("gated repo: blobs=true shows file names but no object ids until access is accepted", async () => {
  const data = randomBytes(2000);
  const o = await lfsPut("alice/gated", alice, data);
  assert.equal((await commitLfs("alice/gated", alice, "w.bin", o)).status, 200);
  assert.equal((await call("PUT", "/api/models/alice/gated/settings", { token: alice, json: { gated: "manual" } })).status, 200);
  const urls = ["/api/models/alice/gated?blobs=true", "/api/models/alice/gated/revision/main?blobs=true"];
  for (const [who, token] of [["anonymous", null], ["visitor", carol]]) {
    for (const u of urls) {
      const r = await call("GET", u, { token });
      assert.equal(r.status, 200, `${who} ${u}: ${r.text}`);
      assert.ok(r.json.siblings.some((s) => s.rfilename === "w.bin"), "file names stay visible");
      assert.ok(!r.text.includes(o.oid), `${who} ${u} leaks the sha256: ${r.text}`);
      for (const s of r.json.siblings) assert.deepEqual(Object.keys(s), ["rfilename"], `${who} ${u}`);
    }
    for (const [m, u, json] of [["GET", "/api/models/alice/gated/tree/main"], ["POST", "/api/models/alice/gated/paths-info/main", { paths: ["w.bin"] }]]) {
      const r = await call(m, u, { token, json });
      assert.ok(r.status === 401 || r.status === 403, `${who} ${u}: ${r.status}`);
      assert.ok(!r.text.includes(o.oid), `${who} ${u} leaks the sha256`);
    }
  }
  // verify is no way around the gate either
  const v = await call("POST", "/alice/gated.git/info/lfs/verify", { token: carol, json: o, lfs: true });
  assert.equal(v.status, 403, v.text);
  assert.equal(v.headers.get("x-error-code"), "GatedRepo");
  assert.equal((await call("POST", "/api/models/alice/gated/ask-access", { token: carol, json: {} })).status, 200);
  let r = await call("GET", urls[0], { token: carol });
  assert.ok(!r.text.includes(o.oid), "a pending request shows no ids either");
  r = await call("POST", "/api/models/alice/gated/user-access-request/handle", { token: alice, json: { user: "carol", status: "accepted" } });
  assert.equal(r.status, 200, r.text);
  for (const u of urls) {
    r = await call("GET", u, { token: carol });
    const s = r.json.siblings.find((x) => x.rfilename === "w.bin");
    assert.equal(s.lfs?.sha256, o.oid, `${u}: ${r.text}`);
  }
});

test("verify on a private repo answers exactly like verify on a missing repo", async () => {
  const body = obj(randomBytes(10));
  for (const [who, token] of [["anonymous", null], ["outsider", bob]]) {
    const a = await call("POST", "/alice/priv.git/info/lfs/verify", { token, json: body, lfs: true });
    const b = await call("POST", "/alice/no-such-repo.git/info/lfs/verify", { token, json: body, lfs: true });
    assert.equal(a.status, b.status, who);
    for (const h of ["content-type", "x-error-code", "x-error-message", "lfs-authenticate", "www-authenticate"])
      assert.equal(a.headers.get(h), b.headers.get(h), `${who}: ${h}`);
    const strip = (t) => t.replace(/"request_id":"[^"]*"/, "").replace(/Root=[0-9a-f-]+/g, "");
    assert.equal(strip(a.text), strip(b.text), who);
  }
});

test("signed download URLs live 1 h and stop working once the repo no longer references the object", async () => {
  const r = await batch("alice/priv", download([secret]), alice);
  const dl = r.json.objects[0].actions.download;
  assert.ok(dl.expires_in <= 3600 && dl.expires_in > 3000, `expires_in ${dl.expires_in}`);
  const exp = Number(new URL(dl.href).searchParams.get("exp"));
  assert.ok(exp <= Date.now() / 1000 + 3601);
  assert.equal((await call("GET", dl.href)).status, 200);
  const id = sql("SELECT id FROM repos WHERE ns='alice' AND name='priv'");
  sql(`DELETE FROM repo_objects WHERE repo_id=${id} AND oid='${secret.oid}'`);
  const gone = await call("GET", dl.href);
  assert.equal(gone.status, 404);
  sql(`INSERT INTO repo_objects(repo_id, oid, size) VALUES(${id}, '${secret.oid}', ${secret.size})`);
  assert.equal((await call("GET", dl.href)).status, 200);

  // Access is re-checked on use: a public repo's URL stops when the repo turns private...
  const pubData = randomBytes(300);
  const po = await lfsPut("alice/pub", alice, pubData);
  const anon = (await batch("alice/pub", download([po]), null)).json.objects[0].actions.download.href;
  assert.equal((await call("GET", anon)).status, 200);
  const setPrivate = (v) => call("PUT", "/api/models/alice/pub/settings", { token: alice, json: { private: v } });
  assert.equal((await setPrivate(true)).status, 200);
  assert.equal((await call("GET", anon)).status, 404);
  assert.equal((await setPrivate(false)).status, 200);
  assert.equal((await call("GET", anon)).status, 200);
  // ...and a gated repo's URL, bound to its reader, stops when that reader's access is revoked.
  const info = await call("GET", "/api/models/alice/gated?blobs=true", { token: carol });
  const w = info.json.siblings.find((x) => x.rfilename === "w.bin").lfs;
  const cu = (await batch("alice/gated", download([{ oid: w.sha256, size: w.size }]), carol)).json.objects[0].actions.download.href;
  assert.match(cu, /[?&]u=\d+&/);
  assert.equal((await call("GET", cu)).status, 200);
  const forged = new URL(cu);
  forged.searchParams.set("u", "1");
  assert.equal((await call("GET", forged.toString())).status, 403, "the user id is signed");
  const h = await call("POST", "/api/models/alice/gated/user-access-request/handle", { token: alice, json: { user: "carol", status: "rejected" } });
  assert.equal(h.status, 200, h.text);
  assert.equal((await call("GET", cu)).status, 404);
});

test("migration: an existing data dir gets its references from git history and Xet records, once", async () => {
  // Simulate a data dir from before the table: no rows, no backfill mark; plus a read link
  // an older version recorded because someone merely named a sha256.
  const bobId = sql("SELECT id FROM repos WHERE ns='bob' AND name='pub'");
  const fileHex = hashBytes(HELLO_FILE).toString("hex");
  sql({
    sqlite: `INSERT OR IGNORE INTO xet_repo_files(repo_id, file) VALUES(${bobId}, X'${fileHex}')`,
    postgres: `INSERT INTO xet_repo_files(repo_id, file) VALUES(${bobId}, '\\x${fileHex}'::bytea) ON CONFLICT DO NOTHING`,
  });
  let r = await batch("alice/priv", download([secret]), alice);
  const href = r.json.objects[0].actions.download.href;
  sql("DELETE FROM repo_objects; DELETE FROM kv WHERE key='objects_backfill';");
  assert.equal((await call("GET", href)).status, 404, "the table is what answers");
  await server.crashAndRestart();
  const mark = { sqlite: "SELECT value FROM kv WHERE key='objects_backfill'",
    postgres: "SELECT convert_from(value, 'UTF8') FROM kv WHERE key='objects_backfill'" };
  assert.equal(sql(mark), "1");
  // Committed LFS objects (API commit and git push) are referenced again...
  const got = await call("GET", href);
  assert.equal(got.status, 200);
  assert.ok(got.buf.equals(SECRET));
  r = await batch("bob/pub", download([secret]), bob);
  assert.ok(r.json.objects[0].actions?.download, r.text);
  // ...the Xet-uploaded file too (its sha256 link is verified)...
  const t = await xetToken("alice/priv", alice, "read");
  assert.equal((await call("GET", `${t.casUrl}/v2/reconstructions/${HELLO_FILE}`, { token: t.accessToken })).status, 200);
  assert.equal((await call("GET", "/alice/priv/resolve/main/hello.txt", { token: alice })).text, "hello world");
  // ...but the unjustified read link is gone, and other repos still see nothing.
  const tb = await xetToken("bob/pub", bob, "read");
  assert.equal((await call("GET", `${tb.casUrl}/v2/reconstructions/${HELLO_FILE}`, { token: tb.accessToken })).status, 404);
  r = await batch("alice/pub", download([secret]), null);
  assert.equal(r.json.objects[0].error?.code, 404);
  // Recorded once: rows removed now stay removed across a restart.
  const n = sql("SELECT count(*) FROM repo_objects");
  assert.ok(Number(n) >= 3, n);
  sql(`DELETE FROM repo_objects WHERE repo_id=${bobId}`);
  await server.crashAndRestart();
  assert.equal(sql(`SELECT count(*) FROM repo_objects WHERE repo_id=${bobId}`), "0");
});

test("the commit API and a git push apply one rule to LFS pointers: referenced, another repo's, wrong size, own unverified Xet upload", async () => {
  const repo = "bob/same-rule";
  assert.equal((await call("POST", "/api/repos/create", { token: bob, json: { name: "same-rule" } })).status, 200);
  const mine = await lfsPut(repo, bob, randomBytes(900));
  // bob's own Xet upload of "hello world", its sha256 not verified (yet): no repo_objects row.
  await xetHello(repo, bob);
  const hello = obj(HELLO);
  const rid = sql(`SELECT id FROM repos WHERE ns='bob' AND name='same-rule'`);
  for (let i = 0; i < 30 && sql(`SELECT count(*) FROM jobs WHERE state IN ('queued','running')`) !== "0"; i++)
    await new Promise((res) => setTimeout(res, 100));
  sql(`UPDATE xet_sha SET verified=0 WHERE repo_id=${rid} AND sha256='${hello.oid}'`);
  sql(`DELETE FROM repo_objects WHERE repo_id=${rid} AND oid='${hello.oid}'`);

  const host = server.url.replace(/^http:\/\//, "");
  const dir = path.join(work, "same-rule");
  const git = (args, cwd = dir) => spawnSync("git", args, { cwd, env: gitEnv, encoding: "utf8", timeout: 60000 });
  assert.equal(git(["clone", "-q", `http://hf_user:${bob}@${host}/${repo}`, dir], work).status, 0);
  git(["config", "user.email", "bob@example.com"]);
  git(["config", "user.name", "bob"]);
  const pointer = (o) => `version https://git-lfs.github.com/spec/v1\noid sha256:${o.oid}\nsize ${o.size}\n`;
  const cases = [
    ["referenced", mine, true],
    ["another repo's", secret, false],
    ["wrong size", { oid: mine.oid, size: mine.size + 1 }, false],
    ["own unverified Xet upload", hello, true],
  ];
  for (const [name, o, want] of cases) {
    const file = `${name.toLowerCase().replace(/[^a-z]+/g, "-")}.bin`;
    const api = await commitLfs(repo, bob, `api-${file}`, o);
    // A regular file whose bytes are the pointer (check_pointer_file).
    const body =
      JSON.stringify({ key: "header", value: { summary: `add ${file}` } }) + "\n" +
      JSON.stringify({ key: "file", value: { path: `raw-${file}`, content: Buffer.from(pointer(o)).toString("base64"), encoding: "base64" } }) + "\n";
    const raw = await call("POST", `/api/models/${repo}/commit/main`, { token: bob, body, headers: { "Content-Type": "application/x-ndjson" } });
    assert.equal(git(["pull", "-q", "--rebase", "origin", "main"]).status, 0);
    writeFileSync(path.join(dir, `git-${file}`), pointer(o));
    git(["add", `git-${file}`]);
    git(["commit", "-q", "-m", `add ${file}`]);
    const push = git(["push", "-q", "origin", "main"]);
    const got = { api: api.status === 200, raw: raw.status === 200, push: push.status === 0 };
    assert.deepEqual(got, { api: want, raw: want, push: want }, `${name}: ${api.text} ${raw.text} ${push.stderr}`);
    if (!want) {
      assert.equal(api.status, 400);
      assert.match(push.stderr, /never uploaded to this repository/);
      git(["reset", "-q", "--hard", "HEAD~1"]);
    }
  }
  // What was accepted is served: the unverified Xet upload from the repo's own Xet file.
  for (const f of ["api", "raw", "git"]) {
    const dl = await call("GET", `/${repo}/resolve/main/${f}-own-unverified-xet-upload.bin`);
    assert.equal(dl.status, 200, `${f}: ${dl.text}`);
    assert.ok(dl.buf.equals(HELLO), f);
  }
});

test("a git push naming an LFS object queues its Xet conversion (events consumer 'xet'), without any read", async () => {
  const name = "pushed-conv";
  assert.equal((await call("POST", "/api/repos/create", { token: bob, json: { name } })).status, 200);
  const o = await lfsPut(`bob/${name}`, bob, randomBytes(2000));
  const queued = () =>
    sql(`SELECT (SELECT count(*) FROM jobs WHERE kind='xet.convert' AND key='${o.oid}') +` +
      ` (SELECT count(*) FROM xet_sha WHERE sha256='${o.oid}')`);
  assert.equal(queued(), "0", "nothing converts an object no commit names");
  const host = server.url.replace(/^http:\/\//, "");
  const dir = path.join(work, name);
  const git = (args, cwd = dir) => spawnSync("git", args, { cwd, env: gitEnv, encoding: "utf8", timeout: 60000 });
  assert.equal(git(["clone", "-q", `http://hf_user:${bob}@${host}/bob/${name}`, dir], work).status, 0);
  git(["config", "user.email", "bob@example.com"]);
  git(["config", "user.name", "bob"]);
  writeFileSync(path.join(dir, "w.bin"), `version https://git-lfs.github.com/spec/v1\noid sha256:${o.oid}\nsize ${o.size}\n`);
  git(["add", "w.bin"]);
  git(["commit", "-q", "-m", "add w.bin"]);
  const r = git(["push", "-q", "origin", "main"]);
  assert.equal(r.status, 0, r.stderr);
  let n = "0";
  for (let i = 0; i < 50 && n === "0"; i++) {
    await new Promise((res) => setTimeout(res, 100));
    n = queued();
  }
  assert.notEqual(n, "0", "the push's event queued the conversion");
});
