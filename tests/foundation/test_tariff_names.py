"""The tariff's name as a household knows it, from the tariff or product code the prices on the bus carry."""

from __future__ import annotations

import pytest

from shared.tariff_kinds import NAMES, Kind, tariff_name


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("E-1R-AGILE-24-10-01-J", "Agile Octopus"),
        ("E-1R-AGILE-OUTGOING-19-05-13-J", "Agile Outgoing"),
        ("E-1R-GO-VAR-22-10-14-C", "Octopus Go"),
        ("E-1R-INTELLI-VAR-22-10-14-J", "Intelligent Octopus Go"),
        ("E-1R-FLUX-IMPORT-23-02-14-J", "Octopus Flux"),
        ("E-1R-FLUX-EXPORT-23-02-14-J", "Octopus Flux export"),
        ("E-1R-COSY-22-12-08-J", "Cosy Octopus"),
        ("E-1R-SILVER-23-12-06-J", "Octopus Tracker"),
        ("E-1R-OE-FIX-12M-24-09-18-J", "one price all day"),
        ("GO-VAR-22-10-14", "Octopus Go"),  # a product code as it is
        ("", "one price all day"),
    ],
)
def test_tariff_names(code: str, name: str) -> None:
    assert tariff_name(code) == name


def test_every_kind_has_a_name() -> None:
    assert set(NAMES) == set(Kind)
