#!/usr/bin/env bash
# Intake benchmark: Parley's webhook intake against the baseline server, which only checks
# the signature and durably inserts the raw payload (same group-committed SQLite write).
#
# Run from the repository root:
#     ops/bench/intake.sh
#     DURATION=30s CONNECTIONS=64 RATE=3300 ops/bench/intake.sh
#
# For each server, on a fresh SQLite database in a temporary directory, it runs
#   1. closed loop, maximum throughput, CONNECTIONS connections, for DURATION;
#   2. open loop at RATE requests/s for DURATION;
# Parley runs twice: "core" with triage, the noise filter and routing off, then "parley"
# with them on. Parley's runs also wait until every acknowledged webhook is processed
# (messages and statuses in the database, exactly once) and read the apply-lag histogram
# from /metrics. It ends with two tables: baseline against Parley, and core against Parley
# (what triage costs).
#
# Environment:
#   DURATION        length of each load (default 20s; also 30, 2m, 500ms)
#   CONNECTIONS     concurrent keep-alive connections (default 32)
#   RATE            requests/s of the fixed-rate load (default 3300)
#   VERIFY_TIMEOUT  how long Parley may take to process the backlog (default 120s)
#   PARLEY_PORT, BASELINE_PORT   loopback ports (default 18080, 18081)
#   RESULTS_DIR     where reports and server logs are kept
#                   (default ${CARGO_TARGET_DIR:-target}/bench/intake-<date>)
#   CARGO_TARGET_DIR  respected: binaries are read from ${CARGO_TARGET_DIR:-target}/release
#   SKIP_BUILD=1    use the release binaries already built
#
# Exit status: 0 when every run acknowledged requests and Parley's processing verified.
set -euo pipefail

cd "$(dirname "$0")/../.."

DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
RATE=${RATE:-3300}
VERIFY_TIMEOUT=${VERIFY_TIMEOUT:-120s}
PARLEY_PORT=${PARLEY_PORT:-18080}
BASELINE_PORT=${BASELINE_PORT:-18081}
BIN="${CARGO_TARGET_DIR:-target}/release"
RESULTS_DIR=${RESULTS_DIR:-"${CARGO_TARGET_DIR:-target}/bench/intake-$(date +%Y%m%d-%H%M%S)"}
CHANNEL=bench
SECRET=bench-secret
# How long a server may take to become ready.
READY_TIMEOUT_SECS=60

WORK=$(mktemp -d "${TMPDIR:-/tmp}/parley-bench.XXXXXX")
SERVER_PID=""
FAILED=0

log() { printf '\n>> %s\n' "$*" >&2; }

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

cleanup() {
    stop_server
    if [[ -d "$WORK" ]]; then
        mkdir -p "$RESULTS_DIR"
        cp "$WORK"/*.json "$WORK"/*.log "$WORK"/*.toml "$RESULTS_DIR"/ 2>/dev/null || true
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$1/" || true)
    [[ "$code" != "000" ]]
}

# wait_ready URL NAME LOGFILE ACCEPT_ANY_ANSWER
wait_ready() {
    local url=$1 name=$2 logfile=$3 any=$4 code
    local deadline=$((SECONDS + READY_TIMEOUT_SECS))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "$name exited before it was ready; last lines of its log:" >&2
            tail -n 30 "$logfile" >&2 || true
            exit 1
        fi
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)
        if [[ "$code" == "200" ]] || [[ "$any" == "yes" && "$code" != "000" ]]; then
            return 0
        fi
        sleep 0.2
    done
    echo "$name was not ready after ${READY_TIMEOUT_SECS}s ($url answered $code)" >&2
    tail -n 30 "$logfile" >&2 || true
    exit 1
}

# load NAME PORT EXTRA_ARGS...: one loadgen run; a failed verification is recorded, not fatal.
load() {
    local name=$1 port=$2
    shift 2
    local status=0
    "$BIN/parley-loadgen" run \
        --url "http://127.0.0.1:$port/webhooks/$CHANNEL" \
        --app-secret "$SECRET" \
        --connections "$CONNECTIONS" \
        --duration "$DURATION" \
        --run-id "${name//_/}$(date +%s)" \
        --label "$name" \
        --json-out "$WORK/$name.json" \
        "$@" || status=$?
    if ((status != 0)); then
        echo "!! $name: parley-loadgen exited with $status" >&2
        FAILED=1
        # Exit codes 2 (nothing acknowledged) and 3 (verification failed) still wrote a report.
        [[ -f "$WORK/$name.json" ]] || exit "$status"
    fi
}

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    log "Building release binaries (parley, parley-baseline, parley-loadgen)"
    cargo build --release -p parley -p parley-loadgen
fi
for binary in parley parley-baseline parley-loadgen; do
    if [[ ! -x "$BIN/$binary" ]]; then
        echo "missing $BIN/$binary after the build" >&2
        exit 1
    fi
done
for port in "$BASELINE_PORT" "$PARLEY_PORT"; do
    if port_in_use "$port"; then
        echo "something already answers on 127.0.0.1:$port; stop it or set PARLEY_PORT/BASELINE_PORT" >&2
        exit 1
    fi
done
echo "machine: $(nproc) cores; loads of $DURATION, $CONNECTIONS connections, fixed rate $RATE/s" >&2

# --- Baseline ------------------------------------------------------------------------------
log "Baseline on a fresh database"
"$BIN/parley-baseline" \
    --bind "127.0.0.1:$BASELINE_PORT" \
    --database-url "sqlite://$WORK/baseline.db?mode=rwc" \
    --channel "$CHANNEL" \
    --app-secret "$SECRET" >"$WORK/baseline.log" 2>&1 &
SERVER_PID=$!
# The baseline is ready once it answers HTTP at all (it may not serve /readyz).
wait_ready "http://127.0.0.1:$BASELINE_PORT/readyz" baseline "$WORK/baseline.log" yes
log "Baseline: maximum throughput"
load baseline_max "$BASELINE_PORT" --no-process-check
log "Baseline: fixed rate $RATE/s"
load baseline_rate "$BASELINE_PORT" --no-process-check --rate "$RATE"
stop_server

# --- Parley --------------------------------------------------------------------------------
# The load generator builds every text from eight phrases, so all bodies are near-duplicates
# of one another and the noise filter would rightly take them for a copy-paste wave from
# thousands of numbers. The benchmark keeps the clustering work but sets the wave threshold
# out of reach, so that every acknowledged message must still be found on its case.
sed -e 's/^cluster_min_contacts = .*/cluster_min_contacts = 1000000000/' \
    config/routing.toml >"$WORK/bench-routing.toml"

# run_parley NAME TRIAGE: Parley on a fresh database, triage on (true) or off (false).
run_parley() {
    local name=$1 triage=$2
    log "$name on a fresh database (triage and routing: $triage)"
    local db="sqlite://$WORK/$name.db?mode=rwc"
    cat >"$WORK/$name.toml" <<TOML
[http]
bind = "127.0.0.1:$PARLEY_PORT"

[database]
url = "$db"

[routing]
enabled = $triage
rules_file = "$WORK/bench-routing.toml"

[[channels]]
id = "$CHANNEL"
kind = "whatsapp_cloud"
app_secret = "$SECRET"
verify_token = "bench-verify"
access_token = "bench-token"
api_base = "http://127.0.0.1:9"      # never called in this bench
phone_number_ids = ["106540352242922"]
TOML
    "$BIN/parley" serve --config "$WORK/$name.toml" >"$WORK/$name.log" 2>&1 &
    SERVER_PID=$!
    wait_ready "http://127.0.0.1:$PARLEY_PORT/readyz" "$name" "$WORK/$name.log" no
    local checks=(
        --verify-db "$db"
        --verify-timeout "$VERIFY_TIMEOUT"
        --metrics-url "http://127.0.0.1:$PARLEY_PORT/metrics"
    )
    log "$name: maximum throughput"
    load "${name}_max" "$PARLEY_PORT" "${checks[@]}"
    log "$name: fixed rate $RATE/s"
    load "${name}_rate" "$PARLEY_PORT" "${checks[@]}" --rate "$RATE"
    stop_server
}
run_parley core false
run_parley parley true

# --- Table ---------------------------------------------------------------------------------
log "Results (reports and logs kept in $RESULTS_DIR)"
"$BIN/parley-loadgen" compare \
    "maximum throughput, closed loop, $CONNECTIONS connections, $DURATION" \
    "$WORK/baseline_max.json" "$WORK/parley_max.json" \
    "fixed rate $RATE req/s, open loop, $CONNECTIONS connections, $DURATION" \
    "$WORK/baseline_rate.json" "$WORK/parley_rate.json"
log "What triage, the noise filter and routing cost: core (off) against Parley (on)"
"$BIN/parley-loadgen" compare \
    "maximum throughput, closed loop, $CONNECTIONS connections, $DURATION" \
    "$WORK/core_max.json" "$WORK/parley_max.json" \
    "fixed rate $RATE req/s, open loop, $CONNECTIONS connections, $DURATION" \
    "$WORK/core_rate.json" "$WORK/parley_rate.json"

if ((FAILED)); then
    echo "!! at least one run failed (see above)" >&2
    exit 1
fi
