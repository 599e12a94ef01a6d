// Governance (docs/governance.md): pull requests (create_pr, discussions list/details, merge,
// conflicts, status), named stages (refs/stages/*, history, admin-only moves, revision
// resolution through the API, /resolve and @huggingface/hub), protected branches and
// immutable tags (commit API, branch/tag API, git push through the pre-receive hook).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { downloadFile } from "@huggingface/hub";
import { isolatedGitEnv } from "./lib/gitenv.mjs";
import { startServer } from "./lib/server.mjs";

let server;
let admin; // site admin
let alice; // org contributor
let bob; // org writer
let carol; // org admin
let dave; // another contributor
let work;
let gitEnv;
const REPO = "acme/gov-model";

async function api(method, p, { token, json, headers = {}, body } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    body = JSON.stringify(json);
    h["Content-Type"] = "application/json";
  }
  const res = await fetch(server.url + p, { method, headers: h, body });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: parsed };
}

/** Raw NDJSON commit, as the Python client sends it. files: {path: text}. */
async function commit(token, files, { rev = "main", createPr = false, summary = "update" } = {}) {
  const lines = [{ key: "header", value: { summary, description: "" } }];
  for (const [p, content] of Object.entries(files)) {
    lines.push({
      key: "file",
      value: { path: p, content: Buffer.from(content).toString("base64"), encoding: "base64" },
    });
  }
  const q = createPr ? "?create_pr=1" : "";
  return api("POST", `/api/models/${REPO}/commit/${encodeURIComponent(rev)}${q}`, {
    token,
    headers: { "Content-Type": "application/x-ndjson" },
    body: lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
  });
}

async function openPr(token, files, summary) {
  const r = await commit(token, files, { createPr: true, summary });
  assert.equal(r.status, 200, r.text);
  const m = /\/discussions\/(\d+)$/.exec(r.json.pullRequestUrl);
  assert.ok(m, r.json.pullRequestUrl);
  return Number(m[1]);
}

async function resolve(rev, file) {
  const r = await fetch(`${server.url}/${REPO}/resolve/${encodeURIComponent(rev)}/${file}`, {
    headers: { Authorization: `Bearer ${admin}` },
  });
  return { status: r.status, text: await r.text(), commit: r.headers.get("x-repo-commit") };
}

async function head(branch = "main") {
  const r = await api("GET", `/api/models/${REPO}/revision/${branch}`, { token: admin });
  assert.equal(r.status, 200, r.text);
  return r.json.sha;
}

async function setProtections(json, token = carol) {
  const r = await api("PUT", `/api/models/${REPO}/protections`, { token, json });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

function git(args, { cwd = work, ok = true } = {}) {
  const r = spawnSync("git", args, { cwd, env: gitEnv, encoding: "utf8", timeout: 60000 });
  if (r.error) throw r.error;
  if (/Sanitizer|runtime error:/.test(r.stderr)) throw new Error(`sanitizer report:\n${r.stderr}`);
  if (ok && r.status !== 0) throw new Error(`git ${args.join(" ")} exited ${r.status}\n${r.stderr}`);
  return r;
}

before(async () => {
  server = await startServer();
  admin = server.adminToken;
  alice = server.makeUser("alice", "write");
  bob = server.makeUser("bob", "write");
  carol = server.makeUser("carol", "write");
  dave = server.makeUser("dave", "write");
  server.cli(["org", "add", "acme", "--owner", "carol"], { check: true });
  server.cli(["org", "member", "add", "acme", "alice", "--role", "contributor"], { check: true });
  server.cli(["org", "member", "add", "acme", "dave", "--role", "contributor"], { check: true });
  server.cli(["org", "member", "add", "acme", "bob", "--role", "write"], { check: true });
  server.cli(["org", "member", "add", "acme", "carol", "--role", "admin"], { check: true });
  const r = await api("POST", "/api/repos/create", {
    token: carol,
    json: { name: "gov-model", organization: "acme" },
  });
  assert.equal(r.status, 200, r.text);
  const c = await commit(bob, { "shared.txt": "base\n", "config.json": '{"v": 1}\n' });
  assert.equal(c.status, 200, c.text);

  work = mkdtempSync(path.join(tmpdir(), "modelhub-gov-e2e-"));
  const home = path.join(work, "home");
  gitEnv = isolatedGitEnv(home);
  git(["config", "--global", "init.defaultBranch", "main"]);
});

after(async () => {
  if (work) rmSync(work, { recursive: true, force: true });
  if (server) await server.stop();
});

test("a contributor's create_pr commit opens a PR listed with the §7.2 shape; a writer merges it", async () => {
  // Contributors cannot commit directly...
  const direct = await commit(alice, { "new.txt": "x" });
  assert.equal(direct.status, 403, direct.text);
  // ...but may open a pull request.
  const num = await openPr(alice, { "new.txt": "from alice\n" }, "Add new.txt");
  assert.equal(num, 1);

  const list = await api("GET", `/api/models/${REPO}/discussions`, { token: alice });
  assert.equal(list.status, 200, list.text);
  assert.equal(list.json.count, 1);
  assert.equal(list.json.start, 0);
  const d = list.json.discussions[0];
  assert.equal(d.num, 1);
  assert.equal(d.title, "Add new.txt");
  assert.equal(d.status, "open");
  assert.equal(d.isPullRequest, true);
  assert.deepEqual(d.repo, { name: REPO, type: "model" });
  assert.deepEqual(d.author, { name: "alice" });
  assert.match(d.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);

  // Filters.
  for (const [q, n] of [
    ["type=discussion", 0],
    ["type=pull_request", 1],
    ["status=closed", 0],
    ["status=open", 1],
    ["author=bob", 0],
    ["author=alice", 1],
    ["p=1", 1],
  ]) {
    const r = await api("GET", `/api/models/${REPO}/discussions?${q}`, { token: alice });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.count, n, q);
    if (q === "p=1") {
      assert.equal(r.json.start, 50);
      assert.equal(r.json.discussions.length, 0);
    }
  }
  assert.equal((await api("GET", `/api/models/${REPO}/discussions?type=bogus`, { token: alice })).status, 400);

  // Not on main yet; the PR ref resolves.
  assert.equal((await resolve("main", "new.txt")).status, 404);
  assert.equal((await resolve("refs/pr/1", "new.txt")).text, "from alice\n");

  const details = await api("GET", `/api/models/${REPO}/discussions/1`, { token: alice });
  assert.equal(details.status, 200, details.text);
  assert.equal(details.json.changes.base, "refs/heads/main");
  assert.deepEqual(details.json.filesWithConflicts, []);
  assert.equal(details.json.pullRequest.targetBranch, "main");
  assert.match(details.json.pullRequest.headCommit, /^[0-9a-f]{40}$/);

  // The contributor cannot merge.
  const denied = await api("POST", `/api/models/${REPO}/discussions/1/merge`, { token: alice });
  assert.equal(denied.status, 403, denied.text);

  const before = await head();
  const merged = await api("POST", `/api/models/${REPO}/discussions/1/merge`, { token: bob, json: {} });
  assert.equal(merged.status, 200, merged.text);
  assert.equal(merged.json.status, "merged");
  assert.equal(merged.json.fastForward, true);
  assert.equal(merged.json.previousCommit, before);
  assert.equal(merged.json.mergeCommitId, details.json.pullRequest.headCommit);
  assert.equal(await head(), merged.json.mergeCommitId);
  assert.equal((await resolve("main", "new.txt")).text, "from alice\n");

  const after = await api("GET", `/api/models/${REPO}/discussions/1`, { token: alice });
  assert.equal(after.json.status, "merged");
  assert.equal(after.json.changes.mergeCommitId, merged.json.mergeCommitId);
  assert.equal(after.json.mergedBy, "bob");

  const again = await api("POST", `/api/models/${REPO}/discussions/1/merge`, { token: bob });
  assert.equal(again.status, 409, again.text);
  const closedList = await api("GET", `/api/models/${REPO}/discussions?status=closed`, { token: alice });
  assert.equal(closedList.json.count, 1, "merged counts as closed");
  assert.equal((await api("GET", `/api/models/${REPO}/discussions/99`, { token: alice })).status, 404);
});

test("merges: a diverged PR gets a merge commit; a conflicting one answers 409 naming the files", async () => {
  const clean = await openPr(alice, { "other.txt": "other\n" }, "Add other.txt");
  const conflicting = await openPr(alice, { "shared.txt": "pr change\n" }, "Change shared.txt");
  // main moves on after both PRs branched off.
  const c = await commit(bob, { "shared.txt": "main change\n" });
  assert.equal(c.status, 200, c.text);

  const details = await api("GET", `/api/models/${REPO}/discussions/${conflicting}`, { token: alice });
  assert.deepEqual(details.json.filesWithConflicts, ["shared.txt"]);

  const m = await api("POST", `/api/models/${REPO}/discussions/${conflicting}/merge`, { token: bob });
  assert.equal(m.status, 409, m.text);
  assert.match(m.json.error, /conflict/i);
  assert.match(m.json.error, /shared\.txt/);
  assert.equal((await resolve("main", "shared.txt")).text, "main change\n", "nothing written");
  const still = await api("GET", `/api/models/${REPO}/discussions/${conflicting}`, { token: alice });
  assert.equal(still.json.status, "open");

  const before = await head();
  const ok = await api("POST", `/api/models/${REPO}/discussions/${clean}/merge`, { token: bob });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.fastForward, false);
  assert.equal(ok.json.previousCommit, before);
  assert.equal(await head(), ok.json.mergeCommitId);
  assert.equal((await resolve("main", "other.txt")).text, "other\n");
  assert.equal((await resolve("main", "shared.txt")).text, "main change\n");
  const log = await api("GET", `/api/models/${REPO}/commits/main?limit=1`, { token: bob });
  assert.match(log.json[0].title, new RegExp(`Merge pull request #${clean}`));

  // Status: another contributor may not close it, the author may, a writer may reopen it.
  const path = `/api/models/${REPO}/discussions/${conflicting}/status`;
  assert.equal((await api("POST", path, { token: dave, json: { status: "closed" } })).status, 403);
  const closed = await api("POST", path, { token: alice, json: { status: "closed" } });
  assert.equal(closed.status, 200, closed.text);
  assert.equal(closed.json.newStatus.type, "status-change");
  assert.equal(closed.json.newStatus.data.status, "closed");
  const closedMerge = await api("POST", `/api/models/${REPO}/discussions/${conflicting}/merge`, { token: bob });
  assert.equal(closedMerge.status, 409, closedMerge.text);
  const reopened = await api("POST", path, { token: bob, json: { status: "open" } });
  assert.equal(reopened.status, 200, reopened.text);
  assert.equal((await api("POST", path, { token: bob, json: { status: "merged" } })).status, 400);
});

test("stages: admins move them, they resolve like revisions, history says who, why and from where", async () => {
  const v1 = await head();
  const put = (token, json, name = "production") =>
    api("PUT", `/api/models/${REPO}/stages/${name}`, { token, json });

  const denied = await put(bob, { revision: "main", reason: "ship" });
  assert.equal(denied.status, 403, denied.text);
  assert.match(denied.json.error, /admin/);
  assert.equal((await put(carol, { revision: "main" }, "Prod")).status, 400);
  assert.equal((await put(carol, { revision: "no-such-branch" })).status, 404);

  const first = await put(carol, { revision: "main", reason: "release 1" });
  assert.equal(first.status, 200, first.text);
  assert.equal(first.json.commit, v1);
  assert.equal(first.json.previousCommit, null);
  assert.equal(first.json.updatedBy, "carol");

  // main moves on; production stays.
  const c = await commit(bob, { "config.json": '{"v": 2}\n' });
  assert.equal(c.status, 200, c.text);
  const prod = await resolve("production", "config.json");
  assert.equal(prod.status, 200);
  assert.equal(prod.text, '{"v": 1}\n');
  assert.equal(prod.commit, v1);
  assert.equal((await resolve("main", "config.json")).text, '{"v": 2}\n');
  const blob = await downloadFile({
    repo: { type: "model", name: REPO },
    path: "config.json",
    revision: "production",
    accessToken: alice,
    hubUrl: server.url,
  });
  assert.equal(await blob.text(), '{"v": 1}\n');
  const info = await api("GET", `/api/models/${REPO}/revision/production`, { token: alice });
  assert.equal(info.json.sha, v1);

  // A pinned move with a stale expectation fails; a correct one succeeds.
  const stale = await put(carol, { revision: "main", expectedCommit: "0".repeat(40) });
  assert.equal(stale.status, 412, stale.text);
  const v2 = await head();
  const second = await put(carol, { revision: v2, reason: "release 2", expectedCommit: v1 });
  assert.equal(second.status, 200, second.text);
  assert.equal(second.json.previousCommit, v1);
  assert.equal((await resolve("production", "config.json")).text, '{"v": 2}\n');

  const staging = await put(carol, { revision: v1, reason: "try" }, "staging");
  assert.equal(staging.status, 200, staging.text);

  const one = await api("GET", `/api/models/${REPO}/stages/production`, { token: alice });
  assert.equal(one.status, 200, one.text);
  assert.equal(one.json.commit, v2);
  assert.equal(one.json.history.length, 2);
  assert.deepEqual(
    one.json.history.map((h) => [h.commit, h.previousCommit, h.actor, h.reason]),
    [
      [v2, v1, "carol", "release 2"],
      [v1, null, "carol", "release 1"],
    ],
  );
  assert.match(one.json.history[0].date, /Z$/);

  const all = await api("GET", `/api/models/${REPO}/stages`, { token: alice });
  assert.equal(all.status, 200, all.text);
  assert.deepEqual(
    all.json.stages.map((s) => [s.name, s.commit, s.updatedBy]),
    [
      ["production", v2, "carol"],
      ["staging", v1, "carol"],
    ],
  );
  assert.equal((await api("GET", `/api/models/${REPO}/stages/nope`, { token: alice })).status, 404);
  // Stages are not branches: the commit API refuses them.
  assert.equal((await commit(bob, { "x.txt": "x" }, { rev: "production" })).status, 400);
  // Deleting a stage is a recorded move too.
  assert.equal((await api("DELETE", `/api/models/${REPO}/stages/staging`, { token: bob })).status, 403);
  const del = await api("DELETE", `/api/models/${REPO}/stages/staging`, { token: carol, json: { reason: "done" } });
  assert.equal(del.status, 200, del.text);
  assert.equal((await resolve("staging", "config.json")).status, 404);
  const gone = await api("GET", `/api/models/${REPO}/stages/staging`, { token: alice });
  assert.equal(gone.json.commit, null);
  assert.equal(gone.json.history[0].reason, "done");

  // stageApprovers: "write" lets writers move stages.
  await setProtections({ stageApprovers: "write" });
  const byWriter = await put(bob, { revision: v1, reason: "writer move" }, "staging");
  assert.equal(byWriter.status, 200, byWriter.text);
  assert.equal(byWriter.json.updatedBy, "bob");
  await setProtections({ stageApprovers: "admin" });
  assert.equal((await put(bob, { revision: v2 }, "staging")).status, 403);
});

test("protected branches and immutable tags through the API", async () => {
  assert.equal((await api("GET", `/api/models/${REPO}/protections`, { token: bob })).status, 403);
  assert.equal(
    (await api("PUT", `/api/models/${REPO}/protections`, { token: carol, json: { rules: [{ pattern: "" }] } })).status,
    400,
  );
  const set = await setProtections({
    rules: [{ pattern: "main", requirePullRequest: true }, { pattern: "release/*" }],
    immutableTags: true,
  });
  assert.deepEqual(set, {
    rules: [
      { pattern: "main", noForcePush: true, noDeletion: true, requirePullRequest: true },
      { pattern: "release/*", noForcePush: true, noDeletion: true, requirePullRequest: false },
    ],
    immutableTags: true,
    stageApprovers: "admin",
  });
  assert.deepEqual((await api("GET", `/api/models/${REPO}/protections`, { token: carol })).json, set);

  const direct = await commit(bob, { "direct.txt": "no" });
  assert.equal(direct.status, 403, direct.text);
  assert.match(direct.json.error, /Branch main is protected: open a pull request \(create_pr=1\)/);
  const direct2 = await commit(carol, { "direct.txt": "no" });
  assert.equal(direct2.status, 403, "admins too");

  const num = await openPr(bob, { "via-pr.txt": "yes\n" }, "Via PR");
  const m = await api("POST", `/api/models/${REPO}/discussions/${num}/merge`, { token: bob });
  assert.equal(m.status, 200, m.text);
  assert.equal((await resolve("main", "via-pr.txt")).text, "yes\n");

  // Branch deletion and overwrite.
  let r = await api("POST", `/api/models/${REPO}/branch/release%2F1`, { token: bob, json: {} });
  assert.equal(r.status, 200, r.text);
  r = await api("POST", `/api/models/${REPO}/branch/scratch`, { token: bob, json: {} });
  assert.equal(r.status, 200, r.text);
  r = await api("DELETE", `/api/models/${REPO}/branch/release%2F1`, { token: bob });
  assert.equal(r.status, 403, r.text);
  assert.match(r.json.error, /release\/1 is protected/);
  r = await api("POST", `/api/models/${REPO}/branch/release%2F1`, {
    token: bob,
    json: { startingPoint: "refs/pr/1", overwrite: true },
  });
  assert.equal(r.status, 403, r.text);
  r = await api("DELETE", `/api/models/${REPO}/branch/scratch`, { token: bob });
  assert.equal(r.status, 200, r.text);

  // Tags.
  r = await api("POST", `/api/models/${REPO}/tag/main`, { token: bob, json: { tag: "v1" } });
  assert.equal(r.status, 200, r.text);
  r = await api("DELETE", `/api/models/${REPO}/tag/v1`, { token: carol });
  assert.equal(r.status, 403, r.text);
  assert.match(r.json.error, /immutable/);
  r = await api("POST", `/api/models/${REPO}/tag/refs%2Fpr%2F1`, { token: bob, json: { tag: "v1" } });
  assert.equal(r.status, 409, r.text);
});

test("git push: protected branches and immutable tags are enforced by the pre-receive hook", async () => {
  const url = `http://hf_user:${bob}@${server.url.replace(/^http:\/\//, "")}/${REPO}`;
  const dir = path.join(work, "clone");
  git(["clone", "-q", url, dir]);
  const edit = (file, text) => {
    writeFileSync(path.join(dir, file), text);
    git(["add", "--", file], { cwd: dir });
    git(["commit", "-q", "-m", `edit ${file}`], { cwd: dir });
  };

  // requirePullRequest on main: a plain fast-forward push is refused.
  edit("pushed.txt", "one\n");
  let r = git(["push", "origin", "main"], { cwd: dir, ok: false });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /remote: .*refs\/heads\/main: branch 'main' is protected: direct pushes are not allowed/);
  assert.equal((await resolve("main", "pushed.txt")).status, 404);

  // Without requirePullRequest a fast-forward passes, a force push does not.
  await setProtections({ rules: [{ pattern: "main" }, { pattern: "release/*" }] });
  r = git(["push", "origin", "main"], { cwd: dir });
  assert.equal((await resolve("main", "pushed.txt")).text, "one\n");
  git(["reset", "-q", "--hard", "HEAD~1"], { cwd: dir });
  edit("rewritten.txt", "two\n");
  r = git(["push", "--force", "origin", "main"], { cwd: dir, ok: false });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /remote: .*branch 'main' is protected: force pushes \(non-fast-forward updates\) are not allowed/);
  assert.equal((await resolve("main", "pushed.txt")).text, "one\n");

  // Protected branch deletion.
  r = git(["push", "origin", "--delete", "release/1"], { cwd: dir, ok: false });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /branch 'release\/1' is protected: it cannot be deleted/);
  // Unprotected branches still take anything.
  git(["push", "-q", "origin", "HEAD:refs/heads/feature"], { cwd: dir });
  git(["push", "-q", "--force", "origin", "HEAD~1:refs/heads/feature"], { cwd: dir });
  git(["push", "-q", "origin", "--delete", "feature"], { cwd: dir });

  // Immutable tags: new tags are fine, moving or deleting one is not.
  git(["fetch", "-q", "--tags", "origin"], { cwd: dir });
  git(["tag", "v2"], { cwd: dir });
  git(["push", "-q", "origin", "v2"], { cwd: dir });
  git(["tag", "-f", "v1", "HEAD"], { cwd: dir });
  r = git(["push", "--force", "origin", "v1"], { cwd: dir, ok: false });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /refs\/tags\/v1: tags are immutable in this repository; it cannot be moved/);
  r = git(["push", "origin", "--delete", "v2"], { cwd: dir, ok: false });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /it cannot be deleted/);

  // Turning tag immutability off lets the admin clean up.
  await setProtections({ immutableTags: false });
  git(["push", "-q", "origin", "--delete", "v2"], { cwd: dir });
});

test("merges, stage moves and protection changes are in the audit log", async () => {
  const log = async (action) => {
    const r = await api("GET", `/api/organizations/acme/audit-log?action=${action}`, { token: carol });
    assert.equal(r.status, 200, r.text);
    return r.json.filter((e) => e.action === action);
  };
  const merges = await log("pr.merge");
  assert.ok(merges.length >= 3, JSON.stringify(merges));
  assert.equal(merges.at(-1).actor, "bob");
  assert.equal(merges.at(-1).target, `model:${REPO}`);
  assert.equal(merges.at(-1).details.num, 1);
  assert.match(merges.at(-1).details.from, /^[0-9a-f]{40}$/);
  assert.match(merges.at(-1).details.to, /^[0-9a-f]{40}$/);
  const moves = await log("stage.move");
  const release2 = moves.find((e) => e.details.reason === "release 2");
  assert.ok(release2, JSON.stringify(moves));
  assert.equal(release2.actor, "carol");
  assert.equal(release2.details.stage, "production");
  assert.match(release2.details.from, /^[0-9a-f]{40}$/);
  const prot = await log("repo.protection");
  assert.ok(prot.length >= 3);
  assert.ok("from" in prot[0].details && "to" in prot[0].details);
});

test("concurrent merges and commits on the same branch all land (CAS, retried)", async () => {
  const nums = [];
  for (let i = 0; i < 5; i++) nums.push(await openPr(alice, { [`race/pr-${i}.txt`]: `pr ${i}\n` }, `race ${i}`));
  const merges = nums.map((n) => api("POST", `/api/models/${REPO}/discussions/${n}/merge`, { token: bob }));
  const commits = [0, 1, 2, 3, 4].map((i) => commit(bob, { [`race/direct-${i}.txt`]: `direct ${i}\n` }));
  for (const r of await Promise.all([...merges, ...commits])) assert.equal(r.status, 200, r.text);
  for (let i = 0; i < 5; i++) {
    assert.equal((await resolve("main", `race/pr-${i}.txt`)).text, `pr ${i}\n`);
    assert.equal((await resolve("main", `race/direct-${i}.txt`)).text, `direct ${i}\n`);
  }
  const list = await api("GET", `/api/models/${REPO}/discussions?status=merged`, { token: alice });
  for (const n of nums) assert.equal(list.json.discussions.find((d) => d.num === n)?.status, "merged");
});
