// Helper of bench/xet.sh: upload or download one file with @huggingface/hub (from
// tests/e2e/node_modules), through Xet or plain LFS, and print "seconds bytes sha256".
//   node bench/xet-client.mjs upload|download HUB_URL TOKEN REPO PATH_IN_REPO FILE xet|lfs
import { createHash } from "node:crypto";
import { openAsBlob } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { uploadFiles, downloadFile } = await import(`${ROOT}/tests/e2e/node_modules/@huggingface/hub/dist/index.mjs`);
const [op, hubUrl, accessToken, repo, inRepo, file, mode] = process.argv.slice(2);
const xet = mode === "xet";
const t0 = process.hrtime.bigint();
let bytes = 0;
const h = createHash("sha256");
if (op === "upload") {
  const content = await openAsBlob(file);
  bytes = content.size;
  await uploadFiles({ repo, accessToken, hubUrl, useXet: xet, files: [{ path: inRepo, content }] });
} else {
  const blob = await downloadFile({ repo, path: inRepo, accessToken, hubUrl, xet });
  for await (const chunk of blob.stream()) {
    bytes += chunk.length;
    h.update(chunk);
  }
}
const s = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(`${s.toFixed(3)} ${bytes} ${op === "download" ? h.digest("hex") : "-"}`);
