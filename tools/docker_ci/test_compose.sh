#!/usr/bin/env bash
# `make test-compose`: compose.yaml + compose.sim.yaml on a real Docker engine, then the stack's tests
# (tests/deploy/test_stack.py). Prints the build time, the time to all-healthy, the image size and each container's
# memory. Works where no container registry is reachable (CI): the pinned base images are then local stand-ins
# from Debian (tools/docker_ci/standins.sh).
#
# - installs Debian's docker.io, docker-compose and debootstrap where missing (as root);
# - starts a private dockerd (its own data root, exec root, socket and pid file under a temporary folder), so the
#   machine's own engine, if any, is never touched, and stops it at the end whatever happens (trap);
# - the stack's host ports are moved to free ports on 127.0.0.1 (the machine may run its own Mosquitto on 1883).
# Environment: BATSCHED_NO_REGISTRY=1 skips the pull of the base images (CI has no registry to ask);
# BATSCHED_STANDIN_CACHE keeps the debootstrap results (default ~/.cache/batsched/standins).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
PY=${PY:-.venv/bin/python}
started=$(date +%s)

# ---- the tools
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "test-compose: needs ${need[*]} (apt-get install ${need[*]}), and root to start a Docker engine" >&2
        exit 1
    fi
    echo "test-compose: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" iptables >/dev/null
fi
if [ "$(id -u)" != 0 ]; then
    echo "test-compose: starting a private Docker engine needs root" >&2
    exit 1
fi

# ---- a private engine, stopped on any exit
work=$(mktemp -d /tmp/batsched-engine.XXXXXX)
export DOCKER_HOST="unix://$work/docker.sock"
export BATSCHED_STACK_STATE="$work/stack"
stop_engine() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -s "$BATSCHED_STACK_STATE/compose-down" ]; then  # the test's own teardown did not run: take the stack down
        (cd "$BATSCHED_STACK_STATE/project" && timeout 120 bash "$BATSCHED_STACK_STATE/compose-down") >/dev/null 2>&1 || true
    fi
    if [ -s "$work/dockerd.pid" ]; then
        local pid
        pid=$(cat "$work/dockerd.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    # overlay mounts left by a killed engine would keep the folder busy
    grep -o " $work[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$work"
    echo "test-compose: engine stopped; took $(( $(date +%s) - started )) s in all"
    exit $rc
}
trap stop_engine EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
dockerd --data-root "$work/data" --exec-root "$work/exec" -H "$DOCKER_HOST" --pidfile "$work/dockerd.pid" \
    >"$work/dockerd.log" 2>&1 &
for _ in $(seq 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
done
docker info >/dev/null 2>&1 || { tail -20 "$work/dockerd.log" >&2; echo "test-compose: dockerd did not start" >&2; exit 1; }
echo "test-compose: private Docker engine $(docker version --format '{{.Server.Version}}') up"

# ---- the pinned base images: pulled where a registry answers, else local stand-ins
python_tag=$(sed -n 's/^ARG PYTHON_IMAGE=//p' Dockerfile)
mosquitto_tag=$(sed -n 's/^ *image: \(eclipse-mosquitto:[^ ]*\)$/\1/p' compose.yaml)
standin=0
for tag in "$python_tag" "$mosquitto_tag"; do
    if [ -z "${BATSCHED_NO_REGISTRY:-}" ] && timeout 300 docker pull -q "$tag" >/dev/null 2>&1; then
        echo "test-compose: pulled $tag"
    else
        standin=1
    fi
done
if [ "$standin" = 1 ]; then
    bash tools/docker_ci/standins.sh "$python_tag" "$mosquitto_tag"
    export BATSCHED_BUILD_ARGS
    BATSCHED_BUILD_ARGS=$(python3 tools/docker_ci/pip_build_args.py --cert-in-image /etc/ssl/certs/ca-certificates.crt)
    export BATSCHED_BASE_STANDIN=1
fi

# ---- `make test-fresh`: the README's make test in a fresh container instead of the stack
if [ "${1:-}" = "--fresh-make-test" ]; then
    bash tools/docker_ci/fresh_make_test.sh
    exit $?
fi

# ---- `make image-size`: the image alone, its size and where it goes
if [ "${1:-}" = "--image-size" ]; then
    bash tools/docker_ci/image_size.sh
    exit $?
fi

# ---- the stack and its tests
export BATSCHED_STACK_TESTS=1
mkdir -p "$BATSCHED_STACK_STATE"
set +e
"$PY" -m pytest -q -p no:cacheprovider -p no:xdist --timeout 1800 -m compose tests/deploy/test_stack.py "$@"
rc=$?
set -e
"$PY" - "$BATSCHED_STACK_STATE/figures.json" <<'PY'
import json, sys
from pathlib import Path
path = Path(sys.argv[1])
if not path.exists():
    sys.exit(0)
f = json.loads(path.read_text())
print("test-compose figures:")
for key in ("build_s", "up_to_healthy_s", "second_up_to_healthy_s", "executor_stop_s"):
    if key in f:
        print(f"  {key:<24} {f[key]} s")
if "image_mb" in f:
    print(f"  image                    {f['image_mb']} MB ({f['image_layers_over_base_mb']} MB over the base, "
          f"{f['base_image']} {f['base_image_mb']} MB)")
for name, mem in sorted(f.get("memory", {}).items()):
    print(f"  memory {name:<17} {mem}")
PY
exit $rc
