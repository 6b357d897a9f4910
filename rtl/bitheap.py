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
            done = 0
            while h - done >= 3:
                g = min(group, h - done)
                done += g
                for b in range(g.bit_length()):
                    new[c + b] += 1
            new[c] += h - done
        while new and new[-1] == 0:
            new.pop()
        heights = new
        levels += 1
        group = 6
    return levels + 1


def _counter(bits: list[Value]) -> Value:
    """Number of ones among <= 6 bits as plain logic (full/half adders of XOR/AND/OR, no `+`): written with `+`,
    Yosys would infer a carry-chain adder; as gates, ABC maps each output bit to one 6-input LUT (absorbing the
    XORs that feed it). Gate-level is also much cheaper for Amaranth to convert than a lookup table."""
    cols: list[list[Value]] = [list(bits)]
    c = 0
    while c < len(cols):
        col = cols[c]
        while len(col) > 1:
            if len(col) >= 3:
                a, b, d = col.pop(), col.pop(), col.pop()
                t = a ^ b
                col.insert(0, t ^ d)
                carry = (a & b) | (d & t)
            else:
                a, b = col.pop(), col.pop()
                col.insert(0, a ^ b)
                carry = a & b
            if c + 1 == len(cols):
                cols.append([])
            cols[c + 1].append(carry)
        c += 1
    width = len(bits).bit_length()
    out = [col[0] for col in cols[:width]]
    return Cat(*out)


def reduce_heap(m: Module, columns: Heap, name: str, first_group: int = 6) -> tuple[Signal, int]:
    """Sum the heap with registered 6:3 counter levels and a registered final adder.

    Returns the (unsigned) sum signal and its latency in clock cycles (>= 1). Every intermediate value is assigned to
    a named Signal before it is sliced, so Amaranth never re-emits a wide expression per bit.
    """
    total_max = sum(len(col) << c for c, col in enumerate(columns))
    columns = [list(col) for col in columns]
    level = 0
    group = first_group
    while heap_height(columns) > 2:
        new: Heap = [[] for _ in range(len(columns) + 3)]
        for c, col in enumerate(columns):
            i = 0
            k = 0
            while len(col) - i >= 3:
                g = min(group, len(col) - i)
                part = col[i:i + g]
                i += g
                s = Signal(range(g + 1), name=f"{name}_l{level}_c{c}_g{k}")
                k += 1
                m.d.sync += s.eq(_counter(part))
                for b in range(s.shape().width):
                    new[c + b].append(s[b])
            for j, bit in enumerate(col[i:]):
                r = Signal(name=f"{name}_l{level}_c{c}_p{j}")
                m.d.sync += r.eq(bit)
                new[c].append(r)
        while new and not new[-1]:
            new.pop()
        columns = new
        level += 1
        group = 6
    rows = []
    for r in range(2):
        row = Cat(*[col[r] if len(col) > r else Const(0, 1) for col in columns]) if columns else Const(0, 1)
        rows.append(row)
    total = Signal(range(total_max + 1), name=f"{name}_sum")
    m.d.sync += total.eq(rows[0] + rows[1])
    return total, level + 1
