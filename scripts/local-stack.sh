#!/usr/bin/env bash
# Runs the whole data path on this machine: nats-server (JetStream), `dfn gateway`, `dfn runner` with the
# example webhook function, and a stand-in destination API that prints what it receives.
#   npm run local            keep running; send events with the curl line it prints; Ctrl-C stops all
#   npm run local -- --once  send one event through, show it arrive, stop (a smoke test of the setup)
# Needs `npm run setup` first. Ports: NATS 4222, gateway 8080, destination 8787 (override with env
# DFN_LOCAL_NATS_PORT, DFN_LOCAL_GATEWAY_PORT, DFN_LOCAL_DEST_PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.env
TOOLS_DIR="${DFN_TOOLS_DIR:-$DFN_TOOLS_DIR_DEFAULT}"
NATS_SERVER="$TOOLS_DIR/nats-server-$NATS_SERVER_VERSION/nats-server"
NATS_PORT="${DFN_LOCAL_NATS_PORT:-4222}"
GATEWAY_PORT="${DFN_LOCAL_GATEWAY_PORT:-8080}"
DEST_PORT="${DFN_LOCAL_DEST_PORT:-8787}"
WRITE_KEY=local-write-key

[ -x "$NATS_SERVER" ] || { echo "local: nats-server not found at $NATS_SERVER; run npm run setup first" >&2; exit 1; }
[ -f dist/cli/main.js ] || { echo "local: dfn is not built; run npm run setup first" >&2; exit 1; }

WORK=$(mktemp -d -t dfn-local-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_http URL WHAT: until URL answers, and the process just started (the last of pids) still runs,
# so that a port already taken by something else is noticed.
wait_http() {
  for _ in $(seq 1 200); do
    kill -0 "${pids[-1]}" 2>/dev/null || break
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "local: $2 did not come up; logs are in $WORK:" >&2
  tail -n 5 "$WORK"/*.log >&2
  exit 1
}

echo "==> nats-server with JetStream on 127.0.0.1:$NATS_PORT"
"$NATS_SERVER" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$WORK/jetstream" >"$WORK/nats.log" 2>&1 &
pids+=($!)

echo "==> destination stand-in on 127.0.0.1:$DEST_PORT (prints each request)"
node -e '
  require("http").createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      console.log(`[destination] ${req.method} ${req.url} ${body}`);
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{\"ok\":true}");
    });
  }).listen(Number(process.argv[1]), "127.0.0.1");
' "$DEST_PORT" >"$WORK/destination.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$DEST_PORT/" "the destination stand-in (is port $DEST_PORT free?)"
: >"$WORK/destination.log" # forget the readiness probe's request

echo "==> dfn gateway on 127.0.0.1:$GATEWAY_PORT (write key $WRITE_KEY → source web)"
echo "$WRITE_KEY: web" >"$WORK/write-keys.yaml"
./bin/dfn.js gateway --host 127.0.0.1 --port "$GATEWAY_PORT" --write-keys "$WORK/write-keys.yaml" \
  --nats-url "nats://127.0.0.1:$NATS_PORT" --create-streams >"$WORK/gateway.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$GATEWAY_PORT/readyz" "the gateway (is port $GATEWAY_PORT free? is nats-server up?)"

echo "==> dfn runner: examples/webhook/function.js for source web"
mkdir -p "$WORK/runner/secrets"
cp examples/webhook/function.js "$WORK/runner/function.js"
printf '{ "endpoint": "http://127.0.0.1:%s" }\n' "$DEST_PORT" >"$WORK/runner/settings.json"
printf 'sk_local_demo' >"$WORK/runner/secrets/apiKey"
cat >"$WORK/runner/config.yaml" <<YAML
apiVersion: dfn.dev/v1alpha1
kind: RunnerConfig
instance: { namespace: default, name: webhook, source: web }
function: { name: webhook, revision: local }
nats: { url: "nats://127.0.0.1:$NATS_PORT", ensureTopology: true }
network: { allowPrivateNetwork: true }
http: { host: 127.0.0.1, port: 0 }
YAML
./bin/dfn.js runner --config "$WORK/runner" >"$WORK/runner.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do grep -q '"msg":"consuming"' "$WORK/runner.log" 2>/dev/null && break; sleep 0.1; done
grep -q '"msg":"consuming"' "$WORK/runner.log" || { echo "local: the runner did not start:" >&2; cat "$WORK/runner.log" >&2; exit 1; }

send='curl -sS -u '"$WRITE_KEY"': -H "content-type: application/json" -d '"'"'{"userId":"u1","event":"Signed Up","properties":{"plan":"pro"}}'"'"' http://127.0.0.1:'"$GATEWAY_PORT"'/v1/track'
echo
echo "Ready. Send an event:"
echo "  $send"
echo "Recent failed deliveries: ./bin/dfn.js deliveries default/webhook --nats-url nats://127.0.0.1:$NATS_PORT"
echo "Logs: $WORK/{gateway,runner,nats}.log; requests the destination receives are printed below."
echo

if [ "${1:-}" = "--once" ]; then
  echo "gateway answered: $(eval "$send")"
  for _ in $(seq 1 150); do
    if grep -q '^\[destination\]' "$WORK/destination.log"; then
      cat "$WORK/destination.log"
      echo "delivered through gateway → JetStream → runner → destination"
      exit 0
    fi
    sleep 0.1
  done
  echo "local: the event did not reach the destination; runner log:" >&2
  cat "$WORK/runner.log" >&2
  exit 1
fi
tail -n +1 -f "$WORK/destination.log" &
pids+=($!)
wait
