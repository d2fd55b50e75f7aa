#!/usr/bin/env bash
# Local stand-ins for the pinned base images, for machines that reach Debian's mirror but no container registry
# (CI). Each is Debian bookworm from debootstrap --variant=minbase, imported under the pinned tag, so the
# Dockerfile and compose.yaml build and run unchanged; a machine that can pull the real images never gets here.
#
#   standins.sh PYTHON_TAG MOSQUITTO_TAG          (DOCKER_HOST names the engine; run as root)
#
# - python stand-in: python3 (3.11, bookworm's), venv, ca-certificates, netbase, tzdata, as python:*-slim has;
#   the host's CA bundle replaces Debian's, so that pip verifies this network's TLS (the build is given
#   PIP_CERT pointing at it: tools/docker_ci/pip_build_args.py).
# - mosquitto stand-in: bookworm's mosquitto and its clients, with the eclipse-mosquitto image's paths.
# The mirror is the one this machine's apt uses (`apt-get indextargets`, else the sources files). Each root file
# system is cached as a tarball (BATSCHED_STANDIN_CACHE, default ~/.cache/batsched/standins), so a second run
# imports it in seconds.
set -euo pipefail

python_tag=${1:?usage: standins.sh PYTHON_TAG MOSQUITTO_TAG}
mosquitto_tag=${2:?usage: standins.sh PYTHON_TAG MOSQUITTO_TAG}
cache=${BATSCHED_STANDIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/batsched/standins}
suite=bookworm
mkdir -p "$cache"

mirror() {
    local uri
    uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null \
          | awk -v s="$suite" '$2 == s {print $1; exit}')
    if [ -z "$uri" ]; then  # no package lists yet: read the sources files (one-line and deb822 formats)
        uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
              | awk '/^deb / && !/security/ {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; exit}}
                     /^URIs:/ && !/security/ {print $2; exit}')
    fi
    [ -n "$uri" ] || { echo "standins: no Debian mirror in this machine's apt configuration" >&2; return 1; }
    echo "${uri%/}"
}

# rootfs NAME PACKAGES...: the cached tarball's path, made with debootstrap when missing.
rootfs() {
    local name=$1; shift
    local key tarball dir
    key=$(echo "$suite $*" | sha256sum | cut -c1-12)
    tarball="$cache/$name-$suite-$key.tar"
    if [ ! -s "$tarball" ]; then
        command -v debootstrap >/dev/null || { echo "standins: debootstrap is missing (apt-get install debootstrap)" >&2; return 1; }
        dir=$(mktemp -d)
        local pkgs
        pkgs=$(IFS=,; echo "$*")
        echo "standins: debootstrap $name ($pkgs) from $(mirror)" >&2
        if ! debootstrap --variant=minbase --include="$pkgs" "$suite" "$dir" "$(mirror)" > "$cache/$name.debootstrap.log" 2>&1; then
            tail -20 "$cache/$name.debootstrap.log" >&2; rm -rf "$dir"; return 1
        fi
        # what the slim images leave out too: package lists, caches, documentation
        rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/* "$dir"/var/cache/debconf/*-old \
               "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/var/log/*
        tar --numeric-owner -C "$dir" -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$dir"
    fi
    echo "$tarball"
}

have() { docker image inspect "$1" >/dev/null 2>&1; }
# docker build, quiet unless it fails (the legacy builder's deprecation notice is noise here)
build() { local out; out=$(docker build -q "$@" 2>&1) || { echo "$out" >&2; return 1; }; }

if ! have "$python_tag"; then
    tarball=$(rootfs python python3 python3-venv python-is-python3 ca-certificates netbase tzdata)
    ctx=$(mktemp -d)
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
    printf '%s\n' 'FROM batsched-standin/python-rootfs' \
        'COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt' \
        'ENV LANG=C.UTF-8' 'CMD ["python3"]' > "$ctx/Dockerfile"
    docker import "$tarball" batsched-standin/python-rootfs >/dev/null
    build -t "$python_tag" "$ctx"
    docker rmi batsched-standin/python-rootfs >/dev/null 2>&1 || true
    rm -rf "$ctx"
    echo "standins: $python_tag is a local stand-in ($(docker run --rm "$python_tag" python --version))"
fi

if ! have "$mosquitto_tag"; then
    tarball=$(rootfs mosquitto mosquitto mosquitto-clients)
    docker import \
        -c 'ENTRYPOINT []' -c 'CMD ["/usr/sbin/mosquitto", "-c", "/mosquitto/config/mosquitto.conf"]' \
        -c 'EXPOSE 1883' "$tarball" batsched-standin/mosquitto-rootfs >/dev/null
    ctx=$(mktemp -d)
    printf '%s\n' 'FROM batsched-standin/mosquitto-rootfs' \
        'RUN mkdir -p /mosquitto/config /mosquitto/data /mosquitto/log && chown -R mosquitto:mosquitto /mosquitto' \
        > "$ctx/Dockerfile"
    build -t "$mosquitto_tag" "$ctx"
    docker rmi batsched-standin/mosquitto-rootfs >/dev/null 2>&1 || true
    rm -rf "$ctx"
    echo "standins: $mosquitto_tag is a local stand-in ($(docker run --rm "$mosquitto_tag" mosquitto -h | head -1))"
fi
