// Enterprise registry: permission matrix (identities × operations × repo kinds), gated
// access, fine-grained tokens, org members API, audit log and its verification.
import { before, after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";
import { downloadFile } from "@huggingface/hub";
import { startServer } from "./lib/server.mjs";

let server, url, admin;
const tok = {}; // identity → token (undefined = anonymous)
const home = mkdtempSync(path.join(tmpdir(), "mh-ent-home-"));
const sha256 = (b) => createHash("sha256").update(b).digest("hex");

function req(method, p, token, body, headers = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined && !h["Content-Type"]) h["Content-Type"] = "application/json";
  return fetch(`${url}${p}`, {
    method,
    headers: h,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
}

function git(args, cwd) {
  return spawnSync("git", args, {
    cwd,
    encoding: "utf8",
    env: { ...process.env, HOME: home, GIT_CONFIG_NOSYSTEM: "1", GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "true" },
    timeout: 60000,
  });
}

function gitUrl(repo, token) {
  const u = new URL(url);
  return token ? `http://user:${token}@${u.host}/${repo}` : `http://${u.host}/${repo}`;
}

const ndjson = (lines) => lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
const commitBody = (p) =>
  ndjson([
    { key: "header", value: { summary: `add ${p}` } },
    { key: "file", value: { path: p, content: Buffer.from(p).toString("base64"), encoding: "base64" } },
  ]);
let counter = 0;

const LFS = { "Content-Type": "application/vnd.git-lfs+json", Accept: "application/vnd.git-lfs+json" };
const lfsObj = randomBytes(2048);

// Each operation returns the HTTP status (or 0/1 for git) for (identity token, repo id).
const ops = {
  info: async (t, r) => (await req("GET", `/api/models/${r}`, t)).status,
  tree: async (t, r) => (await req("GET", `/api/models/${r}/tree/main`, t)).status,
  resolve: async (t, r) => (await req("GET", `/${r}/resolve/main/README.md`, t)).status,
  lfsDownload: async (t, r) =>
    (await req("POST", `/${r}.git/info/lfs/objects/batch`, t, { operation: "download", objects: [{ oid: sha256(lfsObj), size: lfsObj.length }] }, LFS)).status,
  lfsUpload: async (t, r) =>
    (await req("POST", `/${r}.git/info/lfs/objects/batch`, t, { operation: "upload", objects: [{ oid: sha256(randomBytes(8)), size: 8 }] }, LFS)).status,
  commit: async (t, r) =>
    (await req("POST", `/api/models/${r}/commit/main`, t, commitBody(`c${counter++}.txt`), { "Content-Type": "application/x-ndjson" })).status,
  pr: async (t, r) =>
    (await req("POST", `/api/models/${r}/commit/main?create_pr=1`, t, commitBody(`p${counter++}.txt`), { "Content-Type": "application/x-ndjson" })).status,
  settings: async (t, r) => (await req("PUT", `/api/models/${r}/settings`, t, {})).status,
  gating: async (t, r) => (await req("GET", `/api/models/${r}/user-access-request/pending`, t)).status,
  clone: async (t, r) => {
    const d = mkdtempSync(path.join(tmpdir(), "mh-clone-"));
    const res = git(["clone", "-q", gitUrl(r, t), d + "/w"]);
    rmSync(d, { recursive: true, force: true });
    if (res.status === 0) return 200;
    if (/not found|404/i.test(res.stderr)) return 404;
    if (/Authentication failed|401|could not read Username/i.test(res.stderr)) return 401;
    return 403;
  },
};

const ALLOW = 200;
// Expected outcome per identity for each repo kind: "a" allow, "d" deny (any 401/403/404),
// "h" hidden (404 exactly, or 401 for the git/LFS challenge when anonymous).
const IDS = ["anonymous", "outsider", "reader", "contributor", "writer", "admin", "readToken", "writeToken", "scopedOther", "expired"];
//                       anon out  read cont writ adm  rTok wTok scop exp
const matrix = {
  public: {
    info:        "a    a    a    a    a    a    a    a    d    d",
    tree:        "a    a    a    a    a    a    a    a    d    d",
    resolve:     "a    a    a    a    a    a    a    a    d    d",
    lfsDownload: "a    a    a    a    a    a    a    a    d    d",
    lfsUpload:   "d    d    d    a    a    a    d    a    d    d",
    commit:      "d    d    d    d    a    a    d    a    d    d",
    pr:          "d    d    d    a    a    a    d    a    d    d",
    settings:    "d    d    d    d    d    a    d    d    d    d",
    gating:      "d    d    d    d    d    a    d    d    d    d",
    // git sends credentials only after a 401, so a public clone never shows the token.
    clone:       "a    a    a    a    a    a    a    a    a    a",
  },
  private: {
    info:        "h    h    a    a    a    a    a    a    d    d",
    tree:        "h    h    a    a    a    a    a    a    d    d",
    resolve:     "h    h    a    a    a    a    a    a    d    d",
    lfsDownload: "h    h    a    a    a    a    a    a    d    d",
    lfsUpload:   "h    h    d    a    a    a    d    a    d    d",
    commit:      "h    h    d    d    a    a    d    a    d    d",
    pr:          "h    h    d    a    a    a    d    a    d    d",
    settings:    "h    h    d    d    d    a    d    d    d    d",
    gating:      "h    h    d    d    d    a    d    d    d    d",
    clone:       "d    h    a    a    a    a    a    a    d    d",
  },
  gated: {
    info:        "a    a    a    a    a    a    a    a    d    d",
    tree:        "d    d    a    a    a    a    a    a    d    d",
    resolve:     "d    d    a    a    a    a    a    a    d    d",
    lfsDownload: "d    d    a    a    a    a    a    a    d    d",
    lfsUpload:   "d    d    d    a    a    a    d    a    d    d",
    commit:      "d    d    d    d    a    a    d    a    d    d",
    pr:          "d    d    d    a    a    a    d    a    d    d",
    settings:    "d    d    d    d    d    a    d    d    d    d",
    gating:      "d    d    d    d    d    a    d    d    d    d",
    clone:       "d    d    a    a    a    a    a    a    d    d",
  },
};
const repoFor = { public: "acme/pub", private: "acme/priv", gated: "acme/gated" };

before(async () => {
  server = await startServer();
  url = server.url;
  admin = server.adminToken;
  const cli = (...a) => server.cli(a, { check: true });
  for (const u of ["owner1", "outsider", "reader", "contributor", "writer", "orgadmin"]) cli("user", "add", u);
  cli("org", "add", "acme", "--owner", "owner1");
  cli("org", "member", "add", "acme", "reader", "--role", "read");
  cli("org", "member", "add", "acme", "contributor", "--role", "contributor");
  cli("org", "member", "add", "acme", "writer", "--role", "write");
  cli("org", "member", "add", "acme", "orgadmin", "--role", "admin");
  tok.outsider = server.makeToken("outsider", "write");
  tok.reader = server.makeToken("reader", "write");
  tok.contributor = server.makeToken("contributor", "write");
  tok.writer = server.makeToken("writer", "write");
  tok.admin = server.makeToken("orgadmin", "write");
  tok.readToken = server.makeToken("writer", "read", "writer-read");
  tok.writeToken = server.makeToken("writer", "write", "writer-write2");
  tok.scopedOther = cli("token", "create", "writer", "--name", "scoped", "--role", "fineGrained", "--scopes",
    JSON.stringify([{ type: "repo", name: "acme/other", permission: "write" }])).stdout.trim();
  tok.expired = server.makeToken("writer", "write", "soon-expired");
  server.sql("UPDATE tokens SET expires_ms=1 WHERE name='soon-expired'");

  for (const [kind, r] of Object.entries(repoFor)) {
    const name = r.split("/")[1];
    let res = await req("POST", "/api/repos/create", tok.admin, { name, organization: "acme", private: kind === "private" });
    assert.equal(res.status, 200, await res.text());
    // README + an LFS object the download check can find
    res = await req("POST", `/${r}.git/info/lfs/objects/batch`, tok.admin, { operation: "upload", objects: [{ oid: sha256(lfsObj), size: lfsObj.length }] }, LFS);
    const o = (await res.json()).objects[0];
    if (o.actions) assert.equal((await fetch(o.actions.upload.href, { method: "PUT", body: lfsObj })).status, 200);
    res = await req("POST", `/api/models/${r}/commit/main`, tok.admin, ndjson([
      { key: "header", value: { summary: "seed" } },
      { key: "file", value: { path: "README.md", content: Buffer.from("# hi\n").toString("base64"), encoding: "base64" } },
      { key: "lfsFile", value: { path: "w.bin", algo: "sha256", oid: sha256(lfsObj), size: lfsObj.length } },
    ]), { "Content-Type": "application/x-ndjson" });
    assert.equal(res.status, 200, await res.text());
    if (kind === "gated") assert.equal((await req("PUT", `/api/models/${r}/settings`, tok.admin, { gated: "manual" })).status, 200);
  }
});

after(async () => {
  await server.stop();
  rmSync(home, { recursive: true, force: true });
});

describe("permission matrix", () => {
  for (const [kind, rows] of Object.entries(matrix)) {
    for (const [op, line] of Object.entries(rows)) {
      test(`${kind} × ${op}`, async () => {
        const want = line.trim().split(/\s+/);
        const got = [];
        for (let i = 0; i < IDS.length; i++) {
          const status = await ops[op](tok[IDS[i]], repoFor[kind]);
          let v = status >= 200 && status < 300 ? "a" : status === 404 ? "h" : "d";
          // git and git-lfs only send credentials after a 401, so anonymous callers get the
          // challenge where others get 404: the same "hidden" outcome.
          if (want[i] === "h" && IDS[i] === "anonymous" && status === 401 && (op === "clone" || op.startsWith("lfs"))) v = "h";
          got.push(v === want[i] ? v : `${v}(${status})`);
        }
        assert.deepEqual(
          got.map((g, i) => `${IDS[i]}:${g}`),
          want.map((w, i) => `${IDS[i]}:${w}`),
        );
      });
    }
  }

  test("no leak of a private repo's existence or metadata", async () => {
    for (const t of [undefined, tok.outsider]) {
      const a = await req("GET", "/api/models/acme/priv", t);
      const b = await req("GET", "/api/models/acme/does-not-exist", t);
      assert.equal(a.status, b.status);
      assert.equal(a.headers.get("x-error-code"), b.headers.get("x-error-code"));
      assert.equal(await a.text(), await b.text());
    }
  });

  test("scoped and read-only tokens get a clear message", async () => {
    let r = await req("GET", "/api/models/acme/pub/tree/main", tok.scopedOther);
    assert.equal(r.status, 403);
    assert.match(r.headers.get("x-error-message"), /scopes do not include acme\/pub/);
    r = await req("POST", "/api/models/acme/pub/commit/main", tok.readToken, commitBody("x.txt"), { "Content-Type": "application/x-ndjson" });
    assert.equal(r.status, 403);
    assert.match(r.headers.get("x-error-message"), /read-only/);
    r = await req("GET", "/api/whoami-v2", tok.expired);
    assert.equal(r.status, 401);
  });

  test("read-only push is refused with a message git prints", async () => {
    const d = mkdtempSync(path.join(tmpdir(), "mh-push-"));
    assert.equal(git(["clone", "-q", gitUrl("acme/pub", tok.writer), d + "/w"]).status, 0);
    writeFileSync(d + "/w/new.txt", "x");
    git(["add", "new.txt"], d + "/w");
    git(["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], d + "/w");
    const res = git(["push", gitUrl("acme/pub", tok.readToken), "HEAD:main"], d + "/w");
    assert.notEqual(res.status, 0);
    assert.match(res.stderr, /read-only|403|rights/i);
    const ok = git(["push", gitUrl("acme/pub", tok.writer), "HEAD:main"], d + "/w");
    assert.equal(ok.status, 0, ok.stderr);
    rmSync(d, { recursive: true, force: true });
  });
});

describe("gated access", () => {
  test("request, pending, accept, download; reject, refused", async () => {
    server.cli(["user", "add", "visitor"], { check: true });
    server.cli(["user", "add", "visitor2"], { check: true });
    const v = server.makeToken("visitor", "write");
    const v2 = server.makeToken("visitor2", "write");
    let r = await req("GET", "/acme/gated/resolve/main/README.md", v);
    assert.equal(r.status, 403);
    assert.equal(r.headers.get("x-error-code"), "GatedRepo");
    r = await req("GET", "/acme/gated/resolve/main/README.md");
    assert.equal(r.status, 401);
    assert.equal(r.headers.get("x-error-code"), "GatedRepo");
    // card and metadata stay visible
    r = await req("GET", "/api/models/acme/gated", v);
    assert.equal(r.status, 200);
    assert.equal((await r.json()).gated, "manual");
    r = await req("POST", "/api/models/acme/gated/ask-access", v, { reason: "research" });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).status, "pending");
    await req("POST", "/api/models/acme/gated/ask-access", v2, {});
    r = await req("GET", "/api/models/acme/gated/user-access-request/pending", tok.admin);
    const pending = await r.json();
    assert.deepEqual(pending.map((p) => p.user.user).sort(), ["visitor", "visitor2"]);
    assert.equal(pending.find((p) => p.user.user === "visitor").fields.reason, "research");
    assert.equal((await req("GET", "/acme/gated/resolve/main/README.md", v)).status, 403);
    r = await req("POST", "/api/models/acme/gated/user-access-request/handle", tok.admin, { user: "visitor", status: "accepted" });
    assert.equal(r.status, 200);
    r = await req("POST", "/api/models/acme/gated/user-access-request/handle", tok.admin, { user: "visitor2", status: "rejected", rejectionReason: "no" });
    assert.equal(r.status, 200);
    const blob = await downloadFile({ repo: "acme/gated", path: "README.md", accessToken: v, hubUrl: url });
    assert.equal(await blob.text(), "# hi\n");
    assert.equal((await req("GET", "/acme/gated/resolve/main/README.md", v2)).status, 403);
    r = await req("GET", "/api/models/acme/gated/user-access-request/accepted", tok.admin);
    assert.deepEqual((await r.json()).map((p) => p.user.user), ["visitor"]);
    // a non-admin cannot list or decide
    assert.equal((await req("GET", "/api/models/acme/gated/user-access-request/pending", v)).status, 403);
  });

  test("auto gating accepts on request", async () => {
    await req("POST", "/api/repos/create", tok.admin, { name: "auto", organization: "acme" });
    await req("PUT", "/api/models/acme/auto/settings", tok.admin, { gated: "auto" });
    server.cli(["user", "add", "visitor3"], { check: true });
    const v = server.makeToken("visitor3", "write");
    assert.equal((await req("GET", "/api/models/acme/auto/tree/main", v)).status, 403);
    const r = await req("POST", "/api/models/acme/auto/ask-access", v, {});
    assert.equal((await r.json()).status, "accepted");
    assert.equal((await req("GET", "/api/models/acme/auto/tree/main", v)).status, 200);
  });
});

describe("org members and tokens over the API", () => {
  test("members list, add, change and remove (admins only)", async () => {
    let r = await req("GET", "/api/organizations/acme/members", tok.reader);
    assert.equal(r.status, 200);
    const m = await r.json();
    assert.equal(m.find((x) => x.user === "writer").role, "write");
    r = await req("POST", "/api/organizations/acme/members/outsider", tok.writer, { role: "read" });
    assert.equal(r.status, 403);
    r = await req("POST", "/api/organizations/acme/members/outsider", tok.admin, { role: "read" });
    assert.equal(r.status, 200);
    r = await req("PUT", "/api/organizations/acme/members/outsider", tok.admin, { role: "write" });
    assert.equal((await r.json()).role, "write");
    assert.equal((await req("DELETE", "/api/organizations/acme/members/outsider", tok.admin)).status, 200);
    assert.equal((await req("GET", "/api/organizations/acme/members", tok.outsider)).status, 404);
  });

  test("create a fine-grained token, use it inside and outside its scope, revoke it", async () => {
    let r = await req("POST", "/api/settings/tokens", tok.writer, {
      name: "ci", role: "fineGrained", scopes: [{ type: "repo", name: "acme/pub", permission: "read" }],
    });
    assert.equal(r.status, 200);
    const t = await r.json();
    assert.match(t.token, /^hf_/);
    assert.equal((await req("GET", "/api/models/acme/pub/tree/main", t.token)).status, 200);
    assert.equal((await req("GET", "/api/models/acme/priv/tree/main", t.token)).status, 403);
    assert.equal((await req("POST", "/api/models/acme/pub/commit/main", t.token, commitBody("s.txt"), { "Content-Type": "application/x-ndjson" })).status, 403);
    const who = await (await req("GET", "/api/whoami-v2", t.token)).json();
    assert.equal(who.auth.accessToken.role, "fineGrained");
    const list = await (await req("GET", "/api/settings/tokens", tok.writer)).json();
    assert.ok(list.some((x) => x.id === t.id && x.lastUsedAt));
    assert.ok(!JSON.stringify(list).includes(t.token), "secrets are never listed");
    assert.equal((await req("DELETE", `/api/settings/tokens/${t.id}`, tok.outsider)).status, 404);
    assert.equal((await req("DELETE", `/api/settings/tokens/${t.id}`, tok.writer)).status, 200);
    assert.equal((await req("GET", "/api/models/acme/pub/tree/main", t.token)).status, 401);
    // a read token cannot mint tokens
    assert.equal((await req("POST", "/api/settings/tokens", tok.readToken, { name: "x", role: "write" })).status, 403);
  });
});

describe("audit log", () => {
  test("events appear with actor, token, ip; org admins read it; NDJSON export", async () => {
    let r = await req("GET", "/api/organizations/acme/audit-log?limit=500", tok.admin);
    assert.equal(r.status, 200);
    const ev = await r.json();
    const actions = new Set(ev.map((e) => e.action));
    for (const a of ["repo.create", "repo.commit", "repo.settings", "gate.request", "gate.decision", "org.member.add", "org.member.role", "org.member.remove", "repo.push"])
      assert.ok(actions.has(a), `missing ${a}`);
    const c = ev.find((e) => e.action === "repo.commit");
    assert.match(c.details.new, /^[0-9a-f]{40}$/);
    assert.equal(c.ip, "127.0.0.1");
    assert.match(c.tokenId, /^[0-9a-f]{24}$/);
    assert.equal((await req("GET", "/api/organizations/acme/audit-log", tok.writer)).status, 403);
    r = await req("GET", "/api/organizations/acme/audit-log?action=gate.&format=ndjson", tok.admin);
    const lines = (await r.text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.ok(lines.length >= 3 && lines.every((l) => l.action.startsWith("gate.")));
    r = await req("GET", "/api/admin/audit-log?action=token.", admin);
    assert.ok((await r.json()).some((e) => e.action === "token.create"));
    assert.equal((await req("GET", "/api/admin/audit-log", tok.writer)).status, 403);
    r = await req("GET", "/api/organizations/acme/audit-log?limit=2", tok.admin);
    assert.match(r.headers.get("link"), /cursor=\d+/);
  });

  test("the action filter is a literal, case-sensitive prefix (no LIKE wildcards)", async () => {
    const actions = async (a) => {
      const r = await req("GET", `/api/organizations/acme/audit-log?limit=500&action=${encodeURIComponent(a)}`, tok.admin);
      assert.equal(r.status, 200);
      return (await r.json()).map((e) => e.action);
    };
    const gate = await actions("gate.");
    assert.ok(gate.length >= 3 && gate.every((a) => a.startsWith("gate.")));
    assert.deepEqual(await actions("gate.request"), gate.filter((a) => a.startsWith("gate.request")));
    for (const a of ["gate_", "g%", "%", "_", "GATE.", "Gate.request"]) assert.deepEqual(await actions(a), [], a);
  });

  test("modelhub audit verify passes, then detects an edit, a deletion and a swap", async () => {
    const sql = server.sql;
    const verify = () => server.cli(["audit", "verify"]);
    let v = verify();
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /intact/);
    const backup = sql("SELECT id, details FROM audit_log WHERE id=3").split("|");
    sql("UPDATE audit_log SET details=replace(details, '}', ' }') WHERE id=3");
    v = verify();
    assert.equal(v.status, 1);
    assert.match(v.stderr, /entry 3 was modified/);
    sql(`UPDATE audit_log SET details='${backup.slice(1).join("|").replaceAll("'", "''")}' WHERE id=3`);
    assert.equal(verify().status, 0);
    // delete one in the middle
    sql("CREATE TABLE keep AS SELECT * FROM audit_log WHERE id=5; DELETE FROM audit_log WHERE id=5");
    v = verify();
    assert.equal(v.status, 1);
    assert.match(v.stderr, /entry 5 is missing/);
    sql("INSERT INTO audit_log SELECT * FROM keep; DROP TABLE keep");
    assert.equal(verify().status, 0);
    // swap two entries' contents
    sql(
      "CREATE TABLE a AS SELECT * FROM audit_log WHERE id IN (6,7);" +
        "UPDATE audit_log SET (ts_ms,actor,token,ip,action,ns,target,details,prev_hash,hash)=(SELECT ts_ms,actor,token,ip,action,ns,target,details,prev_hash,hash FROM a WHERE id=7) WHERE id=6;" +
        "UPDATE audit_log SET (ts_ms,actor,token,ip,action,ns,target,details,prev_hash,hash)=(SELECT ts_ms,actor,token,ip,action,ns,target,details,prev_hash,hash FROM a WHERE id=6) WHERE id=7;",
    );
    v = verify();
    assert.equal(v.status, 1);
    assert.match(v.stderr, /entry 6/);
    sql(
      "UPDATE audit_log SET (ts_ms,actor,token,ip,action,ns,target,details,prev_hash,hash)=(SELECT ts_ms,actor,token,ip,action,ns,target,details,prev_hash,hash FROM a WHERE id=6) WHERE id=6;" +
        "UPDATE audit_log SET (ts_ms,actor,token,ip,action,ns,target,details,prev_hash,hash)=(SELECT ts_ms,actor,token,ip,action,ns,target,details,prev_hash,hash FROM a WHERE id=7) WHERE id=7; DROP TABLE a;",
    );
    assert.equal(verify().status, 0);
    // removing the newest entry is caught by the head record
    sql("DELETE FROM audit_log WHERE id=(SELECT max(id) FROM audit_log)");
    v = verify();
    assert.equal(v.status, 1);
    assert.match(v.stderr, /newest entries were removed/);
  });
});
