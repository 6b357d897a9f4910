"""The generated Verilog itself (not the Amaranth model) in Icarus Verilog: the hand-written heap modules against
numpy, and whole `bnn_top.v` files from `bnn-hw rtl` against bnn_hw.golden, bit for bit."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("amaranth")

from bnn_hw.rtl.bitheap import heap_latency  # noqa: E402
from bnn_hw.rtl.folding import make_plan  # noqa: E402
from bnn_hw.rtl.generate import generate  # noqa: E402
from bnn_hw.rtl.heap_verilog import adder_tree_module_name, adder_tree_verilog, popcount_module_name, popcount_verilog  # noqa: E402,E501
from bnn_hw.rtl.testing import decode_result, image_beats, random_dense_model, random_model  # noqa: E402

from bnn_hw import golden  # noqa: E402

pytestmark = pytest.mark.skipif(
    shutil.which("iverilog") is None or shutil.which("vvp") is None,
    reason="Icarus Verilog (iverilog, vvp) is not installed: apt-get install iverilog",
)


def _run(tmp_path, sources, tb):
    (tmp_path / "tb.v").write_text(tb)
    exe = tmp_path / "sim.vvp"
    subprocess.run(
        ["iverilog", "-g2012", "-o", str(exe), str(tmp_path / "tb.v"), *map(str, sources)],
        check=True,
        capture_output=True,
        text=True,
    )
    out = subprocess.run(["vvp", "-n", str(exe)], check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    return out


@pytest.mark.parametrize(
    "kind, a, b",
    [
        ("pc", 1, 6),
        ("pc", 7, 3),
        ("pc", 13, 3),
        ("pc", 64, 3),
        ("pc", 100, 6),
        ("pc", 257, 3),
        ("at", 5, 8),
        ("at", 16, 8),
        ("at", 3, 1),
        ("at3", 7, 8),
        ("at3", 32, 8),
    ],
)
def test_heap_modules_count_right(tmp_path, kind, a, b):
    if kind == "pc":
        name, text, width = popcount_module_name(a, b), popcount_verilog(a, b), a
        lat = heap_latency([a], b)
    else:
        g = 3 if kind == "at3" else 6
        name, text, width = adder_tree_module_name(a, b, g), adder_tree_verilog(a, b, g), a * b
        lat = heap_latency([a] * b, g)
    rng = np.random.default_rng(a * 10 + b)
    vecs = [int(v) for v in rng.integers(0, 1 << 62, size=40)]
    vecs = [sum(int(rng.integers(0, 2)) << i for i in range(width)) for _ in range(40)]
    vecs += [0, (1 << width) - 1]
    (tmp_path / "v.hex").write_text("\n".join(f"{v:x}" for v in vecs) + "\n")
    (tmp_path / "heap.v").write_text(text)
    qw = 32
    tb = f"""
module tb;
  reg clk = 0;
  reg [{width - 1}:0] mem [0:{len(vecs) - 1}];
  reg [{width - 1}:0] d = 0;
  wire [{qw - 1}:0] q;
  integer i;
  {name} dut(.clk(clk), .d(d), .q(q));
  initial begin
    $readmemh("v.hex", mem);
    for (i = 0; i < {len(vecs) + lat}; i = i + 1) begin
      if (i < {len(vecs)}) d = mem[i];
      #1 clk = 1; #1 clk = 0;
      if (i >= {lat - 1}) $display("%0d", q);
    end
    $finish;
  end
endmodule
"""
    got = [int(line) for line in _run(tmp_path, [tmp_path / "heap.v"], tb).split()]
    if kind == "pc":
        expect = [bin(v).count("1") for v in vecs]
    else:  # bit planes: bit b of value i at b*count + i
        expect = [sum(((v >> (bb * a + i)) & 1) << bb for i in range(a) for bb in range(b)) for v in vecs]
    assert got[: len(expect)] == expect


def _top_tb(man, n_beats, n_images):
    pw = man.ports["pixels__payload"]["width"]
    rw = man.ports["result__payload"]["width"]
    return f"""
`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 0;
  always #5 clk = ~clk;
  reg [{pw - 1}:0] beats [0:{n_beats - 1}];
  integer i = 0, n = 0;
  wire ready, rvalid;
  wire [{rw - 1}:0] rpayload;
  wire valid = (i < {n_beats});
  bnn_top dut(.clk(clk), .rst(rst), .pixels__valid(valid), .pixels__payload(beats[i < {n_beats} ? i : 0]),
              .pixels__ready(ready), .result__valid(rvalid), .result__ready(1'b1), .result__payload(rpayload));
  // rst rises after time 0: Yosys-written always @* blocks only evaluate on an input change
  initial begin $readmemh("beats.hex", beats); #1 rst = 1; #21 rst = 0; end
  always @(posedge clk) if (!rst) begin
    if (valid && ready) i <= i + 1;
    if (rvalid) begin $display("R %h", rpayload); n = n + 1; if (n == {n_images}) $finish; end
  end
  initial begin #{(n_images + 3) * (man.predicted.cycles_per_image + 100) * 10 + 100000} $display("TIMEOUT");
    $finish; end
endmodule
"""


@pytest.mark.parametrize("which", ["mlp", "convnet", "banked", "logic"])
def test_generated_top_matches_golden_in_icarus(tmp_path, which):
    if which == "mlp":
        model = random_dense_model([20, 11, 6], (4, 5, 1), seed=4)
        plan = make_plan(model, [6, 4, 3], [7, 5, 4], 6)
        shape = (4, 5, 1)
    elif which == "banked":  # layer 0's weights: 516 words of 36 bits, two block-RAM banks
        shape = (35, 44, 1)
        model = random_dense_model([12, 5], shape, seed=6)
        plan = make_plan(model, [4, 5], [9, 4])
    elif which == "logic":  # weights as constant ROMs; layer 0: two address groups per PE, layer 1: constants
        shape = (10, 7, 1)
        model = random_dense_model([12, 9, 5], shape, seed=21, binarize_at=128)
        plan = make_plan(model, [3, 9, 2], [70, 12, 5], 10, weights="logic")
    else:
        model = random_model([("conv", 4, 3, 1, 1, None, 2), ("dense", 9), ("dense", 4)], (6, 6, 2), seed=5)
        plan = make_plan(model, [2, 3, 2], [2, 16, 3], 4)
        shape = (6, 6, 2)
    man = generate(model, plan, tmp_path / "build", {"test": which})
    images = np.random.default_rng(9).integers(0, 256, size=(5, *shape), dtype=np.uint8)
    beats = [b for img in image_beats(images, plan.pixels_per_beat) for b in img]
    digits = (man.ports["pixels__payload"]["width"] + 3) // 4
    (tmp_path / "beats.hex").write_text("\n".join(f"{b:0{digits}x}" for b in beats) + "\n")
    out = _run(tmp_path, [tmp_path / "build" / "bnn_top.v"], _top_tb(man, len(beats), len(images)))
    assert "TIMEOUT" not in out
    words = [int(line.split()[1], 16) for line in out.splitlines() if line.startswith("R ")]
    decoded = [decode_result(w, plan.class_bits, plan.score_bits, plan.num_classes) for w in words]
    ref = golden.run(model, images)
    assert [d[1] for d in decoded] == ref.scores.tolist()
    assert [d[0] for d in decoded] == ref.classes.tolist()
