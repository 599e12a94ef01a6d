/* HMAC-SHA256 signed, expiring URLs for LFS transfers that clients send without credentials
 * (hf-api.md §5.3: basic PUT, multipart part PUTs and completion POST).
 *
 * A signature binds (purpose, subject, expiry). `purpose` names the action ("lfs-put",
 * "lfs-part", "lfs-complete", "lfs-get"); `subject` names what it applies to, e.g.
 * "<repo-id>/<oid>/<size>" or "<repo-id>/<oid>/part/<n>". Both are length-prefixed in the MAC
 * input, so no choice of strings can make two different (purpose, subject) pairs collide.
 * MAC input: "modelhub-sign-v1\n<len>:<purpose>\n<len>:<subject>\n<exp>".
 *
 * The key is process-wide; sign_init() must run before threads use sign_make/sign_check
 * (both are then thread-safe). */
#ifndef HUB_AUTH_SIGN_H
#define HUB_AUTH_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Minimum / maximum key length in bytes (use 32 random bytes). */
#define SIGN_KEY_MIN 16
#define SIGN_KEY_MAX 128

/* Install the key (copied). HUB_EINVALID if len is outside [SIGN_KEY_MIN, SIGN_KEY_MAX]. */
int sign_init(const unsigned char *key, size_t len);

/* Append "exp=<expires_unix>&sig=<64 lowercase hex>" to out_query (no leading '&' or '?').
 * purpose and subject are non-empty and at most HUB_MAX_SIGN_SUBJECT bytes (HUB_EINVALID);
 * HUB_ERROR if no key is set or the buffer failed. */
int sign_make(hub_buf *out_query, const char *purpose, const char *subject, int64_t expires_unix);

/* Verify the exp= and sig= query values for (purpose, subject) at time `now`.
 * 0 if authentic and now <= exp; HUB_EAUTH otherwise, with message "invalid signature"
 * (missing, malformed or tampered) or "expired" (authentic but too late). The signature is
 * checked first, in constant time, so "expired" is only ever said about genuine URLs. */
int sign_check(const char *purpose, const char *subject, const char *exp_str, const char *sig_hex,
               int64_t now);

#endif
