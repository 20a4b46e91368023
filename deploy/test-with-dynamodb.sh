#!/usr/bin/env bash
# Runs `go test` with one DynamoDB Local shared by every test binary (each test still gets its
# own randomly prefixed tables), instead of one Java process per package.
set -euo pipefail
dir="${TRIGGER_DYNAMODB_LOCAL_DIR:-$(pwd)/.cache/dynamodb-local}"
[ -f "$dir/DynamoDBLocal.jar" ] || { echo "DynamoDB Local missing at $dir: run make dynamodb-local" >&2; exit 1; }
command -v java >/dev/null || { echo "java 17+ is needed for DynamoDB Local" >&2; exit 1; }

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=$((20000 + RANDOM % 20000))
while up "$port"; do port=$((20000 + RANDOM % 20000)); done
log=$(mktemp)
java -Xmx2g -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
  -inMemory -disableTelemetry -port "$port" >"$log" 2>&1 &
pid=$!
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"; }
trap stop EXIT

for _ in $(seq 1 300); do
  if up "$port"; then break; fi
  kill -0 $pid 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
up "$port" || { echo "DynamoDB Local did not start" >&2; cat "$log" >&2; exit 1; }

status=0
TRIGGER_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port" go test "$@" || status=$?
exit "$status"
