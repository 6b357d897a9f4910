"""Pipelined bit-heap summation: the arithmetic core shared by the popcount and the adder tree.

A bit heap is a list of columns; column c holds 1-bit values of weight 2**c. Each compression level replaces groups
of up to six bits of one column by their binary sum (3 bits: weights c, c+1, c+2), i.e. 6:3 counters that map onto
one 6-input LUT per output bit, and registers the result. When no column is taller than two bits, one registered
carry-propagate adder finishes the sum. The first level may use smaller groups: bits that are themselves functions
of two signals (XOR of activation and weight) fit three to a 6-input LUT, so `first_group=3` lets synthesis merge
the XOR into the first counter instead of spending a LUT per lane on it.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, Value

Heap = list[list[Value]]


def heap_height(columns: Heap) -> int:
    return max((len(c) for c in columns), default=0)


def heap_latency(heights: list[int], first_group: int = 6) -> int:
    """Registered stages `reduce_heap` builds for columns of these heights (compression levels + final adder)."""
    heights = list(heights) or [0]
    levels = 0
    group = first_group
    while max(heights) > 2:
        new = [0] * (len(heights) + 3)
        for c, h in enumerate(heights):
            full, rest = divmod(h, group)
            sizes = [group] * full + ([rest] if rest >= 3 else [])
            for g in sizes:
                for b in range(g.bit_length()):
                    new[c + b] += 1
            if rest < 3:
                new[c] += rest
        while new and new[-1] == 0:
            new.pop()
        heights = new
        levels += 1
        group = 6
    return levels + 1


def _full_add(m: Module, a: Value, b: Value, c: Value, name: str) -> tuple[Signal, Signal]:
    """Word-wide full adder; every result is a named Signal (Amaranth does not share common subexpressions)."""
    n = len(a)
    t, s, carry = Signal(n, name=f"{name}_t"), Signal(n, name=f"{name}_s"), Signal(n, name=f"{name}_c")
    m.d.comb += [t.eq(a ^ b), s.eq(t ^ c), carry.eq((a & b) | (c & t))]
    return s, carry


def _counters(m: Module, ops: list[Value], size: int, name: str) -> list[Signal]:
    """Registered bit counts of n groups at once: ops[k] holds bit k of every group (n bits each, missing bits 0).
    Returns the count bits as n-bit registers, LSB first (size.bit_length() of them)."""
    n = len(ops[0])
    zero = Const(0, n)
    a, b, c, d, e, f = (ops + [zero] * 6)[:6]
    s1, c1 = _full_add(m, a, b, c, f"{name}_fa0")
    if size <= 3:
        outs = [s1, c1][:size.bit_length()]
    else:
        s2, c2 = _full_add(m, d, e, f, f"{name}_fa1")
        carry0 = Signal(n, name=f"{name}_h")
        m.d.comb += carry0.eq(s1 & s2)
        hi, top = _full_add(m, c1, c2, carry0, f"{name}_fa2")
        outs = [s1 ^ s2, hi, top]
    regs = []
    for k, expr in enumerate(outs):
        r = Signal(n, name=f"{name}_b{k}")
        m.d.sync += r.eq(expr)
        regs.append(r)
    return regs


def reduce_heap(m: Module, columns: list[list[Value]], name: str, first_group: int = 6) -> tuple[Signal, int]:
    """Sum a bit heap with registered counter levels and a registered final adder.

    `columns[c]` is a list of *chunks* (Values of any width) whose bits all have weight 2**c. Each level packs a
    column into one vector and lays its groups out as the columns of a (group size x n) matrix, so operand k of all
    n counters is one contiguous slice: the cost of building a level does not grow with the number of bits.
    Returns the (unsigned) sum signal and its latency in clock cycles (>= 1).
    """
    total_max = sum(sum(len(ch) for ch in col) << c for c, col in enumerate(columns))
    level = 0
    group = first_group
    while max((sum(len(ch) for ch in col) for col in columns), default=0) > 2:
        new: list[list[Value]] = [[] for _ in range(len(columns) + 3)]
        for c, chunks in enumerate(columns):
            h = sum(len(ch) for ch in chunks)
            if h == 0:
                continue
            base = f"{name}_l{level}_c{c}"
            vec = Signal(h, name=f"{base}_in")
            m.d.comb += vec.eq(Cat(*chunks))
            full = h // group
            rest = h - full * group
            extra = rest >= 3
            sizes = [group] * full + ([rest] if extra else [])
            if sizes:
                n = len(sizes)
                ops = []
                for k in range(group):
                    parts = [vec[k * full:(k + 1) * full]] if full else []
                    if extra:
                        parts.append(vec[full * group + k] if k < rest else Const(0, 1))
                    ops.append(Cat(*parts))
                regs = _counters(m, ops, max(sizes), base)
                for k, r in enumerate(regs):
                    if full and k < group.bit_length():
                        new[c + k].append(r[:full])
                    if extra and k < rest.bit_length():
                        new[c + k].append(r[n - 1])
            if not extra and rest:
                p = Signal(rest, name=f"{base}_pass")
                m.d.sync += p.eq(vec[full * group:])
                new[c].append(p)
        while new and not new[-1]:
            new.pop()
        columns = new
        level += 1
        group = 6
    rows = []
    for r in range(2):
        bits = []
        for col in columns:
            flat = Cat(*col) if col else Const(0, 1)
            bits.append(flat[r] if len(flat) > r else Const(0, 1))
        rows.append(Cat(*bits) if bits else Const(0, 1))
    total = Signal(range(total_max + 1), name=f"{name}_sum")
    m.d.sync += total.eq(rows[0] + rows[1])
    return total, level + 1
