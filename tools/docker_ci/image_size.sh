#!/usr/bin/env bash
# `make image-size`: build the image alone on the private engine that test_compose.sh starts and print its size,
# the base's, the layers over the base, the biggest packages in its venv and the simulators' image (target sim) (no stack, no tests: about a minute).
set -euo pipefail
cd "$(dirname "$0")/../.."
python_tag=$(sed -n 's/^ARG PYTHON_IMAGE=//p' Dockerfile)
tag=batsched:image-size
args=()
while IFS= read -r line; do
    if [ -n "$line" ]; then args+=(--build-arg "$line"); fi
done <<<"${BATSCHED_BUILD_ARGS:-}"
started=$(date +%s)
docker build -q "${args[@]}" -t "$tag" . >/dev/null
built=$(( $(date +%s) - started ))
mb() { echo $(( $(docker image inspect -f '{{.Size}}' "$1") / 1000000 )); }
image=$(mb "$tag")
base=$(mb "$python_tag")
kind=pulled
if [ -n "${BATSCHED_BASE_STANDIN:-}" ]; then kind=stand-in; fi
echo "image-size: built in ${built} s"
echo "image-size: image ${image} MB = ${base} MB base ($python_tag, $kind) + $(( image - base )) MB of ours"
if [ "$kind" = stand-in ]; then
    # The real base's on-disk size as docker-library's repo-info records it for python:3.11.16-slim-bookworm
    # (repos/python/local/3.11-slim-bookworm.md, "Virtual Size ~ 130.01 Mb"): what a user's pull adds under our layers.
    real_base=130
    echo "image-size: with the real base (${real_base} MB, docker-library's record): $(( real_base + image - base )) MB"
fi
docker build -q "${args[@]}" --target sim -t batsched-sim:image-size . >/dev/null
echo "image-size: the simulators' image (target sim, the same plus pandas): $(mb batsched-sim:image-size) MB"
echo "image-size: layers over the base (MB):"
docker history --no-trunc --format '{{.Size}}\t{{.CreatedBy}}' "$tag" \
    | awk -F'\t' '$1 != "0B" {print "  " $1 "\t" substr($2, 1, 110)}' | head -n 12
echo "image-size: biggest in the venv (MB):"
docker run --rm --entrypoint sh "$tag" -c \
    'cd /opt/venv/lib/python3*/site-packages && du -sm * | sort -rn | head -n 15' | sed 's/^/  /'
