#!/usr/bin/env bash
# Runs `go test` with one DynamoDB Local shared by every test binary (each test still gets its
# own randomly prefixed tables), instead of one Java process per package.
set -euo pipefail
dir="${TRIGGER_DYNAMODB_LOCAL_DIR:-$(pwd)/.cache/dynamodb-local}"
[ -f "$dir/DynamoDBLocal.jar" ] || { echo "DynamoDB Local missing at $dir: run make dynamodb-local" >&2; exit 1; }
command -v java >/dev/null || { echo "java 17+ is needed for DynamoDB Local" >&2; exit 1; }

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# The port comes from below the kernel's ephemeral range, where no outgoing connection can take
# it while Java starts; from 20000, clear of the fixed ports `make run` uses.
read -r eph _ 2>/dev/null </proc/sys/net/ipv4/ip_local_port_range || eph=32768
[[ $eph =~ ^[0-9]+$ ]] || eph=32768
span=$((eph - 20000))
((span > 0)) || span=12768
log=$(mktemp)
pid=
stop() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -f "$log"
}
trap stop EXIT

# start runs DynamoDB Local on port $1 and waits until it answers; it fails, with pid cleared,
# if Java exits first.
start() {
  java -Xmx2g -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
    -inMemory -disableTelemetry -port "$1" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    # Answering is not enough: it must be our Java that answers, still running.
    if up "$1" && kill -0 "$pid" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      pid=
      return 1
    fi
    sleep 0.1
  done
  up "$1" && kill -0 "$pid" 2>/dev/null
}

# Another process may still bind the port before Java does: then start again on another.
for attempt in 1 2 3; do
  port=$((20000 + RANDOM % span))
  while up "$port"; do port=$((20000 + RANDOM % span)); done
  if start "$port"; then break; fi
  if [ -z "$pid" ] && [ "$attempt" -lt 3 ] && grep -qi 'address already in use' "$log"; then
    echo "DynamoDB Local: port $port was taken meanwhile; trying another" >&2
    continue
  fi
  echo "DynamoDB Local did not start" >&2
  cat "$log" >&2
  exit 1
done

status=0
TRIGGER_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port" go test "$@" || status=$?
exit "$status"
