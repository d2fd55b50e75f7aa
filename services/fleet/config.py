"""Settings of a fleet planner process (``BATSCHED_FLEET_*``), on top of the home planner's battery settings."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from services.planner.config import PlannerServiceSettings


class FleetSettings(PlannerServiceSettings):
    fleet_root: str = Field("batsched", description="Topic level above the sites: homes are <root>/<site>/…")
    fleet_group: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")] = Field(
        "planners", description="Shared-subscription group the planner processes join ($share/<group>/…)"
    )
    fleet_worker: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")] = Field(
        "1", description="This process's name in the group (status and stats topics)"
    )
    fleet_stats_s: Annotated[float, Field(ge=1, le=3600)] = Field(10.0, description="Seconds between stats messages")
