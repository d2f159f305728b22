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

# apt_install PACKAGE...: Debian's packages, as root or through sudo, asking nothing.
APT_UPDATED=
apt_install() {
  local sudo=()
  if [ "$(id -u)" != 0 ]; then sudo=(sudo -n); fi
  if [ -z "$APT_UPDATED" ]; then
    "${sudo[@]}" apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" \
    >/dev/null
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
  say "installing python-socketio (a client that must reconnect after a restart)"
  if [ ! -x "$TOOLS/sio/bin/python" ] || ! "$TOOLS/sio/bin/python" -c 'import socketio' 2>/dev/null; then
    python3 -m venv "$TOOLS/sio"
    "$TOOLS/sio/bin/pip" install --quiet --disable-pip-version-check 'python-socketio[client]==5.18.1'
  fi
  export TEST_PYTHON_SOCKETIO="$TOOLS/sio/bin/python"
  say "installing Redis (Debian's redis-server, and redis-cli to make a Redis Cluster)"
  if ! command -v redis-server >/dev/null; then apt_install redis-server; fi
  if ! command -v redis-cli >/dev/null; then apt_install redis-tools; fi
  export TEST_REDIS_SERVER
  TEST_REDIS_SERVER=$(command -v redis-server)
  say "installing the JavaScript packages (socket.io-client 2 and 4, puppeteer-core, the bench baseline)"
  (cd "$ROOT/tests/js" && npm ci --no-audit --no-fund --loglevel=error)
}

# Debian's Chromium for the browser tests (puppeteer-core drives it; it downloads none).
install_balancer() {
  say "installing HAProxy (Debian's, the load balancer in front of two nodes)"
  if ! command -v haproxy >/dev/null && [ ! -x /usr/sbin/haproxy ]; then apt_install haproxy; fi
  export TEST_HAPROXY
  TEST_HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
}

install_browser() {
  say "installing Chromium (Debian's, for the browser tests)"
  if [ ! -x /usr/bin/chromium ]; then apt_install chromium; fi
  export TEST_CHROMIUM=/usr/bin/chromium
}

# start_database [NAME]: starts a database (its log is $LOGS/NAME.log) and exports
# TEST_MONGODB_URI.
start_database() {
  local name=${1:-database}
  say "starting the database ($name)"
  local port
  port=$(free_port)
  "$TOOLS/venv/bin/secantusd-py" --host 127.0.0.1 --port "$port" --storage-path :memory: \
    --log-level WARNING >"$LOGS/$name.log" 2>&1 &
  PIDS+=($!)
  wait_for_port "$port" "$name" "$!"
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

# Starts the recording FCM stand-in; exports FAKE_FCM_URL and FAKE_FCM_CREDENTIALS.
start_fcm_fake() {
  say "starting the FCM stand-in"
  local port
  port=$(free_port)
  export FAKE_FCM_CREDENTIALS="$LOGS/fcm-service-account.json"
  rm -f "$FAKE_FCM_CREDENTIALS"
  node "$ROOT/tests/js/fake-fcm.mjs" "$port" "$FAKE_FCM_CREDENTIALS" >"$LOGS/fcm.log" 2>&1 &
  PIDS+=($!)
  wait_for_port "$port" fcm "$!"
  export FAKE_FCM_URL="http://127.0.0.1:$port"
}

# Starts the recording Twilio Verify stand-in; exports FAKE_SMS_URL.
start_sms_fake() {
  say "starting the SMS stand-in"
  local port
  port=$(free_port)
  node "$ROOT/tests/js/fake-sms.mjs" "$port" >"$LOGS/sms.log" 2>&1 &
  PIDS+=($!)
  wait_for_port "$port" sms "$!"
  export FAKE_SMS_URL="http://127.0.0.1:$port"
}

# public_bucket NAME: a bucket anyone may read from, as photo URLs are in production (a public
# bucket or a CDN in front of one). boto3 comes with moto.
public_bucket() {
  "$TOOLS/moto/bin/python" - "$TEST_S3_ENDPOINT" "$1" <<'PY'
import json, sys
import boto3
endpoint, bucket = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
s3.create_bucket(Bucket=bucket)
s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
     "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
PY
}

# start_palaver BINARY DATABASE_NAME: starts a server on the test database, sets APP_PORT.
# Pushes go to the FCM stand-in and photos to the S3 stand-in when those were started.
start_palaver() {
  APP_PORT=$(free_port)
  local extra=()
  if [ -n "${FAKE_FCM_URL:-}" ]; then
    extra+=(FCM_CREDENTIALS="$FAKE_FCM_CREDENTIALS" FCM_BASE_URL="$FAKE_FCM_URL")
  fi
  if [ -n "${FAKE_SMS_URL:-}" ]; then
    extra+=(TWILIO_ACCOUNT_SID=AC-test TWILIO_AUTH_TOKEN=test-token
      TWILIO_VERIFY_SERVICE_SID=VA-test TWILIO_BASE_URL="$FAKE_SMS_URL")
  fi
  if [ -n "${TEST_S3_ENDPOINT:-}" ]; then
    public_bucket "palaver-js-$$"
    extra+=(S3_BUCKET="palaver-js-$$" S3_ENDPOINT="$TEST_S3_ENDPOINT" AWS_ACCESS_KEY_ID=test
      AWS_SECRET_ACCESS_KEY=test)
  fi
  # Every test client comes from 127.0.0.1: a limit on accounts per address would be one on
  # the whole run. The limit itself is tested on servers of its own.
  env HOST=127.0.0.1 PORT="$APP_PORT" MONGODB_URI="$TEST_MONGODB_URI" MONGODB_DATABASE="$2" \
    JWT_SECRET="tests-$$" DATA_DIR="$(mktemp -d)" RUST_LOG="${RUST_LOG:-info}" \
    SIGN_UPS_PER_MINUTE=1000000 "${extra[@]}" "$1" >"$LOGS/palaver.log" 2>&1 &
  APP_PID=$!
  PIDS+=($APP_PID)
  wait_for_port "$APP_PORT" palaver "$APP_PID"
}
