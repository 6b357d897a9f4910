"""Automatic folding: balanced layers that meet a cycle target or a LUT budget, and its errors."""

from __future__ import annotations

import pytest
from bnn_hw.rtl.autofold import _cost, auto_fold, cheapest_fold
from bnn_hw.rtl.folding import make_plan
from bnn_hw.rtl.testing import random_dense_model, random_model

from bnn_hw.errors import BnnError


@pytest.fixture(scope="module")
def mlp():
    return random_dense_model([64, 48, 10], (10, 10, 1), seed=0)


@pytest.mark.parametrize("target", [1, 7, 50, 300, 5000, 10**6])
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


@pytest.fixture(scope="module")
def wide():
    # layer 1 (300 -> 300 bits) fully parallel would be a 90,000-bit weight word: too wide for Amaranth
    return random_dense_model([300, 300, 10], (10, 10, 1), seed=2)


def _within_limit(model, pe, simd):
    from bnn_hw.rtl.folding import MAX_SIGNAL_BITS, fold_widths

    plan = make_plan(model, pe, simd)  # raises on any signal over the limit
    for i, f in enumerate(plan.layers):
        in_elems, in_bits = (plan.pixels_per_beat, 8) if i == 0 else (plan.layers[i - 1].PE, 1)
        assert max(bits for bits, _, _ in fold_widths(f, in_elems, in_bits)) <= MAX_SIGNAL_BITS
    return plan


def test_auto_never_picks_a_weight_word_over_the_amaranth_limit(wide):
    from bnn_hw.rtl.autofold import fastest_buildable

    # fully parallel would take 1 cycle; within 65,535 bits per signal layer 1 needs 2 folds (e.g. 300 x 150)
    assert fastest_buildable(wide.layers) == 2
    with pytest.raises(
        BnnError,
        match=r"--target-cycles 1: layer 1 .*65,535-bit limit.*fastest buildable design "
        r"needs 2 cycles per image: use --target-cycles 2 or more",
    ):
        auto_fold(wide, target_cycles=1)
    pe, simd = auto_fold(wide, target_cycles=2)
    assert _within_limit(wide, pe, simd).cycles_per_image == 2
    # an unlimited LUT budget gives the fastest buildable design, not the unbuildable fully parallel one
    pe, simd = auto_fold(wide, lut_budget=10**9)
    assert _within_limit(wide, pe, simd).cycles_per_image == 2


def test_explicit_folding_over_the_limit_is_refused_before_elaboration(wide):
    with pytest.raises(BnnError) as err:
        make_plan(wide, [100, 300, 10], [100, 300, 300])
    assert str(err.value) == (
        "layer 1 (dense 300 -> 300 [bits in, bits out]): PE x SIMD = 300 x 300 = 90,000 bits "
        "per weight word; Amaranth signals are limited to 65,535 bits: lower --pe or --simd"
    )
    _within_limit(wide, [100, 300, 10], [100, 218, 300])  # 65,400 bits: fine
    with pytest.raises(BnnError, match="PE x SIMD = 300 x 219 = 65,700 bits"):
        make_plan(wide, [100, 300, 10], [100, 219, 300])


def test_other_wide_signals_are_checked():
    from bnn_hw.rtl.folding import max_pixels_per_beat

    # pixel layer: SIMD x 8 bits per input word, and the input converter buffers (SIMD + P rounded up) x 8 bits
    pix = random_dense_model([2, 10], (100, 100, 1), seed=3)
    with pytest.raises(
        BnnError,
        match=r"layer 0 .*width converter from 4096 to 4096 elements of 8 bits buffers "
        r"65,536 bits.*lower --simd or --pixels-per-beat",
    ):
        make_plan(pix, [1, 10], [4096, 2])
    make_plan(pix, [1, 10], [4095, 2])
    with pytest.raises(BnnError, match=r"--pixels-per-beat 9000: the input port would be 8 x 9000 = 72,000 bits"):
        make_plan(pix, [1, 10], [16, 2], 9000)
    assert max_pixels_per_beat() == 8191
    # fully parallel cannot be built; the fastest that can reads 10,000 pixels as three words of at most 4,095
    with pytest.raises(BnnError, match="layer 0 .*fastest buildable design needs 3 cycles per image"):
        auto_fold(pix, target_cycles=1)
    pe, simd = auto_fold(pix, target_cycles=3)
    assert _within_limit(pix, pe, simd).cycles_per_image == 3
