#!/usr/bin/env bash
# examples/kv against redis-server, all driven by redis-benchmark in the
# same run: SET and GET, plain and pipelined. kv runs twice: with a process
# per connection (kv) and with active sockets (kv -a, "kv_active"). Prints a
# markdown table of medians (req/s, p50 and p99 latency, kv/redis, the
# server's CPU time per request) and
# appends it to bench/out/latest-kv.md.
#
#   bench/kv.sh BUILD_DIR         (bench/run.sh runs it unless BENCH_KV=0)
#
# Each server runs alone on CPU KV_SERVER_CPU (taskset; so kv runs one
# worker thread and one shard), redis-benchmark on KV_CLIENT_CPU. Redis
# runs without persistence (--save '' --appendonly no), as kv has none.
#
# Environment:
#   BENCH_REPEAT     rounds, each running every server in turn (3)
#   KV_SERVERS       servers to run, of: kv kv_active redis (all)
#   KV_REQUESTS      requests per redis-benchmark test (1000000)
#   KV_CLIENTS       connections (50)
#   KV_PIPELINE      the pipelined mode's depth (16)
#   KV_PORT          first loopback port to try (21300)
#   KV_SERVER_CPU, KV_CLIENT_CPU   the two CPUs (0 and 1)
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
BUILD_DIR=$(cd "${1:?usage: bench/kv.sh BUILD_DIR}" && pwd) || exit 2
OUT=$BENCH_DIR/out
LOGS=$OUT/logs/kv
REPEAT=${BENCH_REPEAT:-3}
REQUESTS=${KV_REQUESTS:-1000000}
CLIENTS=${KV_CLIENTS:-50}
PIPELINE=${KV_PIPELINE:-16}
NEXT_PORT=${KV_PORT:-21300}
SERVER_CPU=${KV_SERVER_CPU:-0}
CLIENT_CPU=${KV_CLIENT_CPU:-1}
read -r -a SERVERS <<<"${KV_SERVERS:-kv kv_active redis}"
SERVER_PID=""

log() { printf '%s\n' "$*" >&2; }

cleanup() {
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in redis-benchmark redis-cli redis-server taskset; do
    command -v $tool >/dev/null || { log "kv: no $tool (apt-get install redis-tools redis-server util-linux)"; exit 1; }
done
[[ -x $BUILD_DIR/examples/kv ]] || { log "kv: no $BUILD_DIR/examples/kv"; exit 1; }

TICKS=$(getconf CLK_TCK)
# The server's CPU time so far in clock ticks (utime + stime, all threads).
cpu_ticks() { sed 's/^.*) //' "/proc/$SERVER_PID/stat" | awk '{ print $12 + $13 }'; }

accepting() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server NAME LOG: pinned to SERVER_CPU; sets SERVER_PID and PORT.
start_server() {
    local name=$1 log=$2 i
    while accepting "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
    PORT=$NEXT_PORT
    NEXT_PORT=$((NEXT_PORT + 1))
    case $name in
    kv) taskset -c "$SERVER_CPU" "$BUILD_DIR/examples/kv" -p "$PORT" >>"$log" 2>&1 & ;;
    kv_active) taskset -c "$SERVER_CPU" "$BUILD_DIR/examples/kv" -a -p "$PORT" >>"$log" 2>&1 & ;;
    redis) taskset -c "$SERVER_CPU" redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --loglevel warning >>"$log" 2>&1 & ;;
    esac
    SERVER_PID=$!
    for ((i = 0; i < 100; i++)); do
        [[ $(redis-cli -p "$PORT" ping 2>/dev/null) == PONG ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    log "kv: $name did not start on port $PORT; see $log"
    cleanup
    return 1
}

declare -A VALUES=() # "server mode test metric" -> values of each round
FAILED=0

# One redis-benchmark run; its CSV rows: "TEST","rps","avg","min","p50","p95","p99","max".
measure() { # server mode
    local server=$1 mode=$2 args=() test rps p50 p99
    [[ $mode == pipelined ]] && args=(-P "$PIPELINE")
    local out t0 t1
    t0=$(cpu_ticks)
    out=$(taskset -c "$CLIENT_CPU" redis-benchmark -p "$PORT" -t set,get -n "$REQUESTS" -c "$CLIENTS" \
        "${args[@]}" --csv 2>&1) || { log "kv: redis-benchmark failed against $server"; return 1; }
    t1=$(cpu_ticks)
    echo "$out" >>"$LOGS/${server}_$mode.log"
    # server CPU per request, SET and GET together: less sensitive than
    # req/s to what else runs on the machine
    VALUES["$server $mode cpu"]+="$(awk -v d="$((t1 - t0))" -v hz="$TICKS" -v n="$((2 * REQUESTS))" \
        'BEGIN { printf "%.2f", d / hz * 1e6 / n }') "
    while IFS=, read -r test rps _ _ p50 _ p99 _; do
        test=${test//\"/}
        [[ $test == SET || $test == GET ]] || continue
        VALUES["$server $mode $test rps"]+="${rps//\"/} "
        VALUES["$server $mode $test p50"]+="${p50//\"/} "
        VALUES["$server $mode $test p99"]+="${p99//\"/} "
    done <<<"$out"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {
    if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

med() { median <<<"${VALUES["$1"]:-}"; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2f", a / b; else printf "-" }'; }

table() {
    echo "| mode | test | server | req/s | x redis | p50 (ms) | p99 (ms) | server CPU (us/req, SET+GET) |"
    echo "|---|---|---|---:|---:|---:|---:|---:|"
    local mode test server rps redis
    for mode in plain pipelined; do
        for test in SET GET; do
            redis=$(med "redis $mode $test rps")
            for server in "${SERVERS[@]}"; do
                rps=$(med "$server $mode $test rps")
                printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' \
                    "$([[ $mode == plain ]] && echo plain || echo "-P $PIPELINE")" "$test" \
                    "$([[ $server == kv_active ]] && echo "kv -a" || echo "$server")" "${rps:-n/a}" \
                    "$(ratio "$rps" "$redis")" "$(med "$server $mode $test p50")" "$(med "$server $mode $test p99")" \
                    "$(med "$server $mode cpu")"
            done
        done
    done
}

main() {
    mkdir -p "$LOGS"
    rm -f "$LOGS"/*.log
    local load rep server mode
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    for ((rep = 1; rep <= REPEAT; rep++)); do
        for server in "${SERVERS[@]}"; do
            log "== kv bench: $server, round $rep"
            start_server "$server" "$LOGS/${server}_server.log" || { FAILED=1; continue; }
            for mode in plain pipelined; do
                measure "$server" "$mode" || FAILED=1
            done
            kill -0 "$SERVER_PID" 2>/dev/null || { log "kv: $server exited"; FAILED=1; }
            cleanup
        done
    done
    local report
    report=$(
        echo "# kv vs redis-server"
        echo
        echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "- machine: $(uname -srm), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
        echo "- $(redis-server --version | cut -d' ' -f1-3); load average before the runs: $load (other work on the machine skews the figures)"
        echo "- servers on CPU $SERVER_CPU (kv: one worker thread, one shard; kv -a: active sockets), redis-benchmark on CPU $CLIENT_CPU:" \
            "-t set,get -n $REQUESTS -c $CLIENTS, plain and -P $PIPELINE; median of $REPEAT rounds"
        echo
        table
    )
    printf '\n%s\n' "$report"
    printf '%s\n\n' "$report" >>"$OUT/latest-kv.md"
    ((FAILED == 0)) || { log "kv bench: a run failed; logs in $LOGS"; return 1; }
}

main
