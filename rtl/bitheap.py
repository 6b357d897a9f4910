"""Pipelined bit-heap summation: the arithmetic core shared by the popcount and the adder tree.

A bit heap is a list of columns; column c holds 1-bit values of weight 2**c. `plan_heap` decides, once per shape,
how the heap is summed with a register after every level; `reduce_heap` (Amaranth) and rtl/heap_verilog.py (plain
Verilog) both build exactly that plan, so they have the same gates, registers and latency.

Levels:

- First level for *function bits* (`first_group` 3..5: every input bit is a function of two signals, e.g. an XOR of
  activation and weight): groups of `first_group` bits of one column are counted (count bits registered); with
  groups of 3, the XORs and the counter share one 6-input LUT per output bit. Leftover bits are registered alone.
- Every other level (and the first, for `first_group=6`, raw bits) is made of *carry-chain compressors*: a chain
  computes X + Y + ci on the FPGA's carry logic, where X is one raw heap bit per column (the carry chain's data
  input, no LUT), ci one more bit of the lowest column, and bit s of Y a function of up to five heap bits packed
  with the XOR into the stage's 6-input LUT. Stage s adds up to three "terms" -- new bits of its column and the
  carry M of the previous stage's terms -- as Y_s = XOR(terms), M_s = majority (3 terms) / AND (2) / 0 (<= 1):
  so a chain stage typically removes two bits for one LUT (3 + 1 + ci bits, then 2 + 1, then 0 + 1 with the
  previous carries, per three columns), where a 6:3 counter removes one bit per LUT.
  The chain is written as `{X, ci} - {~Y, ~ci}` so that synthesis keeps X as the carry-chain data input.
- The heap is done when every column holds at most one bit: the sum is read directly from the last level's
  registers (no final adder).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cache

from amaranth.hdl import Cat, Const, Module, Signal, Value

Heap = list[list[Value]]


@dataclass(frozen=True)
class Count:
    """Registered popcount of `ins` (bits of one column): outs[k] has weight 2**k relative to the column."""

    ins: tuple[int, ...]
    outs: tuple[int, ...]


@dataclass(frozen=True)
class Pass:
    """Register one bit unchanged."""

    src: int
    dst: int


@dataclass(frozen=True)
class Stage:
    x: int | None  # the carry-chain data input (raw bit) or None for 0
    terms: tuple[int, ...]  # new bits of this column added through Y (with the previous stage's carry M)


@dataclass(frozen=True)
class Chain:
    """Registered X + Y + ci over consecutive columns; outs[s] is the sum bit of stage s, outs[-1] the carry out."""

    ci: int | None
    stages: tuple[Stage, ...]
    outs: tuple[int, ...]


@dataclass
class HeapPlan:
    inputs: list[list[int]]  # bit ids of the input columns (ids 0 .. n_inputs-1 in column order)
    levels: list[list[Count | Pass | Chain]] = field(default_factory=list)
    outputs: list[int | None] = field(default_factory=list)  # final bit id per column (None: constant 0)
    n_bits: int = 0
    luts: int = 0  # LUT estimate (one per counter output, function-bit pass, and chain stage with logic)

    @property
    def latency(self) -> int:
        return len(self.levels)


def chain_carries(stages: tuple[Stage, ...]) -> list[bool]:
    """Whether stage s's carry M_s is a (non-constant) function: more than one term including the incoming M."""
    has_m, out = False, []
    for st in stages:
        n = len(st.terms) + has_m
        has_m = n >= 2
        out.append(has_m)
    return out


SEARCH_BITS = 40000  # plan search budget: about this many bits planned per heap shape (trials = budget / bits)


@cache
def _plan(heights: tuple[int, ...], first_group: int) -> HeapPlan:
    """The cheapest of a greedy plan and randomised variants of it (fewest LUTs, then fewest levels); seeded, so
    the same shape always gets the same plan."""
    best = _build(heights, first_group, None)
    trials = min(400, SEARCH_BITS // max(sum(heights), 1))
    for seed in range(1, trials + 1):
        plan = _build(heights, first_group, random.Random(seed))
        if (plan.luts, plan.latency) < (best.luts, best.latency):
            best = plan
    return best


def _build(heights: tuple[int, ...], first_group: int, rng: random.Random | None) -> HeapPlan:
    """One plan: greedy chains from the lowest column (rng None), or with random choices of where a chain starts,
    how many terms a stage takes and whether the carry input is used."""
    counter = [0]

    def new() -> int:
        counter[0] += 1
        return counter[0] - 1

    inputs = [[new() for _ in range(h)] for h in heights]
    plan = HeapPlan(inputs=inputs)
    cols = [list(c) for c in inputs]
    function_bits = first_group < 6
    if function_bits:
        level: list[Count | Pass | Chain] = []
        nxt: list[list[int]] = [[] for _ in range(len(cols) + 3)]
        for c, bits in enumerate(cols):
            full = len(bits) // first_group * first_group
            for g in range(0, full, first_group):
                grp = tuple(bits[g : g + first_group])
                outs = tuple(new() for _ in range(len(grp).bit_length()))
                level.append(Count(grp, outs))
                plan.luts += len(outs)
                for k, o in enumerate(outs):
                    nxt[c + k].append(o)
            for b in bits[full:]:
                d = new()
                level.append(Pass(b, d))
                plan.luts += 1
                nxt[c].append(d)
        plan.levels.append(level)
        cols = nxt
    while max((len(c) for c in cols), default=0) > 1 or not plan.levels:
        level = []
        rem = [list(c) for c in cols] + [[], [], []]
        nxt = [[] for _ in range(len(rem) + 1)]
        while True:
            cands = [c for c, bits in enumerate(rem) if len(bits) >= 2]
            if not cands:
                break
            start = cands[0] if rng is None or rng.random() < 0.5 else rng.choice(cands)
            stages: list[Stage] = []
            ci = None
            has_m, m_leaves = False, 0
            col = start
            while True:
                bits = rem[col]
                x = bits.pop(0) if bits else None
                room = min(3 - has_m, 6 - (x is not None) - m_leaves, len(bits))
                if rng is not None and room and rng.random() < 0.2:
                    room -= 1
                terms = tuple(bits[:room])
                del bits[:room]
                if not stages and bits and (rng is None or rng.random() < 0.8):
                    ci = bits.pop(0)
                stages.append(Stage(x, terms))
                n = len(terms) + has_m
                if terms or has_m:
                    plan.luts += 1
                m_leaves = m_leaves + len(terms) if n >= 2 else 0
                has_m = n >= 2
                col += 1
                if col >= len(rem):
                    rem.append([])
                    nxt.append([])
                if not has_m and len(rem[col]) < 2:
                    break
            outs = tuple(new() for _ in range(len(stages) + 1))
            level.append(Chain(ci, tuple(stages), outs))
            for s, o in enumerate(outs):
                while start + s >= len(nxt):
                    nxt.append([])
                nxt[start + s].append(o)
        for c, bits in enumerate(rem):
            for b in bits:
                d = new()
                level.append(Pass(b, d))
                nxt[c].append(d)
        while nxt and not nxt[-1]:
            nxt.pop()
        plan.levels.append(level)
        cols = nxt
    plan.outputs = [c[0] if c else None for c in cols]
    plan.n_bits = counter[0]
    return plan


def plan_heap(heights: list[int], first_group: int = 6) -> HeapPlan:
    """The summation plan for columns of these heights (see the module docstring)."""
    return _plan(tuple(heights), first_group)


def heap_latency(heights: list[int], first_group: int = 6) -> int:
    """Registered stages the plan for these heights has (>= 1)."""
    return plan_heap(heights, first_group).latency


def _maj(terms: list[Value]) -> Value:
    if len(terms) == 2:
        return terms[0] & terms[1]
    a, b, c = terms
    return (a & b) | (a & c) | (b & c)


def _xor(terms: list[Value]) -> Value:
    out = terms[0]
    for t in terms[1:]:
        out = out ^ t
    return out


def _count_bits(bits: list[Value]) -> list[Value]:
    """Sum bits (LSB first) of up to 5 one-bit values, as boolean expressions (full adders)."""
    if len(bits) == 1:
        return [bits[0]]
    if len(bits) == 2:
        return [bits[0] ^ bits[1], bits[0] & bits[1]]
    if len(bits) == 3:
        return [_xor(bits), _maj(bits)]
    s1, c1 = _xor(bits[:3]), _maj(bits[:3])
    rest = bits[3:]
    s = _xor([s1, *rest])
    c_low = _maj([s1, *rest]) if len(rest) == 2 else s1 & rest[0]
    return [s, c1 ^ c_low, c1 & c_low]


def reduce_heap(m: Module, columns: list[list[Value]], name: str, first_group: int = 6) -> tuple[Value, int]:
    """Sum a bit heap as `plan_heap` says. `columns[c]` is a list of chunks (Values of any width) whose bits all have
    weight 2**c. Returns the (unsigned) sum and its latency in clock cycles (>= 1)."""
    flat: list[list[Value]] = []
    for chunks in columns:
        bits = []
        for ch in chunks:
            bits += [ch[i] for i in range(len(ch))]
        flat.append(bits)
    plan = plan_heap([len(b) for b in flat], first_group)
    sig: dict[int, Value] = {}
    for ids, bits in zip(plan.inputs, flat, strict=True):
        for i, b in zip(ids, bits, strict=True):
            sig[i] = b

    def reg(i: int, expr: Value) -> None:
        s = Signal(name=f"{name}_b{i}")
        m.d.sync += s.eq(expr)
        sig[i] = s

    for level in plan.levels:
        for op in level:
            if isinstance(op, Pass):
                reg(op.dst, sig[op.src])
            elif isinstance(op, Count):
                for o, e in zip(op.outs, _count_bits([sig[i] for i in op.ins]), strict=True):
                    reg(o, e)
            else:
                n = len(op.stages)
                xs, ys = [], []
                carry: Value | None = None
                for st in op.stages:
                    terms = ([carry] if carry is not None else []) + [sig[i] for i in st.terms]
                    ys.append(_xor(terms) if terms else Const(0, 1))
                    carry = _maj(terms) if len(terms) >= 2 else None
                    xs.append(sig[st.x] if st.x is not None else Const(0, 1))
                ci = sig[op.ci] if op.ci is not None else Const(0, 1)
                y = Signal(n, name=f"{name}_y{op.outs[0]}")
                m.d.comb += y.eq(Cat(*ys))
                total = Signal(n + 2, name=f"{name}_s{op.outs[0]}")
                m.d.comb += total.eq(Cat(ci, *xs, Const(0, 1)) - Cat(~ci, ~y, Const(1, 1)))
                for s, o in enumerate(op.outs):
                    reg(o, total[s + 1])
    out_bits = [sig[i] if i is not None else Const(0, 1) for i in plan.outputs] or [Const(0, 1)]
    total_max = sum(len(b) << c for c, b in enumerate(flat))
    total = Signal(range(total_max + 1), name=f"{name}_sum")
    m.d.comb += total.eq(Cat(*out_bits))
    return total, plan.latency
