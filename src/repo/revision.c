/* Revision resolution: names, hex ids, and the URL-segment form of hf-api.md §1.2. */
#include "repo/repo_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/error.h"
#include "util/limits.h"
#include "util/pct.h"

/* Look up one full ref name and peel it to a commit. 0 found, 1 not found, <0 error. */
static int try_ref(repo_handle *h, const char *refname, git_oid *out, char **out_refname) {
  git_reference *ref = NULL, *res = NULL;
  git_object *obj = NULL;
  int err, rc = 1;

  err = git_reference_lookup(&ref, h->git, refname);
  if (err == GIT_ENOTFOUND || err == GIT_EINVALIDSPEC) goto done;
  if (err < 0) {
    rc = repo__git_error(err, HUB_ERROR, "look up ref");
    goto done;
  }
  err = git_reference_resolve(&res, ref);
  if (err == GIT_ENOTFOUND) goto done; /* HEAD of an unborn branch */
  if (err < 0) {
    rc = repo__git_error(err, HUB_ERROR, "resolve ref");
    goto done;
  }
  if (git_reference_peel(&obj, res, GIT_OBJECT_COMMIT) < 0) goto done; /* not a commit */
  git_oid_cpy(out, git_object_id(obj));
  if (out_refname) {
    *out_refname = repo__strdup(git_reference_name(res));
    if (!*out_refname) {
      rc = HUB_ERROR;
      goto done;
    }
  }
  rc = 0;
done:
  git_object_free(obj);
  git_reference_free(res);
  git_reference_free(ref);
  return rc;
}

/* Names only (HEAD, refs/..., branch, tag, stage). 0 found, 1 not found, <0 error. */
static int resolve_name(repo_handle *h, const char *rev, git_oid *out, char **out_refname) {
  static const char *const prefixes[] = {"refs/heads/", "refs/tags/", "refs/stages/"};
  char name[HUB_MAX_PATH + 16];
  size_t i;
  int rc;

  if (!strcmp(rev, "HEAD") || !strncmp(rev, "refs/", 5)) return try_ref(h, rev, out, out_refname);
  for (i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
    snprintf(name, sizeof name, "%s%s", prefixes[i], rev);
    if ((rc = try_ref(h, name, out, out_refname)) <= 0) return rc;
  }
  return 1;
}

/* Hex id or prefix. 0 found, 1 not found, <0 error. */
static int resolve_hex(repo_handle *h, const char *rev, git_oid *out) {
  size_t len = strlen(rev);
  git_object *obj = NULL;
  git_oid id;
  int err;

  if (len < GIT_OID_MINPREFIXLEN || len > GIT_OID_HEXSZ || !repo__is_hex(rev, len)) return 1;
  if (git_oid_fromstrn(&id, rev, len) < 0) return 1;
  err = git_object_lookup_prefix(&obj, h->git, &id, len, GIT_OBJECT_COMMIT);
  if (err == GIT_EAMBIGUOUS) {
    hub_error_set(HUB_EREVISION, "Ambiguous revision '%s'", rev);
    return HUB_EREVISION;
  }
  if (err < 0) return 1;
  git_oid_cpy(out, git_object_id(obj));
  git_object_free(obj);
  return 0;
}

static int not_found(const char *rev) {
  return hub_error_set(HUB_EREVISION, "Invalid rev id: %.200s", rev);
}

int repo_resolve(repo_handle *h, const char *rev, char out_sha[41], char **out_refname) {
  git_oid id;
  int rc;

  if (out_refname) *out_refname = NULL;
  if (!rev || !*rev || strlen(rev) > HUB_MAX_PATH) return not_found(rev ? rev : "");
  rc = resolve_name(h, rev, &id, out_refname);
  if (rc == 1) rc = resolve_hex(h, rev, &id);
  if (rc == 1) return not_found(rev);
  if (rc < 0) return rc;
  repo__oid_hex(out_sha, &id);
  return 0;
}

int repo_resolve_segments(repo_handle *h, const char *const *raw_segs, size_t nsegs,
                          char out_sha[41], char **out_rev, size_t *out_consumed) {
  hub_buf join = HUB_BUF_INIT;
  char *first = NULL, *seg = NULL, *best = NULL;
  size_t k, best_k = 0;
  git_oid id, best_id;
  int rc;

  if (out_rev) *out_rev = NULL;
  *out_consumed = 0;
  if (nsegs == 0) return hub_error_set(HUB_EREVISION, "missing revision");
  if ((rc = hub_pct_decode(&first, raw_segs[0])) < 0) return rc;

  if (strchr(first, '/') || nsegs == 1) {
    rc = repo_resolve(h, first, out_sha, NULL);
    best_k = 1;
    goto done;
  }

  hub_buf_init(&join, HUB_MAX_PATH);
  hub_buf_puts(&join, first);
  for (k = 1; k <= nsegs; k++) {
    if (k > 1) {
      if ((rc = hub_pct_decode(&seg, raw_segs[k - 1])) < 0) goto done;
      if (!*seg || strchr(seg, '/')) break; /* a %2F sub-path is never part of a ref */
      hub_buf_putc(&join, '/');
      hub_buf_puts(&join, seg);
      free(seg);
      seg = NULL;
      if (join.failed) break; /* longer than any revision we accept */
    }
    rc = resolve_name(h, join.ptr, &id, NULL);
    if (rc < 0) goto done;
    if (rc == 0) {
      best_k = k;
      best_id = id;
      free(best);
      if (!(best = repo__strdup(join.ptr))) {
        rc = HUB_ERROR;
        goto done;
      }
    }
  }
  if (best_k) {
    repo__oid_hex(out_sha, &best_id);
    free(first);
    first = best;
    best = NULL;
    rc = 0;
  } else {
    rc = repo_resolve(h, first, out_sha, NULL); /* HEAD, hex id */
    best_k = 1;
  }

done:
  if (rc == 0) {
    *out_consumed = best_k;
    if (out_rev) {
      *out_rev = first;
      first = NULL;
    }
  }
  free(seg);
  free(best);
  free(first);
  hub_buf_dispose(&join);
  return rc;
}
