#!/usr/bin/env bash
# The README's test command runs this: start a real Mongo-wire server when none is given, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
if [[ -z "${ACTS_TEST_MONGODB_URI:-}" && -x .ci/mongo/start.sh ]]; then
  # start.sh prints `export ACTS_TEST_MONGODB_URI=...`; without Python 3.13 the Mongo tests skip loudly.
  if out=$(bash .ci/mongo/start.sh 2>.ci/mongo/start.log); then
    eval "$out"
    echo "Mongo-wire server: $ACTS_TEST_MONGODB_URI"
  else
    echo "WARNING: Mongo-wire server did not start (see .ci/mongo/start.log); Mongo tests will skip" >&2
    cat .ci/mongo/start.log >&2 || true
  fi
fi
set +e
"$BIN/python" -m pytest "$@"
status=$?
set -e
if [[ -n "${ACTS_MONGO_PID:-}" ]]; then kill "$ACTS_MONGO_PID" 2>/dev/null || true; fi
exit $status
