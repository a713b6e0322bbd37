#!/usr/bin/env bash
# Intake benchmark: Parley's webhook intake against the bare insert (parley-bare: an
# actix-web handler that checks the signature and hands the raw body to one writer thread,
# which inserts it with rusqlite and group-commits, SQLite WAL, synchronous=FULL), the
# physical operation every intake must do before it answers. A second yardstick,
# parley-baseline, stores through Parley's own store (sqlx, the batcher, the writer): it
# shows what the store costs, not what Parley costs.
#
# Run from the repository root:
#     ops/bench/intake.sh
#     DURATION=30s CONNECTIONS=64 RATE=3300 ops/bench/intake.sh
#     MODE=plugins ops/bench/intake.sh
#
# "sustained req/s" counts a request once it is acknowledged *and* processed: the
# acknowledged requests over the load plus the time processing took to catch up after it.
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
# MODE=sla measures what the SLA clock costs at scale: Parley with triage and routing on
# (the defaults), SLA clock off against SLA clock on, both starting from the same database
# of OPEN_CASES open cases. The template is prepared once: `parley migrate` on a fresh
# SQLite file, then one sqlite3 transaction (a recursive CTE) inserts OPEN_CASES contacts
# (wa_ids 1999xxxxxxxx, never the load generator's 165055xxxxx) with one case each
# (status assigned, priority medium, the bench channel and number, a minimal SLA ledger
# and sla_due_at spread over now + 1 to 7 days, so that every deadline is held by the
# clock and none fires during the run). Each run gets its own copy of the template. In
# ROUNDS alternating pairs (which goes first alternates as well), closed loop at maximum
# throughput for DURATION, processing verified as above. For each run it records the
# time from launch to /readyz (with the clock on, Parley reads every pending deadline
# first), with the clock on the time until parley_sla_pending_deadlines (from /metrics)
# reaches the seeded count and its value then, and the time until the router has loaded
# every open case (it logs "Router loaded agents and open cases" once done, after the
# listener opens); the load starts only then. It also records the gauge after the load,
# the server's resident memory, and the CPU time of the server, the load generator and
# everything else on the machine over the load (a shared machine's other jobs show
# there). It ends with one table per round, then a summary: req/s off and on, their
# ratio per round, server CPU per acknowledged request, and the median ratio against
# SLA_MIN_RATIO (printed; the exit status does not depend on it).
#
# Environment:
#   DURATION        length of each load (default 20s; also 30, 2m, 500ms)
#   CONNECTIONS     concurrent keep-alive connections (default 32)
#   RATE            requests/s of the fixed-rate load (default 3300)
#   VERIFY_TIMEOUT  how long Parley may take to process the backlog (default 120s)
#   PARLEY_PORT, BASELINE_PORT, BARE_PORT   loopback ports (default 18080, 18081, 18082)
#   RESULTS_DIR     where reports and server logs are kept
#                   (default ${CARGO_TARGET_DIR:-target}/bench/intake-<date>)
#   CARGO_TARGET_DIR  respected: binaries are read from ${CARGO_TARGET_DIR:-target}/release
#   SKIP_BUILD=1    use the release binaries already built
#   MODE            baseline (default), plugins or sla
#   ROUNDS, STALL, STALL_RATE, STALL_TIMEOUT_MS, STALL_CONNECTIONS   plugins mode: pairs
#                   of runs (5), the hanging plugin and its load (waiting-transport,
#                   20/s, 1000 ms, 32 connections)
#   ROUNDS          sla mode: pairs of runs (default 3)
#   OPEN_CASES      sla mode: open cases in the seeded database (default 1000000)
#   SLA_TEMPLATE    sla mode: keep the seeded template at this path and reuse it when it
#                   is already there with OPEN_CASES cases (default: built in the temporary
#                   directory for this run only)
#   SLA_MIN_RATIO   sla mode: the median on/off ratio the summary checks (default 0.90)
#   QUIET_CPU       sla mode: a round counts as quiet when, on both sides, everything but
#                   the server and the load generator used less than this many cores on
#                   average during the load (default 0.10); the summary gives the median
#                   ratio of all rounds and of the quiet ones
#   READY_TIMEOUT_SECS  how long a server may take to become ready (default 60; sla mode 900)
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
if [[ "$MODE" == sla ]]; then ROUNDS=${ROUNDS:-3}; else ROUNDS=${ROUNDS:-5}; fi
OPEN_CASES=${OPEN_CASES:-1000000}
SLA_TEMPLATE=${SLA_TEMPLATE:-}
SLA_MIN_RATIO=${SLA_MIN_RATIO:-0.90}
QUIET_CPU=${QUIET_CPU:-0.10}
# The back end the waiting plugin calls (fixed in its WAT) and never gets an answer from.
BLACKHOLE_PORT=18099
BLACKHOLE_PID=""
VERIFY_TIMEOUT=${VERIFY_TIMEOUT:-120s}
PARLEY_PORT=${PARLEY_PORT:-18080}
# Parley reads every PARLEY_* environment variable as configuration: keep this one to
# the script.
export -n PARLEY_PORT
BASELINE_PORT=${BASELINE_PORT:-18081}
BARE_PORT=${BARE_PORT:-18082}
BIN="${CARGO_TARGET_DIR:-target}/release"
RESULTS_DIR=${RESULTS_DIR:-"${CARGO_TARGET_DIR:-target}/bench/intake-$(date +%Y%m%d-%H%M%S)"}
CHANNEL=bench
SECRET=bench-secret
# How long a server may take to become ready (sla mode: it loads OPEN_CASES cases first).
if [[ "$MODE" == sla ]]; then
    READY_TIMEOUT_SECS=${READY_TIMEOUT_SECS:-900}
else
    READY_TIMEOUT_SECS=${READY_TIMEOUT_SECS:-60}
fi

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
        cp "$WORK"/*.json "$WORK"/*.log "$WORK"/*.toml "$WORK"/*.tsv "$RESULTS_DIR"/ 2>/dev/null || true
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
    log "Building release binaries (parley, parley-bare, parley-baseline, parley-loadgen)"
    cargo build --release -p parley -p parley-loadgen
fi
for binary in parley parley-bare parley-baseline parley-loadgen; do
    if [[ ! -x "$BIN/$binary" ]]; then
        echo "missing $BIN/$binary after the build" >&2
        exit 1
    fi
done
for port in "$BARE_PORT" "$BASELINE_PORT" "$PARLEY_PORT"; do
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

# --- SLA mode ------------------------------------------------------------------------------
if [[ "$MODE" == sla ]]; then
    if ! command -v sqlite3 >/dev/null; then
        echo "MODE=sla needs the sqlite3 command-line shell to seed the database" >&2
        exit 1
    fi
    # Microseconds since the epoch, Parley's unit of time.
    now_micros() { local t=$EPOCHREALTIME; printf '%s' "${t/./}"; }
    # Seconds (three decimals) since the given microsecond instant.
    since() { awk -v a="$1" -v b="$(now_micros)" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'; }
    # The value of one sample on Parley's /metrics, "-" when absent or unreachable.
    metric() {
        local value
        value=$(curl -s --max-time 5 "http://127.0.0.1:$PARLEY_PORT/metrics" 2>/dev/null \
            | awk -v m="$1" '$1 == m { print $2; exit }' || true)
        printf '%s' "${value:--}"
    }
    rss_mib() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || printf -- -; }
    # CPU seconds: busy time of the whole machine, of one process, and (into CHILDREN_CPU)
    # of the children this shell has waited for, the load generator among them (`times`
    # must run in this shell, not in a command substitution).
    TICKS=$(getconf CLK_TCK)
    machine_cpu() { awk -v t="$TICKS" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / t }' /proc/stat; }
    process_cpu() { sed 's/^.*) //' "/proc/$1/stat" | awk -v t="$TICKS" '{ printf "%.2f", ($12 + $13) / t }'; }
    children_cpu() {
        times >"$WORK/times.out"
        CHILDREN_CPU=$(tail -n 1 "$WORK/times.out" | awk '{
            s = 0
            for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); s += p[1] * 60 + p[2] }
            printf "%.2f", s }')
    }
    # sla_toml FILE DB_URL ENABLED: Parley with triage and routing on, the clock on or off.
    sla_toml() {
        cat >"$1" <<TOML
[http]
bind = "127.0.0.1:$PARLEY_PORT"

[database]
url = "$2"

[routing]
enabled = true
rules_file = "$WORK/bench-routing.toml"

[sla]
enabled = $3

$NATIVE_CHANNEL
TOML
    }
    # The seeded cases of a template, and whether its deadlines are all still an hour off.
    seeded_cases() {
        sqlite3 "$1" "SELECT COUNT(*) FROM conversations WHERE sla_due_at IS NOT NULL
                      AND status <> 'closed'" 2>/dev/null || echo 0
    }
    fresh_deadlines() {
        local soon=$(($(now_micros) + 3600 * 1000000)) first
        first=$(sqlite3 "$1" "SELECT COALESCE(MIN(sla_due_at), 0) FROM conversations" 2>/dev/null || echo 0)
        ((first > soon))
    }
    seed_template() {
        local file=$1 started now
        rm -f "$file" "$file-wal" "$file-shm"
        log "Seeding the template: parley migrate, then $OPEN_CASES open cases with sqlite3"
        sla_toml "$WORK/migrate.toml" "sqlite://$file?mode=rwc" false
        env -u PARLEY_SLA__ENABLED "$BIN/parley" migrate --config "$WORK/migrate.toml" \
            >"$WORK/migrate.log" 2>&1 || {
            echo "parley migrate failed; its log:" >&2
            cat "$WORK/migrate.log" >&2
            exit 1
        }
        started=$(now_micros)
        now=$started
        # One transaction. Deadlines spread evenly over now + 1 to 7 days (a multiplicative
        # hash of the row number), all in the future: held by the clock, none fires.
        sqlite3 -bail "$file" >/dev/null <<SQL
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $OPEN_CASES)
INSERT INTO contacts (wa_id, name, created_at, updated_at)
SELECT '1999' || printf('%08d', i), 'Seeded ' || i, $now, $now FROM n;
INSERT INTO conversations (contact_id, channel_id, phone_number_id, status, priority,
    reopen_count, created_at, updated_at, last_activity_at, last_customer_message_at,
    sla, sla_due_at)
SELECT id, '$CHANNEL', '106540352242922', 'assigned', 'medium', 0, $now, $now, $now, $now,
    '{"first_response":{"start":$now},"resolution":{"start":$now}}',
    $now + 86400000000 + ((id * 2654435761) % 518400) * 1000000
FROM contacts WHERE wa_id LIKE '1999%';
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
        local seeded
        seeded=$(seeded_cases "$file")
        echo "seeded $seeded open cases in $(since "$started") s; template $(du -m "$file" | cut -f1) MiB" >&2
        if ((seeded != OPEN_CASES)); then
            echo "expected $OPEN_CASES seeded cases, found $seeded" >&2
            exit 1
        fi
    }

    # A router that loads the open cases after the listener opens says so in its log; the
    # load then waits for it as well, so that it measures intake, not the router's load.
    ROUTER_LOADS_LATE=no
    if grep -q 'Router loaded agents and open cases' "$BIN/parley"; then ROUTER_LOADS_LATE=yes; fi
    TEMPLATE=${SLA_TEMPLATE:-"$WORK/template.db"}
    if [[ -n "$SLA_TEMPLATE" && -f "$TEMPLATE" ]] \
        && (($(seeded_cases "$TEMPLATE") == OPEN_CASES)) && fresh_deadlines "$TEMPLATE"; then
        log "Reusing the seeded template $TEMPLATE ($OPEN_CASES open cases)"
        sqlite3 "$TEMPLATE" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
    else
        seed_template "$TEMPLATE"
    fi
    printf 'run\tsla\tready_s\tdeadlines_scheduled_s\tpending_deadlines_before\tpending_deadlines_after\tlogged_deadlines\trouter_loaded_s\trss_ready_mib\trss_end_mib\twindow_s\tserver_cpu_s\tloadgen_cpu_s\tother_cpu_s\n' \
        >"$WORK/sla_startup.tsv"

    # sla_run ROUND on|off: one Parley on a fresh copy of the template, one load.
    sla_run() {
        local round=$1 side=$2 enabled=false
        [[ "$side" == on ]] && enabled=true
        local name="sla_${side}_$round"
        local file="$WORK/$name.db"
        local db="sqlite://$file?mode=rwc"
        log "Round $round: SLA clock $side, $OPEN_CASES open cases"
        rm -f "$file" "$file-wal" "$file-shm"
        cp "$TEMPLATE" "$file"
        if [[ -f "$TEMPLATE-wal" ]]; then cp "$TEMPLATE-wal" "$file-wal"; fi
        sla_toml "$WORK/$name.toml" "$db" "$enabled"
        local started ready scheduled=- before=- after=- logged rss_ready rss_end routed=-
        local window cpu0 server0 loadgen0 cpu1 server1 loadgen1
        started=$(now_micros)
        env -u PARLEY_SLA__ENABLED "$BIN/parley" serve --config "$WORK/$name.toml" \
            >"$WORK/$name.log" 2>&1 &
        SERVER_PID=$!
        wait_ready "http://127.0.0.1:$PARLEY_PORT/readyz" "$name" "$WORK/$name.log" no
        ready=$(since "$started")
        if [[ "$side" == on ]]; then
            # The clock schedules the reloaded deadlines after the listener opens: the
            # load starts once all of them are held.
            local deadline=$((SECONDS + READY_TIMEOUT_SECS))
            while ((SECONDS < deadline)); do
                before=$(metric parley_sla_pending_deadlines)
                [[ "$before" != - ]] && ((before >= OPEN_CASES)) && break
                sleep 0.2
            done
            scheduled=$(since "$started")
            if [[ "$before" == - ]] || ((before < OPEN_CASES)); then
                echo "!! $name: parley_sla_pending_deadlines is $before, not $OPEN_CASES, after ${scheduled}s" >&2
                FAILED=1
            fi
        fi
        if [[ "$ROUTER_LOADS_LATE" == yes ]]; then
            local deadline=$((SECONDS + READY_TIMEOUT_SECS))
            until grep -q 'Router loaded agents and open cases' "$WORK/$name.log"; do
                if ((SECONDS >= deadline)) || ! kill -0 "$SERVER_PID" 2>/dev/null; then
                    echo "!! $name: the router had not loaded the open cases after $(since "$started")s" >&2
                    FAILED=1
                    break
                fi
                sleep 0.2
            done
            routed=$(since "$started")
        fi
        rss_ready=$(rss_mib "$SERVER_PID")
        echo "$name: ready in ${ready}s; deadlines held after ${scheduled}s: $before; router loaded after ${routed}s; RSS ${rss_ready} MiB" >&2
        window=$(now_micros)
        cpu0=$(machine_cpu)
        server0=$(process_cpu "$SERVER_PID")
        children_cpu
        loadgen0=$CHILDREN_CPU
        load "$name" "$PARLEY_PORT" \
            --verify-db "$db" \
            --verify-timeout "$VERIFY_TIMEOUT" \
            --metrics-url "http://127.0.0.1:$PARLEY_PORT/metrics"
        [[ "$side" == on ]] && after=$(metric parley_sla_pending_deadlines)
        children_cpu
        loadgen1=$CHILDREN_CPU
        server1=$(process_cpu "$SERVER_PID")
        cpu1=$(machine_cpu)
        window=$(since "$window")
        rss_end=$(rss_mib "$SERVER_PID")
        stop_server
        logged=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/$name.log" | grep 'SLA deadlines loaded' \
            | grep -o 'deadlines=[0-9]*' | head -n 1 | cut -d= -f2 || true)
        local server=$(awk -v a="$server0" -v b="$server1" 'BEGIN { printf "%.2f", b - a }')
        local loadgen=$(awk -v a="$loadgen0" -v b="$loadgen1" 'BEGIN { printf "%.2f", b - a }')
        local other=$(awk -v a="$cpu0" -v b="$cpu1" -v s="$server" -v l="$loadgen" \
            'BEGIN { printf "%.2f", b - a - s - l }')
        echo "$name: CPU over the load and its verification (${window}s): server ${server}s, load generator ${loadgen}s, everything else ${other}s" >&2
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$side" "$ready" \
            "$scheduled" "$before" "$after" "${logged:--}" "$routed" "$rss_ready" "$rss_end" \
            "$window" "$server" "$loadgen" "$other" >>"$WORK/sla_startup.tsv"
        rm -f "$file" "$file-wal" "$file-shm"
    }
    for round in $(seq 1 "$ROUNDS"); do
        # Which goes first alternates, so that drift falls on both sides alike.
        if ((round % 2)); then
            sla_run "$round" off
            sla_run "$round" on
        else
            sla_run "$round" on
            sla_run "$round" off
        fi
    done

    log "Results (reports and logs kept in $RESULTS_DIR)"
    for round in $(seq 1 "$ROUNDS"); do
        "$BIN/parley-loadgen" compare --labels sla-off,sla-on \
            "round $round: maximum throughput, closed loop, $CONNECTIONS connections, $DURATION, $OPEN_CASES open cases" \
            "$WORK/sla_off_$round.json" "$WORK/sla_on_$round.json"
    done
    log "SLA clock on against off, $OPEN_CASES open cases"
    python3 - "$WORK" "$ROUNDS" "$SLA_MIN_RATIO" "$QUIET_CPU" <<'PY'
import csv, json, statistics, sys

work, rounds = sys.argv[1], int(sys.argv[2])
minimum, quiet_cpu = float(sys.argv[3]), float(sys.argv[4])
with open(f"{work}/sla_startup.tsv") as f:
    runs = {row["run"]: row for row in csv.DictReader(f, delimiter="\t")}
def report(name):
    with open(f"{work}/{name}.json") as f:
        return json.load(f)
def verdict(r):
    return "passed" if r.get("passed") and r.get("verify") is not None else "FAILED"
def cpu_ms(r, run):   # server CPU per acknowledged request
    return 1000 * float(run["server_cpu_s"]) / max(r["acknowledged"], 1)
def others(run):      # average cores busy outside the server and the load generator
    return float(run["other_cpu_s"]) / float(run["window_s"])
print("| round | off req/s | on req/s | on/off | server CPU ms/req off | on | on/off "
      "| other cores off | on | verified (off, on) |")
print("|------:|----------:|---------:|-------:|----------------------:|---:|-------:"
      "|----------------:|---:|--------------------|")
ratios, quiet, cost = [], [], []
for n in range(1, rounds + 1):
    off, on = report(f"sla_off_{n}"), report(f"sla_on_{n}")
    roff, ron = runs[f"sla_off_{n}"], runs[f"sla_on_{n}"]
    a, b = off["throughput_rps"], on["throughput_rps"]
    ratio = b / a if a > 0 else float("nan")
    ratios.append(ratio)
    coff, con = cpu_ms(off, roff), cpu_ms(on, ron)
    cost.append(con / coff)
    ooff, oon = others(roff), others(ron)
    calm = ooff < quiet_cpu and oon < quiet_cpu
    if calm:
        quiet.append(ratio)
    print(f"| {n:>5} | {a:>9.1f} | {b:>8.1f} | {ratio:>6.3f} | {coff:>21.3f} | {con:.3f} "
          f"| {con / coff:>6.3f} | {ooff:>15.2f} | {oon:.2f}{'' if calm else ' (busy)'} "
          f"| {verdict(off)}, {verdict(on)} |")
median = statistics.median(ratios)
print(f"\nmedian on/off req/s, all {rounds} rounds: {median:.3f} (target >= {minimum:.2f}: "
      f"{'met' if median >= minimum else 'NOT met'})")
if quiet:
    m = statistics.median(quiet)
    print(f"median on/off req/s, the {len(quiet)} rounds where other processes used under "
          f"{quiet_cpu:.2f} cores on both sides: {m:.3f} "
          f"(target >= {minimum:.2f}: {'met' if m >= minimum else 'NOT met'})")
else:
    print(f"no round ran with other processes under {quiet_cpu:.2f} cores on both sides")
print(f"median server CPU per request, on/off: {statistics.median(cost):.3f}")
print("\n| run | ready s | deadlines held s | router loaded s | pending deadlines before / after "
      "load | logged | RSS at load start / end MiB |")
print("|-----|--------:|-----------------:|----------------:|-------------------------------------:"
      "|-------:|----------------------------:|")
for name, row in runs.items():
    print(f"| {name} | {row['ready_s']} | {row['deadlines_scheduled_s']} | {row['router_loaded_s']} | "
          f"{row['pending_deadlines_before']} / {row['pending_deadlines_after']} | "
          f"{row['logged_deadlines']} | {row['rss_ready_mib']} / {row['rss_end_mib']} |")
PY
    if ((FAILED)); then
        echo "!! at least one run failed (see above)" >&2
        exit 1
    fi
    exit 0
fi

# --- The bare insert ----------------------------------------------------------------------
log "Bare insert (rusqlite, one writer thread) on a fresh database"
"$BIN/parley-bare" \
    --bind "127.0.0.1:$BARE_PORT" \
    --database "$WORK/bare.db" \
    --channel "$CHANNEL" \
    --app-secret "$SECRET" >"$WORK/bare.log" 2>&1 &
SERVER_PID=$!
wait_ready "http://127.0.0.1:$BARE_PORT/readyz" bare "$WORK/bare.log" yes
log "Bare insert: maximum throughput"
load bare_max "$BARE_PORT" --no-process-check
log "Bare insert: fixed rate $RATE/s"
load bare_rate "$BARE_PORT" --no-process-check --rate "$RATE"
stop_server

# --- Parley's store as a baseline ------------------------------------------------------------
log "Baseline through Parley's store on a fresh database"
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
log "Parley against the bare insert"
"$BIN/parley-loadgen" compare --labels bare,parley \
    "maximum throughput, closed loop, $CONNECTIONS connections, $DURATION" \
    "$WORK/bare_max.json" "$WORK/parley_max.json" \
    "fixed rate $RATE req/s, open loop, $CONNECTIONS connections, $DURATION" \
    "$WORK/bare_rate.json" "$WORK/parley_rate.json"
log "Core (triage, noise filter and routing off) against the bare insert"
"$BIN/parley-loadgen" compare --labels bare,core \
    "maximum throughput, closed loop, $CONNECTIONS connections, $DURATION" \
    "$WORK/bare_max.json" "$WORK/core_max.json"
log "Parley against the baseline through Parley's own store"
"$BIN/parley-loadgen" compare --labels store,parley \
    "maximum throughput, closed loop, $CONNECTIONS connections, $DURATION" \
    "$WORK/baseline_max.json" "$WORK/parley_max.json" \
    "fixed rate $RATE req/s, open loop, $CONNECTIONS connections, $DURATION" \
    "$WORK/baseline_rate.json" "$WORK/parley_rate.json"
log "What triage, the noise filter and routing cost: core (off) against Parley (on)"
"$BIN/parley-loadgen" compare --labels core,parley \
    "maximum throughput, closed loop, $CONNECTIONS connections, $DURATION" \
    "$WORK/core_max.json" "$WORK/parley_max.json" \
    "fixed rate $RATE req/s, open loop, $CONNECTIONS connections, $DURATION" \
    "$WORK/core_rate.json" "$WORK/parley_rate.json"

if ((FAILED)); then
    echo "!! at least one run failed (see above)" >&2
    exit 1
fi
