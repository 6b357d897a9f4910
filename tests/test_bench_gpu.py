"""The parts of `bnn-hw bench gpu` that run without a GPU: operand generation in the format's bit order, the
workload choice, and the report of a record (the measuring itself is exercised on a GPU machine)."""

from __future__ import annotations

import numpy as np
import pytest
from bnn_hw.cuda_ref import bench_gpu
from bnn_hw.cuda_ref.bench_common import DEFAULT_MLP, load_workload, parse_mlp

from bnn_hw.errors import BnnError
from bnn_hw.packing import unpack_bits


@pytest.mark.parametrize("k", [1, 31, 32, 33, 784, 4097])
def test_random_operands_follow_the_format(k: int) -> None:
    ld = (k + 31) // 32 + 3
    words = bench_gpu._random_words(np.random.default_rng(k), 5, k, ld)
    signs = bench_gpu._signs(words, k)
    as64 = np.zeros((5, 2 * ((ld + 1) // 2)), np.uint32)
    as64[:, :ld] = words
    bits = unpack_bits(as64.view("<u8"), ld * 32)
    assert not bits[:, k:].any(), "bits past K must be 0"
    assert np.array_equal(signs, np.where(bits[:, :k], 1, -1))


def test_parse_mlp() -> None:
    assert parse_mlp("784-256-256-10") == DEFAULT_MLP
    for bad in ("", "784", "10-10", "784-x-10", "784-0-10"):
        with pytest.raises(BnnError):
            parse_mlp(bad)


def test_default_workload_says_what_it_is() -> None:
    work = load_workload(None, 100)
    assert work.images.shape == (100, 28, 28, 1)
    assert "random 784-256-256-10 MLP with seed 0" in work.model_note
    assert [layer.out_features for layer in work.model.layers] == [256, 256, 10]


def test_summary_of_a_record() -> None:
    t = {"seconds": 1.0, "macs_per_s": 1e12}
    record = {
        "device": {"name": "X", "compute_capability": [9, 0], "sms": 132, "sm_clock_hz_measured": 1.98e9},
        "ceilings": {"popc_bit_macs_per_s": 1.3e14, "bmma_bit_macs_per_s": 4e15},
        "matmul": {"m": 8192, "naive": dict(t, bit_exact=True), "torch_int8": {"error": "nope"}},
        "networks": [{"model": "m", "batches": {"256": {"cuda_ref_tiled": {"images_per_s": 5.0}}}}],
        "targets": {"tiled_vs_naive_8192": {"target": 25.0, "measured": None, "met": False}},
        "bit_exact": True,
    }
    text = "\n".join(bench_gpu.summary(record))
    assert "not run: nope" in text and "NOT met" in text and "bit-exact overall: yes" in text


def test_overall_bit_exactness_covers_every_check() -> None:
    """One wrong layer result (any tile, either block order), matmul result or network run makes the record not
    bit-exact."""

    def record() -> dict:
        return {
            "matmul": {"m": 8192, "bmma": {"bit_exact": True}, "bmma+bits": {"bit_exact": True}},
            "layers": [{"k": 784, "tiled": {"seconds": 1.0}, "bmma@m": {"equals_tiled": True}}],
            "networks": [
                {"batches": {"256": {"cuda_ref_bmma": {"golden_mismatches": 0, "equals_first_kernel": True}}}}
            ],
        }

    assert bench_gpu.overall_bit_exact(record())
    for path in (
        ("matmul", "bmma+bits", "bit_exact"),
        ("layers", 0, "bmma@m", "equals_tiled"),
        ("networks", 0, "batches", "256", "cuda_ref_bmma", "equals_first_kernel"),
    ):
        bad = record()
        node = bad
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = False
        assert not bench_gpu.overall_bit_exact(bad), path
