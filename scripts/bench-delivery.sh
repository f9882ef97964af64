#!/usr/bin/env bash
# Delivery benchmark (docs/BENCHMARKS.md, Campaign delivery): N e-mails
# (default 100,000) through `touchpoint campaigns run` to a local SMTP
# server (aiosmtpd's Sink handler, which accepts and drops each message).
#
#   scripts/bench-delivery.sh [N] [CONCURRENCY]     # BIN=target/release/touchpoint to choose the binary
#
# Setup, not measured: N members imported with an order and an address, and
# e-mail consent seeded with sqlite3 straight into the consent table (a
# benchmark fixture: the product's door is `touchpoint members consent`,
# one process per member, too slow to seed 100,000). The campaign is
# decided with --no-deliver, then the delivery pass alone is timed.
set -euo pipefail
N=${1:-100000}
CONC=${2:-10}
BIN=${BIN:-target/debug/touchpoint}
WORK=$(mktemp -d)
SMTP_PID=""
trap 'kill $SMTP_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
DB="sqlite://$WORK/bench.db"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

python3 - "$N" > "$WORK/orders.csv" <<'PY'
import sys
n = int(sys.argv[1])
print("order_id,ordered_at,channel,status,sku,quantity,unit_price,phone,email")
for i in range(1, n + 1):
    print(f"O{i},2025-06-01 10:00:00,web,paid,SKU-A,1,100.00,139{i:08d},p{i}@example.com")
PY
"$BIN" --database "$DB" import orders "$WORK/orders.csv" --format canonical --channel web > /dev/null
NOW=$(date +%s%3N)
sqlite3 "$WORK/bench.db" "INSERT INTO consent (member_id, channel, topic, granted, at, source) SELECT id, 'email', 'promotions', 1, $NOW, 'bench' FROM members;" 2>/dev/null \
  || sqlite3 "$WORK/bench.db" "INSERT INTO consent SELECT id, 'email', 'promotions', 1, $NOW, 'bench' FROM members;"
cat > "$WORK/bench.toml" <<'TOML'
name = "bench"
channel = "email"
control_percent = 0
[cap]
messages = 100
days = 1
[audience]
expression = 'last_order_days >= 30'
[trigger]
kind = "once"
at = "2025-12-01 09:00"
[message]
subject = "Hello {{name}}"
body = "Dear {{member_id}}, you have {{points}} points."
TOML
"$BIN" --database "$DB" campaigns create "$WORK/bench.toml" > /dev/null
/usr/bin/time -f "decide: %e s wall, %M KB" "$BIN" --database "$DB" campaigns run --now "2025-12-01 10:00" --no-deliver -o json \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); print("decided: queued", r["campaigns"][0]["queued"])'

python3 -m aiosmtpd -n -l "127.0.0.1:$PORT" -c aiosmtpd.handlers.Sink &
SMTP_PID=$!
for _ in $(seq 1 50); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $N e-mails, --delivery-concurrency $CONC, $BIN"
START=$(date +%s.%N)
"$BIN" --database "$DB" campaigns run --now "2025-12-01 10:01" --smtp "smtp://127.0.0.1:$PORT?tls=none" \
  --mail-from "Brand <crm@brand.test>" --public-url http://crm.brand.test --delivery-concurrency "$CONC" -o json \
  > "$WORK/run.json"
END=$(date +%s.%N)
python3 - "$WORK/run.json" "$START" "$END" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s, e = float(sys.argv[2]), float(sys.argv[3])
d = r["delivery"]
print(f"delivered {d['sent']}, to retry {d['retrying']}, dead letters {d['failed']} in {e - s:.1f} s: {d['sent'] / (e - s):,.0f} messages/s")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
