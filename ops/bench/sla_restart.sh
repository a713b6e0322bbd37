#!/usr/bin/env bash
# Restart with a million overdue SLA deadlines, through the real server.
#
#     cargo build --release -p parley && ops/bench/sla_restart.sh
#     N=200000 ops/bench/sla_restart.sh
#
# Migrates a fresh SQLite database, seeds N open cases (one contact each) whose first
# response breached an hour ago (sqlite3, one transaction), then launches `parley serve`
# and polls /metrics: seconds until HTTP answers, until the SLA clock dispatched its first
# deadline (parley_sla_alarm_lateness_seconds_count) and until the first alarm was
# recorded on its case (parley_sla_alarms_total). Needs sqlite3, curl and bc.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-1000000}
BIN="${CARGO_TARGET_DIR:-target}/release/parley"
W=$(mktemp -d "${TMPDIR:-/tmp}/parley-sla-restart.XXXXXX")
trap 'rm -rf "$W"' EXIT
cat > $W/p.toml <<TOML
[http]
bind = "127.0.0.1:18090"
[database]
url = "sqlite://$W/p.db?mode=rwc"
[[channels]]
id = "bench"
kind = "whatsapp_cloud"
app_secret = "bench-secret"
verify_token = "bench-verify"
access_token = "bench-token"
api_base = "http://127.0.0.1:9"
phone_number_ids = ["106540352242922"]
TOML
$BIN migrate --config $W/p.toml > $W/migrate.log 2>&1
NOW=$(( $(date +%s) * 1000000 ))
sqlite3 $W/p.db <<SQL
PRAGMA journal_mode=WAL;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO contacts (wa_id, created_at, updated_at, vip) SELECT '1999' || printf('%08d', i), 0, 0, 0 FROM n;
INSERT INTO conversations (contact_id, channel_id, phone_number_id, status, priority, reopen_count, created_at, updated_at, last_activity_at, sla, sla_due_at)
SELECT id, 'bench', '106540352242922', 'assigned', 'medium', 0, $NOW - 7200000000, $NOW - 7200000000, $NOW - 7200000000,
  '{"first_response":{"start":' || ($NOW - 7200000000) || '},"resolution":{"start":' || ($NOW - 7200000000) || '}}',
  $NOW - 7200000000 + 2700000000 FROM contacts;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
echo "seeded $N overdue cases"
start=$(date +%s.%N)
PARLEY_TELEMETRY__LOG_FILTER=info $BIN serve --config $W/p.toml > $W/serve.log 2>&1 &
PID=$!
ready=""; dispatched=""; recorded=""
for _ in $(seq 1 1200); do
  sleep 0.1
  m=$(curl -s http://127.0.0.1:18090/metrics || true)
  [ -z "$m" ] && continue
  now=$(date +%s.%N)
  [ -z "$ready" ] && ready=$(echo "$now - $start" | bc)
  if [ -z "$dispatched" ] && echo "$m" | grep -q '^parley_sla_alarm_lateness_seconds_count [1-9]'; then dispatched=$(echo "$now - $start" | bc); fi
  if [ -z "$recorded" ] && echo "$m" | grep -q '^parley_sla_alarms_total{.*} [1-9]'; then recorded=$(echo "$now - $start" | bc); fi
  [ -n "$recorded" ] && [ -n "$dispatched" ] && break
done
echo "http ready after ${ready}s; first deadline dispatched after ${dispatched}s; first alarm recorded after ${recorded}s"
grep -E "deadlines loaded|Router loaded" $W/serve.log | sed 's/\x1b\[[0-9;]*m//g'
kill $PID; wait $PID 2>/dev/null || true

