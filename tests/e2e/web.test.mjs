// Web UI (docs/web.md) in a real browser: Debian's chromium driven by playwright-core,
// headless. Logs in, creates a repo through /new, uploads files through the API, then
// checks the rendered card (table cells present, a README <script> did not run, front
// matter not shown as text), the file browser, the text and safetensors viewers, a
// commit's diff, tokens (shown once, revoked), search with a facet and a sort, and that a
// private repo is a 404 page for a logged-out browser. Screenshots of every page go to a
// temp folder, printed at the start.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createRepo, uploadFiles } from "@huggingface/hub";
import { chromium } from "playwright-core";
import { startServer } from "./lib/server.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const PASSWORD = "correct horse battery staple";

let server, hubUrl, aliceToken, ctx, page, profileDir, shots;
let shotN = 0;

async function shot(p, name) {
  const file = path.join(shots, `${String(++shotN).padStart(2, "0")}-${name}.png`);
  await p.screenshot({ path: file, fullPage: true });
}

function safetensors(tensors) {
  const size = { F32: 4, BF16: 2, F16: 2 };
  const header = { __metadata__: { format: "pt" } };
  let off = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const n = t.shape.reduce((a, b) => a * b, 1) * size[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  // Tensor bytes with a pattern (not zeros), so a byte comparison of a download means something.
  const data = Buffer.alloc(off);
  for (let i = 0; i < off; i++) data[i] = (i * 31 + 7) & 0xff;
  return Buffer.concat([len, json, data]);
}
const MODEL_ST = safetensors({ "embeddings.weight": { dtype: "F32", shape: [16, 8] }, "classifier.bias": { dtype: "BF16", shape: [2] } });

async function upload(repo, files, summary) {
  await uploadFiles({
    repo,
    accessToken: aliceToken,
    hubUrl,
    commitTitle: summary,
    files: files.map(([p, c]) => ({ path: p, content: new Blob([c]) })),
  });
}

const README = `---
license: mit
pipeline_tag: text-classification
library_name: transformers
language:
- en
tags:
- web-ui-test
base_model: alice/base-model
model-index:
- name: web-demo
  results:
  - task: {type: text-classification}
    dataset: {type: imdb, name: IMDB}
    metrics:
    - {type: accuracy, name: Accuracy, value: 0.93}
---
# Web demo model

A model used by **the web UI test**. ~~Deprecated~~ See https://example.org for more.

| Metric | Score |
|--------|-------|
| alpha-cell | 0.91 |
| beta-cell | 0.87 |

- [x] trained
- [ ] evaluated

<script>window.pwned = 1; document.title = "pwned";</script>

<img src="x" onerror="window.pwned = 2">

Inline <script>window.pwned = 4</script> and [click me](javascript:window.pwned=3) and <a href="javascript:window.pwned=5">raw</a>.

\`\`\`python
print("hello")
\`\`\`
`;

before(async () => {
  shots = mkdtempSync(path.join(tmpdir(), "modelhub-web-shots-"));
  console.log(`# web screenshots: ${shots}`);
  server = await startServer();
  hubUrl = server.url;
  const r = spawnSync(server.bin, ["--data", server.dataDir, "user", "add", "alice", "--password-stdin"], {
    env: server.cliEnv,
    input: PASSWORD + "\n",
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  aliceToken = server.makeToken("alice", "write");
  profileDir = mkdtempSync(path.join(tmpdir(), "modelhub-chromium-"));
  ctx = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 860 },
  });
  page = ctx.pages()[0] ?? (await ctx.newPage());
});

after(async () => {
  await ctx?.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  await server?.stop();
});

test("home page renders and the login page is linked", async () => {
  const res = await page.goto(hubUrl + "/");
  assert.equal(res.status(), 200);
  assert.match(res.headers()["content-type"], /text\/html/);
  assert.match(res.headers()["content-security-policy"], /script-src 'self'/);
  await page.locator(".top-nav").getByRole("link", { name: "Log in" }).waitFor();
  await shot(page, "home-anonymous");
});

test("wrong password is refused, right password logs in with a safe cookie", async () => {
  await page.goto(hubUrl + "/login");
  await shot(page, "login");
  await page.fill("#username", "alice");
  await page.fill("#password", "wrong");
  await page.click("main button[type=submit]");
  await page.getByText("Invalid username or password").waitFor();
  await page.fill("#password", PASSWORD);
  await Promise.all([page.waitForURL(hubUrl + "/"), page.click("main button[type=submit]")]);
  await page.locator("summary", { hasText: "alice" }).waitFor();
  const cookie = (await ctx.cookies()).find((c) => c.name === "mh_session");
  assert.ok(cookie, "session cookie set");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Lax");
  assert.equal(cookie.secure, false, "plain http test server: no Secure flag");
  // The JSON API ignores the cookie for writes (no CSRF through the API).
  const api = await page.request.post(hubUrl + "/api/repos/create", {
    data: { name: "via-cookie", type: "model" },
  });
  assert.equal(api.status(), 401);
  // A form POST without the CSRF token is refused.
  const forged = await page.request.post(hubUrl + "/settings/tokens", {
    form: { name: "forged", role: "write" },
  });
  assert.equal(forged.status(), 403);
});

test("create a repo through /new, upload files through the API", async () => {
  await page.goto(hubUrl + "/new");
  await shot(page, "new-repo");
  await page.fill("#name", "web-demo");
  await Promise.all([page.waitForURL(hubUrl + "/alice/web-demo"), page.click("main button[type=submit]")]);
  await page.getByText("No card yet").waitFor();

  await createRepo({ repo: "alice/base-model", accessToken: aliceToken, hubUrl });
  await upload(
    "alice/web-demo",
    [
      ["README.md", README],
      ["config.json", JSON.stringify({ architectures: ["BertForSequenceClassification"], model_type: "bert" })],
      ["model.safetensors", MODEL_ST],
      ["notes.txt", "first line\nsecond line\n<b>not bold</b>\n"],
      ["docs/usage.md", "usage\n"],
    ],
    "Add model files",
  );
  await upload("alice/web-demo", [["notes.txt", "first line\nsecond line changed\n<b>not bold</b>\nthird line\n"]], "Update notes");
});

test("model card: markdown rendered, scripts inert, front matter as metadata", async () => {
  const res = await page.goto(hubUrl + "/alice/web-demo");
  assert.equal(res.status(), 200);
  const card = page.locator("#card");
  await card.waitFor();
  assert.equal(await card.locator("table td", { hasText: "alpha-cell" }).count(), 1);
  assert.equal(await card.locator("table td", { hasText: "0.87" }).count(), 1);
  assert.equal(await card.locator("del", { hasText: "Deprecated" }).count(), 1);
  assert.equal(await card.locator("input[type=checkbox]").count(), 2);
  assert.equal(await card.locator("a[href='https://example.org']").count(), 1);
  assert.equal(await card.locator("script").count(), 0);
  assert.equal(await card.locator("a[href^='javascript']").count(), 0);
  await card.getByText("click me").waitFor(); // the link text stays, its script URL does not
  assert.equal(await card.locator("img[onerror]").count(), 0);
  assert.equal(await page.evaluate(() => window.pwned), undefined, "README script did not run");
  assert.notEqual(await page.title(), "pwned");
  const text = await card.innerText();
  assert.ok(!/license: mit|pipeline_tag|model-index/.test(text), "front matter is not card text");
  assert.match(text, /Web demo model/);
  const side = page.locator("aside.side");
  await side.getByRole("link", { name: "mit" }).waitFor();
  await side.getByRole("link", { name: "text-classification" }).waitFor();
  await side.getByRole("link", { name: "transformers" }).waitFor();
  await side.getByText("Accuracy").waitFor();
  await side.getByText("F32").waitFor();
  await side.locator("#model-tree").getByRole("link", { name: "alice/base-model" }).waitFor();
  await shot(page, "model-card");
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, "model-card-phone");
  await page.setViewportSize({ width: 1280, height: 860 });
  // The base model's tree lists this one as a derived model.
  await page.goto(hubUrl + "/alice/base-model");
  await page.locator("#model-tree").getByRole("link", { name: "alice/web-demo" }).waitFor();
});

test("file browser: tree with sizes, LFS badge, last commits; text and safetensors views", async () => {
  const res = await page.goto(hubUrl + "/alice/web-demo/tree/main");
  assert.equal(res.status(), 200);
  const files = page.locator("#files");
  for (const n of ["docs", "README.md", "config.json", "model.safetensors", "notes.txt"])
    await files.getByRole("link", { name: n, exact: true }).waitFor();
  const st = files.locator("tr", { hasText: "model.safetensors" });
  assert.equal(await st.locator(".badge-lfs").count(), 1, "safetensors stored with LFS");
  assert.match(await files.locator("tr", { hasText: "notes.txt" }).innerText(), /Update notes/);
  await shot(page, "tree");

  await files.getByRole("link", { name: "docs", exact: true }).click();
  await page.waitForURL(/\/tree\/main\/docs$/);
  await page.locator("#files").getByRole("link", { name: "usage.md", exact: true }).waitFor();

  await page.goto(hubUrl + "/alice/web-demo/tree/main");
  await page.locator("#files").getByRole("link", { name: "notes.txt", exact: true }).click();
  await page.waitForURL(/\/blob\/main\/notes\.txt$/);
  const code = page.locator("#code");
  await code.locator("#L4").waitFor();
  assert.match(await code.innerText(), /<b>not bold<\/b>/, "file text shown escaped");
  assert.equal(await code.locator("b").count(), 0);
  await shot(page, "blob-text");

  await page.goto(hubUrl + "/alice/web-demo/blob/main/model.safetensors");
  const tensors = page.locator("#tensors");
  await tensors.locator("td", { hasText: "embeddings.weight" }).waitFor();
  assert.match(await tensors.innerText(), /\[16, 8\]/);
  assert.match(await tensors.innerText(), /BF16/);
  assert.match(await page.locator("#file-info").innerText(), /[0-9a-f]{64}/, "sha256 shown");
  const dl = await page.locator("#download").getAttribute("href");
  assert.match(dl, /\/alice\/web-demo\/resolve\/main\/model\.safetensors\?download=true$/);
  const got = await page.request.get(hubUrl + dl);
  assert.equal(got.status(), 200);
  const body = await got.body();
  assert.equal(body.length, MODEL_ST.length, "download link serves the whole file");
  assert.ok(body.equals(MODEL_ST), "download link serves the uploaded bytes");
  await shot(page, "blob-safetensors");
});

test("commit history and a commit's diff", async () => {
  await page.goto(hubUrl + "/alice/web-demo/commits/main");
  const list = page.locator("#commits");
  await list.getByText("Add model files").waitFor();
  await shot(page, "commits");
  await list.getByRole("link", { name: "Update notes" }).click();
  await page.waitForURL(/\/commit\/[0-9a-f]{40}$/);
  await page.locator("#commit h1", { hasText: "Update notes" }).waitFor();
  const added = page.locator("tr.d-add", { hasText: "third line" });
  await added.waitFor();
  await page.locator("tr.d-del", { hasText: "second line" }).waitFor();
  await shot(page, "commit-diff");
});

test("tokens: created and shown once, then revoked", async () => {
  await page.goto(hubUrl + "/settings/tokens");
  await page.fill("#tname", "browser-made");
  await page.check("input[name=role][value=write]");
  await page.click("form[action='/settings/tokens'] button[type=submit]");
  const box = page.locator("#new-token .token-once");
  await box.waitFor();
  const token = (await box.innerText()).trim();
  assert.match(token, /^hf_[A-Za-z0-9]{40}$/);
  await shot(page, "token-created");
  const who = await fetch(hubUrl + "/api/whoami-v2", { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(who.status, 200);
  await page.goto(hubUrl + "/settings/tokens");
  assert.ok(!(await page.content()).includes(token), "token never shown again");
  const row = page.locator("tr", { hasText: "browser-made" });
  await row.getByRole("button", { name: "Revoke" }).click();
  await page.getByText("Token revoked.").waitFor();
  await page.locator("tr", { hasText: "browser-made" }).locator(".badge", { hasText: "revoked" }).waitFor();
  await shot(page, "token-revoked");
  const again = await fetch(hubUrl + "/api/whoami-v2", { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(again.status, 401);
});

test("search: facet and sort", async () => {
  await createRepo({ repo: "alice/other-model", accessToken: aliceToken, hubUrl });
  await upload("alice/other-model", [["README.md", "---\nlicense: apache-2.0\npipeline_tag: text-generation\n---\n# Other\n"]], "card");
  await page.goto(hubUrl + "/models");
  const results = page.locator("#results");
  await results.getByText("alice/web-demo").waitFor();
  await results.getByText("alice/other-model").waitFor();
  const facet = page.locator("a.chip[data-facet=license]", { hasText: "mit" });
  assert.match(await facet.innerText(), /mit\s+1/);
  await facet.click();
  await page.waitForURL(/license=mit/);
  await results.getByText("alice/web-demo").waitFor();
  assert.equal(await results.getByText("alice/other-model").count(), 0);
  await shot(page, "search-facet");
  await Promise.all([page.waitForURL(/sort=likes/), page.selectOption("select[name=sort]", "likes")]);
  assert.match(page.url(), /license=mit/, "facet kept when sorting");
  await results.getByText("alice/web-demo").waitFor();
  await page.goto(hubUrl + "/models?search=other&sort=created");
  await results.getByText("alice/other-model").waitFor();
  assert.equal(await results.getByText("alice/web-demo").count(), 0);
});

test("settings: make a repo private; it is a 404 page for a logged-out browser", async () => {
  await createRepo({ repo: "alice/secret-model", accessToken: aliceToken, hubUrl });
  await page.goto(hubUrl + "/alice/secret-model/settings");
  await page.check("input[name=visibility][value=private]");
  await page.click("form[action$='/settings'] button[type=submit]");
  await page.getByText("Settings saved.").waitFor();
  await shot(page, "settings");
  const mine = await page.goto(hubUrl + "/alice/secret-model");
  assert.equal(mine.status(), 200);
  await page.locator(".badge-private").first().waitFor();

  // A second, fresh browser: no cookies at all.
  const other = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  const ap = await other.newPage();
  try {
    const res = await ap.goto(hubUrl + "/alice/secret-model");
    assert.equal(res.status(), 404);
    assert.match(res.headers()["content-type"], /text\/html/);
    await ap.getByText("Repository not found").waitFor();
    await shot(ap, "private-404");
    for (const p of ["/alice/secret-model/tree/main", "/alice/secret-model/commits/main", "/alice/secret-model/settings"])
      assert.equal((await ap.goto(hubUrl + p)).status(), 404, p);
    await ap.goto(hubUrl + "/models?search=secret");
    assert.equal(await ap.getByText("alice/secret-model").count(), 0);
    await ap.goto(hubUrl + "/alice");
    await ap.getByText("alice/web-demo").waitFor();
    assert.equal(await ap.getByText("alice/secret-model").count(), 0);
    await shot(ap, "profile-anonymous");
    const nf = await ap.goto(hubUrl + "/no/such/page/here");
    assert.equal(nf.status(), 404);
    await ap.getByText("Page not found").waitFor();
  } finally {
    await other.close();
  }
});

test("delete with typed-name confirmation, then log out", async () => {
  await page.goto(hubUrl + "/alice/secret-model/settings");
  await page.fill("input[name=confirm]", "alice/wrong");
  await page.click("form[action$='/delete'] button[type=submit]");
  await page.getByText("does not match").waitFor();
  await page.fill("input[name=confirm]", "alice/secret-model");
  await Promise.all([page.waitForURL(hubUrl + "/alice"), page.click("form[action$='/delete'] button[type=submit]")]);
  assert.equal((await page.goto(hubUrl + "/alice/secret-model")).status(), 404);
  await page.goto(hubUrl + "/");
  await page.locator("summary", { hasText: "alice" }).click();
  await Promise.all([page.waitForURL(hubUrl + "/"), page.getByRole("button", { name: "Log out" }).click()]);
  await page.locator(".top-nav").getByRole("link", { name: "Log in" }).waitFor();
  assert.equal((await page.goto(hubUrl + "/settings/tokens")).url().includes("/login"), true);
});
