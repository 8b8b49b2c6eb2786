#!/bin/sh
# Installs the Debian packages some tests drive as real programs (`make test` runs this first),
# and, given `bench`, those the benchmark drives (`make bench` runs it so).
# Each entry is "package:command"; only packages whose command is missing are installed, and
# only as root. Otherwise one line says what to install, and the tests that need it skip.
set -u

PACKAGES="ruby:ruby chromium:chromium redis-server:redis-server"
BENCH_PACKAGES="wrk:wrk"  # the load generator: C, so the server, not the client, is measured

[ "${1:-}" = bench ] && set -- $BENCH_PACKAGES
missing=""
for entry in ${*:-$PACKAGES}; do
    package=${entry%%:*}
    command=${entry#*:}
    command -v "$command" >/dev/null 2>&1 || missing="$missing $package"
done
[ -n "$missing" ] || exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system-packages: missing$missing; install with: sudo apt-get install$missing (tests that need them skip)"
    exit 0
fi
echo "system-packages: installing$missing"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; }; then
    echo "system-packages: could not install$missing with apt-get (tests that need them skip)"
fi
