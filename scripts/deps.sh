#!/bin/sh
# Install what building and testing mote needs, from Debian's archive only.
# Idempotent: installs nothing when everything is present.
set -e
need=""
check() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed" || need="$need $1"; }
for p in cmake make gcc g++ clang pkg-config libcriterion-dev socat curl valgrind binutils spin libhttp-parser-dev redis-tools; do check "$p"; done
# The manual (man pages, HTML); the build skips it when pandoc is missing.
check pandoc
# The io_uring poller backend; the build skips it when liburing is missing.
check liburing-dev
# Symbolised backtraces (optional for the library, expected by the tests) and
# the debugger the gdb-script test drives.
for p in libdw-dev gdb; do check "$p"; done
[ -z "$need" ] && exit 0
echo "deps: installing$need"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
