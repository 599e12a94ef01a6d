// Files, commits and downloads through the Hub API (issue: LFS-backed, byte-exact, atomic).
// Real client: @huggingface/hub; headers checked with plain fetch.
import { before, after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import {
  commit,
  countCommits,
  createBranch,
  createRepo,
  deleteBranch,
  downloadFile,
  fileDownloadInfo,
  listCommits,
  listFiles,
  modelInfo,
  pathsInfo,
  uploadFiles,
} from "@huggingface/hub";
import { startServer } from "./lib/server.mjs";
import { storedOids } from "./lib/store.mjs";

// This file checks the plain LFS/HTTP contract (hf-api.md): Xet off for its server.
process.env.MODELHUB_XET = "0";

let server;
let hubUrl;
let accessToken;
const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const blobBytes = async (b) => Buffer.from(await b.arrayBuffer());
const auth = () => ({ Authorization: `Bearer ${accessToken}` });

async function newRepo(name) {
  await createRepo({ repo: `admin/${name}`, accessToken, hubUrl });
  return `admin/${name}`;
}

function ndjson(lines) {
  return lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
}

async function rawCommit(repo, lines, rev = "main", token = accessToken, query = "") {
  return fetch(`${hubUrl}/api/models/${repo}/commit/${encodeURIComponent(rev)}${query}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/x-ndjson" },
    body: typeof lines === "string" ? lines : ndjson(lines),
  });
}

const header = (summary, extra = {}) => ({ key: "header", value: { summary, description: "", ...extra } });
const b64 = (s) => Buffer.from(s).toString("base64");
const fileOp = (p, content) => ({ key: "file", value: { path: p, content: b64(content), encoding: "base64" } });

async function headSha(repo) {
  const r = await fetch(`${hubUrl}/api/models/${repo}/revision/main`);
  return (await r.json()).sha;
}

/** Every object in the server's blob store (on disk or in its bucket: lib/store.mjs). */
const storedBlobs = () => storedOids(server);

before(async () => {
  server = await startServer();
  hubUrl = server.url;
  accessToken = server.adminToken;
});
after(() => server.stop());

describe("upload and download with @huggingface/hub", () => {
  const small = Buffer.from('{"model_type": "bert"}\n');
  const mid = randomBytes(12 * 1024 * 1024);
  let big;
  let repo;

  before(async () => {
    repo = await newRepo("files-main");
    big = randomBytes(150 * 1024 * 1024);
  });

  test("uploadFiles: small text, 12 MB (LFS) and 150 MB (multipart) files", async () => {
    const out = await uploadFiles({
      repo,
      accessToken,
      hubUrl,
      files: [
        { path: "config.json", content: new Blob([small]) },
        { path: "weights/mid.bin", content: new Blob([mid]) },
        { path: "weights/big.safetensors", content: new Blob([big]) },
      ],
      commitTitle: "add three files",
    });
    assert.match(out.commit.oid, /^[0-9a-f]{40}$/);
    assert.ok(out.commit.url.endsWith(`/commit/${out.commit.oid}`));
  });

  test("downloadFile returns each file byte for byte", async () => {
    for (const [p, want] of [
      ["config.json", small],
      ["weights/mid.bin", mid],
      ["weights/big.safetensors", big],
    ]) {
      const blob = await downloadFile({ repo, path: p, accessToken, hubUrl });
      assert.ok(blob, p);
      const got = await blobBytes(blob);
      assert.equal(got.length, want.length, p);
      assert.equal(sha256(got), sha256(want), p);
    }
    assert.equal(await downloadFile({ repo, path: "nope.txt", accessToken, hubUrl }), null);
  });

  test("listFiles, pathsInfo and fileDownloadInfo describe the files", async () => {
    const files = [];
    for await (const f of listFiles({ repo, recursive: true, accessToken, hubUrl })) files.push(f);
    const byPath = Object.fromEntries(files.map((f) => [f.path, f]));
    assert.equal(byPath["weights"].type, "directory");
    assert.equal(byPath["config.json"].size, small.length);
    assert.equal(byPath["weights/big.safetensors"].lfs.oid, sha256(big));
    assert.equal(byPath["weights/big.safetensors"].size, big.length);
    assert.equal(byPath["weights/mid.bin"].lfs.size, mid.length);

    const info = await pathsInfo({ repo, paths: ["config.json", "weights/mid.bin", "missing"], expand: true, accessToken, hubUrl });
    assert.equal(info.length, 2);
    assert.match(info[0].lastCommit.id, /^[0-9a-f]{40}$/);
    assert.equal(info.find((i) => i.path === "weights/mid.bin").lfs.oid, sha256(mid));

    const dl = await fileDownloadInfo({ repo, path: "weights/mid.bin", accessToken, hubUrl });
    assert.equal(dl.size, mid.length);
    assert.equal(dl.etag.replaceAll('"', ""), sha256(mid));
    assert.equal(await fileDownloadInfo({ repo, path: "nope", accessToken, hubUrl }), null);
  });

  test("siblings with blobs=true carry lfs.sha256", async () => {
    const r = await fetch(`${hubUrl}/api/models/${repo}?blobs=true`);
    const j = await r.json();
    const big1 = j.siblings.find((s) => s.rfilename === "weights/big.safetensors");
    assert.deepEqual(big1.lfs, { sha256: sha256(big), size: big.length, pointerSize: big1.lfs.pointerSize });
    assert.ok(!("xetHash" in big1));
    const mi = await modelInfo({ name: repo, accessToken, hubUrl });
    assert.equal(mi.id ? true : true, true);
  });

  test("resolve HEAD on a regular and an LFS file has every header clients need", async () => {
    const sha = await headSha(repo);
    let r = await fetch(`${hubUrl}/${repo}/resolve/main/config.json`, { method: "HEAD" });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-repo-commit"), sha);
    assert.match(r.headers.get("etag"), /^"[0-9a-f]{40}"$/);
    assert.equal(r.headers.get("content-length"), String(small.length));
    assert.equal(r.headers.get("accept-ranges"), "bytes");
    r = await fetch(`${hubUrl}/${repo}/resolve/${sha}/weights/mid.bin`, { method: "HEAD" });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("etag"), `"${sha256(mid)}"`);
    assert.equal(r.headers.get("x-linked-etag"), `"${sha256(mid)}"`);
    assert.equal(r.headers.get("x-linked-size"), String(mid.length));
    assert.equal(r.headers.get("content-length"), String(mid.length));
    for (const h of ["x-xet-hash", "x-xet-refresh-route"]) assert.equal(r.headers.get(h), null);
    // raw serves the pointer for LFS files
    r = await fetch(`${hubUrl}/${repo}/raw/main/weights/mid.bin`);
    const ptr = await r.text();
    assert.match(ptr, new RegExp(`oid sha256:${sha256(mid)}`));
  });

  test("Range: first byte, middle, suffix, past the end; 304", async () => {
    const u = `${hubUrl}/${repo}/resolve/main/weights/mid.bin`;
    let r = await fetch(u, { headers: { Range: "bytes=0-0" } });
    assert.equal(r.status, 206);
    assert.equal(r.headers.get("content-range"), `bytes 0-0/${mid.length}`);
    assert.deepEqual(await blobBytes(await r.blob()), mid.subarray(0, 1));
    r = await fetch(u, { headers: { Range: "bytes=1000-1999" } });
    assert.equal(r.status, 206);
    assert.deepEqual(await blobBytes(await r.blob()), mid.subarray(1000, 2000));
    r = await fetch(u, { headers: { Range: "bytes=-10" } });
    assert.equal(r.status, 206);
    assert.deepEqual(await blobBytes(await r.blob()), mid.subarray(mid.length - 10));
    r = await fetch(u, { headers: { Range: `bytes=${mid.length}-` } });
    assert.equal(r.status, 416);
    assert.equal(r.headers.get("content-range"), `bytes */${mid.length}`);
    await r.arrayBuffer();
    const etag = `"${sha256(mid)}"`;
    r = await fetch(u, { headers: { "If-None-Match": etag } });
    assert.equal(r.status, 304);
    // regular file range
    r = await fetch(`${hubUrl}/${repo}/resolve/main/config.json`, { headers: { Range: "bytes=2-5" } });
    assert.equal(r.status, 206);
    assert.equal(await r.text(), small.subarray(2, 6).toString());
  });

  test("404s carry the right X-Error-Code", async () => {
    let r = await fetch(`${hubUrl}/${repo}/resolve/main/nope.bin`, { method: "HEAD" });
    assert.equal(r.status, 404);
    assert.equal(r.headers.get("x-error-code"), "EntryNotFound");
    assert.match(r.headers.get("x-repo-commit"), /^[0-9a-f]{40}$/);
    r = await fetch(`${hubUrl}/${repo}/resolve/nobranch/config.json`, { method: "HEAD" });
    assert.equal(r.headers.get("x-error-code"), "RevisionNotFound");
    r = await fetch(`${hubUrl}/admin/none-such/resolve/main/config.json`, { method: "HEAD" });
    assert.equal(r.headers.get("x-error-code"), "RepoNotFound");
    r = await fetch(`${hubUrl}/api/models/${repo}/tree/main/nodir`);
    assert.equal(r.status, 404);
    assert.equal(r.headers.get("x-error-code"), "EntryNotFound");
  });
});

describe("commits, branches, tags and history", () => {
  let repo;
  before(async () => {
    repo = await newRepo("files-history");
  });

  test("commit with add + delete + deletedFolder", async () => {
    await commit({
      repo,
      accessToken,
      hubUrl,
      title: "seed",
      operations: [
        { operation: "addOrUpdate", path: "a.txt", content: new Blob(["a"]) },
        { operation: "addOrUpdate", path: "dir/x.txt", content: new Blob(["x"]) },
        { operation: "addOrUpdate", path: "dir/sub/y.txt", content: new Blob(["y"]) },
      ],
    });
    await commit({
      repo,
      accessToken,
      hubUrl,
      title: "change",
      operations: [
        { operation: "addOrUpdate", path: "b.txt", content: new Blob(["b"]) },
        { operation: "delete", path: "a.txt" },
      ],
    });
    const r = await rawCommit(repo, [header("drop dir"), { key: "deletedFolder", value: { path: "dir/" } }]);
    assert.equal(r.status, 200, await r.clone().text());
    const files = [];
    for await (const f of listFiles({ repo, recursive: true, accessToken, hubUrl })) files.push(f.path);
    assert.deepEqual(files.sort(), [".gitattributes", "b.txt"]);
  });

  test("listCommits and countCommits", async () => {
    const commits = [];
    for await (const c of listCommits({ repo, accessToken, hubUrl })) commits.push(c);
    assert.deepEqual(
      commits.map((c) => c.title),
      ["drop dir", "change", "seed", "Initial commit"],
    );
    assert.equal(await countCommits({ repo, accessToken, hubUrl }), 4);
    // pagination with Link
    const r = await fetch(`${hubUrl}/api/models/${repo}/commits/main?limit=3`);
    assert.equal(r.headers.get("x-total-count"), "4");
    assert.match(r.headers.get("link"), /^<http:\/\/127\.0\.0\.1:\d+\/api\/models\/.*p=1>; rel="next"$/);
  });

  test("createBranch, commit to it, download by branch, tag and sha; deleteBranch", async () => {
    await createBranch({ repo, branch: "dev", accessToken, hubUrl });
    const out = await commit({
      repo,
      accessToken,
      hubUrl,
      branch: "dev",
      title: "dev change",
      operations: [{ operation: "addOrUpdate", path: "dev.txt", content: new Blob(["on dev"]) }],
    });
    const sha = out.commit.oid;
    let r = await fetch(`${hubUrl}/api/models/${repo}/tag/dev`, {
      method: "POST",
      headers: { ...auth(), "Content-Type": "application/json" },
      body: JSON.stringify({ tag: "v1", message: "first" }),
    });
    assert.equal(r.status, 200);
    for (const rev of ["dev", "v1", sha, sha.slice(0, 8), "refs%2Fheads%2Fdev"]) {
      r = await fetch(`${hubUrl}/${repo}/resolve/${rev}/dev.txt`);
      assert.equal(r.status, 200, rev);
      assert.equal(await r.text(), "on dev");
      assert.equal(r.headers.get("x-repo-commit"), sha);
    }
    r = await fetch(`${hubUrl}/${repo}/resolve/main/dev.txt`);
    assert.equal(r.status, 404);
    const refs = await (await fetch(`${hubUrl}/api/models/${repo}/refs`)).json();
    assert.deepEqual(refs.branches.map((b) => b.name).sort(), ["dev", "main"]);
    assert.equal(refs.tags[0].targetCommit, sha);
    assert.deepEqual(refs.converts, []);
    // duplicate tag → 409
    r = await fetch(`${hubUrl}/api/models/${repo}/tag/main`, {
      method: "POST",
      headers: { ...auth(), "Content-Type": "application/json" },
      body: JSON.stringify({ tag: "v1" }),
    });
    assert.equal(r.status, 409);
    await deleteBranch({ repo, branch: "dev", accessToken, hubUrl });
    r = await fetch(`${hubUrl}/${repo}/resolve/dev/dev.txt`);
    assert.equal(r.headers.get("x-error-code"), "RevisionNotFound");
  });

  test("create_pr=1 opens refs/pr/N", async () => {
    const r = await rawCommit(repo, [header("pr"), fileOp("pr.txt", "pr")], "main", accessToken, "?create_pr=1");
    assert.equal(r.status, 200);
    const j = await r.json();
    assert.match(j.pullRequestUrl, /\/discussions\/1$/);
    const g = await fetch(`${hubUrl}/${repo}/resolve/refs%2Fpr%2F1/pr.txt`);
    assert.equal(await g.text(), "pr");
    const refs = await (await fetch(`${hubUrl}/api/models/${repo}/refs?include_prs=1`)).json();
    assert.equal(refs.pullRequests[0].ref, "refs/pr/1");
    // JS passes the PR revision unencoded in tree URLs
    const t = await fetch(`${hubUrl}/api/models/${repo}/tree/refs/pr/1`);
    assert.ok((await t.json()).some((e) => e.path === "pr.txt"));
  });
});

describe("concurrency", () => {
  test("20 parallel commits of different files to one branch all land", async () => {
    const repo = await newRepo("files-concurrent");
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => rawCommit(repo, [header(`c${i}`), fileOp(`f${i}.txt`, String(i))])),
    );
    for (const r of results) assert.equal(r.status, 200, await r.text());
    const n = await countCommits({ repo, accessToken, hubUrl });
    assert.equal(n, 21);
    const files = [];
    for await (const f of listFiles({ repo, accessToken, hubUrl })) files.push(f.path);
    assert.equal(files.filter((p) => /^f\d+\.txt$/.test(p)).length, 20);
  });

  test("two commits pinned to the same parent: one lands, one gets 412", async () => {
    const repo = await newRepo("files-pinned");
    const parent = await headSha(repo);
    const [a, b] = await Promise.all([
      rawCommit(repo, [header("a", { parentCommit: parent }), fileOp("a.txt", "a")]),
      rawCommit(repo, [header("b", { parentCommit: parent }), fileOp("b.txt", "b")]),
    ]);
    assert.deepEqual([a.status, b.status].sort(), [200, 412]);
    assert.equal(await countCommits({ repo, accessToken, hubUrl }), 2);
  });
});

describe("bad input gets a clear 4xx and leaves the repo unchanged", () => {
  let repo;
  let before0;
  before(async () => {
    repo = await newRepo("files-bad");
    before0 = await headSha(repo);
  });

  const cases = [
    ["garbage NDJSON", "this is not json\n", 400],
    ["no header line", ndjson([fileOp("a.txt", "a")]), 400],
    ["path traversal", ndjson([header("x"), fileOp("../etc/passwd", "x")]), 400],
    ["absolute path", ndjson([header("x"), fileOp("/abs.txt", "x")]), 400],
    [".git path", ndjson([header("x"), fileOp(".git/config", "x")]), 400],
    [
      "lfsFile for a missing object",
      ndjson([header("x"), { key: "lfsFile", value: { path: "w.bin", algo: "sha256", oid: "a".repeat(64), size: 3 } }]),
      400,
    ],
    ["delete of a missing file", ndjson([header("x"), { key: "deletedFile", value: { path: "nope.txt" } }]), 404],
  ];
  for (const [name, body, status] of cases) {
    test(name, async () => {
      const r = await rawCommit(repo, body);
      assert.equal(r.status, status, await r.clone().text());
      assert.ok(r.headers.get("x-error-message"));
      assert.equal(await headSha(repo), before0);
    });
  }

  test("lfsFile whose size is wrong", async () => {
    const data = randomBytes(1000);
    const oid = sha256(data);
    await uploadFiles({ repo, accessToken, hubUrl, files: [{ path: "ok.bin", content: new Blob([data]) }] });
    const head = await headSha(repo);
    const r = await rawCommit(repo, [header("x"), { key: "lfsFile", value: { path: "w2.bin", algo: "sha256", oid, size: 999 } }]);
    assert.equal(r.status, 400);
    assert.match(r.headers.get("x-error-message"), /size/);
    assert.equal(await headSha(repo), head);
  });

  test("a read token cannot commit; an oversized commit body gets 413", async () => {
    server.cli(["user", "add", "reader1"], { check: true });
    const tok = server.makeToken("reader1", "read");
    let r = await rawCommit(repo, [header("x"), fileOp("a.txt", "a")], "main", tok);
    assert.equal(r.status, 403);
    r = await fetch(`${hubUrl}/api/models/${repo}/preupload/main`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...auth() },
      body: "x".repeat(17 * 1024 * 1024),
    }).catch((e) => ({ status: "net:" + e.message }));
    assert.equal(r.status, 413);
  });

  test("with Xet off the write token is still granted (hf_xet has no fallback; uploads become LFS objects)", async () => {
    const r = await fetch(`${hubUrl}/api/models/${repo}/xet-write-token/main`, { headers: auth() });
    assert.equal(r.status, 200);
    assert.ok((await r.json()).accessToken);
  });
});

describe("crash safety", () => {
  test("SIGKILL mid LFS upload and mid commit: restart is clean, retry succeeds", async () => {
    const repo = await newRepo("files-crash");
    const data = randomBytes(64 * 1024 * 1024);
    const oid = sha256(data);
    // Ask for an upload URL, then start a slow PUT and kill the server half way.
    const batch = await fetch(`${hubUrl}/${repo}.git/info/lfs/objects/batch`, {
      method: "POST",
      headers: { ...auth(), "Content-Type": "application/vnd.git-lfs+json", Accept: "application/vnd.git-lfs+json" },
      body: JSON.stringify({ operation: "upload", transfers: ["basic"], objects: [{ oid, size: data.length }] }),
    });
    const href = (await batch.json()).objects[0].actions.upload.href;
    let sent = 0;
    let restart = null; // the crash + restart, started once half the body is sent
    let sentAtKill = 0;
    const stream = new ReadableStream({
      async pull(ctrl) {
        if (sent >= data.length / 2) {
          await new Promise((r) => setTimeout(r, 200));
          if (sent >= data.length / 2 && !restart) {
            sentAtKill = sent;
            restart = server.crashAndRestart();
            restart.catch(() => {}); // awaited below; don't let it go unhandled meanwhile
          }
        }
        const chunk = data.subarray(sent, Math.min(sent + 1024 * 1024, data.length));
        sent += chunk.length;
        if (chunk.length) ctrl.enqueue(chunk);
        else ctrl.close();
      },
    });
    const put = await fetch(href, { method: "PUT", body: stream, duplex: "half" }).catch(() => null);
    assert.ok(restart, "the server was killed during the upload");
    assert.ok(sentAtKill < data.length, "killed before the whole body was sent");
    await restart; // a failed restart fails the test
    assert.ok(put === null || put.status >= 400, `the interrupted PUT did not succeed (${put?.status})`);
    assert.equal((await fetch(`${hubUrl}/healthz`)).status, 200);
    assert.ok(!(await storedBlobs()).includes(oid), "no partial blob is visible");
    // The branch points at a complete commit and the retried upload works.
    const head = await headSha(repo);
    assert.match(head, /^[0-9a-f]{40}$/);
    await uploadFiles({ repo, accessToken, hubUrl, files: [{ path: "w.bin", content: new Blob([data]) }] });
    const got = await blobBytes(await downloadFile({ repo, path: "w.bin", accessToken, hubUrl }));
    assert.equal(sha256(got), oid);
    // The same walk sees the object once it is published: "not visible" above was a real look.
    assert.ok((await storedBlobs()).includes(oid), "the retried upload's blob is in the store the check walked");

    // Kill in the middle of a big commit: either it landed whole or not at all.
    const files = Array.from({ length: 2000 }, (_, i) => fileOp(`many/f${i}.txt`, "x".repeat(1000)));
    const p = rawCommit(repo, [header("many"), ...files]).catch(() => null);
    await new Promise((r) => setTimeout(r, 30));
    await server.crashAndRestart();
    await p;
    // All or nothing: either the 2000 files are there (two tree pages) or none is.
    const r = await fetch(`${hubUrl}/api/models/${repo}/tree/main/many`);
    if (r.status === 200) {
      assert.equal((await r.json()).length, 1000);
      assert.match(r.headers.get("link"), /cursor=1000/);
    } else {
      assert.equal(r.status, 404);
    }
    const after = await fetch(`${hubUrl}/api/models/${repo}/commits/main`);
    assert.equal(after.status, 200);
  });
});
