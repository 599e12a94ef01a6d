/* `modelhub export` / `modelhub import` (bundle.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "bundle/internal.h"
#include "db/db.h"
#include "events/events.h"
#include "util/error.h"

static const char *export_usage =
    "usage: modelhub export NS/NAME[@REV] [--type model|dataset|space] > FILE\n"
    "  writes one self-verifying bundle: the git history of every ref (or, with @REV, of\n"
    "  the one branch or tag REV names), every LFS/Xet object it points to, and a manifest\n"
    "  with their sha256 (docs/mirror.md, \"Export and import\")\n";
static const char *import_usage =
    "usage: modelhub import FILE|- [--force]\n"
    "  verifies the whole bundle, then creates the repository with the bundle's refs,\n"
    "  objects and private/gated flags (events and audit entries recorded); an existing\n"
    "  repository with the same refs is left as it is, one with other refs is refused\n"
    "  unless --force\n";

int bundle_export_main(int argc, char **argv) {
  const char *id = NULL, *type = "model";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(export_usage, stdout);
      return 0;
    } else if (!strcmp(argv[i], "--type") && i + 1 < argc)
      type = argv[++i];
    else if (argv[i][0] != '-' && !id)
      id = argv[i];
    else {
      fprintf(stderr, "modelhub export: unexpected argument '%s'\n%s", argv[i], export_usage);
      return 2;
    }
  }
  bundle_export_opts o = {0, NULL, NULL, NULL, 1};
  char ns[HUB_MAX_NAME + 1], name[HUB_MAX_NAME + 1], rev[1024] = "";
  const char *slash = id ? strchr(id, '/') : NULL;
  if (!slash || bundle__type_parse(type, &o.type)) {
    fputs(export_usage, stderr);
    return 2;
  }
  const char *at = strchr(slash, '@');
  size_t nl = at ? (size_t)(at - slash - 1) : strlen(slash + 1);
  if ((size_t)(slash - id) > HUB_MAX_NAME || nl > HUB_MAX_NAME ||
      (at && strlen(at + 1) >= sizeof rev)) {
    fprintf(stderr, "modelhub export: bad repository id '%s'\n", id);
    return 2;
  }
  snprintf(ns, sizeof ns, "%.*s", (int)(slash - id), id);
  snprintf(name, sizeof name, "%.*s", (int)nl, slash + 1);
  if (at) snprintf(rev, sizeof rev, "%s", at + 1);
  o.ns = ns;
  o.name = name;
  o.rev = *rev ? rev : NULL;
  if (isatty(1)) {
    fprintf(stderr,
            "modelhub export: refusing to write a bundle to a terminal (redirect stdout)\n");
    return 2;
  }
  if (bundle_export(&o)) {
    fprintf(stderr, "modelhub export: %s\n", hub_error_msg());
    return 1;
  }
  return 0;
}

int bundle_import_main(int argc, char **argv) {
  const char *file = NULL;
  int force = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(import_usage, stdout);
      return 0;
    } else if (!strcmp(argv[i], "--force"))
      force = 1;
    else if ((argv[i][0] != '-' || !strcmp(argv[i], "-")) && !file)
      file = argv[i];
    else {
      fprintf(stderr, "modelhub import: unexpected argument '%s'\n%s", argv[i], import_usage);
      return 2;
    }
  }
  if (!file) {
    fputs(import_usage, stderr);
    return 2;
  }
  int fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : 0;
  if (fd < 0) {
    perror(file);
    return 1;
  }
  const char *user = getenv("SUDO_USER") ? getenv("SUDO_USER") : getenv("USER");
  char actor[HUB_MAX_USER_NAME + 8];
  snprintf(actor, sizeof actor, "cli:%s", user ? user : "?");
  bundle_import_opts o = {fd, force, actor, 0};
  int rc = events_init();
  if (!rc) rc = bundle_import(&o);
  if (fd) close(fd);
  if (rc) {
    fprintf(stderr, "modelhub import: %s\n", hub_error_msg());
    return rc == HUB_EEXISTS ? 3 : 1;
  }
  return 0;
}
