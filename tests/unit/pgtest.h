/* Throwaway PostgreSQL clusters for unit tests that run their cases on both engines:
 * scripts/pg.sh of this checkout (found from the current directory, else up from the test
 * binary), run as `sh pg.sh VERB DIR`. Header-only (static inline): each test binary is
 * one translation unit. */
#ifndef HUB_UNIT_PGTEST_H
#define HUB_UNIT_PGTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/db.h"
#include "db/stmt.h"

/* Path of scripts/pg.sh, looked up once. */
static inline const char *pgtest_script(void) {
  static char path[4096] = "";
  if (path[0]) return path;
  snprintf(path, sizeof path, "scripts/pg.sh");
  if (access(path, R_OK) == 0) return path;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return path;
  exe[n] = 0;
  for (char *slash; (slash = strrchr(exe, '/'));) {
    *slash = 0;
    char p[sizeof path];
    if (strlen(exe) + 16 > sizeof p) break;
    snprintf(p, sizeof p, "%.4000s/scripts/pg.sh", exe);
    if (access(p, R_OK) == 0) {
      memcpy(path, p, sizeof path);
      break;
    }
  }
  return path;
}

/* `sh pg.sh VERB DIR`: its exit status (3: PostgreSQL not installed; -1: could not run);
 * the first line of its output (the URL for start/url) into out when out is not NULL. */
static inline int pgtest_run(const char *verb, const char *dir, char *out, size_t cap) {
  char cmd[8400];
  snprintf(cmd, sizeof cmd, "sh '%s' %s %s", pgtest_script(), verb, dir);
  FILE *f = popen(cmd, "r");
  if (!f) return -1;
  char line[512] = "";
  if (!fgets(line, sizeof line, f)) line[0] = 0;
  int st = pclose(f);
  line[strcspn(line, "\n")] = 0;
  if (out) snprintf(out, cap, "%s", line);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A test group's stores: mkdtemp of sqlite_dir and pg_dir (templates), SQLite opened in
 * sqlite_dir, a cluster started in pg_dir with its URL in url. *up = 0 (and a loud notice)
 * when the PostgreSQL binaries are missing: the PostgreSQL cases skip. 0, or -1. */
static inline int pgtest_group_setup(const char *test, char *sqlite_dir, char *pg_dir, char *url,
                                     size_t cap, int *up) {
  if (!mkdtemp(sqlite_dir) || !mkdtemp(pg_dir)) return -1;
  if (db_engine_select("sqlite") || db_global_init(sqlite_dir)) return -1;
  int rc = pgtest_run("start", pg_dir, url, cap);
  if (rc == 3)
    fprintf(stderr,
            "\n*** %s: PostgreSQL binaries missing (apt-get install postgresql): the "
            "PostgreSQL cases are SKIPPED ***\n\n",
            test);
  else if (rc != 0) {
    fprintf(stderr, "%s: scripts/pg.sh start failed (%d)\n", test, rc);
    return -1;
  }
  *up = rc == 0;
  return 0;
}

/* The other end: connections closed, the cluster stopped, both dirs removed. */
static inline int pgtest_group_teardown(const char *sqlite_dir, const char *pg_dir, int up) {
  db_stmt_thread_end();
  db_engine_select("sqlite");
  db_global_shutdown();
  if (up) pgtest_run("stop", pg_dir, NULL, 0);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s %s", sqlite_dir, pg_dir);
  return system(cmd) == 0 ? 0 : -1;
}

#endif
