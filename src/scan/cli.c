/* `modelhub scan FILE...` (docs/scanning.md): the engine of the scan jobs over local files. */
#include "scan/scan.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scan/detect.h"
#include "util/error.h"

static const char USAGE[] =
    "usage: modelhub scan [--json] [--clamav-db DIR] FILE...\n"
    "  Scan files like the Hub's background scans do (pickle imports, archives, headers,\n"
    "  secrets, ClamAV when a signature database is given; nothing is executed).\n"
    "  --json           one report (JSON) per line, with its \"file\"\n"
    "  --clamav-db DIR  ClamAV signature databases (default: $MODELHUB_CLAMAV_DB)\n"
    "  Exit status: 0 clean, 1 findings above \"safe\", 2 an error.\n";

static void print_human(const char *file, const json_t *rep) {
  printf("%s: %s\n", file, json_string_value(json_object_get(rep, "level")));
  const char *k;
  json_t *s;
  json_object_foreach(json_object_get(rep, "scanners"), k, s) {
    printf("  %-8s %s: %s\n", k, json_string_value(json_object_get(s, "status")),
           json_string_value(json_object_get(s, "message")));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(s, "imports"), i, v)
        printf("    import %s.%s (%s)\n", json_string_value(json_object_get(v, "module")),
               json_string_value(json_object_get(v, "name")),
               json_string_value(json_object_get(v, "safety")));
    json_array_foreach(json_object_get(s, "findings"), i, v) {
      const char *m = json_string_value(json_object_get(v, "member"));
      json_t *line = json_object_get(v, "line");
      if (json_is_integer(line))
        printf("    line %lld: %s\n", (long long)json_integer_value(line),
               json_string_value(json_object_get(v, "message")));
      else
        printf("    %s%s%s\n", m && *m ? m : "", m && *m ? ": " : "",
               json_string_value(json_object_get(v, "message")));
    }
    const char *sig = json_string_value(json_object_get(s, "signature"));
    if (sig) printf("    signature %s\n", sig);
  }
}

int scan_cli_main(int argc, char **argv) {
  int as_json = 0, first = 0;
  const char *db = getenv("MODELHUB_CLAMAV_DB");
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) {
      as_json = 1;
    } else if (!strcmp(argv[i], "--clamav-db") && i + 1 < argc) {
      db = argv[++i];
    } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(USAGE, stdout);
      return 0;
    } else if (!strcmp(argv[i], "--")) {
      first = i + 1;
      break;
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "modelhub scan: unknown option '%s'\n%s", argv[i], USAGE);
      return 2;
    } else {
      first = i;
      break;
    }
  }
  if (!first || first >= argc) {
    fputs(USAGE, stderr);
    return 2;
  }
  scan_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.av = scan_av_open(db && *db ? db : NULL);
  if (!cfg.av) {
    fprintf(stderr, "modelhub scan: cannot load ClamAV databases\n");
    return 2;
  }
  int status = 0;
  for (int i = first; i < argc; i++) {
    const char *file = argv[i];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
      fprintf(stderr, "modelhub scan: %s: %s\n", file,
              fd < 0 ? "cannot open" : "not a regular file");
      if (fd >= 0) close(fd);
      status = 2;
      continue;
    }
    json_t *rep = NULL;
    int rc = scan_fd(&cfg, fd, (uint64_t)st.st_size, file, &rep);
    close(fd);
    if (rc) {
      fprintf(stderr, "modelhub scan: %s: %s\n", file, hub_error_msg());
      status = 2;
      continue;
    }
    scan_level l = scan_report_level(rep);
    if (l == SCAN_ERROR)
      status = 2;
    else if (l > SCAN_SAFE && status == 0)
      status = 1;
    if (as_json) {
      json_object_set_new(rep, "file", json_string(file));
      char *s = json_dumps(rep, JSON_COMPACT);
      if (s) puts(s);
      free(s);
    } else {
      print_human(file, rep);
    }
    json_decref(rep);
  }
  fflush(stdout);
  scan_av_close(cfg.av);
  return status;
}
