"""Experiment results of split nodes: the figures of a statistics library, and the report's verdicts."""

from __future__ import annotations

import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from footprint.models.journey import parse_journey
from footprint.services.experiments import (
    MIN_ENTERED,
    difference_interval,
    sample_size_per_arm,
    two_proportion_test,
)
from footprint.services.reports import funnel, render_report
from tests.unit.test_reports import step

COUNTS = [(60, 400, 40, 400), (12, 150, 30, 160), (5, 31, 5, 30), (230, 1000, 200, 1000), (0, 50, 3, 50)]


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), COUNTS)
def test_the_z_test_and_interval_are_the_statistics_library_s(x1: int, n1: int, x2: int, n2: int) -> None:
    z, p = two_proportion_test(x1, n1, x2, n2)
    expected_z, expected_p = proportions_ztest([x1, x2], [n1, n2])
    low, high = difference_interval(x1, n1, x2, n2)
    expected_low, expected_high = confint_proportions_2indep(x1, n1, x2, n2, method="wald", compare="diff")

    assert (z, p) == pytest.approx((expected_z, expected_p), rel=1e-9)
    assert (low, high) == pytest.approx((expected_low, expected_high), rel=1e-9)


def test_the_sample_size_is_the_textbook_one() -> None:
    # 10 % against 15 %, two-sided 5 %, 80 % power: 686 per arm (Fleiss' formula without correction).
    assert sample_size_per_arm(0.10, 0.15) == 686
    assert sample_size_per_arm(0.2, 0.2) is None


AB = parse_journey(
    {
        "id": "ab-offer",
        "name": "A/B offer",
        "version": 1,
        "status": "active",
        "goal": {"within": "P7D", "events": [{"event": "purchase"}]},
        "nodes": {
            "start": {"type": "trigger", "event": "product_viewed", "next": "split"},
            "split": {
                "type": "split",
                "branches": [
                    {"name": "a", "weight": 45, "next": "send_a"},
                    {"name": "b", "weight": 45, "next": "send_b"},
                ],
                "holdout": {"weight": 10},
            },
            "send_a": {"type": "send", "channel": "onsite_push", "content": {"title": "-10%"}, "next": "done"},
            "send_b": {"type": "send", "channel": "onsite_push", "content": {"title": "-20%"}, "next": "done"},
            "done": {"type": "exit"},
        },
    }
)


def crowd(arms: dict[str, tuple[int, int]]) -> list:  # type: ignore[type-arg]
    """Steps of enrollments sent down each arm: (entered, converted)."""
    steps = []
    for arm, (entered, converted) in arms.items():
        for n in range(entered):
            enrollment = f"{arm}-{n}"
            steps.append(step("start", "entered", enrollment, journey_id="ab-offer"))
            if arm == "holdout":
                steps.append(step("split", "holdout", enrollment, journey_id="ab-offer"))
            else:
                steps.append(step("split", "branched", enrollment, journey_id="ab-offer", detail=arm))
            if n < converted:
                steps.append(step("start", "converted", enrollment, journey_id="ab-offer"))
    return steps


def test_a_significant_uplift_against_the_holdout_is_declared_the_winner() -> None:
    report = funnel("ab-offer", crowd({"a": (400, 48), "b": (400, 80), "holdout": (100, 5)}), AB)

    [result] = report.experiments
    arms = {arm.name: arm for arm in result.arms}
    assert result.control == "holdout"
    assert (arms["a"].entered, arms["a"].converted, arms["b"].converted, arms["holdout"].entered) == (400, 48, 80, 100)
    assert arms["b"].uplift == pytest.approx(0.20 - 0.05)
    assert arms["b"].p_value == pytest.approx(proportions_ztest([80, 5], [400, 100])[1])
    assert result.winner == "b"
    assert result.verdict.startswith("b wins: +15.0 points against holdout (95 % CI")
    assert "experiment at split (control: holdout): b wins" in render_report(report)


def test_without_significance_no_winner_and_about_how_many_more_visitors() -> None:
    report = funnel("ab-offer", crowd({"a": (200, 20), "b": (200, 26), "holdout": (60, 6)}), AB)

    [result] = report.experiments
    assert result.winner is None
    expected = 2 * sample_size_per_arm(26 / 200, 6 / 60) - 200 - 60  # type: ignore[operator]
    assert result.more_visitors_needed == expected
    assert result.verdict == f"not significant yet, about {expected} more visitors needed (b against holdout)"


def test_too_few_visitors_are_never_significant_however_large_the_gap() -> None:
    report = funnel("ab-offer", crowd({"a": (10, 0), "b": (10, 9), "holdout": (10, 0)}), AB)

    [result] = report.experiments
    arms = {arm.name: arm for arm in result.arms}
    assert arms["b"].p_value is not None
    assert arms["b"].p_value < 0.001
    assert not arms["b"].enough_data
    assert not arms["b"].significant
    assert result.winner is None
    assert result.more_visitors_needed is not None
    assert result.more_visitors_needed >= 2 * (MIN_ENTERED - 10)
