"""Unit benches: rtl/'s popcount, adder tree and layer engine, converted standalone and simulated with cocotb,
checked against bnn_hw.golden on random and corner-case vectors (all ones, all zeros, alternating, one-hot ends,
widths that are not multiples of SIMD or PE). Icarus runs every case by default; the Verilator variants (slower
builds; Verilator runs the whole network by default in test_sim_network.py) with -m slow.
"""

from __future__ import annotations

import numpy as np
import pytest
from bnn_hw.sim import tools

from bnn_hw import golden
from bnn_hw.model import Layer
from bnn_hw.packing import pack_bits

pytest.importorskip("amaranth")
pytest.importorskip("cocotb")

from bnn_hw.rtl.adder_tree import AdderTree  # noqa: E402
from bnn_hw.rtl.engine import LayerEngine  # noqa: E402
from bnn_hw.rtl.folding import fold_layer  # noqa: E402
from bnn_hw.rtl.popcount import Popcount  # noqa: E402
from bnn_hw.sim.units import run_pipeline, run_stream, to_verilog  # noqa: E402

SIMS = ["icarus", pytest.param("verilator", marks=pytest.mark.slow)]


def need(sim: str) -> None:
    ok, why = tools.available(sim)
    if not ok:
        pytest.skip(why)


def corner_vectors(k: int, n_random: int, rng: np.random.Generator) -> np.ndarray:
    """bool (n, k): all zeros, all ones, 0101..., 1010..., first bit only, last bit only, then random rows."""
    fixed = [
        np.zeros(k, bool),
        np.ones(k, bool),
        np.arange(k) % 2 == 1,
        np.arange(k) % 2 == 0,
        np.arange(k) == 0,
        np.arange(k) == k - 1,
    ]
    rand = rng.random((n_random, k)) < rng.uniform(0.05, 0.95, size=(n_random, 1))
    return np.vstack([np.array(fixed), rand])


def bits_to_int(row: np.ndarray) -> int:
    return int.from_bytes(np.packbits(row, bitorder="little").tobytes(), "little")


# -------------------------------------------------------------------------------------------------- popcount


@pytest.mark.parametrize(
    "sim, width",
    [
        ("icarus", 1),
        ("icarus", 7),
        ("icarus", 37),
        ("icarus", 100),
        ("icarus", 300),
        pytest.param("verilator", 100, marks=pytest.mark.slow),
        pytest.param("verilator", 37, marks=pytest.mark.slow),
    ],
)
def test_popcount_matches_golden(sim: str, width: int, tmp_path_factory) -> None:
    need(sim)
    work = tmp_path_factory.mktemp(f"pc{width}")
    rng = np.random.default_rng(width)
    x = corner_vectors(width, 120, rng)
    pc = Popcount(width)
    src = to_verilog(pc, f"popcount_{width}", work)
    got = run_pipeline(src, f"popcount_{width}", "bits", "count", [bits_to_int(r) for r in x], pc.latency, sim, work)
    # golden's XNOR popcount against an all-ones row counts the ones of x
    want = golden.xnor_popcount(pack_bits(x), pack_bits(np.ones((1, width), bool)), width)[:, 0]
    assert got == want.tolist()


@pytest.mark.parametrize("sim", SIMS)
def test_adder_tree_sums_pixels(sim: str, tmp_path_factory) -> None:
    need(sim)
    work = tmp_path_factory.mktemp("adder")
    count, bits = 13, 8
    rng = np.random.default_rng(5)
    vals = rng.integers(0, 256, size=(100, count))
    vals[0], vals[1] = 0, 255
    tree = AdderTree(count, bits)
    src = to_verilog(tree, "adder_tree_13", work)
    # bit planes: bit b of value i is bit b*count + i of the input word
    words = [
        sum(((int(v) >> b) & 1) << (b * count + i) for i, v in enumerate(row) for b in range(bits)) for row in vals
    ]
    got = run_pipeline(src, "adder_tree_13", "planes", "total", words, tree.latency, sim, work)
    assert got == vals.sum(axis=1).tolist()


# ------------------------------------------------------------------------------------------------ layer engine


def make_layer(kind_in: str, kind_out: str, mw: int, mh: int, seed: int) -> tuple[Layer, np.ndarray]:
    """A random dense layer with thresholds at per-neuron quantiles of its accumulators on the test inputs (so the
    output bits are mixed and some sit exactly on the threshold), plus the inputs (corner vectors first)."""
    rng = np.random.default_rng(seed)
    if kind_in == "bits":
        x = corner_vectors(mw, 40, rng)
    else:
        x = rng.integers(0, 256, size=(46, mw)).astype(np.uint8)
        x[0], x[1] = 0, 255
        x[2] = np.where(np.arange(mw) % 2, 255, 0)
    layer = Layer(
        kind="dense",
        input=kind_in,
        output=kind_out,
        in_shape=(mw,),
        out_features=mh,
        weights=pack_bits(rng.random((mh, mw)) < 0.5),
    )
    if kind_out == "bits":
        acc = golden.layer_accumulators(layer, x)
        q = rng.uniform(0.2, 0.8, size=mh)
        t = np.array([np.quantile(acc[:, j], q[j], method="nearest") for j in range(mh)], dtype=np.int64)
        lo, hi = layer.acc_range
        t[0], t[-1] = lo, hi + 1  # always +1, never +1
        layer = layer.replace(thresholds=t)
    else:
        layer = layer.replace(bias=rng.integers(-20, 21, size=mh).astype(np.int64))
    return layer, x


ENGINE_CASES = [
    # (input, output, MW, MH, PE, SIMD): none of these folds divide evenly
    ("bits", "bits", 100, 13, 4, 16),
    ("pixels", "bits", 50, 7, 3, 8),
    ("bits", "scores", 37, 10, 4, 8),
    ("pixels", "scores", 30, 5, 2, 7),
]


@pytest.mark.parametrize("case", ENGINE_CASES, ids=["-".join(map(str, c)) for c in ENGINE_CASES])
@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_layer_engine_matches_golden(sim: str, case, tmp_path_factory) -> None:
    need(sim)
    kind_in, kind_out, mw, mh, pe, simd = case
    work = tmp_path_factory.mktemp("engine")
    layer, x = make_layer(kind_in, kind_out, mw, mh, seed=mw * 31 + mh)
    fold = fold_layer(0, layer, pe, simd)
    engine = LayerEngine(layer, fold)
    name = f"engine_{kind_in}_{kind_out}_{mw}_{mh}"
    src = to_verilog(engine, name, work)
    eb = fold.elem_bits
    words = []
    for row in x:
        padded = np.zeros(fold.SF * simd, dtype=np.int64)
        padded[:mw] = row
        for sf in range(fold.SF):
            lanes = padded[sf * simd : (sf + 1) * simd]
            words.append(sum(int(v) << (eb * j) for j, v in enumerate(lanes)))
    n_out = len(x) * fold.NF
    res = run_stream(src, name, words, n_out, sim, work, gap=0.3, stall=0.3, seed=mw)
    got = res["received"]
    assert len(got) == n_out, f"{len(got)} output beats, expected {n_out}"
    assert None not in got, "x/z bits in an output beat"
    ref = golden.apply_layer(layer, x if kind_in == "pixels" else x.astype(bool)).out
    out_bits = engine.out_bits
    mask = (1 << out_bits) - 1
    fields = np.array([[(w >> (p * out_bits)) & mask for p in range(pe)] for w in got], dtype=np.int64)
    fields = fields.reshape(len(x), fold.NF * pe)[:, :mh]
    if kind_out == "scores":
        fields = np.where(fields >= 1 << (out_bits - 1), fields - (1 << out_bits), fields)
        assert np.array_equal(fields, ref)
    else:
        assert np.array_equal(fields.astype(bool), ref)
        assert 0 < ref.mean() < 1  # mixed output bits: the comparison is really exercised
