"""Which kind of Octopus tariff a product or tariff code is, and its name in a household's words.

Defined here, not in the pricing service, because the dashboard names the household's tariff too (from the
``tariff_code`` of the prices on the bus)."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    AGILE = "agile"
    AGILE_OUTGOING = "agile_outgoing"
    GO = "go"
    INTELLIGENT_GO = "intelligent_go"
    FLUX_IMPORT = "flux_import"
    FLUX_EXPORT = "flux_export"
    COSY = "cosy"
    TRACKER = "tracker"
    FIXED = "fixed"  # single rate: fixed, flexible, Outgoing Fixed


# Product-code prefixes, most specific first (Octopus's codes: family, then the launch date YY-MM-DD).
_PREFIXES: tuple[tuple[str, Kind], ...] = (
    ("AGILE-OUTGOING", Kind.AGILE_OUTGOING),
    ("AGILE", Kind.AGILE),
    ("INTELLI", Kind.INTELLIGENT_GO),
    ("GO", Kind.GO),
    ("FLUX-EXPORT", Kind.FLUX_EXPORT),
    ("FLUX-IMPORT", Kind.FLUX_IMPORT),
    ("FLUX", Kind.FLUX_IMPORT),
    ("COSY", Kind.COSY),
    ("SILVER", Kind.TRACKER),  # Octopus Tracker's product codes
    ("TRACKER", Kind.TRACKER),
)


def kind_of(product: str) -> Kind:
    """The tariff kind of an Octopus product code (``GO-VAR-22-10-14`` → Go); anything else is single-rate."""
    code = product.strip().upper()
    for prefix, kind in _PREFIXES:
        if code == prefix or code.startswith(prefix + "-"):
            return kind
    return Kind.FIXED


NAMES: dict[Kind, str] = {
    Kind.AGILE: "Agile Octopus",
    Kind.AGILE_OUTGOING: "Agile Outgoing",
    Kind.GO: "Octopus Go",
    Kind.INTELLIGENT_GO: "Intelligent Octopus Go",
    Kind.FLUX_IMPORT: "Octopus Flux",
    Kind.FLUX_EXPORT: "Octopus Flux export",
    Kind.COSY: "Cosy Octopus",
    Kind.TRACKER: "Octopus Tracker",
    Kind.FIXED: "one price all day",
}


def product_of(tariff_code: str) -> str:
    """``E-1R-AGILE-24-10-01-J`` → ``AGILE-24-10-01``; anything else is taken as a product code already."""
    parts = tariff_code.strip().split("-")
    return "-".join(parts[2:-1]) if len(parts) >= 4 and parts[0] == "E" else tariff_code


def tariff_name(tariff_code: str) -> str:
    """The tariff's name as a household knows it (``E-1R-INTELLI-VAR-22-10-14-J`` → Intelligent Octopus Go)."""
    return NAMES[kind_of(product_of(tariff_code))]
