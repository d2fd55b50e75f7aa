# One image for every batsched service; each container runs its own command, e.g.
#   docker run --rm batsched python -m services.planner
# Services: services.pricing, services.forecast, services.planner, services.executor, services.executor.watchdog,
# services.dashboard. Simulators (no accounts needed): sim.octopus, sim.openmeteo, sim.netzero, in the `sim` target
# (`docker build --target sim`: the same image plus pandas, which the services do not use; compose.sim.yaml).
# Health: python -m tools.healthcheck <service> | --http URL | --tcp HOST:PORT (compose.yaml sets one per service).

# Pinned by version; pin the digest too (python:3.11.14-slim-bookworm@sha256:…) for byte-for-byte rebuilds.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- build: a virtual environment with the pinned dependencies, from wheels only (no compiler anywhere)
FROM ${PYTHON_IMAGE} AS build
# The planner's DP kernel is compiled by numba on first use (seconds); it is compiled here, into a cache that the
# runtime stage copies. numba names the cache after the source's path, so the sources live at /app in both stages.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 NUMBA_CACHE_DIR=/opt/numba-cache
# pip's settings, for a build behind a TLS-inspecting proxy or a private index only (`make test-compose` passes
# this machine's; a normal build sets none). They live in this stage alone: nothing of them reaches the image.
ARG PIP_INDEX_URL=
ARG PIP_EXTRA_INDEX_URL=
ARG PIP_TRUSTED_HOST=
ARG PIP_CERT=
ARG PIP_DEFAULT_TIMEOUT=
WORKDIR /app
# binutils' strip, for the shared objects' symbol tables (about 25 MB; tools/install_deps.py). Build stage only;
# without a Debian mirror the build goes on and they stay unstripped.
RUN (apt-get update -qq && apt-get install -y -qq --no-install-recommends binutils >/dev/null \
     && rm -rf /var/lib/apt/lists/*) || echo "build: no binutils, shared objects stay unstripped"
COPY pyproject.toml ./
COPY tools/install_deps.py tools/install_deps.py
# The same script the test suite runs into a fresh venv (tests/deploy/test_image.py, `make image-check`); the
# simulators' pandas goes to a folder of its own, for the `sim` target only.
RUN python -m venv /opt/venv \
 && python tools/install_deps.py --python /opt/venv/bin/python \
 && python tools/install_deps.py --python /opt/venv/bin/python --extra sim --target /opt/sim-packages
COPY shared/ shared/
COPY services/ services/
COPY sim/ sim/
COPY tools/ tools/
# Out goes what no service loads at run time (the packages' test suites, pip, setuptools, the bytecode of modules
# nothing imports); the sources are compiled, and so is the planner's kernel, into numba's cache.
RUN python -m compileall -q shared services sim tools \
 && python tools/install_deps.py --python /opt/venv/bin/python --prune --app /app

# ---- runtime: the venv and the source, run as an unprivileged user
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 batsched \
 && useradd --system --uid 10001 --gid batsched --home-dir /app --no-create-home --shell /usr/sbin/nologin batsched \
 && install -d -o batsched -g batsched -m 0750 /data /sim-clock
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# Writable by the services: on another CPU than the build's, numba compiles once more and keeps the result.
COPY --from=build --chown=batsched:batsched /opt/numba-cache /opt/numba-cache
ENV PATH=/opt/venv/bin:$PATH \
    NUMBA_CACHE_DIR=/opt/numba-cache \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BATSCHED_DATA_DIR=/data \
    BATSCHED_LOG_FORMAT=json \
    BATSCHED_SECRETS_DIR=/run/secrets
WORKDIR /app
USER batsched:batsched
VOLUME ["/data"]
# Compose gives each service its own check; this default fits any service that sets BATSCHED_SERVICE.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["python", "-m", "tools.healthcheck", "--from-env"]
CMD ["python", "-c", "print('batsched image: run one service, e.g. python -m services.planner (see compose.yaml)')"]

# ---- sim: the simulators (compose.sim.yaml), the services' image plus pandas for their datasets
FROM runtime AS sim
COPY --from=build /opt/sim-packages /opt/sim-packages
ENV PYTHONPATH=/opt/sim-packages

# ---- the default target: the services' image, without pandas
FROM runtime AS services
