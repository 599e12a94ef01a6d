// One error path (docs/architecture.md, "Errors"): every route declares its error style —
// Hub JSON, git-LFS JSON, git text, HTML page — and a failure is rendered once, after the
// handler returns, with the same status and X-Error-Code whatever the style. Plain fetch.
import { before, after, test } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./lib/server.mjs";

let server;
let hubUrl;
let token;

async function call(method, p, { headers = {}, body, auth = true } = {}) {
  const h = { ...headers };
  if (auth) h.Authorization = `Bearer ${token}`;
  const res = await fetch(hubUrl + p, { method, headers: h, body, redirect: "manual" });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, ctype: res.headers.get("content-type") || "" };
}

before(async () => {
  server = await startServer();
  hubUrl = server.url;
  token = server.adminToken;
  const r = await call("POST", "/api/repos/create", {
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: "errs", type: "model" }),
  });
  assert.equal(r.status, 200, r.text);
});

after(async () => {
  await server?.stop();
});

const lfsBatch = JSON.stringify({ operation: "download", transfers: ["basic"], objects: [] });

test("a missing repo renders in each route's style, with one status and X-Error-Code", async () => {
  // Hub JSON route
  const api = await call("GET", "/api/models/admin/missing");
  assert.equal(api.status, 404);
  assert.match(api.ctype, /^application\/json/);
  assert.equal(typeof JSON.parse(api.text).error, "string");
  assert.equal(api.headers.get("x-error-code"), "RepoNotFound");

  // git-LFS route: LFS JSON
  const lfs = await call("POST", "/admin/missing.git/info/lfs/objects/batch", {
    headers: { "Content-Type": "application/vnd.git-lfs+json", Accept: "application/vnd.git-lfs+json" },
    body: lfsBatch,
  });
  assert.equal(lfs.status, 404);
  assert.match(lfs.ctype, /^application\/vnd\.git-lfs\+json/);
  const lj = JSON.parse(lfs.text);
  assert.equal(typeof lj.message, "string");
  assert.ok(lj.message.length > 0);
  assert.equal(lfs.headers.get("x-error-code"), "RepoNotFound");

  // git smart-HTTP route: plain text git shows as "remote: …"
  const git = await call("GET", "/admin/missing.git/info/refs?service=git-upload-pack");
  assert.equal(git.status, 404);
  assert.match(git.ctype, /^text\/plain/);
  assert.ok(git.text.trim().length > 0 && !git.text.trim().startsWith("{"), git.text);
  assert.equal(git.headers.get("x-error-code"), "RepoNotFound");

  // web page: an HTML error page
  const web = await call("GET", "/admin/missing");
  assert.equal(web.status, 404);
  assert.match(web.ctype, /^text\/html/);
  assert.match(web.text, /<html/i);
  assert.match(web.text, /Repository not found/);
  assert.equal(web.headers.get("x-error-code"), "RepoNotFound");
});

test("handler failures: a missing revision is 404 RevisionNotFound on the API and on the page", async () => {
  const api = await call("GET", "/api/models/admin/errs/tree/nope");
  assert.equal(api.status, 404);
  assert.equal(api.headers.get("x-error-code"), "RevisionNotFound");
  const web = await call("GET", "/admin/errs/tree/nope");
  assert.equal(web.status, 404);
  assert.match(web.ctype, /^text\/html/);
  assert.match(web.text, /Revision not found/);
  assert.equal(web.headers.get("x-error-code"), "RevisionNotFound");
});

test("a body over the route's limit is 413 PayloadTooLarge in every style (a web form too, not 500)", async () => {
  const pad = "x".repeat(2 * 1024 * 1024); // past the 1 MiB JSON limit: refused unread
  const api = await call("POST", "/api/repos/create", {
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: "big", type: "model", pad }),
  });
  assert.equal(api.status, 413);
  assert.match(api.ctype, /^application\/json/);
  assert.equal(typeof JSON.parse(api.text).error, "string");
  assert.equal(api.headers.get("x-error-code"), "PayloadTooLarge");

  const lfs = await call("POST", "/admin/errs.git/info/lfs/objects/batch", {
    headers: { "Content-Type": "application/vnd.git-lfs+json", Accept: "application/vnd.git-lfs+json" },
    body: JSON.stringify({ operation: "download", objects: [], pad }),
  });
  assert.equal(lfs.status, 413);
  assert.match(lfs.ctype, /^application\/vnd\.git-lfs\+json/);
  assert.equal(typeof JSON.parse(lfs.text).message, "string");
  assert.equal(lfs.headers.get("x-error-code"), "PayloadTooLarge");

  // web forms: 64 KiB
  const web = await call("POST", "/login", {
    auth: false,
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: "username=" + "a".repeat(100 * 1024),
  });
  assert.equal(web.status, 413);
  assert.match(web.ctype, /^text\/html/);
  assert.match(web.text, /<html/i);
  assert.equal(web.headers.get("x-error-code"), "PayloadTooLarge");
});

test("unknown paths: /api/… answers Hub JSON, a page path an HTML 404", async () => {
  const api = await call("GET", "/api/nothing/here/at/all", { auth: false });
  assert.equal(api.status, 404);
  assert.match(api.ctype, /^application\/json/);
  assert.equal(typeof JSON.parse(api.text).error, "string");
  const page = await call("GET", "/no/such/page/here", { auth: false });
  assert.equal(page.status, 404);
  assert.match(page.ctype, /^text\/html/);
});
