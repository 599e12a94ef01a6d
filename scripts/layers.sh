#!/bin/sh
# Check the include layering of src/ against the table in docs/architecture.md ("Layers"),
# and that all SQL lives behind src/db/ (no sqlite3 outside it).
#
# Every folder under src/ must have a row "| <layer> | `folder` | `peer`, … |" in that
# table. An `#include "X/…"` in src/F/ is allowed when X is F, when X sits in a lower
# layer than F, or when X is in F's layer and listed among F's peers. Files directly in
# src/ (main.c) sit above every layer. Whatever the table says, the folder graph must have
# no cycle. Prints one line per violation and exits 1 if there is any.
set -u
cd "$(dirname "$0")/.." || exit 1
DOC=docs/architecture.md
[ -f "$DOC" ] || { echo "layers: $DOC missing"; exit 1; }

# "folder layer peer peer …" per table row (the rows between the layers markers).
rules=$(awk '
  /<!-- layers:begin -->/ { on = 1; next }
  /<!-- layers:end -->/ { on = 0 }
  on && /^\| *[0-9]+ *\|/ {
    n = split($0, c, "|")
    layer = c[2]; gsub(/[ `]/, "", layer)
    folder = c[3]; gsub(/[ `]/, "", folder)
    peers = c[4]; gsub(/[`,]/, " ", peers); gsub(/—|-/, " ", peers)
    print folder, layer, peers
  }' "$DOC")
[ -n "$rules" ] || { echo "layers: no table between <!-- layers:begin/end --> in $DOC"; exit 1; }

# "F X file" for every cross-folder include.
edges=$(for d in src/*/; do
  f=$(basename "$d")
  grep -rHoE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[A-Za-z0-9_]+/' "$d" |
    sed -E 's|^([^:]*):.*"([A-Za-z0-9_]+)/$|\2 \1|' |
    while read -r x file; do [ "$x" = "$f" ] || echo "$f $x $file"; done
done)

folders=$(for d in src/*/; do basename "$d"; done)
status=0

printf '%s\n' "$rules" | awk -v folders="$folders" -v edges="$edges" '
  { layer[$1] = $2 + 0; for (i = 3; i <= NF; i++) peer[$1 " " $i] = 1; known[$1] = 1 }
  END {
    bad = 0
    nf = split(folders, fl, "\n")
    for (i = 1; i <= nf; i++) if (fl[i] != "" && !(fl[i] in known)) {
      printf "layers: src/%s/ has no row in the layer table of docs/architecture.md\n", fl[i]; bad++
    }
    for (k in peer) { split(k, p, " ")
      if (!(p[2] in known) || layer[p[2]] != layer[p[1]]) {
        printf "layers: table: %s lists %s as a peer, which is not in its layer\n", p[1], p[2]; bad++
      }
    }
    ne = split(edges, el, "\n")
    for (i = 1; i <= ne; i++) {
      if (split(el[i], e, " ") < 3) continue
      f = e[1]; x = e[2]; file = e[3]
      g[f " " x] = 1; node[f] = 1; node[x] = 1
      if (!(x in known) || !(f in known)) continue
      if (layer[x] < layer[f] || (layer[x] == layer[f] && (f " " x) in peer)) continue
      printf "layers: %s includes %s/ (layer %d) from %s (layer %d)%s\n", file, x, layer[x], f,
             layer[f], layer[x] == layer[f] ? ", a peer not listed in the table" : ", a higher layer"
      bad++
    }
    # Cycles: transitive closure of the folder graph (a few dozen nodes).
    for (a in node) for (b in node) r[a " " b] = ((a " " b) in g)
    for (k in node) for (a in node) if (r[a " " k]) for (b in node) if (r[k " " b]) r[a " " b] = 1
    for (a in node) if (r[a " " a]) { printf "layers: include cycle through src/%s/\n", a; bad++ }
    if (bad) { printf "layers: %d violation(s)\n", bad; exit 1 }
    n = 0; for (a in node) n++
    printf "layers: %d folders, no cycle, every include goes down the layers\n", n
  }' || status=1

# All SQL lives behind src/db/: nothing else includes <sqlite3.h> or calls sqlite3_* or db/'s
# private statement helpers (db__stmt…).
sql=$(grep -rnE '#[[:space:]]*include[[:space:]]*<sqlite3\.h>|sqlite3_[a-z_]+|\bdb__[a-z_]+\(|"db/internal\.h"' \
  src --include='*.c' --include='*.h' | grep -v '^src/db/')
if [ -n "$sql" ]; then
  printf '%s\n' "$sql" | sed 's/^/layers: SQL outside src\/db\/: /'
  status=1
else
  echo "layers: no SQL outside src/db/"
fi
exit $status
