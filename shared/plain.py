"""Plain-text payload values (setters and their state topics): the words for true and false, defined once.

``executor/dry_run/set`` accepts any of them; state topics always carry ``true`` or ``false``."""

from __future__ import annotations

TRUE_WORDS = frozenset({"true", "on", "1", "yes"})
FALSE_WORDS = frozenset({"false", "off", "0", "no"})


def parse_bool(text: str) -> bool:
    """``"On"`` → True, ``" no "`` → False; anything else raises ``ValueError`` naming what was sent."""
    value = text.strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ValueError(f"expected true or false, got {text[:20]!r}")


def bool_text(value: bool) -> str:
    """How a boolean goes out on a state topic."""
    return "true" if value else "false"
