#!/bin/sh
# Cross-build mote for aarch64 (the hand-written AArch64 context switch) and
# run the tour and the seed examples under qemu-user; the seed examples must
# print exactly what the native build prints. Installs its tools from
# Debian's archive when missing.
set -e
cd "$(dirname "$0")/.."
need=""
for p in gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
out=build-aarch64
native=${1:-build}
mkdir -p "$out"
CC=aarch64-linux-gnu-gcc
CFLAGS="-std=c17 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -Isrc"
$CC $CFLAGS -DMOTE_BUILDING -c src/ctx/switch_aarch64.S -o "$out/switch.o"
for f in src/*.c src/*/*.c; do
    # The epoll poller only: the kqueue one needs <sys/event.h> (libkqueue).
    [ "$f" = src/poll/poller_kqueue.c ] && continue
    $CC $CFLAGS -DMOTE_BUILDING -DMOTE_POLLER_EPOLL=1 -c "$f" -o "$out/$(echo "$f" | tr / _).o"
done
ar rcs "$out/libmote.a" "$out"/*.o
for ex in examples/tour.c examples/seeds/*.c; do
    name=$(basename "$ex" .c)
    $CC $CFLAGS -static "$ex" "$out/libmote.a" -lpthread -o "$out/$name"
done
echo "aarch64: tour"
qemu-aarch64 "$out/tour" > "$out/tour.txt"
grep -q "tour done" "$out/tour.txt"
for ex in examples/seeds/*.c; do
    name=$(basename "$ex" .c)
    qemu-aarch64 "$out/$name" > "$out/$name.txt"
    if [ -x "$native/examples/seeds/$name" ]; then
        "$native/examples/seeds/$name" > "$out/$name.native.txt"
        diff -u "$out/$name.native.txt" "$out/$name.txt"
    fi
    echo "aarch64: seeds/$name ok"
done
echo "aarch64: all ok"
