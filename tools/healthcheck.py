"""Container healthchecks (Compose ``healthcheck.test``): exit 0 when healthy, 1 with one line saying why not.

    python -m tools.healthcheck pricing                  # <prefix>/pricing/status is "online" on the broker
    python -m tools.healthcheck --http http://127.0.0.1:5000/healthz
    python -m tools.healthcheck --tcp 127.0.0.1:8080     # a simulator's port accepts connections
    python -m tools.healthcheck --from-env               # the image's default: BATSCHED_SERVICE, else the
                                                         # ``python -m services.<name>`` of the container's PID 1

The MQTT check logs in with the container's own settings (``BATSCHED_MQTT_*`` and the ``mqtt_password`` secret
file), so it needs no extra account: every service may read its own namespace. It sets no last will and uses its
own client id, so it never disturbs the service's status or session.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import socket
import ssl
import sys
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from shared.settings import ServiceSettings, build_settings
from shared.topics import Topics


def check_mqtt(service: str, timeout: float, settings: ServiceSettings | None = None) -> str | None:
    """None when ``<prefix>/<service>/status`` is ``online``, else the reason."""
    s = settings or build_settings(ServiceSettings)
    topic = Topics(s.mqtt_prefix).status(service)
    got: dict[str, Any] = {}
    done = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"batsched-healthcheck-{service}-{uuid.uuid4().hex[:6]}",
        protocol=mqtt.MQTTv5 if s.mqtt_protocol == "5" else mqtt.MQTTv311,
    )
    client.suppress_exceptions = True
    if s.mqtt_username:
        client.username_pw_set(s.mqtt_username, s.mqtt_password.get_secret_value() if s.mqtt_password else None)
    if s.mqtt_tls:
        client.tls_set(ca_certs=str(s.mqtt_ca_file) if s.mqtt_ca_file else None, cert_reqs=ssl.CERT_REQUIRED)

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc != 0:
            got["error"] = f"broker refused the connection: {rc}"
            done.set()
        else:
            c.subscribe(topic, qos=1)

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        got["status"] = msg.payload.decode("utf-8", errors="replace").strip()
        done.set()

    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(s.mqtt_host, s.mqtt_port, keepalive=10)
    except OSError as exc:
        return f"cannot reach the broker at {s.mqtt_host}:{s.mqtt_port}: {exc}"
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    if "error" in got:
        return str(got["error"])
    if "status" not in got:
        return f"no status on {topic} within {timeout:g}s"
    if got["status"] != "online":
        return f"{topic} is {got['status']!r}"
    return None


def check_http(url: str, timeout: float) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return None if 200 <= resp.status < 300 else f"{url} answered {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"{url} answered {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url} unreachable: {getattr(exc, 'reason', exc)}"


def check_tcp(target: str, timeout: float) -> str | None:
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return None
    except (OSError, ValueError) as exc:
        return f"{target} not accepting connections: {exc}"


def service_from_env(cmdline_path: str = "/proc/1/cmdline") -> str | None:
    """The service this container runs: ``BATSCHED_SERVICE``, else read from PID 1's ``-m services.<name>``."""
    if os.environ.get("BATSCHED_SERVICE"):
        return os.environ["BATSCHED_SERVICE"]
    try:
        args = Path(cmdline_path).read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    for flag, module in itertools.pairwise(args):
        if flag == "-m" and (m := re.fullmatch(r"services\.(?:\w+\.)*(\w+)", module)):
            return m.group(1)
    return None


def check_service(service: str, timeout: float) -> str | None:
    if service == "dashboard":  # the web app answers /healthz; its bus status is checked by the page itself
        port = os.environ.get("BATSCHED_DASHBOARD_PORT", "5000")
        return check_http(f"http://127.0.0.1:{port}/healthz", timeout)
    return check_mqtt(service, timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("service", nargs="?", help="service whose MQTT status must be online")
    parser.add_argument("--http", metavar="URL", help="GET this URL and expect a 2xx answer")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="connect to this port")
    parser.add_argument("--from-env", action="store_true", help="check the service this container runs")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    if args.http:
        problem = check_http(args.http, args.timeout)
    elif args.tcp:
        problem = check_tcp(args.tcp, args.timeout)
    elif args.from_env:
        service = service_from_env()
        problem = check_service(service, args.timeout) if service else "set BATSCHED_SERVICE to the service name"
    elif args.service:
        problem = check_mqtt(args.service, args.timeout)
    else:
        parser.error("give a service name, --http URL or --tcp HOST:PORT")
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
