// Findings of an adversarial review of the hardening work (issue 12), one test each: an
// outsider, an anonymous caller or a scoped token tries to get around the per-repo object
// scope, the gate and token scopes. Driven with plain fetch, as the clients send these.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { connect } from "node:net";
import { request } from "node:http";
import { startServer } from "./lib/server.mjs";
import { HELLO, HELLO_FILE, HELLO_XORB, HELLO_XORB_HASH, hashBytes, helloShard } from "./lib/xetgolden.mjs";

const LFS = "application/vnd.git-lfs+json";
let server;
let alice; // owner of alice/* (write)
let mallory; // outsider with a public repo of his own (write)

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const obj = (buf) => ({ oid: sha256(buf), size: buf.length });
const pointer = (o) => `version https://git-lfs.github.com/spec/v1\noid sha256:${o.oid}\nsize ${o.size}\n`;

async function call(method, url, { token, json, body, headers = {}, lfs = false } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    body = JSON.stringify(json);
    h["Content-Type"] = lfs ? LFS : "application/json";
  }
  if (lfs) h.Accept = LFS;
  const res = await fetch(url.startsWith("http") ? url : server.url + url, { method, headers: h, body, redirect: "manual" });
  const buf = Buffer.from(await res.arrayBuffer());
  let parsed;
  try {
    parsed = buf.length ? JSON.parse(buf.toString("utf8")) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, buf, text: buf.toString("utf8"), json: parsed };
}

async function lfsPut(repo, token, buf) {
  const o = obj(buf);
  const r = await call("POST", `/${repo}.git/info/lfs/objects/batch`, {
    token,
    lfs: true,
    json: { operation: "upload", transfers: ["basic"], objects: [o], hash_algo: "sha256" },
  });
  assert.equal(r.status, 200, r.text);
  const put = await call("PUT", r.json.objects[0].actions.upload.href, { body: buf });
  assert.equal(put.status, 200, put.text);
  return o;
}

function commit(repo, token, ops, summary = "review") {
  const body = [{ key: "header", value: { summary } }, ...ops].map((l) => JSON.stringify(l)).join("\n") + "\n";
  return call("POST", `/api/models/${repo}/commit/main`, { token, body, headers: { "Content-Type": "application/x-ndjson" } });
}
const lfsFile = (path, o) => ({ key: "lfsFile", value: { path, algo: "sha256", oid: o.oid, size: o.size } });
const regularFile = (path, text) => ({ key: "file", value: { path, content: Buffer.from(text).toString("base64"), encoding: "base64" } });


const SECRET = randomBytes(3000);
let secret;

before(async () => {
  server = await startServer();
  alice = server.makeUser("alice", "write");
  mallory = server.makeUser("mallory", "write");
  for (const [name, token, extra] of [["priv", alice, { private: true }], ["evil", mallory, {}]]) {
    const r = await call("POST", "/api/repos/create", { token, json: { name, ...extra } });
    assert.equal(r.status, 200, r.text);
  }
  secret = await lfsPut("alice/priv", alice, SECRET);
  const c = await commit("alice/priv", alice, [lfsFile("model.safetensors", secret)]);
  assert.equal(c.status, 200, c.text);
});

after(async () => {
  await server?.stop();
});

test("a regular 'file' whose bytes are an LFS pointer to another repo's object is refused like an lfsFile op", async () => {
  // In memory, and spooled behind 1.5 MB of inline contents.
  const big = regularFile("pad.bin", randomBytes(1536 * 1024).toString("base64"));
  for (const ops of [[regularFile("loot.safetensors", pointer(secret))], [big, regularFile("loot.safetensors", pointer(secret))]]) {
    const c = await commit("mallory/evil", mallory, ops);
    assert.equal(c.status, 400, c.text);
    assert.match(c.headers.get("x-error-message"), /LFS pointer to an object that was not uploaded/);
  }
  for (const url of ["/mallory/evil/resolve/main/loot.safetensors", "/api/models/mallory/evil/tree/main"]) {
    const r = await call("GET", url);
    assert.ok(!r.buf.equals(SECRET), url);
    assert.doesNotMatch(r.text, /loot/, url);
  }
  // A pointer to an object the repo references is still accepted (as git-lfs clients commit them).
  const mine = await lfsPut("mallory/evil", mallory, randomBytes(2000));
  const ok = await commit("mallory/evil", mallory, [regularFile("mine.bin", pointer(mine))]);
  assert.equal(ok.status, 200, ok.text);
});

test("a fine-grained token does not count its user's private children in childrenModelCount", async () => {
  const scoped = server
    .cli(["token", "create", "alice", "--name", "lineage", "--role", "fineGrained", "--scopes",
      JSON.stringify([{ type: "repo", name: "alice/base", permission: "read" }])], { check: true })
    .stdout.trim();
  for (const [name, extra] of [["base", {}], ["child", { private: true }]]) {
    const r = await call("POST", "/api/repos/create", { token: alice, json: { name, ...extra } });
    assert.equal(r.status, 200, r.text);
  }
  const c = await commit("alice/child", alice, [regularFile("README.md", "---\nbase_model: alice/base\n---\n# child\n")]);
  assert.equal(c.status, 200, c.text);
  const count = async (token) => (await call("GET", "/api/models/alice/base?expand[]=childrenModelCount", { token })).json.childrenModelCount;
  for (let i = 0; i < 100 && (await count(alice)) !== 1; i++) await new Promise((res) => setTimeout(res, 50));
  assert.equal(await count(alice), 1, "the owner's write token counts the private child (indexed)");
  assert.equal(await count(null), 0);
  assert.equal(await count(scoped), 0, "the scoped token must not learn of a private repo outside its scopes");
  const lineage = await call("GET", "/api/models/alice/base/lineage", { token: scoped });
  assert.equal(lineage.json.childrenCount.finetune, 0);
});

/** A shard whose file section repeats the golden file once per sha256 claim. */
function claimsShard(claims) {
  const one = helloShard({ claim: claims[0] });
  const header = one.subarray(0, 48);
  const rest = one.subarray(48 + 4 * 48); // bookend, CAS section, bookend
  const files = claims.map((c) => {
    const f = Buffer.from(one.subarray(48, 48 + 4 * 48));
    hashBytes(c).copy(f, 3 * 48);
    return f;
  });
  return Buffer.concat([header, ...files, rest]);
}

test("a Xet sha256 claim still unverified when committed cannot read another repo's LFS object with that oid", async () => {
  // alice/priv holds 11 secret bytes through plain LFS; mallory knows their sha256 and size.
  const VICTIM = Buffer.from("hello WORLD");
  const victim = await lfsPut("alice/priv", alice, VICTIM);
  assert.equal((await commit("alice/priv", alice, [lfsFile("v.bin", victim)])).status, 200);
  // mallory uploads "hello world" through Xet; its shard makes 10,000 false claims first
  // (the verifier's queue is busy for a while) and then claims the victim's sha256.
  const t = await call("GET", "/api/models/mallory/evil/xet-write-token/main", { token: mallory });
  assert.equal(t.status, 200, t.text);
  const cas = (p, body) => call("POST", `${t.json.casUrl}${p}`, { token: t.json.accessToken, body });
  assert.equal((await cas(`/v1/xorbs/default/${HELLO_XORB_HASH}`, HELLO_XORB)).status, 200);
  const claims = Array.from({ length: 10000 }, () => randomBytes(32).toString("hex"));
  const sh = await cas("/v1/shards", claimsShard([...claims, victim.oid]));
  assert.equal(sh.status, 200, sh.text);
  const c = await commit("mallory/evil", mallory, [lfsFile("claimed.bin", victim)]);
  if (c.status !== 200) return assert.equal(c.status, 400, c.text);
  // Accepted as mallory's own upload: it serves mallory's bytes, never alice's.
  const r = await call("GET", "/mallory/evil/resolve/main/claimed.bin");
  assert.ok(!r.buf.equals(VICTIM), "resolve served another repo's object to the claimant");
  assert.equal(r.text, "hello world");
});

test("POST /v1/telemetry needs a Xet token and has a body cap", async () => {
  const t = await call("GET", "/api/models/mallory/evil/xet-read-token/main", { token: mallory });
  assert.equal(t.status, 200, t.text);
  const url = `${t.json.casUrl}/v1/telemetry`;
  const anon = await call("POST", url, { json: { events: [] } });
  assert.equal(anon.status, 401, anon.text);
  const big = await call("POST", url, { token: t.json.accessToken, body: Buffer.alloc(2 * 1024 * 1024, 0x20) });
  assert.equal(big.status, 413, big.text);
  const ok = await call("POST", url, { token: t.json.accessToken, json: { events: [{ kind: "upload", bytes: 1 }] } });
  assert.equal(ok.status, 204, ok.text);
});

test("a git-upload-pack body held in memory counts against the body memory budget", async () => {
  const memory = async () => {
    const m = await call("GET", "/metrics", { token: server.adminToken });
    assert.equal(m.status, 200, m.text);
    return Number(/^modelhub_body_memory_bytes (\d+)$/m.exec(m.text)[1]);
  };
  const before = await memory();
  const { hostname, port } = new URL(server.url);
  const sock = connect(Number(port), hostname);
  await new Promise((res, rej) => sock.once("connect", res).once("error", rej));
  try {
    // An anonymous fetch negotiation on a public repo, half sent: its body waits in memory.
    sock.write(
      "POST /mallory/evil.git/git-upload-pack HTTP/1.1\r\nHost: x\r\n" +
        "Content-Type: application/x-git-upload-pack-request\r\nContent-Length: 400000\r\n\r\n",
    );
    sock.write(Buffer.alloc(200000, "0"));
    let held = before;
    for (let i = 0; i < 50 && held < before + 200000; i++) {
      await new Promise((res) => setTimeout(res, 20));
      held = await memory();
    }
    assert.ok(held >= before + 200000, `body memory ${held} (was ${before}) must count the in-memory git body`);
  } finally {
    sock.destroy();
  }
});

test("one address announcing bodies it never sends cannot take the whole body memory budget", async () => {
  // A server of its own with a 16 MiB budget (one address may hold half of it).
  // one node: the body memory budget is per process (MODELHUB_E2E_NODES)
  const small = await startServer({ nodes: 1, env: { MODELHUB_BODY_MEMORY_MAX: String(16 * 1024 * 1024) } });
  const socks = [];
  try {
    const owner = small.makeUser("owner", "write");
    const cr = await fetch(`${small.url}/api/repos/create`, { method: "POST", headers: { Authorization: `Bearer ${owner}`, "Content-Type": "application/json" }, body: JSON.stringify({ name: "m" }) });
    assert.equal(cr.status, 200);
    const { hostname, port } = new URL(small.url);
    // 127.0.0.1: sixteen anonymous 1 MiB announcements, no body byte sent.
    for (let i = 0; i < 16; i++) {
      const s = connect({ port: Number(port), host: hostname });
      s.on("error", () => {});
      s.write("POST /api/validate-yaml HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n");
      socks.push(s);
    }
    await new Promise((res) => setTimeout(res, 300));
    // 127.0.0.2: a commit with a 1 MB inline file (its line needs ~4 MB of the budget).
    const body =
      JSON.stringify({ key: "header", value: { summary: "x" } }) + "\n" +
      JSON.stringify({ key: "file", value: { path: "a.bin", content: randomBytes(1000000).toString("base64"), encoding: "base64" } }) + "\n";
    const status = await new Promise((res, rej) => {
      const req = request(
        { host: hostname, port: Number(port), localAddress: "127.0.0.2", method: "POST", path: "/api/models/owner/m/commit/main",
          headers: { Authorization: `Bearer ${owner}`, "Content-Type": "application/x-ndjson", "Content-Length": Buffer.byteLength(body) } },
        (resp) => {
          resp.resume();
          resp.on("end", () => res(resp.statusCode));
        },
      );
      req.on("error", rej);
      req.end(body);
    });
    assert.equal(status, 200, "another client's commit must not get 503 because one address holds the budget");
  } finally {
    for (const s of socks) s.destroy();
    await small.stop();
  }
});

test("signed LFS downloads (/lfs-get) carry X-Content-Type-Options: nosniff like resolve", async () => {
  const r = await call("POST", "/alice/priv.git/info/lfs/objects/batch", {
    token: alice,
    lfs: true,
    json: { operation: "download", transfers: ["basic"], objects: [secret], hash_algo: "sha256" },
  });
  const href = r.json.objects[0].actions.download.href;
  const got = await call("GET", href);
  assert.equal(got.status, 200);
  assert.ok(got.buf.equals(SECRET));
  assert.equal(got.headers.get("x-content-type-options"), "nosniff");
});

test("a repo created after the newest repo was deleted (same id) does not inherit its Xet uploads", async () => {
  for (const name of ["gone"]) {
    const r = await call("POST", "/api/repos/create", { token: alice, json: { name, private: true } });
    assert.equal(r.status, 200, r.text);
  }
  // alice uploads "hello world" through Xet to alice/gone (private) and commits it.
  const t = await call("GET", "/api/models/alice/gone/xet-write-token/main", { token: alice });
  assert.equal(t.status, 200, t.text);
  const cas = (p, body) => call("POST", `${t.json.casUrl}${p}`, { token: t.json.accessToken, body });
  assert.equal((await cas(`/v1/xorbs/default/${HELLO_XORB_HASH}`, HELLO_XORB)).status, 200);
  assert.equal((await cas("/v1/shards", helloShard())).status, 200);
  const hello = obj(HELLO);
  assert.equal((await commit("alice/gone", alice, [lfsFile("hello.txt", hello)])).status, 200);
  const del = await call("DELETE", "/api/repos/delete", { token: alice, json: { name: "gone" } });
  assert.equal(del.status, 200, del.text);
  // mallory's next repo takes the freed id; naming the sha256 must not be enough.
  const cr = await call("POST", "/api/repos/create", { token: mallory, json: { name: "heir" } });
  assert.equal(cr.status, 200, cr.text);
  const c = await commit("mallory/heir", mallory, [lfsFile("hello.txt", hello)]);
  assert.equal(c.status, 400, `inherited a deleted repo's upload: ${c.text}`);
  const r = await call("GET", "/mallory/heir/resolve/main/hello.txt");
  assert.notEqual(r.text, "hello world");
});

test("/lfs-complete checks its signed URL before reading the body (no anonymous 4 MB buffers)", async () => {
  const memory = async () => {
    const m = await call("GET", "/metrics", { token: server.adminToken });
    return Number(/^modelhub_body_memory_bytes (\d+)$/m.exec(m.text)[1]);
  };
  const before = await memory();
  const { hostname, port } = new URL(server.url);
  const sock = connect(Number(port), hostname);
  let answer = "";
  sock.on("data", (d) => (answer += d.toString("latin1")));
  await new Promise((res, rej) => sock.once("connect", res).once("error", rej));
  try {
    const oid = "ab".repeat(32);
    sock.write(
      `POST /lfs-complete/${"0".repeat(24)}/${oid}/20000000?upload=${oid}&exp=9999999999&sig=${"00".repeat(32)} HTTP/1.1\r\n` +
        "Host: x\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n\r\n",
    );
    sock.write(Buffer.alloc(100000, " "));
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(await memory(), before, "a forged completion URL must not hold body memory");
    sock.write(Buffer.alloc(2900000, " "));
    for (let i = 0; i < 50 && !answer.includes("\r\n\r\n"); i++) await new Promise((res) => setTimeout(res, 20));
    assert.match(answer, /^HTTP\/1\.1 403/);
  } finally {
    sock.destroy();
  }
});
