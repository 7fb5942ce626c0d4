"""A/B results of a journey's split nodes: per variant and holdout, who entered and converted, the
uplift against control with its 95 % confidence interval, and whether it is significant.

The rules, stated once (the report and docs/architecture.md repeat them):

- **Control** is the split's holdout when it has one, else its first branch.
- **Entered** an arm: enrollments the split sent down that branch (or held out); **converted**: of
  them, those that reached the journey's goal within its window. Rate = converted / entered.
- **Uplift** = variant rate - control rate (percentage points), with a 95 % Wald interval
  (rate difference ± 1.96 · unpooled standard error).
- **Significance**: a two-sided two-proportion z-test with the pooled rate, p < 0.05. The same
  figures as ``statsmodels.stats.proportion.proportions_ztest`` and ``confint_proportions_2indep``
  (method "wald"); the tests check that on the same counts.
- **Minimum sample**: a comparison is judged only when both arms have at least 30 entered and at
  least 5 conversions and 5 non-conversions (where the normal approximation holds); until then
  the verdict says so.
- **Winner**: the significant variant with the largest positive uplift. Otherwise "not significant
  yet", with about how many more visitors (both arms together) would detect the uplift seen so far
  with 80 % power at that level. Variants are each compared with control, without a correction for
  comparing several (as Braze and Customer.io do): with many variants, wait for a clear margin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Set
from statistics import NormalDist

from pydantic import BaseModel, ConfigDict

ALPHA = 0.05
POWER = 0.80
MIN_ENTERED = 30
MIN_OUTCOMES = 5
HOLDOUT = "holdout"
_Z = NormalDist()


class ArmResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    control: bool = False
    entered: int
    converted: int
    rate: float | None = None
    # Against control (None for control itself, or when either rate is unknown).
    uplift: float | None = None
    uplift_low: float | None = None
    uplift_high: float | None = None
    z: float | None = None
    p_value: float | None = None
    enough_data: bool = False
    significant: bool = False


class ExperimentResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    node_id: str
    control: str
    arms: list[ArmResult]
    winner: str | None = None
    verdict: str
    more_visitors_needed: int | None = None


def experiment(node_id: str, arms: Mapping[str, Set[str]], converted: Set[str], control: str) -> ExperimentResult:
    """``arms``: arm name -> the enrollments in it, in the split's order; ``converted``: enrollments
    that reached the goal."""
    base = arms[control]
    base_converted = len(base & converted)
    results: list[ArmResult] = []
    for name, members in arms.items():
        hits = len(members & converted)
        if name == control:
            results.append(
                ArmResult(name=name, control=True, entered=len(members), converted=hits, rate=_rate(hits, len(members)))
            )
            continue
        results.append(_compare(name, hits, len(members), base_converted, len(base)))
    winners = [arm for arm in results if arm.significant and (arm.uplift or 0) > 0]
    winner = max(winners, key=lambda arm: arm.uplift or 0.0) if winners else None
    verdict, more = _verdict(results, control, winner)
    return ExperimentResult(
        node_id=node_id,
        control=control,
        arms=results,
        winner=winner.name if winner else None,
        verdict=verdict,
        more_visitors_needed=more,
    )


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """(z, two-sided p) of H0: p1 == p2, with the pooled rate."""
    pooled = (x1 + x2) / (n1 + n2)
    error = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if error == 0:
        return 0.0, 1.0
    z = (x1 / n1 - x2 / n2) / error
    return z, 2 * (1 - _Z.cdf(abs(z)))


def difference_interval(x1: int, n1: int, x2: int, n2: int, level: float = 1 - ALPHA) -> tuple[float, float]:
    """Wald interval of p1 - p2."""
    p1, p2 = x1 / n1, x2 / n2
    half = _Z.inv_cdf(0.5 + level / 2) * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return p1 - p2 - half, p1 - p2 + half


def sample_size_per_arm(p1: float, p2: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Visitors per arm to detect p1 vs p2 (two-sided), or None when there is no difference to detect."""
    if p1 == p2:
        return None
    pooled = (p1 + p2) / 2
    z_alpha, z_beta = _Z.inv_cdf(1 - alpha / 2), _Z.inv_cdf(power)
    spread = z_alpha * math.sqrt(2 * pooled * (1 - pooled)) + z_beta * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(spread**2 / (p1 - p2) ** 2)


def _compare(name: str, hits: int, entered: int, base_hits: int, base_entered: int) -> ArmResult:
    if not entered or not base_entered:
        return ArmResult(name=name, entered=entered, converted=hits, rate=_rate(hits, entered))
    z, p = two_proportion_test(hits, entered, base_hits, base_entered)
    low, high = difference_interval(hits, entered, base_hits, base_entered)
    enough = all(
        n >= MIN_ENTERED and x >= MIN_OUTCOMES and n - x >= MIN_OUTCOMES
        for x, n in ((hits, entered), (base_hits, base_entered))
    )
    return ArmResult(
        name=name,
        entered=entered,
        converted=hits,
        rate=hits / entered,
        uplift=hits / entered - base_hits / base_entered,
        uplift_low=low,
        uplift_high=high,
        z=z,
        p_value=p,
        enough_data=enough,
        significant=enough and p < ALPHA,
    )


def _verdict(results: list[ArmResult], control: str, winner: ArmResult | None) -> tuple[str, int | None]:
    if winner is not None:
        return (
            f"{winner.name} wins: {_points(winner.uplift)} against {control} "
            f"(95 % CI {_points(winner.uplift_low)} to {_points(winner.uplift_high)}), p = {winner.p_value:.3f}",
            None,
        )
    variants = [arm for arm in results if not arm.control and arm.rate is not None]
    base = next(arm for arm in results if arm.control)
    if not variants or base.rate is None:
        return "not enough visitors in every arm yet", None
    best = max(variants, key=lambda arm: arm.uplift or 0.0)
    per_arm = sample_size_per_arm(best.rate or 0.0, base.rate)
    if per_arm is None:
        return f"no difference between {best.name} and {control} so far", None
    more = max(0, per_arm - best.entered) + max(0, per_arm - base.entered)
    if not best.enough_data:
        more = max(more, max(0, MIN_ENTERED - best.entered) + max(0, MIN_ENTERED - base.entered))
    elif more == 0:
        # Already as many visitors as the uplift seen would need, and still within chance.
        return (
            f"not significant: {best.name} and {control} differ by no more than chance (p = {best.p_value:.2f})",
            None,
        )
    return f"not significant yet, about {more} more visitors needed ({best.name} against {control})", more


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _points(value: float | None) -> str:
    return "?" if value is None else f"{100 * value:+.1f} points"
