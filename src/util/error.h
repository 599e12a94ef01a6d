/* Error codes and the thread-local last-error message.
 *
 * Functions return 0 on success, one of the named negative codes below for expected
 * failures, or HUB_ERROR for anything else; the message for the last failure on this
 * thread is in hub_error_msg(). Codes are mapped to HTTP status + X-Error-Code in one
 * place only (http/errors.c). Propagate a callee's code unchanged. */
#ifndef HUB_UTIL_ERROR_H
#define HUB_UTIL_ERROR_H

enum {
  HUB_OK = 0,
  HUB_ERROR = -1,           /* internal: 500 */
  HUB_ENOTFOUND = -2,       /* generic not found: 404 */
  HUB_EEXISTS = -3,         /* already exists: 409 */
  HUB_EINVALID = -4,        /* bad input: 400 */
  HUB_EAUTH = -5,           /* bad or missing credentials: 401 */
  HUB_EFORBIDDEN = -6,      /* authenticated but not allowed: 403 */
  HUB_ECONFLICT = -7,       /* stale parent / precondition failed: 412 */
  HUB_ETOOBIG = -8,         /* body or field over a limit: 413 */
  HUB_EREPO = -9,           /* repo not found (or not visible): 404 RepoNotFound */
  HUB_EREVISION = -10,      /* revision not found: 404 RevisionNotFound */
  HUB_EENTRY = -11,         /* file/entry not found: 404 EntryNotFound */
  HUB_ERANGE = -12,         /* unsatisfiable range: 416 */
  HUB_EGATED = -13,         /* gated repo, access not granted: 401/403 GatedRepo */
  HUB_EUNSUPPORTED = -14,   /* not implemented on this hub: 501 */
  HUB_ERETRY = -15,         /* lost a race, caller may retry: 409 */
  HUB_EMETHOD = -16,        /* method not allowed: 405 */
  HUB_EUNPROCESSABLE = -17, /* semantically invalid: 422 */
  HUB_ENOSPC = -18,         /* out of disk space (ENOSPC, EDQUOT, SQLITE_FULL): 507 */
  HUB_EUNAVAILABLE = -19,   /* shutting down: 503 */
  HUB_EBUSY = -20,          /* over a shared capacity (body memory): 503 + Retry-After */
  HUB_EBLOCKED = -21,       /* file withheld by the security-scan policy: 403 BlockedByScan */
  HUB_EUPSTREAM = -22,      /* an upstream hub failed (5xx, timeout, DNS, cut): 502 UpstreamError */
  HUB_EOFFLINE = -23,       /* offline mode, or upstream unreachable, and not cached: 503 */
  HUB_ERATELIMIT = -24,     /* rate limited (here or upstream): 429 + Retry-After */
};

/* Record code + printf-style message for this thread; returns code so callers can
 * write `return hub_error_set(HUB_EINVALID, "...")`. A HUB_ERROR whose message carries
 * the text of ENOSPC / EDQUOT ("No space left on device", "Disk quota exceeded") or of
 * SQLite's SQLITE_FULL ("database or disk is full") is recorded and returned as HUB_ENOSPC:
 * a full disk is reported the same way wherever the write failed (libgit2, SQLite, the
 * blob store, spools), since those layers only hand us a message. */
int hub_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Message of the last error on this thread ("" if none). Borrowed, valid until the
 * next hub_error_set on this thread. */
const char *hub_error_msg(void);
int hub_error_code(void);
void hub_error_clear(void);

#endif
