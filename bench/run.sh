#!/usr/bin/env bash
# Run mote's benchmarks side by side with their Go and tokio peers and print
# a markdown table (also written to bench/out/latest.md).
#
#   bench/run.sh BUILD_DIR        (what `make bench` runs)
#
# BUILD_DIR is a cmake build of mote that already holds bench/mote_<name>.
# Environment:
#   BENCH_REPEAT   runs per benchmark and implementation; the median is shown (5)
#   BENCH_ONLY     space-separated benchmark names to run (all)
#   BENCH_IMPLS    space-separated implementations to run (mote go tokio)
#   BENCH_TIMEOUT  seconds one run may take before it counts as failed (120)
#
# Adding a benchmark: write bench/mote/<name>.c, bench/go/<name>/main.go and
# bench/tokio/src/bin/<name>.rs, each printing "RESULT <metric> <unit> <value>"
# per metric and "CHECK ..." lines (exit non-zero on a wrong result), then add
# one METRICS line per metric below. Each implementation is a pair of
# functions, build_<impl> (build all its programs) and bin_<impl> NAME (the
# program for benchmark NAME).
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
BUILD_DIR=$(cd "${1:?usage: bench/run.sh BUILD_DIR}" && pwd) || exit 2
OUT=$BENCH_DIR/out
LOGS=$OUT/logs
REPEAT=${BENCH_REPEAT:-5}
TIMEOUT=${BENCH_TIMEOUT:-120}
read -r -a IMPLS <<<"${BENCH_IMPLS:-mote go tokio}"

# One line per metric: metric, the benchmark program that prints it, and
# mote's target: "<=N" (absolute, in the metric's unit), "<=Fxgo" (F times
# Go's figure), ">=N", "<N", several joined by commas (all must hold), or "-"
# (reported only). See target_cell.
METRICS="
skynet     skynet     <=0.5xgo
spawn      spawn      <=200
idle_rss   idle_rss   <=256
roundtrip  roundtrip  <=150
ring       ring       <=100
switch     switch     <=20
sleep_p50  sleep      -
sleep_p99  sleep      <=200
sleep_max  sleep      -
block_p50  block_tick -
block_p99  block_tick <=2000,<=1xgo
block_max  block_tick -
spin_p50   spin_tick  -
spin_p99   spin_tick  <=12000
spin_max   spin_tick  -
section    section_ns <=50
read64k    file_read  -
read64k_plain file_read -
read64k_ratio file_read >=0.95
read4k     file_read  -
read4k_plain file_read -
read4k_ratio file_read >=0.9
read64k_uring file_read -
read64k_uring_ratio file_read >=0.95
read4k_uring file_read -
read4k_uring_ratio file_read >=0.9
read64k_plain_mt file_read -
read64k_plain_mt_ratio file_read -
read4k_plain_mt file_read -
read4k_plain_mt_ratio file_read -
cold64k    file_read  -
cold64k_uring file_read -
cold64k_uring_ratio file_read >=1
idle_cpu   idle_cpu   <1
sleepers_p50       sleepers -
sleepers_p99       sleepers <=1xgo
sleepers_max       sleepers -
sleepers_alive_p50 sleepers -
sleepers_alive_p99 sleepers <=1xgo
sleepers_alive_max sleepers -
million_rss           million <=4608
million_blocked       million -
million_total         million <1xgo
million_sleep_rss     million <=4608
million_sleep_blocked million -
million_sleep_total   million <1xgo
child_true child_true <=1xgo
child_true_par child_true -
child_true_main child_true -
monitor_exit monitor_exit -
monitor_base monitor_exit -
cancel_read_p50 cancel_read -
cancel_read_p99 cancel_read <=50
cancel_read_max cancel_read -
rearm      rearm      <=1xgo
now        rearm      -
recv_dl    rearm      -
recv_nodl  rearm      -
ws_10      waitset    -
ws_100     waitset    -
ws_1000    waitset    -
ws_10000   waitset    -
ws_flat    waitset    <=1.5
poll_10    waitset    -
poll_100   waitset    -
poll_1000  waitset    -
poll_10000 waitset    -
"

declare -A BUILT  # impl -> 1 once it built
declare -A VALUES # "impl metric" -> space-separated values from each run
declare -A UNIT   # metric -> unit
declare -A FAILED # "impl bench" -> 1 when a run crashed or failed a check
failures=0

log() { printf '%s\n' "$*" >&2; }

# ---- Implementations: build_<impl> builds everything, bin_<impl> NAME is the
# ---- program for benchmark NAME.

build_mote() { # built by cmake (make bench); a missing program shows as n/a
    [[ -d $BUILD_DIR/bench ]] || { log "mote: no $BUILD_DIR/bench (configure with -DMOTE_BENCH=ON)"; return 1; }
}
bin_mote() { echo "$BUILD_DIR/bench/mote_$1"; }

build_go() {
    command -v go >/dev/null || { log "go: no Go toolchain (apt-get install golang-go)"; return 1; }
    (cd "$BENCH_DIR/go" &&
        GOCACHE=$OUT/go-cache GOPATH=$OUT/gopath GOFLAGS=-mod=mod GOPROXY=off \
            go build -o "$OUT/go/" ./...)
}
bin_go() { echo "$OUT/go/$1"; }

build_tokio() {
    command -v cargo >/dev/null || { log "tokio: no cargo (apt-get install cargo)"; return 1; }
    compgen -G "/usr/share/cargo/registry/tokio-1.*" >/dev/null ||
        { log "tokio: no tokio in /usr/share/cargo/registry (apt-get install librust-tokio-dev)"; return 1; }
    # bench/tokio/.cargo/config.toml points crates-io at Debian's registry
    # and the target dir at bench/out/tokio-target; cargo reads it from the cwd.
    (cd "$BENCH_DIR/tokio" && CARGO_HOME=$OUT/cargo-home cargo build --release --offline --quiet)
}
bin_tokio() { echo "$OUT/tokio-target/release/$1"; }

# ---- Metrics table helpers.

metric_rows() { grep -v '^[[:space:]]*$' <<<"$METRICS"; }

selected() { [[ -z ${BENCH_ONLY:-} ]] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }

benches() {
    local m b t seen=" "
    while read -r m b t; do
        if selected "$b" && [[ $seen != *" $b "* ]]; then
            seen+="$b "
            echo "$b"
        fi
    done < <(metric_rows)
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {
    if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

ratio() {
    if [[ -n $1 && -n $2 ]]; then
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'
    else
        echo "-"
    fi
}

# "<=200" -> "<= 200 ns/proc", then ": met" or ": missed" when mote has a
# figure. A target is one condition or several joined by commas, all of
# which must hold (e.g. "<=2000,<=1xgo"); each is an operator (<=, >=, <, >)
# and a bound: a number in the metric's unit, or "Fxgo" (F times Go's figure).
target_cell() {
    local target=$1 unit=$2 mote=$3 go=$4 cond op bound limit text="" verdict=met
    [[ $target == - ]] && { echo "-"; return; }
    local IFS=,
    for cond in $target; do
        op=${cond%%[0-9.]*}
        bound=${cond#"$op"}
        [[ -n $text ]] && text+=" and "
        case $bound in
        *xgo)
            bound=${bound%xgo}
            text+="$op $bound x Go"
            [[ -n $go ]] && limit=$(awk -v f="$bound" -v g="$go" 'BEGIN { print f * g }') || limit=""
            ;;
        *) limit=$bound; text+="$op $bound $unit" ;;
        esac
        if [[ -z $mote || -z $limit ]]; then
            [[ $verdict == met ]] && verdict=""
        elif ! awk -v m="$mote" -v l="$limit" -v op="$op" 'BEGIN {
            exit !(op == "<=" ? m <= l : op == ">=" ? m >= l : op == "<" ? m < l : m > l) }'; then
            verdict=missed
        fi
    done
    [[ -n $verdict ]] && text+=": $verdict"
    echo "$text"
}

# ---- Running.

run_one() { # impl bench rep
    local impl=$1 b=$2 rep=$3 bin log rc
    bin=$("bin_$impl" "$b")
    log=$LOGS/${impl}_${b}_$rep.log
    if [[ ! -x $bin ]]; then
        # a peer may have no program for a benchmark: its column reads n/a
        ((rep == 1)) && log "$impl $b: no program ($bin); n/a"
        return
    fi
    timeout "$TIMEOUT" "$bin" >"$log" 2>&1
    rc=$?
    if ((rc != 0)) || grep -q '^CHECK .* FAIL' "$log"; then
        log "$impl $b: run $rep failed (exit $rc); last lines of $log:"
        tail -n 5 "$log" | sed 's/^/    /' >&2
        FAILED["$impl $b"]=1
        failures=$((failures + 1))
        return
    fi
    local tag metric unit value
    while read -r tag metric unit value; do
        VALUES["$impl $metric"]+="$value "
        UNIT[$metric]=$unit
    done < <(grep '^RESULT ' "$log")
}

cell() { # impl metric -> "value unit", FAIL, or n/a
    local impl=$1 metric=$2 b=$3 v
    if [[ -z ${BUILT[$impl]:-} ]]; then echo "n/a"; return; fi
    if [[ -n ${FAILED["$impl $b"]:-} ]]; then echo "FAIL"; return; fi
    v=$(median <<<"${VALUES["$impl $metric"]:-}")
    [[ -n $v ]] && echo "$v ${UNIT[$metric]}" || echo "n/a"
}

med() { [[ -n ${BUILT[$1]:-} && -z ${FAILED["$1 $3"]:-} ]] && median <<<"${VALUES["$1 $2"]:-}"; }

table() {
    echo "| benchmark | mote | Go | tokio | mote/Go | mote/tokio | target |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    local m b t mote go tokio
    while read -r m b t; do
        selected "$b" || continue
        mote=$(med mote "$m" "$b"); go=$(med go "$m" "$b"); tokio=$(med tokio "$m" "$b")
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$m" \
            "$(cell mote "$m" "$b")" "$(cell go "$m" "$b")" "$(cell tokio "$m" "$b")" \
            "$(ratio "$mote" "$go")" "$(ratio "$mote" "$tokio")" \
            "$(target_cell "$t" "${UNIT[$m]:-}" "$mote" "$go")"
    done < <(metric_rows)
}

machine() {
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "- peers: $(go version 2>/dev/null || echo 'no go'); $(rustc --version 2>/dev/null || echo 'no rustc');" \
        "tokio $(compgen -G '/usr/share/cargo/registry/tokio-1.*' | head -n1 | sed 's/.*tokio-//')"
    echo "- load average before the runs: $LOAD_BEFORE (other work on the machine skews the figures)"
    echo "- median of $REPEAT runs each; mote's target in the last column"
}

main() {
    mkdir -p "$LOGS"
    rm -f "$LOGS"/*.log
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    local impl b rep
    for impl in "${IMPLS[@]}"; do
        log "== building $impl"
        if "build_$impl"; then
            BUILT[$impl]=1
        else
            log "$impl: cannot be built; its column will be n/a"
        fi
    done
    for b in $(benches); do
        log "== $b"
        for ((rep = 1; rep <= REPEAT; rep++)); do
            for impl in "${IMPLS[@]}"; do
                [[ -n ${BUILT[$impl]:-} && -z ${FAILED["$impl $b"]:-} ]] && run_one "$impl" "$b" "$rep"
            done
        done
    done
    {
        echo "# mote benchmarks"
        echo
        machine
        echo
        table
    } >"$OUT/latest.md"
    echo
    cat "$OUT/latest.md"
    if ((failures > 0)); then
        log "$failures benchmark run(s) failed; logs in $LOGS"
        return 1
    fi
}

# bench/net.sh sources this file for its settings and build_<impl> functions.
[[ ${BASH_SOURCE[0]} != "$0" ]] && return 0

main
status=$?
# The network benchmarks (bench/net.sh), unless BENCH_NET=0.
if [[ ${BENCH_NET:-1} != 0 ]]; then
    "$BENCH_DIR/net.sh" "$BUILD_DIR" || status=1
fi
# examples/kv against redis-server (bench/kv.sh), unless BENCH_KV=0.
if [[ ${BENCH_KV:-1} != 0 ]]; then
    "$BENCH_DIR/kv.sh" "$BUILD_DIR" || status=1
fi
exit "$status"
