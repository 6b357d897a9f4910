"""Each rtl/ component alone in Amaranth's simulator, against numpy / bnn_hw.golden on random data (odd widths)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("amaranth")

from amaranth.sim import Simulator  # noqa: E402
from bnn_hw.rtl.adder_tree import AdderTree  # noqa: E402
from bnn_hw.rtl.argmax import ArgMax  # noqa: E402
from bnn_hw.rtl.bitheap import heap_latency  # noqa: E402
from bnn_hw.rtl.engine import LayerEngine  # noqa: E402
from bnn_hw.rtl.folding import fold_layer, signed_width  # noqa: E402
from bnn_hw.rtl.pe_array import PEArray  # noqa: E402
from bnn_hw.rtl.popcount import Popcount  # noqa: E402
from bnn_hw.rtl.testing import decode_result, random_dense_model  # noqa: E402
from bnn_hw.rtl.timing import (  # noqa: E402
    _ArgMax,
    argmax_delay,
    argmax_result_depth,
    weight_bank_words,
    weight_banks,
)
from bnn_hw.rtl.width_converter import WidthConverter  # noqa: E402

from bnn_hw import golden  # noqa: E402
from bnn_hw.errors import BnnError  # noqa: E402


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("width, first_group", [(1, 6), (2, 6), (3, 3), (7, 6), (13, 3), (64, 3), (100, 6), (257, 3)])
def test_popcount_random(width, first_group):
    dut = Popcount(width, first_group=first_group)
    rng = np.random.default_rng(width)
    words = [int(rng.integers(0, 2, width).dot(1 << np.arange(width, dtype=object))) for _ in range(40)]
    words += [0, (1 << width) - 1]
    got = []

    async def bench(ctx):
        for cycle in range(len(words) + dut.latency):
            if cycle < len(words):
                ctx.set(dut.bits, words[cycle])
            if cycle >= dut.latency:
                got.append(ctx.get(dut.count))
            await ctx.tick()

    _run(dut, bench)
    assert got == [bin(w).count("1") for w in words]


@pytest.mark.parametrize(
    "count, vw, group",
    [(1, 8, 6), (5, 8, 6), (16, 8, 6), (3, 1, 6), (11, 4, 6), (1, 8, 3), (7, 8, 3), (32, 8, 3), (11, 4, 3)],
)
def test_adder_tree_random(count, vw, group):
    dut = AdderTree(count, vw, first_group=group)
    rng = np.random.default_rng(count * 7 + vw)
    vecs = [rng.integers(0, 1 << vw, count) for _ in range(30)] + [np.full(count, (1 << vw) - 1)]
    got = []

    async def bench(ctx):
        for cycle in range(len(vecs) + dut.latency):
            if cycle < len(vecs):
                planes = sum(
                    ((int(v) >> b) & 1) << (b * count + i) for i, v in enumerate(vecs[cycle]) for b in range(vw)
                )
                ctx.set(dut.planes, planes)
            if cycle >= dut.latency:
                got.append(ctx.get(dut.total))
            await ctx.tick()

    _run(dut, bench)
    assert got == [int(v.sum()) for v in vecs]


def test_component_parameters_are_validated():
    with pytest.raises(ValueError, match="width must be a positive integer"):
        Popcount(0)
    with pytest.raises(ValueError, match="first_group"):
        Popcount(8, first_group=2)
    with pytest.raises(ValueError, match="count"):
        AdderTree(0, 8)
    with pytest.raises(ValueError, match="in_elems"):
        WidthConverter(0, 4, 10)
    with pytest.raises(ValueError, match="pe=11 exceeds"):
        ArgMax(10, 11, 8)
    model = random_dense_model([5, 3], (2, 2, 1), seed=0)
    with pytest.raises(BnnError, match="PE=6 must be between 1 and the layer's 5"):
        fold_layer(0, model.layers[0], 6, 2)
    assert heap_latency([1]) == 1


def test_signed_width():
    assert signed_width(0, 0) == 1
    assert signed_width(-1, 0) == 1
    assert signed_width(-128, 127) == 8
    assert signed_width(-129, 127) == 9
    assert signed_width(0, 128) == 9


@pytest.mark.parametrize(
    "ni, no, total, eb",
    [(4, 4, 13, 1), (3, 8, 19, 1), (8, 3, 19, 1), (6, 4, 7, 8), (5, 7, 5, 1), (1, 1, 3, 8), (16, 6, 50, 1)],
)
def test_width_converter_regroups_and_zero_pads(ni, no, total, eb):
    dut = WidthConverter(ni, no, total, elem_bits=eb)
    rng = np.random.default_rng(ni * 100 + no)
    vectors = [rng.integers(0, 1 << eb, total) for _ in range(5)]
    in_beats = -(-total // ni)
    beats = []
    for v in vectors:
        padded = np.concatenate([v, rng.integers(0, 1 << eb, in_beats * ni - total)])  # noise in spare slots
        beats += [sum(int(e) << (j * eb) for j, e in enumerate(padded[b * ni : (b + 1) * ni])) for b in range(in_beats)]
    words_per = -(-total // no)
    expect = []
    for v in vectors:
        padded = np.concatenate([v, np.zeros(words_per * no - total, dtype=v.dtype)])
        expect += [
            sum(int(e) << (j * eb) for j, e in enumerate(padded[w * no : (w + 1) * no])) for w in range(words_per)
        ]
    got = []
    gaps = np.random.default_rng(3)

    async def bench(ctx):
        qi = 0
        for _ in range(20 * (len(beats) + len(expect)) + 50):
            valid = qi < len(beats) and gaps.random() < 0.7
            ready = gaps.random() < 0.6
            ctx.set(dut.i.valid, int(valid))
            if valid:
                ctx.set(dut.i.payload, beats[qi])
            ctx.set(dut.o.ready, int(ready))
            if valid and ctx.get(dut.i.ready):
                qi += 1
            if ready and ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
            await ctx.tick()

    _run(dut, bench)
    assert got == expect


@pytest.mark.parametrize("classes, pe", [(10, 3), (7, 7), (5, 1), (1, 1)])
def test_argmax_first_index_of_maximum(classes, pe):
    sb = 6
    dut = ArgMax(classes, pe, sb)
    rng = np.random.default_rng(classes * 10 + pe)
    images = [rng.integers(-4, 4, classes) for _ in range(12)]  # small range: many ties
    images.append(np.full(classes, -32))
    images.append(np.full(classes, 31))
    beats_per = -(-classes // pe)
    beats = []
    for s in images:
        padded = np.concatenate([s, rng.integers(-32, 32, beats_per * pe - classes)])  # noise in padding fields
        beats += [
            sum((int(v) & 63) << (p * sb) for p, v in enumerate(padded[f * pe : (f + 1) * pe]))
            for f in range(beats_per)
        ]
    got = []

    async def bench(ctx):
        qi = 0
        flip = np.random.default_rng(1)
        for _ in range(4 * len(beats) + 20):
            valid = qi < len(beats) and flip.random() < 0.8
            ready = flip.random() < 0.5
            ctx.set(dut.i.valid, int(valid))
            if valid:
                ctx.set(dut.i.payload, beats[qi])
            ctx.set(dut.o.ready, int(ready))
            if valid and ctx.get(dut.i.ready):
                qi += 1
            if ready and ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
            await ctx.tick()

    _run(dut, bench)
    decoded = [decode_result(w, dut.class_bits, sb, classes) for w in got]
    assert [d[0] for d in decoded] == [int(np.argmax(s)) for s in images]
    assert [d[1] for d in decoded] == [s.tolist() for s in images]


@pytest.mark.parametrize(
    "classes, pe, valid_p, ready_p",
    [(10, 4, 1.0, 1.0), (10, 8, 0.9, 0.7), (13, 5, 0.7, 0.4), (16, 16, 1.0, 0.3), (3, 2, 1.0, 1.0), (9, 9, 0.5, 0.9)],
)
def test_argmax_tree_against_numpy_and_timing_model(classes, pe, valid_p, ready_p):
    """The pipelined tree: first index of the maximum over ties, negative and extreme scores, padding fields with
    larger values than any real score, beats back to back; every handshake in the cycle rtl/timing.py predicts."""
    sb = 7
    dut = ArgMax(classes, pe, sb)
    assert dut.delay == argmax_delay(pe)
    rng = np.random.default_rng(classes * 100 + pe)
    images = [rng.integers(-3, 3, classes) for _ in range(10)]  # many ties
    images += [rng.integers(-64, 64, classes) for _ in range(6)]
    images += [np.full(classes, -64), np.full(classes, 63), np.arange(classes) - 64, 63 - np.arange(classes)]
    beats_per = -(-classes // pe)
    beats = []
    for s in images:
        padded = np.concatenate([s, np.full(beats_per * pe - classes, 63)])  # padding must never win
        beats += [
            sum((int(v) & 127) << (p * sb) for p, v in enumerate(padded[f * pe : (f + 1) * pe]))
            for f in range(beats_per)
        ]
    got, mismatch = [], []
    model = _ArgMax(beats_per, argmax_delay(pe), argmax_result_depth(pe, beats_per))
    assert dut.depth == model.depth

    async def bench(ctx):
        qi = 0
        flip = np.random.default_rng(pe)
        for cycle in range(8 * len(beats) + 40):
            valid = qi < len(beats) and flip.random() < valid_p
            ready = flip.random() < ready_p
            ctx.set(dut.i.valid, int(valid))
            if valid:
                ctx.set(dut.i.payload, beats[qi])
            ctx.set(dut.o.ready, int(ready))
            if (ctx.get(dut.i.ready), ctx.get(dut.o.valid)) != (model.ready(ready), model.valid(True)):
                mismatch.append(cycle)
            accept = valid and bool(ctx.get(dut.i.ready))
            if accept:
                qi += 1
            if ready and ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
            model.step(cycle, accept, ready and model.valid(True))
            await ctx.tick()

    _run(dut, bench)
    assert mismatch == []
    decoded = [decode_result(w, dut.class_bits, sb, classes) for w in got]
    assert [d[0] for d in decoded] == [int(np.argmax(s)) for s in images]
    assert [d[1] for d in decoded] == [s.tolist() for s in images]


@pytest.mark.parametrize(
    "sizes, shape, pe, simd, binarize",
    [
        ([11, 4], (1, 1, 23), 3, 5, 128),  # bits in, bits out, odd everything
        ([9], (1, 1, 17), 4, 6, 128),  # bits in, scores out
        ([7, 3], (1, 1, 10), 2, 3, None),  # pixels in, bits out
        ([5], (1, 1, 6), 5, 4, None),  # pixels in, scores out
        ([28, 3], (1, 1, 1540), 4, 9, 128),  # 7 x 172 = 1,204 words of 36 bits: three banks of 512 (3 RAMs, not 4)
        ([7], (1, 1, 1027), 6, 6, None),  # pixels in, scores out, 2 x 172 = 344 words: one bank (below 512)
        ([13], (1, 1, 1027), 13, 6, None),  # 4 input-word copies behind 2 replicated delay registers, one bank
        ([40, 3], (1, 1, 1540), 13, 5, 128),  # the same with three banks (1,232 words of 65 bits)
    ],
)
def test_engine_against_golden(sizes, shape, pe, simd, binarize):
    model = random_dense_model(sizes, shape, seed=pe * simd, binarize_at=binarize)
    layer = model.layers[0]
    fold = fold_layer(0, layer, pe, simd)
    dut = LayerEngine(layer, fold)
    assert dut.banks == weight_banks(fold) == (3 if fold.MW == 1540 else 1)
    # block-RAM weight memories (MW > 1000) have an address transport register and three data registers after the
    # RAM (banked ones: a register per bank, one after the bank mux and one to the datapath)
    assert dut.read_cycles == (5 if fold.MW > 1000 else 2)
    assert dut.address_cycles == (1 if fold.MW > 1000 else 0)
    # more than X_COPIES_PER_GROUP copies of the input word, and a delay register to replicate: a two-level tree
    assert dut.x_groups == (2 if pe == 13 else 1)
    rng = np.random.default_rng(9)
    images = rng.integers(0, 256, size=(6, *shape), dtype=np.uint8)
    x = images.reshape(len(images), -1)
    if binarize is not None:
        x = x >= binarize
    ref = golden.apply_layer(layer, x).out
    eb = fold.elem_bits
    words = []
    for v in x.astype(np.int64):
        padded = np.concatenate([v, np.zeros(fold.SF * simd - fold.MW, dtype=np.int64)])
        words += [
            sum(int(e) << (j * eb) for j, e in enumerate(padded[s * simd : (s + 1) * simd])) for s in range(fold.SF)
        ]
    got = []
    n_beats = len(images) * fold.NF

    async def bench(ctx):
        qi = 0
        flip = np.random.default_rng(2)
        while len(got) < n_beats:
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

    _run(dut, bench)
    ob = dut.out_bits
    fields = [[(w >> (p * ob)) & ((1 << ob) - 1) for p in range(pe)] for w in got]
    out = np.array([sum((fields[i * fold.NF + f] for f in range(fold.NF)), []) for i in range(len(images))])
    out = out[:, : fold.MH]
    if layer.output == "scores":
        out = np.where(out >= 1 << (ob - 1), out - (1 << ob), out)
        np.testing.assert_array_equal(out, ref)
    else:
        np.testing.assert_array_equal(out.astype(bool), ref)


def test_weight_banks_follow_block_ram_depth():
    """A weight memory deeper than one block RAM at its word width is split into RAM-deep banks."""
    model = random_dense_model([512, 512, 10], (28, 28, 1), seed=0)
    f = fold_layer(0, model.layers[0], 8, 16)  # 128-bit words: RAMs of 512 x 36, 64 x 49 = 3136 words
    assert (weight_bank_words(f), weight_banks(f)) == (512, 7)
    f = fold_layer(0, model.layers[0], 32, 32)  # 16 x 25 = 400 words: one bank
    assert weight_banks(f) == 1
    f = fold_layer(1, model.layers[1], 1, 8)  # 8-bit words, 512 x 64 = 32768: 16 RAMs at any width <= 9 bits
    assert (weight_bank_words(f), weight_banks(f)) == (16384, 2)  # the deepest of equals: 2 banks of 8 x 1 bit
    conv = random_dense_model([512, 10], (1, 1, 1152), seed=0)
    f = fold_layer(0, conv.layers[0], 32, 32)  # 16 x 36 = 576 words of 1,024 bits
    assert (weight_bank_words(f), weight_banks(f)) == (1024, 1)  # 57 RAMs of 1024 x 18, not 2 x 29 of 512 x 36
    f = fold_layer(2, model.layers[2], 2, 4)  # 5 x 128 x 8 bits = 5,120 bits but 640 words of 8 bits: one bank
    assert weight_banks(f) == 1


@pytest.mark.parametrize("pe, simd, pixels, double", [(3, 7, False, False), (2, 32, False, True), (2, 5, True, False)])
def test_pe_array_accumulates(pe, simd, pixels, double):
    """PEArray alone: random words, random fold starts; every accumulator checked every cycle against numpy."""
    aw = 16
    dut = PEArray(pe, simd, aw, pixels=pixels, double=double)
    rng = np.random.default_rng(pe * 100 + simd)
    n = 30
    xs = rng.integers(0, 256 if pixels else 2, size=(n, simd))
    ws = rng.integers(0, 2, size=(n, pe, simd))
    firsts = rng.random(n) < 0.3
    inits = rng.integers(-3000, 3000, size=(n, pe))
    if pixels:  # sum of w ? x : ~x (rtl/folding.py puts the -255 per zero weight into init)
        contrib = np.where(ws == 1, xs[:, None, :], 255 - xs[:, None, :]).sum(axis=2)
    else:
        contrib = (xs[:, None, :] != ws).sum(axis=2) * (2 if double else 1)
    expect, acc = [], np.zeros(pe, dtype=np.int64)
    for t in range(n):
        acc = np.where(firsts[t], inits[t], acc) + contrib[t]
        expect.append(acc.copy())
    eb = 8 if pixels else 1
    got = []

    async def bench(ctx):
        for cycle in range(n + dut.latency + 1):
            if cycle < n:
                ctx.set(dut.x, sum(int(v) << (j * eb) for j, v in enumerate(xs[cycle])))
                ctx.set(dut.w, sum(int(ws[cycle, p, j]) << (p * simd + j) for p in range(pe) for j in range(simd)))
            t = cycle - dut.latency
            ctx.set(dut.acc_en, int(0 <= t < n))
            if 0 <= t < n:
                ctx.set(dut.acc_first, int(firsts[t]))
                ctx.set(dut.init, sum((int(v) & ((1 << aw) - 1)) << (p * aw) for p, v in enumerate(inits[t])))
            if t >= 1:
                word = ctx.get(dut.acc)
                fields = [(word >> (p * aw)) & ((1 << aw) - 1) for p in range(pe)]
                got.append([f - (1 << aw) if f >> (aw - 1) else f for f in fields])
            await ctx.tick()

    _run(dut, bench)
    assert got == [e.tolist() for e in expect]
