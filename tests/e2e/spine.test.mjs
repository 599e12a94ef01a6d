// The ref-change spine (docs/architecture.md, "The spine"): every entry point that moves a
// ref or changes a repository goes through one transaction that records exactly one event
// (GET /api/admin/events), its audit entry and the derived head together; consumers
// (derived metadata + search) follow the event log with a cursor each, resume after a
// crash, and report their lag in /metrics; a failing audit append fails the change.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { isolatedGitEnv } from "./lib/gitenv.mjs";
import { startServer } from "./lib/server.mjs";

let server;
let admin;
let work;
let gitEnv;
let pauseFile;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(srv, method, p, { token = admin, json, headers = {}, body } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    body = JSON.stringify(json);
    h["Content-Type"] = "application/json";
  }
  const res = await fetch(srv.url + p, { method, headers: h, body });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: parsed };
}

async function commit(srv, repo, files, { rev = "main", createPr = false, token = admin } = {}) {
  const lines = [{ key: "header", value: { summary: "spine", description: "" } }];
  for (const [p, content] of Object.entries(files))
    lines.push({
      key: "file",
      value: { path: p, content: Buffer.from(content).toString("base64"), encoding: "base64" },
    });
  return api(srv, "POST", `/api/models/${repo}/commit/${encodeURIComponent(rev)}${createPr ? "?create_pr=1" : ""}`, {
    token,
    headers: { "Content-Type": "application/x-ndjson" },
    body: lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
  });
}

async function eventsLog(srv, query = "") {
  const r = await api(srv, "GET", `/api/admin/events${query}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function lastId(srv) {
  return (await eventsLog(srv)).lastId;
}

async function eventsAfter(srv, id) {
  return (await eventsLog(srv)).events.filter((e) => e.id > id).reverse();
}

async function head(srv, repo, rev = "main") {
  const r = await api(srv, "GET", `/api/models/${repo}/revision/${encodeURIComponent(rev)}`);
  return r.status === 200 ? r.json.sha : "";
}

function git(args, { cwd = work, ok = true } = {}) {
  const r = spawnSync("git", args, { cwd, env: gitEnv, encoding: "utf8", timeout: 60000 });
  if (r.error) throw r.error;
  if (ok && r.status !== 0) throw new Error(`git ${args.join(" ")} exited ${r.status}\n${r.stderr}`);
  return r;
}

function remote(srv, repo) {
  const u = new URL(srv.url);
  return `http://hf_user:${admin}@${u.host}/${repo}`;
}

async function metric(srv, name, consumer = "index") {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const m = new RegExp(`^${name}\\{consumer="${consumer}"\\} (\\S+)$`, "m").exec(text);
  assert.ok(m, `${name} missing from /metrics`);
  return Number(m[1]);
}

async function waitFor(fn, ms = 8000) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) return v;
    await sleep(50);
  }
}

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), "modelhub-spine-e2e-"));
  pauseFile = path.join(work, "pause-consumers");
  server = await startServer({ env: { MODELHUB_TEST_PAUSE_CONSUMERS: pauseFile } });
  admin = server.adminToken;
  gitEnv = isolatedGitEnv(path.join(work, "home"));
  git(["config", "--global", "init.defaultBranch", "main"]);
});

after(async () => {
  if (work) rmSync(work, { recursive: true, force: true });
  if (server) await server.stop();
});

test("every ref-moving entry point records exactly one event with the right old and new values", async () => {
  const repo = "admin/spine-table";
  const clone = path.join(work, "table-clone");
  const state = {};
  const steps = [
    {
      name: "repo create",
      run: async () => {
        const r = await api(server, "POST", "/api/repos/create", { json: { name: "spine-table" } });
        assert.equal(r.status, 200, r.text);
        state.main = await head(server, repo);
      },
      expect: () => ({ kind: "repo.create", ref: "refs/heads/main", old: "", new: state.main }),
    },
    {
      name: "API commit",
      run: async () => {
        state.before = state.main;
        const r = await commit(server, repo, { "a.txt": "a\n" });
        assert.equal(r.status, 200, r.text);
        state.main = r.json.commitOid;
      },
      expect: () => ({ kind: "commit", ref: "refs/heads/main", old: state.before, new: state.main }),
    },
    {
      name: "branch create (API)",
      run: async () => {
        const r = await api(server, "POST", `/api/models/${repo}/branch/dev`, { json: {} });
        assert.equal(r.status, 200, r.text);
      },
      expect: () => ({ kind: "branch", ref: "refs/heads/dev", old: "", new: state.main }),
    },
    {
      name: "tag create (API)",
      run: async () => {
        const r = await api(server, "POST", `/api/models/${repo}/tag/main`, { json: { tag: "v1" } });
        assert.equal(r.status, 200, r.text);
      },
      expect: () => ({ kind: "tag", ref: "refs/tags/v1", old: "", new: state.main }),
    },
    {
      name: "tag delete (API)",
      run: async () => {
        const r = await api(server, "DELETE", `/api/models/${repo}/tag/v1`);
        assert.equal(r.status, 200, r.text);
      },
      expect: () => ({ kind: "tag", ref: "refs/tags/v1", old: state.main, new: "" }),
    },
    {
      name: "branch delete (API)",
      run: async () => {
        const r = await api(server, "DELETE", `/api/models/${repo}/branch/dev`);
        assert.equal(r.status, 200, r.text);
      },
      expect: () => ({ kind: "branch", ref: "refs/heads/dev", old: state.main, new: "" }),
    },
    {
      name: "pull request (create_pr commit)",
      run: async () => {
        const r = await commit(server, repo, { "pr.txt": "pr\n" }, { createPr: true });
        assert.equal(r.status, 200, r.text);
        state.pr = r.json.commitOid;
      },
      expect: () => ({ kind: "commit", ref: "refs/pr/1", old: "", new: state.pr }),
    },
    {
      name: "PR merge",
      run: async () => {
        state.before = state.main;
        const r = await api(server, "POST", `/api/models/${repo}/discussions/1/merge`, { json: {} });
        assert.equal(r.status, 200, r.text);
        state.main = r.json.mergeCommitId;
        assert.equal(await head(server, repo), state.main);
      },
      expect: () => ({ kind: "merge", ref: "refs/heads/main", old: state.before, new: state.main }),
    },
    {
      name: "stage move",
      run: async () => {
        const r = await api(server, "PUT", `/api/models/${repo}/stages/production`, {
          json: { revision: "main", reason: "ship" },
        });
        assert.equal(r.status, 200, r.text);
      },
      expect: () => ({ kind: "stage", ref: "refs/stages/production", old: "", new: state.main }),
    },
    {
      name: "stage delete",
      run: async () => {
        const r = await api(server, "DELETE", `/api/models/${repo}/stages/production`);
        assert.equal(r.status, 200, r.text);
      },
      expect: () => ({ kind: "stage", ref: "refs/stages/production", old: state.main, new: "" }),
    },
    {
      name: "git push to main",
      run: async () => {
        git(["clone", remote(server, repo), clone]);
        writeFileSync(path.join(clone, "pushed.txt"), "pushed\n");
        git(["add", "pushed.txt"], { cwd: clone });
        git(["commit", "-m", "push"], { cwd: clone });
        state.before = state.main;
        git(["push", "origin", "main"], { cwd: clone });
        state.main = git(["rev-parse", "HEAD"], { cwd: clone }).stdout.trim();
        assert.equal(await head(server, repo), state.main); // read-your-writes after a push
      },
      expect: () => ({ kind: "push", ref: "refs/heads/main", old: state.before, new: state.main }),
    },
    {
      name: "branch create by push",
      run: async () => git(["push", "origin", "main:refs/heads/feature"], { cwd: clone }),
      expect: () => ({ kind: "push", ref: "refs/heads/feature", old: "", new: state.main }),
    },
    {
      name: "tag create by push",
      run: async () => {
        git(["tag", "t1"], { cwd: clone });
        git(["push", "origin", "refs/tags/t1"], { cwd: clone });
      },
      expect: () => ({ kind: "push", ref: "refs/tags/t1", old: "", new: state.main }),
    },
    {
      name: "branch delete by push",
      run: async () => git(["push", "origin", ":refs/heads/feature"], { cwd: clone }),
      expect: () => ({ kind: "push", ref: "refs/heads/feature", old: state.main, new: "" }),
    },
    {
      name: "visibility change",
      run: async () => {
        const r = await api(server, "PUT", `/api/models/${repo}/settings`, { json: { private: true } });
        assert.equal(r.status, 200, r.text);
      },
      expect: () => ({ kind: "repo.settings", ref: "", old: "", new: "" }),
    },
    {
      name: "repo move",
      run: async () => {
        const r = await api(server, "POST", "/api/repos/move", {
          json: { fromRepo: repo, toRepo: "admin/spine-moved", type: "model" },
        });
        assert.equal(r.status, 200, r.text);
      },
      expect: () => ({ kind: "repo.move", ref: "", old: "", new: "" }),
    },
    {
      name: "repo delete",
      run: async () => {
        const r = await api(server, "DELETE", "/api/repos/delete", {
          json: { name: "spine-moved", organization: "admin", type: "model" },
        });
        assert.equal(r.status, 200, r.text);
      },
      expect: () => ({ kind: "repo.delete", ref: "", old: "", new: "" }),
    },
  ];

  const firstId = await lastId(server);
  let repoId;
  for (const step of steps) {
    const before = await lastId(server);
    await step.run();
    const evs = await eventsAfter(server, before);
    const want = step.expect();
    assert.equal(evs.length, 1, `${step.name}: ${JSON.stringify(evs)}`);
    const e = evs[0];
    assert.deepEqual(
      { kind: e.kind, ref: e.ref, old: e.old, new: e.new },
      want,
      `${step.name}: ${JSON.stringify(e)}`,
    );
    assert.equal(e.actor, "admin", step.name);
    repoId ??= e.repoId;
    assert.equal(e.repoId, repoId, step.name);
  }

  // Each event has its audit entry (same transaction): the API commit's, the push's.
  const audit = await api(server, "GET", "/api/admin/audit-log?limit=500");
  assert.equal(audit.status, 200, audit.text);
  const acts = audit.json.map((a) => a.action);
  for (const a of ["repo.create", "repo.commit", "repo.branch.create", "repo.tag.delete", "pr.merge",
                   "stage.move", "repo.push", "repo.settings", "repo.move", "repo.delete"])
    assert.ok(acts.includes(a), `audit lacks ${a}`);
  const pushed = audit.json.find((a) => a.action === "repo.push" && a.details.ref === "refs/heads/main");
  assert.equal(pushed.actor, "admin");
  assert.match(pushed.details.new, /^[0-9a-f]{40}$/);

  // Every consumer saw every event once: its cursor reaches the newest event and its
  // processed count grew by exactly the number of events.
  const last = await lastId(server);
  const log = await waitFor(async () => {
    const l = await eventsLog(server);
    return l.consumers.every((c) => c.cursor === last) && l;
  });
  assert.ok(log, "consumers did not catch up");
  for (const c of log.consumers) {
    assert.equal(c.lagEvents, 0, c.name);
    assert.equal(c.processed, last, `${c.name} processed ${c.processed} of ${last} events`);
  }
  assert.ok(last - firstId >= steps.length);
});

test("a crash between the ref move and the consumers: derived metadata and search catch up after the restart, once", async () => {
  const repo = "admin/spine-crash";
  let r = await api(server, "POST", "/api/repos/create", { json: { name: "spine-crash" } });
  assert.equal(r.status, 200, r.text);
  await waitFor(async () => (await metric(server, "modelhub_consumer_lag_events")) === 0);
  const processedBefore = (await eventsLog(server)).consumers.find((c) => c.name === "index").processed;

  writeFileSync(pauseFile, "");
  const card = "---\ntags:\n- spinetag\nlicense: mit\n---\n# crash test\n";
  r = await commit(server, repo, { "README.md": card });
  assert.equal(r.status, 200, r.text);
  const sha = r.json.commitOid;
  // Read-your-writes: the head and siblings are there at once, consumers or not.
  let info = await api(server, "GET", `/api/models/${repo}`);
  assert.equal(info.json.sha, sha);
  assert.ok(info.json.siblings.some((s) => s.rfilename === "README.md"));
  assert.ok(!(info.json.tags || []).includes("spinetag"), "derived before the consumer ran");
  assert.ok((await metric(server, "modelhub_consumer_lag_events")) >= 1);
  assert.ok((await metric(server, "modelhub_consumer_lag_seconds")) >= 0);

  await server.crashAndRestart(); // SIGKILL: the consumer never saw the event
  info = await api(server, "GET", `/api/models/${repo}`);
  assert.equal(info.json.sha, sha, "the acknowledged commit survived the kill");
  assert.ok((await metric(server, "modelhub_consumer_lag_events")) >= 1, "the event was kept");

  rmSync(pauseFile);
  const tagged = await waitFor(async () => {
    const i = await api(server, "GET", `/api/models/${repo}`);
    return (i.json.tags || []).includes("spinetag");
  });
  assert.ok(tagged, "derived metadata did not catch up after the restart");
  const found = await api(server, "GET", `/api/models?filter=spinetag`);
  assert.ok(found.json.some((m) => m.id === repo), `search: ${found.text}`);
  await waitFor(async () => (await metric(server, "modelhub_consumer_lag_events")) === 0);
  const log = await eventsLog(server);
  const idx = log.consumers.find((c) => c.name === "index");
  assert.equal(idx.cursor, log.lastId);
  assert.equal(idx.processed - processedBefore, 1, "the event was processed once");
});

test("merges and stage moves survive SIGKILL right after the response", async () => {
  const repo = "admin/spine-durable";
  let r = await api(server, "POST", "/api/repos/create", { json: { name: "spine-durable" } });
  assert.equal(r.status, 200, r.text);
  r = await commit(server, repo, { "b.txt": "b\n" }, { createPr: true });
  assert.equal(r.status, 200, r.text);
  r = await api(server, "POST", `/api/models/${repo}/discussions/1/merge`, { json: {} });
  assert.equal(r.status, 200, r.text);
  const merged = r.json.mergeCommitId;
  r = await api(server, "PUT", `/api/models/${repo}/stages/prod`, { json: { revision: merged } });
  assert.equal(r.status, 200, r.text);
  await server.crashAndRestart();
  assert.equal(await head(server, repo), merged);
  assert.equal(await head(server, repo, "prod"), merged);
  const d = await api(server, "GET", `/api/models/${repo}/discussions/1`);
  assert.equal(d.json.status, "merged");
});

test("a ref moved while no server watched gets its event and audit entry at start-up; a PR ref its discussion", async () => {
  const repo = "admin/spine-reconcile";
  let r = await api(server, "POST", "/api/repos/create", { json: { name: "spine-reconcile" } });
  assert.equal(r.status, 200, r.text);
  const uid = r.json.id;
  const main = await head(server, repo);
  const gitdir = path.join(server.dataDir, "repos", uid.slice(0, 2), uid.slice(2, 4), `${uid}.git`);
  assert.ok(existsSync(gitdir), gitdir);
  const before = await lastId(server);
  await server.terminate();
  git(["--git-dir", gitdir, "update-ref", "refs/heads/side", main]);
  git(["--git-dir", gitdir, "update-ref", "refs/pr/7", main]);
  await server.restart();
  const evs = await eventsAfter(server, before);
  assert.equal(evs.length, 2, JSON.stringify(evs));
  assert.deepEqual(
    evs.map((e) => ({ kind: e.kind, ref: e.ref, old: e.old, new: e.new })),
    [
      { kind: "recovered", ref: "refs/heads/side", old: "", new: main },
      { kind: "recovered", ref: "refs/pr/7", old: "", new: main },
    ],
  );
  const audit = await api(server, "GET", "/api/admin/audit-log?limit=50");
  const rec = audit.json.filter((a) => a.action === "repo.ref.recovered" && a.target === `model:${repo}`);
  assert.deepEqual(rec.map((a) => a.details.ref).sort(), ["refs/heads/side", "refs/pr/7"]);
  const d = await api(server, "GET", `/api/models/${repo}/discussions/7`);
  assert.equal(d.status, 200, d.text);
  assert.equal(d.json.status, "open");
  // A second restart finds nothing new.
  await server.terminate();
  await server.restart();
  assert.equal((await eventsAfter(server, before)).length, 2);
});

test("who may write which ref: contributors on refs/pr/* (commit API, LFS batch), writers elsewhere", async () => {
  server.cli(["user", "add", "spinecontrib"], { check: true });
  const contrib = server.makeToken("spinecontrib", "write");
  server.cli(["org", "add", "spineorg", "--owner", "admin"], { check: true });
  server.cli(["org", "member", "add", "spineorg", "spinecontrib", "--role", "contributor"], { check: true });
  const repo = "spineorg/pr-rules";
  let r = await api(server, "POST", "/api/repos/create", { json: { name: "pr-rules", organization: "spineorg" } });
  assert.equal(r.status, 200, r.text);
  r = await commit(server, repo, { "x.txt": "x\n" }, { token: contrib });
  assert.equal(r.status, 403, r.text);
  r = await commit(server, repo, { "x.txt": "x\n" }, { token: contrib, createPr: true });
  assert.equal(r.status, 200, r.text);
  // A contributor adds a commit to the pull request's ref.
  r = await commit(server, repo, { "y.txt": "y\n" }, { token: contrib, rev: "refs/pr/1" });
  assert.equal(r.status, 200, r.text);
  const evs = (await eventsLog(server, `?repo=${repo}`)).events;
  assert.equal(evs[0].ref, "refs/pr/1");
  assert.equal(evs[0].actor, "spinecontrib");
  // The LFS batch route applies the same rule to the ref it names.
  const batch = (ref) =>
    fetch(`${server.url}/${repo}.git/info/lfs/objects/batch`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${contrib}`,
        Accept: "application/vnd.git-lfs+json",
        "Content-Type": "application/vnd.git-lfs+json",
      },
      body: JSON.stringify({
        operation: "upload",
        transfers: ["basic"],
        ref: { name: ref },
        objects: [{ oid: "a".repeat(64), size: 3 }],
      }),
    });
  assert.equal((await batch("refs/pr/1")).status, 200);
  assert.equal((await batch("refs/heads/main")).status, 403);
});

test("events are read-only and for site admins only", async () => {
  const bob = server.makeUser("spinebob", "write");
  const r = await api(server, "GET", "/api/admin/events", { token: bob });
  assert.equal(r.status, 403, r.text);
  const anon = await api(server, "GET", "/api/admin/events", { token: null });
  assert.ok(anon.status === 401 || anon.status === 403, anon.text);
});

test("audit fail-closed: a commit whose audit entry cannot be written is not acknowledged nor visible", async () => {
  const srv = await startServer({ env: { MODELHUB_TEST_AUDIT_FAIL: "repo.commit" } });
  try {
    const tok = srv.adminToken;
    const repo = "admin/spine-audit";
    let r = await api(srv, "POST", "/api/repos/create", { token: tok, json: { name: "spine-audit" } });
    assert.equal(r.status, 200, r.text);
    const main = await api(srv, "GET", `/api/models/${repo}/revision/main`, { token: tok });
    const before = (await api(srv, "GET", "/api/admin/events", { token: tok })).json.lastId;
    r = await commit(srv, repo, { "x.txt": "x\n" }, { token: tok });
    assert.ok(r.status >= 500, `acknowledged without its audit entry: ${r.status} ${r.text}`);
    const after = await api(srv, "GET", `/api/models/${repo}/revision/main`, { token: tok });
    assert.equal(after.json.sha, main.json.sha, "the commit is visible");
    const tree = await api(srv, "GET", `/api/models/${repo}/tree/main`, { token: tok });
    assert.ok(!tree.json.some((e) => e.path === "x.txt"));
    const ev = (await api(srv, "GET", "/api/admin/events", { token: tok })).json;
    assert.equal(ev.lastId, before, "an event for a change that did not happen");
  } finally {
    if (process.env.KEEPLOG) spawnSync("cp", [path.join(srv.dataDir, "server.log"), process.env.KEEPLOG]);
    await srv.stop();
  }
});

test("concurrent pushes to one repo: each ref move gets exactly one event, none a 'recovered' duplicate", async () => {
  // Hooks slow to record (600 ms): a second push moves the ref while the first one's hook
  // waits, so the first push's post-push check runs while the second one's hook has not
  // recorded yet — the check must leave that move to the hook.
  const srv = await startServer({ env: { MODELHUB_TEST_HOOK_DELAY_MS: "600" } });
  try {
    const tok = srv.adminToken;
    const name = "spine-race";
    const repo = `admin/${name}`;
    assert.equal((await api(srv, "POST", "/api/repos/create", { token: tok, json: { name } })).status, 200);
    const start = (await api(srv, "GET", "/api/admin/events", { token: tok })).json.lastId;
    const url = `http://hf_user:${tok}@${new URL(srv.url).host}/${repo}`;
    const gitAsync = (args, cwd) =>
      new Promise((resolve) => {
        const p = spawn("git", args, { cwd, env: gitEnv, stdio: ["ignore", "ignore", "pipe"] });
        let err = "";
        p.stderr.on("data", (d) => (err += d));
        p.on("close", (code) => resolve({ code, err }));
      });
    const clones = [1, 2, 3].map((i) => path.join(work, `race-${i}`));
    for (const c of clones) {
      git(["clone", "-q", url, c]);
      git(["config", "user.email", "a@example.com"], { cwd: c });
      git(["config", "user.name", "a"], { cwd: c });
    }
    const mk = (c, file, text) => {
      writeFileSync(path.join(c, file), text);
      git(["add", file], { cwd: c });
      git(["commit", "-q", "-m", text], { cwd: c });
    };
    // A push that lost the ref lock to another one ("cannot lock ref") moved nothing: again.
    const pushHard = async (ref, c, delay = 0) => {
      await sleep(delay);
      for (let i = 0; i < 20; i++) {
        const r = await gitAsync(["push", "-q", "--force", "origin", `HEAD:${ref}`], c);
        if (r.code === 0) return 1;
        assert.match(r.err, /cannot lock ref|failed to update ref|rejected/, r.err);
      }
      return 0;
    };
    let mainMoves = 0;
    for (let round = 0; round < 3; round++) {
      clones.forEach((c, i) => mk(c, `f${i}.txt`, `${i} ${round}\n`));
      // Different branches at once.
      assert.deepEqual(await Promise.all(clones.map((c, i) => pushHard(`refs/heads/b${i}`, c))), [1, 1, 1]);
      // The same branch: forced, so every push lands; each starts while the previous one's
      // hook is still waiting.
      const same = await Promise.all(clones.map((c, i) => pushHard("refs/heads/main", c, 250 * i)));
      mainMoves += same.reduce((a, b) => a + b, 0);
    }
    const tips = {};
    for (const line of git(["ls-remote", url]).stdout.trim().split("\n")) {
      const [sha, ref] = line.split("\t");
      if (ref.startsWith("refs/heads/")) tips[ref] = sha;
    }
    const log = await api(srv, "GET", `/api/admin/events?repo=${repo}&limit=500`, { token: tok });
    const all = log.json.events.filter((e) => e.id > start);
    assert.deepEqual(all.filter((e) => e.kind !== "push"), [], "only push events, no 'recovered' duplicates");
    for (const ref of Object.keys(tips)) {
      // The events of one ref chain from its first value to git's tip, each move once.
      const evs = all.filter((e) => e.ref === ref);
      const byOld = new Map();
      for (const e of evs) {
        assert.ok(!byOld.has(e.old), `${ref}: two events move it from ${e.old}: ${JSON.stringify(evs)}`);
        byOld.set(e.old, e);
      }
      const news = new Set(evs.map((e) => e.new));
      const firsts = evs.filter((e) => !news.has(e.old));
      assert.equal(firsts.length, 1, `${ref}: one start: ${JSON.stringify(evs)}`);
      let v = firsts[0].old;
      let n = 0;
      while (byOld.has(v)) {
        v = byOld.get(v).new;
        n++;
      }
      assert.equal(n, evs.length, `${ref}: every event on the chain`);
      assert.equal(v, tips[ref], `${ref}: the chain ends at git's tip`);
    }
    assert.equal(all.filter((e) => e.ref === "refs/heads/main").length, mainMoves, "one event per move of main");
    // Nothing left for a check to find later: the recorded refs are git's.
    const head = await api(srv, "GET", `/api/models/${repo}/revision/main`, { token: tok });
    assert.equal(head.json.sha, tips["refs/heads/main"]);
  } finally {
    if (process.env.KEEPLOG) spawnSync("cp", [path.join(srv.dataDir, "server.log"), process.env.KEEPLOG]);
    await srv.stop();
  }
});
