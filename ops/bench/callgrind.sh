#!/usr/bin/env bash
# Instructions per webhook, counted by valgrind's callgrind: the bare insert (parley-bare),
# Parley with triage, the noise filter and routing off ("core") and Parley as shipped
# ("parley"). Instruction counts do not move with the machine's load, so this compares
# the servers' work even on a busy machine (throughput figures need an idle one:
# ops/bench/intake.sh).
#
# Each server runs under callgrind on a fresh SQLite database. Once it is ready the
# counters are zeroed (callgrind_control -z), REQUESTS signed webhooks are sent at RATE/s
# (the same generator as the intake bench), the script waits until Parley has processed
# every one (checked in its database), and the counters are dumped (callgrind_control -d):
# the dump holds the work of those requests only, every thread included. It prints the
# instructions per acknowledged request for each server and their ratios, and keeps each
# dump with `callgrind_annotate` summaries (the functions with the most inclusive
# instructions) in RESULTS_DIR.
#
#     ops/bench/callgrind.sh
#     REQUESTS=3000 RATE=150 ops/bench/callgrind.sh
#
# Environment: REQUESTS (default 2000), RATE (default 200 req/s), CONNECTIONS (8),
# RESULTS_DIR (default ${CARGO_TARGET_DIR:-target}/bench/callgrind-<date>), SKIP_BUILD=1,
# SERVERS (default "bare core parley").
set -euo pipefail
cd "$(dirname "$0")/../.."

REQUESTS=${REQUESTS:-2000}
RATE=${RATE:-200}
CONNECTIONS=${CONNECTIONS:-8}
SERVERS=${SERVERS:-"bare core parley"}
PORT=18090
BIN="${CARGO_TARGET_DIR:-target}/release"
RESULTS_DIR=${RESULTS_DIR:-"${CARGO_TARGET_DIR:-target}/bench/callgrind-$(date +%Y%m%d-%H%M%S)"}
CHANNEL=bench
SECRET=bench-secret
WORK=$(mktemp -d "${TMPDIR:-/tmp}/parley-callgrind.XXXXXX")
mkdir -p "$RESULTS_DIR"
SERVER_PID=""

command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release -p parley -p parley-loadgen
fi

sed -e 's/^cluster_min_contacts = .*/cluster_min_contacts = 1000000000/' \
    config/routing.toml >"$WORK/bench-routing.toml"

parley_config() { # NAME TRIAGE
    cat >"$WORK/$1.toml" <<TOML
[http]
bind = "127.0.0.1:$PORT"
workers = 2

[database]
url = "sqlite://$WORK/$1.db?mode=rwc"

[routing]
enabled = $2
rules_file = "$WORK/bench-routing.toml"

[telemetry]
log_filter = "warn"

[plugins]
# No plugin is loaded; a small instance pool keeps the engine's address-space reservation
# within what valgrind can map.
max_concurrent_calls = 2
max_memory_mb = 16

[[channels]]
id = "$CHANNEL"
kind = "whatsapp_cloud"
app_secret = "$SECRET"
verify_token = "bench-verify"
access_token = "bench-token"
api_base = "http://127.0.0.1:9"
phone_number_ids = ["106540352242922"]
TOML
}

wait_ready() {
    for _ in $(seq 1 600); do
        if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/readyz"; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "$1 exited" >&2; tail -20 "$WORK/$1.log" >&2; exit 1; }
        sleep 1
    done
    echo "$1 not ready" >&2
    exit 1
}

declare -A PER_REQUEST
for name in $SERVERS; do
    out="$RESULTS_DIR/$name.callgrind"
    case "$name" in
        bare)
            cmd=("$BIN/parley-bare" --bind "127.0.0.1:$PORT" --database "$WORK/bare.db"
                --channel "$CHANNEL" --app-secret "$SECRET" --workers 2)
            checks=(--no-process-check) ;;
        core|parley)
            triage=true; [[ "$name" == core ]] && triage=false
            parley_config "$name" "$triage"
            cmd=("$BIN/parley" serve --config "$WORK/$name.toml")
            checks=(--verify-db "sqlite://$WORK/$name.db?mode=rwc" --verify-timeout 600s) ;;
        *) echo "unknown server $name" >&2; exit 1 ;;
    esac
    echo ">> $name under callgrind" >&2
    valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no \
        "${cmd[@]}" >"$WORK/$name.log" 2>&1 &
    SERVER_PID=$!
    wait_ready "$name"
    callgrind_control -z "$SERVER_PID" >/dev/null
    "$BIN/parley-loadgen" run \
        --url "http://127.0.0.1:$PORT/webhooks/$CHANNEL" --app-secret "$SECRET" \
        --connections "$CONNECTIONS" --rate "$RATE" \
        --duration "$(awk "BEGIN { printf \"%.1fs\", $REQUESTS / $RATE }")" \
        --run-id "cg$name$(date +%s)" --label "$name" --json-out "$RESULTS_DIR/$name.json" \
        "${checks[@]}" >"$RESULTS_DIR/$name.load.txt"
    callgrind_control -d "$SERVER_PID" >/dev/null
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    # The dump made by -d has a ".1" suffix (the final dump at exit, if any, is not used).
    dump=$(ls -1 "$out".* 2>/dev/null | sort | tail -n 1)
    [[ -n "$dump" ]] || { echo "no callgrind dump for $name" >&2; exit 1; }
    total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }' || true)
    acked=$(python3 -c "import json,sys; print(json.load(open('$RESULTS_DIR/$name.json'))['acknowledged'])")
    PER_REQUEST[$name]=$(python3 -c "print(round($total / max($acked, 1)))")
    # (head closes the pipe early: not a failure)
    callgrind_annotate --inclusive=yes "$dump" 2>/dev/null | head -n 80 >"$RESULTS_DIR/$name.inclusive.txt" || true
    callgrind_annotate "$dump" 2>/dev/null | head -n 80 >"$RESULTS_DIR/$name.self.txt" || true
    echo "$name: $total instructions for $acked acknowledged requests: ${PER_REQUEST[$name]} per request" >&2
done

echo
echo "| server | instructions per webhook | bare / server |"
echo "|---|---:|---:|"
for name in $SERVERS; do
    ratio="-"
    if [[ -n "${PER_REQUEST[bare]:-}" ]]; then
        ratio=$(python3 -c "print(f'{${PER_REQUEST[bare]} / ${PER_REQUEST[$name]}:.3f}')")
    fi
    echo "| $name | ${PER_REQUEST[$name]} | $ratio |"
done
echo "(dumps and summaries in $RESULTS_DIR)"
