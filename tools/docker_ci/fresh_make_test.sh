#!/usr/bin/env bash
# `make test-fresh`: the README's `make test` on a fresh Debian bookworm with the README's prerequisites only
# (the `apt-get install …` line of its "Two commands" section), in a container of the private engine that
# test_compose.sh starts. Proves that nothing else (Chromium, Node.js, faketime, docker-compose, …) is needed:
# those tests skip, each missing tool named in one line.
set -euo pipefail
cd "$(dirname "$0")/../.."
python_tag=$(sed -n 's/^ARG PYTHON_IMAGE=//p' Dockerfile)
packages=$(grep -o 'apt-get install [a-z0-9 .+-]*' README.md | head -1 | sed 's/^apt-get install //')
[ -n "$packages" ] || { echo "test-fresh: no apt-get install line in README.md" >&2; exit 1; }
echo "test-fresh: README prerequisites: $packages"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# the machine: Debian and the README's packages, a user of its own (the checkout goes in at run time)
cat > "$ctx/Dockerfile" <<DOCKERFILE
FROM $python_tag
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null \
 && useradd -m tester
USER tester
WORKDIR /home/tester
DOCKERFILE
docker build -q -t batsched-fresh "$ctx" >/dev/null 2>"$ctx/build.err" || { cat "$ctx/build.err" >&2; exit 1; }
env_args=()
for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_CERT PIP_DEFAULT_TIMEOUT; do
    value=$(printf '%s\n' "${BATSCHED_BUILD_ARGS:-}" | sed -n "s/^$name=//p")
    if [ -n "$value" ]; then env_args+=(-e "$name=$value"); fi
done
# the checkout's tracked files (what a clone has), unpacked by the user who runs the tests
git ls-files -z | tar --null -T - -c | docker run -i --rm "${env_args[@]}" batsched-fresh \
    sh -c 'mkdir batsched && tar -x -C batsched && cd batsched && make test'
