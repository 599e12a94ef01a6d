// Xet storage (shared/docs/xet.md; docs/xet.md "Server"): the real @huggingface/hub client
// uploads and downloads through the CAS, the same bytes come out of plain /resolve and
// git-lfs, LFS uploads are converted for Xet readers, chunk-level dedup, and hostile input.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { createRepo, downloadFile, uploadFiles } from "@huggingface/hub";
import { Hasher } from "@huggingface/blake3-jit";
import { startServer } from "./lib/server.mjs";
import { s3Of, tempData } from "./lib/store.mjs";
import { HELLO, HELLO_XORB, HELLO_XORB_HASH, hashBytes, helloShard } from "./lib/xetgolden.mjs";

let server;
let alice; // write token
let work;

const MB = 1024 * 1024;
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function call(method, url, { token, json, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    body = JSON.stringify(json);
    h["Content-Type"] = "application/json";
  }
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

const hub = (repo, extra = {}) => ({ repo, accessToken: alice, hubUrl: server.url, ...extra });

function stats() {
  const r = server.cli(["storage", "stats", "--json"], { check: true });
  return JSON.parse(r.stdout);
}

/** A compressible float32 file: a few repeated patterns, as in real weights' padding. */
function floatFile(bytes) {
  const f = new Float32Array(bytes / 4);
  for (let i = 0; i < f.length; i++) f[i] = Math.sin((i % 4096) / 64) * ((i >> 16) % 7);
  return Buffer.from(f.buffer);
}

async function pathsInfo(repo, paths) {
  const r = await call("POST", `/api/models/${repo}/paths-info/main`, { token: alice, json: { paths } });
  assert.equal(r.status, 200, r.text);
  return Object.fromEntries(r.json.map((e) => [e.path, e]));
}

async function xetWriteToken(repo) {
  const r = await call("GET", `/api/models/${repo}/xet-write-token/main`, { token: alice });
  assert.equal(r.status, 200, r.text);
  return r.json;
}


// A hand-made Xet upload, as hf_xet sends it (spec §2, §4, §5): `parts` (1 or 2 buffers of
// 1..131072 bytes) become the chunks of one raw (scheme 0) xorb and one file.
const DATA_KEY = [102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28, 157, 228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41];
const NODE_KEY = [1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230, 93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63];
const VERIFY_KEY = [127, 24, 87, 214, 206, 86, 237, 102, 18, 127, 249, 19, 231, 165, 195, 243, 164, 205, 38, 213, 181, 219, 73, 230, 65, 36, 152, 127, 40, 251, 148, 195];
const keyed = (key, data) => Buffer.from(Hasher.newKeyed(Uint8Array.from(key)).update(data).finalize());
function hashStr(b) {
  let s = "";
  for (let k = 0; k < 4; k++) s += Buffer.from(b.subarray(8 * k, 8 * k + 8)).reverse().toString("hex");
  return s;
}
function rawRecord(data) {
  const h = Buffer.alloc(8);
  h.writeUIntLE(data.length, 1, 3);
  h.writeUIntLE(data.length, 5, 3);
  return Buffer.concat([h, data]);
}
function xetUpload(parts) {
  assert.ok(parts.length >= 1 && parts.length <= 2); // one Merkle group: no cut rule needed
  const chunks = parts.map((p) => keyed(DATA_KEY, p));
  const root =
    parts.length === 1
      ? chunks[0]
      : keyed(NODE_KEY, Buffer.from(chunks.map((c, i) => `${hashStr(c)} : ${parts[i].length}\n`).join("")));
  const data = Buffer.concat(parts);
  const xorb = Buffer.concat(parts.map(rawRecord));
  const xorbHash = hashStr(root);
  const fileHash = hashStr(keyed(new Array(32).fill(0), root));
  const e = () => Buffer.alloc(48);
  const bookend = () => e().fill(0xff, 0, 32);
  const header = helloShard().subarray(0, 48);
  const fh = e();
  hashBytes(fileHash).copy(fh, 0);
  fh.writeUInt32LE(0xc0000000, 32);
  fh.writeUInt32LE(1, 36);
  const term = e();
  root.copy(term, 0);
  term.writeUInt32LE(data.length, 36);
  term.writeUInt32LE(parts.length, 44);
  const ver = e();
  keyed(VERIFY_KEY, Buffer.concat(chunks)).copy(ver, 0);
  const ext = e();
  hashBytes(sha256(data)).copy(ext, 0);
  const cas = e();
  root.copy(cas, 0);
  cas.writeUInt32LE(parts.length, 36);
  cas.writeUInt32LE(data.length, 40);
  cas.writeUInt32LE(xorb.length, 44);
  let start = 0;
  const entries = parts.map((p, i) => {
    const c = e();
    chunks[i].copy(c, 0);
    c.writeUInt32LE(start, 32);
    c.writeUInt32LE(p.length, 36);
    start += p.length;
    return c;
  });
  const shard = Buffer.concat([header, fh, term, ver, ext, bookend(), cas, ...entries, bookend()]);
  return { data, xorb, xorbHash, fileHash, shard, sha: sha256(data), firstChunk: hashStr(chunks[0]) };
}

async function commitLfs(repo, filePath, sha, size) {
  const ndjson =
    JSON.stringify({ key: "header", value: { summary: `add ${filePath}` } }) +
    "\n" +
    JSON.stringify({ key: "lfsFile", value: { path: filePath, algo: "sha256", oid: sha, size } }) +
    "\n";
  const c = await call("POST", `/api/models/${repo}/commit/main`, {
    token: alice,
    body: ndjson,
    headers: { "Content-Type": "application/x-ndjson" },
  });
  assert.equal(c.status, 200, c.text);
}

before(async () => {
  server = await startServer();
  alice = server.makeUser("alice", "write");
  work = mkdtempSync(path.join(tmpdir(), "modelhub-xet-e2e-"));
  for (const name of ["x", "lfs", "dedup", "dedup2", "plain", "raw", "cas"])
    await createRepo(hub(`alice/${name}`));
});

after(async () => {
  if (work) rmSync(work, { recursive: true, force: true });
  if (server) await server.stop();
});

const RND = randomBytes(3 * MB);
const FLT = floatFile(40 * MB);
const TXT = Buffer.from("A small text file, committed next to the big ones.\n".repeat(20));

test("token routes: JSON body and X-Xet-* headers, scoped to the repo and operation", async () => {
  const w = await call("GET", "/api/models/alice/x/xet-write-token/main", { token: alice });
  assert.equal(w.status, 200, w.text);
  assert.equal(w.json.casUrl, `${server.url}/xet-cas`);
  assert.ok(w.json.exp > Date.now() / 1000 + 600);
  assert.equal(w.headers.get("x-xet-access-token"), w.json.accessToken);
  assert.equal(w.headers.get("x-xet-cas-url"), w.json.casUrl);
  assert.equal(w.headers.get("x-xet-token-expiration"), String(w.json.exp));
  const pr = await call("GET", "/api/models/alice/x/xet-write-token/None?create_pr=1", { token: alice });
  assert.equal(pr.status, 200, pr.text);
  // anonymous: public read is fine, write is not
  const anonRead = await call("GET", "/api/models/alice/x/xet-read-token/main");
  assert.equal(anonRead.status, 200);
  const anonWrite = await call("GET", "/api/models/alice/x/xet-write-token/main");
  assert.equal(anonWrite.status, 401);
  const bob = server.makeUser("bob", "write");
  const bobWrite = await call("GET", "/api/models/alice/x/xet-write-token/main", { token: bob });
  assert.equal(bobWrite.status, 403);
  // a read token cannot upload; garbage is 401
  const xorb = `${anonRead.json.casUrl}/v1/xorbs/default/${HELLO_XORB_HASH}`;
  const ro = await call("POST", xorb, { token: anonRead.json.accessToken, body: HELLO_XORB });
  assert.equal(ro.status, 403, ro.text);
  const bad = await call("POST", xorb, { token: w.json.accessToken.replace(/.$/, (c) => (c === "0" ? "1" : "0")), body: HELLO_XORB });
  assert.equal(bad.status, 401, bad.text);
  const none = await call("POST", xorb, { body: HELLO_XORB });
  assert.equal(none.status, 401);
  assert.equal(stats().xorbs, 0, "nothing stored");
});

test("uploadFiles with Xet, then downloadFile (Xet path), slices, /resolve with and without Range", async () => {
  await uploadFiles(
    hub("alice/x", {
      useXet: true,
      files: [
        { path: "rnd.bin", content: new Blob([RND]) },
        { path: "floats.bin", content: new Blob([FLT]) },
        { path: "notes.txt", content: new Blob([TXT]) },
      ],
    }),
  );
  const s = stats();
  assert.ok(s.xorbs >= 1 && s.files >= 2, JSON.stringify(s));
  assert.ok(s.stored_bytes < RND.length + FLT.length / 4, `compressed + deduplicated: ${JSON.stringify(s)}`);
  // No LFS blob was written: the bytes live only in xorbs.
  const lfsBatch = await call("POST", "/alice/x.git/info/lfs/objects/batch", {
    token: alice,
    json: { operation: "download", objects: [{ oid: sha256(RND), size: RND.length }] },
    headers: { Accept: "application/vnd.git-lfs+json" },
  });
  assert.match(lfsBatch.json.objects[0].actions.download.href, /\/xet-get\//);

  for (const [p, buf] of [["rnd.bin", RND], ["floats.bin", FLT], ["notes.txt", TXT]]) {
    const blob = await downloadFile(hub("alice/x", { path: p, xet: true }));
    assert.ok(Buffer.from(await blob.arrayBuffer()).equals(buf), `${p}: downloadFile bytes`);
    const a = Math.min(70000, buf.length >> 1), b = Math.min(buf.length, 2 * MB + 12345);
    assert.ok(Buffer.from(await blob.slice(a, b).arrayBuffer()).equals(buf.subarray(a, b)), `${p}: slice`);

    const full = await call("GET", `/alice/x/resolve/main/${p}`, { token: alice });
    assert.equal(full.status, 200);
    assert.ok(full.buf.equals(buf), `${p}: plain resolve`);
    const rng = await call("GET", `/alice/x/resolve/main/${p}`, { token: alice, headers: { Range: "bytes=1000-" } });
    assert.equal(rng.status, 206);
    assert.ok(rng.buf.equals(buf.subarray(1000)), `${p}: resolve Range`);
    const tail = await call("GET", `/alice/x/resolve/main/${p}`, { token: alice, headers: { Range: "bytes=-777" } });
    assert.ok(tail.buf.equals(buf.subarray(buf.length - 777)), `${p}: suffix Range`);
  }
  // Xet signals on the LFS (Xet-backed) files only
  const head = await fetch(`${server.url}/alice/x/resolve/main/rnd.bin`, { method: "HEAD" });
  const xh = head.headers.get("x-xet-hash");
  assert.match(xh, /^[0-9a-f]{64}$/);
  assert.equal(head.headers.get("x-linked-size"), String(RND.length));
  assert.match(head.headers.get("link"), /rel="xet-auth"/);
  assert.match(head.headers.get("link"), new RegExp(`/xet-cas/v1/reconstructions/${xh}>; rel="xet-reconstruction-info"`));
  assert.match(head.headers.get("x-xet-refresh-route"), /\/xet-read-token\/[0-9a-f]{40}$/);
  const txtHead = await fetch(`${server.url}/alice/x/resolve/main/notes.txt`, { method: "HEAD" });
  assert.equal(txtHead.headers.get("x-xet-hash"), null);
  const info = await call("GET", "/alice/x/resolve/main/rnd.bin", {
    headers: { Accept: "application/vnd.xet-fileinfo+json, */*", Range: "bytes=0-0" },
  });
  assert.equal(info.status, 200);
  assert.equal(info.headers.get("content-type"), "application/vnd.xet-fileinfo+json");
  assert.equal(info.json.hash, xh);
  assert.equal(info.json.size, RND.length);
  const pi = await pathsInfo("alice/x", ["rnd.bin", "floats.bin", "notes.txt"]);
  assert.equal(pi["rnd.bin"].xetHash, xh);
  assert.match(pi["floats.bin"].xetHash, /^[0-9a-f]{64}$/);
  assert.equal(pi["notes.txt"].xetHash, undefined);
  const tree = await call("GET", "/api/models/alice/x/tree/main", { token: alice });
  assert.equal(tree.json.find((e) => e.path === "rnd.bin").xetHash, xh);
  const repoInfo = await call("GET", "/api/models/alice/x?blobs=true", { token: alice });
  assert.equal(repoInfo.json.siblings.find((e) => e.rfilename === "rnd.bin").xetHash, xh);
  const fsck = server.cli(["fsck", "--full"]);
  assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
});

test("git clone + git-lfs smudges Xet-uploaded files byte-exact", async () => {
  const home = path.join(work, "home");
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("GIT_")) env[k] = v;
  Object.assign(env, { HOME: home, XDG_CONFIG_HOME: path.join(home, ".config"), GIT_CONFIG_NOSYSTEM: "1", GIT_TERMINAL_PROMPT: "0" });
  const git = (args, cwd = work) => {
    const r = spawnSync("git", args, { cwd, env, encoding: "utf8", timeout: 120000 });
    assert.equal(r.status, 0, `git ${args.join(" ")}: ${r.stderr}`);
    return r;
  };
  spawnSync("mkdir", ["-p", home]);
  git(["lfs", "install", "--skip-repo"]);
  const dir = path.join(work, "clone");
  git(["clone", `${server.url}/alice/x`, dir]);
  assert.ok(readFileSync(path.join(dir, "rnd.bin")).equals(RND), "rnd.bin smudged");
  assert.ok(readFileSync(path.join(dir, "floats.bin")).equals(FLT), "floats.bin smudged");
  assert.ok(readFileSync(path.join(dir, "notes.txt")).equals(TXT));
});

test("an LFS-uploaded file is converted and served through the Xet path", async () => {
  const data = randomBytes(2 * MB + 4321);
  await uploadFiles(hub("alice/lfs", { useXet: false, files: [{ path: "w.bin", content: new Blob([data]) }] }));
  let entry;
  for (let i = 0; i < 100; i++) {
    entry = (await pathsInfo("alice/lfs", ["w.bin"]))["w.bin"];
    if (entry.xetHash) break;
    await sleep(100);
  }
  assert.match(entry.xetHash ?? "", /^[0-9a-f]{64}$/, "converted in the background");
  const head = await fetch(`${server.url}/alice/lfs/resolve/main/w.bin`, { method: "HEAD" });
  assert.equal(head.headers.get("x-xet-hash"), entry.xetHash);
  const blob = await downloadFile(hub("alice/lfs", { path: "w.bin", xet: true }));
  assert.equal(blob.constructor.name, "XetBlob");
  assert.ok(Buffer.from(await blob.arrayBuffer()).equals(data));
  assert.ok(Buffer.from(await blob.slice(12345, 1234567).arrayBuffer()).equals(data.subarray(12345, 1234567)));
});

test("a repo with Xet turned off keeps the plain LFS contract", async () => {
  server.cli(["storage", "xet", "off", "alice/plain"], { check: true });
  const data = randomBytes(300 * 1024);
  const b = await call("POST", "/alice/plain.git/info/lfs/objects/batch", {
    token: alice,
    json: { operation: "upload", transfers: ["basic", "multipart", "xet"], hash_algo: "sha_256", objects: [{ oid: sha256(data), size: data.length }] },
  });
  assert.equal(b.json.transfer, "basic");
  await uploadFiles(hub("alice/plain", { useXet: true, files: [{ path: "p.bin", content: new Blob([data]) }] }));
  await sleep(300);
  const head = await fetch(`${server.url}/alice/plain/resolve/main/p.bin`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("x-xet-hash"), null);
  assert.equal(head.headers.get("link"), null);
  assert.equal((await pathsInfo("alice/plain", ["p.bin"]))["p.bin"].xetHash, undefined);
});

test("Xet off: hf_xet still gets a write token, and its upload is kept as a plain LFS object", async () => {
  // hf_xet (huggingface_hub >= 1.20) asks for the token without negotiating and has no
  // fallback: an error here fails every default Python upload.
  const w = await call("GET", "/api/models/alice/plain/xet-write-token/main", { token: alice });
  assert.equal(w.status, 200, w.text);
  assert.equal(w.headers.get("x-xet-access-token"), w.json.accessToken);
  const up = xetUpload([randomBytes(100000), randomBytes(54321)]);
  const cas = w.json.casUrl;
  const x = await call("POST", `${cas}/v1/xorbs/default/${up.xorbHash}`, { token: w.json.accessToken, body: up.xorb });
  assert.equal(x.status, 200, x.text);
  const sh = await call("POST", `${cas}/v1/shards`, { token: w.json.accessToken, body: up.shard });
  assert.equal(sh.status, 200, sh.text);
  await commitLfs("alice/plain", "py.bin", up.sha, up.data.length);
  // Served as plain LFS: the bytes, no Xet signals; git holds an ordinary LFS pointer.
  const r = await call("GET", "/alice/plain/resolve/main/py.bin", { token: alice });
  assert.equal(r.status, 200);
  assert.ok(r.buf.equals(up.data));
  assert.equal(r.headers.get("x-xet-hash"), null);
  assert.equal(r.headers.get("link"), null);
  const info = await call("GET", "/alice/plain/resolve/main/py.bin", {
    token: alice,
    headers: { Accept: "application/vnd.xet-fileinfo+json, */*", Range: "bytes=0-0" },
  });
  assert.equal(info.status, 206);
  assert.equal(info.buf.length, 1);
  const ptr = await call("GET", "/alice/plain/raw/main/py.bin", { token: alice });
  assert.match(ptr.text, new RegExp(`^version https://git-lfs.github.com/spec/v1\noid sha256:${up.sha}\nsize ${up.data.length}\n`));
  const pi = (await pathsInfo("alice/plain", ["py.bin"]))["py.bin"];
  assert.equal(pi.xetHash, undefined);
  assert.equal(pi.lfs.oid, up.sha);
  // ...and stored as one: git-lfs downloads come from the LFS store, not the Xet bridge.
  let href = "";
  for (let i = 0; i < 100 && !/\/lfs-get\//.test(href); i++) {
    if (i) await sleep(100);
    const batch = await call("POST", "/alice/plain.git/info/lfs/objects/batch", {
      token: alice,
      json: { operation: "download", objects: [{ oid: up.sha, size: up.data.length }] },
      headers: { Accept: "application/vnd.git-lfs+json" },
    });
    href = batch.json.objects[0].actions?.download?.href ?? "";
  }
  assert.match(href, /\/lfs-get\//, "the Xet upload became a plain LFS object");
  const lfsGet = await call("GET", href);
  assert.ok(lfsGet.buf.equals(up.data));
  const again = await call("GET", "/alice/plain/resolve/main/py.bin", { token: alice, headers: { Range: "bytes=99990-100009" } });
  assert.equal(again.status, 206);
  assert.ok(again.buf.equals(up.data.subarray(99990, 100010)));
});

test("dedup: a 5 MB edit of a 100 MB file stores < 10 MB more; another repo adds nearly nothing", async () => {
  const base = randomBytes(100 * MB);
  const s0 = stats();
  await uploadFiles(hub("alice/dedup", { useXet: true, files: [{ path: "big.bin", content: new Blob([base]) }] }));
  const s1 = stats();
  const first = s1.stored_bytes - s0.stored_bytes;
  assert.ok(first >= 100 * MB && first < 101 * MB, `first upload stored ${first}`);
  const edited = Buffer.from(base);
  randomBytes(5 * MB).copy(edited, 47 * MB);
  await uploadFiles(hub("alice/dedup", { useXet: true, files: [{ path: "big.bin", content: new Blob([edited]) }] }));
  const s2 = stats();
  const grew = s2.stored_bytes - s1.stored_bytes;
  assert.ok(grew <= 10 * MB, `the 5 MB edit stored ${grew} more bytes`);
  await uploadFiles(hub("alice/dedup2", { useXet: true, files: [{ path: "copy.bin", content: new Blob([base]) }] }));
  const s3 = stats();
  assert.ok(s3.stored_bytes - s2.stored_bytes < 256 * 1024, `second repo stored ${s3.stored_bytes - s2.stored_bytes}`);
  assert.ok(s3.logical_bytes >= s0.logical_bytes + 300 * MB, JSON.stringify(s3));
  const dl = await call("GET", "/alice/dedup/resolve/main/big.bin", { token: alice });
  assert.ok(dl.buf.equals(edited), "edited version reads back");
  const dl2 = await downloadFile(hub("alice/dedup2", { path: "copy.bin", xet: true }));
  assert.equal(sha256(Buffer.from(await dl2.arrayBuffer())), sha256(base));
});

test("bad input: wrong xorb hash, truncated LZ4, missing xorb, lying shard, tampered or expired URLs", async () => {
  const tok = (await xetWriteToken("alice/raw")).accessToken;
  const cas = `${server.url}/xet-cas`;
  const before = stats();
  const post = (p, body) => call("POST", `${cas}${p}`, { token: tok, body });

  // xorb under another hash
  const wrong = await post(`/v1/xorbs/default/${"ab".repeat(32)}`, HELLO_XORB);
  assert.equal(wrong.status, 400, wrong.text);
  assert.match(wrong.text, /nothing was stored/);
  // truncated LZ4 frame (scheme 1, payload cut short)
  const lz4 = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x40, 0x70, 0xdf, 0x0b, 0x00, 0x00, 0x80]);
  const trunc = Buffer.concat([Buffer.from([0, lz4.length, 0, 0, 1, 11, 0, 0]), lz4]);
  const t = await post(`/v1/xorbs/default/${HELLO_XORB_HASH}`, trunc);
  assert.equal(t.status, 400, t.text);
  // shard before its xorb exists
  const early = await post("/v1/shards", helloShard());
  assert.equal(early.status, 400, early.text);
  assert.match(early.text, /4e39378b/);
  let s = stats();
  assert.equal(s.xorbs, before.xorbs);
  assert.equal(s.files, before.files);

  // the golden xorb goes in (idempotently)
  const ok = await post(`/v1/xorbs/default/${HELLO_XORB_HASH}`, HELLO_XORB);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.was_inserted, true);
  const again = await post(`/v1/xorbs/default/${HELLO_XORB_HASH}`, HELLO_XORB);
  assert.equal(again.json.was_inserted, false);
  // a shard that lies about sizes
  const lie = await post("/v1/shards", helloShard({ unpacked: 12 }));
  assert.equal(lie.status, 400, lie.text);
  assert.equal(stats().files, before.files);
  // the golden shard registers the file; the commit accepts its sha256
  const sh = await post("/v1/shards", helloShard());
  assert.equal(sh.status, 200, sh.text);
  assert.deepEqual(sh.json, { result: 1 });
  assert.deepEqual((await post("/v1/shards", helloShard())).json, { result: 0 });
  const ndjson =
    JSON.stringify({ key: "header", value: { summary: "hello via xet" } }) +
    "\n" +
    JSON.stringify({ key: "lfsFile", value: { path: "hello.txt", algo: "sha256", oid: sha256(HELLO), size: 11 } }) +
    "\n";
  const c = await call("POST", "/api/models/alice/raw/commit/main", {
    token: alice,
    body: ndjson,
    headers: { "Content-Type": "application/x-ndjson" },
  });
  assert.equal(c.status, 200, c.text);
  const r = await call("GET", "/alice/raw/resolve/main/hello.txt");
  assert.equal(r.text, "hello world");
  assert.equal(r.headers.get("x-xet-hash"), "f15edd43b7e85cfd25e2758ffe13b99fdd09dfa817e8d9f6548722a7a126db7f");

  // reconstruction (§10.6: bytes=6-10) and its transfer URL
  const rec = await call("GET", `${cas}/v2/reconstructions/f15edd43b7e85cfd25e2758ffe13b99fdd09dfa817e8d9f6548722a7a126db7f`, {
    token: tok,
    headers: { Range: "bytes=6-10" },
  });
  assert.equal(rec.status, 200, rec.text);
  assert.equal(rec.json.offset_into_first_range, 6);
  const fetchEntry = rec.json.xorbs[HELLO_XORB_HASH][0];
  assert.deepEqual(fetchEntry.ranges[0].bytes, { start: 0, end: 18 });
  const x = await call("GET", fetchEntry.url, { headers: { Range: "bytes=0-18" } });
  assert.equal(x.status, 206);
  assert.equal(x.headers.get("content-range"), "bytes 0-18/19");
  assert.ok(x.buf.equals(HELLO_XORB));
  const tampered = await call("GET", fetchEntry.url.replace(/sig=./, (m) => (m.endsWith("0") ? "sig=1" : "sig=0")), { headers: { Range: "bytes=0-18" } });
  assert.equal(tampered.status, 403);
  const widened = await call("GET", fetchEntry.url.replace("/0-18?", "/0-19?"), { headers: { Range: "bytes=0-18" } });
  assert.equal(widened.status, 403);
  const part = await call("GET", fetchEntry.url, { headers: { Range: "bytes=8-12" } });
  assert.equal(part.status, 206);
  assert.equal(part.text, "hello");
  const past = await call("GET", `${cas}/v2/reconstructions/f15edd43b7e85cfd25e2758ffe13b99fdd09dfa817e8d9f6548722a7a126db7f`, {
    token: tok,
    headers: { Range: "bytes=11-20" },
  });
  assert.equal(past.status, 416);
  // dedup query: a footer shard with HMACed hashes, or 404
  const dd = await call("GET", `${cas}/v1/chunks/default/${HELLO_XORB_HASH}`, { token: tok });
  assert.equal(dd.status, 200);
  assert.equal(dd.buf.length, 48 + 48 + 48 + 48 + 48 + 200);
  assert.ok(!dd.buf.includes(hashBytes(HELLO_XORB_HASH).subarray(0, 8), 144), "chunk hash is HMACed");
  const miss = await call("GET", `${cas}/v1/chunks/default/${"00".repeat(32)}`, { token: tok });
  assert.equal(miss.status, 404);
  // another repo's token cannot read this repo's reconstruction
  const other = (await xetWriteToken("alice/x")).accessToken;
  const acl = await call("GET", `${cas}/v2/reconstructions/f15edd43b7e85cfd25e2758ffe13b99fdd09dfa817e8d9f6548722a7a126db7f`, { token: other });
  assert.equal(acl.status, 404);
});

test("expired transfer URLs answer 403", async () => {
  process.env.MODELHUB_XET_URL_TTL = "1";
  const short = await startServer();
  delete process.env.MODELHUB_XET_URL_TTL;
  try {
    const tok = short.makeUser("carol", "write");
    await createRepo({ repo: "carol/e", accessToken: tok, hubUrl: short.url });
    const data = randomBytes(200000);
    await uploadFiles({ repo: "carol/e", accessToken: tok, hubUrl: short.url, useXet: true, files: [{ path: "e.bin", content: new Blob([data]) }] });
    const head = await fetch(`${short.url}/carol/e/resolve/main/e.bin`, { method: "HEAD", headers: { Authorization: `Bearer ${tok}` } });
    const xh = head.headers.get("x-xet-hash");
    const t = await (await fetch(`${short.url}/api/models/carol/e/xet-read-token/main`, { headers: { Authorization: `Bearer ${tok}` } })).json();
    const rec = await (await fetch(`${t.casUrl}/v2/reconstructions/${xh}`, { headers: { Authorization: `Bearer ${t.accessToken}` } })).json();
    const [entry] = Object.values(rec.xorbs)[0];
    const { start, end } = entry.ranges[0].bytes;
    const fresh = await fetch(entry.url, { headers: { Range: `bytes=${start}-${end}` } });
    assert.equal(fresh.status, 206);
    await fresh.arrayBuffer();
    // a slice's URL is signed for its chunks only: other bytes of the xorb are refused
    const sl = await (
      await fetch(`${t.casUrl}/v2/reconstructions/${xh}`, { headers: { Authorization: `Bearer ${t.accessToken}`, Range: "bytes=150000-199999" } })
    ).json();
    const [slEntry] = Object.values(sl.xorbs)[0];
    assert.ok(slEntry.ranges[0].bytes.start > 0);
    const outside = await fetch(slEntry.url, { headers: { Range: `bytes=0-${slEntry.ranges[0].bytes.end}` } });
    assert.equal(outside.status, 403);
    await sleep(2500);
    const stale = await fetch(entry.url, { headers: { Range: `bytes=${start}-${end}` } });
    assert.equal(stale.status, 403);
    assert.match(stale.headers.get("x-error-message") ?? "", /expired/);
  } finally {
    await short.stop();
  }
});

test("tokens: exp is advertised minutes before the server stops honouring the token", async () => {
  // Clients refresh by their own clock shortly before the advertised exp (xet-core 30 s,
  // JS 60 s): the token must outlive what they are told.
  const w = await xetWriteToken("alice/cas");
  const enforced = Number(w.accessToken.split(".")[3]); // xet1.<repo>.<w>.<exp>.<sig> (docs/xet.md)
  assert.ok(w.exp <= enforced - 120, `advertised ${w.exp}, enforced ${enforced}`);
  assert.ok(w.exp > Date.now() / 1000 + 600);
  const r = await call("GET", "/api/models/alice/cas/xet-read-token/main", { token: alice });
  assert.ok(r.json.exp <= Number(r.json.accessToken.split(".")[3]) - 120);
  assert.equal(r.headers.get("x-xet-token-expiration"), String(r.json.exp));
  const b = await call("POST", "/alice/cas.git/info/lfs/objects/batch", {
    token: alice,
    json: { operation: "upload", transfers: ["basic", "xet"], hash_algo: "sha_256", objects: [{ oid: "ab".repeat(32), size: 5 }] },
  });
  assert.equal(b.json.transfer, "xet");
  const hdr = b.json.objects[0].actions.upload.header;
  assert.ok(Number(hdr["X-Xet-Token-Expiration"]) <= Number(hdr["X-Xet-Access-Token"].split(".")[3]) - 120);
});

// One file uploaded by hand into alice/cas, shared by the CAS route tests below.
let casUp;
async function casUpload() {
  const t = await xetWriteToken("alice/cas");
  if (!casUp) {
    casUp = xetUpload([randomBytes(70000), randomBytes(3333)]);
    const x = await call("POST", `${t.casUrl}/v1/xorbs/default/${casUp.xorbHash}`, { token: t.accessToken, body: casUp.xorb });
    assert.equal(x.status, 200, x.text);
    assert.equal(x.json.was_inserted, true);
  }
  return { cas: t.casUrl, tok: t.accessToken, up: casUp };
}

test("/v2/shards is answered (NDJSON events ending in the result) instead of 404 after the body", async () => {
  const { cas, tok, up } = await casUpload();

  // /v2/shards (xet-core's first choice): the NDJSON event stream ending in a result frame.
  // A 404 here would make the client upload every shard twice (v2, then v1).
  const v2 = await call("POST", `${cas}/v2/shards`, { token: tok, body: up.shard });
  assert.equal(v2.status, 200, v2.text);
  assert.match(v2.headers.get("content-type"), /^application\/x-ndjson/);
  const events = v2.text.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(events.at(-1), { type: "result", result: 1 });
  assert.ok(events.some((e) => e.type === "validating"));
  const again = await call("POST", `${cas}/v2/shards`, { token: tok, body: up.shard });
  assert.deepEqual(JSON.parse(again.text.trim().split("\n").at(-1)), { type: "result", result: 0 });
  const bad = Buffer.from(up.shard);
  bad.writeUInt32LE(12345, 96 + 36); // the term lies about its size
  const lie = await call("POST", `${cas}/v2/shards`, { token: tok, body: bad });
  assert.equal(lie.status, 400, lie.text); // fatal for the client, not a 404 fallback
  const ro = (await call("GET", "/api/models/alice/cas/xet-read-token/main", { token: alice })).json.accessToken;
  assert.equal((await call("POST", `${cas}/v2/shards`, { token: ro, body: up.shard })).status, 403);
});

test("CAS routes beside the main flow: GET /v1/reconstructions, HEAD /v1/files, /v1/telemetry", async () => {
  const { cas, tok, up } = await casUpload();
  const sh = await call("POST", `${cas}/v1/shards`, { token: tok, body: up.shard });
  assert.equal(sh.status, 200, sh.text);

  // v1 reconstruction (xet-core's fallback): fetch_info with chunk range and url_range
  const rec = await call("GET", `${cas}/v1/reconstructions/${up.fileHash}`, { token: tok, headers: { Range: "bytes=0-" } });
  assert.equal(rec.status, 200, rec.text);
  assert.equal(rec.json.offset_into_first_range, 0);
  assert.deepEqual(rec.json.terms, [{ hash: up.xorbHash, unpacked_length: up.data.length, range: { start: 0, end: 2 } }]);
  const [fi] = rec.json.fetch_info[up.xorbHash];
  assert.deepEqual(fi.range, { start: 0, end: 2 });
  assert.deepEqual(fi.url_range, { start: 0, end: up.xorb.length - 1 });
  const bytes = await call("GET", fi.url, { headers: { Range: `bytes=0-${up.xorb.length - 1}` } });
  assert.equal(bytes.status, 206);
  assert.ok(bytes.buf.equals(up.xorb));
  const tail = await call("GET", `${cas}/v1/reconstructions/${up.fileHash}`, { token: tok, headers: { Range: "bytes=70005-18446744073709551614" } });
  assert.equal(tail.status, 200, tail.text);
  assert.equal(tail.json.offset_into_first_range, 5);
  assert.deepEqual(tail.json.terms[0].range, { start: 1, end: 2 });
  assert.equal((await call("GET", `${cas}/v1/reconstructions/${up.fileHash}`, { token: tok, headers: { Range: `bytes=${up.data.length}-` } })).status, 416);
  assert.equal((await call("GET", `${cas}/v1/reconstructions/${"0".repeat(64)}`, { token: tok })).status, 404);

  // HEAD /v1/files/{file}: the size; GET is not a download route
  const fh = await fetch(`${cas}/v1/files/${up.fileHash}`, { method: "HEAD", headers: { Authorization: `Bearer ${tok}` } });
  assert.equal(fh.status, 200);
  assert.equal(fh.headers.get("content-length"), String(up.data.length));
  const miss = await fetch(`${cas}/v1/files/${"1".repeat(64)}`, { method: "HEAD", headers: { Authorization: `Bearer ${tok}` } });
  assert.equal(miss.status, 404);
  const other = (await xetWriteToken("alice/raw")).accessToken;
  const acl = await fetch(`${cas}/v1/files/${up.fileHash}`, { method: "HEAD", headers: { Authorization: `Bearer ${other}` } });
  assert.equal(acl.status, 404);
  const get = await call("GET", `${cas}/v1/files/${up.fileHash}`, { token: tok });
  assert.equal(get.status, 405);
  assert.equal((await call("GET", `${cas}/v1/xorbs/default/${up.xorbHash}`, { token: tok })).status, 405);
  const xh = await fetch(`${cas}/v1/xorbs/default/${up.xorbHash}`, { method: "HEAD", headers: { Authorization: `Bearer ${tok}` } });
  assert.equal(xh.headers.get("content-length"), String(up.xorb.length));

  // telemetry: accepted and dropped
  const tel = await call("POST", `${cas}/v1/telemetry`, { token: tok, json: { events: [{ kind: "upload", bytes: 1 }] } });
  assert.equal(tel.status, 204);
});

test("dedup answers share one HMAC key per period, across restarts", async () => {
  const { cas, tok, up } = await casUpload();
  const sh = await call("POST", `${cas}/v1/shards`, { token: tok, body: up.shard });
  assert.equal(sh.status, 200, sh.text);
  // Dedup answers for the same chunk share their HMAC key within a period (the client
  // caches these shards; one key per answer would multiply its matching work).
  const keyOf = (buf) => buf.subarray(buf.length - 200 + 72, buf.length - 200 + 104);
  const d1 = await call("GET", `${cas}/v1/chunks/default/${up.firstChunk}`, { token: tok });
  const d2 = await call("GET", `${cas}/v1/chunks/default/${up.firstChunk}`, { token: tok });
  assert.equal(d1.status, 200);
  assert.equal(d2.status, 200);
  assert.notDeepEqual(keyOf(d1.buf), Buffer.alloc(32));
  assert.deepEqual(keyOf(d1.buf), keyOf(d2.buf));
  // ...also after a restart (the secret is kept in the DB)
  await server.crashAndRestart();
  const d3 = await call("GET", `${cas}/v1/chunks/default/${up.firstChunk}`, { token: tok });
  assert.equal(d3.status, 200);
  assert.deepEqual(keyOf(d3.buf), keyOf(d1.buf));
});

test("xorb bodies stream to storage as they arrive; a rejected one leaves nothing behind", async () => {
  const tok = (await xetWriteToken("alice/cas")).accessToken;
  const before = stats();
  const records = [];
  // On disk the unfinished body grows in xet/tmp; in a bucket it goes up in parts of
  // 8 MiB (a multipart upload under xet/tmp/), so send more than one part there.
  const s3 = !!s3Of(server);
  for (let i = 0; i < (s3 ? 80 : 40); i++) records.push(rawRecord(randomBytes(131072)));
  const body = Buffer.concat(records); // ~5 MiB (10 MiB on S3) of well-formed records
  const tmp = path.join(server.dataDir, "xet", "tmp");
  const tmpBytes = async () =>
    s3
      ? (await tempData(server, "xet")).length * 8 * MB // a started upload holds a whole part
      : existsSync(tmp) ? readdirSync(tmp).filter((f) => f.endsWith(".tmp")).reduce((n, f) => n + statSync(path.join(tmp, f)).size, 0) : 0;
  const url = new URL(`${server.url}/xet-cas/v1/xorbs/default/${"cd".repeat(32)}`);
  let answer;
  const req = http.request(url, {
    method: "POST",
    headers: { Authorization: `Bearer ${tok}`, "Content-Length": body.length },
  });
  const done = new Promise((resolve, reject) => {
    req.on("response", (res) => {
      const parts = [];
      res.on("data", (d) => parts.push(d));
      res.on("end", () => resolve((answer = { status: res.statusCode, text: Buffer.concat(parts).toString() })));
    });
    req.on("error", reject);
  });
  const head = s3 ? 9 * MB : 3 * MB;
  req.write(body.subarray(0, head));
  let seen = 0;
  for (let i = 0; i < 100 && seen < 2 * MB; i++) {
    await sleep(50);
    seen = await tmpBytes();
  }
  assert.ok(seen >= 2 * MB, `${seen} bytes of the unfinished upload are in storage, not in memory`);
  req.end(body.subarray(head));
  await done;
  assert.equal(answer.status, 400, answer.text);
  assert.match(answer.text, /mismatch/);
  for (let i = 0; i < 50 && (await tmpBytes()) > 0; i++) await sleep(50);
  assert.equal(await tmpBytes(), 0, "the temporary object is removed");
  assert.equal(stats().xorbs, before.xorbs);
});
