/* Branches, tags, PR and convert refs. */
#include "repo/repo_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/limits.h"

static const struct {
  const char *prefix;
  repo_ref_kind kind;
  int keep_prefix; /* PR names are reported in full */
} kinds[] = {
    {"refs/heads/", REPO_REF_BRANCH, 0},
    {"refs/tags/", REPO_REF_TAG, 0},
    {"refs/convert/", REPO_REF_CONVERT, 0},
    {"refs/pr/", REPO_REF_PR, 1},
};

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int repo_refs_list(repo_handle *h, repo_ref_cb cb, void *payload) {
  git_strarray names = {0};
  size_t i, k;
  int rc = 0, err;

  if ((err = git_reference_list(&names, h->git)) < 0)
    return repo__git_error(err, HUB_ERROR, "list refs");
  qsort(names.strings, names.count, sizeof *names.strings, cmp_str);
  for (i = 0; i < names.count && rc == 0; i++) {
    const char *name = names.strings[i];
    for (k = 0; k < sizeof kinds / sizeof *kinds; k++) {
      size_t plen = strlen(kinds[k].prefix);
      git_reference *ref = NULL;
      git_object *obj = NULL;
      repo_ref r;
      if (strncmp(name, kinds[k].prefix, plen) || !name[plen]) continue;
      if (git_reference_lookup(&ref, h->git, name) < 0) break;
      err = git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT);
      git_reference_free(ref);
      if (err < 0) break; /* tag of a tree or blob, dangling: not a revision */
      r.kind = kinds[k].kind;
      r.ref = name;
      r.name = kinds[k].keep_prefix ? name : name + plen;
      repo__oid_hex(r.target, git_object_id(obj));
      git_object_free(obj);
      rc = cb(&r, payload);
      break;
    }
  }
  git_strarray_dispose(&names);
  return rc;
}

int repo_ref_name_valid(const char *name) {
  char full[HUB_MAX_PATH + 16];
  int valid = 0;
  size_t len = name ? strlen(name) : 0;

  if (!len || len > HUB_MAX_NAME * 2)
    return hub_error_set(HUB_EINVALID, "Invalid reference name '%.200s'", name ? name : "");
  snprintf(full, sizeof full, "refs/heads/%s", name);
  if (git_reference_name_is_valid(&valid, full) < 0 || !valid || !strcmp(name, "HEAD") ||
      name[0] == '-' || (len == 40 && repo__is_hex(name, 40)))
    return hub_error_set(HUB_EINVALID, "Invalid reference name '%s'", name);
  return 0;
}

/* "dev" or "refs/heads/dev" → "refs/heads/dev" in full (validated). */
static int full_name(char *full, size_t cap, const char *prefix, const char *name) {
  int rc;
  size_t plen = strlen(prefix);
  if (name && !strncmp(name, prefix, plen)) name += plen;
  if ((rc = repo_ref_name_valid(name)) < 0) return rc;
  snprintf(full, cap, "%s%s", prefix, name);
  return 0;
}

/* One ref move through the transaction. */
static int move_one(repo_handle *h, const char *ref, const char *expected, const char *new_id,
                    const repo_recorder *rec) {
  repo_txn *t = NULL;
  int rc = repo_txn_begin(&t, h);
  if (!rc) rc = repo_txn_update(t, ref, expected, new_id);
  if (!rc) rc = repo_txn_commit(t, rec, NULL, NULL);
  repo_txn_free(t);
  return rc;
}

int repo_branch_create(repo_handle *h, const char *name, const char *start, int overwrite,
                       const repo_recorder *rec) {
  char full[HUB_MAX_PATH + 16], sha[41];
  int rc;

  if ((rc = full_name(full, sizeof full, "refs/heads/", name)) < 0) return rc;
  if ((rc = repo_resolve(h, start ? start : "HEAD", sha, NULL)) < 0) return rc;
  return move_one(h, full, overwrite ? NULL : "", sha, rec);
}

int repo_ref_delete(repo_handle *h, const char *refname, const repo_recorder *rec) {
  int valid = 0;
  if (git_reference_name_is_valid(&valid, refname) < 0 || !valid)
    return hub_error_set(HUB_EREVISION, "Invalid rev id: %.200s", refname);
  return move_one(h, refname, NULL, "", rec);
}

int repo_branch_delete(repo_handle *h, const char *name, const repo_recorder *rec) {
  char full[HUB_MAX_PATH + 16];
  int rc;
  if ((rc = full_name(full, sizeof full, "refs/heads/", name)) < 0) return rc;
  return repo_ref_delete(h, full, rec);
}

int repo_branch_exists(repo_handle *h, const char *name) {
  char full[HUB_MAX_PATH + 16];
  git_reference *ref = NULL;
  int err;

  if (full_name(full, sizeof full, "refs/heads/", name) < 0) return 0;
  err = git_reference_lookup(&ref, h->git, full);
  git_reference_free(ref);
  if (err == 0) return 1;
  if (err == GIT_ENOTFOUND) return 0;
  return repo__git_error(err, HUB_ERROR, "look up branch");
}

int repo_tag_create(repo_handle *h, const char *name, const char *target, const char *message,
                    const char *tagger_name, const char *tagger_email, const repo_recorder *rec) {
  char full[HUB_MAX_PATH + 16], sha[41], hex[41];
  const char *short_name;
  git_object *obj = NULL;
  git_signature *sig = NULL;
  git_oid id;
  int rc = 0, err;

  if ((rc = full_name(full, sizeof full, "refs/tags/", name)) < 0) return rc;
  short_name = full + strlen("refs/tags/");
  if ((rc = repo_resolve(h, target ? target : "HEAD", sha, NULL)) < 0) return rc;
  git_oid_fromstr(&id, sha);
  if ((err = git_object_lookup(&obj, h->git, &id, GIT_OBJECT_COMMIT)) < 0)
    return repo__git_error(err, HUB_EREVISION, "look up commit");
  if (message) {
    /* The tag object first (not yet named by any ref), then the ref by the transaction. */
    if (!tagger_name || !*tagger_name || !tagger_email ||
        git_signature_now(&sig, tagger_name, tagger_email) < 0) {
      rc = hub_error_set(HUB_EINVALID, "an annotated tag needs a valid tagger");
      goto done;
    }
    if ((err = git_tag_annotation_create(&id, h->git, short_name, obj, sig, message)) < 0) {
      rc = repo__git_error(err, HUB_ERROR, "create tag");
      goto done;
    }
  }
  repo__oid_hex(hex, &id);
  rc = move_one(h, full, "", hex, rec);
  if (rc == HUB_EEXISTS) rc = hub_error_set(HUB_EEXISTS, "Tag already exists: %s", short_name);
done:
  git_signature_free(sig);
  git_object_free(obj);
  return rc;
}

int repo_tag_delete(repo_handle *h, const char *name, const repo_recorder *rec) {
  char full[HUB_MAX_PATH + 16];
  int rc;
  if ((rc = full_name(full, sizeof full, "refs/tags/", name)) < 0) return rc;
  return repo_ref_delete(h, full, rec);
}

int repo_refs_each_raw(repo_handle *h, repo_ref_raw_cb cb, void *payload) {
  git_strarray names = {0};
  int rc = 0, err;
  if ((err = git_reference_list(&names, h->git)) < 0)
    return repo__git_error(err, HUB_ERROR, "list refs");
  qsort(names.strings, names.count, sizeof *names.strings, cmp_str);
  for (size_t i = 0; i < names.count && rc == 0; i++) {
    git_reference *ref = NULL;
    char hex[41];
    if (strncmp(names.strings[i], "refs/", 5)) continue;
    if (git_reference_lookup(&ref, h->git, names.strings[i]) < 0) continue;
    if (git_reference_type(ref) == GIT_REFERENCE_DIRECT) {
      repo__oid_hex(hex, git_reference_target(ref));
      rc = cb(names.strings[i], hex, payload);
    }
    git_reference_free(ref);
  }
  git_strarray_dispose(&names);
  return rc;
}

static int max_pr(const char *name, void *payload) {
  int *max = payload;
  const char *p = name + strlen("refs/pr/");
  long n = 0;
  if (!*p || *p == '0') return 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9' || n > 100000000) return 0;
    n = n * 10 + (*p - '0');
  }
  if (n > *max) *max = (int)n;
  return 0;
}

int repo_next_pr_number(repo_handle *h, int *out) {
  int max = 0, err;

  *out = 0;
  err = git_reference_foreach_glob(h->git, "refs/pr/*", max_pr, &max);
  if (err < 0) return repo__git_error(err, HUB_ERROR, "list PR refs");
  *out = max + 1;
  return 0;
}
