#!/usr/bin/env bash
# Start or stop podman's Docker-compatible API on a unix socket inside STATE_DIR.
#
#   scripts/containers/podman_service.sh start STATE_DIR   # -> STATE_DIR/podman.sock, podman.pid
#   scripts/containers/podman_service.sh stop  STATE_DIR
#
# Clients: DOCKER_HOST=unix://STATE_DIR/podman.sock (docker-py, moto's Batch, the docker CLI).
# A unix socket, never TCP: nothing listens on the network.
set -euo pipefail
if [[ $# -ne 2 || ! $1 =~ ^(start|stop)$ ]]; then
    echo "usage: $0 start|stop STATE_DIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
action=$1
state=$(mkdir -p "$2" && cd "$2" && pwd)
sock=$state/podman.sock
pidfile=$state/podman.pid

case $action in
start)
    if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "podman_service.sh: already running, PID $(cat "$pidfile")" >&2
        exit 0
    fi
    eval "$("$here/podman_env.sh" "$state")"
    rm -f "$sock"
    # setsid: own process group, so the service outlives this shell and is stopped by PID.
    setsid podman system service --time=0 "unix://$sock" >"$state/podman-service.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 1 100); do
        if [[ -S $sock ]] && python3 - "$sock" <<'PY' 2>/dev/null; then
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n"); sys.exit(0 if b"OK" in s.recv(4096) else 1)
PY
            echo "podman_service.sh: serving the Docker API on unix://$sock (PID $(cat "$pidfile"))" >&2
            exit 0
        fi
        kill -0 "$(cat "$pidfile")" 2>/dev/null || break
        sleep 0.2
    done
    echo "podman_service.sh: the service did not come up; log:" >&2
    tail -n 20 "$state/podman-service.log" >&2
    exit 1
    ;;
stop)
    "$here/stop_pidfile.sh" "$pidfile"
    rm -f "$sock"
    echo "podman_service.sh: stopped" >&2
    ;;
esac
