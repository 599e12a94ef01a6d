// Security scanning, the service side (docs/scanning.md, "The scan service and policy"):
// objects scanned once per oid by background jobs after a ref change, results in the Hub's
// shapes (securityFileStatus, securityRepoStatus), the download policy per site / org with
// audited overrides, over resolve, LFS batch + GET, Xet and git-lfs; metrics; rescan; a crash
// in the middle of the scan backlog.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { listFiles, pathsInfo, uploadFiles } from "@huggingface/hub";
import { isolatedGitEnv } from "./lib/gitenv.mjs";
import { startServer } from "./lib/server.mjs";

let server, admin, work, pauseFile, gitEnv;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha256 = (b) => createHash("sha256").update(b).digest("hex");
const gitOid = (b) =>
  createHash("sha1").update(Buffer.concat([Buffer.from(`blob ${b.length}\0`), b])).digest("hex");

// ---- fixtures (bytes made here; the pickles are never loaded) ----

/** A pickle whose REDUCE calls os.system (protocol 0: GLOBAL, MARK, STRING, TUPLE, REDUCE). */
const EVIL_PICKLE = Buffer.from("cos\nsystem\n(S'echo pwned'\ntR.", "latin1");
/** A README that leaks a (fake) AWS key pair. */
const README = Buffer.from(
  "# demo\n\nconfig:\n\naws_access_key_id = AKIAQ3EGRT5JZK7WXYQ2\n" +
    "aws_secret_access_key = wJ8lrXUtnFEMIK7MDENGbPxRfiCYzq4Kx9L0aB1c\n",
);
const EICAR = Buffer.from("X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*");

function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}
/** A stored (uncompressed) zip whose one member escapes the archive: "../evil.txt". */
function zipSlip() {
  const name = Buffer.from("../evil.txt");
  const data = Buffer.from("owned\n");
  const crc = crc32(data);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(name.length, 28);
  const cdOff = local.length + name.length + data.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + name.length, 12);
  end.writeUInt32LE(cdOff, 16);
  return Buffer.concat([local, name, data, central, name, end]);
}
/** A safetensors file whose two tensors overlap. */
function overlappingSafetensors() {
  const header = Buffer.from(
    JSON.stringify({
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
    }),
  );
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, header, Buffer.alloc(12)]);
}
/** A real torch.save state dict, by Debian's python3 with python3-torch. */
function torchStateDict(dir) {
  const out = path.join(dir, "model.pt");
  const r = spawnSync(
    "/usr/bin/python3",
    ["-c", "import sys, torch; torch.save({'w': torch.zeros(2, 2), 'b': torch.ones(2)}, sys.argv[1])", out],
    { encoding: "utf8", timeout: 120000 },
  );
  assert.equal(r.status, 0, `torch.save failed: ${r.stderr}`);
  return readFileSync(out);
}

let FIX; // name -> bytes

async function api(method, p, { token = admin, json, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    body = JSON.stringify(json);
    h["Content-Type"] = h["Content-Type"] || "application/json";
  }
  const res = await fetch(p.startsWith("http") ? p : server.url + p, { method, headers: h, body });
  const buf = Buffer.from(await res.arrayBuffer());
  let parsed;
  try {
    parsed = JSON.parse(buf.toString("utf8"));
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, buf, json: parsed };
}

const setOrgPolicy = async (policy) => {
  const r = await api("PUT", "/api/organizations/acme/settings/scan-policy", { json: { policy } });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json;
};

/** Poll paths-info (expand) until every path has a final status; bounded. */
async function waitScanned(repo, paths, ms = 60000) {
  const t0 = Date.now();
  for (;;) {
    const infos = await pathsInfo({ repo, paths, expand: true, hubUrl: server.url, accessToken: admin });
    const st = Object.fromEntries(infos.map((i) => [i.path, i.securityFileStatus]));
    if (paths.every((p) => st[p] && !["queued", "unscanned"].includes(st[p].status))) return st;
    if (Date.now() - t0 > ms) throw new Error(`scans not done after ${ms} ms: ${JSON.stringify(st)}`);
    await sleep(200);
  }
}

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), "modelhub-scan-"));
  pauseFile = path.join(work, "pause-scans");
  const clam = path.join(work, "clamav");
  mkdirSync(clam);
  // A test signature database: EICAR by a body signature (ClamAV .ndb: name:target:offset:hex).
  writeFileSync(
    path.join(clam, "test.ndb"),
    `Modelhub-Test-Eicar:0:*:${Buffer.from("EICAR-STANDARD-ANTIVIRUS-TEST-FILE").toString("hex")}\n`,
  );
  server = await startServer({
    env: { MODELHUB_CLAMAV_DB: clam, MODELHUB_TEST_PAUSE_SCANS: pauseFile, MODELHUB_JOB_LEASE_MS: "1500" },
  });
  admin = server.adminToken;
  gitEnv = isolatedGitEnv(path.join(work, "home"));
  server.cli(["org", "add", "acme", "--owner", "admin"], { check: true });
  FIX = {
    "model.pt": torchStateDict(work),
    "evil.pkl": EVIL_PICKLE,
    "README.md": README,
    "slip.zip": zipSlip(),
    "eicar.bin": EICAR,
    "bad.safetensors": overlappingSafetensors(),
  };
  const c = await api("POST", "/api/repos/create", { json: { name: "fixtures", organization: "acme", type: "model" } });
  assert.equal(c.status, 200, JSON.stringify(c.json));
  await uploadFiles({
    repo: "acme/fixtures",
    files: Object.entries(FIX).map(([p, b]) => ({ path: p, content: new Blob([b]) })),
    accessToken: admin,
    hubUrl: server.url,
    commitTitle: "fixtures",
  });
});

after(async () => {
  if (server) await server.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("each upload is scanned in the background; results in the Hub's shapes", async () => {
  const st = await waitScanned("acme/fixtures", Object.keys(FIX));
  // huggingface_hub's RepoFile reads status, avScan and pickleImportScan (keys must exist)
  for (const s of Object.values(st)) {
    assert.ok("avScan" in s && "pickleImportScan" in s, JSON.stringify(s));
  }
  assert.equal(st["model.pt"].status, "safe", JSON.stringify(st["model.pt"]));
  assert.ok(st["model.pt"].pickleImportScan.pickleImports.length > 0, "torch's imports are listed");

  const evil = st["evil.pkl"];
  assert.equal(evil.status, "unsafe", JSON.stringify(evil));
  assert.equal(evil.pickleImportScan.status, "unsafe");
  assert.ok(
    evil.pickleImportScan.pickleImports.some((i) => i.module === "os" && i.name === "system" && i.safety === "dangerous"),
    JSON.stringify(evil.pickleImportScan),
  );
  assert.notEqual(st["README.md"].secretsScan?.status ?? "safe", "safe", JSON.stringify(st["README.md"]));
  assert.doesNotMatch(JSON.stringify(st["README.md"]), /wJ8lrXUtnFEMIK7MDENG/, "never echo a secret");
  assert.notEqual(st["slip.zip"].archiveScan?.status ?? "safe", "safe", JSON.stringify(st["slip.zip"]));
  assert.equal(st["eicar.bin"].avScan.status, "unsafe", JSON.stringify(st["eicar.bin"]));
  assert.ok(st["eicar.bin"].scannedWith.avSignatures >= 1, JSON.stringify(st["eicar.bin"].scannedWith));
  assert.match(st["eicar.bin"].scannedWith.engine, /^modelhub-scan\//);
  assert.equal(st["eicar.bin"].status, "unsafe");
  assert.notEqual(st["bad.safetensors"].headerScan?.status ?? "safe", "safe", JSON.stringify(st["bad.safetensors"]));

  // the same through the tree listing (@huggingface/hub listFiles, expand)
  const files = [];
  for await (const f of listFiles({ repo: "acme/fixtures", expand: true, hubUrl: server.url, accessToken: admin }))
    files.push(f);
  assert.equal(files.find((f) => f.path === "evil.pkl").securityFileStatus.status, "unsafe");
  assert.ok(files.find((f) => f.path === ".gitattributes").securityFileStatus, "git blobs are scanned too");

  // per repo (huggingface_hub: model_info(securityStatus=True))
  const info = await api("GET", "/api/models/acme/fixtures?securityStatus=True");
  const rs = info.json.securityRepoStatus;
  assert.equal(rs.scansDone, true, JSON.stringify(rs));
  const issues = Object.fromEntries(rs.filesWithIssues.map((f) => [f.path, f.level]));
  assert.equal(issues["evil.pkl"], "unsafe");
  assert.equal(issues["eicar.bin"], "unsafe");
  assert.ok(!("model.pt" in issues), JSON.stringify(rs));
  const ex = await api("GET", "/api/models/acme/fixtures?expand[]=securityRepoStatus");
  assert.deepEqual(ex.json.securityRepoStatus, rs);
  assert.equal((await api("GET", "/api/models/acme/fixtures")).json.securityRepoStatus, undefined);
  // findings are audited (actor: the server)
  const audit = await api("GET", "/api/admin/audit-log?action=scan.finding");
  assert.ok(audit.json.some((e) => JSON.stringify(e).includes("evil.pkl")), JSON.stringify(audit.json).slice(0, 500));
});

test("web: a badge per file with the imports on hover, a banner on the repo page, the admin list", async () => {
  await waitScanned("acme/fixtures", Object.keys(FIX));
  const page = async (p, token = admin) => {
    const r = await fetch(server.url + p, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    return { status: r.status, text: await r.text() };
  };
  const tree = await page("/acme/fixtures/tree/main");
  assert.equal(tree.status, 200);
  const row = (name) => tree.text.split("<tr>").find((t) => t.includes(`>${name}</a>`)) || "";
  assert.match(row("evil.pkl"), /class="badge badge-scan-unsafe" title="[^"]*os\.system \(dangerous\)[^"]*">unsafe</);
  assert.match(row("model.pt"), /class="badge badge-scan-safe" title="[^"]*Pickle imports:[^"]*torch/);
  const blob = await page("/acme/fixtures/blob/main/evil.pkl");
  assert.match(blob.text, /badge-scan-unsafe/);
  const card = await page("/acme/fixtures");
  assert.match(card.text, /id="scan-banner"[^<]*<b>Security scan:<\/b> \d+ files with issues: [^<]*evil\.pkl \(unsafe\)/);
  const adm = await page("/admin/-/scans");
  assert.equal(adm.status, 200);
  assert.match(adm.text, /id="flagged"/);
  assert.match(adm.text, /evil\.pkl/);
  assert.equal((await page("/admin/-/scans", null)).status, 404, "admin only");
});

test("block: the unsafe file is refused over resolve, LFS batch + GET, Xet and git-lfs; safe files download", async () => {
  await waitScanned("acme/fixtures", Object.keys(FIX));
  const evilOid = sha256(EVIL_PICKLE);
  const safeOid = sha256(FIX["model.pt"]);
  const batch = (oids) =>
    api("POST", "/acme/fixtures.git/info/lfs/objects/batch", {
      headers: { "Content-Type": "application/vnd.git-lfs+json", Accept: "application/vnd.git-lfs+json" },
      json: { operation: "download", transfers: ["basic"], objects: oids.map((o) => ({ oid: o, size: o === evilOid ? EVIL_PICKLE.length : FIX["model.pt"].length })) },
    });
  // Under "warn", a download URL is handed out; it must stop working once the policy blocks.
  assert.deepEqual(await setOrgPolicy("warn"), { policy: "warn", effective: "warn" });
  const before_ = await batch([evilOid]);
  const staleHref = before_.json.objects[0].actions?.download?.href;
  assert.ok(staleHref, JSON.stringify(before_.json));

  await setOrgPolicy("block");
  const r = await api("GET", "/acme/fixtures/resolve/main/evil.pkl");
  assert.equal(r.status, 403);
  assert.equal(r.headers.get("x-error-code"), "BlockedByScan");
  assert.match(r.headers.get("x-error-message"), /pickle import os\.system \(dangerous\)/);
  assert.equal((await api("GET", "/acme/fixtures/resolve/main/eicar.bin")).status, 403);
  const head = await api("HEAD", "/acme/fixtures/resolve/main/evil.pkl"); // hf_hub_download's first call
  assert.equal(head.status, 403);
  assert.equal(head.headers.get("x-error-code"), "BlockedByScan");
  const ok = await api("GET", "/acme/fixtures/resolve/main/model.pt");
  assert.equal(ok.status, 200);
  assert.ok(ok.buf.equals(FIX["model.pt"]));

  const b = await batch([evilOid, safeOid]);
  assert.equal(b.status, 200);
  const byOid = Object.fromEntries(b.json.objects.map((o) => [o.oid, o]));
  assert.equal(byOid[evilOid].error?.code, 403, JSON.stringify(byOid[evilOid]));
  assert.match(byOid[evilOid].error.message, /os\.system/);
  const href = byOid[safeOid].actions.download.href;
  const got = await fetch(href, { headers: byOid[safeOid].actions.download.header || {} });
  assert.equal(got.status, 200);
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(FIX["model.pt"]));
  const stale = await fetch(staleHref, { headers: before_.json.objects[0].actions.download.header || {} });
  assert.equal(stale.status, 403, "a URL signed before the block is refused");
  await stale.arrayBuffer();

  // Xet: a file with a Xet hash cannot be reconstructed either
  const tree = await api("GET", "/api/models/acme/fixtures/tree/main");
  const xetHash = tree.json.find((e) => e.path === "evil.pkl").xetHash;
  if (xetHash) {
    const tok = await api("GET", "/api/models/acme/fixtures/xet-read-token/main");
    assert.equal(tok.status, 200);
    const rec = await api("GET", `${tok.json.casUrl}/v1/reconstructions/${xetHash}`, { token: tok.json.accessToken });
    assert.equal(rec.status, 403, `reconstruction of a blocked file: ${rec.status}`);
    assert.equal(rec.headers.get("x-error-code"), "BlockedByScan");
  }

  // git-lfs: clone without smudging, then pull: the safe objects arrive, the unsafe one not
  const url = server.url.replace("http://", `http://hf_user:${admin}@`) + "/acme/fixtures";
  const dir = path.join(work, "clone");
  const git = (args, opts = {}) =>
    spawnSync("git", args, { cwd: opts.cwd || work, env: { ...gitEnv, ...(opts.env || {}) }, encoding: "utf8", timeout: 60000 });
  assert.equal(git(["lfs", "install", "--skip-repo"]).status, 0);
  const cl = git(["clone", url, dir], { env: { GIT_LFS_SKIP_SMUDGE: "1" } });
  assert.equal(cl.status, 0, cl.stderr);
  const pull = git(["lfs", "pull"], { cwd: dir });
  assert.notEqual(pull.status, 0, "git lfs pull reports the refused object");
  assert.match(pull.stderr + pull.stdout, /flagged unsafe|os\.system|403/);
  assert.ok(readFileSync(path.join(dir, "model.pt")).equals(FIX["model.pt"]), "safe LFS file pulled");
  assert.match(readFileSync(path.join(dir, "evil.pkl"), "utf8"), /^version https:\/\/git-lfs/, "unsafe file stays a pointer");
  await setOrgPolicy(null);
});

test("a writer's override lets one file through, is audited, and can be revoked", async () => {
  await setOrgPolicy("block");
  assert.equal((await api("GET", "/acme/fixtures/resolve/main/evil.pkl")).status, 403);
  const anon = await api("POST", "/api/models/acme/fixtures/scan/override", { token: null, json: { path: "evil.pkl", reason: "x" } });
  assert.ok([401, 404].includes(anon.status), `anonymous override: ${anon.status}`);
  const bad = await api("POST", "/api/models/acme/fixtures/scan/override", { json: { path: "evil.pkl" } });
  assert.equal(bad.status, 400);
  const o = await api("POST", "/api/models/acme/fixtures/scan/override", {
    json: { path: "evil.pkl", reason: "research sample, known payload" },
  });
  assert.equal(o.status, 200, JSON.stringify(o.json));
  assert.equal(o.json.oid, sha256(EVIL_PICKLE));
  const r = await api("GET", "/acme/fixtures/resolve/main/evil.pkl");
  assert.equal(r.status, 200);
  assert.ok(r.buf.equals(EVIL_PICKLE));
  assert.equal((await api("GET", "/acme/fixtures/resolve/main/eicar.bin")).status, 403, "only that file");
  const audit = await api("GET", "/api/admin/audit-log?action=scan.override");
  const entry = audit.json.find((e) => JSON.stringify(e).includes("research sample"));
  assert.ok(entry, JSON.stringify(audit.json).slice(0, 400));
  const d = await api("DELETE", "/api/models/acme/fixtures/scan/override?path=evil.pkl");
  assert.equal(d.status, 200);
  assert.equal((await api("GET", "/acme/fixtures/resolve/main/evil.pkl")).status, 403);
  const admins = await api("GET", "/api/admin/scans");
  assert.ok(admins.json.flagged.some((f) => f.repo === "acme/fixtures" && f.path === "evil.pkl" && f.level === "unsafe"));
  await setOrgPolicy(null);
});

test("block-unscanned withholds a file until its scan is done", async () => {
  await setOrgPolicy("block-unscanned");
  writeFileSync(pauseFile, "");
  try {
    await uploadFiles({
      repo: "acme/fixtures",
      files: [{ path: "notes.txt", content: new Blob(["hello, not scanned yet\n"]) }],
      accessToken: admin,
      hubUrl: server.url,
    });
    const r = await api("GET", "/acme/fixtures/resolve/main/notes.txt");
    assert.equal(r.status, 403);
    assert.equal(r.headers.get("x-error-code"), "BlockedByScan");
    assert.match(r.headers.get("x-error-message"), /not been security-scanned yet/);
    const [pi] = await pathsInfo({ repo: "acme/fixtures", paths: ["notes.txt"], expand: true, hubUrl: server.url, accessToken: admin });
    assert.ok(["queued", "unscanned"].includes(pi.securityFileStatus.status), JSON.stringify(pi));
    assert.equal((await api("GET", "/acme/fixtures/resolve/main/model.pt")).status, 200, "scanned safe files still download");
  } finally {
    rmSync(pauseFile, { force: true });
  }
  await waitScanned("acme/fixtures", ["notes.txt"]);
  assert.equal((await api("GET", "/acme/fixtures/resolve/main/notes.txt")).status, 200);
  await setOrgPolicy(null);
});

test("org scan policy: only org admins (and site admins) may set it; bad values are refused", async () => {
  const bad = await api("PUT", "/api/organizations/acme/settings/scan-policy", { json: { policy: "maybe" } });
  assert.equal(bad.status, 400);
  server.cli(["user", "add", "mallory"], { check: true });
  server.cli(["org", "member", "add", "acme", "mallory", "--role", "write"], { check: true });
  const tok = server.cli(["token", "create", "mallory", "--name", "t", "--role", "write"], { check: true }).stdout.match(/hf_\S+/)[0];
  const r = await api("PUT", "/api/organizations/acme/settings/scan-policy", { token: tok, json: { policy: "warn" } });
  assert.equal(r.status, 403);
  const g = await api("GET", "/api/organizations/acme/settings/scan-policy", { token: tok });
  assert.equal(g.status, 200);
});

test("metrics: queue depth, throughput and levels", async () => {
  const m = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(m, /^modelhub_scan_queue_depth \d+$/m);
  assert.ok(Number(/^modelhub_scan_objects_scanned_total (\d+)$/m.exec(m)[1]) >= 6, m);
  assert.ok(Number(/^modelhub_scan_bytes_scanned_total (\d+)$/m.exec(m)[1]) > FIX["model.pt"].length);
  assert.match(m, /^modelhub_scan_seconds_total [0-9.]+$/m);
  assert.ok(Number(/^modelhub_scan_findings_total\{level="unsafe"\} (\d+)$/m.exec(m)[1]) >= 2);
  assert.ok(Number(/^modelhub_scan_objects\{level="safe"\} (\d+)$/m.exec(m)[1]) >= 1);
});

test("modelhub scan --rescan --all queues every object again; each is scanned once more", async () => {
  const objs = async () => (await api("GET", "/api/admin/scans?objects=1")).json.objects;
  const before_ = Object.fromEntries((await objs()).map((o) => [o.oid, o.scans]));
  const r = server.cli(["scan", "--rescan", "--all"], { check: true });
  assert.match(r.stdout, /(\d+) object\(s\) queued for a full rescan/);
  const t0 = Date.now();
  for (;;) {
    const now = await objs();
    if (now.every((o) => o.state === "done" && o.scans === before_[o.oid] + 1)) break;
    assert.ok(Date.now() - t0 < 60000, `rescan not done: ${JSON.stringify(now)}`);
    await sleep(250);
  }
  // the default (--av) only re-queues what the AV database has not seen
  const av = server.cli(["scan", "--rescan"], { check: true });
  assert.match(av.stdout, /object\(s\) queued for a malware rescan/);
});

test("the walk skips unchanged directories but finds files added deep in them, on any ref", async () => {
  const c = await api("POST", "/api/repos/create", { json: { name: "nested", type: "model" } });
  assert.equal(c.status, 200);
  const put = (p, text, revision = "main") =>
    uploadFiles({ repo: "admin/nested", files: [{ path: p, content: new Blob([text]) }], accessToken: admin, hubUrl: server.url, branch: revision });
  const objects = async () => Object.fromEntries((await api("GET", "/api/admin/scans?objects=1")).json.objects.map((o) => [o.oid, o]));
  const waitDone = async (oid) => {
    const t0 = Date.now();
    while (!((await objects())[oid]?.state === "done")) {
      assert.ok(Date.now() - t0 < 30000, `object ${oid} never scanned`);
      await sleep(150);
    }
  };
  const a = Buffer.from(`deep a ${Date.now()}\n`);
  const b = Buffer.from(`deep b ${Date.now()}\n`);
  const k = Buffer.from("token = ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8" + "\n");
  await put("x/y/z/a.txt", a);
  await waitDone(gitOid(a));
  await put("other/b.txt", b); // x/ is unchanged: skipped
  await waitDone(gitOid(b));
  assert.equal((await api("POST", "/api/models/admin/nested/branch/dev", { json: {} })).status, 200);
  await put("x/y/z/k.py", k, "dev"); // deep in x/, on another branch
  await waitDone(gitOid(k));
  const [pi] = await pathsInfo({ repo: "admin/nested", revision: "dev", paths: ["x/y/z/k.py"], expand: true, hubUrl: server.url, accessToken: admin });
  assert.equal(pi.securityFileStatus.status, "unsafe", JSON.stringify(pi.securityFileStatus));
  assert.equal((await objects())[gitOid(a)].scans, 1);
});

test("a git push is scanned like an upload (the hook's event reaches the consumer)", async () => {
  const c = await api("POST", "/api/repos/create", { json: { name: "pushed", type: "model" } });
  assert.equal(c.status, 200);
  const url = server.url.replace("http://", `http://hf_user:${admin}@`) + "/admin/pushed";
  const dir = path.join(work, "pushed");
  const git = (args, cwd = work) => {
    const r = spawnSync("git", args, { cwd, env: gitEnv, encoding: "utf8", timeout: 60000 });
    assert.equal(r.status, 0, `git ${args.join(" ")}: ${r.stderr}`);
    return r;
  };
  git(["clone", url, dir]);
  const cfg = Buffer.from('{"hf_token": "hf_' + "aBcDeFgHiJkLmNoPqRsTuVwXyZaBcDeFgH" + '"}\n');
  writeFileSync(path.join(dir, "config.json"), cfg);
  git(["add", "config.json"], dir);
  git(["commit", "-q", "-m", "config"], dir);
  git(["push", "-q", url, "main"], dir);
  const st = await waitScanned("admin/pushed", ["config.json"]);
  assert.equal(st["config.json"].status, "unsafe", JSON.stringify(st["config.json"]));
  assert.equal(st["config.json"].secretsScan.findings[0].rule, "hf-token");
});

test("crash mid-backlog: after SIGKILL and restart every object is scanned exactly once", async () => {
  const c = await api("POST", "/api/repos/create", { json: { name: "backlog", type: "model" } });
  assert.equal(c.status, 200);
  const files = Array.from({ length: 6 }, (_, i) => [`f${i}.txt`, Buffer.from(`backlog file ${i} ${Date.now()}\n`)]);
  const oids = files.map(([, b]) => gitOid(b));
  writeFileSync(pauseFile, "");
  await uploadFiles({
    repo: "admin/backlog",
    files: files.map(([p, b]) => ({ path: p, content: new Blob([b]) })),
    accessToken: admin,
    hubUrl: server.url,
  });
  // the consumer has queued them and a job is running (held by the pause) when the server dies
  const t0 = Date.now();
  for (;;) {
    const objs = (await api("GET", "/api/admin/scans?objects=1")).json.objects;
    const running = server.cli(["jobs", "list", "--state", "running", "--kind", "scan.object", "--json"]).stdout;
    if (oids.every((o) => objs.some((x) => x.oid === o)) && /scan\.object/.test(running)) break;
    assert.ok(Date.now() - t0 < 30000, "backlog not queued");
    await sleep(100);
  }
  await server.crashAndRestart();
  rmSync(pauseFile, { force: true });
  const t1 = Date.now();
  for (;;) {
    const objs = (await api("GET", "/api/admin/scans?objects=1")).json.objects.filter((o) => oids.includes(o.oid));
    if (objs.length === oids.length && objs.every((o) => o.state === "done")) {
      for (const o of objs) assert.equal(o.scans, 1, `scanned ${o.scans} times: ${o.oid}`);
      break;
    }
    assert.ok(Date.now() - t1 < 60000, `backlog not scanned after restart: ${JSON.stringify(objs)}`);
    await sleep(250);
  }
  // a later replay of the same events queues nothing again
  await sleep(500);
  for (const o of (await api("GET", "/api/admin/scans?objects=1")).json.objects.filter((x) => oids.includes(x.oid)))
    assert.equal(o.scans, 1);
});

test("site policy MODELHUB_SCAN_POLICY=block (Xet off: plain LFS objects); an org cannot weaken it", async () => {
  const site = await startServer({ env: { MODELHUB_SCAN_POLICY: "block", MODELHUB_XET: "0" } });
  try {
    const tok = site.adminToken;
    const call = (method, p, json) =>
      fetch(site.url + p, {
        method,
        headers: { Authorization: `Bearer ${tok}`, ...(json ? { "Content-Type": "application/json" } : {}) },
        body: json ? JSON.stringify(json) : undefined,
      });
    site.cli(["org", "add", "lax", "--owner", "admin"], { check: true });
    assert.equal((await call("POST", "/api/repos/create", { name: "m", organization: "lax", type: "model" })).status, 200);
    const set = await (await call("PUT", "/api/organizations/lax/settings/scan-policy", { policy: "warn" })).json();
    assert.deepEqual(set, { policy: "warn", effective: "block" });
    await uploadFiles({
      repo: "lax/m",
      files: [
        { path: "evil.pkl", content: new Blob([EVIL_PICKLE]) },
        { path: "ok.txt", content: new Blob(["fine\n"]) },
      ],
      accessToken: tok,
      hubUrl: site.url,
    });
    const t0 = Date.now();
    for (;;) {
      const [pi] = await pathsInfo({ repo: "lax/m", paths: ["evil.pkl"], expand: true, hubUrl: site.url, accessToken: tok });
      if (pi.securityFileStatus.status === "unsafe") break;
      assert.ok(Date.now() - t0 < 30000, JSON.stringify(pi));
      await sleep(200);
    }
    const r = await call("GET", "/lax/m/resolve/main/evil.pkl");
    assert.equal(r.status, 403);
    assert.equal(r.headers.get("x-error-code"), "BlockedByScan");
    await r.arrayBuffer();
    const ok = await call("GET", "/lax/m/resolve/main/ok.txt");
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
  } finally {
    await site.stop();
  }
  // a bad value is refused at start-up
  const bad = spawnSync(server.bin, ["--data", path.join(work, "bad-policy"), "serve", "--listen", "127.0.0.1:1"], {
    env: { ...process.env, MODELHUB_SCAN_POLICY: "maybe" },
    encoding: "utf8",
    timeout: 20000,
  });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /MODELHUB_SCAN_POLICY must be warn, block or block-unscanned/);
});
