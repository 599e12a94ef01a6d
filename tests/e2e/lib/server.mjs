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
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
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
  let { state, url, token } = launched;
  let crashing = false;
  const cliProblems = [];
  let stopped = false;

  const log = () => (existsSync(logPath) ? readFileSync(logPath, "utf8") : "");

  // If the server dies while tests run, say so at once: the tests will only
  // see ECONNREFUSED.
  const watch = (st) => st.child.on("exit", (code, signal) => {
    if (!stopped && !crashing) {
      console.error(
        `\n*** modelhub exited unexpectedly (code ${code}, signal ${signal}); log tail:\n${tail(log())}\n`,
      );
    }
  });
  watch(state);

  /** Simulate a crash: SIGKILL the server, then start it again on the same data dir
   * and port (the admin token stays valid). */
  async function crashAndRestart() {
    crashing = true;
    state.child.kill("SIGKILL");
    await state.exitPromise;
    const port = Number(new URL(url).port);
    const again = await launch(bin, dataDir, logPath, port, token, extraEnv);
    if (!again.ok) throw new Error(`restart failed:\n${tail(log())}`);
    state = again.state;
    crashing = false;
    watch(state);
  }

  /** SIGTERM the server and wait for it to exit; resolves to {code, signal}. */
  async function terminate() {
    crashing = true; // an expected exit
    if (!state.exited) state.child.kill("SIGTERM");
    await state.exitPromise;
    return { code: state.code, signal: state.signal };
  }

  /** Start the server again on the same data dir and port after terminate(). */
  async function restart() {
    const port = Number(new URL(url).port);
    const again = await launch(bin, dataDir, logPath, port, token, extraEnv);
    if (!again.ok) throw new Error(`restart failed:\n${tail(log())}`);
    state = again.state;
    crashing = false;
    watch(state);
  }

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
    let killed = false;
    if (!state.exited) {
      state.child.kill("SIGTERM");
      const timer = setTimeout(() => {
        killed = true;
        state.child.kill("SIGKILL");
      }, STOP_TIMEOUT_MS);
      await state.exitPromise;
      clearTimeout(timer);
    }
    const text = log();
    const problems = [...cliProblems];
    if (killed) problems.push(`server did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM (killed)`);
    else if (state.code !== 0) problems.push(`server exited with code ${state.code}, signal ${state.signal}`);
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
    if (problems.length) throw new Error(`modelhub server problems:\n- ${problems.join("\n- ")}`);
  }

  return {
    url,
    adminToken: token,
    dataDir,
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
      return state.child.pid;
    },
    sql,
    crashAndRestart,
    terminate,
    restart,
    get exited() {
      return state.exited;
    },
    cli,
    makeUser,
    makeToken,
    log,
    stop,
  };
}
