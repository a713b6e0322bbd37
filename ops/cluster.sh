#!/usr/bin/env bash
# Starts N local Parley nodes (default 3) as one cluster on this machine's PostgreSQL and
# Redis: one fresh database, ports 8081.., node ids node1... Ctrl-C stops them cleanly
# (each hands its shards over at once).
#
#   ops/cluster.sh 3
#   PARLEY_PG=postgres://postgres@127.0.0.1:5432 PARLEY_REDIS=redis://127.0.0.1:6379 ops/cluster.sh 2
set -euo pipefail

n="${1:-3}"
pg="${PARLEY_PG:-postgres://postgres@127.0.0.1:5432}"
redis="${PARLEY_REDIS:-redis://127.0.0.1:6379}"
db="parley_cluster_$(date +%s)"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$(mktemp -d)"

cargo build -q -p parley --manifest-path "$root/Cargo.toml"
bin="$root/target/debug/parley"

psql "$pg/postgres" -qc "CREATE DATABASE $db" >/dev/null
echo "database $pg/$db"

pids=()
stop() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait
}
trap stop INT TERM EXIT

for i in $(seq 1 "$n"); do
    port=$((8080 + i))
    cat >"$dir/node$i.toml" <<TOML
[http]
bind = "127.0.0.1:$port"
[database]
url = "$pg/$db"
migrate_on_start = true
[cluster]
redis_url = "$redis"
node_id = "node$i"
TOML
    "$bin" --config "$dir/node$i.toml" serve &
    pids+=("$!")
    # The first node migrates the database before the others start.
    until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.2; done
    echo "node$i on http://127.0.0.1:$port"
done
echo "clusterStatus (admins): query { clusterStatus { nodes { nodeId leader shardsOwned heartbeatAgeMs } } }"
echo "create a token: $bin --config $dir/node1.toml token create --name admin --role admin"
wait
