#!/usr/bin/env bash
# Install Chromium from the machine's apt sources (Debian's package): the tests open report.html
# in it. Idempotent: skips apt when chromium is present. Without root it says so and exits 0:
# the browser tests then skip, naming this script.
set -euo pipefail
start=$(date +%s)
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install_chromium.sh: not root, chromium not installed: the browser tests will skip" >&2
        exit 0
    fi
    "$(dirname "$0")/apt_install.sh" chromium
fi
# the package's wrapper script prints a shell warning on some machines: only the version line
(chromium --version 2>/dev/null || chromium-browser --version) | tail -1
echo "install_chromium.sh: done in $(($(date +%s) - start)) s" >&2
