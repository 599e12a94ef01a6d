// The database a test server uses: its SQLite file (the default), or a PostgreSQL database.
//
// PostgreSQL mode: MODELHUB_E2E_DB=postgres runs every server of the test process on ONE
// throwaway cluster (scripts/pg.sh in a temp dir, started on first use, stopped and removed
// when the process exits); each server gets a fresh database of its own (CREATE DATABASE)
// and runs with MODELHUB_DB=<its URL> (lib/server.mjs), as does server.cli(...).
// Tests that need PostgreSQL whatever the mode call sharedPg() / createDatabase() themselves
// (sharedPg() is null when the PostgreSQL binaries are missing).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const PG_MODE = process.env.MODELHUB_E2E_DB === "postgres";
const PG_SH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../scripts/pg.sh");

let cluster; // undefined: not started; null: binaries missing; else {dir, url}
process.on("exit", () => {
  if (!cluster) return;
  spawnSync("sh", [PG_SH, "stop", cluster.dir], { stdio: "ignore", timeout: 60000 });
  rmSync(cluster.dir, { recursive: true, force: true });
});

/** The test process's PostgreSQL cluster: {dir, url} (the URL of its "modelhub" database),
 * or null when the PostgreSQL binaries are missing (scripts/pg.sh exit status 3). */
export function sharedPg() {
  if (cluster !== undefined) return cluster;
  for (let attempt = 1; ; attempt++) {
    const dir = mkdtempSync(path.join(tmpdir(), "modelhub-e2e-pg-"));
    const r = spawnSync("sh", [PG_SH, "start", dir], { encoding: "utf8", timeout: 120000 });
    if (r.status === 3) {
      rmSync(dir, { recursive: true, force: true });
      if (PG_MODE) throw new Error(`MODELHUB_E2E_DB=postgres: ${r.stderr.trim()}`);
      cluster = null;
      return cluster;
    }
    if (!r.error && r.status === 0) {
      cluster = { dir, url: r.stdout.trim() };
      return cluster;
    }
    spawnSync("sh", [PG_SH, "stop", dir], { stdio: "ignore", timeout: 60000 });
    rmSync(dir, { recursive: true, force: true });
    // Lost the race for the port pg.sh found free: again, in a new dir (a new port).
    if (attempt < 3 && /already in use/i.test(r.stderr || "")) continue;
    throw new Error(`scripts/pg.sh start failed (${r.status}): ${r.error || r.stderr}`);
  }
}

/** Run SQL with psql on the database at `url` (unaligned, tuples only: "a|b" rows like the
 * sqlite3 shell's default); throws unless it succeeded; returns stdout, trimmed. */
export function psql(url, statement) {
  const r = spawnSync("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", statement], {
    encoding: "utf8",
    timeout: 60000,
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`psql exited ${r.status}: ${r.stderr}\n${statement}`);
  return r.stdout.trim();
}

let ndb = 0;
/** A fresh, empty database on the shared cluster; resolves to its URL. */
export async function createDatabase() {
  const pg = sharedPg();
  if (!pg) throw new Error("PostgreSQL binaries missing (apt-get install postgresql)");
  const name = `e2e_${process.pid}_${++ndb}_${Math.random().toString(36).slice(2, 8)}`;
  psql(pg.url, `CREATE DATABASE ${name}`);
  const u = new URL(pg.url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** The SQL text for the engine at hand: `statement` is one text for both, or
 * {sqlite, postgres} where the engines need different SQL (blob literals, printf, ...). */
export function sqlFor(statement, engine) {
  if (typeof statement === "string") return statement;
  const text = statement[engine];
  if (typeof text !== "string") throw new Error(`no ${engine} text for this SQL: ${JSON.stringify(statement)}`);
  return text;
}
