/* Prometheus counters: requests by route and status, a latency histogram. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "http/http.h"
#include "http/internal.h"

#define MAX_SERIES 512
static const double BUCKETS_MS[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000};
#define NB (sizeof BUCKETS_MS / sizeof BUCKETS_MS[0])

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
  int route, status;
  uint64_t count;
} series[MAX_SERIES];
static int nseries;
static uint64_t hist[NB + 1];
static double sum_s;
static uint64_t total;

void http__metrics_record(int route, int status, int64_t dur_us) {
  pthread_mutex_lock(&mu);
  int i;
  for (i = 0; i < nseries; i++)
    if (series[i].route == route && series[i].status == status) break;
  if (i == nseries && nseries < MAX_SERIES) {
    series[i].route = route;
    series[i].status = status;
    nseries++;
  }
  if (i < MAX_SERIES) series[i].count++;
  double ms = (double)dur_us / 1000.0;
  size_t b = 0;
  while (b < NB && ms > BUCKETS_MS[b]) b++;
  hist[b]++;
  sum_s += ms / 1000.0;
  total++;
  pthread_mutex_unlock(&mu);
}

/* Writes the text exposition; route labels come from the caller's table lookup. */
void http_metrics_render(hub_buf *out, const char *(*route_name)(int idx, const char **method)) {
  pthread_mutex_lock(&mu);
  hub_buf_puts(out, "# HELP modelhub_http_requests_total HTTP requests by route and status.\n"
                    "# TYPE modelhub_http_requests_total counter\n");
  for (int i = 0; i < nseries; i++) {
    const char *method = "";
    const char *name = route_name(series[i].route, &method);
    hub_buf_printf(out,
                   "modelhub_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %llu\n",
                   method, name, series[i].status, (unsigned long long)series[i].count);
  }
  hub_buf_puts(out, "# HELP modelhub_http_request_duration_seconds Request latency.\n"
                    "# TYPE modelhub_http_request_duration_seconds histogram\n");
  uint64_t cum = 0;
  for (size_t b = 0; b < NB; b++) {
    cum += hist[b];
    hub_buf_printf(out, "modelhub_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                   BUCKETS_MS[b] / 1000.0, (unsigned long long)cum);
  }
  cum += hist[NB];
  hub_buf_printf(out,
                 "modelhub_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                 "modelhub_http_request_duration_seconds_sum %f\n"
                 "modelhub_http_request_duration_seconds_count %llu\n",
                 (unsigned long long)cum, sum_s, (unsigned long long)total);
  pthread_mutex_unlock(&mu);
}
