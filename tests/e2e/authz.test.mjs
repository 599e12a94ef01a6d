// Authorization of tokens beyond repos: org management, site-admin routes, token
// management and listings for read, write and fine-grained tokens (an identity × route
// matrix); web login limits, dummy hashing and post-login redirects; /metrics access;
// nosniff on downloads.
import { before, after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { startServer } from "./lib/server.mjs";

// This server: /metrics for site admins only (no address allowed), 3 failed logins per
// account (15 per address) within 10 minutes.
process.env.MODELHUB_METRICS_ALLOW = "";
process.env.MODELHUB_LOGIN_MAX_FAILURES = "3";
process.env.MODELHUB_LOGIN_WINDOW = "600";

let server, url;
const tok = {}; // identity → token (undefined = anonymous)
const PASSWORD = "correct horse battery staple";

function req(method, p, token, body, headers = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined && !h["Content-Type"]) h["Content-Type"] = "application/json";
  return fetch(`${url}${p}`, {
    method,
    headers: h,
    redirect: "manual",
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
}

function fine(user, name, scopes) {
  const r = server.cli(["token", "create", user, "--name", name, "--role", "fineGrained", "--scopes", JSON.stringify(scopes)], { check: true });
  return r.stdout.trim();
}

function addUserWithPassword(name) {
  const r = spawnSync(server.bin, ["--data", server.dataDir, "user", "add", name, "--password-stdin"], {
    env: server.cliEnv,
    input: PASSWORD + "\n",
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
}

async function metric(name) {
  // every node's counters, added up (several nodes: MODELHUB_E2E_NODES)
  const text = await server.metrics({ Authorization: `Bearer ${server.adminToken}` });
  const m = new RegExp(`^${name} (\\d+)`, "m").exec(text);
  assert.ok(m, `metric ${name}`);
  return Number(m[1]);
}

before(async () => {
  server = await startServer();
  url = server.url;
  const cli = (...a) => server.cli(a, { check: true });
  for (const u of ["owner1", "orgadmin", "member", "outsider", "target"]) cli("user", "add", u);
  cli("org", "add", "acme", "--owner", "owner1");
  cli("org", "member", "add", "acme", "orgadmin", "--role", "admin");
  cli("org", "member", "add", "acme", "member", "--role", "write");
  tok.outsider = server.makeToken("outsider", "write");
  tok.orgWrite = server.makeToken("orgadmin", "write", "oa-write");
  tok.orgRead = server.makeToken("orgadmin", "read", "oa-read");
  tok.orgRepoScoped = fine("orgadmin", "oa-repo", [{ type: "repo", name: "acme/priv", permission: "read" }]);
  tok.orgOrgRead = fine("orgadmin", "oa-org-read", [{ type: "org", name: "acme", permission: "read" }]);
  tok.orgOrgWrite = fine("orgadmin", "oa-org-write", [{ type: "namespace", name: "acme", permission: "write" }]);
  tok.orgOrgAdmin = fine("orgadmin", "oa-org-admin", [{ type: "org", name: "acme", permission: "admin" }]);
  tok.siteWrite = server.adminToken;
  tok.siteRead = server.makeToken("admin", "read", "site-read");
  tok.siteFine = fine("admin", "site-fine", [{ type: "namespace", name: "acme", permission: "admin" }]);

  const mk = async (name, type, priv, organization = "acme") => {
    const body = { name, type, private: priv };
    if (organization) body.organization = organization;
    const r = await req("POST", "/api/repos/create", tok.orgWrite, body);
    assert.equal(r.status, 200, await r.text());
  };
  await mk("pub", "model", false);
  await mk("priv", "model", true);
  await mk("priv2", "model", true);
  await mk("dpriv", "dataset", true);
  await mk("mine", "model", true, null);
  const r = await req("POST", "/api/models/acme/pub/commit/main", tok.orgWrite,
    [{ key: "header", value: { summary: "seed" } }, { key: "file", value: { path: "README.md", content: Buffer.from("# hi\n").toString("base64"), encoding: "base64" } }]
      .map((l) => JSON.stringify(l)).join("\n") + "\n",
    { "Content-Type": "application/x-ndjson" });
  assert.equal(r.status, 200, await r.text());
});

after(async () => {
  await server.stop();
});

// A token of the identity's own user to revoke (so every revoke targets something real).
const ownerOf = {
  outsider: "outsider", orgWrite: "orgadmin", orgRead: "orgadmin", orgRepoScoped: "orgadmin", orgOrgRead: "orgadmin",
  orgOrgWrite: "orgadmin", orgOrgAdmin: "orgadmin", siteWrite: "admin", siteRead: "admin", siteFine: "admin",
};
let victims = 0;
async function victimTokenId(id) {
  const user = ownerOf[id] || "target";
  const name = `victim-${victims++}`;
  server.makeToken(user, "read", name);
  const list = server.cli(["token", "list", user], { check: true }).stdout;
  const line = list.split("\n").find((l) => l.includes(` ${name} `));
  return line.trim().split(/\s+/)[0];
}

const routes = {
  membersList: async (t) => (await req("GET", "/api/organizations/acme/members", t)).status,
  memberAdd: async (t) => (await req("POST", "/api/organizations/acme/members/target", t, { role: "admin" })).status,
  memberRemove: async (t) => {
    server.cli(["org", "member", "add", "acme", "target", "--role", "read"], { check: true });
    return (await req("DELETE", "/api/organizations/acme/members/target", t)).status;
  },
  orgAudit: async (t) => (await req("GET", "/api/organizations/acme/audit-log", t)).status,
  siteAudit: async (t) => (await req("GET", "/api/admin/audit-log", t)).status,
  tokensList: async (t) => (await req("GET", "/api/settings/tokens", t)).status,
  tokenMint: async (t) => (await req("POST", "/api/settings/tokens", t, { name: `m${victims++}`, role: "write" })).status,
  tokenRevoke: async (t, id) => (await req("DELETE", `/api/settings/tokens/${await victimTokenId(id)}`, t)).status,
  othersPrivateRepo: async (t) => (await req("GET", "/api/models/orgadmin/mine", t)).status,
  metrics: async (t) => (await req("GET", "/metrics", t)).status,
};

// "a" allowed (2xx), "d" denied with 401/403, "h" hidden (404).
const IDS = ["anonymous", "outsider", "orgWrite", "orgRead", "orgRepoScoped", "orgOrgRead", "orgOrgWrite", "orgOrgAdmin", "siteWrite", "siteRead", "siteFine"];
//                                 anon out  oW   oR   oRep oOrR oOrW oOrA sW   sR   sF
const matrix = {
  membersList:       "d    h    a    a    d    a    a    a    a    h    h",
  memberAdd:         "d    h    a    d    d    d    d    a    a    h    h",
  memberRemove:      "d    h    a    d    d    d    d    a    a    h    h",
  orgAudit:          "d    h    a    d    d    d    d    a    a    h    h",
  siteAudit:         "d    d    d    d    d    d    d    d    a    d    d",
  tokensList:        "d    a    a    d    d    d    d    d    a    d    d",
  tokenMint:         "d    a    a    d    d    d    d    d    a    d    d",
  tokenRevoke:       "d    a    a    d    d    d    d    d    a    d    d",
  othersPrivateRepo: "h    h    a    a    d    d    d    d    a    h    h",
  metrics:           "d    d    d    d    d    d    d    d    a    d    d",
};

describe("org, admin and token routes × identities", () => {
  for (const [route, line] of Object.entries(matrix)) {
    test(route, async () => {
      const want = line.trim().split(/\s+/);
      const got = [];
      for (let i = 0; i < IDS.length; i++) {
        const status = await routes[route](tok[IDS[i]], IDS[i]);
        const v = status >= 200 && status < 300 ? "a" : status === 404 ? "h" : status === 401 || status === 403 ? "d" : `?${status}`;
        got.push(v === want[i] ? v : `${v}(${status})`);
      }
      assert.deepEqual(got.map((g, i) => `${IDS[i]}:${g}`), want.map((w, i) => `${IDS[i]}:${w}`));
    });
  }

  test("a fine-grained token without an admin scope is told why", async () => {
    let r = await req("POST", "/api/organizations/acme/members/target", tok.orgOrgWrite, { role: "admin" });
    assert.equal(r.status, 403);
    assert.match(r.headers.get("x-error-message"), /permission admin/);
    r = await req("GET", "/api/organizations/acme/members", tok.orgRepoScoped);
    assert.equal(r.status, 403);
    assert.match(r.headers.get("x-error-message"), /scopes do not include the organization acme/);
    r = await req("POST", "/api/settings/tokens", tok.orgRead, { name: "x", role: "read" });
    assert.equal(r.status, 403);
    assert.match(r.headers.get("x-error-message"), /write token/);
    // the web tokens page neither
    for (const t of [tok.orgRead, tok.orgOrgAdmin]) assert.equal((await req("GET", "/settings/tokens", t)).status, 403);
    assert.equal((await req("GET", "/settings/tokens", tok.orgWrite)).status, 200);
  });

  test("a scope with permission admin is accepted at creation; an unknown one is not", async () => {
    let r = await req("POST", "/api/settings/tokens", tok.orgWrite, { name: "ok", role: "fineGrained", scopes: [{ type: "org", name: "acme", permission: "admin" }] });
    assert.equal(r.status, 200, await r.text());
    r = await req("POST", "/api/settings/tokens", tok.orgWrite, { name: "bad", role: "fineGrained", scopes: [{ type: "org", name: "acme", permission: "owner" }] });
    assert.equal(r.status, 400);
  });
});

describe("listings honour fine-grained scopes", () => {
  const ids = async (p, t) => {
    const r = await req("GET", p, t);
    assert.equal(r.status, 200, p);
    return (await r.json()).map((m) => m.id).sort();
  };

  test("a repo-scoped token lists only its private repo", async () => {
    assert.deepEqual(await ids("/api/models?author=acme", tok.orgWrite), ["acme/priv", "acme/priv2", "acme/pub"]);
    assert.deepEqual(await ids("/api/models?author=acme", tok.orgRepoScoped), ["acme/priv", "acme/pub"]);
    assert.deepEqual(await ids("/api/models?search=priv", tok.orgRepoScoped), ["acme/priv"]);
    assert.deepEqual(await ids("/api/models?search=mine", tok.orgRepoScoped), []);
    assert.deepEqual(await ids("/api/models", tok.orgRepoScoped), ["acme/priv", "acme/pub"]);
    assert.deepEqual(await ids("/api/datasets", tok.orgRepoScoped), []);
    assert.deepEqual(await ids("/api/datasets", tok.orgWrite), ["acme/dpriv"]);
  });

  test("a namespace-scoped token lists that namespace's private repos only", async () => {
    assert.deepEqual(await ids("/api/models", tok.orgOrgRead), ["acme/priv", "acme/priv2", "acme/pub"]);
    assert.deepEqual(await ids("/api/models?author=orgadmin", tok.orgOrgRead), []);
    assert.deepEqual(await ids("/api/models?author=orgadmin", tok.orgWrite), ["orgadmin/mine"]);
    assert.deepEqual(await ids("/api/datasets", tok.orgOrgRead), ["acme/dpriv"]);
  });

  test("a site admin's read or fine-grained token does not list others' private repos", async () => {
    assert.deepEqual(await ids("/api/models?author=orgadmin", tok.siteWrite), ["orgadmin/mine"]);
    assert.deepEqual(await ids("/api/models?author=orgadmin", tok.siteRead), []);
    assert.deepEqual(await ids("/api/models?author=acme", tok.siteFine), ["acme/pub"]);
  });

  test("web search and profile pages too", async () => {
    let html = await (await req("GET", "/models?search=priv", tok.orgRepoScoped)).text();
    assert.ok(html.includes("acme/priv"), "in scope");
    assert.ok(!html.includes("acme/priv2"), "out of scope");
    html = await (await req("GET", "/orgadmin", tok.orgRepoScoped)).text();
    assert.ok(!html.includes("orgadmin/mine"));
    html = await (await req("GET", "/orgadmin", tok.orgWrite)).text();
    assert.ok(html.includes("orgadmin/mine"));
  });
});

describe("downloads", () => {
  test("resolve and raw say nosniff", async () => {
    for (const p of ["/acme/pub/resolve/main/README.md", "/acme/pub/raw/main/README.md"]) {
      const r = await req("GET", p);
      assert.equal(r.status, 200, p);
      assert.equal(r.headers.get("x-content-type-options"), "nosniff", p);
      await r.arrayBuffer();
    }
  });
});

describe("web login", () => {
  before(() => {
    for (const u of ["carol", "dave", "erin"]) addUserWithPassword(u);
  });

  async function login(username, password, next = "/") {
    const page = await fetch(`${url}/login`);
    const cookie = /mh_login_csrf=([0-9a-f]{64})/.exec(page.headers.get("set-cookie"))[1];
    await page.text();
    const body = new URLSearchParams({ csrf: cookie, username, password, next }).toString();
    return fetch(`${url}/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Cookie: `mh_login_csrf=${cookie}` },
      body,
    });
  }

  test("post-login redirects stay on this site", async () => {
    const cases = {
      "/\t/evil.example": "/",
      "\t//evil.example": "/",
      "/\n/evil.example": "/",
      "//evil.example": "/",
      "/\\evil.example": "/",
      "/x\\y": "/",
      "https://evil.example/": "/",
      "/settings/tokens": "/settings/tokens",
      "/acme/pub?x=1": "/acme/pub?x=1",
    };
    for (const [next, want] of Object.entries(cases)) {
      const r = await login("dave", PASSWORD, next);
      assert.equal(r.status, 303, JSON.stringify(next));
      assert.equal(r.headers.get("location"), want, JSON.stringify(next));
    }
    // the login page does not carry a bad target into its form either
    const html = await (await fetch(`${url}/login?next=${encodeURIComponent("/\t/evil.example")}`)).text();
    assert.ok(!html.includes("evil.example"));
  });

  test("an unknown user costs a password hash, answered like a wrong password", async () => {
    const before = await metric("modelhub_login_dummy_hashes_total");
    const a = await login("nobody-here", "wrong");
    const b = await login("erin", "wrong");
    assert.equal(a.status, 401);
    assert.equal(b.status, 401);
    assert.equal(await metric("modelhub_login_dummy_hashes_total"), before + 1);
    const strip = (s) => s.replace(/value="[^"]*"/g, "");
    assert.equal(strip(await a.text()), strip(await b.text()));
  });

  test("failures are limited per account: 429 with Retry-After, then others still log in", async () => {
    for (let i = 0; i < 3; i++) assert.equal((await login("carol", `wrong-${i}`)).status, 401);
    const r = await login("carol", PASSWORD);
    assert.equal(r.status, 429);
    const ra = Number(r.headers.get("retry-after"));
    assert.ok(ra > 0 && ra <= 600, `Retry-After ${ra}`);
    assert.match(await r.text(), /Too many failed logins/);
    assert.equal((await login("dave", PASSWORD)).status, 303, "another account is not locked");
    assert.ok((await metric("modelhub_login_throttled_total")) >= 1);
  });

  test("failures are limited per client address", async () => {
    // 4 failures so far from this address (erin, nobody-here, carol ×3 minus the refused
    // attempt); 15 lock the address whatever the account.
    let locked = false;
    for (let i = 0; i < 20 && !locked; i++) {
      const r = await login(`spray-${i}`, "wrong");
      locked = r.status === 429;
      if (!locked) assert.equal(r.status, 401);
    }
    assert.ok(locked, "the address is throttled");
    const r = await login("dave", PASSWORD);
    assert.equal(r.status, 429);
    assert.ok(Number(r.headers.get("retry-after")) > 0);
  });
});
