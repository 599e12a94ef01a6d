// git-LFS batch API + signed transfers (hf-api.md §5.3, §8.2; docs/lfs.md), driven with
// plain fetch the way huggingface_hub / @huggingface/hub / git-lfs send their requests.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import path from "node:path";
import { startServer } from "./lib/server.mjs";
import { objectStored, tempData } from "./lib/store.mjs";

// This file checks the plain LFS/HTTP contract (hf-api.md): Xet off for its server.
process.env.MODELHUB_XET = "0";

const LFS = "application/vnd.git-lfs+json";
let server;
let alice; // write token
let aliceRead; // read-only token

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

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

/** POST the batch endpoint of alice/<repo> (git remote form, with .git). */
function batch(repo, body, token = alice) {
  return call("POST", `/${repo}.git/info/lfs/objects/batch`, { token, json: body, lfs: true });
}

const upload = (objects, extra = {}) => ({ operation: "upload", transfers: ["basic"], objects, hash_algo: "sha256", ref: { name: "main" }, ...extra });
const download = (objects, extra = {}) => ({ operation: "download", objects, ...extra });
const obj = (buf) => ({ oid: sha256(buf), size: buf.length });

before(async () => {
  server = await startServer();
  alice = server.makeUser("alice", "write");
  aliceRead = server.makeToken("alice", "read", "alice-read");
  for (const [name, type] of [["m", undefined], ["ds", "dataset"], ["priv", undefined]]) {
    const r = await call("POST", "/api/repos/create", {
      token: alice,
      json: { name, organization: "alice", ...(type ? { type } : {}), ...(name === "priv" ? { private: true } : {}) },
    });
    assert.equal(r.status, 200, r.text);
  }
});

after(() => server?.stop());

test("basic upload: batch → signed PUT without auth → batch says stored → download + Range", async () => {
  const data = randomBytes(1000);
  const o = obj(data);
  let r = await batch("alice/m", upload([o]));
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get("content-type"), /^application\/vnd\.git-lfs\+json/);
  assert.equal(r.json.transfer, "basic");
  const ro = r.json.objects[0];
  assert.equal(ro.oid, o.oid);
  assert.equal(ro.size, o.size);
  assert.equal(ro.authenticated, true);
  const up = ro.actions.upload;
  assert.ok(up.href.startsWith(server.url + "/lfs-put/"), up.href);
  assert.equal(up.header, undefined, "signed URLs need no header");
  assert.ok(up.expires_in > 3600);
  assert.ok(ro.actions.verify.href.startsWith(`${server.url}/alice/m.git/info/lfs/verify?`));

  // Python sends no headers at all.
  r = await call("PUT", up.href, { body: data });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get("etag"), `"${o.oid}"`);
  assert.ok(await objectStored(server, o.oid));

  // Verify via the signed href, no credentials (git-lfs with authenticated: true).
  r = await call("POST", ro.actions.verify.href, { json: o, lfs: true });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get("content-type"), /^application\/vnd\.git-lfs\+json/);
  // ... and the Python way: normal Authorization, application/json.
  r = await call("POST", `/alice/m.git/info/lfs/verify`, { token: alice, json: o });
  assert.equal(r.status, 200, r.text);
  r = await call("POST", `/alice/m.git/info/lfs/verify`, { token: alice, json: { oid: sha256(Buffer.from("nope")), size: 4 } });
  assert.equal(r.status, 404, r.text);

  // Already stored: no actions.
  r = await batch("alice/m", upload([o]));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.objects[0], { oid: o.oid, size: o.size });

  // Download: git-lfs style, anonymous on a public repo, with refs/heads/main.
  r = await call("POST", "/alice/m.git/info/lfs/objects/batch", { json: download([o], { ref: { name: "refs/heads/main" } }), lfs: true });
  assert.equal(r.status, 200, r.text);
  const dl = r.json.objects[0].actions.download;
  assert.ok(dl.href.startsWith(server.url + "/lfs-get/"), dl.href);
  r = await call("GET", dl.href);
  assert.equal(r.status, 200);
  assert.ok(r.buf.equals(data));
  assert.equal(r.headers.get("etag"), `"${o.oid}"`);
  assert.equal(r.headers.get("accept-ranges"), "bytes");
  r = await call("GET", dl.href, { headers: { Range: "bytes=10-19" } });
  assert.equal(r.status, 206);
  assert.equal(r.headers.get("content-range"), "bytes 10-19/1000");
  assert.ok(r.buf.equals(data.subarray(10, 20)));
  r = await call("GET", dl.href, { headers: { Range: "bytes=5000-" } });
  assert.equal(r.status, 416);
  r = await call("HEAD", dl.href);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-length"), "1000");
});

test("the .git suffix is optional and the datasets/ prefix works", async () => {
  const data = randomBytes(64);
  let r = await call("POST", "/datasets/alice/ds/info/lfs/objects/batch", { token: alice, json: upload([obj(data)]), lfs: true });
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.objects[0].actions.verify.href.startsWith(`${server.url}/datasets/alice/ds.git/info/lfs/verify?`));
  r = await call("PUT", r.json.objects[0].actions.upload.href, { body: data });
  assert.equal(r.status, 200, r.text);
});

test("chunked PUT (no Content-Length) is accepted", async () => {
  const data = randomBytes(300000);
  const o = obj(data);
  let r = await batch("alice/m", upload([o]));
  const href = r.json.objects[0].actions.upload.href;
  const stream = new ReadableStream({
    start(c) {
      for (let i = 0; i < data.length; i += 65536) c.enqueue(data.subarray(i, i + 65536));
      c.close();
    },
  });
  const res = await fetch(href, { method: "PUT", body: stream, duplex: "half" });
  assert.equal(res.status, 200, await res.text());
  r = await batch("alice/m", download([o]));
  assert.ok(r.json.objects[0].actions.download);
});

test("wrong bytes → 400 and nothing stored", async () => {
  const data = randomBytes(2048);
  const o = obj(data);
  let r = await batch("alice/m", upload([o]));
  const href = r.json.objects[0].actions.upload.href;
  r = await call("PUT", href, { body: randomBytes(2048) });
  assert.equal(r.status, 400, r.text);
  assert.match(r.headers.get("x-error-message"), /sha256 mismatch/);
  r = await call("PUT", href, { body: data.subarray(0, 100) }); // too short
  assert.equal(r.status, 400);
  assert.match(r.headers.get("x-error-message"), /Content-Length|size mismatch/);
  r = await call("PUT", href, { body: Buffer.concat([data, data]) }); // too long
  assert.equal(r.status, 400);
  assert.ok(!(await objectStored(server, o.oid)));
  r = await batch("alice/m", download([o]));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.objects[0].error, { code: 404, message: "Object does not exist" });
  // The URL still works with the right bytes.
  r = await call("PUT", href, { body: data });
  assert.equal(r.status, 200, r.text);
});

test("tampered, expired-looking and replayed signed URLs → 403", async () => {
  const a = randomBytes(500), b = randomBytes(500);
  let r = await batch("alice/m", upload([obj(a), obj(b)]));
  const hrefA = r.json.objects[0].actions.upload.href;
  const u = new URL(hrefA);
  const sig = u.searchParams.get("sig");
  const bad = new URL(hrefA);
  bad.searchParams.set("sig", sig.slice(0, -1) + (sig.endsWith("0") ? "1" : "0"));
  r = await call("PUT", bad.toString(), { body: a });
  assert.equal(r.status, 403);
  assert.match(r.headers.get("x-error-message"), /signed URL/i);
  const exp = new URL(hrefA);
  exp.searchParams.set("exp", String(Number(u.searchParams.get("exp")) + 3600));
  r = await call("PUT", exp.toString(), { body: a });
  assert.equal(r.status, 403);
  const past = new URL(hrefA);
  past.searchParams.set("exp", "1000");
  r = await call("PUT", past.toString(), { body: a });
  assert.equal(r.status, 403);
  // A's signature on B's path.
  const replay = new URL(hrefA);
  replay.pathname = replay.pathname.replace(obj(a).oid, obj(b).oid);
  r = await call("PUT", replay.toString(), { body: b });
  assert.equal(r.status, 403);
  r = await call("PUT", `${u.origin}${u.pathname}`, { body: a }); // unsigned
  assert.equal(r.status, 403);
  assert.ok(!(await objectStored(server, obj(a).oid)));
  assert.ok(!(await objectStored(server, obj(b).oid)));
  // Download URLs too; and a download URL is no upload URL.
  r = await call("GET", `/lfs-get/${u.pathname.split("/")[2]}/${obj(a).oid}?exp=${u.searchParams.get("exp")}&sig=${sig}`);
  assert.equal(r.status, 403);
});

test("multipart: 12 MiB object → chunk_size + part URLs, PUT parts, complete, download", async () => {
  const data = randomBytes(12 * 1024 * 1024);
  const o = obj(data);
  let r = await batch("alice/m", upload([o], { transfers: ["basic", "multipart"] }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.transfer, "multipart");
  const up = r.json.objects[0].actions.upload;
  const chunk = Number(up.header.chunk_size);
  assert.ok(chunk >= 5 * 1024 * 1024);
  const keys = Object.keys(up.header).filter((k) => k !== "chunk_size");
  assert.deepEqual(Object.keys(up.header), ["chunk_size", ...keys], "chunk_size then parts only");
  assert.equal(keys.length, Math.ceil(o.size / chunk));
  assert.deepEqual(keys, keys.map((_, i) => String(i + 1).padStart(5, "0")));
  const parts = [];
  for (const [i, k] of keys.entries()) {
    const res = await call("PUT", up.header[k], { body: data.subarray(i * chunk, (i + 1) * chunk) });
    assert.equal(res.status, 200, res.text);
    const etag = res.headers.get("etag");
    assert.match(etag, /^"[0-9a-f]{64}"$/);
    parts.push({ partNumber: i + 1, etag });
  }
  // A wrongly sized part is refused.
  r = await call("PUT", up.header["00001"], { body: data.subarray(0, 1000) });
  assert.equal(r.status, 400);
  // Wrong part list is refused, the right one assembles.
  r = await call("POST", up.href, { json: { oid: o.oid, parts: parts.slice(1) }, lfs: true });
  assert.equal(r.status, 400, r.text);
  r = await call("POST", up.href, { json: { oid: o.oid, parts }, lfs: true });
  assert.equal(r.status, 200, r.text);
  r = await batch("alice/m", download([o]));
  const got = await call("GET", r.json.objects[0].actions.download.href);
  assert.equal(got.status, 200);
  assert.equal(sha256(got.buf), o.oid);
  // Completing again is harmless.
  r = await call("POST", up.href, { json: { oid: o.oid, parts }, lfs: true });
  assert.equal(r.status, 200, r.text);
});

test("multipart offered but the object fits one part → basic", async () => {
  const data = randomBytes(4096);
  const r = await batch("alice/m", upload([obj(data)], { transfers: ["basic", "multipart", "xet"] }));
  assert.equal(r.json.transfer, "basic");
  assert.equal(r.json.objects[0].actions.upload.header, undefined);
});

test("multipart assembled from wrong bytes → 400, nothing stored", async () => {
  const data = randomBytes(9 * 1024 * 1024);
  const o = obj(data);
  let r = await batch("alice/m", upload([o], { transfers: ["multipart"] }));
  const up = r.json.objects[0].actions.upload;
  const chunk = Number(up.header.chunk_size);
  const evil = Buffer.from(data);
  evil[chunk + 5] ^= 1;
  for (const [i, k] of ["00001", "00002"].entries()) {
    r = await call("PUT", up.header[k], { body: evil.subarray(i * chunk, (i + 1) * chunk) });
    assert.equal(r.status, 200);
  }
  r = await call("POST", up.href, { json: { oid: o.oid }, lfs: true });
  assert.equal(r.status, 400, r.text);
  assert.match(r.headers.get("x-error-message"), /sha256 mismatch/);
  assert.ok(!(await objectStored(server, o.oid)));
});

test("permissions: read-only token → 403, anonymous upload → 401 + LFS-Authenticate", async () => {
  const o = obj(randomBytes(10));
  let r = await batch("alice/m", upload([o]), aliceRead);
  assert.equal(r.status, 403, r.text);
  assert.equal(typeof r.json.message, "string");
  r = await batch("alice/m", upload([o]), null);
  assert.equal(r.status, 401, r.text);
  assert.equal(r.headers.get("lfs-authenticate"), 'Basic realm="modelhub"', "exactly one challenge");
  assert.equal(typeof r.json.message, "string");
  // Reading is fine with a read token; git-lfs Basic auth works too.
  r = await batch("alice/m", download([o]), aliceRead);
  assert.equal(r.status, 200);
  r = await call("POST", "/alice/priv.git/info/lfs/objects/batch", {
    json: upload([o]),
    lfs: true,
    headers: { Authorization: "Basic " + Buffer.from(`hf_user:${alice}`).toString("base64") },
  });
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.objects[0].actions.upload);
  // Someone else's private repo stays invisible to a logged-in stranger.
  const bob = server.makeUser("bob", "write");
  r = await batch("alice/priv", download([o]), bob);
  assert.equal(r.status, 404);
});

test("anonymous batch on a private or missing repo → 401 + LFS-Authenticate (git-lfs then asks for credentials)", async () => {
  for (const repo of ["alice/priv", "alice/does-not-exist"]) {
    const r = await batch(repo, download([obj(randomBytes(10))]), null);
    assert.equal(r.status, 401, `${repo}: ${r.text}`);
    assert.match(r.headers.get("lfs-authenticate") ?? "", /^Basic realm=/);
  }
  // A signed verify URL for one repo is no key to another.
  const o = obj(randomBytes(10));
  const up = await batch("alice/m", upload([o]));
  const v = new URL(up.json.objects[0].actions.verify.href);
  const r = await call("POST", `/alice/priv.git/info/lfs/verify${v.search}`, { json: o, lfs: true });
  assert.equal(r.status, 401);
});

test("hash_algo: sha_256 (JS) and absent accepted, others → per-object 409", async () => {
  const o = obj(randomBytes(77));
  let r = await batch("alice/m", upload([o], { hash_algo: "sha_256" }));
  assert.equal(r.status, 200);
  assert.ok(r.json.objects[0].actions.upload);
  r = await batch("alice/m", { operation: "upload", objects: [o] });
  assert.equal(r.status, 200);
  assert.equal(r.json.transfer, "basic");
  assert.ok(r.json.objects[0].actions.upload);
  r = await batch("alice/m", upload([o], { hash_algo: "md5" }));
  assert.equal(r.status, 200);
  assert.equal(r.json.objects[0].error.code, 409);
});

test("per-object and whole-request validation", async () => {
  const good = obj(randomBytes(5));
  let r = await batch("alice/m", upload([
    { oid: good.oid, size: 0 },
    { oid: "XYZ", size: 5 },
    { oid: good.oid, size: 60e9 },
    good,
  ]));
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.objects.map((x) => x.error?.code), [422, 422, 422, undefined]);
  assert.equal(r.json.objects[1].oid, "XYZ");
  // Wrong size for a stored object: the same answer as a missing object (no size oracle).
  const stored = randomBytes(33);
  r = await batch("alice/m", upload([obj(stored)]));
  await call("PUT", r.json.objects[0].actions.upload.href, { body: stored });
  r = await batch("alice/m", download([{ oid: sha256(stored), size: 34 }]));
  assert.equal(r.json.objects[0].error.code, 404);
  assert.equal(r.json.objects[0].error.message, "Object does not exist");
  r = await batch("alice/m", { operation: "delete", objects: [] });
  assert.equal(r.status, 422);
  assert.match(r.headers.get("content-type"), /^application\/vnd\.git-lfs\+json/);
  r = await batch("alice/m", { operation: "upload", objects: [{ oid: good.oid }] });
  assert.equal(r.status, 422);
  r = await call("POST", "/alice/m.git/info/lfs/objects/batch", { token: alice, body: "{nope", lfs: true });
  assert.equal(r.status, 400);
  r = await batch("alice/m", download(Array.from({ length: 1001 }, () => good)));
  assert.equal(r.status, 413);
  r = await batch("alice/nope", download([good]));
  assert.equal(r.status, 404);
  assert.equal(r.headers.get("x-error-code"), "RepoNotFound");
});

test("a client that disconnects mid-upload leaves no object and no temp file", async () => {
  const data = randomBytes(1024 * 1024);
  const o = obj(data);
  const r = await batch("alice/m", upload([o]));
  const u = new URL(r.json.objects[0].actions.upload.href);
  await new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: "PUT", headers: { "Content-Length": data.length } });
    req.on("error", () => resolve());
    req.write(data.subarray(0, 200000), () => setTimeout(() => { req.destroy(); resolve(); }, 200));
  });
  let left = [];
  for (let i = 0; i < 40; i++) {
    left = await tempData(server);
    if (!left.length) break;
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.deepEqual(left, [], "temp files left behind");
  assert.ok(!(await objectStored(server, o.oid)));
  const d = await batch("alice/m", download([o]));
  assert.equal(d.json.objects[0].error.code, 404);
});
