// Start a real `modelhub serve` for one e2e test file.
//
//   import { startServer } from "./lib/server.mjs";
//   let server;
//   before(async () => { server = await startServer(); });
//   after(() => server.stop());
//
// The server gets a fresh temp data dir and a free loopback port. The binary is
// $MODELHUB_BIN (absolute, or relative to the cwd or the repo root), default
// <repo>/build/modelhub. With an ASan build, leaks are detected at exit, and
// stop() throws (so the test file fails) when the server exited non-zero or its
// log holds a sanitizer report.
//
// Several nodes (docs/scale-out.md, "Several nodes"): MODELHUB_E2E_NODES=N (or
// opts.nodes) starts N `modelhub serve` processes on the one data dir behind a
// round-robin nginx, and `url` is nginx's. Every request may land on any node; the
// nodes append to one log. crashAndRestart() SIGKILLs node 1 and starts it again;
// terminate()/restart() act on every node; `nodes` lists them ({url, pid, exited,
// kill(signal), start()}) for tests that aim at one node.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { S3_MODE, createBucket, s3Env, sharedMoto } from "./store.mjs";
import { PG_MODE, createDatabase, psql, sqlFor } from "./db.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, "../../..");

const START_TIMEOUT_MS = Number(process.env.MODELHUB_E2E_START_TIMEOUT_MS || 30000);
const STOP_TIMEOUT_MS = 15000;
const SANITIZER_RE = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/;
const READONLY_WRITE_RE = /BUG: write on a read-only thread/;
/** Nodes per server when a test does not say (MODELHUB_E2E_NODES, default 1). */
export const E2E_NODES = Math.max(1, Number(process.env.MODELHUB_E2E_NODES || 1) || 1);
const NGINX = process.env.MODELHUB_E2E_NGINX || "nginx";

export function binaryPath() {
  const env = process.env.MODELHUB_BIN;
  if (!env) return path.join(REPO_ROOT, "build/modelhub");
  if (path.isAbsolute(env)) return env;
  const fromCwd = path.resolve(process.cwd(), env);
  return existsSync(fromCwd) ? fromCwd : path.resolve(REPO_ROOT, env);
}

function childEnv() {
  const env = { ...process.env };
  // Ours first so an explicit caller setting wins (later options override).
  env.ASAN_OPTIONS = ["detect_leaks=1", process.env.ASAN_OPTIONS].filter(Boolean).join(":");
  env.UBSAN_OPTIONS = ["print_stacktrace=1:halt_on_error=1", process.env.UBSAN_OPTIONS]
    .filter(Boolean)
    .join(":");
  // /metrics answers anonymous callers only from listed addresses: the tests read it
  // from loopback (a test that checks the refusal sets the variable itself, even to "").
  if (env.MODELHUB_METRICS_ALLOW === undefined) env.MODELHUB_METRICS_ALLOW = "127.0.0.1,::1";
  delete env.MODELHUB_DATA;
  delete env.MODELHUB_DB; // a server's database is its own (PostgreSQL mode: lib/db.mjs)
  delete env.MODELHUB_LISTEN;
  delete env.MODELHUB_PUBLIC_URL;
  return env;
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
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

function tail(text, lines = 60) {
  const all = text.split("\n");
  return all.slice(Math.max(0, all.length - lines)).join("\n");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function launch(bin, dataDir, logPath, port, knownToken = null, extraEnv = {}) {
  const logFd = openSync(logPath, "a");
  const child = spawn(bin, ["--data", dataDir, "serve", "--listen", `127.0.0.1:${port}`], {
    stdio: ["ignore", "pipe", logFd],
    env: { ...childEnv(), ...extraEnv },
  });
  closeSync(logFd);

  const state = { child, exited: false, code: null, signal: null, stdout: "" };
  const exitPromise = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      state.exited = true;
      state.code = code;
      state.signal = signal;
      resolve();
    });
  });
  state.exitPromise = exitPromise;
  child.on("error", (err) => {
    state.spawnError = err;
  });
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (d) => {
    state.stdout += d;
  });

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  let token = knownToken;
  while (Date.now() < deadline) {
    if (state.spawnError) throw state.spawnError;
    if (state.exited) return { state, ok: false };
    if (!token) {
      const m = /admin token: (hf_\S+)/.exec(state.stdout);
      if (m) token = m[1];
    }
    if (token) {
      try {
        const res = await fetch(`${url}/healthz`);
        await res.arrayBuffer();
        if (res.ok) return { state, ok: true, url, token };
      } catch {
        /* not listening yet */
      }
    }
    await sleep(50);
  }
  child.kill("SIGKILL");
  await exitPromise;
  throw new Error(
    `modelhub did not become healthy within ${START_TIMEOUT_MS} ms (admin token seen: ${!!token})\n` +
      `stdout:\n${state.stdout}\nlog tail:\n${tail(readFileSync(logPath, "utf8"))}`,
  );
}

/**
 * nginx in front of the nodes: round-robin, no buffering either way, unlimited bodies,
 * HTTP/1.1 keep-alive to the upstreams, long timeouts, Host and X-Forwarded-For passed
 * on. Non-root-safe: everything under `dir`. Resolves to {url, stop(), log()}.
 */
export async function startNginx(dir, ports) {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  for (const t of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) {
    mkdirSync(path.join(dir, t), { recursive: true });
    chmodSync(path.join(dir, t), 0o777); // workers drop to nobody when started as root
  }
  const errLog = path.join(dir, "error.log");
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const conf = `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${errLog} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream modelhub {
${ports.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=2s;`).join("\n")}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    proxy_buffering off;
    proxy_request_buffering off;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_connect_timeout 5s;
    proxy_read_timeout 3600s;
    proxy_send_timeout 3600s;
    send_timeout 3600s;
    location / { proxy_pass http://modelhub; }
  }
}
`;
    const confPath = path.join(dir, "nginx.conf");
    writeFileSync(confPath, conf);
    const child = spawn(NGINX, ["-e", errLog, "-c", confPath, "-p", dir, "-g", "daemon off;"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    let exited = false;
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d) => {
      if (stderr.length < 8192) stderr += d;
    });
    const exitP = new Promise((r) => child.on("exit", () => ((exited = true), r())));
    child.on("error", (e) => {
      stderr += String(e);
      exited = true;
    });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10000;
    while (!exited && Date.now() < deadline) {
      try {
        const res = await fetch(`${url}/healthz`);
        await res.arrayBuffer();
        if (res.status !== 502 && res.status !== 504) {
          const log = () => (existsSync(errLog) ? readFileSync(errLog, "utf8") : "");
          const stop = async () => {
            if (!exited) child.kill("SIGTERM");
            await exitP;
          };
          return { url, stop, log, pid: child.pid };
        }
      } catch {
        /* not listening yet */
      }
      await sleep(50);
    }
    if (!exited) child.kill("SIGKILL");
    await exitP;
    const log = existsSync(errLog) ? readFileSync(errLog, "utf8") : "";
    if (attempt < 3 && /Address already in use/.test(stderr + log)) continue;
    throw new Error(`nginx did not start:\n${stderr}\n${tail(log)}`);
  }
}

export async function startServer(opts = {}) {
  const bin = binaryPath();
  if (!existsSync(bin)) throw new Error(`modelhub binary not found: ${bin} (build it, or set MODELHUB_BIN)`);
  // opts.env: extra environment for the server; opts.dataDir: use this (existing) data dir
  // and leave it in place at stop (e.g. a tmpfs mount the test owns).
  // S3 mode (MODELHUB_E2E_STORE=s3, lib/store.mjs): a bucket of its own on the process's
  // moto_server, unless the test picked a store itself (opts.env.MODELHUB_BLOB_STORE).
  const extraEnv = { ...(opts.env || {}) };
  if (S3_MODE && extraEnv.MODELHUB_BLOB_STORE === undefined) {
    const moto = await sharedMoto();
    Object.assign(extraEnv, s3Env(moto.endpoint, await createBucket(moto.endpoint)));
  }
  // PostgreSQL mode (MODELHUB_E2E_DB=postgres, lib/db.mjs): a database of its own on the
  // process's cluster, unless the test picked one itself (opts.env.MODELHUB_DB).
  if (PG_MODE && extraEnv.MODELHUB_DB === undefined) extraEnv.MODELHUB_DB = await createDatabase();
  const dbUrl = /^postgres(ql)?:\/\//.test(extraEnv.MODELHUB_DB || "") ? extraEnv.MODELHUB_DB : null;
  const dataDir = opts.dataDir || mkdtempSync(path.join(tmpdir(), "modelhub-e2e-"));
  const logPath = opts.dataDir
    ? path.join(mkdtempSync(path.join(tmpdir(), "modelhub-e2e-log-")), "server.log")
    : path.join(dataDir, "server.log");

  // The CLI shares the server's database and blob store, nothing else of its extra environment.
  const storeEnv = Object.fromEntries(
    Object.entries(extraEnv).filter(([k]) => /^(MODELHUB_DB$|MODELHUB_BLOB_STORE|MODELHUB_BLOB_REDIRECT|MODELHUB_S3_|AWS_)/.test(k)),
  );

  let launched;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    launched = await launch(bin, dataDir, logPath, port, null, extraEnv);
    if (launched.ok) break;
    const log = readFileSync(logPath, "utf8");
    // Lost the race for the port: try again with another one.
    if (attempt < 3 && /address already in use|EADDRINUSE|bind/i.test(log)) continue;
    rmSync(dataDir, { recursive: true, force: true });
    throw new Error(
      `modelhub exited during startup (code ${launched.state.code}, signal ${launched.state.signal})\n` +
        `stdout:\n${launched.state.stdout}\nlog tail:\n${tail(log)}`,
    );
  }
  const { url: url1, token } = launched;
  const nodeCount = Math.max(1, Number(opts.nodes ?? E2E_NODES) || 1);
  // node 1 first (it creates the database and the admin), then the others on the same data dir
  const nodes = [{ state: launched.state, port: Number(new URL(url1).port), url: url1 }];
  let crashing = false;
  const cliProblems = [];
  let stopped = false;
  let nginx = null;
  let nginxDir = null;

  const log = () => (existsSync(logPath) ? readFileSync(logPath, "utf8") : "");

  // If a node dies while tests run, say so at once: the tests will only see
  // ECONNREFUSED (or 502 from nginx).
  const watch = (node) => node.state.child.on("exit", (code, signal) => {
    if (!stopped && !crashing && !node.expectExit) {
      console.error(
        `\n*** modelhub${nodes.length > 1 ? ` node ${nodes.indexOf(node) + 1}` : ""} exited unexpectedly ` +
          `(code ${code}, signal ${signal}); log tail:\n${tail(log())}\n`,
      );
    }
  });
  watch(nodes[0]);

  /** (Re)start node n on its port. */
  async function startNode(node) {
    const again = await launch(bin, dataDir, logPath, node.port, token, extraEnv);
    if (!again.ok) throw new Error(`restart failed:\n${tail(log())}`);
    node.state = again.state;
    node.expectExit = false;
    watch(node);
  }

  try {
    for (let i = 1; i < nodeCount; i++) {
      let node = null;
      for (let attempt = 1; !node; attempt++) {
        const port = await freePort();
        const l = await launch(bin, dataDir, logPath, port, token, extraEnv);
        if (l.ok) node = { state: l.state, port, url: l.url };
        else if (attempt >= 3 || !/address already in use|EADDRINUSE|bind/i.test(log()))
          throw new Error(`modelhub node ${i + 1} exited during startup (code ${l.state.code})\nlog tail:\n${tail(log())}`);
      }
      nodes.push(node);
      watch(node);
    }
    if (nodeCount > 1) {
      nginxDir = mkdtempSync(path.join(tmpdir(), "modelhub-e2e-nginx-"));
      nginx = await startNginx(nginxDir, nodes.map((n) => n.port));
    }
  } catch (e) {
    stopped = true;
    for (const n of nodes) if (!n.state.exited) n.state.child.kill("SIGKILL");
    for (const n of nodes) await n.state.exitPromise;
    rmSync(dataDir, { recursive: true, force: true });
    if (nginxDir) rmSync(nginxDir, { recursive: true, force: true });
    throw e;
  }
  const url = nginx ? nginx.url : url1;

  /** Simulate a crash: SIGKILL the server (node 1), then start it again on the same data
   * dir and port (the admin token stays valid). */
  async function crashAndRestart() {
    const node = nodes[0];
    crashing = true;
    node.state.child.kill("SIGKILL");
    await node.state.exitPromise;
    await startNode(node);
    crashing = false;
  }

  /** SIGTERM the server (every node) and wait for it to exit; resolves to node 1's
   * {code, signal}. */
  async function terminate() {
    crashing = true; // an expected exit
    for (const n of nodes) if (!n.state.exited) n.state.child.kill("SIGTERM");
    for (const n of nodes) await n.state.exitPromise;
    return { code: nodes[0].state.code, signal: nodes[0].state.signal };
  }

  /** Start the server (every node) again on the same data dir and ports after terminate(). */
  async function restart() {
    for (const n of nodes) await startNode(n);
    crashing = false;
  }

  /** The nodes, for tests that aim at one of them (kill one, ask one directly). */
  const nodeApi = nodes.map((n, i) => ({
    index: i + 1,
    url: n.url,
    get pid() {
      return n.state.child.pid;
    },
    get exited() {
      return n.state.exited;
    },
    /** Send a signal (default SIGKILL) and wait for the exit; the exit is not reported. */
    async kill(signal = "SIGKILL") {
      n.expectExit = true;
      if (!n.state.exited) n.state.child.kill(signal);
      await n.state.exitPromise;
      return { code: n.state.code, signal: n.state.signal };
    },
    /** Start it again after kill(). */
    async start() {
      await startNode(n);
    },
  }));

  /** Run the CLI against this server's data dir. Returns spawnSync's result (utf8). */
  function cli(args, { check = false } = {}) {
    const r = spawnSync(bin, ["--data", dataDir, ...args], {
      encoding: "utf8",
      env: { ...childEnv(), ...storeEnv },
      timeout: 60000,
    });
    if (r.error) throw r.error;
    if (SANITIZER_RE.test(r.stderr)) {
      cliProblems.push(`modelhub ${args.join(" ")}:\n${r.stderr}`);
    }
    if (check && r.status !== 0) {
      throw new Error(`modelhub ${args.join(" ")} exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    }
    return r;
  }

  /** Create a token for an existing user; returns the hf_... string. */
  function makeToken(user, role = "write", name = `${user}-${role}-${Date.now()}`) {
    const r = cli(["token", "create", user, "--name", name, "--role", role], { check: true });
    const tok = r.stdout.trim();
    if (!/^hf_\S+$/.test(tok)) throw new Error(`token create printed ${JSON.stringify(r.stdout)}`);
    return tok;
  }

  /**
   * Run SQL on the server's database: its SQLite file with the sqlite3 shell, waiting up to
   * 20 s for the server's own writers (background jobs write at any moment: the shell has
   * no busy timeout of its own and would fail "database is locked"); on PostgreSQL with psql
   * (same output: rows "a|b"). `statement` is one text for both engines, or {sqlite,
   * postgres} where they need different SQL. Throws unless it succeeded; returns stdout,
   * trimmed.
   */
  function sql(statement) {
    if (dbUrl) return psql(dbUrl, sqlFor(statement, "postgres"));
    statement = sqlFor(statement, "sqlite");
    const r = spawnSync("sqlite3", ["-cmd", ".timeout 20000", path.join(dataDir, "modelhub.db"), statement], {
      encoding: "utf8",
      timeout: 60000,
    });
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error(`sqlite3 exited ${r.status}: ${r.stderr}\n${statement}`);
    return r.stdout.trim();
  }

  /** Create a user and a token with the given role; returns the token. */
  function makeUser(name, role = "write") {
    cli(["user", "add", name], { check: true });
    return makeToken(name, role, `${name}-${role}`);
  }

  async function stop() {
    if (stopped) return;
    stopped = true;
    const problems = [...cliProblems];
    if (nginx) await nginx.stop();
    await Promise.all(
      nodes.map(async (n, i) => {
        const name = nodes.length > 1 ? `server node ${i + 1}` : "server";
        const st = n.state;
        let killed = false;
        if (!st.exited) {
          st.child.kill("SIGTERM");
          const timer = setTimeout(() => {
            killed = true;
            st.child.kill("SIGKILL");
          }, STOP_TIMEOUT_MS);
          await st.exitPromise;
          clearTimeout(timer);
        } else if (n.expectExit) {
          return; // killed by the test and not started again
        }
        if (killed) problems.push(`${name} did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM (killed)`);
        else if (st.code !== 0) problems.push(`${name} exited with code ${st.code}, signal ${st.signal}`);
      }),
    );
    const text = log();
    if (SANITIZER_RE.test(text)) problems.push("sanitizer report in server log");
    // Event threads hold read-only database connections (db_thread_readonly): a write
    // there is a bug (docs/architecture.md, "Event threads + workers").
    if (READONLY_WRITE_RE.test(text)) problems.push("a write on an event thread (read-only connection) in server log");

    const testsFailed = process.exitCode !== undefined && process.exitCode !== 0;
    if (problems.length || testsFailed) {
      console.error(`\n--- modelhub server log (tail of ${logPath}) ---\n${tail(text, problems.length ? 200 : 60)}\n---`);
    }
    if (process.env.MODELHUB_E2E_KEEP && (problems.length || testsFailed)) {
      console.error(`keeping data dir ${dataDir}`);
    } else if (!opts.dataDir) {
      rmSync(dataDir, { recursive: true, force: true });
    } else {
      rmSync(path.dirname(logPath), { recursive: true, force: true });
    }
    if (nginxDir) rmSync(nginxDir, { recursive: true, force: true });
    if (problems.length) throw new Error(`modelhub server problems:\n- ${problems.join("\n- ")}`);
  }

  /**
   * GET /metrics from every node (headers: e.g. an admin's Authorization) and add the
   * samples up, series by series, as a monitoring system sums a cluster's nodes: counters
   * are per process. One node: its text as is. Resolves to Prometheus text.
   */
  async function metrics(headers = {}) {
    const texts = [];
    for (const n of nodes) {
      if (n.state.exited) continue;
      const r = await fetch(`${n.url}/metrics`, { headers });
      if (r.status !== 200) throw new Error(`GET ${n.url}/metrics: HTTP ${r.status}`);
      texts.push(await r.text());
    }
    if (texts.length === 1) return texts[0];
    const sums = new Map();
    const order = [];
    for (const t of texts)
      for (const line of t.split("\n")) {
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
        if (!m) {
          if (line && !sums.has(line)) sums.set(line, null), order.push(line);
          continue;
        }
        if (!sums.has(m[1])) order.push(m[1]), sums.set(m[1], 0);
        sums.set(m[1], sums.get(m[1]) + Number(m[2]));
      }
    return order.map((k) => (sums.get(k) === null ? k : `${k} ${sums.get(k)}`)).join("\n") + "\n";
  }

  return {
    url,
    adminToken: token,
    dataDir,
    metrics,
    logPath,
    bin,
    env: extraEnv, // the server's extra environment (its blob store: lib/store.mjs; its database: lib/db.mjs)
    /** "postgres" or "sqlite": the engine of the server's database. */
    dbEngine: dbUrl ? "postgres" : "sqlite",
    dbUrl,
    /** Environment for running the binary on this server's data yourself (its blob store). */
    get cliEnv() {
      return { ...childEnv(), ...storeEnv };
    },
    get pid() {
      return nodes[0].state.child.pid;
    },
    nodes: nodeApi,
    sql,
    crashAndRestart,
    terminate,
    restart,
    get exited() {
      return nodes.some((n) => n.state.exited && !n.expectExit);
    },
    cli,
    makeUser,
    makeToken,
    log,
    stop,
  };
}
