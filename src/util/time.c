#include "util/time.h"

#include <stdio.h>
#include <time.h>

void hub_iso_time(int64_t ms, char *out) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char b[24];
  strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, 32, "%s.%03dZ", b, (int)(ms % 1000));
}

json_t *hub_iso_json(int64_t ms) {
  char b[32];
  hub_iso_time(ms, b);
  return json_string(b);
}

int64_t hub_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
