"""The PE x SIMD array: every PE XNORs (or, for pixels, multiplies by +-1) SIMD inputs with its SIMD weight bits,
sums them in a pipelined bit heap, and accumulates the sums over a neuron's synapse folds.

The accumulator starts at a per-neuron value (`init`, see rtl/folding.py) so that its sign is the threshold
compare; no comparator is needed.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from bnn_hw.rtl.adder_tree import AdderTree
from bnn_hw.rtl.bitheap import heap_latency
from bnn_hw.rtl.errors import reject
from bnn_hw.rtl.popcount import Popcount


class PEArray(wiring.Component):
    """PE processing elements of SIMD lanes with accumulators.

    Parameters
    ----------
    pe, simd : int
        Array size (PE x SIMD lanes).
    acc_bits : int
        Accumulator width (two's complement).
    pixels : bool
        8-bit unsigned inputs (the first layer): contribution = sum(w ? x : ~x) = sum(w ? x : -x) + 255 * zeros(w)
        (the init values carry the -255 * zeros, see rtl/folding.py).
        Otherwise 1-bit inputs: contribution = popcount(x XOR w) (mismatches), doubled when `double` is set.
    double : bool
        Accumulate 2 * popcount (the bits-in scores layer).
    rom : list[int] or None
        Logic weights: the weight words (PE x SIMD bits each, as `w` would carry them) become constants of the
        array. Instead of `w` the array takes the word's address `waddr`, ROM_ADDR_DELAY cycles before `x`; the
        address is registered once per PE and again per group of at most ROM_GROUP_LANES lanes (copies kept
        apart, `keep`, so no address bit drives thousands of LUTs), and each group's constant ROM (logic: an OR of
        word selects per bit) is read combinationally from its register, so ROM, XNOR and the first heap level
        meet in the same LUTs.

    Attributes
    ----------
    x : In(SIMD * elem_bits)
        The input word, shared by all PEs; sampled every cycle.
    w : In(PE * SIMD)
        PE p's weight bits in [p*SIMD, (p+1)*SIMD); sampled with `x` (absent with `rom`).
    waddr : In(range(len(rom)))
        With `rom`: the address of the weight word that meets the `x` of ROM_ADDR_DELAY cycles later.
    acc_en, acc_first : In(1)
        `latency` cycles after a word: add its contribution to the accumulators (`acc_en`), starting from `init`
        instead of the accumulator (`acc_first`, the first synapse fold of a neuron).
    init : In(PE * acc_bits)
        PE p's start value (signed) in field p, sampled with `acc_en`.
    acc : Out(PE * acc_bits)
        The accumulators (registers), field p = PE p.
    latency : int
        Cycles from `x`/`w` to the cycle in which `acc_en` applies their contribution.
    """

    def __init__(
        self,
        pe: int,
        simd: int,
        acc_bits: int,
        *,
        pixels: bool = False,
        double: bool = False,
        verilog_heaps: bool = False,
        rom: list[int] | None = None,
        x_copies: int = 1,
    ):
        for name, v in (("pe", pe), ("simd", simd), ("acc_bits", acc_bits)):
            if not isinstance(v, int) or v < 1:
                reject(self, f"PEArray {name} must be a positive integer, got {v!r}")
        self.pe, self.simd, self.acc_bits = pe, simd, acc_bits
        self.pixels, self.double = pixels, double
        self.verilog_heaps = verilog_heaps
        if rom is not None and (not rom or any(not 0 <= v < 1 << (pe * simd) for v in rom)):
            reject(self, "PEArray rom must be a non-empty list of PE x SIMD-bit words")
        self.rom = rom
        if not isinstance(x_copies, int) or not 1 <= x_copies <= pe:
            reject(self, f"PEArray x_copies must be an integer in 1..pe={pe}, got {x_copies!r}")
        self.x_copies = x_copies
        self.elem_bits = 8 if pixels else 1
        # = AdderTree(simd, 8, first_group=3).latency for pixels, Popcount(simd, first_group=3).latency for bits
        self.latency = heap_latency([simd] * 8, 3) if pixels else heap_latency([simd], 3)
        weights = {"w": In(unsigned(pe * simd))} if rom is None else {"waddr": In(range(max(len(rom), 2)))}
        super().__init__(
            {
                "x": In(unsigned(x_copies * simd * self.elem_bits)),
                **weights,
                "acc_en": In(1),
                "acc_first": In(1),
                "init": In(unsigned(pe * acc_bits)),
                "acc": Out(unsigned(pe * acc_bits)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        pe, simd, aw = self.pe, self.simd, self.acc_bits
        xw = simd * self.elem_bits
        xs = []  # copy c of the input word serves PEs p with p * x_copies // pe == c
        for c in range(self.x_copies):
            x = Signal(xw, name=f"x{c}" if self.x_copies > 1 else "x")
            m.d.comb += x.eq(self.x[c * xw : (c + 1) * xw])
            xs.append(x)
        if self.rom is None:
            wv = Signal(pe * simd)
            m.d.comb += wv.eq(self.w)
            pe_weights = [wv[p * simd : (p + 1) * simd] for p in range(pe)]
        else:
            pe_weights = [self._rom_weights(m, p) for p in range(pe)]
        contrib = []
        planes = []
        if self.pixels:
            # bit planes of the SIMD pixels: plane b = bit b of every lane (shared by the PEs of a copy)
            for c, x in enumerate(xs):
                xplanes = Signal(8 * simd, name=f"xplanes{c}" if self.x_copies > 1 else "xplanes")
                m.d.comb += xplanes.eq(Cat(*[x[8 * i + b] for b in range(8) for i in range(simd)]))
                planes.append(xplanes)
        for p in range(pe):
            copy = p * self.x_copies // pe
            w_p = Signal(simd, name=f"w{p}")
            m.d.comb += w_p.eq(pe_weights[p])
            if self.pixels:
                # w ? x : -x  =  (w ? x : ~x) - 255 * (w == 0): sum the 8-bit values x XOR ~w (XOR bits, like the
                # binary lanes); the -255 per zero weight is a constant of the neuron, folded into its init value
                # (rtl/folding.py).
                lanes = Signal(simd * 8, name=f"wx{p}")
                xplanes = planes[copy]
                m.d.comb += lanes.eq(Cat(*[xplanes[b * simd : (b + 1) * simd] ^ ~w_p for b in range(8)]))
                tree = AdderTree(simd, 8, first_group=3, verilog_module=self.verilog_heaps)
                m.submodules[f"pe{p}_sum"] = tree
                m.d.comb += tree.planes.eq(lanes)
                contrib.append(tree.total)
            else:
                mism = Signal(simd, name=f"mism{p}")
                m.d.comb += mism.eq(xs[copy] ^ w_p)
                pc = Popcount(simd, first_group=3, verilog_module=self.verilog_heaps)
                m.submodules[f"pe{p}_popcount"] = pc
                m.d.comb += pc.bits.eq(mism)
                # the popcount register is the adder's first operand (carry-chain data input, see folding.py)
                contrib.append(pc.count << 1 if self.double else pc.count)
        for p in range(pe):
            acc = Signal(signed(aw), name=f"acc{p}", reset_less=True)  # always starts from `init`
            init = Signal(signed(aw), name=f"init{p}")
            base = Signal(signed(aw), name=f"base{p}")
            m.d.comb += [init.eq(self.init[p * aw : (p + 1) * aw].as_signed()), base.eq(Mux(self.acc_first, init, acc))]
            with m.If(self.acc_en):
                m.d.sync += acc.eq(contrib[p] + base)
            m.d.comb += self.acc[p * aw : (p + 1) * aw].eq(acc)
        return m

    def _rom_weights(self, m: Module, p: int):
        """PE p's SIMD weight bits read from its constant ROMs (see `rom`): a value valid ROM_ADDR_DELAY cycles
        after `waddr`."""
        assert self.rom is not None  # only called for logic weights
        simd, depth = self.simd, len(self.rom)
        words = [(v >> (p * simd)) & ((1 << simd) - 1) for v in self.rom]
        if depth == 1:  # one word: plain constants, the XNOR with them is free
            return Const(words[0], simd)
        # Datapath registers: reset_less (docs/rtl.md, "Reset"); `keep` stops Yosys from merging the copies.
        a1 = Signal(range(depth), name=f"rom{p}_addr", reset_less=True, attrs={"keep": 1})
        m.d.sync += a1.eq(self.waddr)
        parts = []
        for g, lo in enumerate(range(0, simd, ROM_GROUP_LANES)):
            width = min(ROM_GROUP_LANES, simd - lo)
            a2 = Signal(range(depth), name=f"rom{p}_{g}_addr", reset_less=True, attrs={"keep": 1})
            m.d.sync += a2.eq(a1)
            # The ROM as plain logic, one OR of word selects per bit: written as a memory, Yosys would absorb the
            # address register into the memory's read port and merge the copies again.
            sel = Signal(depth, name=f"rom{p}_{g}_sel")
            m.d.comb += sel.eq(Cat(*[a2 == k for k in range(depth)]))
            bits = []
            for j in range(lo, lo + width):
                ks = [k for k, v in enumerate(words) if v >> j & 1]
                bits.append(Cat(*[sel[k] for k in ks]).any() if ks else Const(0, 1))
            parts.append(Cat(*bits))
        return Cat(*parts)


ROM_ADDR_DELAY = 2  # registers between `waddr` and the logic weights (PEArray `rom`)
ROM_GROUP_LANES = 16  # lanes per copy of the ROM address register


class StandaloneArray(wiring.Component):
    """A bits-in PEArray with plain ports, for synthesis measurements: `bits` = the PE accumulators' signs (the
    threshold compare outputs). In an engine, x / w / init come from memories and the control pipeline."""

    def __init__(self, pe: int, simd: int, acc_bits: int):
        self.pe, self.simd, self.acc_bits = pe, simd, acc_bits
        super().__init__(
            {"x": In(simd), "w": In(pe * simd), "en": In(1), "first": In(1), "init": In(pe * acc_bits), "bits": Out(pe)}
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        aw = self.acc_bits
        m.submodules.array = arr = PEArray(self.pe, self.simd, aw)
        m.d.comb += [
            arr.x.eq(self.x),
            arr.w.eq(self.w),
            arr.acc_en.eq(self.en),
            arr.acc_first.eq(self.first),
            arr.init.eq(self.init),
            self.bits.eq(Cat(*[arr.acc[(p + 1) * aw - 1] for p in range(self.pe)])),
        ]
        return m
