"""The dashboard links the latest ``batsched compare-tariffs`` report and serves it sandboxed (its chart's script
is inline, so it runs in an origin of its own); before any comparison it says how to make one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard.fake_oidc import FakeOIDC
from tests.dashboard.helpers import InProcess, login, settings

ALICE = {"sub": "u-1", "email": "alice@example.org", "email_verified": True}


@pytest.fixture
def provider() -> Iterator[FakeOIDC]:
    p = FakeOIDC().start()
    yield p
    p.stop()


def test_the_latest_tariff_report_is_linked_and_served_sandboxed(tmp_path: Path, provider: FakeOIDC) -> None:
    dash = InProcess(settings(tmp_path, provider))
    client = dash.client()
    login(client, provider, ALICE)
    assert 'href="/reports/tariffs"' in client.get("/").text
    missing = client.get("/reports/tariffs")
    assert missing.status_code == 404 and "batsched compare-tariffs --out" in missing.text

    report = tmp_path / "data" / "tariff-report" / "compare-tariffs.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html><body><h1>Which tariff suits this house?</h1><script>1</script></body></html>")
    page = client.get("/reports/tariffs")
    assert page.status_code == 200 and "Which tariff suits this house?" in page.text
    assert page.headers["content-security-policy"].startswith("sandbox allow-scripts;")
    assert "connect-src" not in page.headers["content-security-policy"]  # default-src 'none': no calls home
