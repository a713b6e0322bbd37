#!/usr/bin/env bash
# Intake benchmark: Parley's webhook intake against the baseline server, which only checks
# the signature and durably inserts the raw payload (same group-committed SQLite write).
#
# Run from the repository root:
#     ops/bench/intake.sh
#     DURATION=30s CONNECTIONS=64 RATE=3300 ops/bench/intake.sh
#     MODE=plugins ops/bench/intake.sh
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
# MODE=plugins measures transport plugins instead, all against one Parley with three
# channels: the native Cloud API channel, a Twilio channel through the reference twilio
# plugin, and a channel whose plugin hangs on every call (breaker disabled, so every
# call runs to its timeout). Closed loop at maximum throughput, each for DURATION, after
# one warm-up load per channel, in ROUNDS alternating pairs (which goes first alternates as well):
#   native and twilio (form-encoded, X-Twilio-Signature, verified by the plugin);
#   native alone, then native while a second generator sends STALL_RATE webhooks/s to
#   the hanging channel (each answered 503 after STALL_TIMEOUT_MS).
# One table per pair. It needs plugins/build.sh's
# toolchain (see plugins/README.md); the hanging plugin is built from
# tests/fixtures/plugins/STALL.wat (STALL=waiting-transport, the default: it waits on a
# back end that never answers; STALL=stalling-transport: it spins the CPU).
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
#   MODE            baseline (default) or plugins
#   ROUNDS, STALL, STALL_RATE, STALL_TIMEOUT_MS, STALL_CONNECTIONS   plugins mode: pairs
#                   of runs (5), the hanging plugin and its load (waiting-transport,
#                   20/s, 1000 ms, 32 connections)
#
# Exit status: 0 when every run acknowledged requests and Parley's processing verified.
set -euo pipefail

cd "$(dirname "$0")/../.."

DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
RATE=${RATE:-3300}
MODE=${MODE:-baseline}
STALL=${STALL:-waiting-transport}
STALL_RATE=${STALL_RATE:-20}
STALL_TIMEOUT_MS=${STALL_TIMEOUT_MS:-1000}
STALL_CONNECTIONS=${STALL_CONNECTIONS:-32}
ROUNDS=${ROUNDS:-5}
# The back end the waiting plugin calls (fixed in its WAT) and never gets an answer from.
BLACKHOLE_PORT=18099
BLACKHOLE_PID=""
VERIFY_TIMEOUT=${VERIFY_TIMEOUT:-120s}
PARLEY_PORT=${PARLEY_PORT:-18080}
# Parley reads every PARLEY_* environment variable as configuration: keep this one to
# the script.
export -n PARLEY_PORT
BASELINE_PORT=${BASELINE_PORT:-18081}
BIN="${CARGO_TARGET_DIR:-target}/release"
RESULTS_DIR=${RESULTS_DIR:-"${CARGO_TARGET_DIR:-target}/bench/intake-$(date +%Y%m%d-%H%M%S)"}
CHANNEL=bench
SECRET=bench-secret
# How long a server may take to become ready.
READY_TIMEOUT_SECS=60

WORK=$(mktemp -d "${TMPDIR:-/tmp}/parley-bench.XXXXXX")
# Parley's listener, database and native channel, the same in both modes.
PARLEY_DB="sqlite://$WORK/parley.db?mode=rwc"
PARLEY_HEAD="[http]
bind = \"127.0.0.1:$PARLEY_PORT\"

[database]
url = \"$PARLEY_DB\""
NATIVE_CHANNEL="[[channels]]
id = \"$CHANNEL\"
kind = \"whatsapp_cloud\"
app_secret = \"$SECRET\"
verify_token = \"bench-verify\"
access_token = \"bench-token\"
api_base = \"http://127.0.0.1:9\"      # never called in this bench
phone_number_ids = [\"106540352242922\"]"
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
    if [[ -n "$BLACKHOLE_PID" ]]; then kill "$BLACKHOLE_PID" 2>/dev/null || true; fi
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
        --app-secret "${SIGNING_SECRET:-$SECRET}" \
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

# The load generator builds every text from eight phrases, so all bodies are near-duplicates
# of one another and the noise filter would rightly take them for a copy-paste wave from
# thousands of numbers. The benchmark keeps the clustering work but sets the wave threshold
# out of reach, so that every acknowledged message must still be found on its case.
sed -e 's/^cluster_min_contacts = .*/cluster_min_contacts = 1000000000/' \
    config/routing.toml >"$WORK/bench-routing.toml"

# --- Plugins mode --------------------------------------------------------------------------
if [[ "$MODE" == plugins ]]; then
    log "Building the reference plugins and the hanging one ($STALL)"
    plugins/build.sh twilio
    "${PLUGINS_TARGET_DIR:-plugins/target}/componentize/release/parley-componentize" \
        --world transport "tests/fixtures/plugins/$STALL.wat" "$WORK/stall.wasm"
    TWILIO_TOKEN=bench-twilio-token
    PUBLIC_BASE=http://parley.bench
    cat >"$WORK/twilio.toml" <<TOML
id = "twilio"
version = "0.1.0"
world = "transport@0.1"
component = "$PWD/plugins/dist/twilio.wasm"
allowed_hosts = ["https://api.twilio.com"]
secrets = ["auth_token"]
[settings]
account_sid = "ACb0000000000000000000000000000000"
TOML
    cat >"$WORK/stall.toml" <<TOML
id = "stall"
version = "0.1.0"
world = "transport@0.1"
component = "$WORK/stall.wasm"
allowed_hosts = ["http://127.0.0.1:$BLACKHOLE_PORT"]
timeout_ms = $STALL_TIMEOUT_MS
TOML
    cat >"$WORK/parley.toml" <<TOML
$PARLEY_HEAD

[routing]
rules_file = "$WORK/bench-routing.toml"

[plugins]
manifests = ["$WORK/twilio.toml", "$WORK/stall.toml"]
# Every call to the hanging plugin runs to its timeout: no breaker to cut it short.
breaker_failures = 1000000000

[plugins.secrets.twilio]
auth_token = "$TWILIO_TOKEN"

$NATIVE_CHANNEL

[[channels]]
id = "twilio-bench"
kind = "transport"
plugin = "twilio"
public_base_url = "$PUBLIC_BASE"

[[channels]]
id = "stalling"
kind = "transport"
plugin = "stall"
public_base_url = "$PUBLIC_BASE"
TOML
    # Accepts connections and never answers: the waiting plugin's back end.
    python3 -c "import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $BLACKHOLE_PORT)); s.listen(4096); time.sleep(1e9)" &
    BLACKHOLE_PID=$!
    "$BIN/parley" serve --config "$WORK/parley.toml" >"$WORK/parley.log" 2>&1 &
    SERVER_PID=$!
    wait_ready "http://127.0.0.1:$PARLEY_PORT/readyz" parley "$WORK/parley.log" no
    PARLEY_CHECKS=(--verify-db "$PARLEY_DB" --verify-timeout "$VERIFY_TIMEOUT")
    # Runs alternate, so that drift (a growing database, a neighbour's load) falls on
    # both sides of each comparison alike.
    TWILIO_ARGS=(--format twilio --public-url "$PUBLIC_BASE/webhooks/twilio-bench")
    native_run() { load "native_$1" "$PARLEY_PORT" "${PARLEY_CHECKS[@]}"; }
    twilio_run() {
        CHANNEL=twilio-bench SIGNING_SECRET="$TWILIO_TOKEN" \
            load "twilio_$1" "$PARLEY_PORT" "${PARLEY_CHECKS[@]}" "${TWILIO_ARGS[@]}"
    }
    # Warm-up, kept out of the pairs: the very first load on an empty database runs
    # fastest, and each channel's first load meets only customers Parley has never seen
    # (a contact, a case and a new actor each, the expensive path). Both channels get
    # one, so that every compared load meets the customers it already knows.
    log "Warm-up: native channel, then the Twilio channel (not compared)"
    load warm_up "$PARLEY_PORT" "${PARLEY_CHECKS[@]}"
    twilio_run warm_up
    for round in $(seq 1 "$ROUNDS"); do
        # Which goes first alternates too.
        if ((round % 2)); then
            log "Round $round: native Cloud API channel, then Twilio through the plugin"
            native_run "$round"
            twilio_run "$round"
        else
            log "Round $round: Twilio through the plugin, then the native Cloud API channel"
            twilio_run "$round"
            native_run "$round"
        fi
    done
    alone_run() { load "alone_$1" "$PARLEY_PORT" "${PARLEY_CHECKS[@]}"; }
    with_hang_run() {
        "$BIN/parley-loadgen" run \
            --url "http://127.0.0.1:$PARLEY_PORT/webhooks/stalling" \
            --app-secret "$TWILIO_TOKEN" --format twilio \
            --public-url "$PUBLIC_BASE/webhooks/stalling" \
            --rate "$STALL_RATE" --connections "$STALL_CONNECTIONS" \
            --duration "$DURATION" --no-process-check --quiet \
            --label "hanging_$1" --json-out "$WORK/hanging_$1.json" \
            >"$WORK/hanging_$1.txt" 2>&1 &
        local hanging=$!
        sleep 1    # let the hanging calls pile up first
        load "with_hang_$1" "$PARLEY_PORT" "${PARLEY_CHECKS[@]}"
        # Exit 2 is expected: the hanging channel acknowledges nothing.
        wait "$hanging" || true
        grep -E "status|latency" "$WORK/hanging_$1.txt" >&2 || true
    }
    for round in $(seq 1 "$ROUNDS"); do
        log "Round $round: native channel alone and while $STALL hangs $STALL_RATE calls/s"
        if ((round % 2)); then
            alone_run "$round"
            with_hang_run "$round"
        else
            with_hang_run "$round"
            alone_run "$round"
        fi
    done
    stop_server
    # The hanging plugin must have failed by its deadline, not in some quicker way.
    log "How the hanging plugin's calls ended (from Parley's log)"
    sed 's/\x1b\[[0-9;]*m//g' "$WORK/parley.log" | grep 'plugin=stall' \
        | grep -o 'code="plugin_[a-z_]*"' | sort | uniq -c >&2 || true
    if sed 's/\x1b\[[0-9;]*m//g' "$WORK/parley.log" | grep 'plugin=stall' \
        | grep -o 'code="plugin_[a-z_]*"' | grep -qv 'plugin_timeout'; then
        echo "!! the hanging plugin failed otherwise than by timing out" >&2
        FAILED=1
    fi
    log "Results (reports and logs kept in $RESULTS_DIR)"
    for round in $(seq 1 "$ROUNDS"); do
        "$BIN/parley-loadgen" compare --labels native,twilio \
            "round $round: maximum throughput, closed loop, $CONNECTIONS connections, $DURATION" \
            "$WORK/native_$round.json" "$WORK/twilio_$round.json"
    done
    for round in $(seq 1 "$ROUNDS"); do
        "$BIN/parley-loadgen" compare --labels alone,with-hang \
            "round $round: native channel alone / while $STALL hangs $STALL_RATE calls/s for ${STALL_TIMEOUT_MS} ms each" \
            "$WORK/alone_$round.json" "$WORK/with_hang_$round.json"
    done
    if ((FAILED)); then
        echo "!! at least one run failed (see above)" >&2
        exit 1
    fi
    exit 0
fi

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
