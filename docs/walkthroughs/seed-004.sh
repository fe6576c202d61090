#!/bin/sh
# Seed 004, the Account Management API, against `make run` (or $TALLY). Safe to run again: fresh ids each time.
# Each `say` prints one answer on its own line; `#=>` shows what it contains (tests/test_walkthroughs.py checks).
set -eu
TALLY=${TALLY:-http://127.0.0.1:8000}
H='Content-Type: application/json'
say() { curl -sS -w '\n' "$@"; }
new_id() { python3 -c 'import uuid; print(uuid.uuid4())'; }
A=$(new_id); T1=$(new_id); T2=$(new_id)
say "$TALLY/ping"  #=> {"status":"ok"}
say -X POST "$TALLY/amount" -H "$H" -H "Transaction-Id: $T1" -d "{\"account_id\": \"$A\", \"amount\": 30}"  #=> "amount":30 … "balance":30
say -X POST "$TALLY/amount" -H "$H" -H "Transaction-Id: $T2" -d "{\"account_id\": \"$A\", \"amount\": -12}"  #=> "amount":-12 … "balance":18
say "$TALLY/balance/$A"  #=> {"balance":18}
say "$TALLY/transaction/$T1"  #=> "amount":30
say "$TALLY/max_transaction_volume"  #=> "maxVolume":
# The same Transaction-Id again answers the same (200, nothing changes); with another body, 409.
say -X POST "$TALLY/amount" -H "$H" -H "Transaction-Id: $T1" -d "{\"account_id\": \"$A\", \"amount\": 30}"  #=> "balance":30
say -X POST "$TALLY/amount" -H "$H" -H "Transaction-Id: $T1" -d "{\"account_id\": \"$A\", \"amount\": 31}"  #=> "code":"idempotency_key_reused"
say -o /dev/null -w '%{http_code}' -X POST "$TALLY/amount" -H 'Content-Type: application/xml' -H "Transaction-Id: $T1" -d '{}'  #=> 415
