"""``python -m services.pricing``: Octopus Agile prices on the bus."""

from __future__ import annotations

from shared.runner import ServiceContext, run_service

from .config import PricingSettings
from .service import PricingService


def wire(ctx: ServiceContext[PricingSettings]) -> None:
    PricingService(ctx).wire()


if __name__ == "__main__":
    raise SystemExit(run_service("pricing", PricingSettings, wire))
