"""Bootstrap intervals and the paired Wilcoxon test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from polyp_ray.stats import bootstrap_ci, paired_wilcoxon


def test_bootstrap_interval_covers_the_mean_and_is_seeded() -> None:
    values = np.random.default_rng(1).beta(5, 2, size=150)
    interval = bootstrap_ci(values)
    assert interval.low < values.mean() < interval.high
    assert interval.mean == pytest.approx(values.mean())
    assert 0.02 < interval.high - interval.low < 0.1  # ~ 4 standard errors of a 150-image mean
    assert bootstrap_ci(values) == interval


def test_bootstrap_by_draw_counts_is_the_plain_resampling_bootstrap() -> None:
    values = np.random.default_rng(5).random(150)
    draws = np.random.default_rng(0).integers(0, 150, (2000, 150))  # the same seeded draws, one chunk
    low, high = np.percentile(values[draws].mean(axis=1), [2.5, 97.5])
    interval = bootstrap_ci(values)
    assert (interval.low, interval.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))


def test_bootstrap_interval_narrows_with_more_images() -> None:
    rng = np.random.default_rng(2)
    small, large = bootstrap_ci(rng.random(20)), bootstrap_ci(rng.random(2000))
    assert large.high - large.low < (small.high - small.low) / 4


def test_bootstrap_of_constant_and_empty_scores() -> None:
    constant = bootstrap_ci([0.0] * 12)  # a trial that found nothing: BCa would be undefined here
    assert (constant.mean, constant.low, constant.high) == (0.0, 0.0, 0.0)
    empty = bootstrap_ci([])
    assert not empty.defined and math.isnan(empty.mean)


def test_wilcoxon_on_identical_scores_gives_no_p_value() -> None:
    scores = {f"img{i}": 0.1 * i for i in range(10)}
    test = paired_wilcoxon(scores, dict(scores))
    assert test.p_value is None and not test.distinguishable
    assert "same" in test.reason and test.n == 10


def test_wilcoxon_detects_a_consistent_shift() -> None:
    rng = np.random.default_rng(3)
    a = {f"img{i}": float(v) for i, v in enumerate(rng.random(40))}
    b = {stem: value - 0.05 - 0.01 * rng.random() for stem, value in a.items()}
    test = paired_wilcoxon(a, b)
    assert test.distinguishable and test.p_value < 1e-6
    assert test.mean_difference == pytest.approx(np.mean(list(a.values())) - np.mean(list(b.values())))


def test_wilcoxon_on_noise_is_not_distinguishable() -> None:
    rng = np.random.default_rng(4)
    a = {f"img{i}": float(v) for i, v in enumerate(rng.random(40))}
    b = {stem: float(v) for stem, v in zip(a, rng.permutation(list(a.values())), strict=True)}
    assert not paired_wilcoxon(a, b).distinguishable


def test_wilcoxon_pairs_images_by_stem() -> None:
    a = {"x": 0.9, "y": 0.8, "only_a": 0.0}
    b = {"y": 0.8, "x": 0.9, "only_b": 1.0}
    test = paired_wilcoxon(a, b)
    assert test.n == 2 and test.p_value is None  # matched by stem, x and y tie exactly
    assert paired_wilcoxon({"a": 1.0}, {"b": 1.0}).reason == "the two models share no test images"


def test_winner_stays_first_is_the_share_of_resamples_the_pick_keeps_its_lead() -> None:
    from polyp_ray.stats import winner_stays_first

    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.9, 60)
    clear = np.stack([base + 0.2, base, base - 0.1])  # better on every image: always first
    assert winner_stays_first(clear) == 1.0
    assert winner_stays_first(clear[::-1]) == 0.0  # the pick is worst on every image
    assert winner_stays_first(clear[::-1], maximise=False) == 1.0  # ... and best where lower wins
    noise = np.stack([base + rng.normal(0, 0.3, 60), base + rng.normal(0, 0.3, 60)])
    share = winner_stays_first(noise)
    assert 0.05 < share < 0.95  # pure noise: the resamples disagree
    assert share == winner_stays_first(noise)  # seeded
    # By hand: the pick leads a resample when its mean over the drawn images is at least the rival's.
    draws = np.random.default_rng(0).integers(0, 60, (300, 60))
    by_hand = np.mean(noise[0][draws].mean(axis=1) >= noise[1][draws].mean(axis=1))
    assert abs(share - by_hand) < 0.08
    assert winner_stays_first(noise[:1]) == 1.0 and math.isnan(winner_stays_first(np.zeros((2, 0))))
