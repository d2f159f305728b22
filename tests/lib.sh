# Shared by tests/run.sh and tests/bench.sh: install the test tools, start them on 127.0.0.1,
# stop them on exit.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
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

wait_for_port() {  # port, name (its log is $LOGS/name.log), pid
  for _ in $(seq 1 300); do
    if ! kill -0 "$3" 2>/dev/null; then echo "$2 exited; its log:"; cat "$LOGS/$2.log"; exit 1; fi
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.5)" 2>/dev/null; then return; fi
    sleep 0.2
  done
  echo "$2 did not listen on port $1"; cat "$LOGS/$2.log"; exit 1
}

install_tools() {
  say "installing the MongoDB-compatible database (SecantusDB)"
  if [ ! -x "$TOOLS/venv/bin/secantusd-py" ]; then
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check SecantusDB==0.7.0b3
  fi
  say "installing the S3 stand-in (moto)"
  if [ ! -x "$TOOLS/moto/bin/moto_server" ]; then
    python3 -m venv "$TOOLS/moto"
    "$TOOLS/moto/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
  fi
  say "installing the JavaScript packages (socket.io-client 2 and 4, and the bench baseline)"
  (cd "$ROOT/tests/js" && npm ci --no-audit --no-fund --loglevel=error)
}

# Starts the database and exports TEST_MONGODB_URI.
start_database() {
  say "starting the database"
  local port
  port=$(free_port)
  "$TOOLS/venv/bin/secantusd-py" --host 127.0.0.1 --port "$port" --storage-path :memory: \
    --log-level WARNING >"$LOGS/database.log" 2>&1 &
  PIDS+=($!)
  wait_for_port "$port" database "$!"
  export TEST_MONGODB_URI="mongodb://127.0.0.1:$port/?directConnection=true"
}

# Starts moto's S3 server and exports TEST_S3_ENDPOINT.
start_s3() {
  say "starting the S3 stand-in"
  local port
  port=$(free_port)
  "$TOOLS/moto/bin/moto_server" -H 127.0.0.1 -p "$port" >"$LOGS/s3.log" 2>&1 &
  PIDS+=($!)
  wait_for_port "$port" s3 "$!"
  export TEST_S3_ENDPOINT="http://127.0.0.1:$port"
}

# start_palaver BINARY DATABASE_NAME: starts a server on the test database, sets APP_PORT.
start_palaver() {
  APP_PORT=$(free_port)
  HOST=127.0.0.1 PORT=$APP_PORT MONGODB_URI="$TEST_MONGODB_URI" MONGODB_DATABASE="$2" \
    JWT_SECRET="tests-$$" DATA_DIR="$(mktemp -d)" RUST_LOG=${RUST_LOG:-info} \
    "$1" >"$LOGS/palaver.log" 2>&1 &
  APP_PID=$!
  PIDS+=($APP_PID)
  wait_for_port "$APP_PORT" palaver "$APP_PID"
}
