#!/usr/bin/env bash
# Runs every test. On a fresh machine with Rust, Python 3 and Node it installs what the tests
# need (SecantusDB from PyPI, socket.io-client from npm), starts it on 127.0.0.1 only, runs the
# Rust tests and the JavaScript client tests, and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/target/test-tools
LOGS=$ROOT/target/test-logs
mkdir -p "$TOOLS" "$LOGS"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

say() { printf '\n==> %s\n' "$*"; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() {  # port, name, pid
  for _ in $(seq 1 300); do
    if ! kill -0 "$3" 2>/dev/null; then echo "$2 exited; its log:"; cat "$LOGS/$2.log"; exit 1; fi
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.5)" 2>/dev/null; then return; fi
    sleep 0.2
  done
  echo "$2 did not listen on port $1"; cat "$LOGS/$2.log"; exit 1
}

say "installing the MongoDB-compatible database (SecantusDB) for the tests"
if [ ! -x "$TOOLS/venv/bin/secantusd-py" ]; then
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check SecantusDB==0.7.0b3
fi

say "installing the JavaScript clients (socket.io-client 2 and 4)"
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error)

say "building"
cargo build --workspace --all-targets --locked

say "starting the database"
DB_PORT=$(free_port)
"$TOOLS/venv/bin/secantusd-py" --host 127.0.0.1 --port "$DB_PORT" --storage-path :memory: \
  --log-level WARNING >"$LOGS/database.log" 2>&1 &
PIDS+=($!)
wait_for_port "$DB_PORT" database "$!"
export TEST_MONGODB_URI="mongodb://127.0.0.1:$DB_PORT/?directConnection=true"

say "Rust tests"
cargo test --workspace --locked

say "starting Palaver for the JavaScript tests"
APP_PORT=$(free_port)
HOST=127.0.0.1 PORT=$APP_PORT MONGODB_URI="$TEST_MONGODB_URI" MONGODB_DATABASE="js_tests_$$" \
  JWT_SECRET="js-tests-$$" DATA_DIR="$(mktemp -d)" RUST_LOG=info \
  "$ROOT/target/debug/palaver" >"$LOGS/palaver.log" 2>&1 &
PIDS+=($!)
wait_for_port "$APP_PORT" palaver "$!"

say "JavaScript tests (real socket.io-client)"
(cd tests/js && PALAVER_URL="http://127.0.0.1:$APP_PORT" node --test --test-concurrency=1)
