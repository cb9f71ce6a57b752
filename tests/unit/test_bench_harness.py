"""The bench's own arithmetic: a ratio of two p95s comes with how far resampling moves it."""

from __future__ import annotations

import random

import pytest

from bench.harness import percentile, ratio_interval


def test_rounds_exactly_a_tenth_slower_give_an_interval_of_one_point() -> None:
    floor = [0.08 + 0.001 * i for i in range(150)]
    assert ratio_interval([1.1 * x for x in floor], floor, 0.95) == pytest.approx((1.1, 1.1))


def test_noisy_rounds_give_an_interval_around_the_runs_own_ratio_and_the_same_each_time(
) -> None:
    draw = random.Random(7)
    floor = [draw.gauss(0.08, 0.01) for _ in range(150)]
    ours = [draw.gauss(0.09, 0.015) for _ in range(150)]
    low, high = ratio_interval(ours, floor, 0.95)
    assert low < percentile(ours, 0.95) / percentile(floor, 0.95) < high
    assert high - low > 0.05  # 150 rounds cannot pin a p95 ratio to a few hundredths
    assert ratio_interval(ours, floor, 0.95) == (low, high)
