#!/bin/sh
# Seeds 000 (the Fetch points exercise) and 001, against `make run` (or $TALLY). Each surface has one holder, so
# the walkthrough spends what is left at the end: run again, it answers the same.
set -eu
TALLY=${TALLY:-http://127.0.0.1:8000}
H='Content-Type: application/json'
say() { curl -sS -w '\n' "$@"; }
total() { python3 -c 'import json,sys; print(sum(json.load(sys.stdin).values()))'; }
say -X POST "$TALLY/add" -H "$H" -d '{"payer": "DANNON", "points": 300, "timestamp": "2022-10-31T10:00:00Z"}'  #=> "payer":"DANNON"
say -X POST "$TALLY/add" -H "$H" -d '{"payer": "UNILEVER", "points": 200, "timestamp": "2022-10-31T11:00:00Z"}'  #=> "payer":"UNILEVER"
say -X POST "$TALLY/add" -H "$H" -d '{"payer": "DANNON", "points": -200, "timestamp": "2022-10-31T15:00:00Z"}'  #=> "points":-200
say -X POST "$TALLY/add" -H "$H" -d '{"payer": "MILLER COORS", "points": 10000, "timestamp": "2022-11-01T14:00:00Z"}'  #=> "payer":"MILLER COORS"
say -X POST "$TALLY/add" -H "$H" -d '{"payer": "DANNON", "points": 1000, "timestamp": "2022-11-02T14:00:00Z"}'  #=> "points":1000
say -X POST "$TALLY/spend" -H "$H" -d '{"points": 5000}'  #=> [{"payer":"DANNON","points":-100},{"payer":"UNILEVER","points":-200},{"payer":"MILLER COORS","points":-4700}]
say "$TALLY/balance"  #=> {"DANNON":1000,"UNILEVER":0,"MILLER COORS":5300}
say -X POST "$TALLY/spend" -H "$H" -d '{"points": 50000}'  #=> "code":"insufficient_points"
say -X POST "$TALLY/spend" -H "$H" -d "{\"points\": $(curl -sS "$TALLY/balance" | total)}"  #=> "points":-1000 … "points":-5300
# Seed 001: the server stamps the time; a spend answers the balances after it.
say -X POST "$TALLY/transaction" -H "$H" -d '{"payer": "DANNON", "points": 1000}'  #=> "payer":"DANNON" … "timestamp"
say -X PUT "$TALLY/spend_points" -H "$H" -d '{"points": 300}'  #=> "DANNON":700
say "$TALLY/"  #=> "DANNON":700
say -X PUT "$TALLY/spend_points" -H "$H" -d "{\"points\": $(curl -sS "$TALLY/" | total)}"  #=> "DANNON":0
