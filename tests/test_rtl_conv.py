"""Convolution hardware (issue 9): sliding-window generator and OR pooling against bnn_hw.golden's im2col/or_pool,
and whole ConvNets through BnnTop, bit for bit, with the control model's cycle predictions checked exactly."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("amaranth")

from amaranth.sim import Simulator  # noqa: E402
from bnn_hw.rtl.folding import make_plan  # noqa: E402
from bnn_hw.rtl.pool import OrPool  # noqa: E402
from bnn_hw.rtl.testing import random_model, random_patterns, simulate_top  # noqa: E402
from bnn_hw.rtl.timing import simulate_control  # noqa: E402
from bnn_hw.rtl.window import SlidingWindow  # noqa: E402

from bnn_hw import golden  # noqa: E402
from bnn_hw.cli import main  # noqa: E402
from bnn_hw.model import Layer  # noqa: E402


def _stream(dut, words, n_out, seed):
    got = []
    flip = np.random.default_rng(seed)

    async def bench(ctx):
        qi = 0
        for _ in range(6 * (len(words) + n_out) + 100):
            valid = qi < len(words) and flip.random() < 0.8
            ready = flip.random() < 0.7
            ctx.set(dut.i.valid, int(valid))
            if valid:
                ctx.set(dut.i.payload, words[qi])
            ctx.set(dut.o.ready, int(ready))
            if valid and ctx.get(dut.i.ready):
                qi += 1
            if ready and ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize(
    "h, w, c, simd, k, s, p",
    [
        (5, 4, 2, 1, 3, 1, 1),  # every border, SIMD 1
        (6, 7, 4, 2, 3, 2, 1),  # stride 2, two words per pixel
        (4, 5, 3, 3, 2, 1, 0),  # no padding, even kernel
        (3, 3, 2, 2, 3, 1, 2),  # padding 2: windows entirely outside the map
        (5, 5, 1, 1, 5, 3, 0),  # kernel = map
    ],
)
def test_window_matches_im2col(h, w, c, simd, k, s, p):
    rng = np.random.default_rng(h * 31 + w)
    pad_bit = bool(rng.integers(0, 2))
    layer = Layer(
        kind="conv",
        input="bits",
        output="bits",
        in_shape=(h, w, c),
        out_features=1,
        weights=np.zeros((1, 1), np.uint64),
        kernel=k,
        stride=s,
        padding=p,
        pad_value=1 if pad_bit else -1,
    )
    maps = rng.random((3, h, w, c)) < 0.5
    ref = golden.im2col(maps, layer, pad_bit)  # (B, OH, OW, k*k*c)
    cw = c // simd
    words = [
        int(sum(int(b) << j for j, b in enumerate(maps[i, y, x, q * simd : (q + 1) * simd])))
        for i in range(3)
        for y in range(h)
        for x in range(w)
        for q in range(cw)
    ]
    dut = SlidingWindow(h, w, cw, k, s, p, simd, (1 << simd) - 1 if pad_bit else 0)
    n_out = ref.size // simd
    got = _stream(dut, words, n_out, seed=h)
    expect = [
        int(sum(int(b) << j for j, b in enumerate(v[q * simd : (q + 1) * simd])))
        for v in ref.reshape(-1, k * k * c)
        for q in range(k * k * cw)
    ]
    assert got == expect


@pytest.mark.parametrize(
    "oh, ow, pool, nf, pe", [(4, 4, 2, 1, 3), (5, 7, 2, 3, 2), (6, 6, 3, 2, 4), (3, 5, 1, 2, 2), (7, 5, 3, 1, 1)]
)
def test_or_pool_matches_golden(oh, ow, pool, nf, pe):
    rng = np.random.default_rng(oh * 10 + ow)
    n = nf * pe
    bits = rng.random((3, oh, ow, n)) < 0.3
    ref = golden.or_pool(bits, pool)
    words = [
        int(sum(int(b) << j for j, b in enumerate(bits[i, y, x, f * pe : (f + 1) * pe])))
        for i in range(3)
        for y in range(oh)
        for x in range(ow)
        for f in range(nf)
    ]
    dut = OrPool(oh, ow, pool, nf, pe)
    expect = [
        int(sum(int(b) << j for j, b in enumerate(v[f * pe : (f + 1) * pe])))
        for v in ref.reshape(-1, n)
        for f in range(nf)
    ]
    assert _stream(dut, words, len(expect), seed=pe) == expect


NETS = [
    # spec, input shape, pe, simd, pixels_per_beat, binarize_at
    (
        [("conv", 4, 3, 1, 1, None, 2), ("conv", 6, 3, 2, 1, None, 0), ("dense", 5)],
        (7, 6, 2),
        [2, 3, 5],
        [2, 2, 9],
        None,
        None,
    ),
    ([("conv", 3, 3, 1, 0, None, 2), ("dense", 7), ("dense", 3)], (7, 7, 1), [3, 7, 3], [1, 9, 7], 5, None),
    (
        [("conv", 4, 2, 1, 1, None, 3), ("conv", 2, 3, 1, 1, 1, 2), ("dense", 4)],
        (8, 8, 1),
        [4, 1, 2],
        [1, 2, 2],
        8,
        100,
    ),
]


@pytest.mark.parametrize("case", range(len(NETS)))
def test_convnet_matches_golden_and_timing(case):
    spec, shape, pe, simd, ppb, binarize_at = NETS[case]
    model = random_model(spec, shape, seed=case, binarize_at=binarize_at)
    plan = make_plan(model, pe, simd, ppb)
    images = np.random.default_rng(50 + case).integers(0, 256, size=(4, *shape), dtype=np.uint8)
    gap, stall = (0.2, 0.3) if case == 1 else (0.0, 0.0)
    classes, scores, stamps = simulate_top(model, plan, images, gap=gap, stall=stall, seed=case)
    ref = golden.run(model, images)
    np.testing.assert_array_equal(scores, ref.scores)
    np.testing.assert_array_equal(classes, ref.classes)
    v, r = random_patterns(gap, stall, case)
    assert stamps == simulate_control(plan, len(images), input_valid=v, result_ready=r)
    if not gap and not stall:
        assert set(np.diff(stamps["out"][1:]).tolist()) == {plan.cycles_per_image}


def test_conv_folding_errors(tmp_path, capsys):
    from bnn_hw import save_model

    model = random_model([("conv", 6, 3, 1, 1, None, 2), ("dense", 3)], (6, 6, 4), seed=1, binarize_at=128)
    path = tmp_path / "c.bnn"
    save_model(model, path)
    assert main(["rtl", str(path), "--pe", "4,3", "--simd", "4,9", "-o", str(tmp_path / "b")]) == 1
    assert "PE=4 must divide the 6 output channels" in capsys.readouterr().err
    assert main(["rtl", str(path), "--pe", "3,3", "--simd", "3,9", "-o", str(tmp_path / "b")]) == 1
    assert "SIMD=3 must divide the 4 input channels" in capsys.readouterr().err


@pytest.mark.parametrize("case", range(len(NETS)))
def test_stages_describe_the_top(case):
    """The top instantiates network_stages(plan) in order, each stage's widths are its component's, and the
    streams between neighbours have equal widths."""
    from amaranth.hdl import Fragment
    from bnn_hw.rtl.stages import EngineStage, PoolStage, WindowStage, network_stages
    from bnn_hw.rtl.top import BnnTop

    spec, shape, pe, simd, ppb, binarize_at = NETS[case]
    model = random_model(spec, shape, seed=case, binarize_at=binarize_at)
    plan = make_plan(model, pe, simd, ppb)
    stages = network_stages(plan)
    frag = Fragment.get(BnnTop(model, plan), None)
    assert [name for _, name, _ in frag.subfragments] == [s.name for s in stages]
    kinds = [type(s) for s in stages]
    assert kinds.count(EngineStage) == len(plan.layers)
    assert kinds.count(WindowStage) == sum(f.kind == "conv" for f in plan.layers)
    assert kinds.count(PoolStage) == sum(f.kind == "conv" and f.pool > 0 for f in plan.layers[:-1])
    for stage in stages:
        block = stage.build(model)
        assert (len(block.i.payload), len(block.o.payload)) == (stage.in_bits, stage.out_bits), stage.name
    for up, down in zip(stages[:-1], stages[1:], strict=True):
        assert up.out_bits == down.in_bits, (up.name, down.name)
    assert all((s.estimated_luts() or 0) > 0 for s in stages if isinstance(s, EngineStage))
