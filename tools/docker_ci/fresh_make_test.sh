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
git ls-files -z | xargs -0 -I{} cp --parents {} "$ctx" 2>/dev/null || tar -c --exclude=.venv --exclude=.git . | tar -x -C "$ctx"
cat > "$ctx/.fresh.Dockerfile" <<DOCKERFILE
FROM $python_tag
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null \
 && useradd -m tester
COPY --chown=tester . /home/tester/batsched
USER tester
WORKDIR /home/tester/batsched
DOCKERFILE
printf '.venv\n.git\nartifacts\n' > "$ctx/.dockerignore"
args=()
while IFS= read -r line; do [ -n "$line" ] && args+=(--build-arg "$line"); done <<< "${BATSCHED_BUILD_ARGS:-}"
docker build -q -t batsched-fresh -f "$ctx/.fresh.Dockerfile" "$ctx" >/dev/null 2>"$ctx/build.err" || { cat "$ctx/build.err" >&2; exit 1; }
env_args=()
for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_CERT PIP_DEFAULT_TIMEOUT; do
    value=$(printf '%s\n' "${BATSCHED_BUILD_ARGS:-}" | sed -n "s/^$name=//p")
    [ -n "$value" ] && env_args+=(-e "$name=$value")
done
docker run --rm "${env_args[@]}" batsched-fresh make test
