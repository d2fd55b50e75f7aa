"""``python -m services.pricing``: the household's Octopus tariff prices on the bus."""

from __future__ import annotations

from shared.runner import ServiceContext, run_service

from .config import PricingSettings
from .service import PricingService
from .sessions import wire_sessions


def wire(ctx: ServiceContext[PricingSettings]) -> None:
    service = PricingService(ctx)
    service.wire()
    wire_sessions(ctx, service.client)  # Saving Sessions and free-electricity sessions (GraphQL)


if __name__ == "__main__":
    raise SystemExit(run_service("pricing", PricingSettings, wire))
