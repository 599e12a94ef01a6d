// Xet from an upstream (docs/mirror.md, "Xet from an upstream"): a file another hub stores
// only in Xet is fetched through that hub's CAS (xet-read-token → reconstruction → xorb
// ranges), verified, and stored here as an LFS object and in our own Xet store; our CAS then
// serves the same reconstruction, resolve the same bytes, and nothing names the upstream.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createRepo, downloadFile, uploadFiles } from "@huggingface/hub";
import { startServer } from "./lib/server.mjs";

let up, down;
const DATA = Buffer.concat([randomBytes(1536 * 1024 + 77), Buffer.alloc(300 * 1024, 7)]);
const sha256 = (b) => createHash("sha256").update(b).digest("hex");

async function call(srv, method, p, { token = srv.adminToken, json, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (json) h["Content-Type"] = "application/json";
  const r = await fetch(p.startsWith("http") ? p : `${srv.url}${p}`, {
    method,
    headers: h,
    body: json ? JSON.stringify(json) : body,
  });
  const buf = Buffer.from(await r.arrayBuffer());
  let js = null;
  try {
    js = JSON.parse(buf.toString());
  } catch {
    /* not JSON */
  }
  return { status: r.status, headers: r.headers, buf, text: buf.toString(), json: js };
}

let xetHash;

before(async () => {
  up = await startServer();
  down = await startServer();
  await createRepo({ repo: "admin/up", accessToken: up.adminToken, hubUrl: up.url });
  await uploadFiles({
    repo: "admin/up",
    accessToken: up.adminToken,
    hubUrl: up.url,
    useXet: true,
    files: [{ path: "w.bin", content: new Blob([DATA]) }],
  });
  const head = await fetch(`${up.url}/admin/up/resolve/main/w.bin`, {
    method: "HEAD",
    headers: { Authorization: `Bearer ${up.adminToken}` },
  });
  xetHash = head.headers.get("x-xet-hash");
  assert.match(xetHash ?? "", /^[0-9a-f]{64}$/, "stored in Xet upstream");
  await createRepo({ repo: "admin/down", accessToken: down.adminToken, hubUrl: down.url });
});

after(async () => {
  await up?.stop();
  await down?.stop();
});

const pull = (extra = [], { sha = sha256(DATA), size = DATA.length, priv = true } = {}) =>
  down.cli([
    "xet-pull",
    "--upstream",
    up.url,
    "--token",
    up.adminToken,
    "--repo",
    "admin/up",
    "--rev",
    "main",
    "--xet-hash",
    xetHash,
    "--sha256",
    sha,
    "--size",
    String(size),
    "--into",
    "admin/down",
    ...(priv ? ["--allow-private"] : []),
    ...extra,
  ]);

test("refused: a loopback upstream without --allow-private, and bytes that do not match the hashes", async () => {
  const r = pull([], { priv: false });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /refused|private|loopback/i, r.stderr);
  const bad = pull([], { sha: sha256(Buffer.from("something else")) });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /do not match/, bad.stderr);
  const stats = JSON.parse(down.cli(["storage", "stats", "--json"], { check: true }).stdout);
  assert.equal(stats.files, 0, "nothing stored in Xet");
});

test("pull a Xet file: our CAS serves the same reconstruction, resolve and Xet clients the same bytes", async () => {
  const r = pull();
  assert.equal(r.status, 0, r.stderr);
  // Idempotent.
  assert.equal(pull().status, 0);
  // The local repo references the object now: a commit may name it.
  const ndjson =
    JSON.stringify({ key: "header", value: { summary: "add w.bin" } }) +
    "\n" +
    JSON.stringify({ key: "lfsFile", value: { path: "w.bin", algo: "sha256", oid: sha256(DATA), size: DATA.length } }) +
    "\n";
  const c = await call(down, "POST", "/api/models/admin/down/commit/main", {
    body: ndjson,
    headers: { "Content-Type": "application/x-ndjson" },
  });
  assert.equal(c.status, 200, c.text);

  const plain = await call(down, "GET", "/admin/down/resolve/main/w.bin");
  assert.equal(plain.status, 200);
  assert.ok(plain.buf.equals(DATA), "resolve bytes");
  assert.equal(plain.headers.get("x-xet-hash"), xetHash, "same Xet file hash here");

  const tok = await call(down, "GET", "/api/models/admin/down/xet-read-token/main");
  assert.equal(tok.status, 200);
  assert.ok(tok.json.casUrl.startsWith(down.url));
  const recon = await call(down, "GET", `${tok.json.casUrl}/v1/reconstructions/${xetHash}`, { token: tok.json.accessToken });
  assert.equal(recon.status, 200, recon.text);
  const total = recon.json.terms.reduce((n, t) => n + t.unpacked_length, 0);
  assert.equal(total, DATA.length);
  const upHost = new URL(up.url).host;
  assert.ok(!recon.text.includes(upHost), "no upstream host in our reconstruction");
  assert.ok(!plain.text.includes(upHost));

  const blob = await downloadFile({ repo: "admin/down", path: "w.bin", accessToken: down.adminToken, hubUrl: down.url, xet: true });
  assert.equal(blob.constructor.name, "XetBlob");
  assert.ok(Buffer.from(await blob.arrayBuffer()).equals(DATA), "Xet client bytes");

  const stats = JSON.parse(down.cli(["storage", "stats", "--json"], { check: true }).stdout);
  assert.ok(stats.files >= 1 && stats.xorbs >= 1, JSON.stringify(stats));
});

test("host confusion: casUrl, fetch URLs and redirects pointing elsewhere on loopback are never called", async () => {
  const { createServer } = await import("node:http");
  const { spawn } = await import("node:child_process");
  const listen = (handler) =>
    new Promise((resolve) => {
      const s = createServer(handler);
      s.listen(0, "127.0.0.1", () => resolve(s));
    });
  const seen = [];
  const evil = await listen((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ""}`);
    res.end("{}");
  });
  const evilUrl = `http://127.0.0.1:${evil.address().port}`;
  let mode = "cas";
  const fake = await listen((req, res) => {
    const self = `http://127.0.0.1:${fake.address().port}`;
    if (req.url.includes("/xet-read-token/")) {
      if (mode === "redirect") {
        res.writeHead(302, { Location: `${evilUrl}/token` });
        return res.end();
      }
      res.setHeader("Content-Type", "application/json");
      return res.end(JSON.stringify({ casUrl: mode === "cas" ? evilUrl : self, accessToken: "acc", exp: 9999999999 }));
    }
    if (req.url.startsWith("/v1/reconstructions/")) {
      res.setHeader("Content-Type", "application/json");
      return res.end(
        JSON.stringify({
          offset_into_first_range: 0,
          terms: [{ hash: "a".repeat(64), unpacked_length: 10, range: { start: 0, end: 1 } }],
          fetch_info: { ["a".repeat(64)]: [{ range: { start: 0, end: 1 }, url: `${evilUrl}/xorb`, url_range: { start: 0, end: 99 } }] },
        }),
      );
    }
    res.statusCode = 404;
    res.end();
  });
  const run = () =>
    new Promise((resolve) => {
      const args = ["--data", down.dataDir, "xet-pull", "--upstream", `http://127.0.0.1:${fake.address().port}`];
      // A file not stored here yet (a known one is only linked, with no upstream call).
      args.push("--token", "user-secret", "--repo", "admin/up", "--xet-hash", "b".repeat(64));
      args.push("--sha256", sha256(Buffer.from("not here")), "--size", "10", "--into", "admin/down", "--allow-private");
      const p = spawn(down.bin, args, { env: down.cliEnv, stdio: ["ignore", "pipe", "pipe"] });
      let err = "";
      p.stderr.on("data", (d) => (err += d));
      p.on("close", (status) => resolve({ status, stderr: err }));
    });
  try {
    for (const m of ["cas", "fetch", "redirect"]) {
      mode = m;
      const r = await run();
      assert.notEqual(r.status, 0, `${m}: refused`);
      if (m !== "redirect") assert.match(r.stderr, /private or loopback/, `${m}: ${r.stderr}`);
    }
    assert.deepEqual(seen, [], "the other host got no request, so never the user's token");
  } finally {
    evil.close();
    fake.close();
  }
});
