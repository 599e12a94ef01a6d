// Findings of an adversarial review of the hardening work (issue 12), one test each: an
// outsider, an anonymous caller or a scoped token tries to get around the per-repo object
// scope, the gate and token scopes. Driven with plain fetch, as the clients send these.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { startServer } from "./lib/server.mjs";

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
