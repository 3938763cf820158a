#!/bin/sh
# Install test: `cmake --install` the build into a temporary prefix, then build
# and run tiny consumers against the installed copy only, each way of linking:
# pkg-config `mote` (shared) and `mote-static`, CMake's find_package(mote)
# with mote::mote (shared) and mote::mote_static; and the header compiled as
# C11 and as C++ (g++ and clang++, -Wall -Wextra -pedantic -Werror).
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
# gdb's auto-load path for libmote.so: <datadir>/gdb/auto-load/<libdir>/...
so=$(find "$prefix" -name 'libmote.so.*.*' ! -name '*-gdb.py' | head -n 1)
[ -f "$prefix/share/gdb/auto-load$so-gdb.py" ] || fail "no gdb script at share/gdb/auto-load$so-gdb.py"
[ -f "$prefix/share/mote/mote-gdb.py" ] || fail "no gdb script at share/mote/mote-gdb.py"
[ -n "$pc" ] || fail "mote.pc not installed"
libdir=$(dirname "$(dirname "$pc")")

mkdir "$work/consumer"
cat >"$work/consumer/consumer.c" <<'C'
#include <mote.h>
#include <stdio.h>

static mote_result add(void *state, void *arg) {
    int64_t *n = (int64_t *)state;
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

# Does the executable $1 load libmote.so ("shared") or carry mote ("static")?
linkage() {
    if readelf -d "$1" | grep -q 'NEEDED.*libmote\.so'; then echo shared; else echo static; fi
}

# 1. pkg-config: mote (shared) and mote-static
export PKG_CONFIG_PATH="$(dirname "$pc")"
for pkg in mote mote-static; do
    flags=$(pkg-config --cflags --libs $pkg) || fail "pkg-config --cflags --libs $pkg failed"
    case "$flags" in
    *"$prefix"*) ;;
    *) fail "pkg-config flags do not point into the install prefix $prefix: '$flags' (mote.pc: $(grep '^prefix=' "$pc"))" ;;
    esac
    # shellcheck disable=SC2086 # flags are words
    "$cc" $san -o "$work/consumer/pc-$pkg" "$work/consumer/consumer.c" $flags ||
        fail "compiling with pkg-config $pkg flags failed: $flags"
    out=$(LD_LIBRARY_PATH="$libdir" "$work/consumer/pc-$pkg") || fail "pkg-config $pkg consumer failed"
    [ "$out" = "$want" ] || fail "pkg-config $pkg consumer printed '$out', expected '$want'"
    expect=shared
    [ $pkg = mote-static ] && expect=static
    [ "$(linkage "$work/consumer/pc-$pkg")" = $expect ] || fail "pkg-config $pkg did not link the $expect library"
    echo "pkg-config $pkg consumer: ok, $expect ($flags)"
done

# 2. CMake find_package
cat >"$work/consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(mote_consumer C)
find_package(mote 0.1 REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE mote::mote)
add_executable(consumer_shared consumer.c)
target_link_libraries(consumer_shared PRIVATE mote::mote_shared)
add_executable(consumer_static consumer.c)
target_link_libraries(consumer_static PRIVATE mote::mote_static)
get_target_property(inc mote::mote_shared INTERFACE_INCLUDE_DIRECTORIES)
list(LENGTH inc n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "mote::mote_shared lists ${n} include directories: ${inc}")
endif()
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
for exe in consumer:shared consumer_shared:shared consumer_static:static; do
    name=${exe%:*}
    out=$("$work/consumer/build/$name") || fail "CMake $name failed"
    [ "$out" = "$want" ] || fail "CMake $name printed '$out', expected '$want'"
    [ "$(linkage "$work/consumer/build/$name")" = "${exe#*:}" ] || fail "CMake $name did not link the ${exe#*:} library"
done
echo "CMake consumers: ok (mote::mote shared, mote::mote_static static)"

# 3. The header as C11 and as C++: strict compilers, every warning an error.
"$cc" -std=c11 -pedantic -Wall -Wextra -Werror -fsyntax-only -I"$prefix/include" "$work/consumer/consumer.c" ||
    fail "mote.h does not compile as pedantic C11"
cp "$work/consumer/consumer.c" "$work/consumer/consumer.cpp"
for cxx in g++ clang++; do
    command -v $cxx >/dev/null || fail "$cxx missing (scripts/deps.sh installs it)"
    cxxflags="-std=c++11 -pedantic -Wall -Wextra -Werror -I$prefix/include"
    if [ -n "$san" ]; then
        # A sanitized libmote.a wants its own compiler's runtime: compile only.
        # shellcheck disable=SC2086
        $cxx $cxxflags -fsyntax-only "$work/consumer/consumer.cpp" || fail "mote.h does not compile as C++ with $cxx"
        continue
    fi
    # shellcheck disable=SC2086
    # The static library and what it needs (liburing, when built in).
    $cxx $cxxflags -o "$work/consumer/cxx-$cxx" "$work/consumer/consumer.cpp" $(pkg-config --libs mote-static) ||
        fail "mote.h does not build as C++ with $cxx"
    out=$("$work/consumer/cxx-$cxx") || fail "C++ consumer ($cxx) failed"
    [ "$out" = "$want" ] || fail "C++ consumer ($cxx) printed '$out', expected '$want'"
done
echo "C11 and C++ (g++, clang++) consumers: ok"
