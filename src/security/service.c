/* The scan service: the "scan" event consumer that finds objects not scanned yet, and the
 * "scan.object" job that scans one (docs/scanning.md, "The scan service and policy"). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "db/scan.h"
#include "jobs/jobs.h"
#include "repo/repo.h"
#include "scan/detect.h"
#include "scan/scan.h"
#include "security/internal.h"
#include "util/error.h"

/* Bump when the engine's results change meaning (stored with each result). */
#define SECURITY_ENGINE_VERSION "modelhub-scan/1"
#define KIND "scan.object"       /* key: the oid; payload: a repo id that names it */
#define WALK_MAX 100000          /* tree entries listed per ref move (hostile trees) */
#define WALK_TXN_FILES 2000      /* files noted per write transaction of the walk */
#define GIT_BLOB_MAX (64 << 20)  /* a git blob read into memory to be scanned */
#define AV_RELOAD_EVERY_MS 10000 /* signature database change check, at most this often */

int sec__site_policy = SECURITY_POLICY_WARN;
static blob_store *g_blobs;
static const blob_read_fallback *g_fb;
static pthread_mutex_t g_av_lock = PTHREAD_MUTEX_INITIALIZER;
static struct scan_av *g_av;
static int64_t g_av_checked_ms;
static _Atomic uint64_t m_objects, m_bytes, m_usec, m_findings[5];

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void security_set_read_fallback(const blob_read_fallback *fb) {
  g_fb = fb;
}

static void av_dir(char *out, size_t cap) {
  const char *env = getenv("MODELHUB_CLAMAV_DB");
  if (env && *env)
    snprintf(out, cap, "%s", env);
  else
    snprintf(out, cap, "%s/clamav", db_data_dir());
}

/* The engine, loaded by the first job and reloaded when its files change (≤ every 10 s). */
static struct scan_av *av_engine(void) {
  pthread_mutex_lock(&g_av_lock);
  int64_t now = now_ms();
  if (!g_av) {
    char dir[4200];
    av_dir(dir, sizeof dir);
    g_av = scan_av_open(dir);
    g_av_checked_ms = now;
  } else if (now - g_av_checked_ms >= AV_RELOAD_EVERY_MS) {
    g_av_checked_ms = now;
    if (scan_av_reload_if_changed(g_av) < 0)
      fprintf(stderr, "scan: reloading the AV database failed: %s\n", hub_error_msg());
  }
  struct scan_av *av = g_av;
  pthread_mutex_unlock(&g_av_lock);
  return av;
}

/* ---- the consumer --------------------------------------------------------------------- */

typedef struct {
  char *path;
  char oid[41];
} dir_item;

typedef struct {
  int64_t repo_id;
  size_t seen, pending; /* entries listed; files noted since the last commit */
  int rc;
  dir_item *stack; /* directories still to list */
  size_t n, cap;
  char (*walked)[41]; /* trees listed: marked once the whole walk succeeded */
  size_t nwalked, capwalked;
} walk_ctx;

static int queue_object(const char *oid, int64_t repo_id) {
  char payload[32];
  snprintf(payload, sizeof payload, "%lld", (long long)repo_id);
  int rc = jobs_enqueue(KIND, oid, payload);
  return rc == HUB_EEXISTS ? 0 : rc;
}

static int push_dir(walk_ctx *w, const char *path, const char *oid) {
  if (w->n == w->cap) {
    size_t nc = w->cap ? w->cap * 2 : 64;
    dir_item *v = realloc(w->stack, nc * sizeof *v);
    if (!v) return hub_error_set(HUB_ERROR, "out of memory");
    w->stack = v;
    w->cap = nc;
  }
  w->stack[w->n].path = strdup(path);
  if (!w->stack[w->n].path) return hub_error_set(HUB_ERROR, "out of memory");
  snprintf(w->stack[w->n++].oid, 41, "%s", oid);
  return 0;
}

static int note_entry(const repo_entry *e, void *payload) {
  walk_ctx *w = payload;
  if (++w->seen > WALK_MAX) return 1;
  int rc = 0;
  if (e->type == REPO_ENTRY_DIR) {
    /* a directory whose tree was walked before holds only noted files */
    if (!db_scan_tree_seen(w->repo_id, e->oid)) rc = push_dir(w, e->path, e->oid);
    if (rc) w->rc = rc;
    return rc;
  }
  const char *oid = e->is_lfs ? e->lfs_oid : e->oid;
  int64_t size = (int64_t)(e->is_lfs ? e->lfs_size : e->size);
  char state[8];
  rc = db_scan_note(w->repo_id, oid, size, e->path, state);
  if (!rc && !strcmp(state, "queued")) rc = queue_object(oid, w->repo_id);
  if (rc == HUB_EBUSY) {
    /* the kind's queue is full: the object stays "queued" and security_resume offers it
     * again at the next start; keep walking */
    fprintf(stderr, "scan: queue full, %s left for later\n", oid);
    rc = 0;
  }
  /* a large first walk does not hold the write lock throughout: notes are idempotent, and
   * trees are marked only at the end */
  if (!rc && ++w->pending >= WALK_TXN_FILES) {
    w->pending = 0;
    if (!(rc = db_commit())) rc = db_begin_immediate();
  }
  if (rc) w->rc = rc;
  return rc;
}

/* List the commit's directories depth-first, skipping trees walked before; then mark the
 * ones listed. Bounded by WALK_MAX entries. 0, or the first error. */
static int walk_tree(walk_ctx *w, repo_handle *h, const char *commit) {
  repo_entry root;
  int rc = repo_stat(h, commit, "", &root);
  if (rc) return 1; /* not a commit (a tag object): nothing to scan */
  if (!db_scan_tree_seen(w->repo_id, root.oid)) rc = push_dir(w, "", root.oid);
  repo_entry_dispose(&root);
  while (!rc && w->n && !w->rc && w->seen <= WALK_MAX) {
    dir_item d = w->stack[--w->n];
    if (w->nwalked == w->capwalked) {
      size_t nc = w->capwalked ? w->capwalked * 2 : 64;
      void *v = realloc(w->walked, nc * sizeof *w->walked);
      if (!v)
        rc = hub_error_set(HUB_ERROR, "out of memory");
      else {
        w->walked = v;
        w->capwalked = nc;
      }
    }
    if (!rc) {
      snprintf(w->walked[w->nwalked++], 41, "%s", d.oid);
      int lr = repo_list(h, commit, d.path, 0, note_entry, w);
      if (lr && lr != 1 && !w->rc) rc = lr;
    }
    free(d.path);
  }
  if (!rc) rc = w->rc;
  /* a walk cut short by WALK_MAX marks nothing: the next ref move tries again */
  for (size_t i = 0; !rc && w->seen <= WALK_MAX && i < w->nwalked; i++)
    rc = db_scan_tree_mark(w->repo_id, w->walked[i]);
  return rc;
}

static void walk_dispose(walk_ctx *w) {
  for (size_t i = 0; i < w->n; i++)
    free(w->stack[i].path);
  free(w->stack);
  free(w->walked);
}

static int walk_event(const db_event *e) {
  db_repo repo;
  repo_handle *h = NULL;
  char dir[4200];
  if (db_repo_by_id(e->repo_id, &repo)) return 0; /* deleted since */
  db_repo_dir(repo.uid, dir, sizeof dir);
  if (repo_open(&h, dir)) return 0;
  walk_ctx w;
  memset(&w, 0, sizeof w);
  w.repo_id = repo.id;
  int rc = db_begin_immediate();
  if (!rc) {
    int wr = walk_tree(&w, h, e->new_);
    if (wr && wr != 1) {
      rc = wr;
      if (db_in_transaction()) db_rollback();
    } else {
      if (w.seen > WALK_MAX)
        fprintf(stderr, "scan: %s/%s %s: tree larger than %d entries, the rest not scanned\n",
                repo.ns, repo.name, e->ref, WALK_MAX);
      rc = db_commit();
    }
  }
  walk_dispose(&w);
  repo_free(h);
  return rc;
}

int security_consume(const db_event *ev, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (!ev[i].ref[0] || !ev[i].new_[0]) continue;
    int seen = 0; /* one walk per (repo, commit) and batch */
    for (size_t j = 0; j < i && !seen; j++)
      seen = ev[j].repo_id == ev[i].repo_id && !strcmp(ev[j].new_, ev[i].new_);
    if (seen) continue;
    int rc = walk_event(&ev[i]);
    if (rc) return rc; /* busy database: the batch is tried again */
  }
  return 0;
}

/* ---- the job --------------------------------------------------------------------------- */

/* MODELHUB_TEST_PAUSE_SCANS=<path>: while that file exists, scan jobs wait (running, under
 * their lease) before reading anything — tests of block-unscanned and of crash recovery. */
static int test_pause(void) {
  const char *p = getenv("MODELHUB_TEST_PAUSE_SCANS");
  while (p && *p && access(p, F_OK) == 0) {
    if (jobs_stopping()) return hub_error_set(HUB_EBUSY, "stopping");
    usleep(50 * 1000);
  }
  return 0;
}

/* Copy a blob stream into an unlinked temporary file under <data>/tmp: *out_fd. */
static int stream_to_tmp(blob_store *store, const char *oid, int *out_fd, int64_t *out_size) {
  blob_stream *s = NULL;
  int rc = blob_open_stream(store, oid, &s, out_size);
  if (rc) return rc;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s/tmp", db_data_dir());
  int fd = open(tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) rc = hub_error_set(HUB_ERROR, "temporary file in %s: %s", tmp, strerror(errno));
  char *buf = rc ? NULL : malloc(1 << 16);
  if (!rc && !buf) rc = hub_error_set(HUB_ERROR, "out of memory");
  size_t got = 0;
  while (!rc && !(rc = blob_stream_read(s, buf, 1 << 16, &got)) && got)
    if (write(fd, buf, got) != (ssize_t)got)
      rc = hub_error_set(HUB_ERROR, "temporary file: %s", strerror(errno));
  free(buf);
  blob_stream_close(s);
  if (rc && fd >= 0) close(fd);
  if (!rc) *out_fd = fd;
  return rc;
}

/* A file descriptor with the bytes of the object; *out_size its size. */
static int open_object(const char *oid, int64_t repo_id, int *out_fd, int64_t *out_size) {
  int rc;
  *out_fd = -1;
  if (strlen(oid) == 64) {
    if (!g_blobs) return hub_error_set(HUB_ENOTFOUND, "no object store");
    rc = blob_open_fd(g_blobs, oid, out_fd, out_size);
    if (rc == HUB_EUNSUPPORTED) /* a store without descriptors (S3): copy it here */
      rc = stream_to_tmp(g_blobs, oid, out_fd, out_size);
    if (rc != HUB_ENOTFOUND || !g_fb) return rc;
    /* Xet-only: rebuilt from its chunks */
    blob_store *view = blob_store_view(g_blobs, g_fb, (void *)(intptr_t)repo_id);
    if (!view) return hub_error_set(HUB_ERROR, "out of memory");
    rc = stream_to_tmp(view, oid, out_fd, out_size);
    blob_store_view_free(view);
    return rc;
  }
  db_repo repo;
  repo_handle *h = NULL;
  char dir[4200];
  void *data = NULL;
  size_t len = 0;
  if ((rc = db_repo_by_id(repo_id, &repo))) return rc;
  db_repo_dir(repo.uid, dir, sizeof dir);
  if ((rc = repo_open(&h, dir))) return rc;
  rc = repo_read_blob(h, oid, &data, &len);
  repo_free(h);
  if (rc) return rc;
  if (len > GIT_BLOB_MAX) len = GIT_BLOB_MAX; /* scanners are bounded below this anyway */
  int fd = memfd_create("scan", MFD_CLOEXEC);
  if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
    rc = hub_error_set(HUB_ERROR, "memfd: %s", strerror(errno));
    if (fd >= 0) close(fd);
  } else {
    *out_fd = fd;
    *out_size = (int64_t)len;
  }
  free(data);
  return rc;
}

typedef struct {
  const char *oid, *level, *msg;
} finding_ctx;

static int audit_finding(int64_t repo_id, const char *path, void *payload) {
  finding_ctx *f = payload;
  db_repo repo;
  if (db_repo_by_id(repo_id, &repo)) return 0;
  static const char *const TYPES[] = {"model", "dataset", "space"};
  char target[2 * HUB_MAX_NAME + 16];
  snprintf(target, sizeof target, "%s:%s/%s", TYPES[repo.type % 3], repo.ns, repo.name);
  audit_ctx ctx = {NULL, "modelhub", NULL};
  audit_log(&ctx, "scan.finding", repo.ns, target,
            json_pack("{s:s, s:s, s:s, s:s}", "oid", f->oid, "path", path, "level", f->level,
                      "message", f->msg));
  return 0;
}

/* Record a finished scan (a report, or an error report when the object cannot be read). */
static int record(const char *oid, int64_t size, json_t *report, uint64_t usec,
                  const struct scan_av *eng) {
  int64_t sigs = eng ? (int64_t)scan_av_signatures(eng) : 0;
  /* what made the result: a newer engine or AV database is a reason to rescan */
  json_object_set_new(
      report, "scannedWith",
      json_pack("{s:s, s:I}", "engine", SECURITY_ENGINE_VERSION, "avSignatures", (json_int_t)sigs));
  char *text = json_dumps(report, JSON_COMPACT);
  if (!text) return hub_error_set(HUB_ERROR, "out of memory");
  scan_level lvl = scan_report_level(report);
  const char *level = scan_level_name(lvl);
  json_t *av = json_object_get(json_object_get(report, "scanners"), "av");
  const char *av_status = json_string_value(json_object_get(av, "status"));
  int rc = db_scan_object_done(oid, size, level, text, av_status ? av_status : "unscanned", sigs);
  free(text);
  if (rc) return rc;
  atomic_fetch_add(&m_objects, 1);
  atomic_fetch_add(&m_bytes, (uint64_t)(size > 0 ? size : 0));
  atomic_fetch_add(&m_usec, usec);
  atomic_fetch_add(&m_findings[lvl <= SCAN_ERROR ? lvl : SCAN_ERROR], 1);
  if (lvl == SCAN_SUSPICIOUS || lvl == SCAN_UNSAFE) {
    char msg[400];
    sec__finding_message(report, msg, sizeof msg);
    finding_ctx f = {oid, level, msg};
    db_scan_paths_of(oid, audit_finding, &f);
  }
  return 0;
}

static int run_scan(const db_job *j, void *ctx) {
  (void)ctx;
  const char *oid = j->key;
  db_scan_object o;
  if (db_scan_object_get(oid, &o) == 0) {
    int done = !strcmp(o.state, "done");
    db_scan_object_dispose(&o);
    if (done) return 0; /* scanned once already (a replayed event, a crash after the record) */
  }
  int64_t repo_id = 0;
  char path[DB_SCAN_PATH_MAX + 1];
  if (db_scan_hint(oid, &repo_id, path, sizeof path))
    return db_scan_object_forget(oid); /* no repo names it any more */
  int rc = test_pause();
  if (rc) return rc;
  int fd = -1;
  int64_t size = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  rc = open_object(oid, repo_id, &fd, &size);
  if (rc) {
    if (j->attempts < j->max_attempts) return rc; /* retried */
    json_t *rep = json_pack("{s:s, s:{s:{s:s, s:s}}}", "level", "error", "scanners", "read",
                            "status", "error", "message", hub_error_msg());
    rc = record(oid, 0, rep, 0, NULL);
    json_decref(rep);
    return rc;
  }
  scan_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.av = av_engine();
  json_t *report = NULL;
  rc = scan_fd(&cfg, fd, (uint64_t)size, path, &report);
  close(fd);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  uint64_t usec = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
  if (!rc) rc = record(oid, size, report, usec, cfg.av);
  json_decref(report);
  return rc;
}

int security_init(blob_store *blobs) {
  g_blobs = blobs;
  const char *p = getenv("MODELHUB_SCAN_POLICY");
  if (p && *p) {
    int v = security_policy_parse(p);
    if (v < 0)
      return hub_error_set(HUB_EINVALID,
                           "MODELHUB_SCAN_POLICY must be warn, block or block-unscanned");
    sec__site_policy = v;
  }
  if (blobs && !(getenv("MODELHUB_CLAMAV_DB") && *getenv("MODELHUB_CLAMAV_DB"))) {
    /* the default database directory exists, so freshclam (or an operator) can fill it and
     * the running server picks the databases up */
    char dir[4200];
    av_dir(dir, sizeof dir);
    if (mkdir(dir, 0750) && errno != EEXIST)
      fprintf(stderr, "scan: cannot create %s: %s\n", dir, strerror(errno));
  }
  static const jobs_kind kind = {KIND, run_scan, NULL, 1, 100000, 3, 2000};
  if (db_scan_init() || jobs_register(&kind)) return HUB_ERROR;
  return 0;
}

static int requeue_cb(const char *oid, int64_t repo_id, void *payload) {
  size_t *n = payload;
  if (queue_object(oid, repo_id) == 0) (*n)++;
  return 0;
}

void security_resume(void) {
  size_t n = 0;
  db_scan_queued_each(requeue_cb, &n);
}

void security_shutdown(void) {
  pthread_mutex_lock(&g_av_lock);
  if (g_av) scan_av_close(g_av);
  g_av = NULL;
  pthread_mutex_unlock(&g_av_lock);
}

int security_rescan_main(int argc, char **argv) {
  int av_only = 1;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--all"))
      av_only = 0;
    else if (!strcmp(argv[i], "--av"))
      av_only = 1;
    else if (strcmp(argv[i], "--rescan")) {
      fprintf(stderr, "usage: modelhub scan --rescan [--all|--av]\n");
      return 2;
    }
  }
  int64_t sigs = 0;
  if (av_only) { /* what the current database would answer differently */
    char dir[4200];
    av_dir(dir, sizeof dir);
    struct scan_av *av = scan_av_open(dir);
    sigs = av ? (int64_t)scan_av_signatures(av) : 0;
    if (av) scan_av_close(av);
  }
  size_t n = 0;
  /* one transaction: the job inserts join it (no keeper thread in the CLI) */
  if (db_begin_immediate() || db_scan_requeue(av_only, sigs, requeue_cb, &n) || db_commit()) {
    fprintf(stderr, "modelhub: rescan: %s\n", hub_error_msg());
    if (db_in_transaction()) db_rollback();
    return 1;
  }
  printf("%zu object(s) queued for a %s rescan\n", n, av_only ? "malware" : "full");
  return 0;
}

void sec__metrics_counters(hub_buf *b) {
  hub_buf_printf(b,
                 "# HELP modelhub_scan_objects_scanned_total Objects scanned by this process.\n"
                 "# TYPE modelhub_scan_objects_scanned_total counter\n"
                 "modelhub_scan_objects_scanned_total %llu\n"
                 "# HELP modelhub_scan_bytes_scanned_total Bytes scanned by this process.\n"
                 "# TYPE modelhub_scan_bytes_scanned_total counter\n"
                 "modelhub_scan_bytes_scanned_total %llu\n"
                 "# HELP modelhub_scan_seconds_total Time spent reading and scanning objects.\n"
                 "# TYPE modelhub_scan_seconds_total counter\n"
                 "modelhub_scan_seconds_total %.6f\n"
                 "# HELP modelhub_scan_findings_total Scans by resulting level (this process).\n"
                 "# TYPE modelhub_scan_findings_total counter\n",
                 (unsigned long long)atomic_load(&m_objects),
                 (unsigned long long)atomic_load(&m_bytes), (double)atomic_load(&m_usec) / 1e6);
  for (int i = 0; i < 5; i++)
    hub_buf_printf(b, "modelhub_scan_findings_total{level=\"%s\"} %llu\n",
                   scan_level_name((scan_level)i), (unsigned long long)atomic_load(&m_findings[i]));
}
