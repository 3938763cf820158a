#!/usr/bin/env bash
# Network benchmarks (issue 3): mote's example servers side by side with a
# plain epoll loop, Go and tokio, on loopback. Prints a markdown table of
# medians and appends it to bench/out/latest-net.md.
#
#   bench/net.sh BUILD_DIR        (bench/run.sh runs it last unless BENCH_NET=0)
#
# Every server runs alone on CPU NET_SERVER_CPU (taskset), on one thread of
# its runtime: mote with MOTE_THREADS=1, Go with GOMAXPROCS=1, tokio on a
# current_thread runtime, the epoll loop single-threaded by construction.
# The load (wrk, net_echo_client, net_idle_client) runs on NET_CLIENT_CPU.
# A server's CPU time is utime+stime of /proc/PID/stat (all its threads),
# read just before and just after the measured load.
#
# Environment:
#   BENCH_REPEAT      runs per benchmark and implementation, interleaved; medians shown (3)
#   NET_IMPLS         implementations (epoll epollhp mote nodl uring go tokio); uring is mote's servers
#                     with MOTE_POLLER=uring, shown as rows of their own (n/a when
#                     the build has no io_uring backend or the kernel refuses it); nodl
#                     is mote's HTTP server without its 60 s per-read deadline
#                     (HTTP_HELLO_DEADLINE=off), rows of its own: what re-arming costs;
#                     epollhp is the epoll loop parsing with http_hello's own parser
#                     (examples/common/http.c on http-parser), http and pipe only, in
#                     rows of its own against mote: the network path alone
#                     uring1 and uringm are the epoll loop's HTTP server on raw io_uring
#                     (bench/net/uring_http.c: one-shot recv, and multishot accept +
#                     multishot recv with provided buffers), in a table of their own;
#                     urings is mote's HTTP server under MOTE_POLLER=uring with one-shot
#                     reads only (MOTE_URING_MULTISHOT=0), in rows of its own
#   NET_ONLY          benchmarks to run, of: http pipe echo idle (all)
#   NET_SECONDS       seconds of measured load per run (5), after NET_WARMUP (1) unmeasured
#   NET_CONNS         connections for wrk and the echo client (100)
#   NET_IDLE_CONNS    connections of the idle benchmark (10000)
#   NET_PORT          first loopback port to try (21100); busy ports are skipped
#   NET_SERVER_CPU, NET_CLIENT_CPU   the two CPUs (0 and 1)
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# run.sh, sourced, only defines its build_go/build_tokio and settings.
# shellcheck source=bench/run.sh
source "$BENCH_DIR/run.sh" "${1:?usage: bench/net.sh BUILD_DIR}" || exit 2

REPEAT=${BENCH_REPEAT:-3}
read -r -a IMPLS <<<"${NET_IMPLS:-epoll epollhp mote nodl uring go tokio uring1 uringm}"
DURATION=${NET_SECONDS:-5}
WARMUP=${NET_WARMUP:-1}
CONNS=${NET_CONNS:-100}
IDLE_CONNS=${NET_IDLE_CONNS:-10000}
IDLE_HOLD=4 # seconds the idle client holds its connections
NEXT_PORT=${NET_PORT:-21100} # below the ephemeral ports (/proc/sys/net/ipv4/ip_local_port_range)
SERVER_CPU=${NET_SERVER_CPU:-0}
CLIENT_CPU=${NET_CLIENT_CPU:-1}
LOGS=$OUT/logs/net
TICKS=$(getconf CLK_TCK)
MSG_SIZE=64

# One line per metric: metric, unit, the benchmark that measures it, and
# mote's target: "<=N" (in the unit), "<=Fxepoll" (F times the epoll loop's
# figure), ">=tokio" (at least tokio's) or "-" (reported only).
METRICS="
http_cpu         us/req   http  <=1.1xepoll
http_rate        req/s    http  >=tokio
http_busy        %cpu     http  -
pipe_cpu         us/req   pipe  <=1.15xepoll
pipe_rate        req/s    pipe  >=tokio
pipe_busy        %cpu     pipe  -
echo_rate        rt/s     echo  >=tokio
echo_cpu         us/rt    echo  -
echo_busy        %cpu     echo  -
idle_rss         KiB/conn idle  <=8
idle_rss_active  KiB/conn idle  <=1
"

# The same servers with MOTE_POLLER=uring (io_uring readiness and
# completions), in rows of their own: metric, unit, benchmark, target.
URING_METRICS="
http_cpu         us/req   http  <=0.9xepoll
http_rate        req/s    http  >=tokio
http_busy        %cpu     http  -
pipe_cpu         us/req   pipe  -
pipe_rate        req/s    pipe  -
echo_rate        rt/s     echo  >=tokio
echo_cpu         us/rt    echo  -
echo_busy        %cpu     echo  -
idle_rss         KiB/conn idle  <=8
"

# mote's HTTP server with no per-read deadline (nodl), in rows of their
# own: the same as its rows above, so the difference is what the deadline
# (re-armed on every read) costs.
NODL_METRICS="
http_cpu         us/req   http  -
http_rate        req/s    http  -
pipe_cpu         us/req   pipe  -
pipe_rate        req/s    pipe  -
"

# mote's servers under MOTE_POLLER=uring with one-shot reads only
# (urings): against the uring rows, what the multishot receive saves.
URINGS_METRICS="
http_cpu         us/req   http  -
http_rate        req/s    http  -
pipe_cpu         us/req   pipe  -
pipe_rate        req/s    pipe  -
echo_cpu         us/rt    echo  -
echo_rate        rt/s     echo  -
"

# mote's HTTP server against the epoll loop that parses with the same code
# (epollhp): both spend the same on http-parser and its callbacks, so the
# ratio is what mote's network path costs. Target "<=Fx": F times epollhp.
SAME_PARSER_METRICS="
http_cpu         us/req   http  <=1.1x
http_rate        req/s    http  -
pipe_cpu         us/req   pipe  <=1.15x
pipe_rate        req/s    pipe  -
"

declare -A VALUES=() FAILED=()
SERVER_PID=""

cleanup() { # the load clients end by themselves
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- Servers. server_bin IMPL KIND: the program for KIND (http, echo or
# ---- echo_active), or nothing when IMPL has none.

server_bin() {
    local impl=$1 kind=$2
    case $impl/$kind in
    epoll/http | epoll/echo) echo "$BUILD_DIR/bench/net_epoll_$kind" ;;
    epollhp/http) echo "$BUILD_DIR/bench/net_epoll_http_hp" ;;
    mote/http | uring/http | urings/http | nodl/http) echo "$BUILD_DIR/examples/http_hello" ;;
    mote/echo | mote/echo_active | uring/echo | urings/echo) echo "$BUILD_DIR/examples/$kind" ;;
    go/http | go/echo) echo "$OUT/go/net_$kind" ;;
    tokio/http | tokio/echo) echo "$OUT/tokio-target/release/net_$kind" ;;
    uring1/http | uringm/http) echo "$BUILD_DIR/bench/net_uring_http" ;;
    esac
}

# The raw io_uring server's mode (bench/net/uring_http.c).
server_mode() {
    case $1 in
    uring1) echo single ;;
    uringm) echo multi ;;
    esac
}

accepting() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server IMPL KIND LOG: starts it pinned, sets SERVER_PID and ADDR.
# A port that is taken (by a listener, or by some connection) is skipped.
start_server() {
    local impl=$1 kind=$2 log=$3 bin i tries poller deadline multishot
    bin=$(server_bin "$impl" "$kind")
    for ((tries = 0; tries < 10; tries++)); do
        while accepting "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
        ADDR=127.0.0.1:$NEXT_PORT
        NEXT_PORT=$((NEXT_PORT + 1))
        poller=""
        [[ $impl == uring || $impl == urings ]] && poller=uring
        multishot=""
        [[ $impl == urings ]] && multishot=0
        deadline=""
        [[ $impl == nodl ]] && deadline=off
        # shellcheck disable=SC2046 # no mode: no argument
        MOTE_URING_MULTISHOT=$multishot HTTP_HELLO_DEADLINE=$deadline MOTE_POLLER=$poller MOTE_THREADS=1 GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$bin" "$ADDR" $(server_mode "$impl") >>"$log" 2>&1 &
        SERVER_PID=$!
        for ((i = 0; i < 100; i++)); do
            accepting "${ADDR#*:}" && return 0
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.05
        done
        cleanup
        grep -qi 'in use' "$log" || break
    done
    log "$impl $kind: server did not start accepting on $ADDR; see $log"
    return 1
}

# The server's CPU time so far, in clock ticks: utime + stime, fields 14 and
# 15 of /proc/PID/stat (12 and 13 after "pid (comm) ").
cpu_ticks() { sed 's/^.*) //' "/proc/$SERVER_PID/stat" | awk '{ print $12 + $13 }'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"; }

on_client_cpu() { taskset -c "$CLIENT_CPU" "$@"; }

# ---- One run of a benchmark against one server: print "metric value" lines.

# measure_http [METRIC_PREFIX WRK_ARGS...]: wrk against the server; "pipe"
# passes bench/net/pipeline.lua (16 pipelined requests per write).
measure_http() {
    local t0 t1 out requests m=${1:-http}
    shift || true
    on_client_cpu wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$@" "http://$ADDR/" >/dev/null || return 1
    t0=$(cpu_ticks)
    out=$(on_client_cpu wrk -t1 -c"$CONNS" -d"${DURATION}s" "$@" "http://$ADDR/") || return 1
    t1=$(cpu_ticks)
    echo "$out" >&3
    grep -q 'Non-2xx' <<<"$out" && { log "non-2xx responses"; return 1; }
    requests=$(awk '/ requests in / { print $1 }' <<<"$out")
    [[ $requests -gt 0 ]] || return 1
    awk -v r="$requests" -v d="$((t1 - t0))" -v hz="$TICKS" -v s="$DURATION" -v m="$m" \
        -v rate="$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")" 'BEGIN {
        printf "%s_cpu %.2f\n%s_rate %.0f\n%s_busy %.0f\n", m, d / hz * 1e6 / r, m, rate, m, 100 * d / hz / s }'
}

measure_pipe() { measure_http pipe -s "$BENCH_DIR/net/pipeline.lua"; }

measure_echo() {
    local t0 t1 out client=$BUILD_DIR/bench/net_echo_client
    on_client_cpu "$client" "$ADDR" "$CONNS" "$WARMUP" "$MSG_SIZE" >/dev/null || return 1
    t0=$(cpu_ticks)
    out=$(on_client_cpu "$client" "$ADDR" "$CONNS" "$DURATION" "$MSG_SIZE") || return 1
    t1=$(cpu_ticks)
    echo "$out" >&3
    # "round_trips N seconds S per_second R"
    awk -v d="$((t1 - t0))" -v hz="$TICKS" '$1 == "round_trips" && $2 > 0 {
        printf "echo_rate %.0f\necho_cpu %.2f\necho_busy %.0f\n", $6, d / hz * 1e6 / $2, 100 * d / hz / $4 }' <<<"$out"
}

# metric: idle_rss, or idle_rss_active for mote's active-socket server.
measure_idle() {
    local metric=$1 before after i client out=$LOGS/idle_client.out
    rm -f "$out" # no READY line from an earlier run
    sleep 0.2
    before=$(rss_kib)
    on_client_cpu "$BUILD_DIR/bench/net_idle_client" "$ADDR" "$IDLE_CONNS" "$IDLE_HOLD" >"$out" 2>&3 &
    client=$!
    for ((i = 0; i < 1200; i++)); do
        grep -qs '^READY' "$out" && break
        kill -0 "$client" 2>/dev/null || break
        sleep 0.05
    done
    if ! grep -qs '^READY' "$out"; then
        wait "$client"
        echo "idle client: exit status $?, no READY line" >&3
        return 1
    fi
    sleep 0.5 # let the server finish its side of the last connections
    after=$(rss_kib)
    wait "$client" || { echo "idle client: exit status $?" >&3; return 1; }
    echo "RSS before ${before} KiB, with $IDLE_CONNS connections ${after} KiB" >&3
    awk -v a="$after" -v b="$before" -v n="$IDLE_CONNS" -v m="$metric" 'BEGIN { printf "%s %.2f\n", m, (a - b) / n }'
}

# run_one IMPL BENCH REP KIND KEY: one run of BENCH (http, echo, idle)
# against IMPL's KIND server (http, echo, echo_active); KEY names the run's
# failures in the table (BENCH, or the idle metric).
run_one() {
    local impl=$1 b=$2 rep=$3 kind=$4 key=$5 log bin result metric value ok=1
    bin=$(server_bin "$impl" "$kind")
    [[ -n $bin && -x $bin ]] || return 0 # n/a
    log=$LOGS/${impl}_${kind}_${b}_$rep.log
    : >"$log"
    if start_server "$impl" "$kind" "$log"; then
        result=$("measure_$b" "$key" 3>>"$log") || ok=0
        kill -0 "$SERVER_PID" 2>/dev/null || { ok=0; echo "the server exited" >>"$log"; }
    else
        ok=0
    fi
    cleanup
    if ((ok == 0)); then
        log "$impl $kind $b: run $rep failed; last lines of $log:"
        tail -n 5 "$log" | sed 's/^/    /' >&2
        FAILED["$impl $b $key"]=1
        return 0
    fi
    while read -r metric value; do
        VALUES["$impl $metric"]+="$value "
    done <<<"$result"
}

# ---- The table.

net_cell() { # impl metric bench -> "value", FAIL or n/a
    local impl=$1 m=$2 b=$3 v
    [[ -n ${FAILED["$impl $b $m"]:-} || ($b != idle && -n ${FAILED["$impl $b $b"]:-}) ]] && { echo FAIL; return; }
    v=$(median <<<"${VALUES["$impl $m"]:-}")
    echo "${v:-n/a}"
}

net_target() { # target unit mote epoll tokio
    local target=$1 unit=$2 mote=$3 epoll=$4 tokio=$5 text limit="" cmp="<="
    case $target in
    -) echo "-"; return ;;
    *xepoll)
        limit=${target#<=}; limit=${limit%xepoll}; text="<= $limit x epoll"
        limit=$(awk -v f="$limit" -v e="$epoll" 'BEGIN { if (e != "") print f * e }')
        ;;
    ">=tokio") text=">= tokio"; limit=$tokio; cmp=">=" ;;
    *) limit=${target#<=}; text="<= $limit $unit" ;;
    esac
    if [[ $mote =~ ^[0-9.]+$ && $limit =~ ^[0-9.]+$ ]]; then
        awk -v m="$mote" -v l="$limit" -v c="$cmp" 'BEGIN { exit !(c == "<=" ? m <= l : m >= l) }' &&
            text+=": met" || text+=": missed"
    fi
    echo "$text"
}

num() { [[ $1 =~ ^[0-9.]+$ ]] && echo "$1"; }

net_table() {
    echo "| metric | epoll | mote | Go | tokio | mote/epoll | mote/tokio | target |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
    local m unit b t impl
    while read -r m unit b t; do
        [[ -z ${NET_ONLY:-} || " $NET_ONLY " == *" $b "* ]] || continue
        declare -A c=()
        for impl in epoll mote go tokio; do c[$impl]=$(net_cell "$impl" "$m" "$b"); done
        printf '| %s (%s) | %s | %s | %s | %s | %s | %s | %s |\n' "$m" "$unit" \
            "${c[epoll]}" "${c[mote]}" "${c[go]}" "${c[tokio]}" \
            "$(ratio "$(num "${c[mote]}")" "$(num "${c[epoll]}")")" \
            "$(ratio "$(num "${c[mote]}")" "$(num "${c[tokio]}")")" \
            "$(net_target "$t" "$unit" "${c[mote]}" "$(num "${c[epoll]}")" "$(num "${c[tokio]}")")"
    done < <(grep -v '^[[:space:]]*$' <<<"$METRICS")
    variant_rows uring "MOTE_POLLER=uring" "$URING_METRICS"
    variant_rows urings "MOTE_POLLER=uring, one-shot reads" "$URINGS_METRICS"
    variant_rows nodl "no per-read deadline" "$NODL_METRICS"
    same_parser_rows
    raw_uring_table
}

# Rows of mote against epollhp, which stands in the epoll column.
same_parser_rows() {
    local m unit b t hp mote
    [[ " ${IMPLS[*]} " == *" epollhp "* ]] || return 0
    while read -r m unit b t; do
        [[ -z ${NET_ONLY:-} || " $NET_ONLY " == *" $b "* ]] || continue
        hp=$(net_cell epollhp "$m" "$b")
        mote=$(net_cell mote "$m" "$b")
        [[ $t == - ]] || t=${t}epoll
        printf '| %s (%s), mote vs epoll loop with the same parser | %s | %s | - | - | %s | - | %s |\n' \
            "$m" "$unit" "$hp" "$mote" "$(ratio "$(num "$mote")" "$(num "$hp")")" \
            "$(net_target "$t" "$unit" "$mote" "$(num "$hp")" "" | sed 's/x epoll/x same-parser loop/')"
    done < <(grep -v '^[[:space:]]*$' <<<"$SAME_PARSER_METRICS")
}

# The raw io_uring servers (uring1, uringm) beside epoll and mote on io_uring.
raw_uring_table() {
    local m b impl
    [[ " ${IMPLS[*]} " == *" uring1 "* || " ${IMPLS[*]} " == *" uringm "* ]] || return 0
    echo
    echo "The epoll loop's HTTP server on raw io_uring (bench/net/uring_http.c): uring1 one-shot recv per request, uringm multishot accept and recv with provided buffers."
    echo
    echo "| metric | epoll | mote, MOTE_POLLER=uring | raw uring1 | raw uringm | uring/epoll | uring1/epoll | uringm/epoll | uringm/uring1 |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for m in http_cpu http_rate http_busy pipe_cpu pipe_rate pipe_busy; do
        b=${m%%_*}
        [[ -z ${NET_ONLY:-} || " $NET_ONLY " == *" $b "* ]] || continue
        declare -A c=()
        for impl in epoll uring uring1 uringm; do c[$impl]=$(net_cell "$impl" "$m" "$b"); done
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$m" \
            "${c[epoll]}" "${c[uring]}" "${c[uring1]}" "${c[uringm]}" \
            "$(ratio "$(num "${c[uring]}")" "$(num "${c[epoll]}")")" \
            "$(ratio "$(num "${c[uring1]}")" "$(num "${c[epoll]}")")" \
            "$(ratio "$(num "${c[uringm]}")" "$(num "${c[epoll]}")")" \
            "$(ratio "$(num "${c[uringm]}")" "$(num "${c[uring1]}")")"
    done
}

# variant_rows IMPL LABEL METRICS: rows for a variant of mote's servers.
variant_rows() {
    local v=$1 label=$2 rows=$3 m unit b t impl
    [[ " ${IMPLS[*]} " == *" $v "* ]] || return 0
    while read -r m unit b t; do
        [[ -z ${NET_ONLY:-} || " $NET_ONLY " == *" $b "* ]] || continue
        declare -A c=()
        for impl in epoll "$v" go tokio; do c[$impl]=$(net_cell "$impl" "$m" "$b"); done
        printf '| %s (%s), %s | %s | %s | %s | %s | %s | %s | %s |\n' "$m" "$unit" "$label" \
            "${c[epoll]}" "${c[$v]}" "${c[go]}" "${c[tokio]}" \
            "$(ratio "$(num "${c[$v]}")" "$(num "${c[epoll]}")")" \
            "$(ratio "$(num "${c[$v]}")" "$(num "${c[tokio]}")")" \
            "$(net_target "$t" "$unit" "${c[$v]}" "$(num "${c[epoll]}")" "$(num "${c[tokio]}")")"
    done < <(grep -v '^[[:space:]]*$' <<<"$rows")
}

net_machine() { # run.sh's lines, then this benchmark's settings
    machine
    echo "- load: $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2) and bench/net/*_client.c on CPU $CLIENT_CPU;" \
        "servers on CPU $SERVER_CPU, one thread each (MOTE_THREADS=1, GOMAXPROCS=1, tokio current_thread)"
    echo "- http: wrk -t1 -c$CONNS -d${DURATION}s after ${WARMUP}s warm-up (pipe: the same with bench/net/pipeline.lua, 16 requests per write); echo: $CONNS connections x $MSG_SIZE B round trips for ${DURATION}s;" \
        "idle: $IDLE_CONNS connections, one $MSG_SIZE B echo each, VmRSS growth / connection"
    [[ -r /proc/pressure/cpu ]] &&
        echo "- CPU pressure (/proc/pressure/cpu, some) before the runs: $PRESSURE_BEFORE"
    echo "- %cpu: the server's CPU time / wall time (100 = its core saturated; less = the load, not the server, sets the rate)"
}

# The build has the io_uring backend and the kernel accepts io_uring
# (io_uring_setup is system call 425 everywhere; see scripts/check-uring.sh).
uring_usable() {
    grep -qs '^MOTE_URING_LIB:FILEPATH=/' "$BUILD_DIR/CMakeCache.txt" &&
        grep -qs '^MOTE_POLLERS:STRING=.*uring' "$BUILD_DIR/CMakeCache.txt" &&
        perl -e '$p = "\0" x 120; exit(syscall(425, 4, $p) < 0 ? 1 : 0)' 2>/dev/null
}

net_main() {
    mkdir -p "$LOGS"
    rm -f "$LOGS"/*.log
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    PRESSURE_BEFORE=$(awk '/^some/ { print $2, $3 }' /proc/pressure/cpu 2>/dev/null)
    ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
    local impl b rep benches=()
    command -v taskset >/dev/null || { log "net: no taskset (util-linux)"; return 1; }
    command -v wrk >/dev/null || log "net: no wrk (apt-get install wrk); the http rows will be n/a"
    for b in http pipe echo idle; do
        [[ $b == http || $b == pipe ]] && ! command -v wrk >/dev/null && continue
        [[ -z ${NET_ONLY:-} || " $NET_ONLY " == *" $b "* ]] && benches+=("$b")
    done
    local built=()
    for impl in "${IMPLS[@]}"; do
        if [[ $impl == go || $impl == tokio ]]; then
            log "== building $impl"
            "build_$impl" || { log "$impl: cannot be built; its column will be n/a"; continue; }
        fi
        if [[ $impl == uring* ]] && ! uring_usable; then
            log "uring: no io_uring backend in $BUILD_DIR, or the kernel refuses io_uring; its rows are left out"
            continue
        fi
        built+=("$impl")
    done
    IMPLS=(${built[@]+"${built[@]}"})
    for b in ${benches[@]+"${benches[@]}"}; do
        log "== net $b"
        for ((rep = 1; rep <= REPEAT; rep++)); do
            for impl in "${IMPLS[@]}"; do
                case $b in
                http | echo) run_one "$impl" "$b" "$rep" "$b" "$b" ;;
                pipe) run_one "$impl" pipe "$rep" http pipe ;;
                idle) run_one "$impl" idle "$rep" echo idle_rss ;;
                esac
            done
            if [[ $b == idle && " ${IMPLS[*]} " == *" mote "* ]]; then
                run_one mote idle "$rep" echo_active idle_rss_active
            fi
        done
    done
    local report
    report=$(
        echo "# mote network benchmarks"
        echo
        net_machine
        echo
        net_table
    )
    printf '\n%s\n' "$report"
    printf '%s\n\n' "$report" >>"$OUT/latest-net.md"
    ((${#FAILED[@]} == 0)) || { log "${#FAILED[@]} network benchmark(s) failed; logs in $LOGS"; return 1; }
}

net_main
