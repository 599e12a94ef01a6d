// PostgreSQL stopped under a running hub (docs/scale-out.md, "Failure modes"): requests that
// need the database answer 503 ServiceUnavailable with a message, /healthz says which check
// failed, nothing acknowledged is lost and nothing half-done appears; when the database is
// back the hub serves again by itself (no restart). The cluster is this test's own
// (scripts/pg.sh in a temp dir), so stopping it disturbs no other test.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "./lib/server.mjs";

const PG_SH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../scripts/pg.sh");
const dir = mkdtempSync(path.join(tmpdir(), "mh-pg-outage-"));
chmodSync(dir, 0o711); // as root, scripts/pg.sh runs PostgreSQL as the postgres user
const pg = (cmd) => spawnSync("sh", [PG_SH, cmd, path.join(dir, "pg")], { encoding: "utf8", timeout: 120000 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let server;

after(async () => {
  await server?.stop();
  pg("stop");
  rmSync(dir, { recursive: true, force: true });
});

const ndjson = (lines) => lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
function commit(file, text) {
  return fetch(`${server.url}/api/models/admin/outage/commit/main`, {
    method: "POST",
    headers: { Authorization: `Bearer ${server.adminToken}`, "Content-Type": "application/x-ndjson" },
    body: ndjson([
      { key: "header", value: { summary: `add ${file}` } },
      { key: "file", value: { path: file, content: Buffer.from(text).toString("base64"), encoding: "base64" } },
    ]),
  });
}

test("PostgreSQL stopped and started again: 503 with a message meanwhile, then service resumes by itself, nothing lost", async (t) => {
  const started = pg("start");
  if (started.status === 3) {
    t.skip("PostgreSQL binaries missing (Debian postgresql)");
    return;
  }
  assert.equal(started.status, 0, started.stderr);
  const url = started.stdout.trim();
  server = await startServer({ env: { MODELHUB_DB: url } });
  const auth = { Authorization: `Bearer ${server.adminToken}` };
  let r = await fetch(`${server.url}/api/repos/create`, {
    method: "POST",
    headers: { ...auth, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "outage" }),
  });
  assert.equal(r.status, 200, await r.text());
  r = await commit("a.txt", "before");
  const body = await r.text();
  assert.equal(r.status, 200, body);
  const before = JSON.parse(body).commitOid;

  const stopped = pg("stop");
  assert.equal(stopped.status, 0, stopped.stderr);
  r = await fetch(`${server.url}/api/models/admin/outage`, { headers: auth });
  assert.equal(r.status, 503);
  assert.equal(r.headers.get("x-error-code"), "ServiceUnavailable");
  assert.match(r.headers.get("x-error-message"), /database/i);
  await r.arrayBuffer();
  // anonymous: the repo lookup itself fails, which is no "not found" either (was a 404)
  r = await fetch(`${server.url}/api/models/admin/outage`);
  assert.equal(r.status, 503);
  assert.equal(r.headers.get("x-error-code"), "ServiceUnavailable");
  await r.arrayBuffer();
  // /healthz probes at most once a second: the outage shows within a couple of seconds.
  for (let i = 0; i < 30; i++) {
    r = await fetch(`${server.url}/healthz`);
    if (r.status === 503) break;
    await r.arrayBuffer();
    await sleep(200);
  }
  assert.equal(r.status, 503);
  assert.notEqual((await r.json()).checks.database, "ok");
  r = await commit("b.txt", "during");
  assert.equal(r.status, 503, "a commit is not acknowledged while the database is down");
  await r.arrayBuffer();

  const again = pg("start");
  assert.equal(again.status, 0, again.stderr);
  // Back by itself: the next statements reconnect.
  let ok = false;
  for (let i = 0; i < 100 && !ok; i++) {
    r = await fetch(`${server.url}/api/models/admin/outage`, { headers: auth });
    ok = r.status === 200;
    await r.arrayBuffer();
    if (!ok) await sleep(200);
  }
  assert.ok(ok, "the hub did not serve again after PostgreSQL came back");
  for (let i = 0; i < 30; i++) {
    r = await fetch(`${server.url}/healthz`);
    await r.arrayBuffer();
    if (r.status === 200) break;
    await sleep(200);
  }
  assert.equal(r.status, 200);
  r = await commit("c.txt", "after");
  assert.equal(r.status, 200, await r.text());
  // The commit acknowledged before the outage is in the history; the refused one is not.
  const log = await (await fetch(`${server.url}/api/models/admin/outage/commits/main`, { headers: auth })).json();
  assert.ok(log.some((c) => c.id === before), "the commit from before the outage is in the history");
  const tree = await (await fetch(`${server.url}/api/models/admin/outage/tree/main`, { headers: auth })).json();
  const files = tree.map((e) => e.path).sort();
  assert.ok(files.includes("a.txt") && files.includes("c.txt"), files.join(","));
  assert.ok(!files.includes("b.txt"), "the refused commit did not land");
  const a = await fetch(`${server.url}/admin/outage/resolve/main/a.txt`, { headers: auth });
  assert.equal(await a.text(), "before");
});
