// Pull-through mirror (docs/mirror.md): two modelhub servers on loopback, one the upstream,
// one the mirror, with a small node:http proxy between them that counts the requests the
// mirror makes and injects failures (429 + Retry-After, 500, a cut transfer, a dead host).
// Mirrors run as one node (single flight, the repo-fetch lock and upstream back-off are per
// process); with MODELHUB_E2E_NODES their upstreams run as several.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { downloadFile, uploadFiles } from "@huggingface/hub";
import { startServer } from "./lib/server.mjs";
import { isolatedGitEnv } from "./lib/gitenv.mjs";

// Plain LFS on both sides (Xet-stored upstream files: docs/mirror.md).
process.env.MODELHUB_XET = "0";

const sha256 = (b) => createHash("sha256").update(b).digest("hex");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let up, mirror, proxy, work, gitEnv, upToken;
const files = {
  readme: Buffer.from("# pub\nA mirrored model.\n"),
  weights: randomBytes(1 << 20),
  big: randomBytes(20 << 20),
  cut: randomBytes(6 << 20),
  other: randomBytes(200 << 10),
  slow: randomBytes(3 << 20),
  cut2: randomBytes(4 << 20),
  batch: randomBytes(300 << 10),
  ssrf: randomBytes(64 << 10),
  endless: randomBytes(64 << 10),
};

/* ---- the proxy between mirror and upstream -------------------------------------------- */
function startProxy(target) {
  const t = new URL(target);
  const state = { mode: "pass", log: [], cutNext: false, retryAfter: "3", hold: null };
  const srv = http.createServer((req, res) => {
    state.log.push({ method: req.method, url: req.url, range: req.headers.range || null, mode: state.mode });
    if (state.stripRange && req.headers.range) {
      state.stripRange = false; // an upstream that ignores Range: the whole object again
      delete req.headers.range;
    }
    if (state.mode === "429") {
      res.writeHead(429, { "Retry-After": state.retryAfter, "Content-Type": "text/plain" });
      return res.end("slow down");
    }
    if (state.mode === "429git" && /\/info\/refs|git-upload-pack/.test(req.url)) {
      res.writeHead(429, { "Retry-After": "2", "Content-Type": "text/plain" });
      return res.end("slow down");
    }
    if (state.mode === "500") {
      res.writeHead(500, { "Content-Type": "text/plain" });
      return res.end("boom");
    }
    if (state.mode === "down") return req.socket.destroy();
    if (state.endless && req.url.startsWith("/lfs-get/") && req.method === "GET") {
      // a hostile upstream: an object download that never ends (bounded here at 64 MiB)
      const e = state.endless;
      res.writeHead(200, { "Content-Type": "application/octet-stream" });
      const chunk = Buffer.alloc(e.limit ? 16 << 10 : 1 << 20, 0x61);
      const pump = () => {
        while (e.sent < (e.limit ?? 64 << 20)) {
          e.sent += chunk.length;
          if (!res.write(chunk)) return res.once("drain", pump);
        }
        res.end();
      };
      res.on("close", () => (e.closed = true));
      return pump();
    }
    if (state.redirectLfsTo && req.url.startsWith("/lfs-get/") && req.method === "GET") {
      // a hostile upstream: its download answer sends the mirror to another (internal) host
      res.writeHead(302, { Location: state.redirectLfsTo });
      return res.end();
    }
    const fwd = http.request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
      (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        if (state.hold && req.url.startsWith("/lfs-get/") && req.method === "GET") {
          // send half of the object, then wait until the test releases the rest
          const hold = state.hold;
          state.hold = null;
          const half = Number(ur.headers["content-length"] || 0) / 2;
          let sent = 0, paused = false;
          ur.on("data", (c) => {
            res.write(c);
            sent += c.length;
            if (!paused && sent >= half) {
              paused = true;
              ur.pause();
              hold.halfSent();
              hold.released.then(() => ur.resume());
            }
          });
          ur.on("end", () => res.end());
          return;
        }
        if (state.cutNext && req.url.startsWith("/lfs-get/") && !req.headers.range && req.method === "GET") {
          state.cutNext = false;
          let sent = 0;
          const half = Number(ur.headers["content-length"] || 0) / 2;
          ur.on("data", (c) => {
            if (sent >= half) {
              ur.destroy();
              res.socket.destroy();
              return;
            }
            sent += c.length;
            res.write(c);
          });
          return;
        }
        ur.pipe(res);
      },
    );
    fwd.on("error", () => res.socket.destroy());
    req.pipe(fwd);
  });
  return new Promise((resolve) =>
    srv.listen(0, "127.0.0.1", () => {
      state.url = `http://127.0.0.1:${srv.address().port}`;
      state.close = () => new Promise((r) => {
        srv.closeAllConnections();
        srv.close(r);
      });
      resolve(state);
    }),
  );
}
const objectGets = () => proxy.log.filter((e) => e.url.startsWith("/lfs-get/") && e.mode === "pass");

async function call(server, method, p, { token, json, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    body = JSON.stringify(json);
    h["Content-Type"] = "application/json";
  }
  const res = await fetch(server.url + p, { method, headers: h, body });
  const buf = Buffer.from(await res.arrayBuffer());
  let parsed;
  try {
    parsed = JSON.parse(buf.toString("utf8"));
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, buf, text: buf.toString("utf8"), json: parsed };
}

async function upRepo(name, opts = {}, content = {}) {
  const r = await call(up, "POST", "/api/repos/create", {
    token: upToken,
    json: { name, organization: "acme", ...(opts.private ? { private: true } : {}) },
  });
  assert.equal(r.status, 200, r.text);
  if (opts.gated) {
    const g = await call(up, "PUT", `/api/models/acme/${name}/settings`, { token: upToken, json: { gated: opts.gated } });
    assert.equal(g.status, 200, g.text);
  }
  const list = Object.entries(content).map(([p, b]) => ({ path: p, content: new Blob([b]) }));
  if (list.length) await uploadFiles({ repo: `acme/${name}`, accessToken: upToken, hubUrl: up.url, files: list });
}

/* Children run asynchronously: the proxy lives in this process and must keep answering. */
function run(cmd, args, { cwd = work, env = gitEnv } = {}) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    c.stdout.on("data", (d) => (stdout += d));
    c.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => c.kill("SIGKILL"), 120000);
    c.on("error", reject);
    c.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

async function git(args, { cwd = work, ok = true } = {}) {
  const r = await run("git", args, { cwd });
  if (ok && r.status !== 0) throw new Error(`git ${args.join(" ")} exited ${r.status}\n${r.stderr}`);
  return r;
}

async function metric(server, name) {
  const r = await call(server, "GET", "/metrics");
  const m = new RegExp(`^${name} (\\d+)`, "m").exec(r.text);
  return m ? Number(m[1]) : NaN;
}

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), "modelhub-mirror-e2e-"));
  gitEnv = isolatedGitEnv(path.join(work, "home"));
  up = await startServer();
  upToken = up.adminToken;
  up.cli(["org", "add", "acme", "--owner", "admin"], { check: true });
  await upRepo("pub", {}, { "README.md": files.readme, "weights.bin": files.weights, "big.bin": files.big });
  await upRepo("gated", { gated: "auto" }, { "weights.bin": files.weights });
  await upRepo("priv", { private: true }, { "README.md": files.readme });
  await upRepo("denied-one", {}, { "README.md": files.readme });
  await upRepo("cut", {}, { "cut.bin": files.cut });
  await upRepo("other", {}, { "other.bin": files.other });
  await upRepo("stale", {}, { "other.bin": files.other });
  await upRepo("slow", {}, { "slow.bin": files.slow });
  await upRepo("cut2", {}, { "cut2.bin": files.cut2 });
  await upRepo("batchfirst", {}, { "b.bin": files.batch });
  await upRepo("gitlimited", {}, { "README.md": files.readme });
  await upRepo("ssrf", {}, { "ssrf.bin": files.ssrf });
  await upRepo("flip", {}, { "README.md": files.readme });
  await upRepo("endless", {}, { "endless.bin": files.endless });
  proxy = await startProxy(up.url);
  const cfg = path.join(work, "mirror.json");
  writeFileSync(cfg, JSON.stringify({ upstreams: [{ url: proxy.url, token: upToken, deny: ["*/denied-*"] }], ttlSeconds: 300 }));
  mirror = await startServer({ nodes: 1, env: { MODELHUB_MIRROR_CONFIG: cfg } });
});

after(async () => {
  await mirror?.stop();
  await proxy?.close();
  await up?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("model_info, tree, refs and paths-info of an uncached repo come from upstream once, marked mirrored", async () => {
  const direct = await call(up, "GET", "/api/models/acme/pub");
  const before = proxy.log.length;
  const info = await call(mirror, "GET", "/api/models/acme/pub");
  assert.equal(info.status, 200, info.text);
  assert.equal(info.json.sha, direct.json.sha);
  assert.equal(info.json.id, "acme/pub");
  assert.deepEqual(info.json.siblings.map((s) => s.rfilename).sort(), direct.json.siblings.map((s) => s.rfilename).sort());
  assert.equal(info.json.mirror.upstream, proxy.url);
  assert.match(info.json.mirror.fetchedAt, /^\d{4}-\d\d-\d\dT/);
  assert.ok(proxy.log.length > before, "the first read went upstream");
  const n = proxy.log.length;
  const tree = await call(mirror, "GET", "/api/models/acme/pub/tree/main");
  const utree = await call(up, "GET", "/api/models/acme/pub/tree/main");
  assert.deepEqual(tree.json, utree.json);
  const refs = await call(mirror, "GET", "/api/models/acme/pub/refs");
  assert.equal(refs.json.branches.find((b) => b.name === "main").targetCommit, direct.json.sha);
  const rev = await call(mirror, "GET", `/api/models/acme/pub/revision/${direct.json.sha}`);
  assert.equal(rev.status, 200);
  const pi = await call(mirror, "POST", "/api/models/acme/pub/paths-info/main", { json: { paths: ["weights.bin", "README.md"] } });
  const upi = await call(up, "POST", "/api/models/acme/pub/paths-info/main", { json: { paths: ["weights.bin", "README.md"] } });
  assert.equal(pi.status, 200, pi.text);
  assert.deepEqual(pi.json, upi.json);
  assert.equal(proxy.log.length, n, "reads of a cached repo do not touch upstream");
  // a local repo carries nothing from upstream
  const local = await call(mirror, "POST", "/api/repos/create", { token: mirror.adminToken, json: { name: "mine" } });
  assert.equal(local.status, 200, local.text);
  const mine = await call(mirror, "GET", "/api/models/admin/mine");
  assert.equal(mine.json.mirror, undefined);
  // the web page says where the repo comes from
  const page = await call(mirror, "GET", "/acme/pub");
  assert.equal(page.status, 200);
  assert.match(page.text, new RegExp(`mirrored from ${proxy.url.replace(/[.]/g, "\\.")}`));
  const minePage = await call(mirror, "GET", "/admin/mine");
  assert.doesNotMatch(minePage.text, /mirrored from/);
});

test("@huggingface/hub downloads through the mirror byte-exact with upstream's headers; the second read stays local", async () => {
  const objBefore = objectGets().length;
  const blob = await downloadFile({ repo: "acme/pub", path: "weights.bin", hubUrl: mirror.url });
  assert.ok(Buffer.from(await blob.arrayBuffer()).equals(files.weights));
  assert.equal(objectGets().length, objBefore + 1, "fetched from upstream once");
  const u = await fetch(`${up.url}/acme/pub/resolve/main/weights.bin`, { method: "HEAD", headers: { Authorization: `Bearer ${upToken}` } });
  const m = await fetch(`${mirror.url}/acme/pub/resolve/main/weights.bin`, { method: "HEAD" });
  for (const h of ["x-repo-commit", "etag", "x-linked-etag", "x-linked-size", "content-length"])
    assert.equal(m.headers.get(h), u.headers.get(h), h);
  const n = proxy.log.length;
  const again = await downloadFile({ repo: "acme/pub", path: "weights.bin", hubUrl: mirror.url });
  assert.ok(Buffer.from(await again.arrayBuffer()).equals(files.weights));
  const range = await fetch(`${mirror.url}/acme/pub/resolve/main/weights.bin`, { headers: { Range: "bytes=10-19" } });
  assert.equal(range.status, 206);
  assert.ok(Buffer.from(await range.arrayBuffer()).equals(files.weights.subarray(10, 20)));
  assert.equal(proxy.log.length, n, "the second read did not touch upstream");
  assert.ok((await metric(mirror, "modelhub_mirror_hits_total")) >= 1);
  assert.ok((await metric(mirror, "modelhub_mirror_upstream_bytes_total")) >= files.weights.length);
  // audited, with the requesting user
  const bob = mirror.makeUser("bob", "read");
  const w = await fetch(`${mirror.url}/acme/pub/resolve/main/README.md`, { headers: { Authorization: `Bearer ${bob}` } });
  assert.equal(w.status, 200);
  const big = await fetch(`${mirror.url}/acme/gated/resolve/main/weights.bin`, { headers: { Authorization: `Bearer ${mirror.adminToken}` } });
  assert.equal(big.status, 200);
  await big.arrayBuffer();
  const audit = await call(mirror, "GET", "/api/admin/audit-log?action=mirror.", { token: mirror.adminToken });
  assert.equal(audit.status, 200, audit.text);
  assert.match(audit.text, /mirror\.repo\.fetch/);
  assert.match(audit.text, /mirror\.object\.fetch/);
  assert.match(audit.text, /"actor":\s*"admin"/);
});

test("readers stream an uncached file as it arrives from upstream", async () => {
  let halfSent, release;
  const halfway = new Promise((r) => (halfSent = r));
  const released = new Promise((r) => (release = r));
  proxy.hold = { halfSent, released };
  const head = await fetch(`${mirror.url}/acme/slow/resolve/main/slow.bin`, { method: "HEAD" });
  assert.equal(head.status, 200); // answered from the pointer, nothing fetched
  assert.equal(head.headers.get("x-linked-size"), String(files.slow.length));
  assert.equal(head.headers.get("etag"), `"${sha256(files.slow)}"`);
  const res = await fetch(`${mirror.url}/acme/slow/resolve/main/slow.bin`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-length"), String(files.slow.length));
  const reader = res.body.getReader();
  await halfway;
  const first = await reader.read(); // arrives while upstream has sent only half
  assert.ok(first.value.length > 0);
  const second = await fetch(`${mirror.url}/acme/slow/resolve/main/slow.bin`, { headers: { Range: "bytes=0-99" } });
  assert.equal(second.status, 206);
  assert.ok(Buffer.from(await second.arrayBuffer()).equals(files.slow.subarray(0, 100)));
  release();
  const chunks = [Buffer.from(first.value)];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(Buffer.from(value));
  }
  assert.ok(Buffer.concat(chunks).equals(files.slow));
  const again = await fetch(`${mirror.url}/acme/slow/resolve/main/slow.bin`);
  assert.ok(Buffer.from(await again.arrayBuffer()).equals(files.slow));
});

test("16 concurrent downloads of one uncached file fetch it from upstream once", async () => {
  const before = objectGets().length;
  const all = await Promise.all(
    Array.from({ length: 16 }, () => fetch(`${mirror.url}/acme/pub/resolve/main/big.bin`).then(async (r) => {
      assert.equal(r.status, 200);
      return sha256(Buffer.from(await r.arrayBuffer()));
    })),
  );
  for (const h of all) assert.equal(h, sha256(files.big));
  assert.equal(objectGets().length, before + 1);
});

test("git clone + git-lfs through the mirror are byte-exact", async () => {
  const dir = path.join(work, "clone");
  await git(["lfs", "install", "--skip-repo"]);
  await git(["clone", `${mirror.url}/acme/pub`, dir]);
  assert.ok(readFileSync(path.join(dir, "weights.bin")).equals(files.weights));
  assert.ok(readFileSync(path.join(dir, "big.bin")).equals(files.big));
  assert.ok(readFileSync(path.join(dir, "README.md")).equals(files.readme));
  // git clone of a repo the mirror never saw: materialized by the clone itself
  const dir2 = path.join(work, "clone-other");
  await git(["clone", `${mirror.url}/acme/other`, dir2]);
  assert.ok(readFileSync(path.join(dir2, "other.bin")).equals(files.other));
});

test("a transfer cut mid-way resumes with a Range request", async () => {
  proxy.cutNext = true;
  const start = proxy.log.length;
  const r = await fetch(`${mirror.url}/acme/cut/resolve/main/cut.bin`);
  assert.equal(r.status, 200);
  assert.ok(Buffer.from(await r.arrayBuffer()).equals(files.cut));
  const gets = proxy.log.slice(start).filter((e) => e.url.startsWith("/lfs-get/"));
  assert.equal(gets.length, 2, JSON.stringify(gets));
  assert.match(gets[1].range, /^bytes=\d+-$/);
  // the resumed request answered 200 with the whole object: started over, still exact
  proxy.cutNext = true;
  proxy.stripRange = true;
  const r2 = await fetch(`${mirror.url}/acme/cut2/resolve/main/cut2.bin`);
  assert.equal(r2.status, 200);
  assert.ok(Buffer.from(await r2.arrayBuffer()).equals(files.cut2));
});

test("writes to a mirrored repo are refused with 403", async () => {
  const r = await call(mirror, "POST", "/api/models/acme/pub/commit/main", {
    token: mirror.adminToken,
    headers: { "Content-Type": "application/x-ndjson" },
  });
  assert.equal(r.status, 403, r.text);
  assert.match(r.headers.get("x-error-message"), /read-only mirror/);
  const s = await call(mirror, "PUT", "/api/models/acme/pub/settings", { token: mirror.adminToken, json: { private: true } });
  assert.equal(s.status, 403);
  const d = await call(mirror, "DELETE", "/api/repos/delete", { token: mirror.adminToken, json: { name: "pub", organization: "acme" } });
  assert.equal(d.status, 403, d.text);
});

test("deny-listed repos are not fetched: 404 like any missing repo", async () => {
  const n = proxy.log.length;
  const r = await call(mirror, "GET", "/api/models/acme/denied-one");
  assert.equal(r.status, 404);
  assert.equal(r.headers.get("x-error-code"), "RepoNotFound");
  assert.equal(proxy.log.length, n);
  const missing = await call(mirror, "GET", "/api/models/acme/no-such-repo");
  assert.equal(missing.status, 404);
});

test("encoded slashes and dot segments in a repo id never reach upstream (no deny-list bypass)", async () => {
  const n = proxy.log.length;
  for (const p of [
    "/api/models/x%2F..%2Facme/denied-one",
    "/api/models/acme/..%2F..%2Fwhoami-v2",
    "/api/models/%2E%2E/denied-one",
    "/x%2F..%2Facme/denied-one/resolve/main/README.md",
  ]) {
    const r = await call(mirror, "GET", p);
    assert.equal(r.status, 404, `${p}: ${r.status} ${r.text}`);
  }
  assert.deepEqual(proxy.log.slice(n).map((e) => e.url), []);
});

test("private and gated upstream repos stay private and gated here", async () => {
  const anon = await call(mirror, "GET", "/api/models/acme/priv");
  assert.equal(anon.status, 404);
  const adm = await call(mirror, "GET", "/api/models/acme/priv", { token: mirror.adminToken });
  assert.equal(adm.status, 200, adm.text);
  assert.equal(adm.json.private, true);
  const g = await call(mirror, "GET", "/api/models/acme/gated");
  assert.equal(g.status, 200);
  assert.equal(g.json.gated, "auto");
  const f = await call(mirror, "GET", "/acme/gated/resolve/main/weights.bin");
  assert.equal(f.status, 401);
  const ok = await call(mirror, "GET", "/acme/gated/resolve/main/weights.bin", { token: mirror.adminToken });
  assert.equal(ok.status, 200);
  assert.ok(ok.buf.equals(files.weights));
});

test("an upstream redirecting a download to a private address elsewhere is not followed", async () => {
  // An internal service on loopback, not the upstream's origin: the mirror must never call it
  // because the upstream said so (only the configured upstream itself may be private).
  const hits = [];
  const internal = http.createServer((req, res) => {
    hits.push(req.url);
    res.end("internal secret");
  });
  await new Promise((r) => internal.listen(0, "127.0.0.1", r));
  try {
    const info = await call(mirror, "GET", "/api/models/acme/ssrf");
    assert.equal(info.status, 200, info.text);
    proxy.redirectLfsTo = `http://127.0.0.1:${internal.address().port}/admin/secret`;
    const r = await call(mirror, "GET", "/acme/ssrf/resolve/main/ssrf.bin").catch((e) => ({ status: String(e) }));
    assert.deepEqual(hits, [], "the mirror called the internal host");
    assert.equal(r.status, 502, r.text);
    assert.equal(r.headers.get("x-error-code"), "UpstreamError");
    assert.ok(!r.text.includes(upToken));
    // and once upstream behaves, the file comes through
    proxy.redirectLfsTo = null;
    const ok = await call(mirror, "GET", "/acme/ssrf/resolve/main/ssrf.bin");
    assert.equal(ok.status, 200, ok.text);
    assert.ok(ok.buf.equals(files.ssrf));
  } finally {
    proxy.redirectLfsTo = null;
    internal.closeAllConnections();
    await new Promise((r) => internal.close(r));
  }
});

test("an upstream sending more than the object's size, or wrong bytes, never gets them to a client whole", async () => {
  const info = await call(mirror, "GET", "/api/models/acme/endless");
  assert.equal(info.status, 200, info.text);
  const e = { sent: 0, closed: false };
  proxy.endless = e;
  try {
    const r = await call(mirror, "GET", "/acme/endless/resolve/main/endless.bin").catch((err) => ({ status: String(err) }));
    assert.ok(e.sent <= 16 << 20, `the mirror read ${e.sent} bytes of a 64 KiB object`);
    assert.notEqual(r.status, 200);
  } finally {
    proxy.endless = null;
  }
  // Exactly the object's size, wrong bytes: the reader never gets the whole (wrong) file.
  proxy.endless = { sent: 0, limit: files.endless.length };
  try {
    const r = await call(mirror, "GET", "/acme/endless/resolve/main/endless.bin").catch((err) => ({ status: String(err) }));
    assert.ok(!(r.status === 200 && r.buf.length === files.endless.length), `got ${r.status}, ${r.buf?.length} wrong bytes`);
  } finally {
    proxy.endless = null;
  }
  const ok = await call(mirror, "GET", "/acme/endless/resolve/main/endless.bin");
  assert.equal(ok.status, 200, ok.text);
  assert.ok(ok.buf.equals(files.endless));
});

test("an upstream repo made private is hidden here after the TTL, and public again when upstream is", async () => {
  const cfg = path.join(work, "flip.json");
  writeFileSync(cfg, JSON.stringify({ upstreams: [{ url: proxy.url, token: upToken }], ttlSeconds: 1 }));
  const m3 = await startServer({ nodes: 1, env: { MODELHUB_MIRROR_CONFIG: cfg } });
  const setPrivate = async (v) => {
    const s = await call(up, "PUT", "/api/models/acme/flip/settings", { token: upToken, json: { private: v } });
    assert.equal(s.status, 200, s.text);
  };
  try {
    let r = await call(m3, "GET", "/api/models/acme/flip");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.private, false);
    await setPrivate(true);
    await sleep(1200);
    r = await call(m3, "GET", "/api/models/acme/flip");
    assert.equal(r.status, 404, "made private upstream: not public here any more");
    r = await call(m3, "GET", "/acme/flip/resolve/main/README.md");
    assert.ok([401, 404].includes(r.status), `resolve: ${r.status}`);
    const adm = await call(m3, "GET", "/api/models/acme/flip", { token: m3.adminToken });
    assert.equal(adm.status, 200, adm.text);
    assert.equal(adm.json.private, true);
    await setPrivate(false);
    await sleep(1200);
    // a private repo here is refreshed by a read of someone who may see it (or `mirror pull`)
    const adm2 = await call(m3, "GET", "/api/models/acme/flip", { token: m3.adminToken });
    assert.equal(adm2.json.private, false);
    r = await call(m3, "GET", "/api/models/acme/flip");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.private, false);
  } finally {
    await m3.stop();
  }
});

test("upstream 500 and a dead upstream: 502 for what is not cached, the cache keeps serving", async () => {
  proxy.mode = "500";
  let r = await call(mirror, "GET", "/api/models/acme/stale");
  assert.equal(r.status, 502, r.text);
  assert.equal(r.headers.get("x-error-code"), "UpstreamError");
  proxy.mode = "down";
  r = await call(mirror, "GET", "/api/models/acme/stale");
  assert.equal(r.status, 502, r.text);
  const cached = await fetch(`${mirror.url}/acme/pub/resolve/main/weights.bin`);
  assert.equal(cached.status, 200);
  assert.ok(Buffer.from(await cached.arrayBuffer()).equals(files.weights));
  proxy.mode = "pass";
});

test("upstream 429: Retry-After is passed on and respected for what is not cached", async () => {
  proxy.mode = "429";
  proxy.retryAfter = "2";
  let r = await call(mirror, "GET", "/api/models/acme/stale");
  assert.equal(r.status, 429, r.text);
  assert.ok(Number(r.headers.get("retry-after")) >= 1);
  const n = proxy.log.length;
  r = await call(mirror, "GET", "/acme/stale/resolve/main/other.bin");
  assert.equal(r.status, 429);
  assert.equal(proxy.log.length, n, "upstream is not called again before Retry-After");
  const cached = await fetch(`${mirror.url}/acme/pub/resolve/main/README.md`);
  assert.equal(cached.status, 200);
  proxy.mode = "pass";
  await sleep(2200);
  r = await call(mirror, "GET", "/api/models/acme/stale");
  assert.equal(r.status, 200, r.text);
});

test("an LFS batch naming a never-seen mirrored repo brings it in like a GET; write POSTs do not", async () => {
  const oid = sha256(files.batch);
  const res = await fetch(`${mirror.url}/acme/batchfirst.git/info/lfs/objects/batch`, {
    method: "POST",
    headers: { Accept: "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json" },
    body: JSON.stringify({ operation: "download", transfers: ["basic"], objects: [{ oid, size: files.batch.length }] }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const dl = JSON.parse(text).objects[0].actions.download;
  assert.ok(dl.href.startsWith(mirror.url), dl.href);
  const got = await fetch(dl.href, { headers: dl.header || {} });
  assert.equal(got.status, 200);
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(files.batch));
  // a POST that writes never brings a repo (upstream is not asked)
  const n = proxy.log.length;
  const w = await call(mirror, "POST", "/api/models/acme/gitlimited/commit/main", {
    token: mirror.adminToken,
    json: {},
  });
  assert.equal(w.status, 404, w.text);
  assert.equal(proxy.log.length, n);
});

test("a 429 on the git fetch answers 429 with Retry-After, not 502", async () => {
  proxy.mode = "429git";
  let r;
  try {
    r = await call(mirror, "GET", "/api/models/acme/gitlimited");
  } finally {
    proxy.mode = "pass";
  }
  assert.equal(r.status, 429, r.text);
  assert.ok(Number(r.headers.get("retry-after")) >= 1);
  assert.ok(!r.text.includes(proxy.url) && !(r.headers.get("x-error-message") || "").includes(proxy.url));
  for (let i = 0; i < 60; i++) {
    const h = await call(mirror, "GET", "/healthz");
    if (!h.json?.mirror?.retryAfter) break;
    await sleep(200);
  }
  r = await call(mirror, "GET", "/api/models/acme/gitlimited");
  assert.equal(r.status, 200, r.text);
});

test("an upstream URL carrying credentials is refused (they would show in every mirrored repo's info)", async () => {
  const n = proxy.log.length;
  const withCreds = proxy.url.replace("http://", "http://user:SECRET-IN-URL@");
  const p = await run(mirror.bin, ["--data", mirror.dataDir, "mirror", "pull", "acme/slow", "--upstream", withCreds], {
    env: { ...mirror.cliEnv },
  });
  assert.doesNotMatch(p.stderr, /Sanitizer|runtime error:/);
  assert.notEqual(p.status, 0, p.stdout + p.stderr);
  assert.match(p.stderr, /credentials/);
  assert.doesNotMatch(p.stderr + p.stdout, /SECRET-IN-URL/);
  assert.deepEqual(proxy.log.slice(n), []);
});

test("offline: `mirror pull` fills the cache; only the cache is served, and /healthz says so", async () => {
  const off = await startServer({ nodes: 1, env: { MODELHUB_UPSTREAM: proxy.url, MODELHUB_UPSTREAM_TOKEN: upToken, MODELHUB_OFFLINE: "1" } });
  try {
    const h = await call(off, "GET", "/healthz");
    assert.equal(h.json.offline, true);
    let r = await call(off, "GET", "/api/models/acme/pub");
    assert.equal(r.status, 503);
    assert.equal(r.headers.get("x-error-code"), "Offline");
    const p = await run(off.bin, ["--data", off.dataDir, "mirror", "pull", "acme/pub", "--include", "*.bin", "--upstream", proxy.url], {
      env: { ...off.cliEnv, MODELHUB_UPSTREAM_TOKEN: upToken },
    });
    assert.doesNotMatch(p.stderr, /Sanitizer|runtime error:/);
    assert.equal(p.status, 0, p.stderr);
    r = await call(off, "GET", "/api/models/acme/pub");
    assert.equal(r.status, 200, r.text);
    const n = proxy.log.length;
    const w = await fetch(`${off.url}/acme/pub/resolve/main/weights.bin`);
    assert.ok(Buffer.from(await w.arrayBuffer()).equals(files.weights));
    assert.equal(proxy.log.length, n);
  } finally {
    await off.stop();
  }
});

test("TTL pins a branch to one commit; force-pushed-away commits stay addressable; eviction spares running downloads", async () => {
  const cfg = path.join(work, "small.json");
  writeFileSync(cfg, JSON.stringify({ upstreams: [{ url: proxy.url, token: upToken }], ttlSeconds: 2, cacheMaxBytes: 1 }));
  const m2 = await startServer({ nodes: 1, env: { MODELHUB_MIRROR_CONFIG: cfg } });
  try {
    const first = await call(m2, "GET", "/api/models/acme/other");
    const sha1 = first.json.sha;
    await uploadFiles({ repo: "acme/other", accessToken: upToken, hubUrl: up.url, files: [{ path: "new.txt", content: new Blob(["new"]) }] });
    const again = await call(m2, "GET", "/api/models/acme/other");
    assert.equal(again.json.sha, sha1, "within the TTL the branch stays where it was");
    await sleep(2200);
    const later = await call(m2, "GET", "/api/models/acme/other");
    assert.notEqual(later.json.sha, sha1, "after the TTL the branch follows upstream");
    const sha2 = later.json.sha;
    // upstream force-push back to sha1: sha2 stays readable here
    const dir = path.join(work, "up-clone");
    const auth = `http://u:${upToken}@${up.url.replace("http://", "")}/acme/other`;
    await git(["clone", "-q", auth, dir]);
    await git(["push", "-q", "--force", auth, `${sha1}:refs/heads/main`], { cwd: dir });
    await sleep(2200);
    const after = await call(m2, "GET", "/api/models/acme/other");
    assert.equal(after.json.sha, sha1);
    const old = await call(m2, "GET", `/acme/other/resolve/${sha2}/new.txt`);
    assert.equal(old.status, 200, old.text);
    assert.equal(old.text, "new");

    // eviction: cache limit 1 byte; a download in progress keeps its object
    const slow = await fetch(`${m2.url}/acme/cut/resolve/main/cut.bin`);
    const reader = slow.body.getReader();
    const firstChunk = await reader.read();
    const b = await fetch(`${m2.url}/acme/other/resolve/main/other.bin`);
    assert.ok(Buffer.from(await b.arrayBuffer()).equals(files.other));
    const chunks = [Buffer.from(firstChunk.value)];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(Buffer.from(value));
    }
    assert.ok(Buffer.concat(chunks).equals(files.cut), "the running download finished intact");
    const w = await fetch(`${m2.url}/acme/pub/resolve/main/weights.bin`);
    assert.ok(Buffer.from(await w.arrayBuffer()).equals(files.weights));
    assert.ok((await metric(m2, "modelhub_mirror_evictions_total")) >= 1);
    const c = await fetch(`${m2.url}/acme/cut/resolve/main/cut.bin`); // evicted: fetched again
    assert.equal(c.status, 200);
    const cb = Buffer.from(await c.arrayBuffer());
    assert.equal(cb.length, files.cut.length);
    assert.equal(sha256(cb), sha256(files.cut));
  } finally {
    await m2.stop();
  }
});
