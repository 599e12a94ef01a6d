// Repository storage under stress and bad input (docs/repo.md): stale ref locks left by a
// crash, many concurrent committers on one branch, paths git would refuse, wire numbers
// that overflow, expensive paths-info, create of an existing repo, derived data of a
// commit that names one safetensors object many times, and the model page's datasets.
// Real clients: @huggingface/hub and plain fetch; the CLI for fsck.
import { before, after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, utimesSync, writeFileSync } from "node:fs";
import path from "node:path";
import { commit, createRepo, listCommits, uploadFiles } from "@huggingface/hub";
import { startServer } from "./lib/server.mjs";

process.env.MODELHUB_XET = "0";

let server;
let hubUrl;
let accessToken;
const auth = () => ({ Authorization: `Bearer ${accessToken}` });
const b64 = (s) => Buffer.from(s).toString("base64");
const ndjson = (lines) => lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
const header = (summary, extra = {}) => ({ key: "header", value: { summary, description: "", ...extra } });
const fileOp = (p, content) => ({ key: "file", value: { path: p, content: b64(content), encoding: "base64" } });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function rawCommit(repo, lines, rev = "main") {
  return fetch(`${hubUrl}/api/models/${repo}/commit/${encodeURIComponent(rev)}`, {
    method: "POST",
    headers: { ...auth(), "Content-Type": "application/x-ndjson" },
    body: ndjson(lines),
  });
}

/** Create admin/<name>; returns { repo, gitDir }. */
async function newRepo(name) {
  const r = await fetch(`${hubUrl}/api/repos/create`, {
    method: "POST",
    headers: { ...auth(), "Content-Type": "application/json" },
    body: JSON.stringify({ name, type: "model" }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  const { id } = await r.json();
  const gitDir = path.join(server.dataDir, "repos", id.slice(0, 2), id.slice(2, 4), `${id}.git`);
  assert.ok(existsSync(gitDir), gitDir);
  return { repo: `admin/${name}`, gitDir };
}

/** A lock file as a process killed between creating and renaming it leaves it. */
function leaveLock(file, ageSeconds = 60) {
  writeFileSync(file, "0".repeat(40) + "\n");
  const t = new Date(Date.now() - ageSeconds * 1000);
  utimesSync(file, t, t);
}

before(async () => {
  server = await startServer();
  hubUrl = server.url;
  accessToken = server.adminToken;
});
after(() => server.stop());

describe("a ref lock left by a crash never blocks the branch", () => {
  test("a commit that meets a stale refs/heads/main.lock removes it and lands", async () => {
    const { repo, gitDir } = await newRepo("lock-met");
    const lock = path.join(gitDir, "refs", "heads", "main.lock");
    leaveLock(lock);
    const r = await rawCommit(repo, [header("after crash"), fileOp("a.txt", "a")]);
    assert.equal(r.status, 200, await r.clone().text());
    assert.ok(!existsSync(lock));
    const r2 = await rawCommit(repo, [header("and again"), fileOp("b.txt", "b")]);
    assert.equal(r2.status, 200);
  });

  test("restart removes stale locks; fsck reports and removes them", async () => {
    const { repo, gitDir } = await newRepo("lock-restart");
    await rawCommit(repo, [header("branch"), fileOp("a.txt", "a")], "main");
    const r = await fetch(`${hubUrl}/api/models/${repo}/branch/dev`, { method: "POST", headers: auth() });
    assert.equal(r.status, 200);
    const mainLock = path.join(gitDir, "refs", "heads", "main.lock");
    leaveLock(mainLock);
    await server.crashAndRestart();
    assert.ok(!existsSync(mainLock), "start-up removed the stale lock");

    const devLock = path.join(gitDir, "refs", "heads", "dev.lock");
    const packedLock = path.join(gitDir, "packed-refs.lock");
    leaveLock(devLock);
    leaveLock(packedLock);
    const young = path.join(gitDir, "refs", "heads", "young.lock");
    leaveLock(young, 0); // may belong to a writer at work: kept
    const out = server.cli(["fsck"]);
    assert.equal(out.status, 0, out.stderr);
    assert.match(out.stdout, /STALE lock .*refs\/heads\/dev\.lock: removed/);
    assert.match(out.stdout, /STALE lock .*packed-refs\.lock: removed/);
    assert.match(out.stdout, /; 2 problems \(stale ref locks, removed\)/);
    assert.ok(!existsSync(devLock) && !existsSync(packedLock));
    assert.ok(existsSync(young));
    const again = server.cli(["fsck"]);
    assert.match(again.stdout, /; 0 problems/);
    const c = await rawCommit(repo, [header("on dev"), fileOp("d.txt", "d")], "dev");
    assert.equal(c.status, 200, await c.clone().text());
  });
});

describe("contention", () => {
  test("50 concurrent commits without parentCommit all land and are all in history", async () => {
    const { repo } = await newRepo("contention");
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        commit({
          repo,
          accessToken,
          hubUrl,
          title: `c${i}`,
          operations: [{ operation: "addOrUpdate", path: `same.txt`, content: new Blob([`writer ${i}\n`]) }],
        }).then((x) => x.commit.oid),
      ),
    );
    assert.equal(new Set(results).size, 50);
    const seen = new Set();
    for await (const c of listCommits({ repo, accessToken, hubUrl })) seen.add(c.oid);
    for (const oid of results) assert.ok(seen.has(oid), `acknowledged commit ${oid} is in the history`);
    assert.equal(seen.size, 51);
  });
});

describe("bad input answers 4xx", () => {
  let repo;
  before(async () => {
    ({ repo } = await newRepo("bad-input"));
    for (let i = 0; i < 3; i++) await rawCommit(repo, [header(`c${i}`), fileOp(`f${i}.txt`, String(i))]);
  });

  for (const p of ["git~1/config", "GIT~1/x", ".git./x", ".git /x", ".git.../config", "a/.git:x", ".g\u200cit/config"]) {
    test(`commit of '${p}' → 400`, async () => {
      const r = await rawCommit(repo, [header("alias"), fileOp(p, "x")]);
      assert.equal(r.status, 400, await r.clone().text());
      assert.equal(r.headers.get("x-error-code"), "BadRequest");
      assert.match(r.headers.get("x-error-message"), /invalid path/);
    });
  }

  test("a commit page past the end is empty, never an overflowed offset", async () => {
    // 2^62 * 4 wraps to 0 in 64-bit arithmetic: the first page must not come back.
    for (const [p, limit] of [["4611686018427387904", 4], ["9223372036854775807", 1000], ["99999999999999999999999", 50]]) {
      const r = await fetch(`${hubUrl}/api/models/${repo}/commits/main?p=${p}&limit=${limit}`);
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), []);
      assert.equal(r.headers.get("x-total-count"), "4");
      assert.equal(r.headers.get("link"), null);
    }
    // the same for a tree cursor: skip + page size must not wrap to the first page
    const t = await fetch(`${hubUrl}/api/models/${repo}/tree/main?cursor=18446744073709551615`);
    assert.equal(t.status, 200);
    assert.deepEqual(await t.json(), []);
    assert.equal(t.headers.get("link"), null);
    const ok = await fetch(`${hubUrl}/api/models/${repo}/commits/main?p=1&limit=2`);
    assert.equal((await ok.json()).length, 2);
  });

  test("paths-info: expand is limited to 100 paths; without expand 1,000 are fine", async () => {
    const paths = Array.from({ length: 1000 }, (_, i) => `f${i}.txt`);
    const post = (body) =>
      fetch(`${hubUrl}/api/models/${repo}/paths-info/main`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    let r = await post({ paths, expand: true });
    assert.equal(r.status, 400);
    assert.match(r.headers.get("x-error-message"), /100 paths/);
    r = await post({ paths: paths.slice(0, 100), expand: true });
    assert.equal(r.status, 200);
    const got = await r.json();
    assert.equal(got.length, 3);
    assert.ok(got.every((e) => e.lastCommit && e.lastCommit.id));
    r = await post({ paths });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).length, 3);
  });
});

describe("API fidelity", () => {
  test("creating an existing repo: 409 whose JSON carries the repo's url", async () => {
    await newRepo("exists");
    const r = await fetch(`${hubUrl}/api/repos/create`, {
      method: "POST",
      headers: { ...auth(), "Content-Type": "application/json" },
      body: JSON.stringify({ name: "exists", type: "model" }),
    });
    assert.equal(r.status, 409);
    assert.equal(r.headers.get("x-error-code"), "Conflict");
    const j = await r.json();
    assert.equal(j.url, `${hubUrl}/admin/exists`);
    assert.match(j.error, /already created/);
    // @huggingface/hub's createRepo reports the conflict as an error too
    await assert.rejects(createRepo({ repo: "admin/exists", accessToken, hubUrl }), /already/);
  });

  test("the model page lists the card's datasets, bare and namespaced", async () => {
    const { repo } = await newRepo("with-datasets");
    const card = "---\nlicense: mit\ndatasets:\n- imdb\n- acme/reviews\n---\n# Model\n";
    await uploadFiles({ repo, accessToken, hubUrl, files: [{ path: "README.md", content: new Blob([card]) }] });
    let html = "";
    for (let i = 0; i < 50; i++) {
      html = await (await fetch(`${hubUrl}/${repo}`)).text();
      if (html.includes("Datasets used")) break;
      await sleep(100);
    }
    const side = html.slice(html.indexOf("Datasets used"));
    assert.ok(html.includes("Datasets used"), "section present");
    assert.match(side, /<a href="\/datasets\?search=imdb">imdb<\/a>/);
    assert.match(side, /<a href="\/datasets\/acme\/reviews">acme\/reviews<\/a>/);
  });
});

describe("derived data of a commit naming one safetensors object from many paths", () => {
  function safetensors(nTensors) {
    const header = { __metadata__: { format: "pt" } };
    for (let i = 0; i < nTensors; i++) header[`layer.${i}.weight`] = { dtype: "F32", shape: [1], data_offsets: [4 * i, 4 * i + 4] };
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    return Buffer.concat([len, json, Buffer.alloc(4 * nTensors)]);
  }

  test("50 shards with the same content: counted per shard, sha and siblings at once", async () => {
    const { repo } = await newRepo("st-shards");
    const st = safetensors(1000);
    const shards = Array.from({ length: 50 }, (_, i) => `model-${String(i + 1).padStart(5, "0")}-of-00050.safetensors`);
    const weightMap = Object.fromEntries(shards.map((s, i) => [`t${i}`, s]));
    const files = [
      { path: "model.safetensors.index.json", content: new Blob([JSON.stringify({ metadata: {}, weight_map: weightMap })]) },
      ...shards.map((p) => ({ path: p, content: new Blob([st]) })),
    ];
    const out = await uploadFiles({ repo, accessToken, hubUrl, files });
    const sha = out.commit.oid;
    // read-your-writes for the revision and the file list
    const info = await (await fetch(`${hubUrl}/api/models/${repo}`)).json();
    assert.equal(info.sha, sha);
    assert.equal(info.siblings.filter((s) => s.rfilename.endsWith(".safetensors")).length, 50);
    // derived parameters follow (computed once per distinct object)
    let total;
    for (let i = 0; i < 100 && total === undefined; i++) {
      const j = await (await fetch(`${hubUrl}/api/models/${repo}?expand[]=safetensors`)).json();
      total = j.safetensors?.total;
      if (total === undefined) await sleep(100);
    }
    assert.equal(total, 50 * 1000);
    assert.equal(createHash("sha256").update(st).digest("hex").length, 64);
  });
});
