// Discussions and pull requests (docs/governance.md): open a discussion or a PR, comment,
// edit and hide comments, rename, change status, commits pushed to refs/pr/N (commit API
// with @huggingface/hub and git push), merge; the details call lists every event in order
// in the shapes huggingface_hub deserializes; list filters and paging shape; permissions
// (private repos 404 to outsiders, hide needs write); spine events for the webhooks
// consumer; the Community tab in a real browser.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { uploadFiles, commit as hubCommit } from "@huggingface/hub";
import { isolatedGitEnv } from "./lib/gitenv.mjs";
import { startServer } from "./lib/server.mjs";

let server;
let admin;
let owner; // acme admin
let writer; // acme writer
let contrib; // acme contributor
let reader; // another user, no org
let readTok; // reader's read-only token
let work;
let gitEnv;
const REPO = "acme/talk";
const PRIV = "acme/secret";
const PASSWORD = "correct horse battery staple";

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

const D = (repo, rest = "") => `/api/models/${repo}/discussions${rest}`;

function git(args, { cwd = work, ok = true } = {}) {
  const r = spawnSync("git", args, { cwd, env: gitEnv, encoding: "utf8", timeout: 60000 });
  if (r.error) throw r.error;
  if (/Sanitizer|runtime error:/.test(r.stderr)) throw new Error(`sanitizer report:\n${r.stderr}`);
  if (ok && r.status !== 0) throw new Error(`git ${args.join(" ")} exited ${r.status}\n${r.stderr}`);
  return r;
}

async function createRepo(name, token, extra = {}) {
  const r = await api("POST", "/api/repos/create", { token, json: { name, organization: "acme", ...extra } });
  assert.equal(r.status, 200, r.text);
}

async function eventsOf(repo) {
  const r = await api("GET", `/api/admin/events?repo=${repo}&limit=64`, { token: admin });
  assert.equal(r.status, 200, r.text);
  return r.json.events;
}

before(async () => {
  server = await startServer();
  admin = server.adminToken;
  owner = server.makeUser("olga", "write");
  writer = server.makeUser("wanda", "write");
  contrib = server.makeUser("cleo", "write");
  reader = server.makeUser("rick", "write");
  readTok = server.makeToken("rick", "read");
  server.cli(["org", "add", "acme", "--owner", "olga"], { check: true });
  server.cli(["org", "member", "add", "acme", "wanda", "--role", "write"], { check: true });
  server.cli(["org", "member", "add", "acme", "cleo", "--role", "contributor"], { check: true });
  await createRepo("talk", owner);
  await uploadFiles({
    repo: REPO,
    accessToken: writer,
    hubUrl: server.url,
    commitTitle: "base",
    files: [{ path: "a.txt", content: new Blob(["a\n"]) }],
  });
  await createRepo("secret", owner, { private: true });
  work = mkdtempSync(path.join(tmpdir(), "modelhub-disc-e2e-"));
  gitEnv = isolatedGitEnv(path.join(work, "home"));
  git(["config", "--global", "init.defaultBranch", "main"]);
});

after(async () => {
  if (work) rmSync(work, { recursive: true, force: true });
  if (server) await server.stop();
});

test("a PR by commit: comment, rename, commits by the commit API and git push, merge; details list every event in order", async () => {
  // Opened by a contributor's commit (@huggingface/hub, isPullRequest).
  const res = await hubCommit({
    repo: REPO,
    accessToken: contrib,
    hubUrl: server.url,
    title: "Add b.txt",
    isPullRequest: true,
    operations: [{ operation: "addOrUpdate", path: "b.txt", content: new Blob(["b\n"]) }],
  });
  const num = Number(/\/discussions\/(\d+)$/.exec(res.pullRequestUrl)[1]);
  assert.equal(num, 1);
  const first = res.commit.oid;

  // A reader (no org role) comments on the public repo; Markdown is rendered safely.
  const c = await api("POST", D(REPO, `/${num}/comment`), {
    token: reader,
    json: { comment: "Looks **good**\n\n<script>alert(1)</script> [x](javascript:alert(1))" },
  });
  assert.equal(c.status, 200, c.text);
  const msg = c.json.newMessage;
  assert.equal(msg.type, "comment");
  assert.match(msg.id, /^[0-9a-f]{24}$/);
  assert.equal(msg.author.name, "rick");
  assert.equal(msg.data.edited, false);
  assert.equal(msg.data.hidden, false);
  assert.match(msg.data.latest.raw, /^Looks \*\*good\*\*/);
  assert.match(msg.data.latest.html, /<strong>good<\/strong>/);
  assert.doesNotMatch(msg.data.latest.html, /<script|javascript:/);
  assert.ok(Date.parse(msg.createdAt));

  // The author renames; the contributor can't rename someone else's... it is theirs: allowed.
  const t = await api("POST", D(REPO, `/${num}/title`), { token: contrib, json: { title: "Add b.txt and c.txt" } });
  assert.equal(t.status, 200, t.text);
  assert.equal(t.json.newTitle.type, "title-change");
  assert.deepEqual(t.json.newTitle.data, { from: "Add b.txt", to: "Add b.txt and c.txt" });
  const t2 = await api("POST", D(REPO, `/${num}/title`), { token: reader, json: { title: "hijack" } });
  assert.equal(t2.status, 403, t2.text);

  // A commit to refs/pr/1 through the commit API (@huggingface/hub, branch refs/pr/1).
  const second = await hubCommit({
    repo: REPO,
    accessToken: contrib,
    hubUrl: server.url,
    title: "Add c.txt",
    branch: `refs/pr/${num}`,
    operations: [{ operation: "addOrUpdate", path: "c.txt", content: new Blob(["c\n"]) }],
  });

  // And one by git push to refs/pr/1 (a writer).
  const url = `${server.url.replace("://", `://wanda:${writer}@`)}/${REPO}`;
  const dir = path.join(work, "clone");
  git(["clone", "-q", url, dir]);
  git(["fetch", "-q", "origin", `refs/pr/${num}:pr`], { cwd: dir });
  git(["checkout", "-q", "pr"], { cwd: dir });
  writeFileSync(path.join(dir, "d.txt"), "d\n");
  git(["add", "d.txt"], { cwd: dir });
  git(["-c", "user.name=wanda", "-c", "user.email=w@x", "commit", "-q", "-m", "Add d.txt"], { cwd: dir });
  git(["push", "-q", "origin", `HEAD:refs/pr/${num}`], { cwd: dir });
  const third = git(["rev-parse", "HEAD"], { cwd: dir }).stdout.trim();
  // Creating or deleting a PR ref by push is refused.
  const bad = git(["push", "origin", "HEAD:refs/pr/99"], { cwd: dir, ok: false });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /refs\/pr\/99/);

  // Details with the diff (huggingface_hub's get_discussion_details sends ?diff=1).
  let det = await api("GET", D(REPO, `/${num}?diff=1`), { token: reader });
  assert.equal(det.status, 200, det.text);
  assert.equal(det.json.title, "Add b.txt and c.txt");
  assert.equal(det.json.changes.base, "refs/heads/main");
  assert.deepEqual(det.json.filesWithConflicts, []);
  assert.match(det.json.diff, /^diff --git a\/b.txt b\/b.txt/m);
  assert.match(det.json.diff, /\+d/);

  // The merge by a writer, with a comment.
  const m = await api("POST", D(REPO, `/${num}/merge`), { token: writer, json: { comment: "Thanks!" } });
  assert.equal(m.status, 200, m.text);
  assert.equal(m.json.status, "merged");

  det = await api("GET", D(REPO, `/${num}?diff=1`), { token: reader });
  const ev = det.json.events;
  assert.deepEqual(
    ev.map((e) => e.type),
    ["commit", "comment", "title-change", "commit", "commit", "status-change", "comment"],
  );
  assert.deepEqual(ev[0].data, { subject: "Add b.txt", oid: first });
  assert.equal(ev[0].author.name, "cleo");
  assert.equal(ev[3].data.oid, second.commit.oid);
  assert.equal(ev[4].data.oid, third);
  assert.equal(ev[4].data.subject, "Add d.txt");
  assert.equal(ev[4].author.name, "wanda");
  assert.deepEqual(ev[5].data, { status: "merged" });
  assert.equal(ev[6].data.latest.raw, "Thanks!");
  assert.equal(det.json.status, "merged");
  assert.equal(det.json.changes.mergeCommitId, m.json.mergeCommitId);
  assert.match(det.json.diff, /b\/d.txt/, "a merged PR keeps its diff");
  for (const e of ev) assert.ok(e.id && e.createdAt && e.author, JSON.stringify(e));

  // A push to a merged PR's ref is refused.
  writeFileSync(path.join(dir, "e.txt"), "e\n");
  git(["add", "e.txt"], { cwd: dir });
  git(["-c", "user.name=wanda", "-c", "user.email=w@x", "commit", "-q", "-m", "late"], { cwd: dir });
  const late = git(["push", "origin", `HEAD:refs/pr/${num}`], { cwd: dir, ok: false });
  assert.notEqual(late.status, 0);
  assert.match(late.stderr, /merged/);
});

test("discussions and draft PRs opened by the API; edit and hide comments; status with a comment; list filters and paging shape", async () => {
  // huggingface_hub.create_discussion: {title, description, pullRequest}.
  const d = await api("POST", D(REPO), { token: reader, json: { title: "  Question  ", description: "How?", pullRequest: false } });
  assert.equal(d.status, 200, d.text);
  const dn = d.json.num;
  assert.equal(d.json.title, "Question");
  assert.equal(d.json.isPullRequest, false);
  assert.equal(d.json.status, "open");
  assert.equal(d.json.events.length, 1);
  const desc = d.json.events[0];
  assert.equal(desc.type, "comment");
  assert.equal(desc.data.latest.raw, "How?");

  // A read-only token and anonymous callers cannot post; readers cannot open PRs.
  assert.equal((await api("POST", D(REPO), { token: readTok, json: { title: "x" } })).status, 403);
  assert.equal((await api("POST", D(REPO), { json: { title: "x" } })).status, 401);
  assert.equal((await api("POST", D(REPO), { token: reader, json: { title: "x", pullRequest: true } })).status, 403);
  assert.equal((await api("POST", D(REPO), { token: reader, json: { title: "   " } })).status, 400);

  // A draft PR opened by the API (create_pull_request): refs/pr/N at main, its number next.
  const p = await api("POST", D(REPO), { token: contrib, json: { title: "Draft work", description: "WIP", pullRequest: true } });
  assert.equal(p.status, 200, p.text);
  const pn = p.json.num;
  assert.equal(pn, dn + 1);
  assert.equal(p.json.status, "draft");
  assert.equal(p.json.pullRequest.ref, `refs/pr/${pn}`);
  assert.ok(p.json.pullRequest.headCommit);

  // Edit: the author only; the edit is kept in the history.
  const editPath = D(REPO, `/${dn}/comment/${desc.id}/edit`);
  assert.equal((await api("POST", editPath, { token: writer, json: { content: "nope" } })).status, 403);
  const e = await api("POST", editPath, { token: reader, json: { content: "How does it work?" } });
  assert.equal(e.status, 200, e.text);
  assert.equal(e.json.updatedComment.data.edited, true);
  assert.equal(e.json.updatedComment.data.numEdits, 1);
  assert.equal(e.json.updatedComment.data.latest.raw, "How does it work?");
  assert.equal(e.json.updatedComment.data.history.length, 2);
  assert.deepEqual(e.json.updatedComment.data.editors, ["rick"]);

  // Hide: another reader's comment needs write (403 for a contributor), a writer may.
  const c = await api("POST", D(REPO, `/${dn}/comment`), { token: reader, json: { comment: "spam" } });
  const cid = c.json.newMessage.id;
  const hidePath = D(REPO, `/${dn}/comment/${cid}/hide`);
  assert.equal((await api("POST", hidePath, { token: contrib })).status, 403);
  const h = await api("POST", hidePath, { token: writer });
  assert.equal(h.status, 200, h.text);
  assert.equal(h.json.updatedComment.data.hidden, true);
  assert.equal(h.json.updatedComment.data.latest.raw, "");
  assert.equal((await api("POST", D(REPO, `/${dn}/comment/${cid}/edit`), { token: reader, json: { content: "x" } })).status, 409);
  assert.equal((await api("POST", D(REPO, `/${dn}/comment/${"0".repeat(24)}/hide`), { token: writer })).status, 404);

  // Status with a comment (change_discussion_status): someone else's discussion needs write.
  assert.equal((await api("POST", D(REPO, `/${dn}/status`), { token: contrib, json: { status: "closed" } })).status, 403);
  const s = await api("POST", D(REPO, `/${dn}/status`), { token: reader, json: { status: "closed", comment: "Answered" } });
  assert.equal(s.status, 200, s.text);
  assert.equal(s.json.newStatus.type, "status-change");
  assert.equal(s.json.newStatus.data.status, "closed");
  const det = await api("GET", D(REPO, `/${dn}`), { token: reader });
  assert.deepEqual(
    det.json.events.map((x) => x.type),
    ["comment", "comment", "status-change", "comment"],
  );

  // Listing: {discussions, count, start, numClosedDiscussions}; type, status, author filters.
  const list = async (q) => {
    const r = await api("GET", D(REPO, q), { token: reader });
    assert.equal(r.status, 200, r.text);
    return r.json;
  };
  const all = await list("");
  assert.equal(all.count, 3);
  assert.equal(all.start, 0);
  assert.equal(all.numClosedDiscussions, 2); // the closed discussion and the merged PR
  assert.deepEqual(all.discussions.map((x) => x.num), [pn, dn, 1]);
  assert.deepEqual((await list("?type=discussion")).discussions.map((x) => x.num), [dn]);
  assert.deepEqual((await list("?type=pull_request&status=open")).discussions.map((x) => x.num), [pn]);
  assert.deepEqual((await list("?status=closed")).discussions.map((x) => x.num), [dn, 1]);
  assert.deepEqual((await list("?author=rick")).discussions.map((x) => x.num), [dn]);
  assert.equal((await list("?p=1")).discussions.length, 0);
  assert.equal((await api("GET", D(REPO, "?type=bogus"), { token: reader })).status, 400);

  // PATCH aliases for title and status.
  const r = await api("PATCH", D(REPO, `/${pn}/title`), { token: contrib, json: { title: "Draft work 2" } });
  assert.equal(r.status, 200, r.text);

  // A draft cannot be merged; a commit to it joins its thread; its author publishes it.
  const dm = await api("POST", D(REPO, `/${pn}/merge`), { token: writer });
  assert.equal(dm.status, 409, dm.text);
  assert.match(dm.json.error, /draft/);
  const dc = await hubCommit({
    repo: REPO,
    accessToken: contrib,
    hubUrl: server.url,
    title: "Draft file",
    branch: `refs/pr/${pn}`,
    operations: [{ operation: "addOrUpdate", path: "draft.txt", content: new Blob(["draft\n"]) }],
  });
  const pub = await api("PATCH", D(REPO, `/${pn}/status`), { token: contrib, json: { status: "open" } });
  assert.equal(pub.status, 200, pub.text);
  const merged = await api("POST", D(REPO, `/${pn}/merge`), { token: writer });
  assert.equal(merged.status, 200, merged.text);
  const pd = await api("GET", D(REPO, `/${pn}`), { token: reader });
  assert.deepEqual(
    pd.json.events.map((x) => [x.type, x.data.status ?? x.data.oid ?? x.data.to ?? x.data.latest?.raw]),
    [
      ["comment", "WIP"],
      ["title-change", "Draft work 2"],
      ["commit", dc.commit.oid],
      ["status-change", "open"],
      ["status-change", "merged"],
    ],
  );
});

test("private repos: outsiders get 404 on every discussion route; members may post", async () => {
  const p = await api("POST", D(PRIV), { token: writer, json: { title: "Internal" } });
  assert.equal(p.status, 200, p.text);
  const n = p.json.num;
  for (const [method, rest, json] of [
    ["GET", "", undefined],
    ["GET", `/${n}`, undefined],
    ["POST", "", { title: "x" }],
    ["POST", `/${n}/comment`, { comment: "x" }],
    ["POST", `/${n}/title`, { title: "x" }],
    ["POST", `/${n}/status`, { status: "closed" }],
  ]) {
    const r = await api(method, D(PRIV, rest), { token: reader, json });
    assert.equal(r.status, 404, `${method} ${rest}: ${r.text}`);
    assert.equal(r.headers.get("x-error-code"), "RepoNotFound");
  }
  assert.equal((await api("GET", D(PRIV, `/${n}`), { token: contrib })).status, 200);
  assert.equal((await api("GET", D(REPO, "/999"), { token: reader })).status, 404);
});

test("gated repos: a PR's diff (API and web page) needs file access like the files themselves", async () => {
  await createRepo("gatedtalk", owner);
  await uploadFiles({
    repo: "acme/gatedtalk",
    accessToken: owner,
    hubUrl: server.url,
    commitTitle: "weights",
    files: [{ path: "w.txt", content: new Blob(["GATED-LINE-1\nGATED-LINE-2\nGATED-LINE-3\n"]) }],
  });
  const g = await api("PUT", "/api/models/acme/gatedtalk/settings", { token: owner, json: { gated: "manual" } });
  assert.equal(g.status, 200, g.text);
  const res = await hubCommit({
    repo: "acme/gatedtalk",
    accessToken: owner,
    hubUrl: server.url,
    title: "Tweak",
    isPullRequest: true,
    operations: [{ operation: "addOrUpdate", path: "w.txt", content: new Blob(["GATED-LINE-1\nGATED-LINE-2\nGATED-NEW\n"]) }],
  });
  const num = Number(/\/discussions\/(\d+)$/.exec(res.pullRequestUrl)[1]);
  // rick has no accepted access request: the files are closed to him...
  const file = await api("GET", "/acme/gatedtalk/resolve/main/w.txt", { token: reader });
  assert.equal(file.status, 403, file.text);
  // ...and so is the diff; the discussion itself stays visible (as on the Hub)
  const det = await api("GET", D("acme/gatedtalk", `/${num}?diff=1`), { token: reader });
  assert.equal(det.status, 200, det.text);
  assert.ok(!det.text.includes("GATED-"), det.text);
  const anon = await api("GET", D("acme/gatedtalk", `/${num}?diff=1`));
  assert.ok(!anon.text.includes("GATED-"), anon.text);
  const page = await api("GET", `/acme/gatedtalk/discussions/${num}`, { token: reader });
  assert.equal(page.status, 200);
  assert.ok(!page.text.includes("GATED-"), "the web page shows no diff");
  // the owner sees it
  const own = await api("GET", D("acme/gatedtalk", `/${num}?diff=1`), { token: owner });
  assert.match(own.json.diff, /GATED-NEW/);
});

test("a contributor may commit to their own open PR only, not to another user's or a closed one", async () => {
  const carl = server.makeUser("carl", "write");
  server.cli(["org", "member", "add", "acme", "carl", "--role", "contributor"], { check: true });
  const res = await hubCommit({
    repo: REPO,
    accessToken: contrib,
    hubUrl: server.url,
    title: "Cleo's PR",
    isPullRequest: true,
    operations: [{ operation: "addOrUpdate", path: "cleo.txt", content: new Blob(["cleo\n"]) }],
  });
  const num = Number(/\/discussions\/(\d+)$/.exec(res.pullRequestUrl)[1]);
  const commitAs = (token, file) =>
    hubCommit({
      repo: REPO,
      accessToken: token,
      hubUrl: server.url,
      title: `Add ${file}`,
      branch: `refs/pr/${num}`,
      operations: [{ operation: "addOrUpdate", path: file, content: new Blob(["x\n"]) }],
    }).then(
      () => 200,
      (e) => e.statusCode ?? String(e),
    );
  assert.equal(await commitAs(carl, "carl.txt"), 403, "another contributor cannot push into cleo's PR");
  assert.equal(await commitAs(contrib, "cleo2.txt"), 200, "the author can");
  assert.equal(await commitAs(writer, "wanda.txt"), 200, "a writer can");
  const st = await api("POST", D(REPO, `/${num}/status`), { token: contrib, json: { status: "closed" } });
  assert.equal(st.status, 200, st.text);
  assert.equal(await commitAs(contrib, "late.txt"), 403, "not into a closed PR");
  const det = await api("GET", D(REPO, `/${num}?diff=1`), { token: writer });
  assert.ok(!/carl\.txt|late\.txt/.test(det.json.diff), det.json.diff);
});

test("every change is an event on the spine with {num, action, ...} details and audited", async () => {
  const repo = "acme/spine-talk";
  await createRepo("spine-talk", owner);
  const d = await api("POST", `/api/models/${repo}/discussions`, { token: reader, json: { title: "Hi" } });
  const n = d.json.num;
  const c = await api("POST", `/api/models/${repo}/discussions/${n}/comment`, { token: reader, json: { comment: "one" } });
  const cid = c.json.newMessage.id;
  await api("POST", `/api/models/${repo}/discussions/${n}/comment/${cid}/edit`, { token: reader, json: { content: "two" } });
  await api("POST", `/api/models/${repo}/discussions/${n}/comment/${cid}/hide`, { token: writer });
  await api("POST", `/api/models/${repo}/discussions/${n}/title`, { token: reader, json: { title: "Hello" } });
  await api("POST", `/api/models/${repo}/discussions/${n}/status`, { token: writer, json: { status: "closed" } });
  const evs = (await eventsOf(repo)).filter((e) => e.kind === "discussion" || e.kind === "comment").reverse();
  const det = (e) => (typeof e.details === "string" ? JSON.parse(e.details) : e.details);
  assert.deepEqual(
    evs.map((e) => [e.kind, det(e)]),
    [
      ["discussion", { num: n, action: "create", isPullRequest: false }],
      ["comment", { num: n, comment: cid, action: "create" }],
      ["comment", { num: n, comment: cid, action: "update" }],
      ["comment", { num: n, comment: cid, action: "update" }],
      ["discussion", { num: n, action: "update", isPullRequest: false }],
      ["discussion", { num: n, action: "update", status: "closed", isPullRequest: false }],
    ],
  );
  assert.equal(evs[3].actor, "wanda");
  const audit = await api("GET", `/api/admin/audit-log?limit=500`, { token: admin });
  assert.equal(audit.status, 200, audit.text);
  const actions = audit.json.map((a) => a.action);
  for (const a of ["discussion.create", "discussion.comment", "discussion.comment.edit", "discussion.comment.hide", "discussion.title", "discussion.status"])
    assert.ok(actions.includes(a), `audit has ${a}: ${actions}`);
});

test("Community tab in a browser: list, thread, comment form, PR diff and merge button", async (t) => {
  let chromium;
  try {
    ({ chromium } = await import("playwright-core"));
  } catch {
    t.skip("playwright-core not installed");
    return;
  }
  // A writer of acme who signs in with a password.
  const a = spawnSync(server.bin, ["--data", server.dataDir, "user", "add", "wendy", "--password-stdin"], {
    env: server.cliEnv,
    input: PASSWORD + "\n",
    encoding: "utf8",
  });
  assert.equal(a.status, 0, a.stderr);
  server.cli(["org", "member", "add", "acme", "wendy", "--role", "write"], { check: true });
  const user = "wendy";
  // An open PR with a change, opened by commit.
  const pr = await hubCommit({
    repo: REPO,
    accessToken: contrib,
    hubUrl: server.url,
    title: "Browser PR",
    isPullRequest: true,
    operations: [{ operation: "addOrUpdate", path: "web.txt", content: new Blob(["from the web test\n"]) }],
  });
  const num = Number(/\/discussions\/(\d+)$/.exec(pr.pullRequestUrl)[1]);
  const profile = mkdtempSync(path.join(tmpdir(), "modelhub-disc-chromium-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
  try {
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    await page.goto(server.url + "/login");
    await page.fill("#username", user);
    await page.fill("#password", PASSWORD);
    await Promise.all([page.waitForURL(server.url + "/"), page.click("main button[type=submit]")]);

    await page.goto(`${server.url}/${REPO}`);
    await page.click("nav.tabs >> text=Community");
    await page.locator("#community").waitFor();
    assert.ok(await page.locator(`text=#${num}`).count());

    // Open a discussion from the form.
    await page.fill("#new-discussion input[name=title]", "Opened in the browser");
    await page.fill("#new-discussion textarea[name=description]", "Some *text* <img src=x onerror=\"window.pwned=1\">");
    await Promise.all([page.waitForURL(/\/discussions\/\d+$/), page.click("#new-discussion button[type=submit]")]);
    await page.locator("h1", { hasText: "Opened in the browser" }).waitFor();
    assert.equal(await page.locator(".comment em").first().textContent(), "text");
    assert.equal(await page.evaluate(() => window.pwned), undefined);

    // Comment through the form.
    await page.fill("#comment-form textarea", "A **browser** comment");
    await Promise.all([page.waitForLoadState(), page.click("#comment-form button[type=submit]")]);
    await page.locator(".comment strong", { hasText: "browser" }).waitFor();

    // The PR page shows its diff and a merge button for writers.
    await page.goto(`${server.url}/${REPO}/discussions/${num}`);
    await page.locator("#pr-diff", { hasText: "from the web test" }).waitFor();
    await Promise.all([page.waitForLoadState(), page.click("#actions button:has-text('Merge')")]);
    await page.locator(".badge", { hasText: "merged" }).first().waitFor();
    const det = await api("GET", D(REPO, `/${num}`), { token: reader });
    assert.equal(det.json.status, "merged");

    // A form post without the session's CSRF token is refused.
    const res = await page.evaluate(async (u) => {
      const f = await fetch(u, { method: "POST", body: new URLSearchParams({ comment: "x" }) });
      return f.status;
    }, `${server.url}/${REPO}/discussions/${num}/comment`);
    assert.equal(res, 403);
  } finally {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
