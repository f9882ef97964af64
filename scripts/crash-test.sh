#!/usr/bin/env bash
# Crash test of the ingest path: kill the server with SIGKILL during a load run,
# restart it, let the client retry; then check that every event the client sent
# is stored exactly once (none lost, none duplicated).
#
#   scripts/crash-test.sh                       # SQLite in a temporary directory
#   DATABASE=postgres://postgres@127.0.0.1:5432/crash scripts/crash-test.sh
#
# Uses target/release/touchpoint (cargo build --release -p touchpoint-cli).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TOUCHPOINT_BIN:-target/release/touchpoint}
events=${EVENTS:-200000}
port=${PORT:-18080}
dir=$(mktemp -d)
db=${DATABASE:-sqlite://$dir/crash.db}
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

"$bin" --database "$db" migrate >/dev/null
ingest=$("$bin" --database "$db" keys create --role ingest --source crash)
reader=$("$bin" --database "$db" keys create --role analyst)

start() {
    "$bin" --database "$db" serve --listen "127.0.0.1:$port" 2>>"$dir/server.log" &
    server_pid=$!
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "server did not start" >&2; cat "$dir/server.log" >&2; exit 1
}

start
"$bin" bench ingest --url "http://127.0.0.1:$port" --key "$ingest" --mode batch \
    --total-events "$events" --concurrency 16 --retry --verify-key "$reader" &
bench_pid=$!
sleep "${KILL_AFTER:-3}"
kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null || true
echo "crash-test: killed the server (SIGKILL) during the load run; restarting"
sleep 1
start
wait "$bench_pid"
echo "crash-test: passed"
