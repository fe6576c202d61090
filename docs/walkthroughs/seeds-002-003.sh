#!/bin/sh
# Seeds 002 (Wallet App, JWT) and 003 (Asper-Wallet), against `make run` (or $TALLY). Safe to run again: each run
# registers new phone numbers, and takes its ids from the answers.
set -eu
TALLY=${TALLY:-http://127.0.0.1:8000}
H='Content-Type: application/json'
say() { curl -sS -w '\n' "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
phone() { python3 -c 'import random; print("555" + str(random.randrange(10**7)).zfill(7))'; }
# 002: registration answers the tokens; every other /api/v1 route wants the access token.
REGISTERED=$(say -X POST "$TALLY/api/v1/users" -H "$H" -d "{\"phone_number\": \"$(phone)\"}")
echo "$REGISTERED"  #=> "user_id": … "access_token": … "refresh_token":
U=$(echo "$REGISTERED" | field user_id); A="Authorization: Bearer $(echo "$REGISTERED" | field access_token)"
say -X POST "$TALLY/api/v1/token/refresh" -H "Authorization: Bearer $(echo "$REGISTERED" | field refresh_token)"  #=> "access_token": … "refresh_token":
W=$(curl -sS -X POST "$TALLY/api/v1/wallet/create" -H "$H" -H "$A" -d "{\"user_id\": $U, \"type\": \"type1\"}" | field wallet_id)
say "$TALLY/api/v1/wallet/get/$U/type1" -H "$A"  #=> "type":"type1" … "balance":0
say -X POST "$TALLY/api/v1/transactions/create" -H "$H" -H "$A" -d "{\"user_id\": $U, \"wallet_id\": $W, \"amount\": 120.5, \"is_credit\": true}"  #=> "balance":120.5
say -X POST "$TALLY/api/v1/transactions/create" -H "$H" -H "$A" -d "{\"user_id\": $U, \"wallet_id\": $W, \"amount\": 101, \"is_credit\": false}"  #=> "code":"insufficient_funds"
say "$TALLY/api/v1/transactions/get/$U/$W?limit=50" -H "$A"  #=> "amount":120.5 … "next_cursor":null
say -X POST "$TALLY/api/v1/transactions/get/total_in_period" -H "$H" -H "$A" -d "{\"user_id\": $U, \"wallet_id\": $W, \"start_date\": \"2024-04-19T05:27:13\", \"end_date\": \"2100-01-01T00:00:00\"}"  #=> 120.5
say "$TALLY/api/v1/wallet/get/$U/type1"  #=> "code":"unauthorized"
# 003: no auth, as the original; its wallet is the user's `default` wallet. Its users and wallets are its own.
V=$(curl -sS -X POST "$TALLY/register" -H "$H" -d "{\"phone_number\": \"$(phone)\"}" | field user_id)
WALLET=$(say -X POST "$TALLY/wallet/create" -H "$H" -d "{\"user_id\": $V}")
echo "$WALLET"  #=> "wallet_id":
X=$(echo "$WALLET" | field wallet_id)
say -X POST "$TALLY/wallet/credit" -H "$H" -d "{\"wallet_id\": $X, \"amount\": 1000}"  #=> {"new_balance":1000}
say -X POST "$TALLY/wallet/debit" -H "$H" -d "{\"wallet_id\": $X, \"amount\": 500, \"minimum_balance\": 600}"  #=> "error":
say "$TALLY/wallet/balance/$X"  #=> 1000
say "$TALLY/wallet/transactions?wallet_id=$X&start_date=2024-01-01&end_date=2100-12-31"  #=> 1000
