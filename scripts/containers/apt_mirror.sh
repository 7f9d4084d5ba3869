#!/usr/bin/env bash
# Print the Debian mirror URL this machine's apt uses for SUITE (default bookworm), read from
# /etc/apt/sources.list (one-line style) or /etc/apt/sources.list.d/*.sources (deb822) and
# *.list. Only enabled `deb` entries whose suite is exactly SUITE count (not -security).
# Exits 1 when none is found. No host name is written in this repository: it comes from here.
# Env: APT_ETC (default /etc/apt), the folder read.
set -euo pipefail
suite=${1:-bookworm}
etc=${APT_ETC:-/etc/apt}
found=$(
    {
        # one-line style: deb [opts] URI SUITE COMPONENTS...
        cat "$etc/sources.list" "$etc"/sources.list.d/*.list 2>/dev/null \
            | sed -e 's/#.*//' -e 's/\[[^]]*\]//' \
            | awk -v s="$suite" '$1 == "deb" && $3 == s { print $2 }'
        # deb822 style: paragraphs with Types/URIs/Suites (and maybe Enabled: no)
        for f in "$etc"/sources.list.d/*.sources; do
            [[ -f $f ]] || continue
            awk -v s="$suite" '
                function flush() {
                    if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " s " "))
                        print uris
                    types = ""; uris = ""; suites = ""; enabled = ""
                }
                /^[[:space:]]*#/ { next }
                /^[[:space:]]*$/ { flush(); next }
                tolower($1) == "types:"   { $1 = ""; types = substr($0, 2) }
                tolower($1) == "uris:"    { $1 = ""; uris = substr($0, 2) }
                tolower($1) == "suites:"  { $1 = ""; suites = substr($0, 2) }
                tolower($1) == "enabled:" { enabled = tolower($2) }
                END { flush() }
            ' "$f" | tr ' ' '\n'
        done
    } | grep -E '^(https?|file)://' | head -n 1
) || true
if [[ -z $found ]]; then
    echo "apt_mirror.sh: no enabled 'deb' source for suite $suite in $etc" >&2
    exit 1
fi
echo "$found"
