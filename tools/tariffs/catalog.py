"""The tariffs ``batsched compare-tariffs`` compares by default, and the ``--tariffs`` syntax to choose others.

Each is an import product with the export product a household on it would usually have: Agile with Agile Outgoing,
Flux with Flux export (Flux requires it), the rest with Outgoing Fixed. Product codes are Octopus's current ones;
a period long past may need the product version sold then (``--tariffs "Agile=AGILE-FLEX-22-11-25:…"``).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.pricing.tariffs import day_ahead


@dataclass(frozen=True)
class TariffChoice:
    name: str
    import_product: str
    export_product: str | None  # None: the battery model's flat export price

    @property
    def known_in_advance(self) -> bool:
        return not day_ahead(self.import_product)


OUTGOING_FIXED = "OUTGOING-FIX-12M-19-05-13"
DEFAULT_TARIFFS: tuple[TariffChoice, ...] = (
    TariffChoice("Agile", "AGILE-24-10-01", "AGILE-OUTGOING-19-05-13"),
    TariffChoice("Go", "GO-VAR-22-10-14", OUTGOING_FIXED),
    TariffChoice("Intelligent Octopus Go", "INTELLI-VAR-22-10-14", OUTGOING_FIXED),
    TariffChoice("Flux", "FLUX-IMPORT-23-02-14", "FLUX-EXPORT-23-02-14"),
    TariffChoice("Cosy", "COSY-22-12-08", OUTGOING_FIXED),
    TariffChoice("Tracker", "SILVER-23-12-06", OUTGOING_FIXED),
    TariffChoice("12M Fixed", "OE-FIX-12M-24-09-18", OUTGOING_FIXED),
)


def parse_tariffs(text: str) -> tuple[TariffChoice, ...]:
    """``NAME=IMPORT[:EXPORT],…`` or names of the default tariffs (``Agile,Go``); EXPORT ``-`` = flat export price."""
    by_name = {t.name.lower(): t for t in DEFAULT_TARIFFS}
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" not in part:
            if part.lower() not in by_name:
                known = ", ".join(t.name for t in DEFAULT_TARIFFS)
                raise ValueError(f"unknown tariff {part!r}: one of {known}, or NAME=IMPORT[:EXPORT]")
            out.append(by_name[part.lower()])
            continue
        name, codes = (x.strip() for x in part.split("=", 1))
        imp, _, exp = codes.partition(":")
        if not name or not imp:
            raise ValueError(f"expected NAME=IMPORT[:EXPORT], got {part!r}")
        out.append(TariffChoice(name, imp.strip().upper(), None if exp.strip() in ("", "-") else exp.strip().upper()))
    if not out:
        raise ValueError("no tariff to compare")
    return tuple(out)
