#!/bin/sh
# Install the Debian packages modelhub needs to build, run and test. Idempotent and
# silent when everything is already present.
set -e
PKGS="build-essential pkg-config clang libclang-rt-14-dev git git-lfs curl ca-certificates
libmicrohttpd-dev libgit2-dev libsqlite3-dev sqlite3 libjansson-dev libssl-dev openssl libsodium-dev
libcmark-gfm-dev libcmark-gfm-extensions-dev libyaml-dev libcurl4-openssl-dev libcmocka-dev
librust-blake3-dev liblz4-dev libclamav-dev libpq-dev postgresql zlib1g-dev nginx
python3-torch python3-numpy
nodejs chromium"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "deps: installing npm"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
