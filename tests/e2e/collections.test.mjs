// Collections (docs/collections.md): the calls huggingface_hub makes (hf_api.py
// create_collection … delete_collection_item, with its exact JSON bodies) and those
// @huggingface/hub has (createCollection, listCollections, deleteCollection); slugs, private
// collections, hidden items, positions, bad input, audit, and the web pages.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createCollection, deleteCollection, listCollections } from "@huggingface/hub";
import { chromium } from "playwright-core";
import { startServer } from "./lib/server.mjs";

let server;
let admin, alice, bob, carol, aliceRead;

async function api(method, p, { token, json } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    body = JSON.stringify(json);
    headers["Content-Type"] = "application/json";
  }
  const res = await fetch(server.url + p, { method, headers, body });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: parsed };
}

async function createRepo(token, name, { type = "model", organization, priv = false } = {}) {
  const json = { name, type, private: priv };
  if (organization) json.organization = organization;
  const r = await api("POST", "/api/repos/create", { token, json });
  assert.equal(r.status, 200, r.text);
}

/** huggingface_hub.create_collection: {title, namespace, private[, description]}. */
async function create(token, title, namespace, extra = {}) {
  return api("POST", "/api/collections", { token, json: { title, namespace, private: false, ...extra } });
}

function assertHubError(r, status, code) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.headers.get("x-error-code"), code, r.text);
  assert.ok(r.headers.get("x-error-message"), "X-Error-Message");
}

before(async () => {
  server = await startServer();
  admin = server.adminToken;
  alice = server.makeUser("alice", "write");
  bob = server.makeUser("bob", "write");
  carol = server.makeUser("carol", "write");
  aliceRead = server.makeToken("alice", "read");
  server.cli(["org", "add", "acme", "--owner", "alice"], { check: true });
  server.cli(["org", "member", "add", "acme", "bob", "--role", "write"], { check: true });
  server.cli(["org", "member", "add", "acme", "carol", "--role", "read"], { check: true });
  await createRepo(alice, "bert");
  await createRepo(alice, "squad", { type: "dataset" });
  await createRepo(alice, "demo", { type: "space" });
  await createRepo(alice, "secret", { priv: true });
  await createRepo(bob, "tool");
});

after(() => server?.stop());

describe("collections API", () => {
  test("lifecycle: create, get, update metadata (slug follows the title), delete", async () => {
    let r = await create(alice, "My Cool Stuff!", "alice", { description: "Contains a lot of cool stuff" });
    assert.equal(r.status, 200, r.text);
    const c = r.json;
    assert.match(c.slug, /^alice\/my-cool-stuff-[0-9a-f]{24}$/);
    assert.equal(c.title, "My Cool Stuff!");
    assert.equal(c.description, "Contains a lot of cool stuff");
    assert.deepEqual(c.items, []);
    assert.equal(c.private, false);
    assert.equal(c.upvotes, 0);
    assert.equal(typeof c.position, "number");
    assert.ok(["orange", "blue", "green", "purple", "pink", "indigo"].includes(c.theme));
    assert.match(c.lastUpdated, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(c.owner.name, "alice");
    assert.equal(c.owner.type, "user");
    assert.equal(c.shareUrl, `${server.url}/collections/${c.slug}`);

    // Without a description the key is absent (huggingface_hub reads None).
    r = await create(alice, "Bare", "alice");
    assert.equal(r.json.description, undefined);

    // update_collection_metadata sends only the non-None fields; the answer is {data: …}.
    r = await api("PATCH", `/api/collections/${c.slug}`, {
      token: alice,
      json: { private: true, theme: "pink", title: "New title", description: "New description" },
    });
    assert.equal(r.status, 200, r.text);
    const d = r.json.data;
    assert.equal(d.title, "New title");
    assert.equal(d.description, "New description");
    assert.equal(d.private, true);
    assert.equal(d.theme, "pink");
    assert.notEqual(d.slug, c.slug);
    assert.equal(d.slug.split("-").pop(), c.slug.split("-").pop(), "same id, new title part");
    // Both slugs name the same collection.
    assert.equal((await api("GET", `/api/collections/${c.slug}`, { token: alice })).json.slug, d.slug);
    assert.equal((await api("GET", `/api/collections/${d.slug}`, { token: alice })).json.slug, d.slug);
    // Another owner in the slug, or a bad id: 404.
    assertHubError(await api("GET", `/api/collections/bob/${d.slug.split("/")[1]}`, { token: alice }), 404, "NotFound");
    assertHubError(await api("GET", "/api/collections/alice/nope-0123", { token: alice }), 404, "NotFound");

    // delete_collection, then again: 404 (missing_ok relies on it).
    r = await api("DELETE", `/api/collections/${d.slug}`, { token: alice });
    assert.equal(r.status, 200, r.text);
    assertHubError(await api("DELETE", `/api/collections/${d.slug}`, { token: alice }), 404, "NotFound");
    assertHubError(await api("GET", `/api/collections/${d.slug}`, { token: alice }), 404, "NotFound");
  });

  test("@huggingface/hub createCollection, listCollections, deleteCollection", async () => {
    const { slug } = await createCollection({
      collection: { title: "JS picks", namespace: "alice", description: "from js" },
      accessToken: alice,
      hubUrl: server.url,
    });
    assert.match(slug, /^alice\/js-picks-[0-9a-f]{24}$/);
    const seen = [];
    for await (const c of listCollections({ search: { owner: ["alice"] }, hubUrl: server.url, accessToken: alice }))
      seen.push(c);
    const mine = seen.find((c) => c.slug === slug);
    assert.ok(mine, "listed");
    assert.equal(mine.description, "from js");
    assert.equal(mine.owner.name, "alice");
    assert.equal("position" in mine, false, "huggingface_hub passes position itself");
    await deleteCollection({ slug, accessToken: alice, hubUrl: server.url });
    assert.equal((await api("GET", `/api/collections/${slug}`)).status, 404);
  });

  test("exists_ok: a second create with the same title is 409 with the existing slug", async () => {
    const first = await create(alice, "Twice", "alice");
    assert.equal(first.status, 200);
    const r = await create(alice, "Twice", "alice", { description: "ignored" });
    assertHubError(r, 409, "Conflict");
    assert.equal(r.json.slug, first.json.slug);
    // What exists_ok=True does next: get_collection(slug) — unchanged.
    const again = await api("GET", `/api/collections/${r.json.slug}`, { token: alice });
    assert.equal(again.json.description, undefined);
  });

  test("items: models, datasets, spaces, collections; notes, positions, duplicates, removal", async () => {
    const nested = (await create(alice, "Nested", "alice")).json.slug;
    const slug = (await create(alice, "Items", "alice")).json.slug;
    const add = (json) => api("POST", `/api/collections/${slug}/items`, { token: alice, json });
    // add_collection_item: {item: {id, type}[, note]}; the answer is the collection.
    let r = await add({ item: { id: "alice/bert", type: "model" }, note: "This is my <model>" });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.items.length, 1);
    assert.equal((await add({ item: { id: "alice/squad", type: "dataset" } })).status, 200);
    assert.equal((await add({ item: { id: "alice/demo", type: "space" } })).status, 200);
    r = await add({ item: { id: nested, type: "collection" } });
    assert.equal(r.status, 200, r.text);

    let c = (await api("GET", `/api/collections/${slug}`)).json;
    assert.deepEqual(c.items.map((i) => [i.type, i.type === "collection" ? i.slug : i.id, i.position]), [
      ["model", "alice/bert", 0],
      ["dataset", "alice/squad", 1],
      ["space", "alice/demo", 2],
      ["collection", nested, 3],
    ]);
    const model = c.items[0];
    assert.match(model._id, /^[0-9a-f]{24}$/);
    assert.deepEqual(model.note, { html: "This is my &lt;model&gt;", text: "This is my <model>" });
    assert.equal(model.author, "alice");
    assert.equal(model.repoType, "model");
    assert.equal(model.private, false);
    assert.equal(model.gated, false);
    assert.match(model.createdAt, /Z$/);
    assert.equal(typeof model.likes, "number");
    assert.equal(c.items[1].note, undefined);
    assert.match(c.items[3].id, /^[0-9a-f]{24}$/);
    assert.equal(c.items[3].numberItems, 0);

    // Already there: 409 (exists_ok); a repo of another type: 404.
    assertHubError(await add({ item: { id: "alice/bert", type: "model" } }), 409, "Conflict");
    assertHubError(await add({ item: { id: "alice/bert", type: "dataset" } }), 404, "RepoNotFound");
    // Itself: 400.
    assertHubError(await add({ item: { id: slug, type: "collection" } }), 400, "BadRequest");

    // update_collection_item {note, position}: the model moves to index 1.
    r = await api("PATCH", `/api/collections/${slug}/items/${model._id}`, {
      token: alice,
      json: { position: 1, note: "New note" },
    });
    assert.equal(r.status, 200, r.text);
    c = (await api("GET", `/api/collections/${slug}`)).json;
    assert.deepEqual(c.items.map((i) => i.id.split("/").pop()), ["squad", "bert", "demo", c.items[3].id]);
    assert.deepEqual(c.items.map((i) => i.position), [0, 1, 2, 3]);
    assert.equal(c.items[1].note.text, "New note");
    // Last to first.
    await api("PATCH", `/api/collections/${slug}/items/${c.items[3]._id}`, { token: alice, json: { position: 0 } });
    c = (await api("GET", `/api/collections/${slug}`)).json;
    assert.equal(c.items[0].type, "collection");
    assert.deepEqual(c.items.map((i) => i.position), [0, 1, 2, 3]);

    // delete_collection_item, twice (missing_ok relies on the 404).
    const gone = c.items[2]._id;
    assert.equal((await api("DELETE", `/api/collections/${slug}/items/${gone}`, { token: alice })).status, 200);
    assertHubError(await api("DELETE", `/api/collections/${slug}/items/${gone}`, { token: alice }), 404, "NotFound");
    assertHubError(
      await api("PATCH", `/api/collections/${slug}/items/${gone}`, { token: alice, json: { note: "x" } }),
      404,
      "NotFound",
    );
    c = (await api("GET", `/api/collections/${slug}`)).json;
    assert.equal(c.items.length, 3);
    assert.deepEqual(c.items.map((i) => i.position), [0, 1, 2]);

    // Deleting the nested collection removes it from this one.
    await api("DELETE", `/api/collections/${nested}`, { token: alice });
    c = (await api("GET", `/api/collections/${slug}`)).json;
    assert.equal(c.items.some((i) => i.type === "collection"), false);
  });

  test("collection positions in the owner's list reorder", async () => {
    const a = (await create(bob, "B one", "bob")).json;
    const b = (await create(bob, "B two", "bob")).json;
    const c = (await create(bob, "B three", "bob")).json;
    const order = async () =>
      (await api("GET", "/api/collections?owner=bob")).json.map((x) => x.title);
    assert.deepEqual(await order(), ["B one", "B two", "B three"]);
    const r = await api("PATCH", `/api/collections/${c.slug}`, { token: bob, json: { position: 0 } });
    assert.equal(r.json.data.position, 0);
    assert.deepEqual(await order(), ["B three", "B one", "B two"]);
    assert.equal((await api("GET", `/api/collections/${a.slug}`)).json.position, 1);
    assert.equal((await api("GET", `/api/collections/${b.slug}`)).json.position, 2);
  });

  test("list by owner and by item; at most 4 items each; Link pagination", async () => {
    const s1 = (await create(carol, "Lots", "carol")).json.slug;
    const s2 = (await create(carol, "Other", "carol")).json.slug;
    for (const id of ["alice/bert", "bob/tool"])
      await api("POST", `/api/collections/${s1}/items`, { token: carol, json: { item: { id, type: "model" } } });
    for (const [id, type] of [["alice/squad", "dataset"], ["alice/demo", "space"], ["alice/bert", "model"]])
      await api("POST", `/api/collections/${s1}/items`, { token: carol, json: { item: { id, type } } });
    await api("POST", `/api/collections/${s2}/items`, { token: carol, json: { item: { id: "bob/tool", type: "model" } } });

    let r = await api("GET", "/api/collections?owner=carol");
    assert.deepEqual(r.json.map((c) => c.slug), [s1, s2]);
    assert.equal(r.json[0].items.length, 4, "listings show 4 items");
    assert.equal(r.json.some((c) => "position" in c), false);

    r = await api("GET", "/api/collections?item=models/bob/tool&owner=carol");
    assert.deepEqual(r.json.map((c) => c.slug).sort(), [s1, s2].sort());
    r = await api("GET", "/api/collections?item=datasets/alice/squad&owner=carol");
    assert.deepEqual(r.json.map((c) => c.slug), [s1]);
    r = await api("GET", "/api/collections?item=models/alice/nothing");
    assert.deepEqual(r.json, []);
    r = await api("GET", "/api/collections?item=papers/2311.12983");
    assert.deepEqual(r.json, []);
    r = await api("GET", "/api/collections?q=lots");
    assert.ok(r.json.some((c) => c.slug === s1));
    assert.ok(!r.json.some((c) => c.slug === s2));

    r = await api("GET", "/api/collections?owner=carol&limit=1");
    assert.equal(r.json.length, 1);
    const link = r.headers.get("link");
    assert.match(link, /rel="next"/);
    const next = link.match(/<([^>]+)>/)[1];
    const page2 = await (await fetch(next)).json();
    assert.deepEqual(page2.map((c) => c.slug), [s2]);
    // @huggingface/hub follows the Link header.
    const all = [];
    for await (const c of listCollections({ search: { owner: ["carol"] }, hubUrl: server.url, limit: 10 }))
      all.push(c.slug);
    assert.deepEqual(all, [s1, s2]);
    for await (const c of listCollections({ search: { item: ["models/bob/tool"] }, hubUrl: server.url }))
      assert.ok(c.slug.startsWith("carol/"), c.slug);
  });

  test("private collections: 404 to others and absent from their listings", async () => {
    const r = await api("POST", "/api/collections", {
      token: alice,
      json: { title: "Hidden", namespace: "alice", private: true },
    });
    assert.equal(r.status, 200, r.text);
    const slug = r.json.slug;
    assert.equal(r.json.private, true);
    assert.equal((await api("GET", `/api/collections/${slug}`, { token: alice })).status, 200);
    assertHubError(await api("GET", `/api/collections/${slug}`, { token: bob }), 404, "NotFound");
    assertHubError(await api("GET", `/api/collections/${slug}`), 404, "NotFound");
    assertHubError(
      await api("PATCH", `/api/collections/${slug}`, { token: bob, json: { private: false } }),
      404,
      "NotFound",
    );
    assertHubError(await api("DELETE", `/api/collections/${slug}`, { token: bob }), 404, "NotFound");
    const listed = async (token) =>
      (await api("GET", "/api/collections?owner=alice", { token })).json.some((c) => c.slug === slug);
    assert.equal(await listed(alice), true);
    assert.equal(await listed(bob), false);
    assert.equal(await listed(undefined), false);
    assert.equal((await api("GET", "/api/collections?q=hidden", { token: bob })).json.length, 0);
    // A hidden collection as an item filter or an item: not found.
    assert.deepEqual((await api("GET", `/api/collections?item=collections/${slug}`, { token: bob })).json, []);
    const bobs = (await create(bob, "Bob refs", "bob")).json.slug;
    assertHubError(
      await api("POST", `/api/collections/${bobs}/items`, { token: bob, json: { item: { id: slug, type: "collection" } } }),
      404,
      "NotFound",
    );
    // Made public (update_collection_metadata(private=False)): visible.
    await api("PATCH", `/api/collections/${slug}`, { token: alice, json: { private: false } });
    assert.equal((await api("GET", `/api/collections/${slug}`, { token: bob })).status, 200);
    assert.equal(await listed(bob), true);
  });

  test("permissions: the owner or org writers write; others and read tokens get 403/401", async () => {
    const mine = (await create(alice, "Alice only", "alice")).json.slug;
    assertHubError(
      await api("PATCH", `/api/collections/${mine}`, { token: bob, json: { title: "x" } }),
      403,
      "Forbidden",
    );
    assertHubError(await api("DELETE", `/api/collections/${mine}`, { token: bob }), 403, "Forbidden");
    assertHubError(
      await api("POST", `/api/collections/${mine}/items`, { token: bob, json: { item: { id: "bob/tool", type: "model" } } }),
      403,
      "Forbidden",
    );
    assertHubError(await api("DELETE", `/api/collections/${mine}`), 401, "Unauthorized");
    assertHubError(await create(aliceRead, "With a read token", "alice"), 403, "Forbidden");
    assertHubError(
      await api("PATCH", `/api/collections/${mine}`, { token: aliceRead, json: { title: "x" } }),
      403,
      "Forbidden",
    );
    // Another user's namespace, an org where the caller only reads: 403.
    assertHubError(await create(bob, "In alice", "alice"), 403, "Forbidden");
    assertHubError(await create(carol, "Org read", "acme"), 403, "Forbidden");
    assertHubError(await create(bob, "Nowhere", "no-such-ns"), 404, "NotFound");
    // An org writer creates and edits the org's collections; org readers see private ones.
    let r = await create(bob, "Acme picks", "acme", { private: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.owner.type, "org");
    const org = r.json.slug;
    r = await api("PATCH", `/api/collections/${org}`, { token: alice, json: { theme: "indigo" } });
    assert.equal(r.status, 200, r.text);
    assert.equal((await api("GET", `/api/collections/${org}`, { token: carol })).status, 200);
    assertHubError(
      await api("PATCH", `/api/collections/${org}`, { token: carol, json: { theme: "blue" } }),
      403,
      "Forbidden",
    );
    // Anonymous create: 401.
    assertHubError(await create(undefined, "anon", "alice"), 401, "Unauthorized");
  });

  test("items pointing to a private repo are hidden from readers who cannot see it", async () => {
    const slug = (await create(alice, "Mixed", "alice")).json.slug;
    for (const id of ["alice/secret", "alice/bert"]) {
      const r = await api("POST", `/api/collections/${slug}/items`, { token: alice, json: { item: { id, type: "model" } } });
      assert.equal(r.status, 200, r.text);
    }
    assert.deepEqual((await api("GET", `/api/collections/${slug}`, { token: alice })).json.items.map((i) => i.id), [
      "alice/secret",
      "alice/bert",
    ]);
    for (const token of [bob, undefined]) {
      const c = (await api("GET", `/api/collections/${slug}`, { token })).json;
      assert.deepEqual(c.items.map((i) => i.id), ["alice/bert"]);
      const listed = (await api("GET", "/api/collections?owner=alice", { token })).json.find((x) => x.slug === slug);
      assert.deepEqual(listed.items.map((i) => i.id), ["alice/bert"]);
    }
    // Listing by a private item the caller cannot see: nothing (no leak).
    assert.deepEqual((await api("GET", "/api/collections?item=models/alice/secret", { token: bob })).json, []);
    assert.equal(
      (await api("GET", "/api/collections?item=models/alice/secret", { token: alice })).json.some((c) => c.slug === slug),
      true,
    );
    // Someone who cannot see it cannot add it either: 404 as for a missing repo.
    const bobs = (await create(bob, "Bob tries", "bob")).json.slug;
    assertHubError(
      await api("POST", `/api/collections/${bobs}/items`, { token: bob, json: { item: { id: "alice/secret", type: "model" } } }),
      404,
      "RepoNotFound",
    );
  });

  test("a collection as an item counts only the items the reader can see (numberItems)", async () => {
    const inner = (await create(alice, "Inner count", "alice")).json.slug;
    for (const id of ["alice/secret", "alice/bert"]) {
      const r = await api("POST", `/api/collections/${inner}/items`, { token: alice, json: { item: { id, type: "model" } } });
      assert.equal(r.status, 200, r.text);
    }
    const outer = (await create(alice, "Outer count", "alice")).json.slug;
    const r = await api("POST", `/api/collections/${outer}/items`, {
      token: alice,
      json: { item: { id: inner, type: "collection" } },
    });
    assert.equal(r.status, 200, r.text);
    const count = async (token) => (await api("GET", `/api/collections/${outer}`, { token })).json.items[0].numberItems;
    assert.equal(await count(alice), 2);
    // bob and anonymous callers do not learn that a private repo is in there.
    assert.equal(await count(bob), 1);
    assert.equal(await count(undefined), 1);
    const listed = (await api("GET", "/api/collections?owner=alice&q=outer%20count")).json;
    assert.equal(listed[0].items[0].numberItems, 1);
  });

  test("an owner has at most 1,000 collections (every reorder rewrites the owner's list)", async () => {
    server.makeUser("hoarder", "write");
    const h = server.makeToken("hoarder", "write");
    assert.equal((await create(h, "c0", "hoarder")).status, 200);
    // 999 more straight into the database (1,000 API calls would make a slow test).
    const bulk = (hex) =>
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 999)" +
      " INSERT INTO collections(oid, owner_id, title, slug_title, theme, position, created_ms, updated_ms)" +
      ` SELECT ${hex}, (SELECT id FROM accounts WHERE name = 'hoarder'),` +
      " 'c' || i, 'c' || i, 'blue', i, 0, 0 FROM n";
    server.sql({
      sqlite: bulk("printf('%024x', 11259375 * 4096 + i)"),
      postgres: bulk("lpad(to_hex(CAST(11259375 AS BIGINT) * 4096 + i), 24, '0')"),
    });
    assertHubError(await create(h, "one too many", "hoarder"), 413, "PayloadTooLarge");
    // Deleting one makes room again.
    const first = (await api("GET", "/api/collections?owner=hoarder&limit=1", { token: h })).json[0].slug;
    assert.equal((await api("DELETE", `/api/collections/${first}`, { token: h })).status, 200);
    assert.equal((await create(h, "one too many", "hoarder")).status, 200);
  });

  test("fine-grained tokens: a repo scope or a read scope neither writes collections nor reads private ones it does not cover", async () => {
    const priv = (await create(alice, "Scoped secret", "alice", { private: true })).json.slug;
    const pub = (await create(alice, "Scoped public", "alice")).json.slug;
    const token = async (scopes) => {
      const r = await api("POST", "/api/settings/tokens", { token: alice, json: { name: `fg-${Math.random()}`, role: "fineGrained", scopes } });
      assert.equal(r.status, 200, r.text);
      return r.json.token;
    };
    const repoScoped = await token([{ type: "repo", name: "alice/bert", permission: "write" }]);
    const nsRead = await token([{ type: "namespace", name: "alice", permission: "read" }]);
    const nsWrite = await token([{ type: "namespace", name: "alice", permission: "write" }]);
    for (const t of [repoScoped, nsRead]) {
      assertHubError(await create(t, "Scoped new", "alice"), 403, "Forbidden");
      assertHubError(await api("PATCH", `/api/collections/${pub}`, { token: t, json: { title: "x" } }), 403, "Forbidden");
      assertHubError(await api("DELETE", `/api/collections/${pub}`, { token: t }), 403, "Forbidden");
      assertHubError(
        await api("POST", `/api/collections/${pub}/items`, { token: t, json: { item: { id: "alice/bert", type: "model" } } }),
        403,
        "Forbidden",
      );
    }
    // Outside every scope: the private collection does not exist, in reads and listings.
    assertHubError(await api("GET", `/api/collections/${priv}`, { token: repoScoped }), 404, "NotFound");
    const listed = (await api("GET", "/api/collections?owner=alice&limit=100", { token: repoScoped })).json;
    assert.equal(listed.some((c) => c.slug === priv), false);
    // A namespace read scope reads it; a namespace write scope writes.
    assert.equal((await api("GET", `/api/collections/${priv}`, { token: nsRead })).status, 200);
    assert.equal((await create(nsWrite, "Scoped new", "alice")).status, 200);
  });

  test("bad input: item types, missing repos, themes, fields → 400/404 with X-Error-Code", async () => {
    const slug = (await create(alice, "Bad input", "alice")).json.slug;
    const add = (json) => api("POST", `/api/collections/${slug}/items`, { token: alice, json });
    assertHubError(await add({ item: { id: "alice/bert", type: "widget" } }), 400, "BadRequest");
    assertHubError(await add({ item: { id: "2311.12983", type: "paper" } }), 400, "BadRequest");
    assertHubError(await add({ item: { id: "alice/missing", type: "model" } }), 404, "RepoNotFound");
    assertHubError(await add({ item: { id: "no-slash", type: "model" } }), 400, "BadRequest");
    assertHubError(await add({ item: "alice/bert" }), 400, "BadRequest");
    assertHubError(await add({ item: { id: 5, type: "model" } }), 400, "BadRequest");
    assertHubError(await add({ item: { id: "alice/bert", type: "model" }, note: "x".repeat(501) }), 400, "BadRequest");
    assertHubError(await add({ item: { id: "alice/nope-0123456789abcdef01234567", type: "collection" } }), 404, "NotFound");
    const patch = (json) => api("PATCH", `/api/collections/${slug}`, { token: alice, json });
    assertHubError(await patch({ theme: "rainbow" }), 400, "BadRequest");
    assertHubError(await patch({ private: "yes" }), 400, "BadRequest");
    assertHubError(await patch({ position: -1 }), 400, "BadRequest");
    assertHubError(await patch({ title: "" }), 400, "BadRequest");
    assertHubError(await patch({ description: "d".repeat(151) }), 400, "BadRequest");
    assertHubError(await create(alice, "", "alice"), 400, "BadRequest");
    assertHubError(await create(alice, "t".repeat(101), "alice"), 400, "BadRequest");
    assertHubError(await api("POST", "/api/collections", { token: alice, json: { namespace: "alice" } }), 400, "BadRequest");
    const bad = await fetch(`${server.url}/api/collections`, {
      method: "POST",
      headers: { Authorization: `Bearer ${alice}`, "Content-Type": "application/json" },
      body: "{not json",
    });
    assert.equal(bad.status, 400);
    assertHubError(await api("GET", "/api/collections?sort=sideways"), 400, "BadRequest");
    assertHubError(await api("GET", "/api/collections?item=gadgets/x"), 400, "BadRequest");
    // Nothing was half-done.
    assert.deepEqual((await api("GET", `/api/collections/${slug}`)).json.items, []);
  });

  test("writes are audited in the owner's namespace", async () => {
    const r = await api("GET", "/api/admin/audit-log?action=collection.&limit=500", { token: admin });
    assert.equal(r.status, 200, r.text);
    const actions = new Set(r.json.map((e) => e.action));
    for (const a of [
      "collection.create",
      "collection.update",
      "collection.delete",
      "collection.item.add",
      "collection.item.update",
      "collection.item.remove",
    ])
      assert.ok(actions.has(a), `missing ${a}`);
    const e = r.json.find((x) => x.action === "collection.create");
    assert.match(e.target, /^collection:[0-9a-f]{24}$/);
    assert.ok(e.details.slug);
  });
});

describe("collection web pages (chromium)", () => {
  const PASSWORD = "correct horse battery staple";
  let ctx, page, profileDir, wendy;

  before(async () => {
    const r = spawnSync(server.bin, ["--data", server.dataDir, "user", "add", "wendy", "--password-stdin"], {
      env: server.cliEnv,
      input: PASSWORD + "\n",
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    wendy = server.makeToken("wendy", "write");
    await createRepo(wendy, "pic");
    profileDir = mkdtempSync(path.join(tmpdir(), "modelhub-chromium-"));
    ctx = await chromium.launchPersistentContext(profileDir, {
      executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    await page.goto(server.url + "/login");
    await page.fill("#username", "wendy");
    await page.fill("#password", PASSWORD);
    await Promise.all([page.waitForURL(server.url + "/"), page.click("main button[type=submit]")]);
  });

  after(async () => {
    await ctx?.close();
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  });

  test("create a collection, add a repo from its page with a note, see it, remove it", async () => {
    // Without a collection, the repo page points to where one is made; so does the profile.
    await page.goto(server.url + "/wendy/pic");
    await page.getByRole("link", { name: "Create a collection" }).click();
    await page.waitForURL(server.url + "/collections/wendy");
    await page.goto(server.url + "/wendy");
    await page.getByRole("link", { name: "Collections", exact: true }).click();
    await page.waitForURL(server.url + "/collections/wendy");
    await page.fill("#title", "Web <picks>");
    await page.fill("#description", "chosen in a browser");
    await Promise.all([page.waitForURL(/\/collections\/wendy\/web-picks-[0-9a-f]{24}$/), page.click("main button[type=submit]")]);
    const slug = new URL(page.url()).pathname.replace("/collections/", "");
    await page.getByRole("heading", { name: "Web <picks>" }).waitFor();
    await page.getByText("This collection is empty.").waitFor();

    await page.goto(server.url + "/wendy/pic");
    await page.selectOption("#collection", slug);
    await page.fill("input[name=note]", "a <b>note</b>");
    await Promise.all([page.waitForURL(server.url + "/wendy/pic"), page.getByRole("button", { name: "Add to collection" }).click()]);
    await page.locator(".in-collections").getByRole("link", { name: "Web <picks>" }).click();
    await page.waitForURL(server.url + "/collections/" + slug);
    await page.getByRole("link", { name: "wendy/pic" }).waitFor();
    await page.getByText("a <b>note</b>").waitFor();
    const api = (await (await fetch(`${server.url}/api/collections/${slug}`)).json());
    assert.deepEqual(api.items.map((i) => [i.id, i.note.text]), [["wendy/pic", "a <b>note</b>"]]);

    await Promise.all([page.waitForURL(server.url + "/collections/" + slug), page.getByRole("button", { name: "Remove" }).click()]);
    await page.getByText("This collection is empty.").waitFor();

    // Forms need the session's CSRF token.
    const forged = await page.request.post(`${server.url}/wendy/pic/add-to-collection`, { form: { collection: slug } });
    assert.equal(forged.status(), 403);
    assert.equal((await (await fetch(`${server.url}/api/collections/${slug}`)).json()).items.length, 0);
  });

  test("a form title or note that is not UTF-8 is refused, and never breaks the listings", async () => {
    await page.goto(server.url + "/collections/wendy");
    const csrf = await page.locator("input[name=csrf]").first().inputValue();
    // Raw bytes: 0x80 is a lone continuation byte (counted as no character at all).
    const bad = "%80".repeat(300);
    const post = (url, body) =>
      page.request.post(server.url + url, {
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        data: Buffer.from(`csrf=${csrf}&${body}`),
        maxRedirects: 0,
      });
    let res = await post("/collections/wendy", `title=${bad}`);
    assert.equal(res.status(), 400);
    res = await post("/collections/wendy", `title=ok%20title&description=${bad}`);
    assert.equal(res.status(), 400);
    // The global listing and the owner's page still answer.
    const all = await fetch(`${server.url}/api/collections?limit=100`);
    assert.equal(all.status, 200, await all.text());
    assert.equal((await fetch(`${server.url}/api/collections?owner=wendy`)).status, 200);
    assert.equal((await fetch(`${server.url}/collections/wendy`)).status, 200);
    // A note of bad bytes from the repo page's form: refused too.
    const r = await api("POST", "/api/collections", { token: wendy, json: { title: "Bytes", namespace: "wendy", private: false } });
    assert.equal(r.status, 200, r.text);
    res = await post("/wendy/pic/add-to-collection", `collection=${encodeURIComponent(r.json.slug)}&note=${bad}`);
    assert.equal(res.status(), 400);
    assert.equal((await (await fetch(`${server.url}/api/collections/${r.json.slug}`)).json()).items.length, 0);
  });

  test("a private collection is a 404 page for others; the owner's list shows it", async () => {
    const r = await api("POST", "/api/collections", { token: wendy, json: { title: "Secret web", namespace: "wendy", private: true } });
    const slug = r.json.slug;
    await page.goto(server.url + "/collections/wendy");
    await page.getByRole("link", { name: /Secret web/ }).waitFor();
    const other = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium", headless: true, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
    try {
      const anon = await other.newPage();
      const res = await anon.goto(`${server.url}/collections/${slug}`);
      assert.equal(res.status(), 404);
      assert.match(res.headers()["content-type"], /text\/html/);
      await anon.goto(server.url + "/collections/wendy");
      assert.equal(await anon.getByText("Secret web").count(), 0);
    } finally {
      await other.close();
    }
  });
});
