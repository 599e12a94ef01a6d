// The database engine choice (docs/scale-out.md, "Database engines"): --db / MODELHUB_DB
// select SQLite (the default) or PostgreSQL; a bad value is refused before anything is
// written, and PostgreSQL is refused with a clear message until the db files are converted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

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

    r = run(["--data", data, "user", "add", "bob"], {
      MODELHUB_DB: "postgres://modelhub@127.0.0.1:1/none",
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /not converted to the statement layer yet/);

    r = run(["--data", data, "--db=sqlite", "user", "add", "bob"]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(path.join(data, "modelhub.db")));
    r = run(["--data", data, "user", "add", "bob"], { MODELHUB_DB: "sqlite" });
    assert.notEqual(r.status, 0, "bob exists in the same SQLite file");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
