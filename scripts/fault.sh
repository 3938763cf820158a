#!/bin/bash
# Fault injection (tests/fault/): run each fault program once in counting
# mode, then once for every N up to its number of allocation calls with the
# N-th one failing (FAULT_ALLOC=N), and for the socket program once per
# socket read/write with the N-th one failing with ECONNRESET/EPIPE
# (FAULT_IO=N). Built with ASan + UBSan (leaks reported at exit). Then
# descriptor exhaustion: the echo example under `ulimit -n` low, flooded
# with connections, must back off (not spin) and serve again afterwards.
#
# Each run must end in one of (see tests/fault/common.h):
#   completed   exit 0, prints "ok"
#   error       exit 1, a message "fault-X: <call>: <error>"
# Anything else fails: a crash, an abort (the runtime returns -ENOMEM
# wherever memory runs out), a sanitizer report or leak, a hang (30 s), or
# a lost message (exit 2).
#
# Usage: scripts/fault.sh [build-dir]   (default build-asan; configured and
# the fault programs built if needed)
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-asan}
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOTE_SANITIZE=address -DMOTE_BENCH=OFF >/dev/null || exit 1
else
  cmake "$build" >/dev/null || exit 1 # pick up new programs
fi
progs=()
for src in tests/fault/fault-*.c; do progs+=("$(basename "$src" .c)"); done
cmake --build "$build" -j 2 --target "${progs[@]}" echo >/dev/null || { echo "fault: build failed"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export ASAN_OPTIONS=detect_leaks=1:exitcode=86:handle_abort=0
export LSAN_OPTIONS=exitcode=87
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
failures=0
declare -A tally

# run PROG VAR N: one run with VAR=N; classifies it into tally, prints failures.
run() {
  local prog=$1 var=$2 n=$3 rc class
  # In a subshell whose stderr is dropped: bash reports "Aborted" there.
  (env "$var=$n" timeout 30 "$build/tests/$prog" >"$tmp/out" 2>"$tmp/err"; echo $? >"$tmp/rc") 2>/dev/null
  rc=$(cat "$tmp/rc")
  if [ $rc = 0 ] && grep -qx ok "$tmp/out"; then class=completed
  elif [ $rc = 1 ] && grep -Eq "^$prog: [a-z_]+: " "$tmp/err" && ! grep -q Sanitizer "$tmp/err"; then class=error
  else
    case $rc in 124) class=HANG ;; 2) class=LOST ;; 86|87) class=SANITIZER ;; 134) class=ABORT ;; *) class="CRASH(rc=$rc)" ;; esac
    failures=$((failures + 1))
    echo "FAIL $prog $var=$n: $class"
    head -c 3000 "$tmp/err" | sed 's/^/    /'
  fi
  tally[$prog $var $class]=$(( ${tally[$prog $var $class]:-0} + 1 ))
}

for prog in "${progs[@]}"; do
  FAULT_COUNT="$tmp/count" timeout 60 "$build/tests/$prog" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ $rc != 0 ] || [ ! -f "$tmp/count" ]; then
    echo "FAIL $prog without faults: rc=$rc"; cat "$tmp/err"; failures=$((failures + 1)); continue
  fi
  read -r allocs ios _ < <(sed 's/alloc=\([0-9]*\) io=\([0-9]*\).*/\1 \2 x/' "$tmp/count")
  rm -f "$tmp/count"
  echo "== $prog: $allocs allocation calls, $ios socket reads/writes"
  # A few past the count: threads interleave, so a run may make more.
  for ((n = 1; n <= allocs + 3; n++)); do run "$prog" FAULT_ALLOC $n; done
  for ((n = 1; n <= ios + 1; n++)); do run "$prog" FAULT_IO $n; done
done
for key in "${!tally[@]}"; do echo "$key: ${tally[$key]}"; done | sort

# Descriptor exhaustion: the accept loop (examples/common/serve.h) must back
# off while accept says EMFILE, and serve again once descriptors are free.
echo "== echo under ulimit -n 32, flooded with 64 connections"
(ulimit -n 32; exec "$build/examples/echo" 127.0.0.1:0) >"$tmp/echo.out" 2>"$tmp/echo.err" &
pid=$!
addr=""
for _ in $(seq 100); do
  addr=$(sed -n 's/^listening on //p' "$tmp/echo.out")
  [ -n "$addr" ] && break
  sleep 0.1
done
host=${addr%:*} port=${addr##*:}
conns=()
for _ in $(seq 64); do
  exec {fd}<>"/dev/tcp/$host/$port" && conns+=("$fd")
done
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
sleep 0.5
c0=$(cpu); sleep 2; c1=$(cpu)
ticks=$((c1 - c0)) # clock ticks (1/100 s) of CPU in 2 s: a spinning loop burns ~200
echo "   CPU while out of descriptors: $ticks ticks in 2 s"
if [ "$ticks" -gt 60 ]; then
  echo "FAIL echo: the accept loop spins while out of descriptors"; failures=$((failures + 1))
fi
for fd in "${conns[@]}"; do exec {fd}>&-; done
sleep 0.5
reply=""
if exec {fd}<>"/dev/tcp/$host/$port"; then
  printf 'ping\n' >&$fd
  read -r -t 10 reply <&$fd
  exec {fd}>&-
fi
if [ "$reply" != ping ]; then
  echo "FAIL echo: does not serve again after the flood (got '$reply')"; failures=$((failures + 1))
else
  echo "   serves again after the flood"
fi
kill "$pid"; wait "$pid" 2>/dev/null
if grep -q Sanitizer "$tmp/echo.err"; then
  echo "FAIL echo:"; cat "$tmp/echo.err"; failures=$((failures + 1))
fi

echo "fault: $failures failure(s)"
[ $failures = 0 ]
