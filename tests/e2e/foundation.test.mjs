// Issue 2 (foundation): whoami, repo lifecycle, repo info, settings, move,
// permissions, error conventions, CORS, metrics, driven by @huggingface/hub
// and plain fetch against a real `modelhub serve`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  whoAmI,
  createRepo,
  deleteRepo,
  repoExists,
  modelInfo,
  datasetInfo,
  HubApiError,
} from "@huggingface/hub";
import { startServer } from "./lib/server.mjs";

let server;
let admin; // admin token
let alice; // plain user with a write token
let aliceRead; // alice's read token

// Every response (from our own calls and from the library's) goes through
// this fetch, so we can check that each one carries X-Request-Id.
const missingRequestId = [];
let responsesSeen = 0;
async function recordingFetch(input, init) {
  const res = await fetch(input, init);
  responsesSeen++;
  if (!res.headers.get("x-request-id")) {
    missingRequestId.push(`${init?.method ?? "GET"} ${typeof input === "string" ? input : input.url} -> ${res.status}`);
  }
  return res;
}

const hub = (token, extra = {}) => ({ hubUrl: server.url, accessToken: token, fetch: recordingFetch, ...extra });

/** Plain HTTP call. Returns {status, headers, text, json}. */
async function api(method, path, { token, json, body, headers = {}, redirect = "follow" } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    body = JSON.stringify(json);
    h["Content-Type"] = "application/json";
  }
  const res = await recordingFetch(server.url + path, { method, headers: h, body, redirect });
  const text = await res.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: parsed, url: res.url, res };
}

const HEX40 = /^[0-9a-f]{40}$/;
const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

function assertError(r, status, code, what = "") {
  assert.equal(r.status, status, `${what} status (body: ${r.text})`);
  if (code) assert.equal(r.headers.get("x-error-code"), code, `${what} X-Error-Code`);
  assert.ok(r.headers.get("x-error-message"), `${what} X-Error-Message present`);
  assert.match(r.headers.get("content-type") ?? "", /^application\/json/, `${what} JSON content type`);
  assert.equal(typeof r.json?.error, "string", `${what} body has {error}: ${r.text}`);
}

async function rejectsWith(promise, status) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof HubApiError, `expected HubApiError, got ${err}`);
    assert.equal(err.statusCode, status, err.message);
    return true;
  });
}

before(async () => {
  server = await startServer();
  admin = server.adminToken;
  alice = server.makeUser("alice", "write");
  aliceRead = server.makeToken("alice", "read", "alice-read");
});

after(async () => {
  await server?.stop();
});

test("whoAmI returns user, orgs and token info", async () => {
  const me = await whoAmI(hub(admin));
  assert.equal(me.type, "user");
  assert.equal(me.name, "admin");
  assert.ok(Array.isArray(me.orgs));
  assert.equal(me.auth.type, "access_token");
  assert.ok(me.auth.accessToken, "auth.accessToken present");
  assert.equal(me.auth.accessToken.role, "write");
  assert.equal(typeof me.auth.accessToken.displayName, "string");
  assert.ok(me.auth.accessToken.createdAt instanceof Date);
  assert.ok(!Number.isNaN(me.auth.accessToken.createdAt.getTime()));

  const r = await api("GET", "/api/whoami-v2", { token: aliceRead });
  assert.equal(r.status, 200);
  assert.equal(r.json.name, "alice");
  assert.equal(r.json.auth.accessToken.role, "read");
  assert.equal(r.json.auth.accessToken.displayName, "alice-read");
  assert.match(r.json.auth.accessToken.createdAt, ISO_Z);
});

test("whoami without a token is 401", async () => {
  const r = await api("GET", "/api/whoami-v2");
  assertError(r, 401);
});

test("createRepo: model, dataset, private model", async () => {
  const m = await createRepo(hub(admin, { repo: "admin/model-a" }));
  assert.equal(m.repoUrl, `${server.url}/admin/model-a`);
  assert.equal(typeof m.id, "string");
  assert.ok(m.id.length > 0);

  const d = await createRepo(hub(admin, { repo: { type: "dataset", name: "admin/data-a" } }));
  assert.equal(d.repoUrl, `${server.url}/datasets/admin/data-a`);

  const p = await createRepo(hub(admin, { repo: "admin/private-a", visibility: "private" }));
  assert.equal(p.repoUrl, `${server.url}/admin/private-a`);

  // Python <= 1.7 style: {private: true}, no type for models.
  const r = await api("POST", "/api/repos/create", {
    token: admin,
    json: { name: "private-b", organization: "admin", private: true },
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.name, "admin/private-b");
  const info = await api("GET", "/api/models/admin/private-b", { token: admin });
  assert.equal(info.json.private, true);
});

test("repoExists", async () => {
  assert.equal(await repoExists(hub(admin, { repo: "admin/model-a" })), true);
  assert.equal(await repoExists(hub(undefined, { repo: "admin/model-a" })), true);
  assert.equal(await repoExists(hub(admin, { repo: { type: "dataset", name: "admin/data-a" } })), true);
  assert.equal(await repoExists(hub(admin, { repo: "admin/does-not-exist" })), false);
  // a dataset is not a model
  assert.equal(await repoExists(hub(admin, { repo: "admin/data-a" })), false);
  assert.equal(await repoExists(hub(admin, { repo: "admin/private-a" })), true);
  assert.equal(await repoExists(hub(undefined, { repo: "admin/private-a" })), false);
  assert.equal(await repoExists(hub(alice, { repo: "admin/private-a" })), false);
});

test("modelInfo / datasetInfo through the JS client", async () => {
  const m = await modelInfo(hub(admin, { name: "admin/model-a", additionalFields: ["sha", "siblings", "author"] }));
  assert.equal(m.name, "admin/model-a");
  assert.equal(typeof m.id, "string");
  assert.equal(m.private, false);
  assert.equal(m.gated, false);
  assert.match(m.sha, HEX40);
  assert.equal(m.author, "admin");
  assert.ok(Array.isArray(m.siblings));
  assert.ok(m.siblings.some((s) => s.rfilename === ".gitattributes"), JSON.stringify(m.siblings));
  assert.ok(!Number.isNaN(m.updatedAt.getTime()), "lastModified parses as a date");

  const d = await datasetInfo(hub(admin, { name: "admin/data-a", additionalFields: ["sha", "siblings"] }));
  assert.equal(d.name, "admin/data-a");
  assert.match(d.sha, HEX40);
  assert.ok(d.siblings.some((s) => s.rfilename === ".gitattributes"));

  const p = await modelInfo(hub(admin, { name: "admin/private-a" }));
  assert.equal(p.private, true);
});

test("repo info raw JSON shape", async () => {
  const r = await api("GET", "/api/models/admin/model-a");
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get("content-type"), /^application\/json/);
  const j = r.json;
  for (const k of [
    "_id",
    "id",
    "author",
    "sha",
    "lastModified",
    "createdAt",
    "private",
    "gated",
    "disabled",
    "tags",
    "siblings",
    "downloads",
    "likes",
  ]) {
    assert.ok(k in j, `missing key ${k} in ${r.text}`);
  }
  assert.equal(j.id, "admin/model-a");
  assert.equal(j.author, "admin");
  assert.match(j.sha, HEX40);
  assert.match(j.lastModified, ISO_Z);
  assert.match(j.createdAt, ISO_Z);
  assert.equal(j.private, false);
  assert.equal(j.gated, false);
  assert.equal(j.disabled, false);
  assert.ok(Array.isArray(j.tags));
  assert.equal(typeof j.downloads, "number");
  assert.equal(typeof j.likes, "number");
  assert.deepEqual(
    j.siblings.map((s) => s.rfilename),
    [".gitattributes"],
  );
  // never advertise Xet
  assert.ok(!("xetHash" in j.siblings[0]));
  assert.notEqual(j.xetEnabled, true);

  // revision forms all resolve to the same commit
  for (const rev of ["main", "HEAD", j.sha, "refs%2Fheads%2Fmain"]) {
    const rr = await api("GET", `/api/models/admin/model-a/revision/${rev}`);
    assert.equal(rr.status, 200, `revision ${rev}: ${rr.text}`);
    assert.equal(rr.json.sha, j.sha, `revision ${rev}`);
  }
  // expand is accepted in both spellings and never breaks the answer
  const ex = await api("GET", "/api/models/admin/model-a?expand=sha&expand[]=likes");
  assert.equal(ex.status, 200);
  assert.equal(ex.json.id, "admin/model-a");

  const ds = await api("GET", "/api/datasets/admin/data-a");
  assert.equal(ds.status, 200);
  assert.equal(ds.json.id, "admin/data-a");
  assert.match(ds.json.sha, HEX40);
});

test("unknown repo / revision errors carry X-Error-Code", async () => {
  assertError(await api("GET", "/api/models/admin/nope"), 404, "RepoNotFound");
  assertError(await api("GET", "/api/models/admin/model-a/revision/no-such-branch"), 404, "RevisionNotFound");
  // model and dataset namespaces are separate
  assertError(await api("GET", "/api/datasets/admin/model-a"), 404, "RepoNotFound");
});

test("settings: private on/off and gated", async () => {
  await createRepo(hub(admin, { repo: "admin/settings-a" }));
  const path = "/api/models/admin/settings-a";

  let r = await api("PUT", `${path}/settings`, { token: admin, json: { private: true } });
  assert.equal(r.status, 200, r.text);
  r = await api("GET", path, { token: admin });
  assert.equal(r.json.private, true);
  assertError(await api("GET", path), 404, "RepoNotFound", "anonymous on now-private repo");

  r = await api("PUT", `${path}/settings`, { token: admin, json: { visibility: "public" } });
  assert.equal(r.status, 200, r.text);
  r = await api("GET", path);
  assert.equal(r.status, 200);
  assert.equal(r.json.private, false);

  r = await api("PUT", `${path}/settings`, { token: admin, json: { visibility: "private" } });
  assert.equal(r.status, 200, r.text);
  assert.equal((await api("GET", path, { token: admin })).json.private, true);
  r = await api("PUT", `${path}/settings`, { token: admin, json: { private: false } });
  assert.equal(r.status, 200, r.text);
  assert.equal((await api("GET", path)).json.private, false);

  r = await api("PUT", `${path}/settings`, { token: admin, json: { gated: "auto" } });
  assert.equal(r.status, 200, r.text);
  assert.equal((await api("GET", path, { token: admin })).json.gated, "auto");
  r = await api("PUT", `${path}/settings`, { token: admin, json: { gated: "manual" } });
  assert.equal(r.status, 200, r.text);
  assert.equal((await api("GET", path, { token: admin })).json.gated, "manual");
  r = await api("PUT", `${path}/settings`, { token: admin, json: { gated: false } });
  assert.equal(r.status, 200, r.text);
  assert.equal((await api("GET", path, { token: admin })).json.gated, false);

  // someone else may not change it (and may not learn much either)
  r = await api("PUT", `${path}/settings`, { token: alice, json: { private: true } });
  assert.ok(r.status === 403 || r.status === 404, `alice changing admin's settings: ${r.status} ${r.text}`);
  assert.equal((await api("GET", path)).json.private, false);

  // settings on a dataset
  r = await api("PUT", "/api/datasets/admin/data-a/settings", { token: admin, json: { private: true } });
  assert.equal(r.status, 200, r.text);
  assert.equal((await api("GET", "/api/datasets/admin/data-a", { token: admin })).json.private, true);
  r = await api("PUT", "/api/datasets/admin/data-a/settings", { token: admin, json: { private: false } });
  assert.equal(r.status, 200, r.text);
});

test("move: old name answers 307 with a relative Location", async () => {
  await createRepo(hub(admin, { repo: "admin/move-old" }));
  const before_ = await api("GET", "/api/models/admin/move-old");
  const r = await api("POST", "/api/repos/move", {
    token: admin,
    json: { fromRepo: "admin/move-old", toRepo: "admin/move-new", type: "model" },
  });
  assert.equal(r.status, 200, r.text);

  const red = await api("GET", "/api/models/admin/move-old", { redirect: "manual" });
  assert.equal(red.status, 307, red.text);
  const loc = red.headers.get("location");
  assert.ok(loc, "Location header");
  assert.ok(loc.startsWith("/") && !loc.startsWith("//"), `Location must be relative, got ${loc}`);
  assert.equal(loc, "/api/models/admin/move-new");

  const revRed = await api("GET", "/api/models/admin/move-old/revision/main", { redirect: "manual" });
  assert.equal(revRed.status, 307);
  assert.equal(revRed.headers.get("location"), "/api/models/admin/move-new/revision/main");

  const followed = await api("GET", "/api/models/admin/move-old");
  assert.equal(followed.status, 200);
  assert.equal(followed.json.id, "admin/move-new");
  assert.equal(followed.json._id, before_.json._id, "the repo keeps its id across a rename");
  assert.equal(followed.json.sha, before_.json.sha);

  // the JS client follows it transparently
  const info = await modelInfo(hub(admin, { name: "admin/move-old" }));
  assert.equal(info.name, "admin/move-new");
  assert.equal(await repoExists(hub(admin, { repo: "admin/move-new" })), true);

  // moving onto an existing repo is a conflict
  const conflict = await api("POST", "/api/repos/move", {
    token: admin,
    json: { fromRepo: "admin/move-new", toRepo: "admin/model-a", type: "model" },
  });
  assert.equal(conflict.status, 409, conflict.text);
});

test("deleteRepo, then 404 RepoNotFound", async () => {
  await createRepo(hub(admin, { repo: "admin/doomed" }));
  await deleteRepo(hub(admin, { repo: "admin/doomed" }));
  assertError(await api("GET", "/api/models/admin/doomed"), 404, "RepoNotFound");
  assertError(await api("GET", "/api/models/admin/doomed/revision/main"), 404, "RepoNotFound");
  assert.equal(await repoExists(hub(admin, { repo: "admin/doomed" })), false);

  // deleting again: 404 RepoNotFound (lets Python's missing_ok=True succeed)
  const again = await api("DELETE", "/api/repos/delete", {
    token: admin,
    json: { name: "doomed", organization: "admin", type: "model" },
  });
  assertError(again, 404, "RepoNotFound");

  // the name can be reused
  await createRepo(hub(admin, { repo: "admin/doomed" }));
  assert.equal(await repoExists(hub(admin, { repo: "admin/doomed" })), true);

  // another user cannot delete it
  await rejectsWith(deleteRepo(hub(alice, { repo: "admin/doomed" })), 403);
  assert.equal(await repoExists(hub(admin, { repo: "admin/doomed" })), true);
});

test("private repo is 404 RepoNotFound for anonymous and other users", async () => {
  for (const p of ["/api/models/admin/private-a", "/api/models/admin/private-a/revision/main"]) {
    assertError(await api("GET", p), 404, "RepoNotFound", `anonymous ${p}`);
    assertError(await api("GET", p, { token: alice }), 404, "RepoNotFound", `alice ${p}`);
    const ok = await api("GET", p, { token: admin });
    assert.equal(ok.status, 200, `admin ${p}`);
  }
  // the answer must not differ from a repo that does not exist
  const missing = await api("GET", "/api/models/admin/private-zzz", { token: alice });
  const hidden = await api("GET", "/api/models/admin/private-a", { token: alice });
  assert.equal(hidden.status, missing.status);
  assert.equal(hidden.headers.get("x-error-code"), missing.headers.get("x-error-code"));

  // alice cannot delete or change a repo she cannot see
  const del = await api("DELETE", "/api/repos/delete", {
    token: alice,
    json: { name: "private-a", organization: "admin", type: "model" },
  });
  assert.ok(del.status === 404 || del.status === 403, `${del.status} ${del.text}`);
  assert.equal(await repoExists(hub(admin, { repo: "admin/private-a" })), true);
});

test("a read token cannot create (403)", async () => {
  await rejectsWith(createRepo(hub(aliceRead, { repo: "alice/from-read-token" })), 403);
  const r = await api("POST", "/api/repos/create", {
    token: aliceRead,
    json: { name: "from-read-token", organization: "alice", type: "model" },
  });
  assertError(r, 403);
  assert.equal(await repoExists(hub(alice, { repo: "alice/from-read-token" })), false);
  // a write token of the same user can
  await createRepo(hub(alice, { repo: "alice/from-write-token" }));
  // but not in someone else's namespace
  await rejectsWith(createRepo(hub(alice, { repo: "admin/by-alice" })), 403);
});

test("anonymous create is 401", async () => {
  const r = await api("POST", "/api/repos/create", {
    json: { name: "anon", organization: "admin", type: "model" },
  });
  assertError(r, 401);
});

test("duplicate create is 409", async () => {
  await rejectsWith(createRepo(hub(admin, { repo: "admin/model-a" })), 409);
  const r = await api("POST", "/api/repos/create", {
    token: admin,
    json: { name: "model-a", organization: "admin", type: "model" },
  });
  assert.equal(r.status, 409, r.text);
  assert.ok(r.headers.get("x-error-message"));
  assert.ok(!/conflicting operation is in progress/.test(r.text), "must not trigger Python's retry loop");
  // the same name as a dataset is fine: separate namespaces per type
  const ds = await api("POST", "/api/repos/create", {
    token: admin,
    json: { name: "model-a", organization: "admin", type: "dataset" },
  });
  assert.equal(ds.status, 200, ds.text);
});

test("invalid repo names are 400", async () => {
  for (const name of ["bad--name", "bad..name", "bad name", "x".repeat(97), ""]) {
    const r = await api("POST", "/api/repos/create", {
      token: admin,
      json: { name, organization: "admin", type: "model" },
    });
    assertError(r, 400, undefined, `name ${JSON.stringify(name)}`);
  }
});

test("malformed JSON is 400 with X-Error-Message and {error}", async () => {
  const r = await api("POST", "/api/repos/create", {
    token: admin,
    body: '{"name": "x", ',
    headers: { "Content-Type": "application/json" },
  });
  assertError(r, 400);
  const r2 = await api("PUT", "/api/models/admin/model-a/settings", {
    token: admin,
    body: "not json",
    headers: { "Content-Type": "application/json" },
  });
  assertError(r2, 400);
  const r3 = await api("POST", "/api/repos/create", { token: admin, json: [1, 2, 3] });
  assertError(r3, 400);
});

test("oversized body is 413", async () => {
  const big = JSON.stringify({ name: "big", organization: "admin", type: "model", pad: "x".repeat(2 * 1024 * 1024) });
  // Several attempts on the pooled keep-alive connection, as a real client
  // would make them. Each must see the 413, not a broken connection (a server
  // that answers before reading the body must drain it or linger on close).
  const outcomes = [];
  for (let i = 0; i < 3; i++) {
    try {
      const r = await api("POST", "/api/repos/create", {
        token: admin,
        body: big,
        headers: { "Content-Type": "application/json" },
      });
      outcomes.push(r.status === 413 && r.headers.get("x-error-message") ? 413 : `${r.status} ${r.text.slice(0, 200)}`);
    } catch (err) {
      outcomes.push(`network error ${err.cause?.code ?? err.message}`);
    }
  }
  assert.deepEqual(outcomes, [413, 413, 413]);
  assert.equal(await repoExists(hub(admin, { repo: "admin/big" })), false);
});

test("bad token is 401 with the exact X-Error-Message", async () => {
  const bad = "hf_thisIsNotARealTokenAtAll000000000000";
  for (const [method, path, json] of [
    ["GET", "/api/whoami-v2"],
    ["POST", "/api/repos/create", { name: "x", organization: "admin", type: "model" }],
    ["GET", "/api/models/admin/model-a"],
  ]) {
    const r = await api(method, path, { token: bad, json });
    assert.equal(r.status, 401, `${method} ${path}: ${r.text}`);
    assert.equal(r.headers.get("x-error-message"), "Invalid credentials in Authorization header", `${method} ${path}`);
  }
  await rejectsWith(whoAmI(hub(bad)), 401);

  // malformed Authorization headers are also rejected, not crashes
  for (const value of ["Bearer", "Bearer ", "Basic !!!", "Bearer hf_", "Bearer " + "a".repeat(5000)]) {
    const r = await api("GET", "/api/whoami-v2", { headers: { Authorization: value } });
    assert.equal(r.status, 401, `Authorization: ${value.slice(0, 20)}: ${r.status}`);
  }
});

test("revoked token stops working", async () => {
  const tok = server.makeToken("alice", "write", "to-revoke");
  assert.equal((await api("GET", "/api/whoami-v2", { token: tok })).status, 200);
  const rv = server.cli(["token", "revoke", "to-revoke", "--user", "alice"]);
  assert.equal(rv.status, 0, rv.stderr);
  const r = await api("GET", "/api/whoami-v2", { token: tok });
  assert.equal(r.status, 401);
  assert.equal(r.headers.get("x-error-message"), "Invalid credentials in Authorization header");
});

test("orgs: write member creates, read member cannot, whoAmI lists roleInOrg", async () => {
  const bob = server.makeUser("bob", "write");
  const carol = server.makeUser("carol", "write");
  for (const args of [
    ["org", "add", "acme", "--owner", "admin"],
    ["org", "member", "add", "acme", "bob", "--role", "write"],
    ["org", "member", "add", "acme", "carol", "--role", "read"],
  ]) {
    const r = server.cli(args);
    assert.equal(r.status, 0, `modelhub ${args.join(" ")}: ${r.stderr}`);
  }

  const created = await createRepo(hub(bob, { repo: "acme/bob-model" }));
  assert.equal(created.repoUrl, `${server.url}/acme/bob-model`);
  const info = await api("GET", "/api/models/acme/bob-model");
  assert.equal(info.json.author, "acme");

  await rejectsWith(createRepo(hub(carol, { repo: "acme/carol-model" })), 403);
  assert.equal(await repoExists(hub(admin, { repo: "acme/carol-model" })), false);

  const me = await whoAmI(hub(bob));
  const org = me.orgs.find((o) => o.name === "acme");
  assert.ok(org, `acme in orgs: ${JSON.stringify(me.orgs)}`);
  assert.equal(org.roleInOrg, "write");
  assert.equal(org.type, "org");
  const meC = await whoAmI(hub(carol));
  assert.equal(meC.orgs.find((o) => o.name === "acme")?.roleInOrg, "read");
  const meA = await whoAmI(hub(admin));
  assert.equal(meA.orgs.find((o) => o.name === "acme")?.roleInOrg, "admin");

  // a private org repo is visible to a read member, not to outsiders
  await createRepo(hub(bob, { repo: "acme/secret", visibility: "private" }));
  assert.equal((await api("GET", "/api/models/acme/secret", { token: carol })).status, 200);
  assertError(await api("GET", "/api/models/acme/secret", { token: alice }), 404, "RepoNotFound");
  // the read member cannot change its settings or delete it
  const s = await api("PUT", "/api/models/acme/secret/settings", { token: carol, json: { private: false } });
  assert.equal(s.status, 403, s.text);
  await rejectsWith(deleteRepo(hub(carol, { repo: "acme/secret" })), 403);
  // a non-member cannot create in the org
  await rejectsWith(createRepo(hub(alice, { repo: "acme/alice-model" })), 403);
});

test("CORS preflight", async () => {
  const res = await recordingFetch(`${server.url}/api/repos/create`, {
    method: "OPTIONS",
    headers: {
      Origin: "http://example.test",
      "Access-Control-Request-Method": "POST",
      "Access-Control-Request-Headers": "authorization,content-type,range,x-request-id",
    },
  });
  await res.arrayBuffer();
  assert.ok(res.status === 200 || res.status === 204, `status ${res.status}`);
  assert.ok(res.headers.get("access-control-allow-origin"), "Access-Control-Allow-Origin");
  const methods = (res.headers.get("access-control-allow-methods") ?? "").toUpperCase();
  assert.ok(methods.includes("POST") || methods === "*", `Allow-Methods: ${methods}`);
  // "*" does not cover Authorization, so it must be listed (or echoed)
  const allowHeaders = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase();
  assert.ok(allowHeaders.includes("authorization"), `Allow-Headers: ${allowHeaders}`);
  assert.ok(allowHeaders.includes("content-type") || allowHeaders.includes("*"), `Allow-Headers: ${allowHeaders}`);

  // ordinary responses expose the HF headers
  const r = await api("GET", "/api/models/admin/nope", { headers: { Origin: "http://example.test" } });
  assert.ok(r.headers.get("access-control-allow-origin"));
  const expose = (r.headers.get("access-control-expose-headers") ?? "").toLowerCase();
  for (const h of ["x-request-id", "x-error-code", "x-error-message", "x-repo-commit", "link", "x-total-count"]) {
    assert.ok(expose.includes(h), `Expose-Headers lacks ${h}: ${expose}`);
  }
});

test("validate-yaml", async () => {
  const ok = await api("POST", "/api/validate-yaml", {
    token: admin,
    json: { content: "---\nlicense: mit\ntags:\n- a\n---\n# hi\n", repoType: "model" },
  });
  assert.equal(ok.status, 200, ok.text);
  assert.ok(Array.isArray(ok.json?.errors), ok.text);
  assert.equal(ok.json.errors.length, 0, ok.text);
  const bad = await api("POST", "/api/validate-yaml", {
    token: admin,
    json: { content: "---\nlicense: [unclosed\n---\n", repoType: "model" },
  });
  assert.equal(bad.status, 400, bad.text);
  assert.ok(Array.isArray(bad.json?.errors) && bad.json.errors.length > 0, bad.text);
  assert.equal(typeof bad.json.errors[0].message, "string", bad.text);
});

test("metrics", async () => {
  const r = await api("GET", "/metrics");
  assert.equal(r.status, 200);
  assert.match(r.text, /^modelhub_http_requests_total/m);
  assert.match(r.text, /^modelhub_repos/m);
});

// The event threads answer body-less requests on libmicrohttpd's second callback: a
// response queued on the first one makes it close the connection (no keep-alive), which
// the first epoll build did for every GET. One socket must carry inline handlers (repo
// info, healthz), worker handlers (listing, whoami-free POST errors) and a JSON POST.
test("keep-alive: one connection carries inline, worker and body requests", async () => {
  const http = await import("node:http");
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const u = new URL(server.url);
  const sockets = new Set();
  const call = (method, path, body) =>
    new Promise((resolve, reject) => {
      const req = http.request(
        { host: u.hostname, port: u.port, method, path, agent,
          headers: { Authorization: `Bearer ${admin}`, ...(body ? { "Content-Type": "application/json" } : {}) } },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c) => (text += c));
          res.on("end", () => resolve({ status: res.statusCode, text }));
        },
      );
      req.on("socket", (s) => sockets.add(s));
      req.on("error", reject);
      req.end(body);
    });
  for (let i = 0; i < 5; i++) {
    assert.equal((await call("GET", "/api/models/admin/model-a")).status, 200);
    assert.equal((await call("HEAD", "/api/models/admin/model-a")).status, 200);
    assert.equal((await call("GET", "/healthz")).status, 200);
    assert.equal((await call("GET", "/api/models?author=admin")).status, 200);
    assert.equal((await call("GET", "/api/models/admin/no-such-repo")).status, 404);
    const v = await call("POST", "/api/validate-yaml", JSON.stringify({ content: "a: 1\n", repoType: "model" }));
    assert.equal(v.status, 200, v.text);
  }
  assert.equal(sockets.size, 1, `requests used ${sockets.size} connections`);
  agent.destroy();
});

// A handler on a worker thread must not hold up the event threads: while 8 git clones
// stream packs (producer threads) and 8 commits run (workers), repo info keeps answering.
test("inline, worker and streamed requests run side by side", async () => {
  const jobs = [];
  for (let i = 0; i < 8; i++) {
    jobs.push(api("GET", "/admin/model-a.git/info/refs?service=git-upload-pack", { token: admin }));
    jobs.push(api("POST", "/api/models/admin/model-a/commit/main", {
      token: admin,
      headers: { "Content-Type": "application/x-ndjson" },
      body: JSON.stringify({ key: "header", value: { summary: `parallel ${i}` } }) + "\n" +
        JSON.stringify({ key: "file", value: { path: `par/${i}.txt`, content: Buffer.from(`n${i}`).toString("base64"), encoding: "base64" } }) + "\n",
    }));
    for (let k = 0; k < 4; k++) jobs.push(api("GET", "/api/models/admin/model-a"));
  }
  const res = await Promise.all(jobs);
  for (const r of res) assert.ok(r.status === 200, `${r.status} ${r.text?.slice(0, 200)}`);
  const refs = res.filter((r) => (r.headers.get("content-type") || "").includes("git-upload-pack"));
  assert.equal(refs.length, 8);
  for (const r of refs) assert.match(r.text, /^001e# service=git-upload-pack\n0000/);
  const tree = await api("GET", "/api/models/admin/model-a/tree/main/par");
  assert.equal(tree.json.length, 8, tree.text);
});

test("X-Request-Id on every response, and the server is still healthy", async () => {
  const h = await api("GET", "/healthz");
  assert.equal(h.status, 200);
  assert.equal(h.json?.status, "ok");
  // unknown routes are JSON errors too
  const nf = await api("GET", "/api/definitely-not-a-route");
  assert.equal(nf.status, 404);
  assert.ok(nf.headers.get("x-request-id"));
  assert.ok(responsesSeen > 50, `saw ${responsesSeen} responses`);
  assert.deepEqual(missingRequestId, [], "responses without X-Request-Id");
  // ids are unique per request
  const a = await api("GET", "/healthz");
  const b = await api("GET", "/healthz");
  assert.notEqual(a.headers.get("x-request-id"), b.headers.get("x-request-id"));
});
