"""The bit heap of rtl/bitheap.py written directly as a Verilog module, for fast generation of big designs.

Converting a large design through Amaranth costs time in proportion to its bits, and the popcounts / pixel adder
trees are most of them. `bnn-hw rtl` therefore emits each distinct heap shape once as a plain Verilog module (this
file) and instantiates it from the Amaranth design; the Amaranth simulator keeps using the Amaranth version
(rtl/bitheap.py). Both follow exactly the same construction -- same groups, same gates, same registers, same latency
-- and tests run the emitted modules in Icarus Verilog against numpy.
"""

from __future__ import annotations


def popcount_module_name(width: int, first_group: int) -> str:
    return f"bnn_popcount_{width}_g{first_group}"


def adder_tree_module_name(count: int, value_width: int) -> str:
    return f"bnn_adder_tree_{count}x{value_width}"


def _cat(parts: list[str]) -> str:
    """Concatenation of LSB-first parts."""
    return parts[0] if len(parts) == 1 else "{" + ", ".join(reversed(parts)) + "}"


def heap_verilog(module: str, heights: list[int], first_group: int = 6) -> str:
    """Module `module(clk, d, q)`: d holds column c's bits at d[off_c +: heights[c]] (columns in order), q is their
    weighted sum, registered `heap_latency(heights, first_group)` cycles later."""
    decls: list[str] = []
    regs: list[str] = []
    counter = [0]

    def wire(width: int, expr: str) -> str:
        name = f"w{counter[0]}"
        counter[0] += 1
        decls.append(f"  wire [{width - 1}:0] {name} = {expr};")
        return name

    def reg(width: int, expr: str) -> str:
        name = f"r{counter[0]}"
        counter[0] += 1
        decls.append(f"  reg [{width - 1}:0] {name} = {width}'d0;")
        regs.append(f"    {name} <= {expr};")
        return name

    total_max = sum(h << c for c, h in enumerate(heights))
    in_width = max(sum(heights), 1)
    cols: list[list[tuple[str, int]]] = []
    off = 0
    for h in heights:
        cols.append([(f"d[{off + h - 1}:{off}]", h)] if h else [])
        off += h
    group = first_group
    while max((sum(w for _, w in col) for col in cols), default=0) > 2:
        new: list[list[tuple[str, int]]] = [[] for _ in range(len(cols) + 3)]
        for c, chunks in enumerate(cols):
            h = sum(w for _, w in chunks)
            if h == 0:
                continue
            vec = wire(h, _cat([e for e, _ in chunks]))
            full, rest = divmod(h, group)
            extra = rest >= 3
            sizes = [group] * full + ([rest] if extra else [])
            if sizes:
                n = len(sizes)
                ops = []
                for k in range(group):
                    parts = [f"{vec}[{(k + 1) * full - 1}:{k * full}]"] if full else []
                    if extra:
                        parts.append(f"{vec}[{full * group + k}]" if k < rest else "1'b0")
                    ops.append(wire(n, _cat(parts)))
                ops += [f"{n}'d0"] * (6 - len(ops))
                a, b, cc, d, e, f = ops

                def full_add(x: str, y: str, z: str, n: int = n) -> tuple[str, str]:
                    t = wire(n, f"{x} ^ {y}")
                    return wire(n, f"{t} ^ {z}"), wire(n, f"({x} & {y}) | ({z} & {t})")

                s1, c1 = full_add(a, b, cc)
                if max(sizes) <= 3:
                    outs = [s1, c1][:max(sizes).bit_length()]
                else:
                    s2, c2 = full_add(d, e, f)
                    h0 = wire(n, f"{s1} & {s2}")
                    hi, top = full_add(c1, c2, h0)
                    outs = [wire(n, f"{s1} ^ {s2}"), hi, top]
                out_regs = [reg(n, o) for o in outs]
                for k, r in enumerate(out_regs):
                    if full and k < group.bit_length():
                        new[c + k].append((f"{r}[{full - 1}:0]", full))
                    if extra and k < rest.bit_length():
                        new[c + k].append((f"{r}[{n - 1}]", 1))
            if not extra and rest:
                p = reg(rest, f"{vec}[{h - 1}:{full * group}]")
                new[c].append((p, rest))
        while new and not new[-1]:
            new.pop()
        cols = new
        group = 6
    rows = []
    for r in range(2):
        bits = []
        for col in cols:
            w = sum(x for _, x in col)
            if w > r:
                flat = wire(w, _cat([e for e, _ in col]))
                bits.append(f"{flat}[{r}]")
            else:
                bits.append("1'b0")
        rows.append(_cat(bits) if bits else "1'b0")
    q_width = max(total_max.bit_length(), 1)
    lines = [f"module {module}(clk, d, q);", "  input clk;", f"  input [{in_width - 1}:0] d;",
             f"  output reg [{q_width - 1}:0] q = {q_width}'d0;"]
    lines += decls
    lines += ["  always @(posedge clk) begin"] + regs
    lines += [f"    q <= {rows[0]} + {rows[1]};", "  end", "endmodule", ""]
    return "\n".join(lines)


def popcount_verilog(width: int, first_group: int) -> str:
    return heap_verilog(popcount_module_name(width, first_group), [width], first_group)


def adder_tree_verilog(count: int, value_width: int) -> str:
    return heap_verilog(adder_tree_module_name(count, value_width), [count] * value_width)
