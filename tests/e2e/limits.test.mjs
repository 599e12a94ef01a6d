// Resource limits against hostile clients (docs/architecture.md "Limits"): bodies are
// authorized before they are read, NDJSON commits stream, buffered bodies share a
// process-wide budget (503 + Retry-After past it), one address cannot take every
// connection, slow header senders are dropped, and gzip bombs to git are refused early.
// Everything runs on loopback with bounded loops; memory is read from /proc/<pid>/status.
import { before, after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { Readable } from "node:stream";
import { createGzip, gzipSync } from "node:zlib";
import { startServer } from "./lib/server.mjs";

const MB = 1000 * 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** VmRSS of a process in bytes. */
function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m[1]) * 1024;
}

/** Sample the peak RSS of pid while fn runs. */
async function peakRss(pid, fn) {
  let peak = rss(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rss(pid));
    } catch {}
  }, 20);
  try {
    const result = await fn();
    peak = Math.max(peak, rss(pid));
    return { result, peak };
  } finally {
    clearInterval(timer);
  }
}

/** Start a server with extra environment (the helper passes process.env through). */
async function startWith(env) {
  const saved = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    // One node: connection, body-memory and stream limits are per process and per client
    // address (behind a load balancer every client is its address: MODELHUB_E2E_NODES).
    return await startServer({ nodes: 1 });
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/**
 * A raw HTTP/1.1 request on its own socket. The body (`total` bytes, or chunked when
 * `chunked`) is `prefix` and then one reused block again and again, written only while the
 * server has not answered, so a refused request stops early. With `expect`, the client sends
 * "Expect: 100-continue" and waits for the server's go-ahead (curl does so for big bodies).
 * Resolves with the status, headers, body text, the number of body bytes written and the
 * socket error, if any.
 */
function rawRequest(url, { method = "POST", path, headers = {}, total = 0, chunked = false, expect = false, prefix, block, localAddress }) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const sock = net.connect({ host: hostname, port: Number(port), localAddress });
    let sent = 0;
    let resp = Buffer.alloc(0);
    let answered = false;
    let done = false;
    const finish = (error) => {
      if (done) return;
      done = true;
      sock.destroy();
      const text = resp.toString("latin1");
      const head = text.split("\r\n\r\n")[0];
      const m = /^HTTP\/1\.1 (\d+)/.exec(head);
      const hdrs = {};
      for (const line of head.split("\r\n").slice(1)) {
        const i = line.indexOf(":");
        if (i > 0) hdrs[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: m ? Number(m[1]) : 0, headers: hdrs, body: text.slice(head.length + 4), sent, error });
    };
    const complete = () => {
      const text = resp.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return false;
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
      return cl && resp.length >= end + 4 + Number(cl[1]);
    };
    let waiting = expect;
    sock.on("data", (d) => {
      resp = Buffer.concat([resp, d]);
      if (waiting && /^HTTP\/1\.1 100 [^\r]*\r\n\r\n/.test(resp.toString("latin1"))) {
        resp = resp.subarray(resp.toString("latin1").indexOf("\r\n\r\n") + 4);
        waiting = false;
        pump();
        return;
      }
      answered = true;
      if (complete()) finish();
    });
    sock.on("error", (e) => finish(e.code));
    sock.on("close", () => finish());
    const h = { Host: `${hostname}:${port}`, ...headers };
    if (expect) h.Expect = "100-continue";
    if (chunked) h["Transfer-Encoding"] = "chunked";
    else if (method !== "GET") h["Content-Length"] = String(total);
    let head = `${method} ${path} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(h)) head += `${k}: ${v}\r\n`;
    sock.write(head + "\r\n");
    function pump() {
      if (waiting) return;
      while (!answered && !done && sent < total) {
        const src = sent === 0 && prefix ? prefix : block;
        let chunk = src.subarray(0, Math.min(src.length, total - sent));
        sent += chunk.length;
        if (chunked) chunk = Buffer.concat([Buffer.from(chunk.length.toString(16) + "\r\n"), chunk, Buffer.from("\r\n")]);
        if (!sock.write(chunk)) return sock.once("drain", pump);
      }
      if (!answered && !done && chunked) sock.write("0\r\n\r\n");
    }
    sock.once("connect", pump);
  });
}

/** GET /metrics and return one unlabelled sample's value. */
async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : NaN;
}

describe("bodies are authorized before they are read; commits stream", () => {
  let server;
  before(async () => {
    // ASan keeps freed memory in a quarantine (256 MB by default): keep it small so RSS
    // reflects what the server holds.
    server = await startWith({ ASAN_OPTIONS: "quarantine_size_mb=16:allocator_release_to_os_interval_ms=100" });
    for (const name of ["limits-pub"]) {
      const r = await fetch(`${server.url}/api/repos/create`, {
        method: "POST",
        headers: { Authorization: `Bearer ${server.adminToken}`, "Content-Type": "application/json" },
        body: JSON.stringify({ name }),
      });
      assert.equal(r.status, 200, await r.text());
    }
  });
  after(() => server.stop());

  test("four anonymous 500 MB commit bodies and a read token's are refused before they are read", async () => {
    const block = Buffer.alloc(1024 * 1024, "A");
    const prefix = Buffer.from('{"key":"header","value":{"summary":"x"}}\n{"key":"file","value":{"path":"a.bin","content":"');
    server.cli(["user", "add", "limits-reader"], { check: true });
    const reader = server.makeToken("limits-reader", "read");
    const idle = rss(server.pid);
    const path = "/api/models/admin/limits-pub/commit/main";
    const ct = { "Content-Type": "application/x-ndjson" };
    const anon = { path, headers: ct, total: 500 * MB, prefix, block };
    const { result, peak } = await peakRss(server.pid, () =>
      Promise.all([
        // Clients that write at once: answered and cut off after what fit in socket buffers
        // (the write may fail before the answer is read: the connection is closed unread).
        rawRequest(server.url, anon),
        rawRequest(server.url, anon),
        rawRequest(server.url, { ...anon, chunked: true }),
        rawRequest(server.url, { ...anon, chunked: true }),
        // Clients that wait for 100-continue get the answer instead.
        rawRequest(server.url, { ...anon, expect: true }),
        rawRequest(server.url, { ...anon, headers: { ...ct, Authorization: `Bearer ${reader}` }, expect: true }),
      ]),
    );
    for (const [i, r] of result.entries()) {
      const what = `request ${i}: ${JSON.stringify(r).slice(0, 300)}`;
      assert.ok(r.sent < 64 * MB, `request ${i} sent ${r.sent} bytes before the answer`);
      if (i < 4) assert.ok(r.status === 401 || /EPIPE|ECONNRESET/.test(r.error), what);
    }
    assert.equal(result[4].status, 401);
    assert.match(result[4].headers["x-error-message"], /authenticated/);
    assert.equal(result[4].sent, 0);
    assert.equal(result[5].status, 403);
    assert.match(result[5].headers["x-error-message"], /read-only/);
    assert.equal(result[5].sent, 0);
    assert.ok(peak - idle < 100 * MB, `RSS grew by ${((peak - idle) / MB).toFixed(1)} MB`);
    // The same for a preupload body (buffered JSON, 16 MiB limit).
    const pre = await rawRequest(server.url, {
      path: "/api/models/admin/limits-pub/preupload/main",
      headers: { "Content-Type": "application/json" },
      total: 15 * MB,
      block,
      expect: true,
    });
    assert.equal(pre.status, 401);
    assert.equal(pre.sent, 0);
    // A small refused body is still read, so the client sees the answer on a live connection.
    const small = await fetch(`${server.url}${path}`, { method: "POST", headers: ct, body: "{}\n" });
    assert.equal(small.status, 401);
  });

  test("an authorized 2,000-file NDJSON commit streams: RSS stays far below the body size", async () => {
    const files = 2000;
    const size = 64 * 1024;
    const content = (i) => Buffer.alloc(size, `file ${i} `);
    let bodyBytes = 0;
    function* lines() {
      yield JSON.stringify({ key: "header", value: { summary: "many inline files" } }) + "\n";
      for (let i = 0; i < files; i++) {
        yield JSON.stringify({ key: "file", value: { path: `many/f${i}.txt`, content: content(i).toString("base64"), encoding: "base64" } }) + "\n";
      }
    }
    const body = Readable.from(
      (function* () {
        for (const l of lines()) {
          bodyBytes += l.length;
          yield Buffer.from(l);
        }
      })(),
    );
    const idle = rss(server.pid);
    const { result, peak } = await peakRss(server.pid, () =>
      new Promise((resolve, reject) => {
        const { hostname, port } = new URL(server.url);
        const req = http.request(
          {
            host: hostname,
            port,
            method: "POST",
            path: "/api/models/admin/limits-pub/commit/main",
            headers: { Authorization: `Bearer ${server.adminToken}`, "Content-Type": "application/x-ndjson" },
          },
          (res) => {
            let text = "";
            res.on("data", (d) => (text += d));
            res.on("end", () => resolve({ status: res.statusCode, text }));
          },
        );
        req.on("error", reject);
        body.pipe(req);
      }),
    );
    assert.equal(result.status, 200, result.text);
    assert.ok(bodyBytes > 170 * MB);
    const grew = peak - idle;
    // Buffered whole, the body alone would be 175 MB (plus its decoded contents).
    assert.ok(grew < 50 * MB, `RSS grew by ${(grew / MB).toFixed(1)} MB for a ${(bodyBytes / MB).toFixed(0)} MB body`);
    // Every file landed, byte for byte.
    let count = 0;
    for (let page = `${server.url}/api/models/admin/limits-pub/tree/main/many`; page; ) {
      const r = await fetch(page);
      assert.equal(r.status, 200);
      count += (await r.json()).length;
      const next = /<([^>]+)>;\s*rel="next"/.exec(r.headers.get("link") || "");
      page = next ? next[1] : null;
    }
    assert.equal(count, files);
    for (const i of [0, 1234, files - 1]) {
      const r = await fetch(`${server.url}/admin/limits-pub/resolve/main/many/f${i}.txt`);
      assert.equal(r.status, 200);
      assert.ok(Buffer.from(await r.arrayBuffer()).equals(content(i)), `file ${i}`);
    }
  });

  test("an NDJSON line over the line limit is refused with 413", async () => {
    const block = Buffer.alloc(1024 * 1024, "A");
    const prefix = Buffer.from('{"key":"header","value":{"summary":"x"}}\n{"key":"file","value":{"path":"a.bin","content":"');
    const r = await rawRequest(server.url, {
      path: "/api/models/admin/limits-pub/commit/main",
      headers: { "Content-Type": "application/x-ndjson", Authorization: `Bearer ${server.adminToken}` },
      total: 40 * 1024 * 1024,
      prefix,
      block,
    });
    assert.equal(r.status, 413, JSON.stringify(r).slice(0, 300));
    assert.match(r.headers["x-error-message"], /line 2/);
  });

  test("a gzip bomb to git-upload-pack is refused early", async () => {
    // ~1 MB of gzip that inflates to 1 GB of zeros, built without holding 1 GB.
    const bomb = await new Promise((resolve) => {
      const gz = createGzip({ level: 9 });
      const out = [];
      gz.on("data", (d) => out.push(d));
      gz.on("end", () => resolve(Buffer.concat(out)));
      const zeros = Buffer.alloc(1024 * 1024);
      let n = 0;
      const write = () => {
        while (n < 1000) {
          n++;
          if (!gz.write(zeros)) return gz.once("drain", write);
        }
        gz.end();
      };
      write();
    });
    assert.ok(bomb.length < 2 * MB);
    const post = (body) =>
      fetch(`${server.url}/admin/limits-pub.git/git-upload-pack`, {
        method: "POST",
        headers: { "Content-Type": "application/x-git-upload-pack-request", "Content-Encoding": "gzip" },
        body,
      });
    let r = await post(bomb);
    assert.equal(r.status, 413, await r.clone().text());
    assert.match(r.headers.get("x-error-message"), /inflate|limit/);
    // Under the size limit but with an absurd ratio: 20 MB of zeros from ~20 kB.
    r = await post(gzipSync(Buffer.alloc(20 * MB)));
    assert.equal(r.status, 413, await r.clone().text());
    assert.match(r.headers.get("x-error-message"), /ratio|inflate/);
  });
});

describe("connections: per-address cap, slow headers", () => {
  let server;
  before(async () => {
    server = await startWith({ MODELHUB_MAX_CONNECTIONS_PER_IP: "100", MODELHUB_HEADER_TIMEOUT: "2" });
  });
  after(() => server.stop());

  test("2,000 idle connections from one address leave /healthz answering another", async () => {
    const { port } = new URL(server.url);
    const socks = [];
    let closed = 0;
    await Promise.all(
      Array.from({ length: 2000 }, () =>
        new Promise((resolve) => {
          const s = net.connect({ host: "127.0.0.1", port: Number(port) });
          socks.push(s);
          s.on("error", () => {});
          s.on("close", () => closed++);
          s.once("connect", resolve);
          s.once("close", resolve);
        }),
      ),
    );
    try {
      await sleep(300);
      // Another client (127.0.0.2 is loopback too) is still served.
      const r = await new Promise((resolve, reject) => {
        const req = http.get({ host: "127.0.0.1", port, path: "/healthz", localAddress: "127.0.0.2", agent: false }, (res) => {
          let t = "";
          res.on("data", (d) => (t += d));
          res.on("end", () => resolve({ status: res.statusCode, text: t }));
        });
        req.on("error", reject);
        req.setTimeout(10000, () => req.destroy(new Error("timeout")));
      });
      assert.equal(r.status, 200);
      // The over-the-cap ones were closed by the server (a few more than 100 may slip in
      // while event threads accept concurrently).
      for (let i = 0; i < 100 && 2000 - closed > 120; i++) await sleep(100);
      assert.ok(2000 - closed <= 120, `${2000 - closed} connections from one address still open`);
      assert.match(server.log(), /per-IP connection limit.*127\.0\.0\.1|127\.0\.0\.1.*per-IP connection limit/);
    } finally {
      for (const s of socks) s.destroy();
    }
    await sleep(200);
    assert.ok((await metric(server.url, "modelhub_connections_refused_total")) >= 1800);
  });

  test("a client trickling its headers is dropped after the header timeout; keep-alive survives", async () => {
    const { port } = new URL(server.url);
    const s = net.connect({ host: "127.0.0.1", port: Number(port), localAddress: "127.0.0.3" });
    s.on("error", () => {});
    await new Promise((r) => s.once("connect", r));
    const t0 = Date.now();
    let closedAt = 0;
    s.on("close", () => (closedAt = Date.now()));
    s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for (let i = 0; i < 40 && !closedAt; i++) {
      await sleep(250);
      if (!closedAt) s.write(`X-Slow-${i}: 1\r\n`);
    }
    s.destroy();
    assert.ok(closedAt, "the server never closed a connection that kept sending header bytes");
    assert.ok(closedAt - t0 < 9000);

    // A keep-alive connection idle for longer than the header timeout between requests
    // still serves its next request.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = () =>
      new Promise((resolve, reject) => {
        const req = http.get({ host: "127.0.0.1", port, path: "/healthz", agent }, (res) => {
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode, reused: req.reusedSocket }));
        });
        req.on("error", reject);
      });
    const a = await get();
    await sleep(3000);
    const b = await get();
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.equal(b.reused, true, "the idle keep-alive connection was closed");
    agent.destroy();
  });
});

describe("buffered bodies share a process-wide budget", () => {
  let server;
  before(async () => {
    server = await startWith({ MODELHUB_BODY_MEMORY_MAX: "1000000", MODELHUB_BODY_MEMORY_PER_IP: "0" }); // one address: no per-address share
  });
  after(() => server.stop());

  test("past MODELHUB_BODY_MEMORY_MAX a body gets 503 + Retry-After; the budget comes back", async () => {
    const { hostname, port } = new URL(server.url);
    // A client that announces 800 kB and sends 10 bytes holds 800 kB of the budget.
    const holder = net.connect({ host: hostname, port: Number(port) });
    holder.on("error", () => {});
    await new Promise((r) => holder.once("connect", r));
    holder.write(
      `POST /api/validate-yaml HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 800000\r\n\r\n{"content"`,
    );
    for (let i = 0; i < 100 && !((await metric(server.url, "modelhub_body_memory_bytes")) >= 800000); i++) await sleep(50);
    assert.ok((await metric(server.url, "modelhub_body_memory_bytes")) >= 800000);

    const big = JSON.stringify({ content: "x".repeat(799000) });
    let r = await fetch(`${server.url}/api/validate-yaml`, { method: "POST", headers: { "Content-Type": "application/json" }, body: big });
    assert.equal(r.status, 503);
    assert.match(r.headers.get("retry-after"), /^\d+$/);
    assert.ok(r.headers.get("x-error-message"));

    // A streamed commit line that does not fit either.
    const line = JSON.stringify({ key: "file", value: { path: "a.txt", content: "QUFB".repeat(100000), encoding: "base64" } });
    const cr = await fetch(`${server.url}/api/repos/create`, {
      method: "POST",
      headers: { Authorization: `Bearer ${server.adminToken}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "budget" }),
    });
    assert.equal(cr.status, 200);
    r = await fetch(`${server.url}/api/models/admin/budget/commit/main`, {
      method: "POST",
      headers: { Authorization: `Bearer ${server.adminToken}`, "Content-Type": "application/x-ndjson" },
      body: JSON.stringify({ key: "header", value: { summary: "x" } }) + "\n" + line + "\n",
    });
    assert.equal(r.status, 503, await r.clone().text());
    assert.ok(r.headers.get("retry-after"));

    holder.destroy();
    for (let i = 0; i < 100 && (await metric(server.url, "modelhub_body_memory_bytes")) > 0; i++) await sleep(50);
    assert.equal(await metric(server.url, "modelhub_body_memory_bytes"), 0);
    r = await fetch(`${server.url}/api/validate-yaml`, { method: "POST", headers: { "Content-Type": "application/json" }, body: big });
    assert.equal(r.status, 200, await r.clone().text());
  });
});
