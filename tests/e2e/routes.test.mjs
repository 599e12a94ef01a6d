// Routes that had no end-to-end test of their own: the /datasets and /spaces search pages,
// GET /api/spaces (and @huggingface/hub's listSpaces), the tag stubs
// /api/{models,datasets}-tags-by-type, /api/{type}s/{repo}/auth-check with and without read
// access (public, private, gated), and granting gated access through
// /api/{type}s/{repo}/user-access-request/grant (hf-api.md §3.6, §7.6, §1.6).
import { before, after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkRepoAccess, downloadFile, listSpaces } from "@huggingface/hub";
import { startServer } from "./lib/server.mjs";

let server, url, admin, alice, bob, carol;

function req(method, p, token, body) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return fetch(`${url}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

async function json(res, status = 200) {
  const text = await res.text();
  assert.equal(res.status, status, `${res.url}: ${res.status} ${text}`);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  return JSON.parse(text);
}

async function assertError(res, status, code) {
  await res.arrayBuffer();
  assert.equal(res.status, status, `${res.url}: expected ${status} ${code}, got ${res.status}`);
  assert.equal(res.headers.get("x-error-code"), code, `${res.url}: X-Error-Code`);
}

async function create(token, body) {
  const r = await req("POST", "/api/repos/create", token, body);
  assert.equal(r.status, 200, await r.text());
}

async function commitFile(token, repo, path, content, type = "model") {
  const nd =
    [
      { key: "header", value: { summary: `add ${path}` } },
      { key: "file", value: { path, content: Buffer.from(content).toString("base64"), encoding: "base64" } },
    ]
      .map((l) => JSON.stringify(l))
      .join("\n") + "\n";
  const r = await fetch(`${url}/api/${type}s/${repo}/commit/main`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/x-ndjson" },
    body: nd,
  });
  assert.equal(r.status, 200, await r.text());
}

before(async () => {
  server = await startServer();
  url = server.url;
  admin = server.adminToken;
  alice = server.makeUser("alice");
  bob = server.makeUser("bob");
  carol = server.makeUser("carol");
  await create(admin, { name: "rt-model" });
  await create(admin, { name: "rt-data", type: "dataset" });
  await create(admin, { name: "rt-space", type: "space", sdk: "static" });
  await create(alice, { name: "alice-space", type: "space", sdk: "gradio" });
  await create(alice, { name: "secret-space", type: "space", private: true });
  await create(alice, { name: "secret-model", private: true });
});
after(() => server.stop());

describe("search pages /datasets and /spaces", () => {
  const links = (html) => [...html.matchAll(/<a class="rcard" href="([^"]+)"/g)].map((m) => m[1]).sort();

  test("/datasets lists datasets only, each linked under /datasets/", async () => {
    const r = await fetch(`${url}/datasets`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type"), /^text\/html/);
    const html = await r.text();
    assert.match(html, /<h1>Datasets<\/h1>/);
    assert.match(html, /<form method="get" action="\/datasets">/);
    assert.deepEqual(links(html), ["/datasets/admin/rt-data"]);
    // a search that matches nothing says so instead of listing something else
    const none = await (await fetch(`${url}/datasets?search=no-such-thing`)).text();
    assert.deepEqual(links(none), []);
    assert.match(none, /No results/);
  });

  test("/spaces lists public spaces only (private ones to their owner), linked under /spaces/", async () => {
    const r = await fetch(`${url}/spaces`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type"), /^text\/html/);
    const html = await r.text();
    assert.match(html, /<h1>Spaces<\/h1>/);
    assert.deepEqual(links(html), ["/spaces/admin/rt-space", "/spaces/alice/alice-space"]);
    const mine = await (await fetch(`${url}/spaces?author=alice`)).text();
    assert.deepEqual(links(mine), ["/spaces/alice/alice-space"]);
  });
});

describe("GET /api/spaces", () => {
  test("an array of spaces with the listing shape; private ones only for who can read them", async () => {
    const anon = await json(await fetch(`${url}/api/spaces`));
    assert.ok(Array.isArray(anon));
    assert.deepEqual(anon.map((s) => s.id).sort(), ["admin/rt-space", "alice/alice-space"]);
    for (const s of anon) {
      assert.match(s._id, /^\S+$/);
      assert.equal(s.author, s.id.split("/")[0]);
      assert.equal(s.private, false);
      assert.equal(s.gated, false);
      assert.ok(!("modelId" in s), "modelId is for models only");
      assert.ok(!Number.isNaN(Date.parse(s.lastModified)));
      assert.ok(Array.isArray(s.tags));
    }
    const own = await json(await req("GET", "/api/spaces?author=alice", alice));
    assert.deepEqual(own.map((s) => s.id).sort(), ["alice/alice-space", "alice/secret-space"]);
    assert.equal(own.find((s) => s.id === "alice/secret-space").private, true);
    const other = await json(await req("GET", "/api/spaces?author=alice", bob));
    assert.deepEqual(other.map((s) => s.id), ["alice/alice-space"]);
    const search = await json(await fetch(`${url}/api/spaces?search=rt-`));
    assert.deepEqual(search.map((s) => s.id), ["admin/rt-space"]);
  });

  test("listSpaces (@huggingface/hub) pages through them", async () => {
    const got = [];
    for await (const s of listSpaces({ hubUrl: url, accessToken: alice })) got.push(s);
    assert.deepEqual(got.map((s) => s.name).sort(), ["admin/rt-space", "alice/alice-space", "alice/secret-space"]);
    for (const s of got) {
      assert.match(s.id, /^\S+$/);
      assert.ok(s.updatedAt instanceof Date && !Number.isNaN(s.updatedAt.getTime()));
      assert.equal(typeof s.likes, "number");
    }
    const mine = [];
    for await (const s of listSpaces({ hubUrl: url, search: { owner: "admin" } })) mine.push(s.name);
    assert.deepEqual(mine, ["admin/rt-space"]);
  });
});

describe("tags-by-type stubs", () => {
  for (const p of ["/api/models-tags-by-type", "/api/datasets-tags-by-type"]) {
    test(`${p} answers an empty object`, async () => {
      assert.deepEqual(await json(await fetch(url + p)), {});
      assert.deepEqual(await json(await req("GET", p, alice)), {});
    });
  }
});

describe("auth-check", () => {
  test("public repos: anyone can read; an unknown repo or the wrong type is RepoNotFound", async () => {
    assert.deepEqual(await json(await fetch(`${url}/api/models/admin/rt-model/auth-check`)), {});
    assert.deepEqual(await json(await req("GET", "/api/datasets/admin/rt-data/auth-check", bob)), {});
    assert.deepEqual(await json(await req("GET", "/api/spaces/admin/rt-space/auth-check", bob)), {});
    await assertError(await fetch(`${url}/api/models/admin/no-such-repo/auth-check`), 404, "RepoNotFound");
    await assertError(await fetch(`${url}/api/datasets/admin/rt-model/auth-check`), 404, "RepoNotFound");
  });

  test("private repos: the owner can read; anonymous and other users get RepoNotFound", async () => {
    assert.deepEqual(await json(await req("GET", "/api/models/alice/secret-model/auth-check", alice)), {});
    assert.deepEqual(await json(await req("GET", "/api/spaces/alice/secret-space/auth-check", alice)), {});
    await assertError(await fetch(`${url}/api/models/alice/secret-model/auth-check`), 404, "RepoNotFound");
    await assertError(await req("GET", "/api/models/alice/secret-model/auth-check", bob), 404, "RepoNotFound");
    await assertError(await req("GET", "/api/spaces/alice/secret-space/auth-check", bob), 404, "RepoNotFound");
    // a bad token is not "anonymous"
    await assertError(await req("GET", "/api/models/admin/rt-model/auth-check", "hf_not_a_token"), 401, "Unauthorized");
    // @huggingface/hub's access check agrees
    await checkRepoAccess({ repo: "alice/secret-model", hubUrl: url, accessToken: alice });
    await assert.rejects(checkRepoAccess({ repo: "alice/secret-model", hubUrl: url, accessToken: bob }), (e) => {
      assert.equal(e.statusCode, 404);
      return true;
    });
  });
});

describe("gated repos: auth-check and user-access-request/grant", () => {
  const repo = "alice/gated-model";
  const content = Buffer.from("weights of a gated model\n");

  before(async () => {
    await create(alice, { name: "gated-model" });
    await commitFile(alice, repo, "weights.txt", content);
    const r = await req("PUT", `/api/models/${repo}/settings`, alice, { gated: "manual" });
    assert.equal(r.status, 200, await r.text());
  });

  test("auth-check says GatedRepo until access is granted (401 anonymous, 403 logged in)", async () => {
    assert.deepEqual(await json(await req("GET", `/api/models/${repo}/auth-check`, alice)), {});
    await assertError(await fetch(`${url}/api/models/${repo}/auth-check`), 401, "GatedRepo");
    await assertError(await req("GET", `/api/models/${repo}/auth-check`, carol), 403, "GatedRepo");
    // the card and metadata stay visible, so checkRepoAccess (repo info) succeeds
    await checkRepoAccess({ repo, hubUrl: url, accessToken: carol });
  });

  test("grant a pending request: the user can then download; grant without a request works too", async () => {
    // bob asks, and is pending
    const ask = await json(await req("POST", `/api/models/${repo}/ask-access`, bob, { reason: "eval" }));
    assert.equal(ask.status, "pending");
    const pending = await json(await req("GET", `/api/models/${repo}/user-access-request/pending`, alice));
    assert.deepEqual(pending.map((p) => p.user.user), ["bob"]);
    await assertError(await req("GET", `/${repo}/resolve/main/weights.txt`, bob), 403, "GatedRepo");
    await assertError(await req("GET", `/api/models/${repo}/auth-check`, bob), 403, "GatedRepo");

    // only the repo's admins can grant, and only to a user who exists
    await assertError(await req("POST", `/api/models/${repo}/user-access-request/grant`, bob, { user: "bob" }), 403, "Forbidden");
    await assertError(await req("POST", `/api/models/${repo}/user-access-request/grant`, alice, { user: "nobody-here" }), 404, "NotFound");
    await assertError(await req("POST", `/api/models/${repo}/user-access-request/grant`, alice, {}), 404, "NotFound");
    await assertError(await req("GET", `/${repo}/resolve/main/weights.txt`, bob), 403, "GatedRepo");

    const g = await req("POST", `/api/models/${repo}/user-access-request/grant`, alice, { user: "bob" });
    assert.deepEqual(await json(g), {});
    const accepted = await json(await req("GET", `/api/models/${repo}/user-access-request/accepted`, alice));
    assert.deepEqual(accepted.map((p) => p.user.user), ["bob"]);
    assert.equal(accepted[0].status, "accepted");
    assert.deepEqual(await json(await req("GET", `/api/models/${repo}/user-access-request/pending`, alice)), []);

    assert.deepEqual(await json(await req("GET", `/api/models/${repo}/auth-check`, bob)), {});
    const blob = await downloadFile({ repo, path: "weights.txt", hubUrl: url, accessToken: bob });
    assert.ok(blob, "downloadFile returned the file");
    assert.deepEqual(Buffer.from(await blob.arrayBuffer()), content);

    // carol never asked: a grant lets her in as well; anonymous stays out
    await assertError(await req("GET", `/${repo}/resolve/main/weights.txt`, carol), 403, "GatedRepo");
    assert.deepEqual(await json(await req("POST", `/api/models/${repo}/user-access-request/grant`, alice, { user: "carol" })), {});
    const r = await req("GET", `/${repo}/resolve/main/weights.txt`, carol);
    assert.equal(r.status, 200);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), content);
    assert.deepEqual(await json(await req("GET", `/api/models/${repo}/auth-check`, carol)), {});
    await assertError(await fetch(`${url}/${repo}/resolve/main/weights.txt`), 401, "GatedRepo");
  });
});
