#!/usr/bin/env bash
# What observability costs: the process benchmarks built with trace points
# and counters compiled out (cmake -DMOTE_TRACE_HOOKS=OFF) against the
# normal build with tracing off, runs interleaved; then roundtrip in the
# normal build with MOTE_TRACE=path against tracing off, with one worker
# (MOTE_THREADS=1) so that its CPU time per call (roundtrip_cpu) is the
# work of the calls alone, which a busy machine disturbs less than wall
# time. Prints markdown tables: medians, minimums, ratios and every run
# (bench/RESULTS.md, "Session 4"). Last, mote_trace_cost once per round:
# the round trip with tracing off and on in alternating phases of one
# process (the least noisy figure: same binary, heap and moment).
#
#   bench/overhead.sh NOHOOKS_BUILD NORMAL_BUILD [ROUNDS]
#
# Each round runs every benchmark once in each build, the order alternating
# between rounds, so that the machine's drifting load falls on both sides.
set -uo pipefail

OFF=$(cd "${1:?usage: bench/overhead.sh NOHOOKS_BUILD NORMAL_BUILD [ROUNDS]}" && pwd) || exit 2
ON=$(cd "${2:?usage: bench/overhead.sh NOHOOKS_BUILD NORMAL_BUILD [ROUNDS]}" && pwd) || exit 2
ROUNDS=${3:-7}
BENCHES="roundtrip switch spawn skynet ring section_ns sleep"
TMP=$(mktemp -d)
# The traced runs' file (60 MB each) goes to memory where it can: pages
# written back to the disk during the next run would be noise.
SHM=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
TRACE_FILE=$SHM/trace.json
trap 'rm -rf "$TMP" "$SHM"' EXIT

# run LABEL PROGRAM [ENV...]: its RESULT lines, as "LABEL metric value".
run() {
    local label=$1 prog=$2
    shift 2
    env "$@" "$prog" 2>/dev/null | awk -v l="$label" '$1 == "RESULT" { print l, $2, $4 }' >>"$TMP/raw"
}

for ((r = 1; r <= ROUNDS; r++)); do
    for b in $BENCHES; do
        if ((r % 2)); then
            run out "$OFF/bench/mote_$b"
            run in "$ON/bench/mote_$b"
        else
            run in "$ON/bench/mote_$b"
            run out "$OFF/bench/mote_$b"
        fi
    done
    run cost "$ON/bench/mote_trace_cost" MOTE_THREADS=1
    for ((k = 0; k < 3; k++)); do # roundtrip is the traced benchmark: more runs
        if (((r + k) % 2)); then
            run traced "$ON/bench/mote_roundtrip" MOTE_THREADS=1 MOTE_TRACE="$TRACE_FILE"
            run untraced "$ON/bench/mote_roundtrip" MOTE_THREADS=1
        else
            run untraced "$ON/bench/mote_roundtrip" MOTE_THREADS=1
            run traced "$ON/bench/mote_roundtrip" MOTE_THREADS=1 MOTE_TRACE="$TRACE_FILE"
        fi
    done
done
[ -s "$TRACE_FILE" ] || echo "warning: MOTE_TRACE wrote no trace" >&2

# Medians and every run, per metric and label.
python3 - "$TMP/raw" <<'EOF'
import sys, statistics
runs = {}
for line in open(sys.argv[1]):
    label, metric, value = line.split()
    runs.setdefault((metric, label), []).append(float(value))
def fmt(v): return " ".join(f"{x:g}" for x in v)
def table(title, a, b):
    print(f"\n{title}\n\n| metric | {a}: median | {b}: median | ratio | {a}: min | {b}: min | ratio | {a}: runs | {b}: runs |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for metric in sorted({m for m, l in runs if l == a}):
        x, y = runs.get((metric, a), []), runs.get((metric, b), [])
        if not x or not y: continue
        mx, my, lx, ly = statistics.median(x), statistics.median(y), min(x), min(y)
        r1 = f"{my / mx:.3f}" if mx > 0 else "-"
        r2 = f"{ly / lx:.3f}" if lx > 0 else "-"
        print(f"| {metric} | {mx:g} | {my:g} | {r1} | {lx:g} | {ly:g} | {r2} | {fmt(x)} | {fmt(y)} |")
table("Hooks compiled out (out) against the normal build, tracing off (in):", "out", "in")
table("Normal build, MOTE_THREADS=1, roundtrip with MOTE_TRACE=path (traced) against without (untraced):", "untraced", "traced")
print("\nmote_trace_cost (MOTE_THREADS=1; fastest phase of each side in each run):\n")
print("| metric | median | min | max | runs |\n|---|---:|---:|---:|---|")
for metric in ("trace_off_cpu", "trace_on_cpu", "trace_cost"):
    v = runs.get((metric, "cost"), [])
    if v:
        print(f"| {metric} | {statistics.median(v):g} | {min(v):g} | {max(v):g} | {fmt(v)} |")
EOF
