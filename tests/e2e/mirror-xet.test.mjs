// Xet through the pull-through mirror (docs/mirror.md, "Xet files"): a file the upstream
// stores in Xet is pulled through the upstream's CAS and served from the mirror's own Xet
// store under the same Xet file hash (and as plain LFS bytes); clients never see the upstream.
// Mirrors run as one node (single flight is per process); with MODELHUB_E2E_NODES their
// upstreams run as several.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { downloadFile, uploadFiles } from "@huggingface/hub";
import { startServer } from "./lib/server.mjs";

const sha256 = (b) => createHash("sha256").update(b).digest("hex");
const DATA = Buffer.concat([randomBytes(2 * 1024 * 1024 + 333), Buffer.alloc(200 * 1024, 9)]);
const DATA2 = randomBytes(3 * 1024 * 1024 + 17);

let up, mirror, xetHash, xetHash2, upHost;

async function upHead(p) {
  const h = await fetch(`${up.url}/acme/xm/resolve/main/${p}`, {
    method: "HEAD",
    headers: { Authorization: `Bearer ${up.adminToken}` },
  });
  return h.headers.get("x-xet-hash");
}

/* Everything a client saw from the mirror: no upstream host in headers or bodies. */
function assertNoUpstream(text, what) {
  assert.ok(!text.includes(upHost), `${what} names the upstream: ${text.slice(0, 300)}`);
}

before(async () => {
  up = await startServer();
  upHost = new URL(up.url).host;
  up.cli(["org", "add", "acme", "--owner", "admin"], { check: true });
  const c = await fetch(`${up.url}/api/repos/create`, {
    method: "POST",
    headers: { Authorization: `Bearer ${up.adminToken}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "xm", organization: "acme" }),
  });
  assert.equal(c.status, 200, await c.text());
  await uploadFiles({
    repo: "acme/xm",
    accessToken: up.adminToken,
    hubUrl: up.url,
    useXet: true,
    files: [
      { path: "dir/x.bin", content: new Blob([DATA]) },
      { path: "y.bin", content: new Blob([DATA2]) },
    ],
  });
  xetHash = await upHead("dir/x.bin");
  xetHash2 = await upHead("y.bin");
  assert.match(xetHash ?? "", /^[0-9a-f]{64}$/, "stored in Xet upstream");
  assert.match(xetHash2 ?? "", /^[0-9a-f]{64}$/);
  mirror = await startServer({ nodes: 1, env: { MODELHUB_UPSTREAM: up.url, MODELHUB_UPSTREAM_TOKEN: up.adminToken } });
});

after(async () => {
  await mirror?.stop();
  await up?.stop();
});

test("a Xet file comes through upstream's CAS: plain bytes, then the mirror's own CAS under the same Xet hash", async () => {
  // Cold: a plain download (no Xet client) streams the file while it is pulled.
  const cold = await fetch(`${mirror.url}/acme/xm/resolve/main/dir/x.bin`);
  assert.equal(cold.status, 200);
  const coldBuf = Buffer.from(await cold.arrayBuffer());
  assert.ok(coldBuf.equals(DATA), "plain bytes identical");
  for (const [k, v] of cold.headers) assertNoUpstream(`${k}: ${v}`, "resolve header");

  // Stored in the mirror's Xet store under upstream's Xet file hash (a local LFS→Xet
  // conversion would chunk differently and give another hash).
  const head = await fetch(`${mirror.url}/acme/xm/resolve/main/dir/x.bin`, { method: "HEAD" });
  assert.equal(head.headers.get("x-xet-hash"), xetHash);
  for (const [k, v] of head.headers) assertNoUpstream(`${k}: ${v}`, "HEAD header");

  // @huggingface/hub with Xet: every URL it calls is on the mirror.
  const seen = [];
  const logFetch = async (input, init) => {
    const url = typeof input === "string" ? input : input.url ?? String(input);
    seen.push(url);
    const res = await fetch(input, init);
    const copy = res.clone();
    const ct = res.headers.get("content-type") || "";
    if (ct.includes("json")) assertNoUpstream(await copy.text(), `body of ${url}`);
    for (const [k, v] of res.headers) assertNoUpstream(`${k}: ${v}`, `header of ${url}`);
    return res;
  };
  const blob = await downloadFile({ repo: "acme/xm", path: "dir/x.bin", hubUrl: mirror.url, xet: true, fetch: logFetch });
  assert.equal(blob.constructor.name, "XetBlob");
  assert.ok(Buffer.from(await blob.arrayBuffer()).equals(DATA), "Xet client bytes identical");
  assert.ok(seen.some((u) => /\/v\d\/reconstructions\//.test(u)), JSON.stringify(seen));
  for (const u of seen) assert.ok(u.startsWith(mirror.url), `client called ${u}`);

  // git-lfs style: the batch answer points at the mirror, the bytes are the same.
  const res = await fetch(`${mirror.url}/acme/xm.git/info/lfs/objects/batch`, {
    method: "POST",
    headers: { Accept: "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json" },
    body: JSON.stringify({ operation: "download", transfers: ["basic"], objects: [{ oid: sha256(DATA), size: DATA.length }] }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assertNoUpstream(text, "LFS batch");
  const dl = JSON.parse(text).objects[0].actions.download;
  const got = await fetch(dl.href, { headers: dl.header || {} });
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(DATA), "LFS bytes identical");
});

test("concurrent cold readers of a Xet file share one pull and all get the bytes", async () => {
  const reads = await Promise.all(
    Array.from({ length: 4 }, () => fetch(`${mirror.url}/acme/xm/resolve/main/y.bin`).then(async (r) => [r.status, Buffer.from(await r.arrayBuffer())])),
  );
  for (const [st, buf] of reads) {
    assert.equal(st, 200);
    assert.ok(buf.equals(DATA2));
  }
  const head = await fetch(`${mirror.url}/acme/xm/resolve/main/y.bin`, { method: "HEAD" });
  assert.equal(head.headers.get("x-xet-hash"), xetHash2);
  const m = await (await fetch(`${mirror.url}/metrics`)).text();
  assert.equal(Number(/^modelhub_mirror_misses_total (\d+)/m.exec(m)[1]), 2, "one pull per file");
});

test("upstream's CAS failing before the first byte: the file comes as plain LFS bytes instead", async () => {
  const http = await import("node:http");
  const t = new URL(up.url);
  const log = [];
  const proxy = http.createServer((req, res) => {
    log.push(req.url);
    if (req.url.includes("/xet-read-token/")) {
      res.writeHead(503, { "Content-Type": "text/plain" });
      return res.end("CAS down");
    }
    const fwd = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    fwd.on("error", () => res.socket.destroy());
    req.pipe(fwd);
  });
  await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
  const purl = `http://127.0.0.1:${proxy.address().port}`;
  const m2 = await startServer({ nodes: 1, env: { MODELHUB_UPSTREAM: purl, MODELHUB_UPSTREAM_TOKEN: up.adminToken } });
  try {
    const r = await fetch(`${m2.url}/acme/xm/resolve/main/dir/x.bin`);
    assert.equal(r.status, 200);
    assert.ok(Buffer.from(await r.arrayBuffer()).equals(DATA), "plain bytes identical");
    assert.ok(log.some((u) => u.includes("/xet-read-token/")), "the Xet pull was tried");
    assert.ok(log.some((u) => u.includes("/info/lfs/objects/batch")), "then the LFS path");
  } finally {
    await m2.stop();
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
  }
});
