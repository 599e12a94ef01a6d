// Handlers on event threads never write (docs/architecture.md, "Event threads + workers"):
// the event threads' SQLite connections are read-only (db_thread_readonly), and a write
// there is refused and logged as a bug. This drives every inline read route — repo info,
// tree, paths-info, resolve/raw of LFS and Xet-backed files, the signed LFS/Xet GETs,
// whoami, healthz, metrics — with fresh tokens and a file whose Xet link for the repo
// is not recorded yet (the two writes these routes used to make), and checks that all of
// them answer and nothing tried to write. Plain fetch and @huggingface/hub.
import { before, after, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createRepo, uploadFiles } from "@huggingface/hub";
import { startServer } from "./lib/server.mjs";

let server;
let alice;
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const WRITE_BUG = /BUG: write on a read-only thread/;

async function call(method, p, { token, json, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    body = JSON.stringify(json);
    h["Content-Type"] = "application/json";
  }
  const res = await fetch(p.startsWith("http") ? p : server.url + p, { method, headers: h, body });
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

async function pathsInfo(repo, paths) {
  const r = await call("POST", `/api/models/${repo}/paths-info/main`, { token: alice, json: { paths } });
  assert.equal(r.status, 200, r.text);
  return Object.fromEntries(r.json.map((e) => [e.path, e]));
}

before(async () => {
  server = await startServer();
  alice = server.makeUser("alice", "write");
  for (const name of ["src", "copy"]) await createRepo(hub(`alice/${name}`));
});

after(async () => {
  await server?.stop();
});

test("a fresh token on inline routes: answered, its last use recorded later, no write on the event thread", async () => {
  const reader = server.makeToken("alice", "read", "inline-reader");
  const who = await call("GET", "/api/whoami-v2", { token: reader });
  assert.equal(who.status, 200, who.text);
  assert.equal(who.json.name, "alice");
  assert.equal((await call("GET", "/api/models/alice/src", { token: reader })).status, 200);
  // The token list (a worker route) writes the noted use first.
  const list = await call("GET", "/api/settings/tokens", { token: alice });
  assert.equal(list.status, 200, list.text);
  const t = list.json.find((x) => x.name === "inline-reader");
  assert.ok(t && t.lastUsedAt, JSON.stringify(list.json));
  assert.doesNotMatch(server.log(), WRITE_BUG);
});

test("inline read routes over LFS and Xet-backed files never write", async () => {
  const data = randomBytes(1024 * 1024 + 777);
  const oid = sha256(data);
  await uploadFiles(hub("alice/src", { useXet: false, files: [{ path: "w.bin", content: new Blob([data]) }] }));
  let entry;
  for (let i = 0; i < 100; i++) {
    entry = (await pathsInfo("alice/src", ["w.bin"]))["w.bin"];
    if (entry.xetHash) break;
    await sleep(100);
  }
  assert.match(entry.xetHash ?? "", /^[0-9a-f]{64}$/, "converted in the background");

  // The same object committed to a second repo: it is Xet-backed there too, but the
  // repo's link to the Xet file is not recorded yet — the first read finds it.
  const up = await call("POST", "/alice/copy.git/info/lfs/objects/batch", {
    token: alice,
    body: JSON.stringify({ operation: "upload", transfers: ["basic"], objects: [{ oid, size: data.length }] }),
    headers: { "Content-Type": "application/vnd.git-lfs+json", Accept: "application/vnd.git-lfs+json" },
  });
  assert.equal(up.status, 200, up.text);
  const put = up.json.objects[0].actions?.upload; // proof of possession: the bytes again
  if (put) assert.equal((await call("PUT", put.href, { body: data, headers: put.header || {} })).status, 200);
  const ndjson =
    JSON.stringify({ key: "header", value: { summary: "same object" } }) +
    "\n" +
    JSON.stringify({ key: "lfsFile", value: { path: "copy.bin", algo: "sha256", oid, size: data.length } }) +
    "\n";
  const c = await call("POST", "/api/models/alice/copy/commit/main", {
    token: alice,
    body: ndjson,
    headers: { "Content-Type": "application/x-ndjson" },
  });
  assert.equal(c.status, 200, c.text);

  for (let round = 0; round < 2; round++) {
    const info = await call("GET", "/api/models/alice/copy?blobs=true", { token: alice });
    assert.equal(info.status, 200, info.text);
    const tree = await call("GET", "/api/models/alice/copy/tree/main", { token: alice });
    assert.equal(tree.status, 200, tree.text);
    assert.equal(tree.json.find((e) => e.path === "copy.bin")?.xetHash, entry.xetHash);
    const head = await call("HEAD", "/alice/copy/resolve/main/copy.bin", { token: alice });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("x-xet-hash"), entry.xetHash);
    const get = await call("GET", "/alice/copy/resolve/main/copy.bin", { token: alice, headers: { Range: "bytes=10-99" } });
    assert.equal(get.status, 206);
    assert.ok(get.buf.equals(data.subarray(10, 100)));
    const raw = await call("GET", "/alice/src/resolve/main/w.bin", { token: alice });
    assert.equal(raw.status, 200);
    assert.ok(raw.buf.equals(data));
    const pi = await pathsInfo("alice/copy", ["copy.bin"]);
    assert.equal(pi["copy.bin"].xetHash, entry.xetHash);
  }

  // Signed GETs: the LFS batch hands out a download URL (plain LFS or Xet-served).
  const batch = await call("POST", "/alice/copy.git/info/lfs/objects/batch", {
    token: alice,
    body: JSON.stringify({ operation: "download", transfers: ["basic"], objects: [{ oid, size: data.length }] }),
    headers: { "Content-Type": "application/vnd.git-lfs+json", Accept: "application/vnd.git-lfs+json" },
  });
  assert.equal(batch.status, 200, batch.text);
  const dl = batch.json.objects[0].actions.download;
  const signed = await call("GET", dl.href, { headers: dl.header || {} });
  assert.equal(signed.status, 200, signed.text.slice(0, 200));
  assert.ok(signed.buf.equals(data));

  assert.equal((await call("GET", "/healthz")).status, 200);
  assert.equal((await call("GET", "/metrics")).status, 200);

  // The link is recorded off the event thread, soon after.
  assert.doesNotMatch(server.log(), WRITE_BUG);
});
