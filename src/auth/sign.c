#include "auth/sign.h"

#include "util/error.h"
#include "util/limits.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

static unsigned char sign_key[SIGN_KEY_MAX];
static size_t sign_key_len;

int sign_init(const unsigned char *key, size_t len) {
  if (!key || len < SIGN_KEY_MIN || len > SIGN_KEY_MAX)
    return hub_error_set(HUB_EINVALID, "signing key must be %d..%d bytes", SIGN_KEY_MIN,
                         SIGN_KEY_MAX);
  memcpy(sign_key, key, len);
  sign_key_len = len;
  return 0;
}

static int check_field(const char *what, const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > HUB_MAX_SIGN_SUBJECT)
    return hub_error_set(HUB_EINVALID, "signed URL %s must be 1..%d bytes", what,
                         HUB_MAX_SIGN_SUBJECT);
  return 0;
}

static int mac(const char *purpose, const char *subject, int64_t exp, unsigned char out[32]) {
  char msg[64 + 2 * HUB_MAX_SIGN_SUBJECT + 64];
  unsigned int outlen = 0;
  if (!sign_key_len) return hub_error_set(HUB_ERROR, "signing key not initialised");
  int n = snprintf(msg, sizeof msg, "modelhub-sign-v1\n%zu:%s\n%zu:%s\n%" PRId64, strlen(purpose),
                   purpose, strlen(subject), subject, exp);
  if (n < 0 || (size_t)n >= sizeof msg) return hub_error_set(HUB_ERROR, "sign: message too long");
  if (!HMAC(EVP_sha256(), sign_key, (int)sign_key_len, (const unsigned char *)msg, (size_t)n, out,
            &outlen) ||
      outlen != 32)
    return hub_error_set(HUB_ERROR, "HMAC-SHA256 failed");
  return 0;
}

int sign_make(hub_buf *out_query, const char *purpose, const char *subject, int64_t expires_unix) {
  static const char digits[] = "0123456789abcdef";
  unsigned char m[32];
  char hex[65];
  int rc;
  if ((rc = check_field("purpose", purpose)) < 0 || (rc = check_field("subject", subject)) < 0)
    return rc;
  if (expires_unix < 0) return hub_error_set(HUB_EINVALID, "negative expiry");
  if ((rc = mac(purpose, subject, expires_unix, m)) < 0) return rc;
  for (int i = 0; i < 32; i++) {
    hex[2 * i] = digits[m[i] >> 4];
    hex[2 * i + 1] = digits[m[i] & 15];
  }
  hex[64] = 0;
  if (hub_buf_printf(out_query, "exp=%" PRId64 "&sig=%s", expires_unix, hex) < 0 ||
      out_query->failed)
    return hub_error_set(HUB_ERROR, "signed URL: buffer full");
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int sign_check(const char *purpose, const char *subject, const char *exp_str, const char *sig_hex,
               int64_t now) {
  unsigned char want[32], got[32];
  int64_t exp = 0;
  int rc;
  if (check_field("purpose", purpose) < 0 || check_field("subject", subject) < 0 || !exp_str ||
      !sig_hex)
    return hub_error_set(HUB_EAUTH, "invalid signature");
  /* exp: canonical decimal, as sign_make writes it */
  const char *p = exp_str;
  if (!*p || (p[0] == '0' && p[1])) return hub_error_set(HUB_EAUTH, "invalid signature");
  for (; *p; p++) {
    if (*p < '0' || *p > '9') return hub_error_set(HUB_EAUTH, "invalid signature");
    int d = *p - '0';
    if (exp > (INT64_MAX - d) / 10) return hub_error_set(HUB_EAUTH, "invalid signature");
    exp = exp * 10 + d;
  }
  for (int i = 0; i < 32; i++) {
    int hi = hexval(sig_hex[2 * i]), lo = hi < 0 ? -1 : hexval(sig_hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return hub_error_set(HUB_EAUTH, "invalid signature");
    got[i] = (unsigned char)(hi << 4 | lo);
  }
  if (sig_hex[64]) return hub_error_set(HUB_EAUTH, "invalid signature");
  if ((rc = mac(purpose, subject, exp, want)) < 0) return rc;
  if (CRYPTO_memcmp(want, got, sizeof want) != 0)
    return hub_error_set(HUB_EAUTH, "invalid signature");
  if (now > exp) return hub_error_set(HUB_EAUTH, "expired");
  return 0;
}
