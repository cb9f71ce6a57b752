"""The one interval rule every shown count follows (``reach.simulate.interval``): each tail
left out holds as near (1 - level) / 2 as a count allows, a 90% interval is a range while
runs disagree, and the interval carries the chance it really holds."""

import numpy as np
import pytest

from reach.report import span
from reach.simulate import interval


def runs(pmf: dict[int, int]) -> np.ndarray:
    """Per-run counts with exactly these frequencies (of 100 runs)."""
    return np.repeat(np.array(list(pmf), dtype=float), list(pmf.values()))


def shown(pmf: dict[int, int], level: float) -> tuple[float, float, float | None]:
    iv = interval(runs(pmf), level)
    return iv.lo, iv.hi, iv.chance


def test_a_count_that_is_mostly_zero_gets_the_interval_nearest_its_level() -> None:
    mostly_zero = {0: 89, 1: 9, 2: 2}
    # 90%: leaving out 2 (2% of runs) is nearer 5% above than leaving out 1 and 2 (11%).
    assert shown(mostly_zero, 0.9) == (0.0, 1.0, pytest.approx(0.98))
    # 50%: no interval holds about half; the nearest is 0 alone, and it says it holds 89%.
    assert shown(mostly_zero, 0.5) == (0.0, 0.0, pytest.approx(0.89))


def test_a_90_percent_interval_is_a_range_while_the_runs_disagree() -> None:
    assert shown({0: 97, 1: 3}, 0.9) == (0.0, 1.0, pytest.approx(1.0))
    # 5-6 holds 98%, 4-5 holds 99%: both ranges, the first nearer 90% (it misses more often).
    assert shown({4: 2, 5: 97, 6: 1}, 0.9) == (5.0, 6.0, pytest.approx(0.98))
    assert shown({3: 100}, 0.9) == (3.0, 3.0, 1.0)  # every run agreed: certain


def test_a_50_percent_interval_may_be_the_one_value_holding_about_half() -> None:
    assert shown({0: 30, 1: 40, 2: 22, 3: 8}, 0.5) == (1.0, 1.0, pytest.approx(0.40))
    assert shown({0: 30, 1: 40, 2: 22, 3: 8}, 0.9) == (0.0, 2.0, pytest.approx(0.92))


def test_a_spread_out_count_gets_the_central_interval_at_its_level() -> None:
    flat = {k: 5 for k in range(20)}
    assert shown(flat, 0.9) == (1.0, 18.0, pytest.approx(0.90))
    assert shown(flat, 0.5) == (5.0, 14.0, pytest.approx(0.50))


def test_the_same_runs_always_show_the_same_interval() -> None:
    x = runs({0: 60, 1: 25, 2: 10, 3: 5})
    shuffled = np.random.default_rng(3).permutation(x)
    for level in (0.9, 0.5):
        a, b = interval(x, level), interval(shuffled, level)
        assert (a.lo, a.hi, a.chance) == (b.lo, b.hi, b.chance)


def test_an_interval_says_its_own_chance_when_it_is_far_from_the_level() -> None:
    assert span(0, 1, 0.98, 0.9) == "<5-<5, 98% chance"
    assert span(12, 30, 0.91, 0.9) == "12-30"
    assert span(18, 18, 1.0, 0.9) == "18, certain"
    assert span(3, 9, 1.0, 0.9) == "<5-9, over 99% chance"  # a range is never "certain"


def test_the_report_scores_each_area_by_the_same_rule_and_says_what_a_right_model_gives() -> None:
    from reach.evaluate import Observed, evaluate
    from reach.predict import AreaReach
    from reach.report import render_traces

    def area(code: str, pmf: dict[int, int]) -> AreaReach:
        x = runs(pmf)
        return AreaReach(code, 10, 0, interval(x, 0.9), interval(x * 0, 0.9), x, x * 0)

    quiet, busy = area("Q", {0: 89, 1: 9, 2: 2}), area("B", {k: 5 for k in range(20)})
    ev = evaluate([quiet, busy], {"Q": Observed(2, 0), "B": Observed(12, 0)}, levels=(0.5, 0.9))
    assert [(r.area, r.lo, r.hi, r.inside) for r in ev.rows] == [
        ("Q", 0, 1, False), ("B", 1, 18, True)]
    assert ev.rows[0].chance == pytest.approx(0.98)
    assert ev.expected == {0.5: pytest.approx((0.89 + 0.5) / 2),
                           0.9: pytest.approx((0.98 + 0.9) / 2)}
    text = render_traces(ev, busy, 14)
    assert "\nQ: predicted <5 (<5-<5, 98% chance), observed <5 [OUT]\n" in text
    assert "\nB: predicted 10 (<5-18), observed 12 [in]\n" in text
    assert "at 50%: 50% (a right model: 70%), 90%: 50%." in text


def test_the_recent_line_says_how_often_a_right_model_would_have_held() -> None:
    from reach.report import RecentCheck, render_recent

    checks = [RecentCheck(9, 0, 3, 1, 0.99), RecentCheck(8, 0, 2, 4, 0.98)]
    assert render_recent(checks, 0.9) == (
        "The model's 90% interval held in 1 of the last 2 notice(s) (missed: F8); a right model "
        "would hold in about 2.")
    near = [RecentCheck(9, 0, 3, 1, 0.91), RecentCheck(8, 0, 2, 4, 0.88)]
    assert render_recent(near, 0.9).endswith("(missed: F8).")


def test_an_end_moves_one_value_when_that_brings_the_chance_nearer_in_odds() -> None:
    # Central: 0-2 (tails 0% and 6%) holds 94%; 0-1 holds 85%, nearer 90% in log-odds
    # (1.73 and 2.75 against 2.20): it misses 1.5 times as often as said, 0-2 0.6 times.
    assert shown({0: 60, 1: 25, 2: 9, 3: 6}, 0.9) == (0.0, 1.0, pytest.approx(0.85))
