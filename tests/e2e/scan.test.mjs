// `modelhub scan FILE...` (docs/scanning.md): the scan engine from the command line on
// files written here (hand-built pickles and zips; a real torch.save checkpoint when
// Debian's /usr/bin/python3 can import torch). Exit status 0 clean / 1 findings / 2 error,
// human-readable output by default and one JSON report per line with --json.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { binaryPath } from "./lib/server.mjs";

const SANITIZER_RE = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/;
let dir;

function scan(...args) {
  const r = spawnSync(binaryPath(), ["scan", ...args], {
    encoding: "utf8",
    timeout: 60000,
    env: { ...process.env, ASAN_OPTIONS: "detect_leaks=1", MODELHUB_CLAMAV_DB: "" },
  });
  if (r.error) throw r.error;
  assert.doesNotMatch(r.stderr, SANITIZER_RE, r.stderr);
  return r;
}

function file(name, bytes) {
  const p = path.join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

// A zip with the given members [name, Buffer, {deflate}], central directory included.
function zip(members) {
  const local = [];
  const central = [];
  let off = 0;
  for (const [name, data, opt = {}] of members) {
    const body = opt.deflate ? zlib.deflateRawSync(data) : data;
    const n = Buffer.from(name);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(opt.deflate ? 8 : 0, 8);
    lh.writeUInt32LE(zlib.crc32 ? zlib.crc32(data) : 0, 14);
    lh.writeUInt32LE(body.length, 18);
    lh.writeUInt32LE(data.length, 22);
    lh.writeUInt16LE(n.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(opt.deflate ? 8 : 0, 10);
    ch.writeUInt32LE(lh.readUInt32LE(14), 16);
    ch.writeUInt32LE(body.length, 20);
    ch.writeUInt32LE(data.length, 24);
    ch.writeUInt16LE(n.length, 28);
    ch.writeUInt32LE(off, 42);
    local.push(lh, n, body);
    central.push(ch, n);
    off += 30 + n.length + body.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(off, 16);
  return Buffer.concat([...local, cd, end]);
}

const SAFE = Buffer.from("\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01.", "latin1");
const EVIL = Buffer.from("cos\nsystem\n(S'echo pwned'\ntR.", "latin1");
// STACK_GLOBAL whose operands come from the memo (protocol 4)
const MEMO = Buffer.from("\x80\x04\x8c\x08builtins\x94\x8c\x04exec\x94" + "00h\x00h\x01\x93\x8c\x011\x85R.", "latin1");

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "modelhub-scan-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("a clean pickle exits 0 and says safe", () => {
  const r = scan(file("state.pkl", SAFE));
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /state\.pkl: safe/);
  assert.match(r.stdout, /import collections\.OrderedDict \(innocuous\)/);
});

test("a pickle calling os.system exits 1 with the dangerous import", () => {
  const p = file("evil.pkl", EVIL);
  let r = scan(p);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /evil\.pkl: unsafe/);
  assert.match(r.stdout, /import os\.system \(dangerous\)/);
  r = scan("--json", p);
  assert.equal(r.status, 1);
  const rep = JSON.parse(r.stdout);
  assert.equal(rep.file, p);
  assert.equal(rep.level, "unsafe");
  assert.deepEqual(rep.scanners.pickle.imports, [{ module: "os", name: "system", safety: "dangerous" }]);
  assert.deepEqual(rep.scanners.pickle.members, [p]);
  assert.equal(rep.scanners.av.status, "unscanned");
});

test("STACK_GLOBAL with memoized strings resolves to builtins.exec", () => {
  const r = scan("--json", file("memo.pkl", MEMO));
  assert.equal(r.status, 1);
  const rep = JSON.parse(r.stdout);
  assert.deepEqual(rep.scanners.pickle.imports, [{ module: "builtins", name: "exec", safety: "dangerous" }]);
});

test("a checkpoint zip: data.pkl is walked, a ../ member is an archive finding", () => {
  const ok = file("model.pt", zip([["archive/data.pkl", SAFE], ["archive/data/0", Buffer.alloc(64)]]));
  let r = scan("--json", ok);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  let rep = JSON.parse(r.stdout);
  assert.equal(rep.level, "safe");
  assert.deepEqual(rep.scanners.pickle.members, ["archive/data.pkl"]);
  assert.equal(rep.scanners.archive.status, "safe");

  const bad = file("pytorch_model.bin", zip([["archive/data.pkl", EVIL, { deflate: true }], ["../../evil.sh", Buffer.from("x")]]));
  r = scan("--json", bad);
  assert.equal(r.status, 1);
  rep = JSON.parse(r.stdout);
  assert.equal(rep.level, "unsafe");
  assert.equal(rep.scanners.pickle.status, "unsafe");
  assert.equal(rep.scanners.archive.status, "unsafe");
  assert.ok(rep.scanners.archive.findings.some((f) => f.member === "../../evil.sh" && /escapes/.test(f.message)));
});

test("several files: one JSON line each, exit 1 when any has findings; 2 on errors", () => {
  const a = file("a.pkl", SAFE);
  const b = file("b.pkl", EVIL);
  let r = scan("--json", "--clamav-db", path.join(dir, "no-such-db"), a, b);
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => [l.file, l.level]), [[a, "safe"], [b, "unsafe"]]);

  r = scan(a, path.join(dir, "missing.pkl"));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /missing\.pkl: cannot open/);
  r = scan();
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: modelhub scan/);
  r = scan("--bogus", a);
  assert.equal(r.status, 2);
});

const HAVE_TORCH =
  existsSync("/usr/bin/python3") && spawnSync("/usr/bin/python3", ["-c", "import torch"]).status === 0;

test("a real torch.save checkpoint (zip and legacy) is safe", { skip: !HAVE_TORCH && "python3-torch not importable by /usr/bin/python3" }, () => {
  const z = path.join(dir, "real.pt");
  const l = path.join(dir, "legacy.pth");
  const py = spawnSync("/usr/bin/python3", [
    "-c",
    "import sys, torch; sd = {'w': torch.zeros(3, 3), 'b': torch.ones(3)}; " +
      "torch.save(sd, sys.argv[1]); torch.save(sd, sys.argv[2], _use_new_zipfile_serialization=False)",
    z,
    l,
  ]);
  assert.equal(py.status, 0, String(py.stderr));
  const r = scan("--json", z, l);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  for (const rep of r.stdout.trim().split("\n").map((x) => JSON.parse(x))) {
    assert.equal(rep.level, "safe");
    assert.ok(rep.scanners.pickle.imports.some((i) => i.name === "_rebuild_tensor_v2" && i.safety === "innocuous"));
  }
});
