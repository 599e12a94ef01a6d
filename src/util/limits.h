/* Every size limit in one place, each with the hostile input it bounds. */
#ifndef HUB_UTIL_LIMITS_H
#define HUB_UTIL_LIMITS_H

/* Request line + headers: a client streaming endless headers must not exhaust memory. */
#define HUB_MAX_HEADER_BYTES (64 * 1024)
/* Buffered JSON bodies (repo create, settings, batch): bounds memory per request. */
#define HUB_MAX_JSON_BODY (1024 * 1024)
/* NDJSON commit bodies carry base64 "regular" files inline. They are parsed line by line as
 * they arrive and file contents spill to disk, so this bounds the spool disk and the parse
 * work of one request, not its memory (large files must go through LFS). */
#define HUB_MAX_COMMIT_BODY (512L * 1024 * 1024)
/* One NDJSON commit line: the only part of a commit body held in memory (plus the parser's
 * copies of it). Clients send files under 10 MB inline (preupload says "lfs" above), whose
 * base64 line is under 14 MB; a longer line gets 413. */
#define HUB_MAX_NDJSON_LINE (32L * 1024 * 1024)
/* Decoded inline file contents one commit keeps in memory before it spills the rest to an
 * unlinked file under <data>/tmp: small commits never touch the disk twice. */
#define HUB_COMMIT_MEM_CONTENTS (1024 * 1024)
/* Bytes of request bodies buffered in memory by all requests together (JSON bodies, NDJSON
 * lines; MODELHUB_BODY_MEMORY_MAX): many concurrent uploads cannot exhaust memory; past it
 * a request gets 503 + Retry-After. */
#define HUB_BODY_MEMORY_MAX (256L * 1024 * 1024)
/* Retry-After (seconds) on 503 answers. */
#define HUB_RETRY_AFTER_S "5"
/* A request refused before its body is read (401/403/404/503) still reads and drops an
 * announced body up to this size, so the client sees the answer on a live connection;
 * larger or unannounced (chunked) bodies are answered at once and the connection closed
 * unread: an anonymous 500 MB upload costs nothing. 16 MiB covers an LFS multipart part
 * (a refused part URL is answered, not reset) and costs only bandwidth, never memory. */
#define HUB_MAX_DISCARD_BODY (16L * 1024 * 1024)
/* preupload bodies: clients send ≤256 files a call, each with a 512-byte sample
 * (base64): 16 MiB leaves ample room while bounding memory per request. */
#define HUB_MAX_PREUPLOAD_BODY (16L * 1024 * 1024)
/* Repo and namespace names: the Hub's client-side rule is 96 characters. */
#define HUB_MAX_NAME 96
/* User names (namespaces), same rule. */
#define HUB_MAX_USER_NAME 96
/* Path of a file inside a repo: bounds path-walking work and DB/index row sizes. */
#define HUB_MAX_PATH 1024
/* Number of path segments in one request URL: bounds the router's split array. */
#define HUB_MAX_URL_SEGMENTS 64
/* Total URL length accepted by the router. */
#define HUB_MAX_URL 8192
/* Operations in one commit: bounds tree-building work per request. */
#define HUB_MAX_COMMIT_OPS 100000
/* Objects in one LFS batch request: clients send at most 256 (git-lfs 100). */
#define HUB_MAX_LFS_BATCH 1000
/* Query parameters per request: bounds the parsed-params array. */
#define HUB_MAX_QUERY_PARAMS 128
/* Token names and other short free-text fields. */
#define HUB_MAX_SHORT_TEXT 256
/* Page size caps for listings. */
#define HUB_MAX_PAGE 1000

/* One LFS object: the Hub's per-file cap is 50 GB (and Python >= 0.31 cannot download more
 * over plain HTTP); bounds the disk one upload (e.g. an endless chunked PUT) can fill. */
#define HUB_MAX_BLOB_SIZE (50LL * 1000 * 1000 * 1000)
/* Parts of one multipart LFS upload (numbered 1..N): bounds files under tmp/parts/<oid>/. */
#define HUB_MAX_LFS_PARTS 10000
/* A git-lfs pointer file is < 1024 bytes by spec; anything longer is not a pointer, which
 * bounds how much of a blob is read to decide. */
#define HUB_MAX_LFS_POINTER 1024
/* Signed-URL subjects (repo-id/oid/size, part numbers): bounds the HMAC message. */
#define HUB_MAX_SIGN_SUBJECT 1024

/* Per-connection memory (libmicrohttpd pool): holds the request line and headers and
 * the read buffer, so it bounds header size too (a larger header block gets 431). */
#define HUB_CONN_MEMORY (64 * 1024)
/* Request arena (http_alloc): the first block lives in the request context and covers
 * path, query parameters and cleanups of typical requests; larger needs get blocks of
 * HUB_ARENA_BLOCK (or the size asked). */
#define HUB_ARENA_INLINE 2048
#define HUB_ARENA_BLOCK 8192
/* A connection that stays idle this many seconds in the middle of a request (no byte in
 * either direction) is dropped. */
#define HUB_IDLE_TIMEOUT_S 300
/* Seconds from accepting a connection to the end of its request headers
 * (MODELHUB_HEADER_TIMEOUT): a client that trickles header bytes (slowloris) is dropped. */
#define HUB_HEADER_TIMEOUT_S 20
/* Seconds a keep-alive connection may take, after a response, to send its next request's
 * headers (MODELHUB_KEEPALIVE_TIMEOUT). */
#define HUB_KEEPALIVE_TIMEOUT_S 60
/* Open connections from one client address (MODELHUB_MAX_CONNECTIONS_PER_IP; 0 = no cap):
 * one client cannot take every connection slot. Loopback counts like any address. */
#define HUB_MAX_CONNECTIONS_PER_IP 256
/* Open connections in all (MODELHUB_MAX_CONNECTIONS): the default is three quarters of the
 * file descriptor limit (raised to its hard limit at start), at most this. */
#define HUB_MAX_CONNECTIONS 16384
/* Event threads of the epoll pool (0 = two per CPU, at least 4). They only parse, route
 * and run the handlers that never block on a lock or a child, but those still wait on the
 * page cache and SQLite's WAL locks now and then: a second loop per core keeps the core
 * busy meanwhile (bench/api.sh: 2 loops ≈ 31k req/s, 4 ≈ 37k on 2 cores). */
#define HUB_EVENT_THREADS 0
/* Worker threads for handlers that may block (commits, uploads' final fsync, git, web
 * pages): started on demand; past this, jobs queue. Bounds threads and SQLite handles. */
#define HUB_MAX_WORKERS 64
/* Streamed responses (git packs, Xet reconstructions) alive at once, each with a producer
 * thread: past this, 503 + Retry-After instead of one more thread (a flood of clones must
 * not start threads without bound). MODELHUB_MAX_STREAMS overrides it. */
#define HUB_MAX_STREAMS 64
/* SQLite work a RUN_INLINE_TRY handler may do on an event thread before it is moved to a
 * worker: 300,000 virtual-machine steps (≈ 1–3 ms here; a listing answered from indexes or
 * the in-memory search index needs a few tens of thousands) or 5 ms of CPU time, checked
 * between steps (an FTS5 query can spend longer inside one step). */
#define HUB_INLINE_BUDGET 300000
#define HUB_INLINE_BUDGET_US 5000
/* Read-ahead of a streamed response (git packs, Xet reconstructions): the producer thread
 * fills this much while the event thread sends the previous block. */
#define HUB_STREAM_BLOCK (256 * 1024)

/* ---- ml/: facts derived from repo contents (docs/ml.md) ---- */
/* safetensors JSON header (the spec's own limit, 100 MB): a lying 8-byte length must not
 * make us allocate or parse more. */
#define ML_MAX_SAFETENSORS_HEADER (100LL * 1000 * 1000)
/* Shards of one sharded safetensors model whose headers are read per derive: bounds the
 * work a weight_map naming endless shards can cause. */
#define ML_MAX_SAFETENSORS_SHARDS 4096
/* safetensors header bytes parsed per derive, over all shards (each distinct object is
 * parsed once however many paths name it): bounds the CPU one commit can cost. */
#define ML_MAX_DERIVE_HEADER_BYTES (256LL * 1000 * 1000)
/* Bytes of a GGUF file read to find its metadata and tensor infos (the tokenizer vocab
 * dominates; 64 MB covers 256k-token vocabularies): bounds memory per derive. */
#define ML_MAX_GGUF_PREFIX (64LL * 1024 * 1024)
/* tokenizer.chat_template kept from a GGUF file (longer templates are truncated). */
#define ML_MAX_CHAT_TEMPLATE (64 * 1024)
/* Small repo files parsed whole (README.md, config.json, *.index.json): bounds memory
 * for a hostile multi-GB "config". */
#define ML_MAX_SMALL_FILE (5 * 1024 * 1024)
/* Markdown body of the model card kept for full-text search. */
#define ML_MAX_CARD_TEXT (1024 * 1024)
/* Tags, languages, datasets, base models, eval results kept per repo: bounds derived rows
 * a card with endless lists can create. */
#define ML_MAX_LIST_ITEMS 1000

/* Xet (docs/xet.md). Chunks in one uploaded xorb: both clients cap at 8192; bounds the
 * per-xorb chunk table a hostile body can make us build. */
#define HUB_MAX_XORB_CHUNKS 8192
/* Uncompressed bytes in one xorb (xet-core's cap): bounds decode work per upload. */
#define HUB_MAX_XORB_UNPACKED (64L * 1024 * 1024)
/* Compressed payload of one xorb chunk (xet-core allows 2 x 128 KiB): bounds one record. */
#define HUB_MAX_XORB_CHUNK_STORED (256 * 1024)
/* Serialized xorb body: 64 MiB of raw chunks + their 8-byte headers + the largest optional
 * XETBLOB footer (spec 4.3); bounds the upload buffer. */
#define HUB_MAX_XORB_BODY (HUB_MAX_XORB_UNPACKED + 8L * HUB_MAX_XORB_CHUNKS + 327776)
/* Serialized shard (upload or dedup reply): bounds the parse buffer and entry counts. */
#define HUB_MAX_SHARD_BODY (64L * 1024 * 1024)
/* Chunk visits while checking one shard against stored xorbs: each 48-byte term may name up
 * to 8192 chunks, so a 64 MiB shard could ask for ~10^10 hash steps without this. 8 Mi
 * chunks covers a 50 GB file even at the 8 KiB minimum chunk size. */
#define HUB_MAX_SHARD_CHUNK_REFS (8L * 1024 * 1024)

/* How long a ref change to main (API commit, merge, push) waits for the indexer consumer
 * before answering, so card data and search usually follow at once; past it they follow in
 * the background (the lag is in /metrics). */
#define HUB_DERIVE_WAIT_MS 2000

#endif
