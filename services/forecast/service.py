"""The forecast service's behaviour: fetch PV from Open-Meteo, forecast load from observed history, publish.

- ``forecast/pv``, ``forecast/load`` (retained ``EnergyForecast``) and ``forecast/pv/today`` (``PvToday``);
- a failed fetch (HTTP error, timeout, garbage) publishes nothing new: the last good forecast stays retained with
  its real ``valid_until``; it is stored, so a restarted service republishes it (while still valid) as it was;
- ``battery/state`` observations feed the load history in ``forecast.db``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from services.forecast import load_model
from services.forecast.config import ForecastSettings
from services.forecast.openmeteo_client import OpenMeteoClient, OpenMeteoError
from services.forecast.pv_model import (
    CALIBRATED_MODEL_NAME,
    PvArray,
    calibration_factor,
    covered_slots,
    slot_energy,
)
from services.forecast.pv_model import MODEL_NAME as PV_MODEL
from services.forecast.store import ForecastStore, history_start
from shared.bus import Bus, CommandError
from shared.clock import Clock
from shared.cooldown import Cooldown
from shared.ha import entity
from shared.models import BatteryState, Command, EnergyForecast, PvToday, SlotEnergy
from shared.slots import SLOT, iter_slots, local_date, local_day_bounds, local_midnight, slot_start


class ForecastService:
    def __init__(
        self,
        settings: ForecastSettings,
        clock: Clock,
        bus: Bus,
        store: ForecastStore,
        client: OpenMeteoClient,
        log: structlog.stdlib.BoundLogger,
        arrays: Callable[[], list[PvArray] | None] | None = None,
    ) -> None:
        self.settings = settings
        # The PV arrays placed where the site is (postcode.py); None while the location is not known yet.
        self.arrays = arrays or (lambda: list(settings.pv_arrays))
        self.clock = clock
        self.bus = bus
        self.store = store
        self.client = client
        self.log = log
        self.topics = bus.topics
        self.refresh_cooldown = Cooldown(clock, settings.forecast_refresh_cooldown_s)
        self._pv_lock = threading.Lock()  # PV and load refresh independently: a slow Open-Meteo blocks only PV
        self._load_lock = threading.Lock()
        self.pv_ok = False
        self.current: dict[str, EnergyForecast] = {}
        for kind in ("pv", "load"):
            stored = store.last_forecast(kind)
            if stored is not None:  # republished on connect as it was made, marked as coming from the store
                self.current[kind] = stored.model_copy(update={"source": "store"})

    # ------------------------------------------------------------------ horizon

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """From local midnight today to the end of the local day ``horizon`` hours ahead (UTC)."""
        tz = self.settings.tz
        start = local_midnight(local_date(now, tz), tz)
        _, end = local_day_bounds(local_date(now + timedelta(hours=self.settings.load_horizon_h), tz), tz)
        return start, end

    # ------------------------------------------------------------------ publishing

    def republish(self) -> None:
        """On (re)connect: publish the newest good forecasts we hold, unchanged, if they are still valid."""
        now = self.clock.now()
        for kind, forecast in list(self.current.items()):
            if forecast.generated_at <= now and forecast.is_valid(now):
                self._publish(forecast, save=False)
                self.log.info(
                    "forecast republished", kind=kind, generated_at=forecast.generated_at.isoformat(),
                    valid_until=forecast.valid_until.isoformat(),
                )  # fmt: skip
                if kind == "pv":
                    self._publish_pv_today(forecast, now)
            else:
                self.log.info("stored forecast expired (or from a later clock); not republished", kind=kind)

    def _publish(self, forecast: EnergyForecast, save: bool = True) -> None:
        topic = self.topics.forecast_pv if forecast.kind == "pv" else self.topics.forecast_load
        if save:
            self.store.save_forecast(forecast)
            self.current[forecast.kind] = forecast
        self.bus.publish_state(topic, forecast)

    def _publish_pv_today(self, forecast: EnergyForecast, now: datetime) -> None:
        tz = self.settings.tz
        day = local_date(now, tz)
        start, end = local_day_bounds(day, tz)
        total = sum(s.energy_kwh or 0.0 for s in forecast.slots if start <= s.start < end)
        msg = PvToday(generated_at=forecast.generated_at, date=day, energy_kwh=round(total, 3))
        self.bus.publish_state(self.topics.forecast_pv_today, msg)

    # ------------------------------------------------------------------ PV

    def refresh_pv(self, fresh: bool = False) -> dict[str, Any]:
        with self._pv_lock:
            return self._refresh_pv(fresh)

    def _refresh_pv(self, fresh: bool) -> dict[str, Any]:
        now = self.clock.now()
        fetched = []
        arrays = self.arrays()
        if arrays is None:
            self.pv_ok = False
            return {"pv": "failed", "error": "the site's location is not known yet (postcode lookup failing)"}
        for array in arrays:
            try:
                fetched.append((self.client.fetch(array, fresh=fresh), array))
            except OpenMeteoError as exc:
                self.pv_ok = False
                kept = self.current.get("pv")
                self.log.warning(
                    "Open-Meteo fetch failed; keeping the last good PV forecast",
                    array=array.name, error=str(exc),
                    kept_valid_until=kept.valid_until.isoformat() if kept else None,
                )  # fmt: skip
                return {"pv": "failed", "error": str(exc)}
        start, end = self.window(now)
        for series, _array in fetched:
            span = covered_slots(series)
            if span is None:
                self.pv_ok = False
                self.log.warning("Open-Meteo returned no values; keeping the last good PV forecast")
                return {"pv": "failed", "error": "no values"}
            start, end = max(start, span[0]), min(end, span[1])
        slots = list(iter_slots(start, end))
        if not slots:
            self.pv_ok = False
            self.log.warning("Open-Meteo data does not cover the forecast window", start=str(start), end=str(end))
            return {"pv": "failed", "error": "data does not cover the window"}
        energy = slot_energy(fetched, slots)
        gaps = sum(e is None for e in energy)
        if gaps:
            self.log.warning("PV forecast has gaps (unknown values from Open-Meteo)", gaps=gaps, slots=len(slots))
        known_end = max((s for s, e in zip(slots, energy, strict=True) if e is not None), default=None)
        if known_end is None:
            self.pv_ok = False
            self.log.warning("Open-Meteo values are all unknown; keeping the last good PV forecast")
            return {"pv": "failed", "error": "all values unknown"}
        self.store.save_pv_model_energy({t: e for t, e in zip(slots, energy, strict=True) if e is not None})
        factor = self.calibration(now)
        if factor is not None:
            energy = [None if e is None else round(e * factor, 4) for e in energy]
        valid_until = min(now + timedelta(seconds=self.settings.pv_max_age_s), known_end + SLOT)
        forecast = EnergyForecast(
            generated_at=now,
            valid_until=max(valid_until, now + timedelta(seconds=1)),
            kind="pv",
            source="open-meteo",
            model=PV_MODEL if factor is None else CALIBRATED_MODEL_NAME,
            slots=[SlotEnergy(start=s, end=s + SLOT, energy_kwh=e) for s, e in zip(slots, energy, strict=True)],
        )
        self._publish(forecast)
        self._publish_pv_today(forecast, now)
        self.pv_ok = True
        self.log.info(
            "PV forecast published", slots=len(slots), gaps=gaps, calibration=factor,
            valid_until=forecast.valid_until.isoformat(),
        )  # fmt: skip
        return {"pv": "ok", "slots": len(slots), "gaps": gaps, "calibration": factor}

    def calibration(self, now: datetime) -> float | None:
        """The bounded observed/forecast PV ratio over the look-back, or None (off, or too little data yet)."""
        s = self.settings
        if not s.pv_calibration:
            return None
        since = history_start(now, s.pv_calibration_days)
        until = slot_start(now)  # only finished half-hours
        observed = self.store.pv_history(since)
        observed = observed[observed.index < until]
        model = self.store.pv_model_energy(since, until)
        return calibration_factor(
            observed, model, (s.pv_calibration_min, s.pv_calibration_max), s.pv_calibration_min_kwh
        )

    def pv_interval(self) -> float:
        return self.settings.pv_refresh_s if self.pv_ok else self.settings.pv_retry_s

    # ------------------------------------------------------------------ load

    def refresh_load(self) -> dict[str, Any]:
        with self._load_lock:
            return self._refresh_load()

    def _refresh_load(self) -> dict[str, Any]:
        now = self.clock.now()
        s = self.settings
        history = self.store.load_history(history_start(now, s.load_history_days))
        start, end = self.window(now)
        slots = list(iter_slots(start, end))
        exclude = s.load_exclude_above_kw * 0.5 if s.load_exclude_above_kw else None
        params = load_model.LoadModelParams(exclude_above_kwh=exclude, tz=s.timezone)
        result = load_model.forecast_load(history, slots, now=now, params=params)
        source = "history" if result.model == load_model.MODEL_NAME else "default-profile"
        forecast = EnergyForecast(
            generated_at=now,
            valid_until=min(now + timedelta(seconds=s.load_max_age_s), end),
            kind="load",
            source=source,
            model=result.model,
            slots=[
                SlotEnergy(start=t, end=t + SLOT, energy_kwh=round(float(v), 4))
                for t, v in zip(slots, result.energy_kwh, strict=True)
            ],
        )
        self._publish(forecast)
        self.store.prune(history_start(now, s.load_history_days + 1))
        self.log.info("load forecast published", slots=len(slots), model=result.model, history_days=result.history_days)
        return {"load": "ok", "slots": len(slots), "model": result.model, "history_days": result.history_days}

    # ------------------------------------------------------------------ bus handlers

    def on_battery_state(self, state: BatteryState | None) -> None:
        if state is not None:
            self.store.record(state)

    def on_refresh(self, cmd: Command) -> dict[str, Any]:
        self.refresh_cooldown.refuse_early("forecasts", self.log, cmd.request_id)
        self.log.info("refresh requested", request_id=cmd.request_id, reason=cmd.reason)
        result = {**self.refresh_load(), **self.refresh_pv(fresh=True)}
        if result.get("pv") != "ok":
            raise CommandError(f"PV forecast not refreshed: {result.get('error')}; load forecast refreshed")
        return result

    def discovery(self) -> list[tuple[str, dict[str, Any]]]:
        return [
            entity(
                # A forecast, not a meter: a measurement in kWh (device class energy would make HA treat it as
                # an accumulating total in its statistics).
                self.bus, "sensor", "pv_forecast_today", "Solar forecast today", self.topics.forecast_pv_today,
                value_template="{{ value_json.energy_kwh }}", unit_of_measurement="kWh", state_class="measurement",
                suggested_display_precision=1, icon="mdi:solar-power",
            ),
        ]  # fmt: skip
