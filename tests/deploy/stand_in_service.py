"""``python -m tests.deploy.stand_in_service <name>``: a service that does only what every batsched service does
on the bus (status online, last will, HA discovery of its status entity), under any service's name and login."""

from __future__ import annotations

import sys

from shared.ha import register_discovery
from shared.runner import ServiceContext, run_service
from shared.settings import ServiceSettings


def wire(ctx: ServiceContext[ServiceSettings]) -> None:
    register_discovery(ctx.bus, list)


if __name__ == "__main__":
    raise SystemExit(run_service(sys.argv[1], ServiceSettings, wire))
