/* Git smart HTTP handlers (hf-api.md §8.1) and the git-lfs locks stubs (§8.2).
 *
 *   GET  …/info/refs?service=git-upload-pack|git-receive-pack   ref advertisement
 *   POST …/git-upload-pack                                       fetch / clone
 *   POST …/git-receive-pack                                      push
 *
 * Each runs `git <service> --stateless-rpc [--advertise-refs] <repo dir>`; see git.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "db/stmt.h"
#include "git/internal.h"
#include "util/error.h"

enum { SVC_UPLOAD = 0, SVC_RECEIVE = 1 };
static const char *const svc_names[] = {"upload-pack", "receive-pack"};

/* One streamed response: an optional prefix (the "# service=" pkt-line), then the child's
 * stdout. For pushes, the post-receive log says which refs moved. */
typedef struct {
  git_child child;
  char prefix[64];
  size_t prefix_len, prefix_off;
  int svc;
  int push_log_fd; /* -1 unless a push */
  char push_log[4400];
  int applied; /* git_after_push done */
  db_repo repo;
  char request_id[33];
  hub_identity who; /* pusher, for the audit log */
  char ip[64];
} rpc_stream;

static int svc_from_name(const char *s) {
  if (s && !strcmp(s, "git-upload-pack")) return SVC_UPLOAD;
  if (s && !strcmp(s, "git-receive-pack")) return SVC_RECEIVE;
  return -1;
}

/* git prints a text/plain error body to the user ("remote: …"); JSON it would drop. */
static int reply_text(hub_req *r, int status, const char *msg) {
  return http_reply_data(r, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

/* Git-Protocol (e.g. "version=2") passed through as GIT_PROTOCOL so protocol v2 works; an
 * oversized value or one with other characters is dropped, never passed on. */
static const char *git_protocol(hub_req *r) {
  const char *v = http_header(r, "Git-Protocol");
  if (!v || !*v || strlen(v) > GIT_MAX_PROTOCOL_HEADER) return NULL;
  if (strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789=:._-") != strlen(v))
    return NULL;
  return v;
}

static void push_apply(rpc_stream *s) {
  if (s->push_log_fd < 0 || s->applied) return;
  s->applied = 1;
  if (git_push_log_apply(&s->repo, &(audit_ctx){&s->who, NULL, s->ip}, s->push_log_fd))
    fprintf(stderr, "git rid=%s: after push of %s/%s: %s\n", s->request_id, s->repo.ns,
            s->repo.name, hub_error_msg());
  db_write_fence(); /* what it recorded stays unannounced until every node's cache is newer */
}

static ssize_t stream_read(void *payload, uint64_t pos, char *buf, size_t max) {
  rpc_stream *s = payload;
  if (s->prefix_off < s->prefix_len) {
    size_t n = s->prefix_len - s->prefix_off;
    if (n > max) n = max;
    memcpy(buf, s->prefix + s->prefix_off, n);
    s->prefix_off += n;
    return (ssize_t)n;
  }
  ssize_t n = git_child_read(&s->child, buf, max);
  if (n > 0) return n;
  int code = git_child_wait(&s->child);
  if (n < 0 || code != 0)
    fprintf(stderr, "git rid=%s: git %s for %s/%s ended with %s %d\n", s->request_id,
            svc_names[s->svc], s->repo.ns, s->repo.name, n < 0 ? "read error" : "status", code);
  /* Before the response ends: when `git push` returns, derived data is current. */
  push_apply(s);
  return n < 0 ? -1 : 0;
}

static void stream_free(void *payload) {
  rpc_stream *s = payload;
  git_child_dispose(&s->child); /* kills git if the client went away mid-response */
  push_apply(s);                /* refs may have moved before the client left */
  if (s->push_log_fd >= 0) {
    close(s->push_log_fd);
    unlink(s->push_log);
  }
  free(s);
}

/* Spawn the service and queue the streamed response. in_fd is the spooled body (-1 for the
 * advertisement). */
static int run(hub_req *r, int svc, int advertise, int in_fd) {
  char dir[4200], hooks_cfg[4400], proto[GIT_MAX_PROTOCOL_HEADER + 16], bin[4400], data[4400];
  char repo_env[2 * HUB_MAX_NAME + 32], log_env[4500], name_env[HUB_MAX_USER_NAME + 32];
  char email_env[HUB_MAX_USER_NAME + 64], ctype[64];
  const char *argv[24], *extra[16];
  char actor_env[HUB_MAX_USER_NAME + 32], token_env[64], ip_env[96], perm_env[32], delay_env[64];
  char db_env[1100];
  char **envp = NULL;
  size_t a = 0, e = 0;
  int push = svc == SVC_RECEIVE && !advertise, rc;
  rpc_stream *s = calloc(1, sizeof *s);
  if (!s) return hub_error_set(HUB_ERROR, "out of memory");
  s->svc = svc;
  s->push_log_fd = -1;
  s->repo = r->repo;
  s->who = r->who;
  snprintf(s->ip, sizeof s->ip, "%s", http_client_ip(r));
  memcpy(s->request_id, r->request_id, sizeof s->request_id);

  db_repo_dir(r->repo.uid, dir, sizeof dir);
  if (access(dir, F_OK)) { /* a DB row without its git dir: say so in the log, not via git */
    rc = hub_error_set(HUB_ERROR, "git directory of %s/%s missing: %s", r->repo.ns, r->repo.name,
                       dir);
    goto fail;
  }
  argv[a++] = "git";
  if (svc == SVC_UPLOAD) {
    argv[a++] = "-c";
    argv[a++] = "uploadpack.allowFilter=true"; /* partial clones (--filter=blob:none) */
  }
  if (push) {
    const char *hooks = git_hooks_dir();
    if (!hooks) {
      rc = HUB_ERROR;
      goto fail;
    }
    snprintf(hooks_cfg, sizeof hooks_cfg, "core.hooksPath=%s", hooks);
    argv[a++] = "-c";
    argv[a++] = hooks_cfg;
    /* Pushed objects and refs reach the disk before the push is acknowledged, like a commit
     * through the API. */
    argv[a++] = "-c";
    argv[a++] = "core.fsync=committed";
    /* No `git gc --auto` / `git maintenance run --auto` after the push: its detached
     * `pack-refs --prune` raced with the server's own ref updates (libgit2) and brought
     * deleted branches back. Maintenance is the server's job, under the repo's ref lock
     * (git/maint.c). */
    argv[a++] = "-c";
    argv[a++] = "receive.autogc=false";
    argv[a++] = "-c";
    argv[a++] = "gc.auto=0";
    argv[a++] = "-c";
    argv[a++] = "maintenance.auto=false";
    snprintf(s->push_log, sizeof s->push_log, "%s/tmp/git-push-XXXXXX", git_data_dir_abs());
    s->push_log_fd = mkostemp(s->push_log, O_CLOEXEC);
    if (s->push_log_fd < 0) {
      rc = hub_error_set(HUB_ERROR, "cannot create push log: %s", strerror(errno));
      goto fail;
    }
    snprintf(bin, sizeof bin, "MODELHUB_BIN=%s", git_self_exe());
    snprintf(data, sizeof data, "MODELHUB_DATA=%s", git_data_dir_abs());
    snprintf(repo_env, sizeof repo_env, "MODELHUB_REPO=%s%s/%s", http_type_prefix(r->repo.type),
             r->repo.ns, r->repo.name);
    snprintf(log_env, sizeof log_env, "MODELHUB_PUSH_LOG=%s", s->push_log);
    snprintf(name_env, sizeof name_env, "GIT_COMMITTER_NAME=%s", r->who.name);
    snprintf(email_env, sizeof email_env, "GIT_COMMITTER_EMAIL=%s@users.noreply.modelhub",
             r->who.name);
    extra[e++] = bin;
    extra[e++] = data;
    extra[e++] = repo_env;
    extra[e++] = log_env;
    extra[e++] = name_env;
    extra[e++] = email_env;
    /* Who pushes, for the post-receive hook's event and audit entry. */
    snprintf(actor_env, sizeof actor_env, "MODELHUB_ACTOR=%s", r->who.name);
    snprintf(token_env, sizeof token_env, "MODELHUB_TOKEN_ID=%s", r->who.token_uid);
    snprintf(ip_env, sizeof ip_env, "MODELHUB_CLIENT_IP=%s",
             http_client_ip(r) ? http_client_ip(r) : "");
    extra[e++] = actor_env;
    extra[e++] = token_env;
    extra[e++] = ip_env;
    /* The pusher's permission: the hook applies auth_may_write_ref() to every ref. */
    snprintf(perm_env, sizeof perm_env, "MODELHUB_REPO_PERM=%d", r->repo_perm);
    extra[e++] = perm_env;
    /* The hooks use the server's database: on PostgreSQL, its URL (--db / MODELHUB_DB). */
    if (db_engine() == DB_ENGINE_POSTGRES) {
      snprintf(db_env, sizeof db_env, "MODELHUB_DB=%s", db_engine_url());
      extra[e++] = db_env;
    }
    const char *delay = getenv("MODELHUB_TEST_HOOK_DELAY_MS"); /* tests: a slow hook */
    if (delay && *delay) {
      snprintf(delay_env, sizeof delay_env, "MODELHUB_TEST_HOOK_DELAY_MS=%.20s", delay);
      extra[e++] = delay_env;
    }
  }
  argv[a++] = svc_names[svc];
  argv[a++] = "--stateless-rpc";
  if (advertise) argv[a++] = "--advertise-refs";
  argv[a++] = dir;
  argv[a] = NULL;
  const char *gp = git_protocol(r);
  if (gp) {
    snprintf(proto, sizeof proto, "GIT_PROTOCOL=%s", gp);
    extra[e++] = proto;
  }
  extra[e] = NULL;

  if ((rc = git_child_env(&envp, extra))) goto fail;
  rc = git_child_spawn(&s->child, (char *const *)argv, envp, in_fd);
  free(envp);
  if (rc) goto fail;
  if (advertise) {
    /* pkt-line "# service=git-<svc>\n" then a flush packet, as git http-backend sends. */
    char line[48];
    int ll = snprintf(line, sizeof line, "# service=git-%s\n", svc_names[svc]);
    s->prefix_len = (size_t)snprintf(s->prefix, sizeof s->prefix, "%04x%s0000", ll + 4, line);
  }
  snprintf(ctype, sizeof ctype,
           advertise ? "application/x-git-%s-advertisement" : "application/x-git-%s-result",
           svc_names[svc]);
  /* From here the stream owns s (freed through stream_free, also on failure). */
  if ((rc = http_reply_stream(r, 200, ctype, UINT64_MAX, stream_read, s, stream_free))) return rc;
  http_add_header(r, "Cache-Control", "no-cache, max-age=0, must-revalidate");
  http_add_header(r, "Pragma", "no-cache");
  http_add_header(r, "Expires", "Fri, 01 Jan 1980 00:00:00 GMT");
  return 0;
fail:
  stream_free(s);
  return rc;
}

/* Push is checked here rather than by the route's needs so git gets a message it prints:
 * anonymous → 401 + challenge (git then asks its credential helper), read-only → 403. */
static int push_denied(hub_req *r) {
  char msg[512];
  if (r->repo_perm >= PERM_WRITE) return 0;
  if (!r->who.authenticated) {
    /* The router adds WWW-Authenticate to every 401 of a NEED_GIT_CHALLENGE route. */
    reply_text(r, 401,
               "Authentication required to push: use a token with write access as "
               "the password.\n");
    return 1;
  }
  if (r->who.token_role == PERM_READ && r->repo_perm >= PERM_READ)
    snprintf(msg, sizeof msg,
             "Your token is read-only: pushing to %s/%s needs a token with write access.\n",
             r->repo.ns, r->repo.name);
  else
    snprintf(msg, sizeof msg, "You don't have write access to %s/%s.\n", r->repo.ns, r->repo.name);
  reply_text(r, 403, msg);
  return 1;
}

static int h_info_refs(hub_req *r) {
  int svc = svc_from_name(http_param(r, "service"));
  if (svc < 0)
    return reply_text(r, 403,
                      "This server speaks only the smart HTTP git protocol; "
                      "please upgrade git.\n");
  if (svc == SVC_RECEIVE && push_denied(r)) return 0;
  return run(r, svc, 1, -1);
}

static void body_free(void *p) {
  git_body_dispose(p);
  free(p);
}

/* The service named by the URL's last segment ("git-upload-pack" / "git-receive-pack"). */
static int svc_of(hub_req *r) {
  return r->nsegs ? svc_from_name(r->segs[r->nsegs - 1]) : -1;
}

static int check_content_type(hub_req *r, int svc) {
  char want[64];
  const char *ct = http_header(r, "Content-Type");
  snprintf(want, sizeof want, "application/x-git-%s-request", svc_names[svc]);
  if (!ct || strcasecmp(ct, want))
    return hub_error_set(HUB_EINVALID, "Content-Type must be %s", want);
  return 0;
}

static int body_start(hub_req *r) {
  int svc = svc_of(r), rc;
  if (svc < 0) return hub_error_set(HUB_ENOTFOUND, "Not found");
  if ((rc = check_content_type(r, svc))) return rc;
  const char *ce = http_header(r, "Content-Encoding");
  int gzip = ce && (!strcasecmp(ce, "gzip") || !strcasecmp(ce, "x-gzip"));
  if (ce && !gzip && strcasecmp(ce, "identity"))
    return hub_error_set(HUB_EINVALID, "Unsupported Content-Encoding '%.32s'", ce);
  const char *cl = http_header(r, "Content-Length");
  if (svc == SVC_UPLOAD && cl && strtoull(cl, NULL, 10) > git_body_upload_max())
    return hub_error_set(HUB_ETOOBIG, "git-upload-pack request body too large (limit %llu bytes)",
                         (unsigned long long)git_body_upload_max());
  git_body *b = calloc(1, sizeof *b);
  if (!b) return hub_error_set(HUB_ERROR, "out of memory");
  /* Anyone who may read the repo can fetch: its negotiation body gets a small cap. */
  uint64_t max = svc == SVC_UPLOAD ? git_body_upload_max() : (uint64_t)GIT_MAX_RPC_BODY;
  rc = git_body_open(b, gzip, max);
  r->state = b;
  http_cleanup_add(r, body_free, b);
  return rc;
}

static int on_body(hub_req *r, const char *data, size_t len) {
  int rc;
  if (!r->state && (rc = body_start(r))) return rc;
  git_body *b = r->state;
  if ((rc = git_body_write(b, data, len))) return rc;
  /* Bytes kept in the memfd are memory: they draw on the process-wide body budget like
   * any buffered body; when it is spent the body goes to the disk spool instead. */
  if (b->in_memory && http_body_hold(r, (size_t)b->total)) {
    hub_error_clear();
    if ((rc = git_body_to_disk(b))) return rc;
  }
  if (!b->in_memory) http_body_hold(r, 0); /* shrinking cannot fail */
  return 0;
}

static int h_rpc(hub_req *r) {
  int svc = svc_of(r), rc, fd;
  if (svc < 0) return hub_error_set(HUB_ENOTFOUND, "Not found");
  if (!r->state && (rc = body_start(r))) return rc; /* empty body */
  if ((rc = git_body_finish(r->state, &fd))) return rc;
  return run(r, svc, 0, fd);
}

/* git-lfs locking: this hub has no locks, so every list is empty. Answering (rather than
 * 404) keeps git-lfs from printing a "locking not supported" warning on every push. */
static int reply_lfs(hub_req *r, json_t *body) {
  char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (!s) return hub_error_set(HUB_ERROR, "out of memory");
  int rc = http_reply_data(r, 200, "application/vnd.git-lfs+json", s, strlen(s));
  free(s);
  return rc;
}

static int h_lfs_locks(hub_req *r) {
  return reply_lfs(r, json_pack("{s:[]}", "locks"));
}

static int h_lfs_locks_verify(hub_req *r) {
  return reply_lfs(r, json_pack("{s:[], s:[]}", "ours", "theirs"));
}

#define GIT_READ (NEED_REPO_FILES | NEED_GIT_CHALLENGE)

const hub_route git_routes[] = {
    {"GET", "{prefix}/{repo}/info/refs", h_info_refs, GIT_READ | ERR_GIT, BODY_NONE, NULL, 0},
    {"POST", "{prefix}/{repo}/git-upload-pack", h_rpc, GIT_READ | ERR_GIT, BODY_STREAM, on_body, 0},
    {"POST", "{prefix}/{repo}/git-receive-pack", h_rpc,
     NEED_REPO_WRITE | NEED_GIT_CHALLENGE | ERR_GIT, BODY_STREAM, on_body, 0},
    {"GET", "{prefix}/{repo}/info/lfs/locks", h_lfs_locks,
     NEED_REPO_READ | NEED_GIT_CHALLENGE | ERR_LFS, BODY_NONE, NULL, 0},
    {"POST", "{prefix}/{repo}/info/lfs/locks/verify", h_lfs_locks_verify,
     NEED_REPO_READ | NEED_GIT_CHALLENGE | ERR_LFS, BODY_JSON, NULL, 0},
    {NULL, NULL, NULL, 0, 0, NULL, 0},
};
