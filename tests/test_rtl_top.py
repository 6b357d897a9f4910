"""Whole-accelerator tests in Amaranth's simulator: BnnTop against bnn_hw.golden, bit for bit, plus the exactness of
the control model (rtl/timing.py) that the manifest's cycle predictions come from."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("amaranth")

from bnn_hw.rtl.folding import make_plan  # noqa: E402
from bnn_hw.rtl.testing import random_dense_model, random_patterns, simulate_top  # noqa: E402
from bnn_hw.rtl.timing import simulate_control  # noqa: E402

from bnn_hw import golden  # noqa: E402

CASES = [
    # sizes, input shape, pe, simd, pixels_per_beat, binarize_at
    ([13, 7, 5], (3, 5, 1), [4, 3, 2], [4, 5, 3], None, None),
    ([16, 10], (4, 4, 2), [16, 10], [32, 16], None, None),  # PE = MH, SIMD = MW: one fold
    ([9, 11, 3], (5, 3, 1), [1, 11, 1], [1, 1, 11], 4, None),  # SIMD 1, PE 1
    ([12, 6], (3, 3, 3), [5, 4], [7, 5], 10, None),  # more pixels per beat than SIMD
    ([20, 9, 4], (6, 5, 1), [3, 4, 3], [6, 7, 5], 7, 128),  # binarize_at variant, odd everything
    ([1, 2], (1, 1, 1), [1, 1], [1, 1], None, None),  # the smallest network
    ([12, 5], (35, 44, 1), [4, 5], [9, 4], None, None),  # layer 0: 516 words of 36 bits in two weight banks
    ([40, 6], (12, 12, 1), [8, 6], [24, 8], None, None),  # layer 0: 192-bit words in width slices of 144 + 48
    ([64, 5], (36, 36, 1), [8, 5], [20, 8], None, None),  # layer 0: 520 words of 160 bits: 2 banks x 2 slices
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_top_matches_golden(case):
    sizes, shape, pe, simd, ppb, binarize_at = CASES[case]
    model = random_dense_model(sizes, shape, seed=case, binarize_at=binarize_at)
    plan = make_plan(model, pe, simd, ppb)
    rng = np.random.default_rng(100 + case)
    images = rng.integers(0, 256, size=(7, *shape), dtype=np.uint8)
    images[0] = 0
    images[1] = 255
    classes, scores, stamps = simulate_top(model, plan, images)
    ref = golden.run(model, images)
    np.testing.assert_array_equal(scores, ref.scores)
    np.testing.assert_array_equal(classes, ref.classes)
    # the control model predicts every handshake cycle exactly
    assert stamps == simulate_control(plan, len(images))
    # steady state: one result per predicted interval, no idle cycles
    gaps = np.diff(stamps["out"][2:])
    assert set(gaps.tolist()) == {plan.cycles_per_image}


@pytest.mark.parametrize("binarize_at", [None, 128])
def test_logic_weights_match_golden_with_the_block_timing(binarize_at):
    # layer 0: SIMD 70, two ROM address groups per PE; layer 1: one word (constant weights); layer 2: 6 words
    model = random_dense_model([12, 9, 5], (10, 7, 1), seed=21, binarize_at=binarize_at)
    plan = make_plan(model, [3, 9, 2], [70, 12, 5], 10, weights="logic")
    assert [f.weight_style for f in plan.layers] == ["logic"] * 3
    block = make_plan(model, [3, 9, 2], [70, 12, 5], 10, weights="block")
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, size=(5, 10, 7, 1), dtype=np.uint8)
    classes, scores, stamps = simulate_top(model, plan, images, gap=0.2, stall=0.3, seed=3)
    ref = golden.run(model, images)
    np.testing.assert_array_equal(scores, ref.scores)
    np.testing.assert_array_equal(classes, ref.classes)
    valid_at, ready_at = random_patterns(0.2, 0.3, 3)
    predicted = simulate_control(plan, len(images), input_valid=valid_at, result_ready=ready_at)
    assert stamps == predicted == simulate_control(block, len(images), input_valid=valid_at, result_ready=ready_at)


def test_auto_weight_style_takes_logic_only_for_shallow_block_ram_memories():
    from bnn_hw.errors import BnnError

    model = random_dense_model([64, 10], (8, 8, 1), seed=2, binarize_at=128)
    # layer 0: 16 words of 64 x 16 bits = 16,384 bits (block RAM, 16 deep) -> logic; layer 1: 640 bits -> block
    assert [f.weight_style for f in make_plan(model, [64, 10], [4, 16]).layers] == ["logic", "block"]
    # layer 0 at 128 words (8 x 16 bits, 16,384 bits) is deeper than 32 -> block
    assert [f.weight_style for f in make_plan(model, [8, 10], [8, 16]).layers] == ["block", "block"]
    with pytest.raises(BnnError, match="--weights must be one of auto, block, logic, got 'lut'"):
        make_plan(model, [8, 10], [8, 16], weights="lut")


def test_backpressure_and_gaps_keep_results_and_timing():
    model = random_dense_model([15, 8, 6], (4, 5, 1), seed=7)
    plan = make_plan(model, [4, 3, 4], [6, 4, 3], 3)
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(8, 4, 5, 1), dtype=np.uint8)
    classes, scores, stamps = simulate_top(model, plan, images, gap=0.3, stall=0.4, seed=11)
    ref = golden.run(model, images)
    np.testing.assert_array_equal(scores, ref.scores)
    np.testing.assert_array_equal(classes, ref.classes)
    valid_at, ready_at = random_patterns(0.3, 0.4, 11)
    assert stamps == simulate_control(plan, len(images), input_valid=valid_at, result_ready=ready_at)


def test_tied_scores_pick_first_index():
    model = random_dense_model([6, 5], (2, 2, 1), seed=3)
    last = model.layers[-1]
    weights = np.repeat(last.weights[:1], last.out_features, axis=0)  # every class neuron identical ...
    bias = np.zeros(last.out_features, np.int64)  # ... and the same bias: all scores tie, class must be 0
    bias[3] = bias[4] = 1  # now 3 and 4 tie for the maximum: class 3
    model = model.replace(layers=(*model.layers[:-1], last.replace(weights=weights, bias=bias)))
    plan = make_plan(model, [2, 2], [3, 4])
    images = np.random.default_rng(0).integers(0, 256, size=(3, 2, 2, 1), dtype=np.uint8)
    classes, scores, _ = simulate_top(model, plan, images)
    ref = golden.run(model, images)
    np.testing.assert_array_equal(scores, ref.scores)
    assert classes.tolist() == ref.classes.tolist() == [3, 3, 3]


@pytest.mark.parametrize("junk_beats", [3, 11])
def test_reset_clears_in_flight_state(junk_beats):
    model = random_dense_model([10, 6, 4], (3, 4, 1), seed=12)
    plan = make_plan(model, [3, 2, 3], [5, 4, 2], 5)  # 3 beats per image: junk_beats leaves partial images
    images = np.random.default_rng(4).integers(0, 256, size=(4, 3, 4, 1), dtype=np.uint8)
    classes, scores, stamps = simulate_top(model, plan, images, reset_after_beats=junk_beats)
    ref = golden.run(model, images)
    np.testing.assert_array_equal(scores, ref.scores)
    np.testing.assert_array_equal(classes, ref.classes)
    # after the reset the design behaves exactly like a fresh one
    base = stamps["in"][0]
    fresh = simulate_control(plan, len(images))
    assert [c - base for c in stamps["in"]] == fresh["in"]
    assert [c - base for c in stamps["out"]] == fresh["out"]
