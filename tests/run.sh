#!/usr/bin/env bash
# Runs every test. On a fresh machine with Rust, Python 3 and Node it installs what the tests
# need (SecantusDB and moto from PyPI, Debian's redis-server, haproxy and chromium, socket.io-client and
# puppeteer-core from npm), starts them on 127.0.0.1 only, runs the Rust tests and the
# JavaScript client tests (browser apps among them, in headless Chromium), and stops
# everything it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

install_tools
install_browser
install_balancer
say "building"
cargo build --workspace --all-targets --locked
start_database
start_s3
start_sms_fake

say "Rust tests"
TEST_SECANTUSD="$TOOLS/venv/bin/secantusd-py" cargo test --workspace --locked

# A database of their own: SecantusDB slows down as the Rust tests' databases pile up, and the
# JavaScript tests include timing-sensitive ones (a flood within the rate limit's window).
start_database js-database
start_fcm_fake
say "starting Palaver for the JavaScript tests"
start_palaver "$ROOT/target/debug/palaver" "js_tests_$$"
say "JavaScript tests (real socket.io-client)"
# The many-node tests start their own Redis and more nodes from the same binary.
js_tests() { # the files named, or every one
  (cd tests/js && if [ $# -eq 0 ]; then set -- ./*.test.mjs; fi &&
    PALAVER_URL="http://127.0.0.1:$APP_PORT" PALAVER_DATABASE="js_tests_$$" \
    FAKE_FCM_URL="$FAKE_FCM_URL" FAKE_SMS_URL="$FAKE_SMS_URL" \
    FAKE_FCM_CREDENTIALS="$FAKE_FCM_CREDENTIALS" PALAVER_BIN="$ROOT/target/debug/palaver" \
    TEST_LOGS="$LOGS" node --test --test-concurrency=1 "$@")
}
js_tests
say "the many-node tests again (balancer and Admin UI included), on a three-master Redis Cluster"
TEST_REDIS_CLUSTER=1 js_tests multinode.test.mjs routing.test.mjs admin.test.mjs balancer.test.mjs
