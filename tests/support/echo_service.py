"""A minimal service built on the shared runner, for the bus and runner tests.

It validates ``<prefix>/echo/in`` as a ``BatteryState`` and republishes its SOC on ``<prefix>/echo/out``;
it serves ``<prefix>/echo/cmd/ping`` and the setter ``<prefix>/echo/level/set`` (a number from 0 to 10, echoed
on ``<prefix>/echo/level``).
"""

from __future__ import annotations

from shared.bus import CommandError
from shared.models import BatteryState, Command
from shared.runner import ServiceContext, run_service
from shared.settings import ServiceSettings
from shared.topics import Channel

ECHO_IN = Channel("echo_in", "echo/in", BatteryState, "test", False, "event", "a battery state to echo")
ECHO_PING = Channel("echo_ping", "echo/cmd/ping", Command, "echo", False, "command", "ping")
ECHO_LEVEL = Channel("echo_level", "echo/level", None, "echo", True, "state", "a level")
ECHO_LEVEL_SET = Channel("echo_level_set", "echo/level/set", None, "echo", False, "set", "a level, 0 to 10")


def wire(ctx: ServiceContext[ServiceSettings]) -> None:
    prefix = ctx.settings.mqtt_prefix
    count = {"n": 0}

    def on_state(state: BatteryState | None) -> None:
        if state is None:
            return
        count["n"] += 1
        ctx.bus.publish(f"{prefix}/echo/out", {"soc_pct": state.soc_pct, "n": count["n"]})

    def on_ping(cmd: Command) -> dict:
        if cmd.reason == "fail":
            raise CommandError("asked to fail")
        if cmd.reason == "crash":
            raise RuntimeError("handler bug")
        return {"pong": True}

    def set_level(text: str) -> None:
        level = float(text)  # ValueError: refused
        if not 0 <= level <= 10:
            raise ValueError(f"level {level:g} outside 0-10")
        ctx.bus.publish(ECHO_LEVEL, text)

    ctx.bus.subscribe(ECHO_IN, on_state)
    ctx.bus.setting(ECHO_LEVEL_SET, set_level)
    ctx.bus.command(ECHO_PING, on_ping)


if __name__ == "__main__":
    raise SystemExit(run_service("echo", ServiceSettings, wire))
