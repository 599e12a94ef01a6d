// Operations (docs/scale-out.md "Operations"): schema versions (`modelhub migrate`,
// `migrate --status`, a database a newer modelhub migrated is refused, `--no-migrate` /
// MODELHUB_NO_MIGRATE=1 refuses pending steps) and `modelhub storage migrate --to s3://…`
// (a live data dir's LFS objects and Xet xorbs copied into a bucket on moto_server while
// downloads keep working, an object stored meanwhile copied by a second pass once writes
// stopped, a third pass copying nothing, then the node restarted on the bucket serving every
// file byte-exact with the local copies gone).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createRepo, downloadFile, uploadFiles } from "@huggingface/hub";
import { binaryPath, startServer } from "./lib/server.mjs";
import { S3_MODE, createBucket, s3Env, sharedMoto, startMoto } from "./lib/store.mjs";

const sha256 = (b) => createHash("sha256").update(b).digest("hex");
const work = mkdtempSync(path.join(tmpdir(), "modelhub-ops-"));
const cleanups = [];

after(async () => {
  for (const f of cleanups.reverse()) await f();
  rmSync(work, { recursive: true, force: true });
});

const childEnv = (extra = {}) => {
  const env = { ...process.env, ...extra };
  env.ASAN_OPTIONS = ["detect_leaks=1", process.env.ASAN_OPTIONS].filter(Boolean).join(":");
  delete env.MODELHUB_DATA;
  delete env.MODELHUB_BLOB_STORE;
  delete env.MODELHUB_NO_MIGRATE;
  return { ...env, ...extra };
};

/** The CLI on a data dir (serve included: it must exit by itself, refusing to start). */
function mh(data, args, extraEnv = {}) {
  const r = spawnSync(binaryPath(), ["--data", data, ...args], {
    encoding: "utf8",
    env: childEnv(extraEnv),
    timeout: 30000,
  });
  if (r.error) throw r.error;
  assert.doesNotMatch(r.stderr, /AddressSanitizer|LeakSanitizer|runtime error:/, r.stderr);
  return r;
}

const serveArgs = ["serve", "--listen", "127.0.0.1:0"];

function sqlite(data, sql) {
  const r = spawnSync("sqlite3", ["-cmd", ".timeout 20000", path.join(data, "modelhub.db"), sql], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test("migrate --status on a data dir a server made: every module up to date and known to this binary", async () => {
  const server = await startServer();
  await server.terminate();
  const data = server.dataDir;
  // The server's own database (PostgreSQL in that e2e mode, lib/db.mjs).
  const db = server.env.MODELHUB_DB ? { MODELHUB_DB: server.env.MODELHUB_DB } : {};
  let r = mh(data, ["migrate", "--status"], db);
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout.split("\n").filter((l) => /^[a-z][a-z0-9-]*\s+\d+\s+/.test(l));
  assert.ok(rows.length >= 15, r.stdout);
  // A module the server created that db/schema.c does not list, or one it lists at another
  // version than the steps it has, shows here (keep DB_SCHEMA_KNOWN in step).
  for (const l of rows) assert.match(l, /up to date$/, `${l}\n(the whole status:\n${r.stdout})`);
  assert.match(r.stdout, /^core\s+8\s+8\s+up to date$/m);
  assert.match(r.stdout, /^last migrated by modelhub \S+ at \d{4}-\d\d-\d\dT/m);
  r = mh(data, ["migrate"], db);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "schema up to date");
  await server.restart();
  await server.stop();
});

test("migrate on a new data dir applies every step and prints them; --status lists what is pending before", () => {
  const data = mkdtempSync(path.join(work, "fresh-"));
  let r = mh(data, ["migrate", "--status"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^no database schema yet$/m);
  assert.match(r.stdout, /^core\s+0\s+8\s+pending$/m);
  assert.match(r.stdout, /^gov\s+0\s+1\s+pending$/m);
  r = mh(data, ["migrate"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^core: 0 -> 8$/m);
  assert.match(r.stdout, /^events: 0 -> 2$/m);
  assert.match(r.stdout, /^applied \d+ schema steps$/m);
  r = mh(data, ["migrate"]);
  assert.equal(r.stdout.trim(), "schema up to date");
  r = mh(data, ["migrate", "--status"]);
  assert.doesNotMatch(r.stdout, /pending|NEWER|not known/);
});

test("a database a newer modelhub migrated: serve, other commands and migrate refuse; migrate --status reports it", () => {
  const data = mkdtempSync(path.join(work, "newer-"));
  assert.equal(mh(data, ["migrate"]).status, 0);
  sqlite(data, "UPDATE schema_modules SET version=version+1 WHERE module='gov'");
  const msg = /the database schema is newer than this modelhub \(module gov at version 2, this binary knows 1; last migrated by modelhub [^)]*\): upgrade modelhub/;
  let r = mh(data, serveArgs);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, msg);
  r = mh(data, ["user", "add", "carol"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, msg);
  r = mh(data, ["migrate"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, msg);
  r = mh(data, ["storage", "migrate", "--to", "s3://nowhere/x"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, msg);
  r = mh(data, ["migrate", "--status"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^gov\s+2\s+1\s+NEWER than this binary: upgrade modelhub$/m);
  assert.equal(sqlite(data, "SELECT count(*) FROM accounts WHERE name='carol'"), "0", "nothing was written");

  // The core schema's version (PRAGMA user_version on SQLite) counts the same way.
  sqlite(data, "UPDATE schema_modules SET version=1 WHERE module='gov'; PRAGMA user_version=9");
  r = mh(data, serveArgs);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /newer than this modelhub \(module core at version 9, this binary knows 8/);
});

test("--no-migrate / MODELHUB_NO_MIGRATE=1: pending steps are refused, `modelhub migrate` then lets the node start", async () => {
  const data = mkdtempSync(path.join(work, "nomigrate-"));
  let r = mh(data, [...serveArgs, "--no-migrate"]);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /\d+ schema steps are pending \(module core at version 0, this binary knows 8\): run `modelhub migrate` first/);
  r = mh(data, serveArgs, { MODELHUB_NO_MIGRATE: "1" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /schema steps are pending/);
  r = mh(data, ["user", "add", "dave"], { MODELHUB_NO_MIGRATE: "1" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /run `modelhub migrate` first/);
  r = mh(data, ["migrate", "--status"]);
  assert.match(r.stdout, /^no database schema yet$/m, "nothing was created");

  assert.equal(mh(data, ["migrate"]).status, 0);
  // This data dir's database is its SQLite file (also in the PostgreSQL e2e mode).
  const server = await startServer({ dataDir: data, env: { MODELHUB_NO_MIGRATE: "1", MODELHUB_DB: "sqlite" } });
  cleanups.push(() => server.stop());
  const res = await fetch(`${server.url}/api/whoami-v2`, { headers: { Authorization: `Bearer ${server.adminToken}` } });
  assert.equal(res.status, 200);
  await server.stop();
});

test("storage migrate --to s3://: live copy while downloads work, switch, restart on the bucket, byte-exact, a second pass after writes stopped copies only new objects, a third nothing", async () => {
  const moto = S3_MODE ? await sharedMoto() : await startMoto();
  if (!S3_MODE) cleanups.push(() => moto.stop());
  const bucket = await createBucket(moto.endpoint);
  const { MODELHUB_BLOB_STORE: _unused, ...s3 } = s3Env(moto.endpoint, bucket, "hub");
  // The node starts on its local store (an empty location reads <data>/blob-store, absent).
  const server = await startServer({ env: { ...s3, MODELHUB_BLOB_STORE: "" } });
  cleanups.push(() => server.stop());
  const hub = (extra = {}) => ({ repo: "admin/moved", accessToken: server.adminToken, hubUrl: server.url, ...extra });
  await createRepo(hub());
  const files = {
    "a.bin": randomBytes(200 * 1024 + 3),
    "b.bin": randomBytes(64 * 1024 + 1),
    "x.bin": randomBytes(1024 * 1024 + 13),
  };
  await uploadFiles(hub({ useXet: false, files: ["a.bin", "b.bin"].map((p) => ({ path: p, content: new Blob([files[p]]) })) }));
  await uploadFiles(hub({ useXet: true, files: [{ path: "x.bin", content: new Blob([files["x.bin"]]) }] }));

  const download = async (p) => {
    const blob = await downloadFile(hub({ path: p }));
    assert.ok(blob, `${p} downloads`);
    const got = Buffer.from(await blob.arrayBuffer());
    assert.equal(sha256(got), sha256(files[p]), `${p} is byte-exact`);
  };
  for (const p of Object.keys(files)) await download(p);

  // The copy runs while clients keep downloading from the live node.
  const target = `s3://${bucket}/hub`;
  const run = () =>
    new Promise((resolve, reject) => {
      const c = spawn(binaryPath(), ["--data", server.dataDir, "storage", "migrate", "--to", target], {
        env: childEnv(s3),
      });
      let out = "", err = "";
      c.stdout.on("data", (d) => (out += d));
      c.stderr.on("data", (d) => (err += d));
      c.on("error", reject);
      c.on("exit", (code) => resolve({ code, out, err }));
    });
  const migrating = run();
  let done = false;
  migrating.then(() => (done = true));
  let rounds = 0;
  while (!done || rounds === 0) {
    for (const p of Object.keys(files)) await download(p);
    rounds++;
  }
  const first = await migrating;
  assert.equal(first.code, 0, first.out + first.err);
  assert.doesNotMatch(first.err, /AddressSanitizer|LeakSanitizer|runtime error:/);
  const lfs = first.out.match(/^LFS objects: (\d+) objects, (\d+) copied \((\d+) bytes\), (\d+) already there, 0 failed$/m);
  const xet = first.out.match(/^Xet xorbs and shards: (\d+) objects, (\d+) copied \(\d+ bytes\), (\d+) already there, 0 failed$/m);
  assert.ok(lfs && xet, first.out);
  assert.ok(Number(lfs[2]) >= 2 && lfs[1] === lfs[2], first.out);
  assert.ok(Number(xet[2]) >= 1 && xet[1] === xet[2], first.out);
  assert.equal(readFileSync(path.join(server.dataDir, "blob-store"), "utf8"), `${target}\n`);

  // Written after the first pass: the node still stores on its disk until it restarts.
  files["c.bin"] = randomBytes(90 * 1024 + 5);
  await uploadFiles(hub({ useXet: false, files: [{ path: "c.bin", content: new Blob([files["c.bin"]]) }] }));
  await download("c.bin");

  // Stop writes, run again: only what is new is copied.
  await server.terminate();
  const second = await run();
  assert.equal(second.code, 0, second.out + second.err);
  const lfs2 = second.out.match(/^LFS objects: (\d+) objects, (\d+) copied \(\d+ bytes\), (\d+) already there, 0 failed$/m);
  assert.ok(lfs2, second.out);
  assert.equal(Number(lfs2[1]), Number(lfs[1]) + 1, second.out);
  assert.equal(Number(lfs2[2]), 1, second.out);
  assert.match(second.out, /^Xet xorbs and shards: \d+ objects, \d+ copied \(\d+ bytes\), \d+ already there, 0 failed$/m);

  // And again: nothing left to copy.
  const third = await run();
  assert.equal(third.code, 0, third.out + third.err);
  assert.match(third.out, new RegExp(`^LFS objects: ${lfs2[1]} objects, 0 copied \\(0 bytes\\), ${lfs2[1]} already there, 0 failed$`, "m"));
  assert.match(third.out, /^Xet xorbs and shards: (\d+) objects, 0 copied \(0 bytes\), \1 already there, 0 failed$/m);

  // Restart on the bucket with the local copies gone: every byte now comes from S3.
  rmSync(path.join(server.dataDir, "blobs"), { recursive: true, force: true });
  rmSync(path.join(server.dataDir, "xet", "blobs"), { recursive: true, force: true });
  await server.restart();
  const health = await fetch(`${server.url}/healthz`);
  assert.equal(health.status, 200);
  for (const p of Object.keys(files)) await download(p);
  const r = await fetch(`${server.url}/admin/moved/resolve/main/a.bin`, { headers: { Authorization: `Bearer ${server.adminToken}` } });
  assert.equal(r.status, 200);
  assert.equal(sha256(Buffer.from(await r.arrayBuffer())), sha256(files["a.bin"]));

  // Bad input: no target, or not an s3:// one.
  let bad = mh(server.dataDir, ["storage", "migrate"]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--to s3:\/\/BUCKET\[\/PREFIX\] is required/);
  bad = mh(server.dataDir, ["storage", "migrate", "--to", "/tmp/x"]);
  assert.equal(bad.status, 2);
  await server.stop();
});
