#!/bin/sh
# Tally's own API, /v1, against `make run` (or $TALLY), with the development key `make run` printed (or
# $TALLY_KEY). Safe to run again: the account ids get a fresh suffix each run.
set -eu
TALLY=${TALLY:-http://127.0.0.1:8000}
TALLY_KEY=${TALLY_KEY:-$(cat .data/dev-key)}
H='Content-Type: application/json'
A="Authorization: Bearer $TALLY_KEY"
say() { curl -sS -w '\n' -H "$A" -H "Idempotency-Key: $(python3 -c 'import uuid; print(uuid.uuid4())')" "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
R=$(python3 -c 'import uuid; print(uuid.uuid4().hex[:8])')
M=member-$R; ALICE=alice-$R; SHOP=shop-$R
# A loyalty flow: a points account, points that expire, a spend, a refund back into the very lots.
say -X POST "$TALLY/v1/accounts" -H "$H" -d "{\"id\": \"$M\", \"unit\": \"points\", \"kind\": \"points\"}"  #=> "object":"account" … "kind":"points"
# Every transaction sums to zero: earned points come from the tenant's system account of the unit.
say -X POST "$TALLY/v1/points/earn" -H "$H" -d "{\"account_id\": \"$M\", \"payer\": \"DANNON\", \"points\": 300, \"expires_at\": \"2030-01-01T00:00:00Z\"}"  #=> "type":"earn" … "account_id":"@world:points","seq":null,"amount":-300
say -X POST "$TALLY/v1/points/earn" -H "$H" -d "{\"account_id\": \"$M\", \"payer\": \"UNILEVER\", \"points\": 200}"  #=> "type":"earn"
SPEND=$(say -X POST "$TALLY/v1/points/spend" -H "$H" -d "{\"account_id\": \"$M\", \"points\": 400}")
echo "$SPEND"  #=> "type":"spend" … "amount":400
say "$TALLY/v1/accounts/$M/lots"  #=> "payer":"UNILEVER","points":200,"remaining":100
say -X POST "$TALLY/v1/transactions/$(echo "$SPEND" | field id)/reversals" -H "$H" -d '{"amount": 150}'  #=> "type":"reversal" … "amount":150
say "$TALLY/v1/accounts/$M/lots"  #=> "remaining":50 … "remaining":200
say "$TALLY/v1/accounts/@world:points"  #=> "id":"@world:points" … "kind":"system" … "shards":32
# A wallet flow: two USD accounts (the shop's hot: its balance in 4 shards), a deposit, a hold captured in part to
# the shop, a transfer, history.
say -X POST "$TALLY/v1/accounts" -H "$H" -d "{\"id\": \"$ALICE\", \"unit\": \"USD\", \"metadata\": {\"user\": \"7\"}}"  #=> "balance":0
say -X POST "$TALLY/v1/accounts" -H "$H" -d "{\"id\": \"$SHOP\", \"unit\": \"USD\", \"floor\": null, \"shards\": 4}"  #=> "floor":null … "shards":4
say -X POST "$TALLY/v1/postings" -H "$H" -d "{\"account_id\": \"$ALICE\", \"amount\": 10000}"  #=> "type":"posting"
HOLD=$(say -X POST "$TALLY/v1/holds" -H "$H" -d "{\"account_id\": \"$ALICE\", \"amount\": 2500}")
echo "$HOLD"  #=> "object":"hold" … "status":"authorized"
say "$TALLY/v1/accounts/$ALICE"  #=> "balance":10000,"held":2500,"available":7500
say -X POST "$TALLY/v1/postings" -H "$H" -d "{\"account_id\": \"$ALICE\", \"amount\": -8000}"  #=> "code":"insufficient_funds"
say -X POST "$TALLY/v1/holds/$(echo "$HOLD" | field id)/capture" -H "$H" -d "{\"amount\": 2000, \"destination\": \"$SHOP\"}"  #=> "status":"captured" … "type":"capture"
say -X POST "$TALLY/v1/transfers" -H "$H" -d "{\"source\": \"$ALICE\", \"destination\": \"$SHOP\", \"amount\": 500}"  #=> "type":"transfer"
say "$TALLY/v1/accounts/$ALICE/entries?limit=2"  #=> "has_more":true … "next_cursor":"
say "$TALLY/v1/accounts/$ALICE/balance?as_of=$(python3 -c 'import datetime; print((datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))')"  #=> "balance":0
say "$TALLY/v1/accounts/$ALICE/balance"  #=> "balance":7500,"held":0,"available":7500
say "$TALLY/v1/accounts/$SHOP"  #=> "balance":2500 … "shards":4
say "$TALLY/v1/accounts/@world:USD/entries?limit=1"  #=> "account_id":"@world:USD","seq":null,"amount":-10000
curl -sS -w '\n' "$TALLY/v1/accounts/$ALICE" -H 'Authorization: Bearer tk_test_not_a_key'  #=> "code":"unauthorized"
