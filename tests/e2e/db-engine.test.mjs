// The database engine choice (docs/scale-out.md, "Database engines"): --db / MODELHUB_DB
// select SQLite (the default) or PostgreSQL; a bad value is refused before anything is
// written; on PostgreSQL the core schema (module "core") is created in the database.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createDatabase, psql, sharedPg } from "./lib/db.mjs";
import { freePort } from "./lib/server.mjs";

const BIN = process.env.MODELHUB_BIN || path.resolve("../../build/modelhub");

function run(args, env = {}) {
  const e = { ...process.env, ...env };
  delete e.MODELHUB_DB;
  Object.assign(e, env);
  return spawnSync(BIN, args, { env: e, encoding: "utf8", timeout: 30000 });
}

test("--db and MODELHUB_DB choose the engine; bad values are refused cleanly", () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "mh-dbeng-"));
  try {
    const data = path.join(tmp, "data");
    let r = run(["--data", data, "--db", "mysql://x/y", "user", "add", "bob"]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--db: expected sqlite or a postgres:\/\/ URL/);
    assert.equal(existsSync(data), false, "nothing created for a refused --db");

    // PostgreSQL is accepted; a server that does not answer is reported as such.
    r = run(["--data", data, "user", "add", "bob"], {
      MODELHUB_DB: "postgres://modelhub@127.0.0.1:1/none",
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /database unavailable/);
    assert.doesNotMatch(r.stderr, /not converted/);
    assert.equal(existsSync(path.join(data, "modelhub.db")), false, "no SQLite file on PostgreSQL");

    r = run(["--data", data, "--db=sqlite", "user", "add", "bob"]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(path.join(data, "modelhub.db")));
    r = run(["--data", data, "user", "add", "bob"], { MODELHUB_DB: "sqlite" });
    assert.notEqual(r.status, 0, "bob exists in the same SQLite file");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

const CORE_TABLES = ["accounts", "memberships", "tokens", "repos", "repo_redirects", "kv", "repo_meta", "repo_tags",
  "downloads_daily", "likes", "model_edges", "repo_seq", "repo_objects"];

test("PostgreSQL: --db creates the core schema in the database (module core), once, and no SQLite file", { skip: sharedPg() ? false : "PostgreSQL binaries missing" }, async () => {
  const url = await createDatabase();
  const tmp = mkdtempSync(path.join(os.tmpdir(), "mh-dbeng-"));
  try {
    const data = path.join(tmp, "data");
    for (let i = 0; i < 2; i++) {
      const r = run(["--data", data, "--db", url, "user", "add", "bob"]);
      assert.doesNotMatch(r.stderr, /migration|not converted|core schema/, r.stderr);
    }
    assert.equal(psql(url, "SELECT version FROM schema_modules WHERE module='core'"), "8");
    assert.equal(psql(url, "SELECT version FROM schema_modules WHERE module='auth'"), "1");
    const have = psql(url, "SELECT table_name FROM information_schema.tables WHERE table_schema='public' ORDER BY 1").split("\n");
    for (const t of CORE_TABLES) assert.ok(have.includes(t), `table ${t} in ${have}`);
    const repoCols = psql(url, "SELECT column_name FROM information_schema.columns WHERE table_name='repos' ORDER BY ordinal_position");
    assert.equal(repoCols.split("\n").join(","), "id,uid,type,ns,name,owner_id,owner_is_org,private,gated,disabled,created_ms," +
      "updated_ms,head_sha,last_modified_ms,downloads,downloads_all,likes,trending,chg,dchg");
    assert.equal(psql(url, "SELECT data_type FROM information_schema.columns WHERE table_name='tokens' AND column_name='scopes'"), "text");
    assert.equal(psql(url, "SELECT n FROM repo_seq"), "0");
    // case-insensitive names, as on SQLite (COLLATE NOCASE)
    psql(url, "INSERT INTO accounts(uid, kind, name, created_ms) VALUES('x1', 0, 'CaseUser', 1)");
    assert.equal(psql(url, "SELECT uid FROM accounts WHERE name='caseuser'"), "x1");
    assert.equal(existsSync(path.join(data, "modelhub.db")), false, "no SQLite file on PostgreSQL");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

// The whole server on PostgreSQL (every db file is on the statement layer).
test("PostgreSQL: serve starts, /healthz is 200 and the admin token works", {
  skip: sharedPg() ? false : "PostgreSQL binaries missing",
}, async () => {
  const url = await createDatabase();
  const tmp = mkdtempSync(path.join(os.tmpdir(), "mh-dbeng-"));
  const port = await freePort();
  const env = { ...process.env, MODELHUB_DB: url };
  const child = spawn(BIN, ["--data", path.join(tmp, "data"), "serve", "--listen", `127.0.0.1:${port}`], {
    env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise((r) => child.on("exit", r));
  try {
    let token = null, healthy = false;
    for (let i = 0; i < 200 && child.exitCode === null && !healthy; i++) {
      token ||= /admin token: (hf_\S+)/.exec(out)?.[1];
      try {
        healthy = token && (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200;
      } catch {
        /* not listening yet */
      }
      if (!healthy) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(healthy, `not healthy; stderr:\n${err}`);
    const who = await fetch(`http://127.0.0.1:${port}/api/whoami-v2`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(who.status, 200);
    assert.equal((await who.json()).name, "admin");
  } finally {
    child.kill("SIGTERM");
    await exited;
    rmSync(tmp, { recursive: true, force: true });
  }
});

// Several nodes started at the same moment on a new database (no "start one first"): the
// schema is made once (IF NOT EXISTS is no guard between two sessions on PostgreSQL: one
// failed on the catalog's unique index), one admin is created and its token shown once (a
// node that lost that race exited with "creating admin").
test("PostgreSQL: three nodes started at once on a new database all come up; one admin token", {
  skip: sharedPg() ? false : "PostgreSQL binaries missing",
}, async () => {
  const url = await createDatabase();
  const tmp = mkdtempSync(path.join(os.tmpdir(), "mh-dbeng-"));
  const env = { ...process.env, MODELHUB_DB: url };
  const nodes = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const child = spawn(BIN, ["--data", path.join(tmp, "data"), "serve", "--listen", `127.0.0.1:${port}`], {
      env, stdio: ["ignore", "pipe", "pipe"] });
    const n = { port, child, out: "", err: "", exited: new Promise((r) => child.on("exit", r)) };
    child.stdout.on("data", (d) => (n.out += d));
    child.stderr.on("data", (d) => (n.err += d));
    nodes.push(n);
  }
  try {
    for (const n of nodes) {
      let healthy = false;
      for (let i = 0; i < 300 && n.child.exitCode === null && !healthy; i++) {
        try {
          healthy = (await fetch(`http://127.0.0.1:${n.port}/healthz`)).status === 200;
        } catch {
          /* not listening yet */
        }
        if (!healthy) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(healthy, `node on ${n.port} not healthy (exit ${n.child.exitCode}); stderr:\n${n.err}`);
    }
    const tokens = nodes.map((n) => /admin token: (hf_\S+)/.exec(n.out)?.[1]).filter(Boolean);
    assert.equal(tokens.length, 1, `admin tokens shown: ${tokens.length}`);
    for (const n of nodes) {
      const who = await fetch(`http://127.0.0.1:${n.port}/api/whoami-v2`, { headers: { authorization: `Bearer ${tokens[0]}` } });
      assert.equal(who.status, 200);
    }
    assert.equal(psql(url, "SELECT count(*) FROM accounts WHERE name='admin'"), "1");
    assert.equal(psql(url, "SELECT version FROM schema_modules WHERE module='core'"), "8");
  } finally {
    for (const n of nodes) n.child.kill("SIGTERM");
    await Promise.all(nodes.map((n) => n.exited));
    rmSync(tmp, { recursive: true, force: true });
  }
});
