"""Automatic folding: balanced layers that meet a cycle target or a LUT budget, and its errors."""

from __future__ import annotations

import pytest

from bnn_hw.errors import BnnError
from rtl.autofold import _cost, auto_fold, cheapest_fold
from rtl.folding import make_plan
from rtl.testing import random_dense_model, random_model


@pytest.fixture(scope="module")
def mlp():
    return random_dense_model([64, 48, 10], (10, 10, 1), seed=0)


@pytest.mark.parametrize("target", [1, 7, 50, 300, 5000, 10 ** 6])
def test_target_cycles_met_and_tight(mlp, target):
    pe, simd = auto_fold(mlp, target_cycles=max(target, 1))
    plan = make_plan(mlp, pe, simd)
    for f in plan.layers:
        assert f.cycles_per_image <= max(target, 1)
    # nothing cheaper meets the target: every other (PE, SIMD) with fewer lanes is too slow
    for layer, f in zip(mlp.layers, plan.layers, strict=True):
        c = cheapest_fold(layer, target)
        assert (f.PE, f.SIMD) == c[:2]


def test_lut_budget_is_monotone_and_respected(mlp):
    prev = None
    for budget in (500, 1500, 5000, 20000):
        pe, simd = auto_fold(mlp, lut_budget=budget)
        plan = make_plan(mlp, pe, simd)
        assert _cost(mlp.layers, plan.cycles_per_image) <= budget
        if prev is not None:
            assert plan.cycles_per_image <= prev
        prev = plan.cycles_per_image
    with pytest.raises(BnnError, match="below the smallest possible design"):
        auto_fold(mlp, lut_budget=10)


def test_conv_folding_respects_divisibility():
    model = random_model([("conv", 6, 3, 1, 1, None, 2), ("dense", 4)], (6, 6, 4), seed=1, binarize_at=128)
    for target in (324, 1000, 5000):  # fastest: 36 pixels x 9 window words at SIMD = C
        pe, simd = auto_fold(model, target_cycles=target)
        assert 6 % pe[0] == 0 and 4 % simd[0] == 0
        make_plan(model, pe, simd)  # valid
    with pytest.raises(BnnError, match="needs at least 324 cycles"):
        auto_fold(model, target_cycles=323)
