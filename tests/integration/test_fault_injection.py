"""At-least-once in, exactly-once out, with faults at every boundary (the harness is tests/faults.py).

Visitors walk through the shipped journeys twice with one seed: without faults, then with every
fault kind enabled (duplicate, reordered and late stream records; double-fired, early and late
wake-ups; SQS redeliveries; errors, lost responses and crashes around every AWS call; provider
errors and crashes after the provider took a message; two invocations for one person interleaved).
Merges (identify with a userId) land in the middle of waits in both runs. `make faults` runs more.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests import faults

pytestmark = pytest.mark.integration

VISITORS = 20
SEED = 5


def test_faults_at_every_boundary_deliver_exactly_what_a_fault_free_run_delivers() -> None:
    kinds = faults.enabled_kinds()
    report = faults.compare(VISITORS, SEED, kinds)

    assert report.faulted.injected.keys() == kinds, "every enabled fault kind was injected"
    assert report.baseline.merges_during_wait > 0, "merges landed in the middle of waits"
    assert sum(report.baseline.received.values()) > VISITORS, "the journeys sent messages"
    assert report.ok(), report.summary()


def _outcome(**fields: object) -> faults.Outcome:
    values: dict[str, object] = {
        "received": Counter(),
        "arrivals": {},
        "decided": Counter(),
        "not_delivered": Counter(),
        "step_rows": Counter(),
        "steps": [],
        "open_enrollments": [],
        "parked_records": 0,
        "dead_letters": 0,
        "parked": [],
        "injected": Counter(),
        "merges_during_wait": 0,
        "invocations": 0,
        "seconds": 0.0,
    }
    values.update(fields)
    return faults.Outcome(**values)  # type: ignore[arg-type]


def test_the_invariants_name_each_kind_of_violation() -> None:
    baseline = _outcome(
        received=Counter({"k-form": 1, "k-push": 1}),
        decided=Counter({"k-form": 1, "k-push": 1}),
        step_rows=Counter({"s-entered": 1, "s-sent": 1}),
    )
    faulted = _outcome(
        received=Counter({"k-form": 2, "k-extra": 1}),
        decided=Counter({"k-form": 1, "k-push": 2}),
        not_delivered=Counter({"k-push": 1}),
        step_rows=Counter({"s-sent": 2}),
        open_enrollments=["services-consult/enr_1 at await_form_response"],
        dead_letters=1,
        parked=["dead letter send k-push: RetryableDeliveryError: push service unreachable"],
    )

    found = faults.Report(baseline, faulted).violations()

    assert found["duplicate deliveries"] == ["faulted: k-form received 2 times"]
    assert found["lost messages"] == [
        "faulted: k-push decided 2x, delivered 0x",
        "faulted: k-push delivered without faults, never with them",
    ]
    assert found["lost steps"] == ["faulted: s-entered"]
    assert found["duplicated steps"] == ["faulted: s-sent stored 2 times"]
    assert found["stuck enrollments"] == ["faulted: services-consult/enr_1 at await_form_response"]
    assert found["parked inputs"] == [
        "faulted: dead letter send k-push: RetryableDeliveryError: push service unreachable"
    ]
    assert found["unexpected deliveries"] == ["faulted: k-extra delivered only with faults"]
    assert not faults.Report(baseline, baseline).violations()["lost messages"]
