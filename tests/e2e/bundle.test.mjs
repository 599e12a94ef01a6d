// Air-gapped bundles (docs/mirror.md, "Export and import"): `modelhub export` on one hub,
// `modelhub import` on another with no connection between them. The bundle carries the git
// history, every LFS/Xet object and a manifest with hashes; import verifies it whole before
// anything is published, and publishes the repo, its objects and its refs' events in one
// transaction.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { commit, createRepo, downloadFile, uploadFiles } from "@huggingface/hub";
import { startServer } from "./lib/server.mjs";
import { isolatedGitEnv } from "./lib/gitenv.mjs";

let src, dst, work, bundle;
const REPO = "admin/air";
const TXT = Buffer.from("hello from the other side\n");
const LFSBIN = randomBytes(300 * 1024 + 7);
const XETBIN = randomBytes(1024 * 1024 + 13);
const DEVTXT = Buffer.from("on dev\n");

const hub = (srv, extra = {}) => ({ repo: REPO, accessToken: srv.adminToken, hubUrl: srv.url, ...extra });

async function api(srv, method, p, { token = srv.adminToken, json } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (json) headers["Content-Type"] = "application/json";
  const r = await fetch(`${srv.url}${p}`, { method, headers, body: json ? JSON.stringify(json) : undefined });
  const text = await r.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, json: body, text };
}

/** Run the CLI with stdout into a file (export writes the bundle there). */
function exportTo(srv, args, file) {
  const fd = openSync(file, "w");
  const r = spawnSync(srv.bin, ["--data", srv.dataDir, "export", ...args], {
    stdio: ["ignore", fd, "pipe"],
    env: srv.cliEnv,
    encoding: "utf8",
    timeout: 60000,
  });
  closeSync(fd);
  return r;
}

async function state(srv) {
  const refs = await api(srv, "GET", `/api/models/${REPO}/refs`);
  const commits = await api(srv, "GET", `/api/models/${REPO}/commits/main`);
  return {
    refs: refs.json,
    commits: commits.json?.map((c) => c.id),
  };
}

/** Git directories under repos/ (ab/cd/<uid>.git). */
function gitDirs(srv) {
  const out = [];
  const root = path.join(srv.dataDir, "repos");
  for (const a of readdirSync(root))
    for (const b of readdirSync(path.join(root, a)))
      for (const c of readdirSync(path.join(root, a, b))) out.push(c);
  return out;
}

function tmpLeft(srv) {
  return readdirSync(path.join(srv.dataDir, "tmp")).filter((n) => n.startsWith("import-"));
}

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), "modelhub-bundle-e2e-"));
  src = await startServer();
  dst = await startServer();
  await createRepo({ ...hub(src), repo: { type: "model", name: REPO }, private: true });
  await uploadFiles(
    hub(src, {
      useXet: false,
      files: [
        { path: "README.md", content: new Blob([TXT]) },
        { path: "weights.bin", content: new Blob([LFSBIN]) },
      ],
    }),
  );
  await uploadFiles(hub(src, { useXet: true, files: [{ path: "xet.bin", content: new Blob([XETBIN]) }] }));
  let r = await api(src, "POST", `/api/models/${REPO}/branch/dev`, { json: {} });
  assert.equal(r.status, 200, r.text);
  await commit(
    hub(src, {
      branch: "dev",
      title: "dev change",
      operations: [{ operation: "addOrUpdate", path: "dev.txt", content: new Blob([DEVTXT]) }],
    }),
  );
  r = await api(src, "POST", `/api/models/${REPO}/tag/main`, { json: { tag: "v1", message: "first" } });
  assert.equal(r.status, 200, r.text);
  bundle = path.join(work, "air.bundle");
  // Exported while the source server runs.
  const e = exportTo(src, [REPO], bundle);
  assert.equal(e.status, 0, e.stderr);
});

after(async () => {
  await src?.stop();
  await dst?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A copy of the bundle with one byte flipped at `offset`. */
function flipped(offset, name) {
  const b = readFileSync(bundle);
  b[offset] ^= 0x01;
  const p = path.join(work, name);
  writeFileSync(p, b);
  return p;
}

test("a bundle with one flipped byte (manifest, git part, object) is refused whole", async () => {
  const b = readFileSync(bundle);
  assert.equal(b.subarray(0, 8).toString(), "MHBUNDL1");
  const ml = Number(b.readBigUInt64BE(8));
  const man = JSON.parse(b.subarray(16, 16 + ml).toString());
  assert.equal(man.repo.id, REPO);
  assert.equal(man.repo.private, true);
  const gitStart = 16 + ml + 32;
  const cases = {
    manifest: 16 + Math.floor(ml / 2),
    "manifest hash": 16 + ml + 5,
    git: gitStart + Math.floor(man.git.size / 2),
    object: b.length - 100, // inside the last object
  };
  for (const [where, off] of Object.entries(cases)) {
    const r = dst.cli(["import", flipped(off, `flip-${where.replace(" ", "-")}`)]);
    assert.notEqual(r.status, 0, `${where}: refused`);
    assert.match(r.stderr, /bundle refused|truncated/, `${where}: ${r.stderr}`);
    const info = await api(dst, "GET", `/api/models/${REPO}`);
    assert.equal(info.status, 404, `${where}: nothing visible`);
    assert.deepEqual(tmpLeft(dst), [], `${where}: temp space cleaned`);
  }
  // Truncated, and with a byte appended.
  const cut = path.join(work, "cut");
  writeFileSync(cut, b.subarray(0, b.length - 1));
  assert.notEqual(dst.cli(["import", cut]).status, 0);
  const longer = path.join(work, "longer");
  writeFileSync(longer, Buffer.concat([b, Buffer.from([0])]));
  assert.notEqual(dst.cli(["import", longer]).status, 0);
  assert.equal((await api(dst, "GET", `/api/models/${REPO}`)).status, 404);
});

/** The bundle with its manifest replaced by `man` (and signed again), the rest unchanged. */
function resigned(man, name) {
  const b = readFileSync(bundle);
  const ml = Number(b.readBigUInt64BE(8));
  const text = Buffer.from(JSON.stringify(man));
  const hdr = Buffer.alloc(16);
  Buffer.from("MHBUNDL1").copy(hdr);
  hdr.writeBigUInt64BE(BigInt(text.length), 8);
  const sha = createHash("sha256").update(hdr).update(text).digest();
  const p = path.join(work, name);
  writeFileSync(p, Buffer.concat([hdr, text, sha, b.subarray(16 + ml + 32)]));
  return p;
}

test("a manifest declaring more bytes than the temp space holds is refused before any is written", async () => {
  const b = readFileSync(bundle);
  const man = JSON.parse(b.subarray(16, 16 + Number(b.readBigUInt64BE(8))).toString());
  man.repo.id = "admin/too-big";
  man.objects[man.objects.length - 1].size = 2 ** 52; // 4 PiB: no disk here has that free
  const r = dst.cli(["import", resigned(man, "too-big.bundle")]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /bundle refused: .*temp space/, r.stderr);
  assert.equal((await api(dst, "GET", "/api/models/admin/too-big")).status, 404);
  assert.deepEqual(tmpLeft(dst), [], "temp space cleaned");
  // Sizes whose sum overflows 64 bits are refused the same way, not wrapped around.
  man.objects = [man.objects[0], man.objects[0], man.objects[0]].map((o, i) => ({ ...o, oid: String(i).repeat(64), size: 2 ** 62 * 1.5 }));
  const o = dst.cli(["import", resigned(man, "overflow.bundle")]);
  assert.equal(o.status, 1, o.stderr);
  assert.match(o.stderr, /bundle refused: .*(temp space|bad object entry)/, o.stderr);
});

test("a git bundle listing one ref twice instead of a manifest ref is refused", async () => {
  const b = readFileSync(bundle);
  const ml = Number(b.readBigUInt64BE(8));
  const man = JSON.parse(b.subarray(16, 16 + ml).toString());
  const gitStart = 16 + ml + 32;
  const git = b.subarray(gitStart, gitStart + man.git.size);
  const sep = git.indexOf("\n\n");
  const lines = git.subarray(0, sep).toString().split("\n");
  const refLines = lines.filter((l) => /^[0-9a-f]{40} refs\//.test(l));
  assert.ok(refLines.length >= 2, lines.join("|"));
  // The last ref's line replaced by a copy of the first: as many lines as manifest refs.
  const dup = lines.map((l) => (l === refLines[refLines.length - 1] ? refLines[0] : l));
  const newGit = Buffer.concat([Buffer.from(dup.join("\n")), git.subarray(sep)]);
  man.repo.id = "admin/dupref";
  man.git = { size: newGit.length, sha256: createHash("sha256").update(newGit).digest("hex") };
  const text = Buffer.from(JSON.stringify(man));
  const hdr = Buffer.alloc(16);
  Buffer.from("MHBUNDL1").copy(hdr);
  hdr.writeBigUInt64BE(BigInt(text.length), 8);
  const p = path.join(work, "dupref.bundle");
  writeFileSync(p, Buffer.concat([hdr, text, createHash("sha256").update(hdr).update(text).digest(), newGit, b.subarray(gitStart + git.length)]));
  const r = dst.cli(["import", p]);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /bundle refused: the git bundle's refs differ from the manifest/);
  assert.equal((await api(dst, "GET", "/api/models/admin/dupref")).status, 404);
  assert.deepEqual(tmpLeft(dst), []);
});

test("kill -9 during import leaves nothing half-imported; importing again completes it", async () => {
  for (const stage of ["objects", "commit"]) {
    const child = spawn(dst.bin, ["--data", dst.dataDir, "import", bundle], {
      env: { ...dst.cliEnv, MODELHUB_TEST_IMPORT_PAUSE: stage },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no pause at ${stage}: ${err}`)), 30000);
      child.stderr.on("data", (d) => {
        err += d;
        if (err.includes(`import paused at ${stage}`)) {
          clearTimeout(t);
          resolve();
        }
      });
      child.on("exit", () => {
        clearTimeout(t);
        reject(new Error(`import exited before pausing at ${stage}: ${err}`));
      });
    });
    const exited = new Promise((r) => child.on("exit", r));
    child.kill("SIGKILL");
    await exited;
    const info = await api(dst, "GET", `/api/models/${REPO}`);
    assert.equal(info.status, 404, `killed at ${stage}: no repo`);
    const list = await api(dst, "GET", `/api/models?author=admin`);
    assert.ok(!list.json.some((m) => m.id === REPO), `killed at ${stage}: not listed`);
    const ev = await api(dst, "GET", `/api/admin/events?repo=${REPO}`);
    assert.deepEqual(ev.json?.events ?? [], [], `killed at ${stage}: no events`);
  }
});

test("import onto a hub with no upstream: same commits, refs, bytes (hub client, git + git-lfs), flags, events", async () => {
  const r = dst.cli(["import", bundle]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /imported model admin\/air/);
  const a = await state(src);
  const b = await state(dst);
  assert.ok(a.commits.length >= 3);
  assert.deepEqual(b.commits, a.commits, "identical commit shas");
  assert.deepEqual(b.refs, a.refs, "identical refs");
  // Flags carried: private (anonymous callers do not see it).
  const anon = await api(dst, "GET", `/api/models/${REPO}`, { token: null });
  assert.ok([401, 404].includes(anon.status), `private: ${anon.status}`);
  const info = await api(dst, "GET", `/api/models/${REPO}`);
  assert.equal(info.json.private, true);
  assert.equal(info.json.sha, a.commits[0]);
  // Bytes through @huggingface/hub.
  for (const [p, buf, rev] of [
    ["README.md", TXT],
    ["weights.bin", LFSBIN],
    ["xet.bin", XETBIN],
    ["dev.txt", DEVTXT, "dev"],
  ]) {
    const blob = await downloadFile(hub(dst, { path: p, revision: rev }));
    assert.ok(blob, `${p} exists`);
    assert.ok(Buffer.from(await blob.arrayBuffer()).equals(buf), `${p}: bytes`);
  }
  // git clone + git-lfs smudge.
  const env = isolatedGitEnv(path.join(work, "home"));
  const git = (args, cwd = work) => {
    const g = spawnSync("git", args, { cwd, env, encoding: "utf8", timeout: 120000 });
    assert.equal(g.status, 0, `git ${args.join(" ")}: ${g.stderr}`);
    return g;
  };
  git(["lfs", "install", "--skip-repo"]);
  const u = new URL(dst.url);
  u.username = "admin";
  u.password = dst.adminToken;
  const dir = path.join(work, "clone");
  git(["clone", `${u.href}${REPO}`, dir]);
  assert.ok(readFileSync(path.join(dir, "weights.bin")).equals(LFSBIN), "weights.bin smudged");
  assert.ok(readFileSync(path.join(dir, "xet.bin")).equals(XETBIN), "xet.bin smudged");
  assert.equal(git(["rev-parse", "HEAD"], dir).stdout.trim(), a.commits[0]);
  assert.equal(git(["rev-parse", "origin/dev"], dir).stdout.trim(), a.refs.branches.find((x) => x.name === "dev").targetCommit);
  // The refs moved through the spine: one "import" event per ref, with audit entries.
  const ev = await api(dst, "GET", `/api/admin/events?repo=${REPO}`);
  const kinds = ev.json.events.map((e) => `${e.kind} ${e.ref}`).sort();
  assert.deepEqual(kinds, ["import refs/heads/dev", "import refs/heads/main", "import refs/tags/v1"]);
  assert.equal(dst.cli(["audit", "verify"]).status, 0);
  // Listed and searchable once the running server's consumers took the events.
  let listed = false;
  for (let i = 0; i < 100 && !listed; i++) {
    const l = await api(dst, "GET", `/api/models?search=air`);
    listed = l.json.some((m) => m.id === REPO);
    if (!listed) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(listed, "imported repo is listed");
  // The killed imports' temp dirs and the git dir one had moved into repos/ are gone.
  assert.deepEqual(tmpLeft(dst), []);
  assert.equal(gitDirs(dst).length, 1, `one git dir: ${gitDirs(dst)}`);
});

test("re-import is idempotent; other refs are refused unless --force", async () => {
  const again = dst.cli(["import", bundle]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /nothing to do/);
  const before = await state(dst);
  await commit(hub(dst, { title: "local change", operations: [{ operation: "addOrUpdate", path: "local.txt", content: new Blob(["x"]) }] }));
  const moved = await state(dst);
  assert.notEqual(moved.commits[0], before.commits[0]);
  const refused = dst.cli(["import", bundle]);
  assert.equal(refused.status, 3, refused.stderr);
  assert.match(refused.stderr, /differ from the bundle.*--force/);
  assert.deepEqual(await state(dst), moved, "nothing changed");
  const forced = dst.cli(["import", bundle, "--force"]);
  assert.equal(forced.status, 0, forced.stderr);
  assert.deepEqual((await state(dst)).commits, before.commits, "main back at the bundle's commit");
  // One branch: @dev exports only refs/heads/dev.
  const one = path.join(work, "dev.bundle");
  const e = exportTo(src, [`${REPO}@dev`], one);
  assert.equal(e.status, 0, e.stderr);
  const b = readFileSync(one);
  const man = JSON.parse(b.subarray(16, 16 + Number(b.readBigUInt64BE(8))).toString());
  assert.deepEqual(man.refs.map((x) => x[0]), ["refs/heads/dev"]);
  assert.equal(man.objects.length, 2, "the LFS and the Xet object of dev's history");
});

test("import into a stopped hub; the server picks the repo up when it starts", async () => {
  await createRepo({ repo: "admin/air2", accessToken: src.adminToken, hubUrl: src.url });
  await commit({
    repo: "admin/air2",
    accessToken: src.adminToken,
    hubUrl: src.url,
    title: "w",
    operations: [{ operation: "addOrUpdate", path: "w.bin", content: new Blob([LFSBIN]) }],
  });
  const file = path.join(work, "air2.bundle");
  const e = exportTo(src, ["admin/air2"], file);
  assert.equal(e.status, 0, e.stderr);
  await dst.terminate();
  const r = dst.cli(["import", file]);
  assert.equal(r.status, 0, r.stderr);
  await dst.restart();
  const info = await api(dst, "GET", "/api/models/admin/air2");
  assert.equal(info.status, 200);
  const srcInfo = await api(src, "GET", "/api/models/admin/air2");
  assert.equal(info.json.sha, srcInfo.json.sha);
  const got = await downloadFile({ repo: "admin/air2", path: "w.bin", accessToken: dst.adminToken, hubUrl: dst.url });
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(LFSBIN));
});

test("a bundle naming an object it does not carry is refused, even when this hub holds it privately", async () => {
  // dst already holds every object of admin/air (a private repo): a bundle that drops one
  // from its manifest and its bytes must not get a new repo linked to it.
  assert.equal((await api(dst, "GET", `/api/models/${REPO}`)).status, 200);
  const b = readFileSync(bundle);
  const ml = Number(b.readBigUInt64BE(8));
  const man = JSON.parse(b.subarray(16, 16 + ml).toString());
  const objStart = 16 + ml + 32 + man.git.size;
  const dropped = man.objects[0];
  man.repo.id = "admin/steal";
  man.repo.private = false;
  man.objects = man.objects.slice(1);
  const text = Buffer.from(JSON.stringify(man));
  const hdr = Buffer.alloc(16);
  Buffer.from("MHBUNDL1").copy(hdr);
  hdr.writeBigUInt64BE(BigInt(text.length), 8);
  const p = path.join(work, "steal.bundle");
  writeFileSync(
    p,
    Buffer.concat([
      hdr,
      text,
      createHash("sha256").update(hdr).update(text).digest(),
      b.subarray(16 + ml + 32, objStart),
      b.subarray(objStart + dropped.size),
    ]),
  );
  const r = dst.cli(["import", p]);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`bundle refused: LFS object ${dropped.oid} .* is not in it`));
  assert.equal((await api(dst, "GET", "/api/models/admin/steal")).status, 404);
});
