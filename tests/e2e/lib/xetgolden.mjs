// The Xet golden upload of the 11-byte file "hello world" (shared/docs/xet.md §10.6), shared
// by the e2e files that drive the CAS by hand, the way hf_xet does.
import { createHash } from "node:crypto";

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

export const HELLO = Buffer.from("hello world");
export const HELLO_FILE = "f15edd43b7e85cfd25e2758ffe13b99fdd09dfa817e8d9f6548722a7a126db7f";
export const HELLO_XORB_HASH = "4e39378b9d359f118190557a1f44130219a54e5fcfa07bd96cf50b466fe651b1";
export const HELLO_XORB = Buffer.concat([Buffer.from([0, 11, 0, 0, 0, 11, 0, 0]), HELLO]);

/** §2.1: hash string -> raw bytes (each 8-byte group is printed byte-reversed). */
export function hashBytes(s) {
  const out = Buffer.alloc(32);
  for (let k = 0; k < 4; k++) Buffer.from(s.slice(16 * k, 16 * k + 16), "hex").reverse().copy(out, 8 * k);
  return out;
}

/** The golden shard of "hello world". Variations for negative tests: `unpacked` (the
 * unpacked length the shard claims), `xorb` (the xorb its term and CAS entry name), `claim`
 * (the sha256 its metadata extension claims for the file). */
export function helloShard({ unpacked = 11, xorb = HELLO_XORB_HASH, claim = sha256(HELLO) } = {}) {
  const e = () => Buffer.alloc(48);
  const u32 = (b, off, v) => b.writeUInt32LE(v >>> 0, off);
  const header = e();
  Buffer.from([
    0x48, 0x46, 0x52, 0x65, 0x70, 0x6f, 0x4d, 0x65, 0x74, 0x61, 0x44, 0x61, 0x74, 0x61, 0x00, 0x55, 0x69, 0x67,
    0x45, 0x6a, 0x7b, 0x81, 0x57, 0x83, 0xa5, 0xbd, 0xd9, 0x5c, 0xcd, 0xd1, 0x4a, 0xa9,
  ]).copy(header, 0);
  header.writeBigUInt64LE(2n, 32);
  const fh = e();
  hashBytes(HELLO_FILE).copy(fh, 0);
  u32(fh, 32, 0xc0000000);
  u32(fh, 36, 1);
  const term = e();
  hashBytes(xorb).copy(term, 0);
  u32(term, 36, unpacked);
  u32(term, 40, 0);
  u32(term, 44, 1);
  const ver = e();
  hashBytes("22ef2fdcff5cea306e42ad7e15ed8a0c5e789e7d2ec34658c10d2758946847da").copy(ver, 0);
  const ext = e();
  hashBytes(claim).copy(ext, 0);
  const bookend = () => {
    const b = e();
    b.fill(0xff, 0, 32);
    return b;
  };
  const cas = e();
  hashBytes(xorb).copy(cas, 0);
  u32(cas, 36, 1);
  u32(cas, 40, unpacked);
  u32(cas, 44, 19);
  const chunk = e();
  hashBytes(HELLO_XORB_HASH).copy(chunk, 0);
  u32(chunk, 36, unpacked);
  return Buffer.concat([header, fh, term, ver, ext, bookend(), cas, chunk, bookend()]);
}
