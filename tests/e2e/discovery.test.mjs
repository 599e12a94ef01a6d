// Discovery (docs/search.md): listModels/listDatasets with search, owner, task and tag
// filters, every sort, keyset pagination, private-repo hiding, derived metadata in repo
// info (cardData, tags, safetensors single and sharded, gguf, evalResults), likes,
// download counts, lineage.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { createRepo, uploadFiles, listModels, listDatasets, modelInfo } from "@huggingface/hub";
import { startServer } from "./lib/server.mjs";

let server, hubUrl, admin, pager, bob, alice;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(method, path, token) {
  const res = await fetch(hubUrl + path, {
    method,
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

function nextLink(headers) {
  const m = /<(https?:\/\/[^>]+)>;\s+rel="next"/.exec(headers.get("link") ?? "");
  return m ? m[1] : null;
}

/** Follow Link headers from an API path; returns every item and the page count. */
async function allPages(path, token) {
  let url = hubUrl + path;
  const items = [];
  let pages = 0;
  while (url) {
    const res = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    assert.equal(res.status, 200, `${url}: ${await res.clone().text()}`);
    items.push(...(await res.json()));
    pages++;
    url = nextLink(res.headers);
    if (url) assert.ok(url.startsWith(hubUrl), "absolute Link URL");
  }
  return { items, pages };
}

async function collect(gen) {
  const out = [];
  for await (const x of gen) out.push(x);
  return out;
}

// ---- file builders --------------------------------------------------------------------

function safetensors(tensors) {
  // tensors: {name: {dtype, shape}}; element sizes for F32/BF16 only.
  const size = { F32: 4, BF16: 2, F16: 2 };
  const header = {};
  let off = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const n = t.shape.reduce((a, b) => a * b, 1) * size[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = Buffer.from(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, Buffer.alloc(off)]);
}

function gguf() {
  const parts = [];
  const u32 = (v) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    parts.push(b);
  };
  const u64 = (v) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    parts.push(b);
  };
  const str = (s) => {
    u64(Buffer.byteLength(s));
    parts.push(Buffer.from(s));
  };
  parts.push(Buffer.from("GGUF"));
  u32(3); // version
  u64(1); // tensors
  u64(3); // kv pairs
  str("general.architecture");
  u32(8);
  str("llama");
  str("general.file_type");
  u32(4);
  u32(15);
  str("llama.context_length");
  u32(4);
  u32(4096);
  str("tok_embd.weight"); // tensor info
  u32(2);
  u64(4);
  u64(8);
  u32(0); // F32
  u64(0);
  let buf = Buffer.concat(parts);
  const pad = (32 - (buf.length % 32)) % 32;
  return Buffer.concat([buf, Buffer.alloc(pad), Buffer.alloc(4 * 8 * 4)]);
}

const CARD = `---
license: apache-2.0
library_name: transformers
pipeline_tag: text-generation
tags:
- discovery-test
language:
- en
base_model: alice/base-model
model-index:
- name: disc-child
  results:
  - task:
      type: text-generation
    dataset:
      name: wikitext
      type: wikitext
    metrics:
    - type: perplexity
      value: 5.5
---
# Child model

This model talks about zebras and quokkas.
`;

const CONFIG = JSON.stringify({ architectures: ["LlamaForCausalLM"], model_type: "llama" });

async function upload(repo, token, files) {
  await uploadFiles({
    repo,
    accessToken: token,
    hubUrl,
    files: files.map(([p, c]) => ({ path: p, content: new Blob([c]) })),
  });
}

before(async () => {
  server = await startServer();
  hubUrl = server.url;
  admin = server.adminToken;
  pager = server.makeUser("pager");
  bob = server.makeUser("bob");
  alice = server.makeUser("alice");

  await createRepo({ repo: "alice/base-model", accessToken: alice, hubUrl });
  await upload("alice/base-model", alice, [["config.json", CONFIG], ["model.safetensors", safetensors({ w: { dtype: "F32", shape: [2, 3] } })]]);
  await createRepo({ repo: "alice/disc-child", accessToken: alice, hubUrl });
  await upload("alice/disc-child", alice, [
    ["README.md", CARD],
    ["config.json", CONFIG],
    ["model-00001-of-00002.safetensors", safetensors({ a: { dtype: "BF16", shape: [10] } })],
    ["model-00002-of-00002.safetensors", safetensors({ b: { dtype: "BF16", shape: [5] } })],
    [
      "model.safetensors.index.json",
      JSON.stringify({
        metadata: { total_size: 30 },
        weight_map: { a: "model-00001-of-00002.safetensors", b: "model-00002-of-00002.safetensors" },
      }),
    ],
  ]);
  await createRepo({ repo: "alice/disc-gguf", accessToken: alice, hubUrl });
  await upload("alice/disc-gguf", alice, [["tiny.Q4_K_M.gguf", gguf()]]);
  await createRepo({ repo: { type: "dataset", name: "alice/disc-data" }, accessToken: alice, hubUrl });
  await upload({ type: "dataset", name: "alice/disc-data" }, alice, [
    ["README.md", "---\nlicense: mit\ntags:\n- discovery-data\n---\n# Data about giraffes\n"],
  ]);

  for (let i = 0; i < 30; i++) {
    await createRepo({ repo: `pager/pg-${String(i).padStart(2, "0")}`, accessToken: pager, hubUrl });
  }
  for (const n of ["pg-secret-1", "pg-secret-2"]) {
    await createRepo({ repo: `pager/${n}`, accessToken: pager, hubUrl, private: true });
  }
});

after(() => server?.stop());

describe("listing", () => {
  test("search by id substring and by card text; owner, task and tag filters", async () => {
    const byId = await collect(listModels({ search: { query: "disc-ch" }, hubUrl }));
    assert.deepEqual(byId.map((m) => m.name), ["alice/disc-child"]);
    const byText = await collect(listModels({ search: { query: "quokkas" }, hubUrl }));
    assert.deepEqual(byText.map((m) => m.name), ["alice/disc-child"]);
    const mine = await collect(listModels({ search: { owner: "alice" }, hubUrl }));
    assert.deepEqual(mine.map((m) => m.name).sort(), ["alice/base-model", "alice/disc-child", "alice/disc-gguf"]);
    const task = await collect(listModels({ search: { owner: "alice", task: "text-generation" }, hubUrl }));
    assert.ok(task.some((m) => m.name === "alice/disc-child"));
    assert.ok(task.every((m) => m.task === "text-generation"));
    const tagged = await collect(
      listModels({ search: { tags: ["discovery-test", "license:apache-2.0"] }, hubUrl, additionalFields: ["tags"] }),
    );
    assert.deepEqual(tagged.map((m) => m.name), ["alice/disc-child"]);
    assert.ok(tagged[0].tags.includes("discovery-test"));
    const none = await collect(listModels({ search: { tags: ["discovery-test", "nope"] }, hubUrl }));
    assert.equal(none.length, 0);
    const ds = await collect(listDatasets({ search: { query: "giraffes" }, hubUrl }));
    assert.deepEqual(ds.map((d) => d.name), ["alice/disc-data"]);
    const dsTag = await collect(listDatasets({ search: { tags: ["discovery-data"] }, hubUrl }));
    assert.deepEqual(dsTag.map((d) => d.name), ["alice/disc-data"]);
    const gg = await api("GET", "/api/models?filter=gguf&author=alice");
    assert.deepEqual(gg.json.map((m) => m.id), ["alice/disc-gguf"]);
  });

  test("every sort pages through all repos with no duplicates or gaps", async () => {
    const sorts = ["downloads", "likes", "lastModified", "createdAt", "trendingScore", "id"];
    const keyOf = {
      downloads: (m) => m.downloads,
      likes: (m) => m.likes,
      lastModified: (m) => Date.parse(m.lastModified),
      createdAt: (m) => Date.parse(m.createdAt),
      trendingScore: (m) => m.trendingScore,
      id: (m) => m.id.toLowerCase(),
    };
    for (const sort of sorts) {
      for (const direction of ["-1", "1"]) {
        const { items, pages } = await allPages(`/api/models?author=pager&sort=${sort}&direction=${direction}&limit=7`);
        assert.equal(items.length, 30, `${sort} ${direction}: count`);
        assert.equal(new Set(items.map((m) => m.id)).size, 30, `${sort}: no duplicates`);
        assert.equal(pages, 5, `${sort}: 5 pages of 7`);
        for (let i = 1; i < items.length; i++) {
          const a = keyOf[sort](items[i - 1]), b = keyOf[sort](items[i]);
          assert.ok(direction === "-1" ? a >= b : a <= b, `${sort} ${direction} ordered at ${i}`);
        }
      }
    }
    const js = await collect(listModels({ search: { owner: "pager" }, sort: "createdAt", hubUrl }));
    assert.equal(js.length, 30);
    const bad = await api("GET", "/api/models?sort=bogus");
    assert.equal(bad.status, 400);
    const badCursor = await api("GET", "/api/models?cursor=!!!");
    assert.equal(badCursor.status, 400);
  });

  test("private repos are hidden from anonymous callers and other users", async () => {
    const anon = await allPages("/api/models?author=pager&limit=10");
    assert.equal(anon.items.length, 30);
    assert.ok(anon.items.every((m) => !m.private));
    const other = await allPages("/api/models?author=pager&limit=10", bob);
    assert.equal(other.items.length, 30);
    const owner = await allPages("/api/models?author=pager&limit=10", pager);
    assert.equal(owner.items.length, 32);
    assert.equal(owner.items.filter((m) => m.private).length, 2);
    const site = await allPages("/api/models?author=pager&limit=10", admin);
    assert.equal(site.items.length, 32);
    const search = await api("GET", "/api/models?search=pg-secret");
    assert.equal(search.json.length, 0);
    const searchOwner = await api("GET", "/api/models?search=pg-secret", pager);
    assert.equal(searchOwner.json.length, 2);
  });
});

describe("repo info", () => {
  test("cardData, tags, sharded safetensors, evalResults, baseModels", async () => {
    const info = await modelInfo({
      name: "alice/disc-child",
      hubUrl,
      additionalFields: ["cardData", "tags", "safetensors", "library_name"],
    });
    assert.equal(info.cardData.license, "apache-2.0");
    assert.ok(info.tags.includes("discovery-test"));
    assert.ok(info.tags.includes("base_model:alice/base-model"));
    assert.deepEqual(info.safetensors, { parameters: { BF16: 15 }, total: 15 });
    const raw = (await api("GET", "/api/models/alice/disc-child")).json;
    assert.equal(raw.pipeline_tag, "text-generation");
    assert.equal(raw.library_name, "transformers");
    assert.ok(Array.isArray(raw.evalResults), JSON.stringify(raw.evalResults));
    assert.ok(raw["model-index"] || raw.cardData["model-index"]);
    assert.equal(raw.baseModels?.models?.[0]?.id, "alice/base-model");
    assert.equal(raw.cardText, undefined, "card text is not part of info");
  });

  test("single safetensors and gguf", async () => {
    const base = (await api("GET", "/api/models/alice/base-model")).json;
    assert.deepEqual(base.safetensors, { parameters: { F32: 6 }, total: 6 });
    const g = (await api("GET", "/api/models/alice/disc-gguf")).json;
    assert.equal(g.gguf?.architecture, "llama");
    assert.ok(g.tags.includes("gguf"));
  });

  test("lineage and childrenModelCount", async () => {
    const base = (await api("GET", "/api/models/alice/base-model")).json;
    assert.equal(base.childrenModelCount, 1);
    const lin = await api("GET", "/api/models/alice/base-model/lineage");
    assert.equal(lin.status, 200);
    assert.deepEqual(lin.json.children.finetune.map((c) => c.id), ["alice/disc-child"]);
    assert.equal(lin.json.childrenCount.finetune, 1);
    const filtered = await api("GET", "/api/models?filter=base_model:alice/base-model");
    assert.deepEqual(filtered.json.map((m) => m.id), ["alice/disc-child"]);
  });
});

describe("popularity", () => {
  test("likes: like, idempotent, likers, user likes, unlike", async () => {
    assert.equal((await api("POST", "/api/models/alice/base-model/like")).status, 401);
    for (let i = 0; i < 2; i++) assert.equal((await api("POST", "/api/models/alice/base-model/like", bob)).status, 200);
    assert.equal((await api("GET", "/api/models/alice/base-model")).json.likes, 1);
    const likers = await api("GET", "/api/models/alice/base-model/likers");
    assert.deepEqual(likers.json.map((u) => u.user), ["bob"]);
    for (const k of ["user", "fullname", "avatarUrl"]) assert.equal(typeof likers.json[0][k], "string");
    const liked = await api("GET", "/api/users/bob/likes");
    assert.deepEqual(liked.json.map((l) => l.repo), [{ name: "alice/base-model", type: "model" }]);
    assert.ok(liked.json[0].createdAt.endsWith("Z"));
    const top = await api("GET", "/api/models?author=alice&sort=likes");
    assert.equal(top.json[0].id, "alice/base-model");
    assert.ok(top.json[0].trendingScore >= 10);
    // A like of a private repo stays private.
    assert.equal((await api("POST", "/api/models/pager/pg-secret-1/like", pager)).status, 200);
    assert.equal((await api("GET", "/api/users/pager/likes")).json.length, 0);
    assert.equal((await api("GET", "/api/users/pager/likes", pager)).json.length, 1);
    assert.equal((await api("POST", "/api/models/pager/pg-secret-1/like", bob)).status, 404);
    assert.equal((await api("DELETE", "/api/models/alice/base-model/like", bob)).status, 200);
    assert.equal((await api("DELETE", "/api/models/alice/base-model/like", bob)).status, 200);
    assert.equal((await api("GET", "/api/models/alice/base-model")).json.likes, 0);
  });

  test("downloads count GET/HEAD of the query file only", async () => {
    for (let i = 0; i < 3; i++) {
      const h = await fetch(`${hubUrl}/alice/disc-child/resolve/main/config.json`, { method: "HEAD" });
      assert.equal(h.status, 200);
    }
    const g = await fetch(`${hubUrl}/alice/disc-child/resolve/main/config.json`);
    await g.arrayBuffer();
    await (await fetch(`${hubUrl}/alice/disc-child/resolve/main/README.md`)).arrayBuffer();
    await (await fetch(`${hubUrl}/alice/disc-gguf/resolve/main/tiny.Q4_K_M.gguf`)).arrayBuffer();
    let info;
    for (let i = 0; i < 50; i++) {
      info = (await api("GET", "/api/models/alice/disc-child")).json;
      if (info.downloads >= 4) break;
      await sleep(100);
    }
    assert.equal(info.downloads, 4);
    assert.equal(info.downloadsAllTime, 4);
    assert.ok(info.trendingScore >= 4);
    const gg = (await api("GET", "/api/models/alice/disc-gguf")).json;
    assert.equal(gg.downloads, 1);
    const top = await api("GET", "/api/models?author=alice&sort=downloads&limit=1");
    assert.equal(top.json[0].id, "alice/disc-child");
  });
});

describe("search facets", () => {
  // The /models sidebar: counts over public repos of the type (web/facets.c, db/facets.c);
  // languages come from each card's `language` (meta.languages), counted in C.
  test("task, library, license, language and size counts cover public repos only", async () => {
    const card = (langs, lic) =>
      `---\nlicense: ${lic}\nlibrary_name: facetlib\npipeline_tag: token-classification\nlanguage: ${JSON.stringify(langs)}\n---\n# f\n`;
    for (const [name, langs, priv] of [
      ["facet-a", ["fy", "zu"], false],
      ["facet-b", ["zu"], false],
      ["facet-c", "yo", false],
      ["facet-secret", ["zu", "xh"], true],
    ]) {
      await createRepo({ repo: `bob/${name}`, accessToken: bob, hubUrl, private: priv });
      await upload(`bob/${name}`, bob, [["README.md", card(langs, "mit")]]);
    }
    const res = await fetch(hubUrl + "/models");
    assert.equal(res.status, 200);
    const html = await res.text();
    const chips = (facet) =>
      [...html.matchAll(new RegExp(`data-facet="${facet}">([^<]*) <span class="n">([^<]*)</span>`, "g"))].map((m) => [m[1], Number(m[2])]);
    // most frequent first, ties by value; the private repo's "xh" and third "zu" not counted
    assert.deepEqual(chips("language"), [["zu", 2], ["en", 1], ["fy", 1], ["yo", 1]]);
    assert.deepEqual(chips("license")[0], ["mit", 3]);
    assert.ok(chips("license").some(([v, n]) => v === "apache-2.0" && n === 1));
    assert.ok(chips("pipeline_tag").some(([v, n]) => v === "token-classification" && n === 3));
    assert.ok(chips("library").some(([v, n]) => v === "facetlib" && n === 3));
    const small = chips("params").find(([v]) => v === "&lt; 1B");
    assert.ok(small && small[1] >= 2, JSON.stringify(chips("params")));
  });
});

// Listings start on an HTTP event thread under a budget of SQLite work and move to a
// worker thread past it (RUN_INLINE_TRY). With a budget of one step every listing moves,
// and the pages must be those of a server that answers them inline.
test("listings moved from the event thread to a worker give the same pages", async () => {
  const saved = process.env.MODELHUB_INLINE_BUDGET;
  process.env.MODELHUB_INLINE_BUDGET = "1";
  let tiny;
  try {
    tiny = await startServer();
  } finally {
    if (saved === undefined) delete process.env.MODELHUB_INLINE_BUDGET;
    else process.env.MODELHUB_INLINE_BUDGET = saved;
  }
  const normal = await startServer();
  try {
    for (const s of [tiny, normal]) s.cli(["dev", "seed-catalog", "400"], { check: true });
    const urls = [
      "/api/models?search=llama&limit=7",
      "/api/models?search=llama&sort=downloads&limit=5",
      "/api/models?filter=license:apache-2.0&limit=9",
      "/api/models?sort=likes&direction=1&limit=11",
      "/api/datasets?limit=3",
    ];
    const pages = async (base, u) => {
      const ids = [];
      let next = base + u;
      for (let p = 0; p < 6 && next; p++) {
        const res = await fetch(next);
        assert.equal(res.status, 200, next);
        for (const m of await res.json()) ids.push(m.id);
        const link = res.headers.get("link");
        next = link ? /<([^>]+)>;\s*rel="next"/.exec(link)?.[1] : null;
      }
      return ids;
    };
    for (const u of urls) {
      const want = await pages(normal.url, u);
      assert.ok(want.length > 0, u);
      assert.deepEqual(await pages(tiny.url, u), want, u);
    }
    const escalated = async (s) =>
      Number(/^modelhub_http_inline_escalations_total (\d+)/m.exec(await (await fetch(s.url + "/metrics")).text())[1]);
    // On PostgreSQL the budget is wall time per statement (statement_timeout, docs/scale-out.md)
    // and counts no steps: a step budget of 1 moves nothing there, so only the pages compare.
    if (tiny.dbEngine === "postgres") return;
    const tinyN = await escalated(tiny);
    assert.ok(tinyN >= urls.length);
    // The normal budget is not a timing assertion: a slow moment (ASan, a loaded machine, the
    // S3 stage) may escalate one request there too; the tiny budget escalates every listing.
    assert.ok((await escalated(normal)) < tinyN);
  } finally {
    await tiny.stop();
    await normal.stop();
  }
});
