/* Throwaway PostgreSQL clusters for unit tests that run their cases on both engines:
 * scripts/pg.sh of this checkout (found from the current directory, else up from the test
 * binary), run as `sh pg.sh VERB DIR`. Header-only (static inline): each test binary is
 * one translation unit. */
#ifndef HUB_UNIT_PGTEST_H
#define HUB_UNIT_PGTEST_H

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

#endif
