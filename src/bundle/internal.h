/* bundle/ internals shared by export.c, import.c and util.c. */
#ifndef HUB_BUNDLE_INTERNAL_H
#define HUB_BUNDLE_INTERNAL_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "bundle/bundle.h"

#define BUNDLE_IO_BLOCK (256 * 1024)

/* Run `git <args...>` (NULL-terminated) with stdout into out_fd (-1: /dev/null). A failure
 * (exit ≠ 0) → HUB_ERROR with git's stderr (first line) in the message. */
int bundle__git(const char *const *args, int out_fd);

/* Write all / read exactly n bytes (short read = HUB_EINVALID "truncated"). */
int bundle__write_all(int fd, const void *p, size_t n);
int bundle__read_exact(int fd, void *p, size_t n);

/* Copy exactly n bytes from in_fd to out_fd (out_fd -1: nowhere), hashing them into md
 * (may be NULL). */
int bundle__copy(int in_fd, int out_fd, uint64_t n, EVP_MD_CTX *md);

void bundle__hex(char *out, const unsigned char *p, size_t n);
/* sha256 (hex) and size of a whole file. */
int bundle__file_sha256(const char *path, char out_hex[65], uint64_t *out_size);

/* A fresh directory <data>/tmp/<prefix>XXXXXX (out: its path) / remove a tree. */
int bundle__tmpdir(const char *prefix, char *out, size_t cap);
void bundle__rmtree(const char *dir);

/* "model" / "dataset" / "space" <-> HUB_REPO_*. */
const char *bundle__type_name(int type);
int bundle__type_parse(const char *s, int *out);

#endif
