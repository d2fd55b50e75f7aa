"""Create ``secrets/`` for ``compose.yaml``: every file it mounts, never overwriting one that exists.

    python3 tools/init_secrets.py [--dir secrets] [--san NAME_OR_IP ...] [--renew-cert]

Runs on the standard library alone (before any install), plus the ``openssl`` command for the certificates. MQTT
passwords (one per broker user, from the ACL) and the dashboard's session secret are generated at random.
Credentials only you have (the NetZero token, an Octopus API key, the OIDC client secret, the dashboard API key)
are created empty, to fill in; an empty file means "unset". Also copies ``.env.example`` to ``.env`` when there
is none (Compose requires the file).

The broker's TLS listeners (8883 MQTT, 8884 WebSockets) need a certificate: a private CA is made once
(``mqtt_ca.crt``, which MQTT Explorer, Home Assistant and Node-RED are told to trust, and ``mqtt_ca.key``, which
never leaves this folder), and a server certificate signed by it (``mqtt_server.crt``/``.key``) for this host's
names and addresses: localhost, 127.0.0.1, ``mosquitto`` (the Compose network), the host name, ``<host>.local``
and the address of the default route, plus every ``--san``. The server certificate is made again when it is
missing, expires within 30 days, or ``--renew-cert`` is given (then ``docker compose restart mosquitto``).

The folder is 0700; the files are 0644 because Compose bind-mounts them as they are and the services run as an
unprivileged user inside their containers (the folder's mode keeps other host users out); the CA's key is 0600.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATED = {"dashboard_session_secret": 48}  # name -> random bytes
YOURS = ("netzero_api_key", "octopus_api_key", "oidc_client_secret", "dashboard_api_key")
CA_CERT, CA_KEY = "mqtt_ca.crt", "mqtt_ca.key"
SERVER_CERT, SERVER_KEY = "mqtt_server.crt", "mqtt_server.key"
CA_DAYS = 3650
SERVER_DAYS = 825  # the longest validity Apple's clients accept for a TLS server certificate
RENEW_WITHIN_S = 30 * 86400


def broker_users(acl: Path = ROOT / "mosquitto" / "acl") -> list[str]:
    return re.findall(r"(?m)^user\s+(\S+)$", acl.read_text())


def wanted() -> dict[str, str | None]:
    """File name -> a fresh random value, or None for a credential the user must supply."""
    out: dict[str, str | None] = {f"mqtt_password_{u}": secrets.token_urlsafe(24) for u in broker_users()}
    out.update({name: secrets.token_urlsafe(n) for name, n in GENERATED.items()})
    out.update(dict.fromkeys(YOURS))
    return out


def default_addresses() -> list[str]:
    """Names and addresses a client may use for this host's broker."""
    names = ["localhost", "127.0.0.1", "::1", "mosquitto"]
    host = socket.gethostname()
    if host and host != "localhost":
        names += [host] if "." in host else [host, f"{host}.local"]
    try:  # the address of the default route: connect() on UDP picks the route and sends nothing
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            names.append(s.getsockname()[0])
    except OSError:
        pass
    return list(dict.fromkeys(names))


def san_entry(name: str) -> str:
    try:
        return f"IP:{ipaddress.ip_address(name)}"
    except ValueError:
        return f"DNS:{name}"


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()[-400:]}")


def cert_expires_soon(cert: Path, within_s: int = RENEW_WITHIN_S) -> bool:
    done = subprocess.run(
        ["openssl", "x509", "-checkend", str(within_s), "-noout", "-in", str(cert)], capture_output=True, timeout=60
    )
    return done.returncode != 0


def init_tls(folder: Path, sans: list[str], renew: bool = False) -> list[str]:
    """The private CA (once) and the broker's server certificate; returns the files (re)made."""
    if not shutil.which("openssl"):
        raise RuntimeError(
            "the openssl command is needed for the broker's TLS certificate (apt-get install openssl); "
            "run this again once it is installed"
        )
    made = []
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_cert, ca_key = folder / CA_CERT, folder / CA_KEY
    if not (ca_cert.exists() and ca_key.exists()):
        _openssl(
            "req", "-x509", "-newkey", "rsa:3072", "-nodes", "-sha256", "-days", str(CA_DAYS),
            "-subj", f"/CN=batsched MQTT CA {secrets.token_hex(4)}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", CA_KEY, "-out", CA_CERT, cwd=folder,
        )  # fmt: skip
        made += [CA_CERT, CA_KEY]
    ca_key.chmod(0o600)
    ca_cert.chmod(0o644)
    cert, key = folder / SERVER_CERT, folder / SERVER_KEY
    if renew or made or not (cert.exists() and key.exists()) or cert_expires_soon(cert):
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            work = Path(tmp)
            (work / "ext").write_text(
                "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                f"extendedKeyUsage=serverAuth\nsubjectAltName={','.join(san_entry(n) for n in sans)}\n"
            )
            _openssl(
                "req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", "/CN=batsched mosquitto",
                "-keyout", "key", "-out", "csr", cwd=work,
            )  # fmt: skip
            _openssl(
                "x509", "-req", "-sha256", "-in", "csr", "-CA", str(ca_cert), "-CAkey", str(ca_key),
                "-set_serial", str(secrets.randbits(63)), "-days", str(SERVER_DAYS), "-extfile", "ext",
                "-out", "crt", cwd=work,
            )  # fmt: skip
            (work / "crt").replace(cert)
            (work / "key").replace(key)
        made += [SERVER_CERT, SERVER_KEY]
    cert.chmod(0o644)
    key.chmod(0o644)
    return made


def init(
    folder: Path, root: Path = ROOT, sans: list[str] | None = None, renew_cert: bool = False
) -> tuple[list[str], list[str]]:
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
    created += init_tls(folder, [*default_addresses(), *(sans or [])], renew=renew_cert)
    env, example = root / ".env", root / ".env.example"
    if not env.exists() and example.exists():
        shutil.copy(example, env)
        created.append(".env")
    return created, to_fill


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(ROOT / "secrets"))
    parser.add_argument(
        "--san", action="append", default=[], help="another name or address clients use for this host's broker"
    )
    parser.add_argument("--renew-cert", action="store_true", help="make the broker's server certificate again")
    args = parser.parse_args(argv)
    try:
        created, to_fill = init(Path(args.dir), sans=args.san, renew_cert=args.renew_cert or bool(args.san))
    except RuntimeError as exc:
        print(f"init_secrets: {exc}", file=sys.stderr)
        return 1
    print(f"created: {', '.join(created) or 'nothing (all present)'}")
    if to_fill:
        print(f"empty (fill in the ones you use): {', '.join(to_fill)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
