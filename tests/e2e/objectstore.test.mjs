// Blobs in an S3 object store (docs/blob.md, docs/scale-out.md "Object store"), whatever
// MODELHUB_E2E_STORE says: downloads answered with a 302 to a presigned URL
// (--blob-redirect), byte-exact through real clients, Range through the redirect, Xet
// transfer URLs; and an outage of the store: /healthz 503, requests 503 with an error code,
// nothing half-published, and everything back by itself once the store is.
// The store is moto_server behind a TCP relay, so it can be taken down without losing data.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createRepo, downloadFile, fileDownloadInfo, listFiles, uploadFiles } from "@huggingface/hub";
import { isolatedGitEnv } from "./lib/gitenv.mjs";
import { startServer } from "./lib/server.mjs";
import { S3_MODE, createBucket, objectStored, s3Env, sharedMoto, startMoto, startRelay, tempData } from "./lib/store.mjs";

let moto, ownMoto, relay, bucket, server, token;
const sha256 = (b) => createHash("sha256").update(b).digest("hex");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const auth = () => ({ Authorization: `Bearer ${token}` });
const hub = (repo, extra = {}) => ({ repo, accessToken: token, hubUrl: server.url, ...extra });
const work = mkdtempSync(path.join(tmpdir(), "modelhub-objstore-"));

before(async () => {
  moto = S3_MODE ? await sharedMoto() : (ownMoto = await startMoto());
  relay = await startRelay(moto.port);
  bucket = await createBucket(moto.endpoint);
  server = await startServer({ env: { ...s3Env(relay.endpoint, bucket, "hub"), MODELHUB_BLOB_REDIRECT: "1" } });
  token = server.adminToken;
});

after(async () => {
  await server?.stop();
  await relay?.stop();
  await ownMoto?.stop();
  rmSync(work, { recursive: true, force: true });
});

function curl(args) {
  const r = spawnSync("curl", ["-sS", "--noproxy", "*", ...args], { encoding: "buffer", timeout: 60000 });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

test("LFS downloads answer 302 to a presigned URL; byte-exact with @huggingface/hub and curl -L, Range too", async () => {
  await createRepo(hub("admin/redir"));
  const data = randomBytes(300 * 1024);
  const oid = sha256(data);
  await uploadFiles(hub("admin/redir", { useXet: false, files: [{ path: "w.bin", content: new Blob([data]) }] }));
  assert.ok(await objectStored(server, oid), "the object is in the bucket");

  const url = `${server.url}/admin/redir/resolve/main/w.bin`;
  const r = await fetch(url, { headers: auth(), redirect: "manual" });
  await r.arrayBuffer();
  assert.equal(r.status, 302);
  const loc = r.headers.get("location");
  assert.ok(loc.startsWith(`${relay.endpoint}/${bucket}/hub/blobs/sha256/${oid.slice(0, 2)}/${oid.slice(2, 4)}/${oid}?`), loc);
  assert.match(loc, /X-Amz-Expires=300&/);
  assert.match(loc, /X-Amz-Signature=[0-9a-f]{64}$/);
  // What huggingface_hub reads from the redirect itself (it does not follow it for metadata).
  assert.match(r.headers.get("x-repo-commit"), /^[0-9a-f]{40}$/);
  assert.equal(r.headers.get("x-linked-size"), String(data.length));
  assert.equal(r.headers.get("x-linked-etag"), `"${oid}"`);
  assert.equal(r.headers.get("etag"), `"${oid}"`);
  const h = await fetch(url, { method: "HEAD", headers: auth(), redirect: "manual" });
  assert.equal(h.status, 302);
  assert.equal(h.headers.get("x-linked-size"), String(data.length));
  // The presigned URL needs no credentials.
  const direct = await fetch(loc);
  assert.equal(direct.status, 200);
  assert.ok(Buffer.from(await direct.arrayBuffer()).equals(data));

  // Real clients follow it.
  const info = await fileDownloadInfo(hub("admin/redir", { path: "w.bin" }));
  assert.equal(info.size, data.length);
  const blob = await downloadFile(hub("admin/redir", { path: "w.bin" }));
  assert.ok(Buffer.from(await blob.arrayBuffer()).equals(data), "@huggingface/hub download is byte-exact");
  assert.ok(curl(["-L", "-H", `Authorization: Bearer ${token}`, url]).equals(data), "curl -L is byte-exact");
  // Range travels with the redirect.
  assert.ok(curl(["-L", "-r", "1000-1999", "-H", `Authorization: Bearer ${token}`, url]).equals(data.subarray(1000, 2000)));
  const part = await fetch(url, { headers: { ...auth(), Range: "bytes=5000-" } });
  assert.equal(part.status, 206);
  assert.ok(Buffer.from(await part.arrayBuffer()).equals(data.subarray(5000)));
  // Without access, no URL.
  await createRepo(hub("admin/priv", { private: true }));
  await uploadFiles(hub("admin/priv", { useXet: false, files: [{ path: "p.bin", content: new Blob([data]) }] }));
  const anon = await fetch(`${server.url}/admin/priv/resolve/main/p.bin`, { redirect: "manual" });
  await anon.arrayBuffer();
  assert.ok(anon.status === 401 || anon.status === 404, String(anon.status));
  assert.equal(anon.headers.get("location"), null);
});

test("git-lfs: batch download hrefs redirect to the store, and a clone smudges the bytes", async () => {
  await createRepo(hub("admin/glfs"));
  const data = randomBytes(200 * 1024);
  const oid = sha256(data);
  await uploadFiles(hub("admin/glfs", { useXet: false, files: [{ path: "m.bin", content: new Blob([data]) }] }));
  const b = await fetch(`${server.url}/admin/glfs.git/info/lfs/objects/batch`, {
    method: "POST",
    headers: { ...auth(), "Content-Type": "application/vnd.git-lfs+json", Accept: "application/vnd.git-lfs+json" },
    body: JSON.stringify({ operation: "download", transfers: ["basic"], objects: [{ oid, size: data.length }] }),
  });
  const href = (await b.json()).objects[0].actions.download.href;
  const g = await fetch(href, { redirect: "manual" });
  await g.arrayBuffer();
  assert.equal(g.status, 302);
  assert.ok(g.headers.get("location").startsWith(`${relay.endpoint}/${bucket}/`));
  assert.equal(g.headers.get("etag"), `"${oid}"`);

  const env = isolatedGitEnv(path.join(work, "home"));
  const git = (args, cwd = work) => {
    const r = spawnSync("git", args, { cwd, env, encoding: "utf8", timeout: 60000 });
    assert.equal(r.status, 0, `git ${args.join(" ")}: ${r.stderr}`);
    return r;
  };
  git(["lfs", "install", "--skip-repo"]);
  const u = new URL(server.url);
  const dir = path.join(work, "clone");
  git(["clone", `http://hf_user:${token}@${u.host}/admin/glfs`, dir]);
  assert.ok(readFileSync(path.join(dir, "m.bin")).equals(data), "git-lfs smudged the bytes from the store");
});

test("Xet transfer URLs redirect with the Range bound into the signature", async () => {
  await createRepo(hub("admin/xr"));
  const data = randomBytes(400000);
  await uploadFiles(hub("admin/xr", { useXet: true, files: [{ path: "x.bin", content: new Blob([data]) }] }));
  const head = await fetch(`${server.url}/admin/xr/resolve/main/x.bin`, { method: "HEAD", headers: auth() });
  const xh = head.headers.get("x-xet-hash");
  assert.match(xh, /^[0-9a-f]{64}$/);
  const t = await (await fetch(`${server.url}/api/models/admin/xr/xet-read-token/main`, { headers: auth() })).json();
  const rec = await (await fetch(`${t.casUrl}/v2/reconstructions/${xh}`, { headers: { Authorization: `Bearer ${t.accessToken}` } })).json();
  const [entry] = Object.values(rec.xorbs)[0];
  const { start, end } = entry.ranges[0].bytes;
  const range = `bytes=${start}-${end}`;
  const r = await fetch(entry.url, { headers: { Range: range }, redirect: "manual" });
  await r.arrayBuffer();
  assert.equal(r.status, 302);
  const loc = r.headers.get("location");
  assert.match(loc, /\/hub\/xet\/blobs\/sha256\//);
  assert.match(loc, /X-Amz-SignedHeaders=host%3Brange&/);
  const f = await fetch(entry.url, { headers: { Range: range } }); // followed, same Range
  assert.equal(f.status, 206);
  assert.equal((await f.arrayBuffer()).byteLength, end - start + 1);
  // No Range (or another form of it): served by the hub as before.
  const plain = await fetch(entry.url, { redirect: "manual" });
  assert.equal(plain.status, 206);
  assert.equal((await plain.arrayBuffer()).byteLength, end - start + 1);
  // The Xet client downloads byte-exact through the redirects.
  const blob = await downloadFile(hub("admin/xr", { path: "x.bin", xet: true }));
  assert.ok(Buffer.from(await blob.arrayBuffer()).equals(data));
});

async function health() {
  const r = await fetch(`${server.url}/healthz`);
  return { status: r.status, json: await r.json(), code: r.headers.get("x-error-code"), msg: r.headers.get("x-error-message") };
}

async function until(what, fn, ms = 15000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    if ((last = await fn())) return last;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("store outage: /healthz 503, downloads and uploads 503 with an error code, nothing half-published; it recovers alone", async () => {
  await createRepo(hub("admin/down"));
  const data = randomBytes(100 * 1024);
  await uploadFiles(hub("admin/down", { useXet: false, files: [{ path: "a.bin", content: new Blob([data]) }] }));
  let h = await health();
  assert.equal(h.status, 200);
  assert.deepEqual(h.json.checks, { database: "ok", blobStore: "ok" });
  const headBefore = (await (await fetch(`${server.url}/api/models/admin/down/revision/main`, { headers: auth() })).json()).sha;

  await relay.down();
  try {
    h = await until("/healthz to report the store", async () => {
      const x = await health();
      return x.status === 503 ? x : null;
    });
    assert.equal(h.code, "ServiceUnavailable");
    assert.match(h.msg, /blob store/);
    assert.equal(h.json.checks.database, "ok");
    assert.notEqual(h.json.checks.blobStore, "ok");

    // A stored file: 503 with an error code, not a 404 or a broken body.
    const d = await fetch(`${server.url}/admin/down/resolve/main/a.bin`, { headers: auth(), redirect: "manual" });
    await d.arrayBuffer();
    assert.equal(d.status, 503);
    assert.equal(d.headers.get("x-error-code"), "ServiceUnavailable");
    assert.ok(d.headers.get("x-error-message"));

    // Uploads fail cleanly: the client sees an error, the branch does not move.
    const fresh = randomBytes(150 * 1024);
    await assert.rejects(
      uploadFiles(hub("admin/down", { useXet: false, files: [{ path: "b.bin", content: new Blob([fresh]) }] })),
    );
    // A PUT to a signed upload URL issued before the outage: 503 too.
    const b = await fetch(`${server.url}/admin/down.git/info/lfs/objects/batch`, {
      method: "POST",
      headers: { ...auth(), "Content-Type": "application/vnd.git-lfs+json", Accept: "application/vnd.git-lfs+json" },
      body: JSON.stringify({ operation: "upload", transfers: ["basic"], objects: [{ oid: sha256(fresh), size: fresh.length }] }),
    });
    const bj = await b.json();
    assert.ok(b.status === 503 || bj.objects?.[0]?.error?.code === 503 || bj.objects?.[0]?.actions, JSON.stringify(bj));
    if (bj.objects?.[0]?.actions?.upload) {
      const put = await fetch(bj.objects[0].actions.upload.href, { method: "PUT", body: fresh });
      await put.arrayBuffer();
      assert.equal(put.status, 503);
      assert.equal(put.headers.get("x-error-code"), "ServiceUnavailable");
    }
    const headDuring = (await (await fetch(`${server.url}/api/models/admin/down/revision/main`, { headers: auth() })).json()).sha;
    assert.equal(headDuring, headBefore, "no commit landed during the outage");
  } finally {
    await relay.up();
  }
  // Back by itself: no restart.
  await until("/healthz to recover", async () => (await health()).status === 200);
  const files = [];
  for await (const f of listFiles(hub("admin/down"))) files.push(f.path);
  assert.ok(!files.includes("b.bin"), "nothing half-published");
  assert.deepEqual(await tempData(server), [], "no temporary uploads left in the bucket");
  const again = await downloadFile(hub("admin/down", { path: "a.bin" }));
  assert.ok(Buffer.from(await again.arrayBuffer()).equals(data));
  const fresh = randomBytes(120 * 1024);
  await uploadFiles(hub("admin/down", { useXet: false, files: [{ path: "c.bin", content: new Blob([fresh]) }] }));
  const c = await downloadFile(hub("admin/down", { path: "c.bin" }));
  assert.ok(Buffer.from(await c.arrayBuffer()).equals(fresh));
});

test("commands on the data dir use the recorded s3 store without --blob-store (modelhub export)", async () => {
  await createRepo(hub("admin/rec"));
  const data = randomBytes(60 * 1024);
  await uploadFiles(hub("admin/rec", { useXet: false, files: [{ path: "w.bin", content: new Blob([data]) }] }));
  assert.match(readFileSync(path.join(server.dataDir, "blob-store"), "utf8"), new RegExp(`^s3://${bucket}/hub\\n$`));
  // Endpoint and credentials as in the server's environment, but no store location.
  const { MODELHUB_BLOB_STORE, ...creds } = s3Env(relay.endpoint, bucket);
  const env = { ...process.env, ...creds };
  if (server.env.MODELHUB_DB) env.MODELHUB_DB = server.env.MODELHUB_DB; // its database (PostgreSQL mode)
  delete env.MODELHUB_BLOB_STORE;
  const r = spawnSync(server.bin, ["--data", server.dataDir, "export", "admin/rec"], { env, encoding: "buffer", timeout: 60000 });
  assert.equal(r.status, 0, r.stderr.toString());
  assert.ok(r.stdout.includes(data), "the bundle holds the object read from the bucket");
});
