#!/usr/bin/env bash
# Install (once) and start the Mongo-wire test server; prints shell exports for the caller to eval:
#   export ACTS_TEST_MONGODB_URI=mongodb://127.0.0.1:PORT/...   export ACTS_MONGO_PID=PID
# Needs Python >= 3.13 (mongoeco's requirement): $ACTS_PYTHON313, then pyenv's 3.13, then python3.13.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${ACTS_MONGO_VENV:-$here/.venv}"
state="${ACTS_MONGO_STATE:-$(mktemp -d)}"
py="${ACTS_PYTHON313:-}"
if [[ -z "$py" ]]; then
  for candidate in "$(pyenv root 2>/dev/null)/versions/"3.13*/bin/python3 "$(command -v python3.13 || true)"; do
    if [[ -x "$candidate" ]]; then py="$candidate"; break; fi
  done
fi
if [[ -z "$py" ]]; then echo "no Python 3.13 found (set ACTS_PYTHON313)" >&2; exit 3; fi
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import mongoeco" 2>/dev/null; then
  "$py" -m venv "$venv" >&2
  # pymongo provides the bson codec the wire server needs.
  "$venv/bin/pip" install -q --disable-pip-version-check "mongoeco>=4.11,<5" pymongo >&2
fi
uri_file="$state/uri"
rm -f "$uri_file"
nohup "$venv/bin/python" "$here/server.py" "$state/mongo.sqlite3" "$uri_file" >"$state/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if [[ -s "$uri_file" ]]; then
    echo "export ACTS_TEST_MONGODB_URI='$(cat "$uri_file")'"
    echo "export ACTS_MONGO_PID=$pid"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
  sleep 0.1
done
echo "Mongo-wire server did not start:" >&2; cat "$state/server.log" >&2; kill "$pid" 2>/dev/null || true; exit 4
