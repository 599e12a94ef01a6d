/* Malware scanning through libclamav (docs/scanning.md "Malware (ClamAV)").
 *
 * The engine of a signature directory is loaded once (cl_load with CL_DB_STDOPT, then
 * cl_engine_compile) and shared by every scan. A reload builds a new engine off to the side
 * and swaps it in under a short mutex; engines are reference-counted, so scans in flight
 * finish on the engine they started with and the last one out frees it. Without a database
 * (no directory, or no signature files in it) every scan reports "unscanned": the hub runs
 * and scans the rest without ClamAV. No clamd or freshclam is involved; updating the
 * directory (by freshclam or by hand) and calling scan_av_reload_if_changed is enough. */
#include "scan/detect.h"

#include <clamav.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ClamAV's own limits. libclamav silently caps CL_ENGINE_MAX_FILESIZE at 2 GiB - 3 and
 * reports larger files clean without scanning them, so a larger limit is capped here too
 * (and such files are "unscanned"). */
#define AV_MAX_FILESIZE_CAP 2147483645ull
#define AV_DEFAULT_MAX_FILESIZE (1024ull * 1024 * 1024)
#define AV_MAX_RECURSION 16
#define AV_MAX_FILES 10000

typedef struct av_engine {
  struct cl_engine *cl;
  unsigned sigs;
  atomic_int refs;
} av_engine;

struct scan_av {
  char *dir;                 /* NULL: no database directory configured */
  uint64_t max_filesize;     /* larger files are "unscanned" */
  pthread_mutex_t mu;        /* guards cur */
  av_engine *cur;            /* NULL: no signatures loaded */
  char load_err[200];        /* why the last load failed ("" if it did not); guarded by mu */
  pthread_mutex_t reload_mu; /* one reload at a time; guards st, have_st */
  struct cl_stat st;
  int have_st;
};

static pthread_once_t av_once = PTHREAD_ONCE_INIT;
static cl_error_t av_init_rc = CL_SUCCESS;

/* libclamav logs to stderr by default; the hub reports through scan results instead. */
static void av_silent(enum cl_msg severity, const char *fullmsg, const char *msg, void *ctx) {
  (void)severity, (void)fullmsg, (void)msg, (void)ctx;
}

static void av_init_once(void) {
  cl_set_clcb_msg(av_silent);
  av_init_rc = cl_init(CL_INIT_DEFAULT);
}

static void engine_unref(av_engine *e) {
  if (e && atomic_fetch_sub(&e->refs, 1) == 1) {
    cl_engine_free(e->cl);
    free(e);
  }
}

/* Load and compile the databases of dir: 0 and *out (NULL when the directory has no
 * signatures), or <0 when loading or compiling failed, with the reason in err. */
static int engine_load(const char *dir, uint64_t max_filesize, av_engine **out, char *err,
                       size_t errlen) {
  *out = NULL;
  *err = 0;
  if (!dir) return 0;
  struct cl_engine *cl = cl_engine_new();
  unsigned sigs = 0;
  if (!cl) return -1;
  cl_engine_set_num(cl, CL_ENGINE_MAX_FILESIZE, (long long)max_filesize);
  cl_engine_set_num(cl, CL_ENGINE_MAX_SCANSIZE, (long long)max_filesize);
  cl_engine_set_num(cl, CL_ENGINE_MAX_RECURSION, AV_MAX_RECURSION);
  cl_engine_set_num(cl, CL_ENGINE_MAX_FILES, AV_MAX_FILES);
  cl_error_t rc = cl_load(dir, cl, &sigs, CL_DB_STDOPT);
  if (rc != CL_SUCCESS || sigs == 0) {
    cl_engine_free(cl);
    /* a directory without database files (or a missing one) is "no database", not an
     * error: the hub runs without AV until signatures appear */
    if (rc == CL_SUCCESS || rc == CL_EOPEN) return 0;
    snprintf(err, errlen, "the malware signature database failed to load: %s", cl_strerror(rc));
    return -1;
  }
  if ((rc = cl_engine_compile(cl)) != CL_SUCCESS) {
    cl_engine_free(cl);
    snprintf(err, errlen, "the malware signature database failed to compile: %s", cl_strerror(rc));
    return -1;
  }
  av_engine *e = calloc(1, sizeof *e);
  if (!e) {
    cl_engine_free(cl);
    return -1;
  }
  e->cl = cl;
  e->sigs = sigs;
  atomic_init(&e->refs, 1);
  *out = e;
  return 0;
}

static void stat_reset(struct scan_av *av) {
  if (av->have_st) cl_statfree(&av->st);
  av->have_st = 0;
  memset(&av->st, 0, sizeof av->st);
  if (av->dir && cl_statinidir(av->dir, &av->st) == CL_SUCCESS) av->have_st = 1;
}

struct scan_av *scan_av_open_limits(const char *dbdir, uint64_t max_filesize) {
  pthread_once(&av_once, av_init_once);
  struct scan_av *av = calloc(1, sizeof *av);
  if (!av) return NULL;
  av->max_filesize = max_filesize ? max_filesize : AV_DEFAULT_MAX_FILESIZE;
  if (av->max_filesize > AV_MAX_FILESIZE_CAP) av->max_filesize = AV_MAX_FILESIZE_CAP;
  pthread_mutex_init(&av->mu, NULL);
  pthread_mutex_init(&av->reload_mu, NULL);
  if (dbdir && av_init_rc == CL_SUCCESS) {
    if (!(av->dir = strdup(dbdir))) {
      scan_av_close(av);
      return NULL;
    }
    stat_reset(av);
    /* a failed load leaves no engine: "unscanned" until a reload succeeds */
    engine_load(av->dir, av->max_filesize, &av->cur, av->load_err, sizeof av->load_err);
  }
  return av;
}

struct scan_av *scan_av_open(const char *dbdir) {
  return scan_av_open_limits(dbdir, 0);
}

int scan_av_reload_if_changed(struct scan_av *av) {
  if (!av || !av->dir) return 0;
  int rc = 0;
  pthread_mutex_lock(&av->reload_mu);
  /* no stat handle yet (the directory was missing): try to start watching it */
  int changed = av->have_st ? cl_statchkdir(&av->st) == 1 : (stat_reset(av), av->have_st);
  if (changed) {
    av_engine *e = NULL;
    char err[sizeof av->load_err];
    int failed = engine_load(av->dir, av->max_filesize, &e, err, sizeof err);
    pthread_mutex_lock(&av->mu);
    memcpy(av->load_err, err, sizeof err);
    pthread_mutex_unlock(&av->mu);
    if (failed) {
      rc = -1; /* the previous engine stays; retried when the files change again */
    } else {
      pthread_mutex_lock(&av->mu);
      av_engine *old = av->cur;
      av->cur = e;
      pthread_mutex_unlock(&av->mu);
      engine_unref(old);
      rc = 1;
    }
    stat_reset(av);
  }
  pthread_mutex_unlock(&av->reload_mu);
  return rc;
}

/* The current engine, referenced (engine_unref it); NULL with the reason in err (may be
 * NULL) when none is loaded. */
static av_engine *engine_get(struct scan_av *av, char *err, size_t errlen) {
  pthread_mutex_lock(&av->mu);
  av_engine *e = av->cur;
  if (e) atomic_fetch_add(&e->refs, 1);
  if (!e && err) snprintf(err, errlen, "%s", av->load_err);
  pthread_mutex_unlock(&av->mu);
  return e;
}

unsigned scan_av_signatures(const struct scan_av *av) {
  if (!av) return 0;
  av_engine *e = engine_get((struct scan_av *)av, NULL, 0);
  unsigned n = e ? e->sigs : 0;
  engine_unref(e);
  return n;
}

void scan_av_close(struct scan_av *av) {
  if (!av) return;
  engine_unref(av->cur);
  if (av->have_st) cl_statfree(&av->st);
  pthread_mutex_destroy(&av->mu);
  pthread_mutex_destroy(&av->reload_mu);
  free(av->dir);
  free(av);
}

json_t *scan_av_scan(struct scan_av *av, int fd, uint64_t size) {
  char err[200] = "";
  av_engine *e = av ? engine_get(av, err, sizeof err) : NULL;
  json_t *out = NULL;
  if (!e) {
    return json_pack("{s:s, s:s}", "status", "unscanned", "message",
                     err[0] ? err : "no malware signature database is loaded");
  }
  if (size > av->max_filesize) {
    char msg[160];
    snprintf(msg, sizeof msg, "not scanned for malware: %llu bytes is over the %llu-byte limit",
             (unsigned long long)size, (unsigned long long)av->max_filesize);
    out = json_pack("{s:s, s:s}", "status", "unscanned", "message", msg);
    goto done;
  }
  /* every parser on (archives, documents, executables); heuristic alerts off: they flag
   * broken or encrypted files, which model repos are full of, not malware */
  struct cl_scan_options opts;
  memset(&opts, 0, sizeof opts);
  opts.parse = ~0u;
  const char *virname = NULL;
  unsigned long scanned = 0;
  cl_error_t rc = cl_scandesc(fd, NULL, &virname, &scanned, e->cl, &opts);
  if (rc == CL_VIRUS) {
    char msg[200];
    snprintf(msg, sizeof msg, "malware signature matched: %.150s", virname ? virname : "?");
    out = json_pack("{s:s, s:s, s:s}", "status", "unsafe", "message", msg, "signature",
                    virname ? virname : "?");
  } else if (rc == CL_CLEAN) {
    char msg[120];
    snprintf(msg, sizeof msg, "no malware signature matched (%u signatures)", e->sigs);
    out = json_pack("{s:s, s:s}", "status", "safe", "message", msg);
  } else {
    char msg[200];
    snprintf(msg, sizeof msg, "malware scan failed: %s", cl_strerror(rc));
    out = json_pack("{s:s, s:s}", "status", "error", "message", msg);
  }
done:
  engine_unref(e);
  return out;
}
