// Where a test server keeps its blobs, and questions about them that do not care whether
// that is the data directory (backend "fs") or an S3 bucket (backend "s3").
//
// S3 mode: MODELHUB_E2E_STORE=s3 runs every server of the test process on ONE moto_server
// (started on first use on a free loopback port, killed when the process exits); each
// server gets a bucket of its own (lib/server.mjs). Tests that need S3 whatever the mode
// (presigned redirects, outages) call startMoto() themselves.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import net from "node:net";
import path from "node:path";

export const S3_MODE = process.env.MODELHUB_E2E_STORE === "s3";
const MOTO = process.env.MODELHUB_E2E_MOTO || "moto_server";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const motos = new Set();
process.on("exit", () => {
  for (const m of motos) m.kill("SIGKILL");
});

/** Start a moto_server on a free loopback port; resolves to {endpoint, port, stop()}. */
export async function startMoto() {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn(MOTO, ["-H", "127.0.0.1", "-p", String(port)], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    let exited = false;
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d) => {
      if (err.length < 8192) err += d;
    });
    const exitP = new Promise((r) => child.on("exit", () => ((exited = true), r())));
    child.on("error", (e) => {
      err += String(e);
      exited = true;
    });
    motos.add(child);
    const endpoint = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30000;
    while (!exited && Date.now() < deadline) {
      try {
        const res = await fetch(`${endpoint}/moto-api/`);
        await res.arrayBuffer();
        // The shared server lives until the process exits: it must not keep it alive.
        child.unref();
        child.stderr.destroy();
        const stop = async () => {
          motos.delete(child);
          if (!exited) child.kill("SIGTERM");
          await exitP;
        };
        return { endpoint, port, stop };
      } catch {
        await sleep(100);
      }
    }
    motos.delete(child);
    if (!exited) child.kill("SIGKILL");
    if (attempt < 3 && /in use/i.test(err)) continue;
    throw new Error(`${MOTO} did not start (is it installed? MODELHUB_E2E_MOTO names it):\n${err}`);
  }
}

let shared = null;
/** The test process's moto_server (S3 mode). */
export function sharedMoto() {
  if (!shared) {
    shared = startMoto().then((m) => {
      // Commands a test runs itself on a server's data dir (modelhub export, xet-pull, ...)
      // find the bucket in <data>/blob-store; the endpoint and credentials come from here.
      const { MODELHUB_BLOB_STORE, ...rest } = s3Env(m.endpoint, "unused");
      Object.assign(process.env, rest);
      return m;
    });
  }
  return shared;
}

let nbucket = 0;
/** Create a fresh bucket on `endpoint` (moto does not check signatures); returns its name. */
export async function createBucket(endpoint) {
  const name = `e2e-${process.pid}-${++nbucket}-${Math.random().toString(36).slice(2, 8)}`;
  const res = await fetch(`${endpoint}/${name}`, { method: "PUT" });
  const text = await res.text();
  if (!res.ok) throw new Error(`create bucket ${name}: ${res.status} ${text}`);
  return name;
}

/** Environment that points a server at s3://bucket/prefix on `endpoint`. */
export function s3Env(endpoint, bucket, prefix = "x") {
  return {
    MODELHUB_BLOB_STORE: `s3://${bucket}${prefix ? `/${prefix}` : ""}`,
    MODELHUB_S3_ENDPOINT: endpoint,
    MODELHUB_S3_PATH_STYLE: "1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_REGION: "us-east-1",
  };
}

/** {endpoint, bucket, prefix} when `server` keeps its blobs in S3, else null. */
export function s3Of(server) {
  const env = server.env || {};
  const loc = env.MODELHUB_BLOB_STORE;
  if (!loc || !loc.startsWith("s3://")) return null;
  const [bucket, ...rest] = loc.slice(5).split("/");
  const prefix = rest.filter(Boolean).join("/");
  return { endpoint: env.MODELHUB_S3_ENDPOINT, bucket, prefix: prefix ? `${prefix}/` : "" };
}

/** A SigV4-signed request to the store (curl signs; moto refuses anonymous object reads):
 * {status, body}. */
function s3Request(method, url) {
  const r = spawnSync(
    "curl",
    ["-sS", "--noproxy", "*", ...(method === "HEAD" ? ["-I"] : ["-X", method]), "--aws-sigv4", "aws:amz:us-east-1:s3",
      "--user", "test:test", "-w", "\n%{http_code}", url],
    { encoding: "utf8", timeout: 30000, maxBuffer: 64 << 20 },
  );
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`curl ${method} ${url}: ${r.stderr}`);
  const i = r.stdout.lastIndexOf("\n");
  return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

const objectKey = (oid) => `blobs/sha256/${oid.slice(0, 2)}/${oid.slice(2, 4)}/${oid}`;

async function listKeys(s3, prefix) {
  const keys = [];
  let token = null;
  do {
    const q = new URLSearchParams({ "list-type": "2", prefix: s3.prefix + prefix });
    if (token) q.set("continuation-token", token);
    const res = s3Request("GET", `${s3.endpoint}/${s3.bucket}?${q}`);
    const xml = res.body;
    if (res.status !== 200) throw new Error(`list ${prefix}: ${res.status} ${xml}`);
    for (const m of xml.matchAll(/<Key>([^<]*)<\/Key>/g)) keys.push(m[1].slice(s3.prefix.length));
    token = /<IsTruncated>true<\/IsTruncated>/.test(xml) ? /<NextContinuationToken>([^<]*)</.exec(xml)?.[1] : null;
  } while (token);
  return keys;
}

/** Whether object `oid` is stored in `server`'s blob store (`sub` "xet" for xorbs). */
export async function objectStored(server, oid, sub = "") {
  const s3 = s3Of(server);
  if (!s3) return existsSync(path.join(server.dataDir, sub, objectKey(oid)));
  const key = `${s3.prefix}${sub ? `${sub}/` : ""}${objectKey(oid)}`;
  const res = s3Request("HEAD", `${s3.endpoint}/${s3.bucket}/${key}`);
  if (res.status !== 200 && res.status !== 404) throw new Error(`HEAD ${key}: ${res.status}`);
  return res.status === 200;
}

/** The oids of every object in the store (below `sub`). */
export async function storedOids(server, sub = "") {
  const s3 = s3Of(server);
  if (s3) {
    const keys = await listKeys(s3, `${sub ? `${sub}/` : ""}blobs/sha256/`);
    return keys.map((k) => k.split("/").pop());
  }
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d)) {
      const p = path.join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(e);
    }
  };
  const root = path.join(server.dataDir, sub, "blobs", "sha256");
  if (existsSync(root)) walk(root);
  return out;
}

/** Temporary data the store holds (unfinished writes), as a list of names: files under
 * <data>/<sub>/tmp (without `parts` dirs) on disk; unfinished multipart uploads and tmp/
 * objects in a bucket. Empty when nothing is left over. */
export async function tempData(server, sub = "") {
  const s3 = s3Of(server);
  if (!s3) {
    const tmp = path.join(server.dataDir, sub, "tmp");
    return existsSync(tmp)
      ? readdirSync(tmp, { recursive: true }).filter((f) => !f.endsWith("parts") && !/^parts\/?$/.test(f))
      : [];
  }
  const pre = `${s3.prefix}${sub ? `${sub}/` : ""}tmp/`;
  const res = s3Request("GET", `${s3.endpoint}/${s3.bucket}?uploads&prefix=${encodeURIComponent(pre)}`);
  const xml = res.body;
  if (res.status !== 200) throw new Error(`list uploads: ${res.status} ${xml}`);
  const uploads = [...xml.matchAll(/<Upload>[\s\S]*?<Key>([^<]*)<\/Key>/g)].map((m) => `upload ${m[1]}`);
  const objs = await listKeys(s3, `${sub ? `${sub}/` : ""}tmp/`);
  return [...uploads, ...objs];
}

// The relay runs in a child process: tests block this one in spawnSync (curl, git) while
// the hub's requests must still get through.
const RELAY_JS = `
const net = require("node:net");
const [target, port] = process.argv.slice(1).map(Number);
net.createServer((c) => {
  const u = net.connect(target, "127.0.0.1");
  const drop = () => { c.destroy(); u.destroy(); };
  c.on("error", drop).on("close", drop);
  u.on("error", drop).on("close", drop);
  c.pipe(u);
  u.pipe(c);
}).listen(port, "127.0.0.1", () => process.stdout.write("ready\\n"));
`;

/** A TCP relay on a free loopback port to `targetPort`, to take an object store "down"
 * without losing its contents (moto keeps them in memory): down() closes the port and cuts
 * every connection, up() listens on the same port again. */
export async function startRelay(targetPort) {
  const port = await freePort();
  let child = null;
  const up = () =>
    new Promise((resolve, reject) => {
      child = spawn(process.execPath, ["-e", RELAY_JS, String(targetPort), String(port)], { stdio: ["ignore", "pipe", "inherit"] });
      motos.add(child);
      child.stdout.once("data", () => {
        child.unref();
        child.stdout.destroy();
        resolve();
      });
      child.once("exit", (code) => reject(new Error(`relay exited (${code})`)));
    });
  const down = async () => {
    if (!child) return;
    const c = child;
    child = null;
    motos.delete(c);
    const gone = new Promise((r) => c.once("exit", r));
    c.kill("SIGKILL");
    await gone;
  };
  await up();
  return { endpoint: `http://127.0.0.1:${port}`, port, down, up, stop: down };
}
