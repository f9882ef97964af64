#!/usr/bin/env bash
# Install the real tracking libraries the server's integration tests drive.
# These are test tools, not product dependencies. Called by .ci/run; safe to
# run again (it skips what is already installed).
#
#   .venv-clients/segment24   segment-analytics-python 2.4.x
#   .venv-clients/segment236  segment-analytics-python 2.3.6 (sends writeKey in the body only)
#   .venv-clients/rudder      rudder-sdk-python 2.1.x (Basic auth only, gzip by default)
#   tests/clients/node        @segment/analytics-node (npm install)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${PYTHON:-python3}

venv() { # name, pip spec, import check
    local dir="$root/.venv-clients/$1"
    if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "$3" 2>/dev/null; then
        echo "install-test-clients: $1 already installed"
        return
    fi
    "$python" -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$2"
    "$dir/bin/python" -c "$3"
    echo "install-test-clients: installed $2 in .venv-clients/$1"
}

venv segment24 'segment-analytics-python>=2.4,<2.5' 'import segment.analytics'
venv segment236 'segment-analytics-python==2.3.6' 'import segment.analytics'
venv rudder 'rudder-sdk-python>=2.1,<2.2' 'import rudderstack.analytics'

if command -v npm >/dev/null; then
    (cd tests/clients/node && npm install --no-audit --no-fund --loglevel=error)
    echo "install-test-clients: installed @segment/analytics-node in tests/clients/node"
else
    echo "install-test-clients: npm not found; the Node client test will be skipped" >&2
fi
