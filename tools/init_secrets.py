"""Create ``secrets/`` for ``compose.yaml``: every file it mounts, never overwriting one that exists.

    python3 tools/init_secrets.py [--dir secrets]

Runs on the standard library alone (before any install). MQTT passwords (one per broker user, from the ACL) and
the dashboard's session secret are generated at random. Credentials only you have (the NetZero token, an
Octopus API key, the OIDC client secret, the dashboard API key) are created empty, to fill in; an empty file
means "unset". Also copies ``.env.example`` to ``.env`` when there is none (Compose requires the file).

The folder is 0700; the files are 0644 because Compose bind-mounts them as they are and the services run as an
unprivileged user inside their containers (the folder's mode keeps other host users out).
"""

from __future__ import annotations

import argparse
import re
import secrets
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATED = {"dashboard_session_secret": 48}  # name -> random bytes
YOURS = ("netzero_api_key", "octopus_api_key", "oidc_client_secret", "dashboard_api_key")
NO_SECRET_USERS = {"healthcheck"}  # public password, see tools/mqtt_acl.py


def broker_users(acl: Path = ROOT / "mosquitto" / "acl") -> list[str]:
    return [u for u in re.findall(r"(?m)^user\s+(\S+)$", acl.read_text()) if u not in NO_SECRET_USERS]


def wanted() -> dict[str, str | None]:
    """File name -> a fresh random value, or None for a credential the user must supply."""
    out: dict[str, str | None] = {f"mqtt_password_{u}": secrets.token_urlsafe(24) for u in broker_users()}
    out.update({name: secrets.token_urlsafe(n) for name, n in GENERATED.items()})
    out.update(dict.fromkeys(YOURS))
    return out


def init(folder: Path, root: Path = ROOT) -> tuple[list[str], list[str]]:
    """Create what is missing; returns (created, to fill in by hand)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    created, to_fill = [], []
    for name, value in wanted().items():
        path = folder / name
        if not path.exists():
            path.write_text(f"{value}\n" if value else "")
            created.append(name)
        path.chmod(0o644)
        if value is None and not path.read_text().strip():
            to_fill.append(name)
    env, example = root / ".env", root / ".env.example"
    if not env.exists() and example.exists():
        shutil.copy(example, env)
        created.append(".env")
    return created, to_fill


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(ROOT / "secrets"))
    args = parser.parse_args(argv)
    created, to_fill = init(Path(args.dir))
    print(f"created: {', '.join(created) or 'nothing (all present)'}")
    if to_fill:
        print(f"empty (fill in the ones you use): {', '.join(to_fill)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
