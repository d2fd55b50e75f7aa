"""This machine's pip settings as ``docker build`` arguments, for an image build on a network that needs them.

    python3 tools/docker_ci/pip_build_args.py [--cert-in-image PATH]    # prints KEY=VALUE lines

pip is configured here by files and environment variables (index, extra index, trusted hosts, CA bundle, timeout).
Nothing of it is written into the repository: ``make test-compose`` reads it with ``pip config list`` and hands it
to the build as ``--build-arg`` (the Dockerfile declares the matching ``ARG``\\ s in its build stage only). Local
locations (``file://`` indexes, directories) mean nothing inside a build and are left out; a CA bundle becomes
``--cert-in-image``, where the base image carries the host's bundle (the stand-in does, see standins.sh).
Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

KEYS = {
    "index-url": "PIP_INDEX_URL",
    "extra-index-url": "PIP_EXTRA_INDEX_URL",
    "trusted-host": "PIP_TRUSTED_HOST",
    "default-timeout": "PIP_DEFAULT_TIMEOUT",
    "timeout": "PIP_DEFAULT_TIMEOUT",
    "cert": "PIP_CERT",
}
LINE = re.compile(r"^(?P<scope>[^.]*)\.(?P<key>[\w-]+)=(?P<quote>['\"]?)(?P<value>.*)(?P=quote)$")


def pip_config() -> dict[str, str]:
    """pip's effective settings (files, then environment) for the keys a build needs."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60, check=False
    )
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        m = LINE.match(line.strip())
        if m and m["key"] in KEYS:
            found[KEYS[m["key"]]] = m["value"]
    for name in set(KEYS.values()):  # the environment wins, as it does for pip
        if os.environ.get(name):
            found[name] = os.environ[name]
    return found


def remote_only(value: str) -> str:
    return " ".join(v for v in value.split() if v.startswith(("http://", "https://")))


def build_args(config: dict[str, str], cert_in_image: str | None) -> dict[str, str]:
    args: dict[str, str] = {}
    for name, value in config.items():
        if name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
            value = remote_only(value)
        elif name == "PIP_CERT":
            value = cert_in_image or ""
        if value:
            args[name] = value
    return args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert-in-image", help="the CA bundle's path inside the base image")
    args = parser.parse_args(argv)
    for name, value in sorted(build_args(pip_config(), args.cert_in_image).items()):
        print(f"{name}={value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
