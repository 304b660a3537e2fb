#!/usr/bin/env bash
# ab.sh — paymentd binaries side by side under perf/compare's paymentd load,
# alternately, on one durable PostgreSQL: an A/B of two commits in one run.
#
#   internal/perftools/ab.sh PAYMENTS "8 32" 12s ROUNDS BIN_A BIN_B [BIN_C …]
#   (PGURL=postgres://postgres@127.0.0.1:5499, a running server with fsync on;
#    build a binary per commit: git worktree add /tmp/a COMMIT && (cd /tmp/a && go build -o /tmp/pd.a ./cmd/paymentd))
#
# For each round and binary: a fresh database, stripe-mock, a callback
# receiver that answers 200, paymentd configured as perf/compare configures
# it (JSON logs, system log, metrics, callbacks), PAYMENTS payments created
# through the API, 200 warm-up events, then whload (../shared/whload) with
# -targets at each concurrency. It prints events/s, latency, and the CPU
# time PostgreSQL and paymentd spent per event, and paymentd's peak RSS.
set -euo pipefail
N=$1; CS=$2; DUR=$3; ROUNDS=$4; shift 4
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5499}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
WHLOAD_SRC=${WHLOAD_SRC:-$ROOT/../shared/whload}
T=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
(cd "$ROOT" && go build -o "$T/recv" ./internal/perftools/recv && go build -o "$T/mkpay" ./internal/perftools/mkpay)
(cd "$WHLOAD_SRC" && go build -o "$T/whload" .)
MOCK=$(command -v stripe-mock || echo "$(go env GOPATH)/bin/stripe-mock")
SECRET=whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n/+=' | head -c 40)
CBSECRET=whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')
KEY=pgk_ab_$(head -c 32 /dev/urandom | base64 | tr -d '\n/+=' | head -c 40)
ticks() { awk '{s += $14 + $15} END {print s + 0}' "$@" 2>/dev/null; }
pgpids() { for p in $(pgrep -x postgres); do echo /proc/$p/stat; done; }
for r in $(seq 1 "$ROUNDS"); do
  for BIN in "$@"; do
    psql "$PGURL/postgres" -qc 'DROP DATABASE IF EXISTS paymentd_ab' -c 'CREATE DATABASE paymentd_ab' >/dev/null
    "$MOCK" -http-port 12111 >/dev/null 2>&1 & SM=$!
    "$T/recv" 127.0.0.1:12112 & RV=$!
    sleep 1
    env -i PATH="$PATH" HOME="$HOME" PAYMENTD_ADDR=127.0.0.1:12113 DATABASE_URL="$PGURL/paymentd_ab" \
      STRIPE_SECRET_KEY=sk_test_ab0123456789012345678 STRIPE_PUBLISHABLE_KEY=pk_test_ab0123456789012345678 \
      STRIPE_WEBHOOK_SECRET="$SECRET" STRIPE_API_BASE=http://127.0.0.1:12111 CALLBACK_URL=http://127.0.0.1:12112/callbacks \
      CALLBACK_SECRET="$CBSECRET" PAYMENTD_API_KEYS="$KEY" PAYMENTD_LOG_FORMAT=json PAYMENTD_RATE_LIMIT=0 \
      "$BIN" > "$T/paymentd.log" 2>&1 & PD=$!
    until curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:12113/api/health/ready | grep -q 200; do
      kill -0 $PD 2>/dev/null || { tail -3 "$T/paymentd.log"; exit 1; }; sleep 0.3
    done
    "$T/mkpay" http://127.0.0.1:12113 "$KEY" "$N" "$T/targets"
    W=(-url http://127.0.0.1:12113/api/webhooks/stripe -secret "$SECRET" -events "$WHLOAD_SRC/events" -targets "$T/targets")
    "$T/whload" "${W[@]}" -c 8 -n 200 >/dev/null
    echo "$(basename "$BIN") round $r: peak RSS after creating $N payments and the warm-up: $(awk '/VmHWM/ {print $2}' /proc/$PD/status) kB"
    for C in $CS; do
      psql "$PGURL/postgres" -qc CHECKPOINT; sleep 1
      g0=$(ticks $(pgpids)); d0=$(ticks /proc/$PD/stat)
      out=$("$T/whload" "${W[@]}" -c "$C" -d "$DUR" | grep SUMMARY)
      g1=$(ticks $(pgpids)); d1=$(ticks /proc/$PD/stat)
      ok=$(grep -o ' ok=[0-9]*' <<<"$out" | cut -d= -f2)
      printf '%-24s round %s c=%-3s %8s ev/s %s %s  pg %5.3f ms/ev  paymentd %5.3f ms/ev  rss %s kB\n' \
        "$(basename "$BIN")" "$r" "$C" "$(grep -o 'ok_per_s=[0-9.]*' <<<"$out" | cut -d= -f2)" \
        "$(grep -o ' p50=[^ ]*' <<<"$out")" "$(grep -o ' p99=[^ ]*' <<<"$out")" \
        "$(bc -l <<<"($g1 - $g0) * 10 / $ok")" "$(bc -l <<<"($d1 - $d0) * 10 / $ok")" "$(awk '/VmHWM/ {print $2}' /proc/$PD/status)"
    done
    kill $PD $SM $RV; wait $PD $SM $RV 2>/dev/null || true
  done
done
