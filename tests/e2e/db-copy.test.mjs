// Moving a single-node data dir's database to PostgreSQL (docs/scale-out.md, "Moving the
// database to PostgreSQL: modelhub db copy"): a hub used on SQLite, stopped, copied with
// `modelhub db copy --to postgres://…`, then started on PostgreSQL serves the same tokens,
// repos, files and search, takes new commits (ids continue), and a second copy onto the
// now non-empty database is refused. The cluster is this test's own (scripts/pg.sh).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { binaryPath, freePort } from "./lib/server.mjs";

const PG_SH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../scripts/pg.sh");
const dir = mkdtempSync(path.join(tmpdir(), "mh-db-copy-"));
chmodSync(dir, 0o711); // as root, scripts/pg.sh runs PostgreSQL as the postgres user
const data = path.join(dir, "data");
const pg = (cmd) => spawnSync("sh", [PG_SH, cmd, path.join(dir, "pg")], { encoding: "utf8", timeout: 120000 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = [];

after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  pg("stop");
  rmSync(dir, { recursive: true, force: true });
});

function env(db) {
  const e = { ...process.env };
  for (const k of Object.keys(e)) if (k.startsWith("MODELHUB_")) delete e[k];
  if (db) e.MODELHUB_DB = db;
  return e;
}

function mh(args, db) {
  const r = spawnSync(binaryPath(), ["--data", data, ...args], { env: env(db), encoding: "utf8", timeout: 120000 });
  if (r.error) throw r.error;
  assert.doesNotMatch(r.stderr, /AddressSanitizer|LeakSanitizer|runtime error:/, r.stderr);
  return r;
}

/** Start `serve` on the data dir (database db, or SQLite); resolves to {url, stop()}. */
async function serve(db) {
  const port = await freePort();
  const child = spawn(binaryPath(), ["--data", data, "serve", "--listen", `127.0.0.1:${port}`], {
    env: env(db),
    stdio: ["ignore", "ignore", "pipe"],
  });
  children.push(child);
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise((r) => child.on("exit", r));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300 && child.exitCode === null; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) {
        return {
          url,
          async stop() {
            child.kill("SIGTERM");
            await exited;
            assert.doesNotMatch(err, /AddressSanitizer|LeakSanitizer|runtime error:/, err);
          },
        };
      }
    } catch {
      /* not listening yet */
    }
    await sleep(100);
  }
  throw new Error(`serve did not become healthy:\n${err}`);
}

const ndjson = (lines) => lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
const commit = (url, token, file, text) =>
  fetch(`${url}/api/models/acme/moved/commit/main`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/x-ndjson" },
    body: ndjson([
      { key: "header", value: { summary: `add ${file}` } },
      { key: "file", value: { path: file, content: Buffer.from(text).toString("base64"), encoding: "base64" } },
    ]),
  });

test("db copy --to postgres://: the data dir's tokens, repos, files and search served on PostgreSQL; ids continue; a second copy is refused", async (t) => {
  const started = pg("start");
  if (started.status === 3) {
    t.skip("PostgreSQL binaries missing (Debian postgresql)");
    return;
  }
  assert.equal(started.status, 0, started.stderr);
  const pgUrl = started.stdout.trim();

  // A hub used on SQLite.
  assert.equal(mh(["user", "add", "bob"]).status, 0);
  assert.equal(mh(["org", "add", "acme", "--owner", "bob"]).status, 0);
  const tok = mh(["token", "create", "bob", "--name", "t", "--role", "write"]).stdout.trim();
  let hub = await serve(null);
  let r = await fetch(`${hub.url}/api/repos/create`, {
    method: "POST",
    headers: { Authorization: `Bearer ${tok}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "moved", organization: "acme" }),
  });
  assert.equal(r.status, 200, await r.text());
  r = await commit(hub.url, tok, "README.md", "# moved\n");
  const first = await r.text();
  assert.equal(r.status, 200, first);
  const sha = JSON.parse(first).commitOid;
  await hub.stop();

  // Copied, then served from PostgreSQL.
  r = mh(["db", "copy", "--to", pgUrl]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /copied \d+ tables/);
  hub = await serve(pgUrl);
  try {
    r = await fetch(`${hub.url}/api/whoami-v2`, { headers: { Authorization: `Bearer ${tok}` } });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).name, "bob");
    const info = await (await fetch(`${hub.url}/api/models/acme/moved`)).json();
    assert.equal(info.sha, sha);
    assert.equal(await (await fetch(`${hub.url}/acme/moved/resolve/main/README.md`)).text(), "# moved\n");
    const found = await (await fetch(`${hub.url}/api/models?search=moved`)).json();
    assert.deepEqual(found.map((m) => m.id), ["acme/moved"]);
    r = await commit(hub.url, tok, "more.txt", "more");
    assert.equal(r.status, 200, await r.text());
    r = await fetch(`${hub.url}/api/repos/create`, {
      method: "POST",
      headers: { Authorization: `Bearer ${tok}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "another", organization: "acme" }),
    });
    assert.equal(r.status, 200, await r.text());
  } finally {
    await hub.stop();
  }
  r = mh(["db", "copy", "--to", pgUrl]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /accounts|not empty|already/i);
});
