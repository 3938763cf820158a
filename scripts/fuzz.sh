#!/bin/bash
# Build the libFuzzer targets (fuzz/fuzz-*.c) with clang, ASan and UBSan in
# build-fuzz, and run each for its share of FUZZ_SECONDS (default 60 in
# all), starting from its seed corpus fuzz/corpus/<target>/. Fails on any
# finding (crash, sanitizer report, leak, timeout); the input that caused it
# is left in build-fuzz/artifacts/ (replay: build-fuzz/fuzz/fuzz-X FILE).
# New inputs found go to build-fuzz/corpus/<target>/, not into the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
total=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD:-build-fuzz}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DMOTE_SANITIZE=address -DMOTE_FUZZ=ON -DMOTE_TESTS=OFF -DMOTE_EXAMPLES=OFF -DMOTE_BENCH=OFF >/dev/null
cmake --build "$build" -j 2 >/dev/null
shopt -s nullglob
targets=("$build"/fuzz/fuzz-*)
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets built"; exit 1; }
each=$(( total / ${#targets[@]} ))
[ "$each" -ge 5 ] || each=5
mkdir -p "$build/artifacts"
status=0
for exe in "${targets[@]}"; do
  name=$(basename "$exe")
  target=${name#fuzz-}
  corpus="$build/corpus/$target"
  mkdir -p "$corpus"
  seeds=()
  [ -d "fuzz/corpus/$target" ] && seeds=("fuzz/corpus/$target")
  echo "== $name: $each s"
  log="$build/$name.log"
  # -timeout: one input running longer than 10 s is a hang (a finding).
  if "$exe" -max_total_time="$each" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$build/artifacts/$name-" "$corpus" "${seeds[@]}" >"$log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^Done" "$log" | tr '\n' ' '; echo
  else
    echo "FAIL $name: finding (log: $log)"
    grep -E -A25 "^==[0-9]+==ERROR|runtime error|^fuzz-|deadly signal|Timeout" "$log" | head -60
    status=1
  fi
done
exit $status
