"""Nothing lost (docs/security.md §13): a short soak through the chaos server (`servers/chaos.py`).

A few hundred numbered messages, through `send()` and reused sessions, from bytes, Python chunks,
`MessageSource`s and sources that fail midway, to a server that refuses, hangs up, stalls or
accepts at random. Every message reported delivered was accepted whole exactly once, none reported
failed was accepted, and nothing was ever received complete but different from what was sent.
`scripts/soak.py` runs the same for longer.
"""

from __future__ import annotations

import pytest
from servers.chaos import ChaosServer, Weights, digest, settle, soak

pytest.importorskip("mailpump", reason="the extension is not built: run `bash .ci/test`")

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("seed", [1, 2])
def test_soak_loses_nothing_and_duplicates_nothing(seed: int) -> None:
    with ChaosServer(seed=seed) as server:
        report = settle(server, soak(server, count=300, seconds=90, seed=seed))
    summary = report.summary()
    print(summary)
    assert report.violations() == [], summary
    # The chaos really happened, and so did deliveries.
    assert summary["sent"] == 300
    assert 0 < summary["delivered"] < summary["sent"]
    assert summary["server partial (discarded)"] + summary["server complete, not accepted"] > 0


def test_the_accounting_catches_a_lost_or_doubled_message() -> None:
    # The checker itself: a server that accepts everything, then a record doctored three ways.
    with ChaosServer(weights=Weights(refuse=0, drop=0, stall=0)) as server:
        report = settle(server, soak(server, count=6, seconds=30, seed=3))
    assert report.violations() == [] and report.summary()["delivered"] > 0
    delivered = [
        r for r in report.received if r.accepted and report.outcome[r.soak_id or ""] == "delivered"
    ]
    first, second = delivered[0], delivered[1]
    report.received.remove(first)  # lost
    report.received.append(second)  # doubled
    truncated = type(second)(second.soak_id, digest(b"a truncated copy"), True, False)
    report.received.append(truncated)  # complete-looking, but not what was sent
    problems = report.violations()
    assert any(f"{first.soak_id}: reported delivered, accepted 0" in p for p in problems)
    assert any(f"{second.soak_id}: reported delivered, accepted 2" in p for p in problems)
    assert any("received complete but not as sent" in p for p in problems)
