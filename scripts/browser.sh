#!/usr/bin/env bash
# Makes sure Debian's Chromium is on this machine for the report's browser test
# (tests/e2e/report_browser.rs): installs it with apt-get when it is missing and
# this runs as root. The last stdout line is "chromium=<path>" when it is there,
# else "chromium=" after a loud message on stderr (the browser half of the test
# is then skipped, not failed).
set -uo pipefail

found() { command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null; }

if [[ -z "$(found)" ]] && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log="$(mktemp)"
    echo "installing Debian's chromium (apt-get) for the report's browser test ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends chromium >"$log" 2>&1; then
        apt-get update >>"$log" 2>&1 && apt-get install -y --no-install-recommends chromium >>"$log" 2>&1 \
            || tail -n 20 "$log" >&2
    fi
    rm -f "$log"
fi

path="$(found)"
if [[ -z "$path" ]]; then
    {
        echo
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        echo "!!! NO BROWSER: Chromium is not installed and could not be installed here."
        echo "!!! The report's browser test (tests/e2e/report_browser.rs) is SKIPPED."
        echo "!!! Install Debian's chromium package (apt-get install chromium) to run it."
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        echo
    } >&2
fi
echo "chromium=$path"
