#!/bin/bash
# Model-check the Promela models of mote's lock-free handshakes with spin
# (docs/design.md "Models"): each model exhaustively, then each mutant,
# which must fail (a model that accepts a broken protocol proves nothing).
# The models are safety checks (-DSAFETY): assertions and invalid end
# states; "no lost wake-up" is an assertion of each model's checker process,
# which runs when nothing else can move (spin's timeout).
# Needs the Debian package spin and gcc. Exits non-zero on any error,
# unreached valid end, too small a depth bound, or a mutant spin accepts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v spin >/dev/null || { echo "check-models: spin is not installed (apt-get install spin)"; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# model  defines  expect(ok|fail)
runs=(
  "src/sched/park.pml   -DNWORKERS=2            ok"
  "src/sched/park.pml   -DNWORKERS=3            ok"
  "src/sched/park.pml   -DMUTANT_NO_NOTIFIED    fail"
  "src/sched/park.pml   -DMUTANT_NO_RECHECK     fail"
  "src/sched/park.pml   -DMUTANT_EARLY_PARK     fail"
  "src/proc/future.pml  -DNONE                  ok"
  "src/proc/future.pml  -DMUTANT_DONE_EARLY     fail"
  "src/proc/future.pml  -DMUTANT_NO_SPIN        fail"
  "src/proc/future.pml  -DMUTANT_NO_RECHECK     fail"
  "src/io/fdslot.pml    -DNONE                  ok"
  "src/io/fdslot.pml    -DEDGES=3               ok"
  "src/io/fdslot.pml    -DMUTANT_NO_BUSY_SPIN   fail"
  "src/io/fdslot.pml    -DMUTANT_READY_LOST     fail"
  "src/io/fdslot.pml    -DMUTANT_NO_GEN_CHECK   fail"
  "src/io/waitset.pml   -DNONE                  ok"
  "src/io/waitset.pml   -DMUTANT_WAKE_NONEMPTY  fail"
  "src/io/waitset.pml   -DMUTANT_NO_RECHECK     fail"
  "src/io/waitset.pml   -DMUTANT_UNHOOK_NO_SPIN fail"
  "src/io/waitset.pml   -DMUTANT_DROP_FREES     fail"
  "src/io/waitset.pml   -DMUTANT_FREE_LISTED    fail"
  "src/io/waitset.pml   -DMUTANT_BITS_FIRST     fail"
)

status=0
for run in "${runs[@]}"; do
  read -r model def expect <<<"$run"
  dir="$work/$(basename "$model" .pml)$def"
  mkdir -p "$dir"
  cp "$root/$model" "$dir/"
  (cd "$dir" && spin $def -a "$(basename "$model")" >spin.log 2>&1 &&
     gcc -w -O2 -DSAFETY -DVECTORSZ=2048 -o pan pan.c &&
     ./pan -m1000000 >pan.log 2>&1) || true
  # -DSAFETY: assertions and invalid end states (liveness is stated as a
  # checker's assertion at timeout); errors counted by pan.
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$dir/pan.log" | head -1)
  states=$(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' "$dir/pan.log" | head -1)
  if [ -z "$errors" ]; then
    echo "FAIL $model $def: spin or pan did not run"; cat "$dir/spin.log" "$dir/pan.log" 2>/dev/null | tail -20
    status=1; continue
  fi
  if grep -q "max search depth too small" "$dir/pan.log"; then
    echo "FAIL $model $def: search depth bound reached (raise -m)"; status=1; continue
  fi
  # The checker's final assertion must have run: a model that never
  # quiesces would make it vacuous.
  if [ "$expect" = ok ] && awk '/^unreached in proctype checker/{c=1;next} /^unreached/{c=0} c&&/, state [0-9]/{f=1} END{exit !f}' "$dir/pan.log"; then
    echo "FAIL $model $def: the checker never ran"; status=1; continue
  fi
  why=$(grep -m1 -E "^pan:1:|invalid end state" "$dir/pan.log" || true)
  if [ "$expect" = ok ] && [ "$errors" = 0 ]; then
    echo "ok   $model $def: $states states, no errors"
  elif [ "$expect" = fail ] && [ "$errors" != 0 ]; then
    echo "ok   $model $def: mutant caught: $why"
  else
    echo "FAIL $model $def: expected $expect, got $errors error(s) ${why}"
    [ "$expect" = ok ] && tail -30 "$dir/pan.log"
    status=1
  fi
done
exit $status
