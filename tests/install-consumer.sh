#!/bin/sh
# Install test: `cmake --install` the build into a temporary prefix, then build
# and run two tiny consumers against the installed copy only: one with
# pkg-config (PKG_CONFIG_PATH pointing into the prefix), one with CMake's
# find_package(mote).
#
# usage: install-consumer.sh BUILD_DIR [C_COMPILER] [MOTE_SANITIZE]
set -eu
build=$1
cc=${2:-cc}
case "${3:-}" in
address) san="-fsanitize=address,undefined" ;;
thread) san="-fsanitize=thread" ;;
*) san="" ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
fail() {
    echo "install-consumer: $*" >&2
    exit 1
}

cmake --install "$build" --prefix "$prefix" >"$work/install.log" || {
    cat "$work/install.log" >&2
    fail "cmake --install failed"
}
[ -f "$prefix/include/mote.h" ] || fail "mote.h not installed in $prefix/include"
pc=$(find "$prefix" -name mote.pc | head -n 1)
[ -n "$pc" ] || fail "mote.pc not installed"
libdir=$(dirname "$(dirname "$pc")")

mkdir "$work/consumer"
cat >"$work/consumer/consumer.c" <<'C'
#include <mote.h>
#include <stdio.h>

static mote_result add(void *state, void *arg) {
    int64_t *n = state;
    *n += *(const int64_t *)arg;
    return mote_ok_i(*n);
}

static int main_process(void *arg) {
    (void)arg;
    int64_t zero = 0, d = 6;
    mote_proc *p;
    if (mote_spawn(&p, &zero, sizeof zero, NULL) != 0)
        return 1;
    for (int i = 0; i < 6; i++)
        mote_cast(p, add, &d, sizeof d);
    mote_future *f;
    mote_async(p, add, &d, sizeof d, &f);
    mote_result r;
    mote_await(f, &r);
    printf("consumer: mote %d.%d sum %lld\n", MOTE_VERSION_MAJOR, MOTE_VERSION_MINOR, (long long)r.i);
    mote_proc_release(p);
    return 0;
}

int main(void) { return mote_run(NULL, main_process, NULL); }
C
want="consumer: mote 0.1 sum 42"

# 1. pkg-config
export PKG_CONFIG_PATH="$(dirname "$pc")"
flags=$(pkg-config --cflags --libs mote) || fail "pkg-config --cflags --libs mote failed"
case "$flags" in
*"$prefix"*) ;;
*) fail "pkg-config flags do not point into the install prefix $prefix: '$flags' (mote.pc: $(grep '^prefix=' "$pc"))" ;;
esac
# shellcheck disable=SC2086 # flags are words
"$cc" $san -o "$work/consumer/pc-consumer" "$work/consumer/consumer.c" $flags ||
    fail "compiling with pkg-config flags failed: $flags"
out=$(LD_LIBRARY_PATH="$libdir" "$work/consumer/pc-consumer") || fail "pkg-config consumer failed"
[ "$out" = "$want" ] || fail "pkg-config consumer printed '$out', expected '$want'"
echo "pkg-config consumer: ok ($flags)"

# 2. CMake find_package
cat >"$work/consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(mote_consumer C)
find_package(mote 0.1 REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE mote::mote)
add_executable(consumer_shared consumer.c)
target_link_libraries(consumer_shared PRIVATE mote::mote_shared)
CM
cmake -S "$work/consumer" -B "$work/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" \
    >"$work/cmake.log" 2>&1 || {
    cat "$work/cmake.log" >&2
    fail "configuring the CMake consumer failed"
}
grep -q "mote_DIR:PATH=$prefix" "$work/consumer/build/CMakeCache.txt" ||
    fail "find_package(mote) did not find the installed copy: $(grep mote_DIR "$work/consumer/build/CMakeCache.txt")"
cmake --build "$work/consumer/build" >"$work/build.log" 2>&1 || {
    cat "$work/build.log" >&2
    fail "building the CMake consumer failed"
}
for exe in consumer consumer_shared; do
    out=$("$work/consumer/build/$exe") || fail "CMake $exe failed"
    [ "$out" = "$want" ] || fail "CMake $exe printed '$out', expected '$want'"
done
echo "CMake consumer: ok"
