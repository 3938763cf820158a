#!/bin/sh
# The io_uring poller backend: run the whole suite with MOTE_POLLER=uring,
# so every test and every example it starts polls (and, where mote uses
# completions, reads and writes) through io_uring. Uses BUILD_DIR when it
# was configured with the uring backend, else configures build-uring.
# Where the kernel refuses io_uring (no io_uring_setup, EPERM from
# kernel.io_uring_disabled or a seccomp filter) mote falls back to epoll,
# so there is nothing to test: say so and pass.
#
# usage: scripts/check-uring.sh [BUILD_DIR]
set -e
cd "$(dirname "$0")/.."
echo "== uring backend (the whole suite with MOTE_POLLER=uring)"
# io_uring_setup is system call 425 on every architecture mote builds for;
# with 4 entries and zeroed parameters it returns a descriptor or -1.
if ! perl -e '$p = "\0" x 120; exit(syscall(425, 4, $p) < 0 ? 1 : 0)' 2>/dev/null; then
    echo "uring: skipped (the kernel refuses io_uring; mote falls back to epoll)"
    exit 0
fi
scripts/deps.sh
out=${1:-build}
if ! grep -qs '^MOTE_POLLERS:STRING=.*uring' "$out/CMakeCache.txt" ||
    ! grep -qs '^MOTE_URING_LIB:FILEPATH=/' "$out/CMakeCache.txt"; then
    out=build-uring
    mkdir -p "$out"
    cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOTE_BENCH=OFF \
        -DMOTE_POLLERS="epoll;uring" >"$out/configure.log" 2>&1 || { cat "$out/configure.log"; exit 1; }
    grep -q "MOTE_POLLER_URING" "$out/configure.log" || { cat "$out/configure.log"; echo "uring: not built"; exit 1; }
fi
cmake --build "$out" -j "$(nproc)"
export MOTE_POLLER=uring
cd "$out" && ctest --output-on-failure -j "$(nproc)"
