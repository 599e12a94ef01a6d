/* Time formats of the Hub API. */
#ifndef HUB_UTIL_TIME_H
#define HUB_UTIL_TIME_H

#include <jansson.h>
#include <stdint.h>

/* "2026-08-20T11:44:43.000Z" from unix milliseconds; out ≥ 32 bytes. */
void hub_iso_time(int64_t ms, char *out);
/* The same as a JSON string (new reference; NULL when out of memory). */
json_t *hub_iso_json(int64_t ms);
/* Microseconds on the monotonic clock (durations only; never another host's). */
int64_t hub_mono_us(void);

#endif
