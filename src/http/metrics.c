/* Prometheus counters: requests by route and status, a latency histogram. Lock-free:
 * every request bumps a few relaxed atomic counters; the scrape reads them. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "http/http.h"
#include "http/internal.h"

#define MAX_ROUTES 512 /* route slots counted; later routes share the last slot */
static const int STATUSES[] = {200, 201, 204, 206, 304, 307, 400, 401, 403, 404, 405,
                               409, 412, 413, 416, 422, 429, 499, 500, 501, 503};
#define NS ((int)(sizeof STATUSES / sizeof STATUSES[0]) + 1) /* + "other" */
static const double BUCKETS_MS[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000};
#define NB (sizeof BUCKETS_MS / sizeof BUCKETS_MS[0])

static _Atomic uint64_t counts[MAX_ROUTES + 1][NS]; /* [0] = unmatched */
static _Atomic uint64_t hist[NB + 1];
static _Atomic uint64_t sum_us, total;
static _Atomic uint64_t escalated; /* RUN_INLINE_TRY handlers moved to a worker */

void http__metrics_escalated(void) {
  atomic_fetch_add_explicit(&escalated, 1, memory_order_relaxed);
}

static int status_slot(int status) {
  for (int i = 0; i < NS - 1; i++)
    if (STATUSES[i] == status) return i;
  return NS - 1;
}

void http__metrics_record(int route, int status, int64_t dur_us) {
  int r = route < 0 ? 0 : route + 1 > MAX_ROUTES ? MAX_ROUTES : route + 1;
  atomic_fetch_add_explicit(&counts[r][status_slot(status)], 1, memory_order_relaxed);
  double ms = (double)dur_us / 1000.0;
  size_t b = 0;
  while (b < NB && ms > BUCKETS_MS[b])
    b++;
  atomic_fetch_add_explicit(&hist[b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&sum_us, (uint64_t)(dur_us > 0 ? dur_us : 0), memory_order_relaxed);
  atomic_fetch_add_explicit(&total, 1, memory_order_relaxed);
}

void http_metrics_render(hub_buf *out, const char *(*route_name)(int idx, const char **method)) {
  hub_buf_puts(out, "# HELP modelhub_http_requests_total HTTP requests by route and status.\n"
                    "# TYPE modelhub_http_requests_total counter\n");
  for (int r = 0; r <= MAX_ROUTES; r++)
    for (int s = 0; s < NS; s++) {
      uint64_t n = atomic_load_explicit(&counts[r][s], memory_order_relaxed);
      if (!n) continue;
      const char *method = "";
      const char *name = r == 0 ? "unmatched" : route_name(r - 1, &method);
      char st[8];
      if (s < NS - 1)
        snprintf(st, sizeof st, "%d", STATUSES[s]);
      else
        snprintf(st, sizeof st, "other");
      hub_buf_printf(out,
                     "modelhub_http_requests_total{method=\"%s\",route=\"%s\",status=\"%s\"} "
                     "%llu\n",
                     method, name, st, (unsigned long long)n);
    }
  hub_buf_puts(out, "# HELP modelhub_http_request_duration_seconds Request latency.\n"
                    "# TYPE modelhub_http_request_duration_seconds histogram\n");
  uint64_t cum = 0;
  for (size_t b = 0; b < NB; b++) {
    cum += atomic_load_explicit(&hist[b], memory_order_relaxed);
    hub_buf_printf(out, "modelhub_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                   BUCKETS_MS[b] / 1000.0, (unsigned long long)cum);
  }
  cum += atomic_load_explicit(&hist[NB], memory_order_relaxed);
  hub_buf_printf(out,
                 "modelhub_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                 "modelhub_http_request_duration_seconds_sum %f\n"
                 "modelhub_http_request_duration_seconds_count %llu\n",
                 (unsigned long long)cum, (double)atomic_load(&sum_us) / 1e6,
                 (unsigned long long)atomic_load(&total));
  hub_buf_printf(out,
                 "# HELP modelhub_http_inline_escalations_total Handlers started on an event"
                 " thread that exceeded their budget and ran again on a worker.\n"
                 "# TYPE modelhub_http_inline_escalations_total counter\n"
                 "modelhub_http_inline_escalations_total %llu\n",
                 (unsigned long long)atomic_load(&escalated));
}
