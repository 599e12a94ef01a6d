/* Named, counted thread starts (util/thread.h). */
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/thread.h"

#define MAX_NAMES 32 /* distinct names; more share the last slot */

typedef struct {
  const char *name;
  int running;
  unsigned long long started;
} slot;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static slot g_slots[MAX_NAMES];
static int g_nslots, g_running, g_cap;

typedef struct {
  void *(*fn)(void *);
  void *arg;
  int slot;
} start;

static int cap(void) {
  if (!g_cap) {
    const char *e = getenv("MODELHUB_MAX_THREADS");
    long v = e && *e ? strtol(e, NULL, 10) : 0;
    g_cap = v > 0 && v < 1000000 ? (int)v : HUB_MAX_THREADS;
  }
  return g_cap;
}

static void *trampoline(void *p) {
  start s = *(start *)p;
  free(p);
  void *ret = s.fn(s.arg);
  pthread_mutex_lock(&g_mu);
  g_slots[s.slot].running--;
  g_running--;
  pthread_mutex_unlock(&g_mu);
  return ret;
}

int hub_thread_start(const char *name, void *(*fn)(void *), void *arg, pthread_t *out) {
  start *s = malloc(sizeof *s);
  if (!s) return hub_error_set(HUB_ERROR, "out of memory");
  s->fn = fn;
  s->arg = arg;
  pthread_mutex_lock(&g_mu);
  if (g_running >= cap()) {
    pthread_mutex_unlock(&g_mu);
    free(s);
    return hub_error_set(HUB_EBUSY, "Too many threads running (%d); try again later", g_cap);
  }
  int i = 0;
  while (i < g_nslots && strcmp(g_slots[i].name, name))
    i++;
  if (i == g_nslots) {
    if (g_nslots < MAX_NAMES)
      g_slots[g_nslots++].name = name;
    else
      i = MAX_NAMES - 1;
  }
  s->slot = i;
  g_slots[i].running++;
  g_slots[i].started++;
  g_running++;
  pthread_mutex_unlock(&g_mu);
  pthread_t t;
  pthread_attr_t at;
  pthread_attr_init(&at);
  if (!out) pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  int err = pthread_create(&t, &at, trampoline, s);
  pthread_attr_destroy(&at);
  if (err) {
    pthread_mutex_lock(&g_mu);
    g_slots[i].running--;
    g_slots[i].started--;
    g_running--;
    pthread_mutex_unlock(&g_mu);
    free(s);
    return hub_error_set(HUB_ERROR, "cannot start the %s thread: %s", name, strerror(err));
  }
  if (out) *out = t;
  return 0;
}

void hub_thread_each(hub_thread_cb cb, void *payload) {
  slot copy[MAX_NAMES];
  pthread_mutex_lock(&g_mu);
  int n = g_nslots;
  memcpy(copy, g_slots, sizeof copy);
  pthread_mutex_unlock(&g_mu);
  for (int i = 0; i < n; i++)
    cb(copy[i].name, copy[i].running, copy[i].started, payload);
}

int hub_thread_count(void) {
  pthread_mutex_lock(&g_mu);
  int n = g_running;
  pthread_mutex_unlock(&g_mu);
  return n;
}
