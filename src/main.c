/* modelhub: one binary, subcommands (like git). */
#include <errno.h>
#include <getopt.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "audit/audit.h"
#include "auth/auth.h"
#include "blob/blob.h"
#include "blob/migrate.h"
#include "bundle/bundle.h"
#include "collections/collections.h"
#include "db/search.h"
#include "db/collections.h"
#include "db/copy.h"
#include "db/db.h"
#include "db/discussions.h"
#include "db/events.h"
#include "db/gov.h"
#include "db/jobs.h"
#include "db/mirror.h"
#include "db/scan.h"
#include "db/schema.h"
#include "db/sessions.h"
#include "db/lock.h"
#include "db/stmt.h"
#include "db/webhooks.h"
#include "db/xet.h"
#include "events/events.h"
#include "git/git.h"
#include "gov/gov.h"
#include "http/http.h"
#include "index/index.h"
#include "jobs/jobs.h"
#include "lfs/lfs.h"
#include "mirror/mirror.h"
#include "repo/repo.h"
#include "scan/scan.h"
#include "security/security.h"
#include "util/error.h"
#include "util/hub.h"
#include "util/thread.h"
#include "web/web.h"
#include "xetsrv/pull.h"
#include "webhooks/webhooks.h"
#include "xetsrv/xetsrv.h"

#define EXIT_USAGE 2

static const char *g_data;
/* --db: sqlite (default) or a postgres:// URL (MODELHUB_DB; docs/scale-out.md). */
static const char *g_db;

static int usage_main(FILE *f) {
  fprintf(f,
          "usage: modelhub [--data DIR] <command> [args]\n\n"
          "commands:\n"
          "  serve                      run the hub (HTTP API, git, LFS, web)\n"
          "  migrate [--status]         apply pending schema steps / list schema versions\n"
          "  storage migrate --to s3://BUCKET[/PREFIX]\n"
          "                             copy the local blob store to S3 and switch to it\n"
          "  db copy --to postgres://…  copy the SQLite database into PostgreSQL\n"
          "  user add NAME              create a user\n"
          "  org add NAME --owner USER  create an organization\n"
          "  org member add ORG USER --role read|contributor|write|admin\n"
          "  org member remove ORG USER\n"
          "  token create USER --name N --role read|write\n"
          "  token list [USER]\n"
          "  token revoke TOKEN-ID|NAME [--user USER]\n"
          "  audit verify               check the audit log's hash chain\n"
          "  jobs list [--state S] [--kind K] [--limit N] [--json]\n"
          "  jobs retry ID | jobs cancel ID\n"
          "                             background jobs (docs/jobs.md)\n"
          "  scan --rescan [--all|--av]  re-queue security scans (docs/scanning.md)\n"
          "  scan [--json] [--clamav-db DIR] FILE...\n"
          "                             security-scan local files (docs/scanning.md)\n"
          "  storage stats [--json]     Xet storage: logical / stored bytes, dedup ratio\n"
          "  fsck [--full]              remove stale git ref locks; verify stored xorbs and\n"
          "                             file reconstructions\n"
          "  export NS/NAME[@REV] [--type T] > FILE\n"
          "                             write a self-verifying bundle of a repository\n"
          "  import FILE [--force]      load a bundle (verified whole first)\n"
          "  xet-pull --upstream URL …  store one Xet file of an upstream hub here\n"
          "  mirror pull NS/NAME[@REV] [--include GLOB] [--type model|dataset|space]\n"
          "                             fill the mirror's cache ahead of time (docs/mirror.md)\n\n"
          "Global options: --data DIR (or MODELHUB_DATA; default ./data),\n"
          "  --db sqlite|postgres://URL (or MODELHUB_DB; default sqlite in the data dir).\n"
          "Run 'modelhub <command> --help' for a command's options.\n");
  return f == stderr ? EXIT_USAGE : 0;
}

static int die(const char *what) {
  fprintf(stderr, "modelhub: %s: %s\n", what, hub_error_msg());
  return 1;
}

static int mkdirs(const char *base) {
  char p[4200];
  const char *subs[] = {"", "/repos", "/tmp", "/blobs"};
  for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
    snprintf(p, sizeof p, "%s%s", base, subs[i]);
    if (mkdir(p, 0750) && errno != EEXIST)
      return hub_error_set(HUB_ERROR, "cannot create %s: %s", p, strerror(errno));
  }
  return 0;
}

/* Where LFS objects and Xet xorbs live: the data dir, or s3://BUCKET[/PREFIX]
 * (--blob-store / MODELHUB_BLOB_STORE; docs/blob.md). */
static const char *g_blob_store;

/* An s3:// store is recorded in <data>/blob-store, so that every later command on the data
 * dir (export, import, xet-pull, ... run without the option) uses the same store. An
 * explicit location wins and replaces the record. */
static char g_blob_recorded[1024];

static int remember_blob_store(void) {
  char path[4200];
  snprintf(path, sizeof path, "%s/blob-store", g_data);
  const char *loc = g_blob_store && *g_blob_store ? g_blob_store : NULL;
  if (!loc) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(g_blob_recorded, 1, sizeof g_blob_recorded - 1, f);
    fclose(f);
    g_blob_recorded[n] = 0;
    g_blob_recorded[strcspn(g_blob_recorded, "\r\n")] = 0;
    if (strncmp(g_blob_recorded, "s3://", 5))
      return hub_error_set(HUB_EINVALID, "%s does not name an s3:// store", path);
    g_blob_store = g_blob_recorded;
    return 0;
  }
  if (strncmp(loc, "s3://", 5)) {
    if (unlink(path) && errno != ENOENT)
      return hub_error_set(HUB_ERROR, "cannot remove %s: %s", path, strerror(errno));
    return 0;
  }
  FILE *f = fopen(path, "w");
  if (!f || fprintf(f, "%s\n", loc) < 0 || fclose(f)) {
    if (f) fclose(f);
    return hub_error_set(HUB_ERROR, "cannot write %s: %s", path, strerror(errno));
  }
  return 0;
}

/* Schema versions (db/schema.h, docs/scale-out.md "Operations"): every command refuses a
 * database a newer modelhub migrated; with --no-migrate / MODELHUB_NO_MIGRATE=1 also one
 * with pending steps (multi-node: `modelhub migrate` is run once, explicitly). */
enum { SCHEMA_GATE = 0, SCHEMA_MIGRATE = 1 };
static int g_schema_mode = SCHEMA_GATE;
static int g_no_migrate = -1; /* -1: read MODELHUB_NO_MIGRATE */

static int schema_gate(void) {
  if (g_no_migrate < 0) {
    const char *v = getenv("MODELHUB_NO_MIGRATE");
    g_no_migrate = v && *v && strcmp(v, "0") && strcasecmp(v, "false") && strcasecmp(v, "off");
  }
  db_schema_state s;
  int rrc = db_schema_read(g_data, &s);
  /* A database server that does not answer: the open that follows reports it, and nothing
   * migrates while it is away. */
  if (rrc == HUB_EUNAVAILABLE) return 0;
  if (rrc) return die("database");
  char msg[512];
  int rc = 0;
  if (db_schema_newer(&s, msg, sizeof msg) ||
      (g_schema_mode == SCHEMA_GATE && g_no_migrate && db_schema_pending(&s, msg, sizeof msg))) {
    fprintf(stderr, "modelhub: %s\n", msg);
    rc = 1;
  }
  db_schema_state_dispose(&s);
  return rc;
}

static int open_data(void) {
  if (!g_blob_store) g_blob_store = getenv("MODELHUB_BLOB_STORE");
  if (db_engine_select(g_db)) return die("--db");
  if (mkdirs(g_data)) return die("data dir");
  if (schema_gate()) return 1;
  if (remember_blob_store()) return die("blob store");
  if (blob_set_location(g_blob_store && *g_blob_store ? g_blob_store : g_data))
    return die("blob store");
  if (mkdirs(g_data) || db_global_init(g_data) || db_jobs_init() || auth_init() ||
      auth_gate_init() || audit_init() || repo_global_init())
    return die("data dir");
  return 0;
}

static int schema_record(void) {
  char binary[64];
  snprintf(binary, sizeof binary, "modelhub %s", HUB_VERSION);
  return db_schema_record(binary);
}

/* The schema modules that open_data does not migrate (their services do, at serve's
 * start), for `modelhub migrate`: together every module of DB_SCHEMA_KNOWN (db/schema.c). */
static int migrate_modules(void) {
  int rc = db_events_init();
  if (!rc) rc = db_gov_init();
  if (!rc) rc = db_disc_init();
  if (!rc) rc = db_xet_migrate();
  if (!rc) rc = db_scan_init();
  if (!rc) rc = db_webhooks_init();
  if (!rc) rc = db_mirror_init();
  if (!rc) rc = db_collections_init();
  if (!rc) rc = db_sessions_init();
  if (!rc) rc = db_locks_init();
  if (!rc) rc = schema_record();
  return rc;
}

static int schema_have(const db_schema_state *s, const char *module) {
  for (size_t i = 0; i < s->n; i++)
    if (!strcmp(s->v[i].module, module)) return s->v[i].have;
  return 0;
}

static void schema_print(const db_schema_state *s) {
  if (!s->exists) printf("no database schema yet\n");
  printf("%-24s %-9s %-7s %s\n", "MODULE", "DATABASE", "BINARY", "STATE");
  for (size_t i = 0; i < s->n; i++) {
    const db_schema_entry *e = &s->v[i];
    char known[16] = "-";
    if (e->known >= 0) snprintf(known, sizeof known, "%d", e->known);
    printf("%-24s %-9d %-7s %s\n", e->module, e->have, known,
           e->known < 0         ? "not known to this binary"
           : e->have > e->known ? "NEWER than this binary: upgrade modelhub"
           : e->have < e->known ? "pending"
                                : "up to date");
  }
  if (s->last_binary[0]) {
    char when[32] = "";
    time_t t = (time_t)(s->last_ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("last migrated by %s at %s\n", s->last_binary, when);
  }
}

/* `modelhub migrate [--status]`: apply every pending schema step (serve does it too unless
 * --no-migrate), or only list the versions (also on a database a newer binary migrated). */
static int cmd_migrate(int argc, char **argv) {
  const char *usage = "usage: modelhub migrate [--status]\n"
                      "  apply every pending schema step and print what was done;\n"
                      "  --status: list each schema module's version in the database and in\n"
                      "  this binary, changing nothing\n";
  int status = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--status"))
      status = 1;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(usage, stdout);
      return 0;
    } else {
      fprintf(stderr, "modelhub migrate: unexpected argument '%s'\n%s", argv[i], usage);
      return EXIT_USAGE;
    }
  }
  if (db_engine_select(g_db)) return die("--db");
  db_schema_state before, after;
  if (db_schema_read(g_data, &before)) return die("database");
  if (status) {
    schema_print(&before);
    db_schema_state_dispose(&before);
    return 0;
  }
  g_schema_mode = SCHEMA_MIGRATE;
  if (open_data()) { /* it said why */
    db_schema_state_dispose(&before);
    return 1;
  }
  if (migrate_modules()) {
    fprintf(stderr, "modelhub migrate: %s\n", hub_error_msg());
    db_schema_state_dispose(&before);
    return 1;
  }
  int rc = db_schema_read(g_data, &after);
  if (rc) {
    db_schema_state_dispose(&before);
    return die("database");
  }
  int steps = 0;
  for (size_t i = 0; i < after.n; i++) {
    int was = schema_have(&before, after.v[i].module);
    if (after.v[i].have != was) {
      printf("%s: %d -> %d\n", after.v[i].module, was, after.v[i].have);
      steps += after.v[i].have - was;
    }
  }
  if (steps)
    printf("applied %d schema step%s\n", steps, steps == 1 ? "" : "s");
  else
    printf("schema up to date\n");
  int pending = db_schema_pending(&after, NULL, 0);
  if (pending) fprintf(stderr, "modelhub migrate: BUG: %d steps still pending\n", pending);
  db_schema_state_dispose(&before);
  db_schema_state_dispose(&after);
  db_global_shutdown();
  return pending ? 1 : 0;
}

/* `modelhub storage migrate --to s3://BUCKET[/PREFIX]`: copy the data dir's local blob
 * stores (LFS objects at <data>, Xet xorbs and shards at <data>/xet) into the bucket,
 * verified and resumable (blob/migrate.h), then record the bucket in <data>/blob-store so
 * the next start of a node (and every later command) uses it. A running node keeps reading
 * the local store until it restarts; running the command again copies what was written in
 * the meantime (docs/scale-out.md "Operations" has the order of steps). */
static int cmd_storage_migrate(int argc, char **argv) {
  const char *usage =
      "usage: modelhub storage migrate --to s3://BUCKET[/PREFIX] [--no-switch]\n"
      "  copies every local LFS object and Xet xorb/shard into the bucket (verified; objects\n"
      "  already there are skipped, so running it again copies only new ones), then records\n"
      "  the bucket in <data>/blob-store; restart the nodes to use it. --no-switch: copy\n"
      "  only. S3 settings: MODELHUB_S3_ENDPOINT, AWS_* (docs/blob.md)\n";
  const char *to = NULL;
  int do_switch = 1;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--to") && i + 1 < argc)
      to = argv[++i];
    else if (!strncmp(argv[i], "--to=", 5))
      to = argv[i] + 5;
    else if (!strcmp(argv[i], "--no-switch"))
      do_switch = 0;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(usage, stdout);
      return 0;
    } else {
      fprintf(stderr, "modelhub storage migrate: unexpected argument '%s'\n%s", argv[i], usage);
      return EXIT_USAGE;
    }
  }
  if (!to || strncmp(to, "s3://", 5) || !to[5] || to[5] == '/') {
    fprintf(stderr, "modelhub storage migrate: --to s3://BUCKET[/PREFIX] is required\n%s", usage);
    return EXIT_USAGE;
  }
  /* It never opens the database, but like every command it refuses a newer schema. */
  if (db_engine_select(g_db)) return die("--db");
  if (schema_gate()) return 1;
  char loc[1024];
  size_t n = (size_t)snprintf(loc, sizeof loc, "%s", to);
  while (n > 5 && loc[n - 1] == '/')
    loc[--n] = 0;
  static const struct {
    const char *sub, *what;
  } STORES[] = {{"", "LFS objects"}, {"xet", "Xet xorbs and shards"}};
  int rc = 0;
  for (size_t i = 0; i < sizeof STORES / sizeof STORES[0] && !rc; i++) {
    char src[4200], dst_root[1100];
    snprintf(src, sizeof src, "%s%s%s", g_data, *STORES[i].sub ? "/" : "", STORES[i].sub);
    snprintf(dst_root, sizeof dst_root, "%s%s%s", loc, *STORES[i].sub ? "/" : "", STORES[i].sub);
    blob_store *dst = NULL;
    blob_migrate_stats st;
    if ((rc = blob_store_open(&dst, "s3", dst_root)) || (rc = blob_store_check(dst))) {
      fprintf(stderr, "modelhub storage migrate: %s: %s\n", dst_root, hub_error_msg());
      blob_store_free(dst);
      break;
    }
    rc = blob_migrate_fs(src, dst, &st, NULL, NULL);
    blob_store_free(dst);
    printf("%s: %lld objects, %lld copied (%lld bytes), %lld already there, %lld failed\n",
           STORES[i].what, (long long)st.objects, (long long)st.copied, (long long)st.bytes_copied,
           (long long)st.skipped, (long long)st.failed);
    if (rc) fprintf(stderr, "modelhub storage migrate: %s\n", hub_error_msg());
  }
  if (rc) {
    fprintf(stderr, "modelhub storage migrate: the blob store was not switched; run it again\n");
    return 1;
  }
  if (!do_switch) return 0;
  char path[4200], tmp[4300];
  snprintf(path, sizeof path, "%s/blob-store", g_data);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f || fprintf(f, "%s\n", loc) < 0 || fflush(f) || fsync(fileno(f)) || fclose(f) ||
      rename(tmp, path)) {
    fprintf(stderr, "modelhub storage migrate: cannot write %s: %s\n", path, strerror(errno));
    return 1;
  }
  printf("blob store of %s is now %s (recorded in %s): restart the nodes; run this again after "
         "writes stopped to copy objects stored in the meantime\n",
         g_data, loc, path);
  return 0;
}

static int has_help(int argc, char **argv);

static void print_copied(const char *table, int64_t rows, void *payload) {
  (void)payload;
  printf("%-28s %lld rows\n", table, (long long)rows);
  fflush(stdout);
}

/* `modelhub db copy --to postgres://…`: the data dir's SQLite database into a new
 * PostgreSQL database: its schema through the normal migrations, then every table's rows
 * (db/copy.h). Run it with the nodes stopped (or read-only): rows written during the copy
 * may be missed. */
static int cmd_db(int argc, char **argv) {
  const char *usage = "usage: modelhub db copy --to postgres://USER@HOST:PORT/DB\n"
                      "  creates the schema in a new PostgreSQL database (the migrations) and\n"
                      "  copies every table of the data dir's SQLite database into it, checking\n"
                      "  row counts; then start the nodes with --db postgres://…\n";
  const char *to = NULL;
  if (argc < 2 || strcmp(argv[1], "copy")) {
    fputs(usage, has_help(argc, argv) ? stdout : stderr);
    return has_help(argc, argv) ? 0 : EXIT_USAGE;
  }
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--to") && i + 1 < argc)
      to = argv[++i];
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(usage, stdout);
      return 0;
    } else {
      fprintf(stderr, "modelhub db copy: unexpected argument '%s'\n%s", argv[i], usage);
      return EXIT_USAGE;
    }
  }
  if (!to || (strncmp(to, "postgres://", 11) && strncmp(to, "postgresql://", 13))) {
    fprintf(stderr, "modelhub db copy: --to postgres://… is required\n%s", usage);
    return EXIT_USAGE;
  }
  /* The source: this data dir's SQLite file, at the versions this binary knows. */
  char path[4200];
  snprintf(path, sizeof path, "%s/modelhub.db", g_data);
  if (access(path, R_OK)) {
    fprintf(stderr, "modelhub db copy: no database at %s\n", path);
    return 1;
  }
  db_schema_state src, dst;
  char msg[512];
  if (db_engine_select("sqlite") || db_schema_read(g_data, &src)) return die("db copy");
  int stale = db_schema_newer(&src, msg, sizeof msg) || db_schema_pending(&src, msg, sizeof msg);
  if (stale) {
    fprintf(stderr, "modelhub db copy: source: %s\n", msg);
    db_schema_state_dispose(&src);
    return 1;
  }
  /* The destination: the same schema, made by the migrations. */
  g_db = to;
  if (open_data()) { /* it said why */
    db_schema_state_dispose(&src);
    return 1;
  }
  if (migrate_modules()) {
    fprintf(stderr, "modelhub db copy: destination schema: %s\n", hub_error_msg());
    db_schema_state_dispose(&src);
    return 1;
  }
  if (db_schema_read(g_data, &dst)) {
    db_schema_state_dispose(&src);
    return die("db copy");
  }
  int rc = 0;
  for (size_t i = 0; i < src.n && !rc; i++) {
    const db_schema_entry *e = &src.v[i];
    if (e->known < 0) continue;
    for (size_t j = 0; j < dst.n; j++)
      if (!strcmp(dst.v[j].module, e->module) && dst.v[j].have != e->have) {
        fprintf(stderr,
                "modelhub db copy: module %s is at version %d in the source, %d in the "
                "destination\n",
                e->module, e->have, dst.v[j].have);
        rc = 1;
      }
  }
  db_schema_state_dispose(&src);
  db_schema_state_dispose(&dst);
  if (rc) return 1;
  db_copy_stats st;
  if (db_copy_from_sqlite(path, print_copied, NULL, &st)) return die("db copy");
  printf("copied %d tables, %lld rows (%d SQLite-only tables left out)\n", st.tables,
         (long long)st.rows, st.skipped);
  if (st.triggers)
    fprintf(stderr, "modelhub db copy: this role may not set session_replication_role: the "
                    "destination's triggers ran during the copy\n");
  db_global_shutdown();
  return 0;
}

/* CLI actions are audited like API ones, with the local user as actor and "cli" as source. */
static void cli_audit(const char *action, const char *ns, const char *target, json_t *details) {
  const char *user = getenv("SUDO_USER") ? getenv("SUDO_USER") : getenv("USER");
  char actor[HUB_MAX_USER_NAME + 8];
  snprintf(actor, sizeof actor, "cli:%s", user ? user : "?");
  audit_ctx ctx = {NULL, actor, "cli"};
  audit_log(&ctx, action, ns, target, details);
}

/* The route tables, registered with the HTTP layer in match order (specific first). This
 * is the top of the layering: main.c knows every module; no module knows who calls it. */
static int register_routes(void) {
  index_start();                                     /* download counters flush in the background */
  events_set_consumer("xet", xetsrv_consume);        /* LFS -> Xet conversion after ref moves */
  events_set_consumer("scan", security_consume);     /* security scans of new objects */
  events_set_consumer("webhooks", webhooks_consume); /* deliveries (webhooks/) */
  webhooks_set_discussion_source(gov_discussion_json); /* payloads' discussion objects */
  if (events_start()) return HUB_ERROR;                /* the event consumers (events/dispatch.c) */
  db_search_accel_warm(); /* the in-memory id index for term searches (db/accel.c) */
  http_routes_add(api_system_routes);
  if (xetsrv_register()) return HUB_ERROR; /* Xet token routes and the CAS (xetsrv/) */
  http_routes_add(api_account_routes);
  http_routes_add(api_org_routes);
  http_routes_add(api_scan_routes);
  http_routes_add(api_token_routes);
  http_routes_add(webhooks_routes);
  http_routes_add(api_repo_routes);
  http_routes_add(api_gate_routes);
  http_routes_add(gov_routes);
  if (collections_init()) return HUB_ERROR; /* the module's tables (db/collections.c) */
  http_routes_add(collections_routes);
  http_routes_add(api_list_routes);
  http_routes_add(api_info_routes);
  http_routes_add(api_tree_routes);
  http_routes_add(api_refs_routes);
  http_routes_add(api_commit_routes);
  http_routes_add(lfs_routes);
  http_routes_add(git_routes);
  http_routes_add(api_resolve_routes);
  if (mirror_enabled()) { /* repos not here may come from an upstream (mirror/) */
    http_set_repo_source(&mirror_repo_source);
    lfs_set_fetch_hook(mirror_lfs_fetch);
  }
  if (web_register()) return HUB_ERROR; /* last: "/{ns}/{name}" and its 404 match anything */
  return 0;
}

/* The URL-signing key lives in the DB so every node and restart agrees on it. */
static int load_sign_key(unsigned char *key, size_t len) {
  size_t n = 0;
  if (db_kv_get("sign_key", key, len, &n) == 0 && n == len) return 0;
  if (RAND_bytes(key, (int)len) != 1) return hub_error_set(HUB_ERROR, "no randomness");
  /* First writer wins: two nodes starting at once on a new database must not each keep
   * a key of their own (URLs signed by one would fail on the other). */
  return db_kv_claim("sign_key", key, len);
}

static int env_off(const char *name) {
  const char *v = getenv(name);
  return v && (!strcmp(v, "0") || !strcmp(v, "off") || !strcmp(v, "false"));
}

static int has_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
  return 0;
}

/* First start: an admin user and a write token, printed once (only its hash is kept). */
static int bootstrap_admin(void) {
  int64_t users = 0;
  db_account_count(ACCOUNT_USER, &users);
  if (users) return 0;
  db_account a;
  memset(&a, 0, sizeof a);
  snprintf(a.name, sizeof a.name, "admin");
  a.is_admin = 1;
  int rc = db_account_create(&a);
  if (rc == HUB_EEXISTS) return 0; /* another node starting at the same time made it */
  if (rc) return die("creating admin");
  char tok[AUTH_TOKEN_LEN + 1];
  if (auth_token_issue(a.id, "admin-bootstrap", PERM_WRITE, 0, tok, NULL))
    return die("creating admin token");
  printf("Created user 'admin'. Its write token is shown once, keep it:\n"
         "admin token: %s\n",
         tok);
  fflush(stdout);
  return 0;
}

/* ---- stale ref locks (docs/repo.md): removed at start-up and by fsck -------------- */

static int print_stale_lock(const char *gitdir, const char *rel, int removed, void *payload) {
  FILE *out = payload;
  fprintf(out, "%s %s/%s: %s\n", out == stderr ? "modelhub: stale lock" : "STALE lock", gitdir, rel,
          removed ? "removed" : "could not be removed");
  return 0;
}

/* Returns the number of stale locks found, or a negative HUB_E* code. */
static int sweep_repo_locks(FILE *out, size_t *nrepos) {
  char root[4200];
  snprintf(root, sizeof root, "%s/repos", g_data);
  return repo_locks_sweep_tree(root, print_stale_lock, out, nrepos);
}

/* `modelhub fsck`: git repositories first (stale ref locks), then the Xet store. */
static int cmd_fsck(int argc, char **argv) {
  size_t nrepos = 0;
  int found = sweep_repo_locks(stdout, &nrepos);
  if (found < 0) {
    fprintf(stderr, "modelhub fsck: %s\n", hub_error_msg());
    return 1;
  }
  printf("checked %zu git repositories; %d problems (stale ref locks, removed)\n", nrepos, found);
  fflush(stdout);
  return xetsrv_main(argc, argv);
}

static int cmd_serve(int argc, char **argv) {
  const char *listen = getenv("MODELHUB_LISTEN") ? getenv("MODELHUB_LISTEN") : "127.0.0.1:8080";
  const char *pub = getenv("MODELHUB_PUBLIC_URL");
  const char *threads = getenv("MODELHUB_THREADS");
  const char *grace = getenv("MODELHUB_SHUTDOWN_GRACE");
  const char *maint = getenv("MODELHUB_MAINTENANCE_INTERVAL");
  static struct option opts[] = {{"listen", required_argument, 0, 'l'},
                                 {"threads", required_argument, 0, 't'},
                                 {"data", required_argument, 0, 'd'},
                                 {"public-url", required_argument, 0, 'p'},
                                 {"help", no_argument, 0, 'h'},
                                 {"grace", required_argument, 0, 'g'},
                                 {"blob-store", required_argument, 0, 'b'},
                                 {"blob-redirect", no_argument, 0, 'r'},
                                 {"db", required_argument, 0, 'D'},
                                 {"upstream", required_argument, 0, 'u'},
                                 {"mirror-config", required_argument, 0, 'm'},
                                 {"offline", no_argument, 0, 'o'},
                                 {"no-migrate", no_argument, 0, 'N'},
                                 {0, 0, 0, 0}};
  const char *redirect = getenv("MODELHUB_BLOB_REDIRECT");
  const char *redirect_exp = getenv("MODELHUB_BLOB_REDIRECT_EXPIRES");
  const char *upstream = getenv("MODELHUB_UPSTREAM");
  const char *mirror_cfg = getenv("MODELHUB_MIRROR_CONFIG");
  int offline = getenv("MODELHUB_OFFLINE") ? !env_off("MODELHUB_OFFLINE") : -1;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'l':
      listen = optarg;
      break;
    case 'd':
      g_data = optarg;
      break;
    case 'p':
      pub = optarg;
      break;
    case 't':
      threads = optarg;
      break;
    case 'g':
      grace = optarg;
      break;
    case 'b':
      g_blob_store = optarg;
      break;
    case 'r':
      redirect = "1";
      break;
    case 'D':
      g_db = optarg;
      break;
    case 'u':
      upstream = optarg;
      break;
    case 'm':
      mirror_cfg = optarg;
      break;
    case 'o':
      offline = 1;
      break;
    case 'N':
      g_no_migrate = 1;
      break;
    case 'h':
      printf("usage: modelhub serve [--listen HOST:PORT] [--data DIR] [--public-url URL] "
             "[--threads N] [--grace SECONDS] [--blob-store LOCATION] [--db URL]\n"
             "       [--blob-redirect]\n"
             "  --listen      address to listen on (MODELHUB_LISTEN; default 127.0.0.1:8080)\n"
             "  --data        data directory (MODELHUB_DATA; default ./data)\n"
             "  --public-url  base URL clients use, for links (MODELHUB_PUBLIC_URL; default "
             "from the Host header)\n"
             "  --threads     HTTP event threads (MODELHUB_THREADS; default two per CPU, at "
             "least 4)\n"
             "  --grace       seconds requests in flight get to finish after SIGTERM "
             "(MODELHUB_SHUTDOWN_GRACE; default %d)\n"
             "  --blob-store  where LFS objects and Xet xorbs live: s3://BUCKET[/PREFIX] "
             "(MODELHUB_BLOB_STORE; default the data directory)\n"
             "  --db          sqlite or postgres://… (MODELHUB_DB; default sqlite in the data "
             "directory; PostgreSQL is not usable yet, docs/scale-out.md)\n"

             "  --upstream URL        mirror repos from this hub (MODELHUB_UPSTREAM; token in "
             "MODELHUB_UPSTREAM_TOKEN)\n"
             "  --mirror-config FILE  upstreams, allow/deny patterns, cache size, TTL "
             "(MODELHUB_MIRROR_CONFIG; docs/mirror.md)\n"
             "  --offline             serve only what the mirror has cached (MODELHUB_OFFLINE)\n"
             "  --no-migrate          refuse to start while schema steps are pending instead "
             "of applying them (MODELHUB_NO_MIGRATE=1; run 'modelhub migrate')\n"
             "  --blob-redirect  answer downloads from an s3 store with a 302 to a presigned "
             "URL (MODELHUB_BLOB_REDIRECT=1; lifetime MODELHUB_BLOB_REDIRECT_EXPIRES, default "
             "300 s)\n",
             HUB_SHUTDOWN_GRACE_S);
      return 0;
    default:
      return EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "modelhub serve: unexpected argument '%s'\n", argv[optind]);
    return EXIT_USAGE;
  }
  int nthreads = 0;
  if (threads && *threads) {
    char *end;
    long v = strtol(threads, &end, 10);
    if (*end || v < 1 || v > 64) {
      fprintf(stderr, "modelhub serve: --threads must be a number from 1 to 64\n");
      return EXIT_USAGE;
    }
    nthreads = (int)v;
  }
  int grace_s = HUB_SHUTDOWN_GRACE_S;
  if (grace && *grace) {
    char *end;
    long v = strtol(grace, &end, 10);
    if (*end || v < 0 || v > 86400) {
      fprintf(stderr, "modelhub serve: --grace must be a number of seconds from 0 to 86400\n");
      return EXIT_USAGE;
    }
    grace_s = (int)v;
  }
  long maint_s = 3600;
  if (maint && *maint) {
    char *end;
    maint_s = strtol(maint, &end, 10);
    if (*end || maint_s < 0) {
      fprintf(stderr, "modelhub serve: MODELHUB_MAINTENANCE_INTERVAL must be seconds (0: off)\n");
      return EXIT_USAGE;
    }
  }
  char pubbuf[1024];
  if (pub) { /* no trailing slash: clients concatenate paths onto it */
    snprintf(pubbuf, sizeof pubbuf, "%s", pub);
    size_t n = strlen(pubbuf);
    while (n && pubbuf[n - 1] == '/')
      pubbuf[--n] = 0;
    pub = pubbuf;
  }
  if (redirect && *redirect && strcmp(redirect, "0") && strcasecmp(redirect, "false")) {
    long v = 300;
    if (redirect_exp && *redirect_exp) {
      char *end;
      v = strtol(redirect_exp, &end, 10);
      if (*end || v < 1 || v > 604800) {
        fprintf(stderr, "modelhub serve: MODELHUB_BLOB_REDIRECT_EXPIRES must be seconds from 1 "
                        "to 604800\n");
        return EXIT_USAGE;
      }
    }
    blob_set_redirect(v);
  }
  if (mirror_configure(upstream, getenv("MODELHUB_UPSTREAM_TOKEN"), mirror_cfg, offline)) {
    fprintf(stderr, "modelhub serve: %s\n", hub_error_msg());
    return EXIT_USAGE;
  }
  if (open_data()) return 1;
  if (db_locks_init()) return die("node leases");
  if (blob_redirect_seconds() && strncmp(blob_location(), "s3://", 5))
    fprintf(stderr, "modelhub: --blob-redirect needs an s3:// blob store; downloads stream "
                    "through the hub\n");
  if (sweep_repo_locks(stderr, NULL) < 0) fprintf(stderr, "modelhub: %s\n", hub_error_msg());
  if (bootstrap_admin()) return 1;
  /* The hub context (util/hub.h): built once here and passed down to the modules. */
  static unsigned char sign_key[32];
  hub_ctx ctx = {db_data_dir(), NULL, pub, sign_key, sizeof sign_key, !env_off("MODELHUB_XET")};
  if (blob_store_open_at(&ctx.blobs, "")) return die("stores");
  blob_store_sweep_tmp(ctx.blobs, 24 * 3600, NULL);
  if (load_sign_key(sign_key, sizeof sign_key)) return die("signing key");
  if (api_init(&ctx)) return die("stores");
  if (security_init(ctx.blobs)) return die("scan service");
  security_set_read_fallback(xetsrv_read_fallback()); /* Xet-only files are scanned too */
  char hook_base[300];
  snprintf(hook_base, sizeof hook_base, "http://%s", listen);
  if (webhooks_init(&ctx, hook_base)) return die("webhooks");
  if (mirror_init(&ctx)) return die("mirror");
  if (register_routes()) return die("routes");
  /* Every module has migrated by now: record which binary did it (db/schema.h). */
  if (!g_no_migrate && schema_record())
    fprintf(stderr, "modelhub: recording the schema version: %s\n", hub_error_msg());
  /* Refs that moved while no server watched (a push cut short by a crash, plain git in
   * the bare repository): audit and re-index them before serving. */
  if (git_refs_reconcile()) fprintf(stderr, "modelhub: start-up ref check: %s\n", hub_error_msg());
  if (git_maint_start(maint_s)) return die("maintenance");
  if (jobs_start(0)) return die("job runner");
  security_resume(); /* objects queued for a scan whose job was lost get one */
  /* When the grace runs out, running git children are stopped (an unfinished push then
   * moves no ref) so their requests end. */
  http_config cfg = {listen, ctx.public_url, nthreads, grace_s, git_children_stop};
  int rc = http_serve(&cfg);
  mirror_stop(); /* object fetches still running end before the process does */
  git_maint_stop();
  jobs_stop();
  security_shutdown();
  if (rc) return die("serve");
  db_global_shutdown();
  return 0;
}

static char *read_password_stdin(void) {
  static char buf[1024];
  if (!fgets(buf, sizeof buf, stdin)) return NULL;
  buf[strcspn(buf, "\r\n")] = 0;
  return buf;
}

static int cmd_user(int argc, char **argv) {
  if (argc < 2 || has_help(argc, argv) || strcmp(argv[1], "add")) {
    fprintf(argc < 2 || has_help(argc, argv) ? stdout : stderr,
            "usage: modelhub user add NAME [--admin] [--password-stdin] [--email E] "
            "[--fullname F]\n");
    return has_help(argc, argv) ? 0 : EXIT_USAGE;
  }
  db_account a;
  memset(&a, 0, sizeof a);
  int pw_stdin = 0;
  const char *name = NULL;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--admin"))
      a.is_admin = 1;
    else if (!strcmp(argv[i], "--password-stdin"))
      pw_stdin = 1;
    else if (!strcmp(argv[i], "--email") && i + 1 < argc)
      snprintf(a.email, sizeof a.email, "%s", argv[++i]);
    else if (!strcmp(argv[i], "--fullname") && i + 1 < argc)
      snprintf(a.fullname, sizeof a.fullname, "%s", argv[++i]);
    else if (argv[i][0] != '-' && !name)
      name = argv[i];
    else {
      fprintf(stderr, "modelhub user add: unexpected argument '%s'\n", argv[i]);
      return EXIT_USAGE;
    }
  }
  if (!name) {
    fprintf(stderr, "modelhub user add: NAME is required\n");
    return EXIT_USAGE;
  }
  if (!api_name_valid(name) || strlen(name) > HUB_MAX_USER_NAME) {
    fprintf(stderr, "modelhub user add: invalid name '%s'\n", name);
    return EXIT_USAGE;
  }
  snprintf(a.name, sizeof a.name, "%s", name);
  if (pw_stdin) {
    char *pw = read_password_stdin();
    if (!pw || !*pw) {
      fprintf(stderr, "modelhub user add: no password on stdin\n");
      return EXIT_USAGE;
    }
    if (auth_password_hash(pw, a.password_hash, sizeof a.password_hash)) return die("password");
  }
  if (open_data()) return 1;
  if (db_account_create(&a)) return die("user add");
  char target[HUB_MAX_USER_NAME + 8];
  snprintf(target, sizeof target, "user:%s", a.name);
  cli_audit("user.create", "", target, json_pack("{s:b}", "admin", a.is_admin));
  printf("created user %s%s\n", a.name, a.is_admin ? " (admin)" : "");
  return 0;
}

static int cmd_org(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "add") && !has_help(argc, argv)) {
    const char *name = NULL, *owner = NULL;
    for (int i = 2; i < argc; i++) {
      if (!strcmp(argv[i], "--owner") && i + 1 < argc)
        owner = argv[++i];
      else if (argv[i][0] != '-' && !name)
        name = argv[i];
      else {
        fprintf(stderr, "modelhub org add: unexpected argument '%s'\n", argv[i]);
        return EXIT_USAGE;
      }
    }
    if (!name || !owner) {
      fprintf(stderr, "usage: modelhub org add NAME --owner USER\n");
      return EXIT_USAGE;
    }
    if (!api_name_valid(name)) {
      fprintf(stderr, "modelhub org add: invalid name '%s'\n", name);
      return EXIT_USAGE;
    }
    if (open_data()) return 1;
    db_account o, u;
    if (db_account_by_name(owner, &u) || u.kind != ACCOUNT_USER) {
      fprintf(stderr, "modelhub org add: no user '%s'\n", owner);
      return 1;
    }
    memset(&o, 0, sizeof o);
    o.kind = ACCOUNT_ORG;
    snprintf(o.name, sizeof o.name, "%s", name);
    if (db_account_create(&o)) return die("org add");
    if (db_member_set(o.id, u.id, PERM_ADMIN)) return die("org add");
    char target[HUB_MAX_USER_NAME + 8];
    snprintf(target, sizeof target, "org:%s", o.name);
    cli_audit("org.create", o.name, target, json_pack("{s:s}", "owner", u.name));
    printf("created organization %s (admin: %s)\n", o.name, u.name);
    return 0;
  }
  if (argc >= 3 && !strcmp(argv[1], "member") && !has_help(argc, argv)) {
    int add = !strcmp(argv[2], "add"), rm = !strcmp(argv[2], "remove");
    const char *pos[2] = {NULL, NULL}, *role = NULL;
    int np = 0;
    for (int i = 3; i < argc; i++) {
      if (!strcmp(argv[i], "--role") && i + 1 < argc)
        role = argv[++i];
      else if (argv[i][0] != '-' && np < 2)
        pos[np++] = argv[i];
      else {
        fprintf(stderr, "modelhub org member: unexpected argument '%s'\n", argv[i]);
        return EXIT_USAGE;
      }
    }
    if ((!add && !rm) || np != 2 || (add && !role)) {
      fprintf(stderr,
              "usage: modelhub org member add ORG USER --role read|contributor|write|admin\n"
              "       modelhub org member remove ORG USER\n");
      return EXIT_USAGE;
    }
    int perm = 0;
    if (add && auth_role_parse(role, &perm)) {
      fprintf(stderr, "modelhub org member add: %s\n", hub_error_msg());
      return EXIT_USAGE;
    }
    if (open_data()) return 1;
    db_account o, u;
    if (db_account_by_name(pos[0], &o) || o.kind != ACCOUNT_ORG) {
      fprintf(stderr, "modelhub org member: no organization '%s'\n", pos[0]);
      return 1;
    }
    if (db_account_by_name(pos[1], &u) || u.kind != ACCOUNT_USER) {
      fprintf(stderr, "modelhub org member: no user '%s'\n", pos[1]);
      return 1;
    }
    if (add ? db_member_set(o.id, u.id, perm) : db_member_remove(o.id, u.id))
      return die("org member");
    char target[HUB_MAX_USER_NAME + 8];
    snprintf(target, sizeof target, "user:%s", u.name);
    cli_audit(add ? "org.member.set" : "org.member.remove", o.name, target,
              add ? json_pack("{s:s}", "role", auth_role_name(perm)) : NULL);
    printf(add ? "%s is now %s of %s\n" : "%s removed from %s\n", u.name,
           add ? auth_role_name(perm) : o.name, o.name);
    return 0;
  }
  printf("usage: modelhub org add NAME --owner USER\n"
         "       modelhub org member add ORG USER --role read|contributor|write|admin\n"
         "       modelhub org member remove ORG USER\n");
  return has_help(argc, argv) ? 0 : EXIT_USAGE;
}

static void print_token(const db_token *t, const char *user, void *payload) {
  char c[32] = "-", u[32] = "never";
  if (t->created_ms) {
    time_t s = (time_t)(t->created_ms / 1000);
    strftime(c, sizeof c, "%Y-%m-%dT%H:%M:%SZ", gmtime(&s));
  }
  if (t->last_used_ms) {
    time_t s = (time_t)(t->last_used_ms / 1000);
    strftime(u, sizeof u, "%Y-%m-%dT%H:%M:%SZ", gmtime(&s));
  }
  printf("%-24s %-16s %-20s %-6s %-20s %-20s %s\n", t->uid, user, t->name, auth_role_name(t->role),
         c, u, t->revoked ? "revoked" : "active");
}

static int cmd_token(int argc, char **argv) {
  const char *usage = "usage: modelhub token create USER --name N --role read|write "
                      "[--expires-days D]\n"
                      "       modelhub token create USER --name N --role fineGrained "
                      "--scopes JSON\n"
                      "       modelhub token list [USER]\n"
                      "       modelhub token revoke TOKEN-ID|NAME [--user USER]\n";
  if (argc < 2 || has_help(argc, argv)) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : 0;
  }
  const char *pos = NULL, *name = NULL, *role = NULL, *user = NULL, *scopes = NULL;
  long days = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--name") && i + 1 < argc)
      name = argv[++i];
    else if (!strcmp(argv[i], "--role") && i + 1 < argc)
      role = argv[++i];
    else if (!strcmp(argv[i], "--user") && i + 1 < argc)
      user = argv[++i];
    else if (!strcmp(argv[i], "--scopes") && i + 1 < argc)
      scopes = argv[++i];
    else if (!strcmp(argv[i], "--expires-days") && i + 1 < argc)
      days = strtol(argv[++i], NULL, 10);
    else if (argv[i][0] != '-' && !pos)
      pos = argv[i];
    else {
      fprintf(stderr, "modelhub token: unexpected argument '%s'\n%s", argv[i], usage);
      return EXIT_USAGE;
    }
  }
  if (!strcmp(argv[1], "create")) {
    int perm = 0;
    if (!pos || !name || !role) {
      fprintf(stderr, "modelhub token create: USER, --name and --role are required\n%s", usage);
      return EXIT_USAGE;
    }
    int fine = !strcmp(role, "fineGrained");
    if (!fine && (auth_role_parse(role, &perm) || (perm != PERM_READ && perm != PERM_WRITE))) {
      fprintf(stderr, "modelhub token create: --role must be read, write or fineGrained\n");
      return EXIT_USAGE;
    }
    if (fine != (scopes != NULL)) {
      fprintf(stderr, "modelhub token create: --scopes goes with --role fineGrained\n");
      return EXIT_USAGE;
    }
    if (open_data()) return 1;
    db_account u;
    if (db_account_by_name(pos, &u) || u.kind != ACCOUNT_USER) {
      fprintf(stderr, "modelhub token create: no user '%s'\n", pos);
      return 1;
    }
    char tok[AUTH_TOKEN_LEN + 1];
    int64_t exp = days > 0 ? db_now_ms() + (int64_t)days * 86400000 : 0;
    db_token row;
    if (fine ? auth_token_issue_scoped(u.id, name, scopes, exp, tok, &row)
             : auth_token_issue(u.id, name, perm, exp, tok, &row))
      return die("token create");
    char target[40];
    snprintf(target, sizeof target, "token:%s", row.uid);
    cli_audit("token.create", u.name, target,
              json_pack("{s:s, s:s}", "name", row.name, "role", auth_role_name(row.role)));
    printf("%s\n", tok);
    return 0;
  }
  if (!strcmp(argv[1], "list")) {
    if (open_data()) return 1;
    int64_t uid = 0;
    if (pos) {
      db_account u;
      if (db_account_by_name(pos, &u)) {
        fprintf(stderr, "modelhub token list: no user '%s'\n", pos);
        return 1;
      }
      uid = u.id;
    }
    printf("%-24s %-16s %-20s %-6s %-20s %-20s %s\n", "ID", "USER", "NAME", "ROLE", "CREATED",
           "LAST USED", "STATE");
    return db_token_list(uid, print_token, NULL) ? die("token list") : 0;
  }
  if (!strcmp(argv[1], "revoke")) {
    if (!pos) {
      fprintf(stderr, "modelhub token revoke: TOKEN-ID or NAME is required\n");
      return EXIT_USAGE;
    }
    if (open_data()) return 1;
    int64_t uid = 0;
    if (user) {
      db_account u;
      if (db_account_by_name(user, &u)) {
        fprintf(stderr, "modelhub token revoke: no user '%s'\n", user);
        return 1;
      }
      uid = u.id;
    }
    if (db_token_revoke(pos, uid)) return die("token revoke");
    char target[300];
    snprintf(target, sizeof target, "token:%s", pos);
    cli_audit("token.revoke", user ? user : "", target, NULL);
    printf("revoked %s\n", pos);
    return 0;
  }
  fprintf(stderr, "modelhub token: unknown subcommand '%s'\n%s", argv[1], usage);
  return EXIT_USAGE;
}

static int cmd_audit(int argc, char **argv) {
  if (argc < 2 || has_help(argc, argv) || strcmp(argv[1], "verify")) {
    fprintf(has_help(argc, argv) ? stdout : stderr,
            "usage: modelhub audit verify\n"
            "  checks the hash chain of the audit log; exit 1 if any entry was edited,\n"
            "  removed or reordered\n");
    return has_help(argc, argv) ? 0 : EXIT_USAGE;
  }
  if (open_data()) return 1;
  int64_t n = 0;
  if (audit_verify(&n)) {
    fprintf(stderr, "modelhub audit verify: FAILED after %lld entries: %s\n", (long long)n,
            hub_error_msg());
    return 1;
  }
  printf("audit log intact: %lld entries\n", (long long)n);
  return 0;
}

static int print_job(const db_job *j, void *payload) {
  json_t *arr = payload;
  if (arr) {
    json_array_append_new(
        arr, json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:s, s:I, s:s, s:I, s:I}", "id",
                       (json_int_t)j->id, "kind", j->kind, "key", j->key, "payload", j->payload,
                       "state", j->state, "attempts", j->attempts, "max_attempts", j->max_attempts,
                       "run_after", (json_int_t)j->run_after, "lease_owner", j->lease_owner,
                       "lease_until", (json_int_t)j->lease_until, "last_error", j->last_error,
                       "created", (json_int_t)j->created, "updated", (json_int_t)j->updated));
    return 0;
  }
  char when[32] = "";
  time_t t = (time_t)(j->updated / 1000);
  struct tm tm;
  if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  printf("%-8lld %-16s %-9s %d/%-5d %-20s %-40.40s %s\n", (long long)j->id, j->kind, j->state,
         j->attempts, j->max_attempts, when, j->key[0] ? j->key : "-", j->last_error);
  return 0;
}

/* Works on the data dir's DB, also while a server runs on it (the server picks the
 * changes up on its next claim). */
static int cmd_jobs(int argc, char **argv) {
  const char *usage = "usage: modelhub jobs list [--state queued|running|done|dead|cancelled] "
                      "[--kind KIND] [--limit N] [--json]\n"
                      "       modelhub jobs retry ID    queue a dead or cancelled job again\n"
                      "       modelhub jobs cancel ID   cancel a queued, running or dead job\n";
  if (argc < 2 || has_help(argc, argv)) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : 0;
  }
  const char *state = NULL, *kind = NULL, *key = NULL, *payload = "", *pos = NULL;
  int json = 0;
  long limit = 100;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--state") && i + 1 < argc)
      state = argv[++i];
    else if (!strcmp(argv[i], "--kind") && i + 1 < argc)
      kind = argv[++i];
    else if (!strcmp(argv[i], "--limit") && i + 1 < argc)
      limit = strtol(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--key") && i + 1 < argc)
      key = argv[++i];
    else if (!strcmp(argv[i], "--payload") && i + 1 < argc)
      payload = argv[++i];
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (argv[i][0] != '-' && !pos)
      pos = argv[i];
    else {
      fprintf(stderr, "modelhub jobs: unexpected argument '%s'\n%s", argv[i], usage);
      return EXIT_USAGE;
    }
  }
  if (limit < 1 || limit > 100000) limit = 100;
  if (open_data()) return 1;
  if (!strcmp(argv[1], "list")) {
    json_t *arr = json ? json_array() : NULL;
    if (!json)
      printf("%-8s %-16s %-9s %-7s %-20s %-40s %s\n", "ID", "KIND", "STATE", "TRIES", "UPDATED",
             "KEY", "LAST ERROR");
    int rc = db_job_list(state, kind, (int)limit, print_job, arr);
    if (arr) {
      char *out = json_dumps(arr, JSON_INDENT(1));
      if (out) puts(out);
      free(out);
      json_decref(arr);
    }
    return rc ? die("jobs list") : 0;
  }
  if (!strcmp(argv[1], "retry") || !strcmp(argv[1], "cancel")) {
    char *end = NULL;
    long long id = pos ? strtoll(pos, &end, 10) : 0;
    if (!pos || *end || id <= 0) {
      fprintf(stderr, "modelhub jobs %s: a job ID is needed\n", argv[1]);
      return EXIT_USAGE;
    }
    int rc = !strcmp(argv[1], "retry") ? db_job_retry(id) : db_job_cancel(id);
    if (rc) return die(argv[1]);
    printf("job %lld %s\n", id, !strcmp(argv[1], "retry") ? "queued again" : "cancelled");
    return 0;
  }
  /* Test-only: queue a job of a test kind (docs/jobs.md). */
  const char *t = getenv("MODELHUB_TEST_JOBS");
  if (!strcmp(argv[1], "add") && t && !strcmp(t, "1") && pos && !strncmp(pos, "test.", 5)) {
    int64_t id = 0;
    if (db_job_enqueue(pos, key, payload, !strcmp(pos, "test.fail") ? 3 : 5, 100, 0, &id))
      return die("add");
    printf("%lld\n", (long long)id);
    return 0;
  }
  fprintf(stderr, "modelhub jobs: unknown subcommand '%s'\n%s", argv[1], usage);
  return EXIT_USAGE;
}

struct pull_args {
  int type;
  const char *ns, *name, *rev;
  const char *const *include;
  size_t ninclude;
  int rc;
  char msg[512];
};

static void *pull_main(void *arg) {
  struct pull_args *a = arg;
  a->rc = mirror_pull(a->type, a->ns, a->name, a->rev, a->include, a->ninclude);
  if (a->rc) snprintf(a->msg, sizeof a->msg, "%s", hub_error_msg());
  return NULL;
}

/* `modelhub mirror pull NS/NAME[@REV] [--include GLOB]... [--type T]`: runs without the
 * server (or beside it: SQLite and git take their own locks), with the server's upstream
 * settings (--upstream / MODELHUB_UPSTREAM, --mirror-config / MODELHUB_MIRROR_CONFIG). */
static int cmd_mirror(int argc, char **argv) {
  if (argc < 3 || strcmp(argv[1], "pull") || has_help(argc, argv)) {
    fprintf(argc >= 2 && has_help(argc, argv) ? stdout : stderr,
            "usage: modelhub mirror pull NS/NAME[@REV] [--include GLOB]... "
            "[--type model|dataset|space] [--upstream URL] [--mirror-config FILE]\n");
    return has_help(argc, argv) ? 0 : EXIT_USAGE;
  }
  const char *upstream = getenv("MODELHUB_UPSTREAM"), *cfg = getenv("MODELHUB_MIRROR_CONFIG");
  const char *include[32];
  size_t ninc = 0;
  int type = HUB_REPO_MODEL;
  char id[2 * HUB_MAX_NAME + 256];
  snprintf(id, sizeof id, "%s", argv[2]);
  for (int k = 3; k < argc; k++) {
    if (k + 1 >= argc) {
      fprintf(stderr, "modelhub mirror pull: %s needs a value\n", argv[k]);
      return EXIT_USAGE;
    }
    if (!strcmp(argv[k], "--include") && ninc < 32) {
      include[ninc++] = argv[++k];
    } else if (!strcmp(argv[k], "--type")) {
      const char *t = argv[++k];
      type = !strcmp(t, "dataset") ? HUB_REPO_DATASET
             : !strcmp(t, "space") ? HUB_REPO_SPACE
             : !strcmp(t, "model") ? HUB_REPO_MODEL
                                   : -1;
      if (type < 0) {
        fprintf(stderr, "modelhub mirror pull: --type model|dataset|space\n");
        return EXIT_USAGE;
      }
    } else if (!strcmp(argv[k], "--upstream")) {
      upstream = argv[++k];
    } else if (!strcmp(argv[k], "--mirror-config")) {
      cfg = argv[++k];
    } else {
      fprintf(stderr, "modelhub mirror pull: unknown option '%s'\n", argv[k]);
      return EXIT_USAGE;
    }
  }
  char *rev = strchr(id, '@');
  if (rev) *rev++ = 0;
  char *slash = strchr(id, '/');
  if (!slash || strchr(slash + 1, '/')) {
    fprintf(stderr, "modelhub mirror pull: name the repo as NS/NAME\n");
    return EXIT_USAGE;
  }
  *slash = 0;
  if (mirror_configure(upstream, getenv("MODELHUB_UPSTREAM_TOKEN"), cfg, 0)) {
    fprintf(stderr, "modelhub mirror pull: %s\n", hub_error_msg());
    return EXIT_USAGE;
  }
  if (open_data()) return 1;
  hub_ctx ctx = {db_data_dir(), NULL, NULL, NULL, 0, 1};
  if (blob_store_open_at(&ctx.blobs, "")) return die("stores");
  int rc = audit_init();
  if (!rc) rc = events_init();
  if (!rc) rc = mirror_init(&ctx);
  /* On a thread of its own, like the server's fetches: the TLS library's per-thread state
   * is released when the thread ends. */
  struct pull_args pa = {type, id, slash + 1, rev, include, ninc, 0, ""};
  pthread_t th;
  if (!rc && !(rc = hub_thread_start("mirror-pull", pull_main, &pa, &th))) {
    pthread_join(th, NULL);
    rc = pa.rc;
    if (rc) hub_error_set(rc, "%s", pa.msg);
  }
  if (rc) fprintf(stderr, "modelhub mirror pull: %s\n", hub_error_msg());
  blob_store_free(ctx.blobs);
  db_global_shutdown();
  return rc ? 1 : 0;
}

int main(int argc, char **argv) {
  g_data = getenv("MODELHUB_DATA") ? getenv("MODELHUB_DATA") : "./data";
  int i = 1;
  while (i < argc && argv[i][0] == '-') {
    if (!strcmp(argv[i], "--data") && i + 1 < argc) {
      g_data = argv[i + 1];
      i += 2;
    } else if (!strncmp(argv[i], "--data=", 7)) {
      g_data = argv[i] + 7;
      i++;
    } else if (!strcmp(argv[i], "--db") && i + 1 < argc) {
      g_db = argv[i + 1];
      i += 2;
    } else if (!strncmp(argv[i], "--db=", 5)) {
      g_db = argv[i] + 5;
      i++;
    } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      return usage_main(stdout);
    } else if (!strcmp(argv[i], "--version")) {
      printf("modelhub %s\n", HUB_VERSION);
      return 0;
    } else {
      fprintf(stderr, "modelhub: unknown option '%s'\n", argv[i]);
      return usage_main(stderr);
    }
  }
  if (i >= argc) return usage_main(stderr);
  /* --data is also accepted after the subcommand. */
  for (int k = i + 1; k < argc - 1; k++)
    if (!strcmp(argv[k], "--data") && strcmp(argv[i], "serve")) {
      g_data = argv[k + 1];
      memmove(argv + k, argv + k + 2, sizeof(char *) * (size_t)(argc - k - 2));
      argc -= 2;
      k--;
    }
  const char *cmd = argv[i];
  int sub_argc = argc - i;
  char **sub_argv = argv + i;
  if (!strcmp(cmd, "serve")) return cmd_serve(sub_argc, sub_argv);
  if (!strcmp(cmd, "migrate")) return cmd_migrate(sub_argc, sub_argv);
  if (!strcmp(cmd, "db")) return cmd_db(sub_argc, sub_argv);
  if (!strcmp(cmd, "user")) return cmd_user(sub_argc, sub_argv);
  if (!strcmp(cmd, "org")) return cmd_org(sub_argc, sub_argv);
  if (!strcmp(cmd, "token")) return cmd_token(sub_argc, sub_argv);
  if (!strcmp(cmd, "audit")) return cmd_audit(sub_argc, sub_argv);
  if (!strcmp(cmd, "jobs")) return cmd_jobs(sub_argc, sub_argv);
  if (!strcmp(cmd, "scan") && sub_argc > 1 && !strcmp(sub_argv[1], "--rescan"))
    return open_data() || security_init(NULL) ? die("scan service")
                                              : security_rescan_main(sub_argc - 1, sub_argv + 1);
  if (!strcmp(cmd, "hook")) /* run by git; MODELHUB_DB from git/smart.c */
    return db_engine_select(g_db) ? die("--db") : git_hook_main(sub_argc, sub_argv);
  if (!strcmp(cmd, "scan")) return scan_cli_main(sub_argc, sub_argv); /* docs/scanning.md */
  if (!strcmp(cmd, "reindex") || !strcmp(cmd, "dev"))
    return open_data() ? 1 : index_main(sub_argc, sub_argv);
  if (!strcmp(cmd, "fsck")) return open_data() ? 1 : cmd_fsck(sub_argc, sub_argv);
  if (!strcmp(cmd, "storage") && sub_argc > 1 && !strcmp(sub_argv[1], "migrate"))
    return cmd_storage_migrate(sub_argc, sub_argv);
  if (!strcmp(cmd, "storage")) return open_data() ? 1 : xetsrv_main(sub_argc, sub_argv);
  if (!strcmp(cmd, "export"))
    return has_help(sub_argc, sub_argv) ? bundle_export_main(sub_argc, sub_argv)
           : open_data()                ? 1
                                        : bundle_export_main(sub_argc, sub_argv);
  if (!strcmp(cmd, "import"))
    return has_help(sub_argc, sub_argv) ? bundle_import_main(sub_argc, sub_argv)
           : open_data()                ? 1
                                        : bundle_import_main(sub_argc, sub_argv);
  if (!strcmp(cmd, "xet-pull"))
    return has_help(sub_argc, sub_argv) ? xetsrv_pull_main(sub_argc, sub_argv)
           : open_data()                ? 1
                                        : xetsrv_pull_main(sub_argc, sub_argv);
  if (!strcmp(cmd, "mirror")) return cmd_mirror(sub_argc, sub_argv);
  if (!strcmp(cmd, "help")) return usage_main(stdout);
  fprintf(stderr, "modelhub: unknown command '%s'\n", cmd);
  return usage_main(stderr);
}
