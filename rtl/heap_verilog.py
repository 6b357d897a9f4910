"""The bit heap of rtl/bitheap.py written directly as a Verilog module, for fast generation of big designs.

Converting a large design through Amaranth costs time in proportion to its bits, and the popcounts / pixel adder
trees are most of them. `bnn-hw rtl` therefore emits each distinct heap shape once as a plain Verilog module (this
file) and instantiates it from the Amaranth design; the Amaranth simulator keeps using the Amaranth version
(rtl/bitheap.py). Both follow exactly the same construction -- same groups, same gates, same registers, same latency
-- and tests run the emitted modules in Icarus Verilog against numpy.
"""

from __future__ import annotations

from bnn_hw.rtl.bitheap import Count, Pass, plan_heap


def popcount_module_name(width: int, first_group: int) -> str:
    return f"bnn_popcount_{width}_g{first_group}"


def adder_tree_module_name(count: int, value_width: int, first_group: int = 6) -> str:
    return f"bnn_adder_tree_{count}x{value_width}" + (f"_g{first_group}" if first_group != 6 else "")


def _cat(parts: list[str]) -> str:
    """Concatenation of LSB-first parts."""
    return parts[0] if len(parts) == 1 else "{" + ", ".join(reversed(parts)) + "}"


def _xor(t: list[str]) -> str:
    return " ^ ".join(t)


def _maj(t: list[str]) -> str:
    if len(t) == 2:
        return f"({t[0]} & {t[1]})"
    a, b, c = t
    return f"(({a} & {b}) | ({a} & {c}) | ({b} & {c}))"


def heap_verilog(module: str, heights: list[int], first_group: int = 6) -> str:
    """Module `module(clk, d, q)`: d holds column c's bits at d[off_c +: heights[c]] (columns in order), q is their
    weighted sum, registered `heap_latency(heights, first_group)` cycles later (rtl/bitheap.py's plan)."""
    plan = plan_heap(heights, first_group)
    decls: list[str] = []
    regs: list[str] = []
    sig: dict[int, str] = {}
    off = 0
    for ids in plan.inputs:
        for i in ids:
            sig[i] = f"d[{off}]"
            off += 1
    in_width = max(off, 1)
    counter = [0]

    def wire(width: int, expr: str) -> str:
        name = f"w{counter[0]}"
        counter[0] += 1
        decls.append(f"  wire [{width - 1}:0] {name} = {expr};")
        return name

    def reg(i: int, expr: str) -> None:
        decls.append(f"  reg b{i} = 1'b0;")
        regs.append(f"    b{i} <= {expr};")
        sig[i] = f"b{i}"

    for level in plan.levels:
        for op in level:
            if isinstance(op, Pass):
                reg(op.dst, sig[op.src])
            elif isinstance(op, Count):
                bits = [sig[i] for i in op.ins]
                if len(bits) == 1:
                    exprs = [bits[0]]
                elif len(bits) == 2:
                    exprs = [_xor(bits), _maj(bits)]
                elif len(bits) == 3:
                    exprs = [_xor(bits), _maj(bits)]
                else:
                    s1, c1 = wire(1, _xor(bits[:3])), wire(1, _maj(bits[:3]))
                    rest = bits[3:]
                    c_low = wire(1, _maj([s1, *rest]) if len(rest) == 2 else f"({s1} & {rest[0]})")
                    exprs = [_xor([s1, *rest]), f"{c1} ^ {c_low}", f"{c1} & {c_low}"]
                for o, e in zip(op.outs, exprs, strict=True):
                    reg(o, e)
            else:
                n = len(op.stages)
                xs, ys = [], []
                carry: str | None = None
                for st in op.stages:
                    terms = ([carry] if carry is not None else []) + [sig[i] for i in st.terms]
                    ys.append(_xor(terms) if terms else "1'b0")
                    carry = wire(1, _maj(terms)) if len(terms) >= 2 else None
                    xs.append(sig[st.x] if st.x is not None else "1'b0")
                ci = sig[op.ci] if op.ci is not None else "1'b0"
                y = wire(n, _cat([f"({e})" for e in ys]))
                x = wire(n, _cat(xs))
                # X is the subtrahend's complement partner: `{X, ci} - {~Y, ~ci}` = 2 * (X + Y + ci) + 1, written
                # as a subtraction so that synthesis keeps X (raw register bits) as the carry chain's data input.
                total = wire(n + 2, f"{{1'b0, {x}, {ci}}} - {{1'b1, ~{y}, ~{ci}}}")
                for s, o in enumerate(op.outs):
                    reg(o, f"{total}[{s + 1}]")
    total_max = sum(h << c for c, h in enumerate(heights))
    q_width = max(total_max.bit_length(), 1)
    outs = [sig[i] if i is not None else "1'b0" for i in plan.outputs] or ["1'b0"]
    outs = (outs + ["1'b0"] * q_width)[:q_width]
    lines = [
        f"module {module}(clk, d, q);",
        "  input clk;",
        f"  input [{in_width - 1}:0] d;",
        f"  output [{q_width - 1}:0] q;",
    ]
    lines += decls
    lines += [f"  assign q = {_cat(outs)};"]
    lines += ["  always @(posedge clk) begin"] + regs + ["  end", "endmodule", ""]
    return "\n".join(lines)


def popcount_verilog(width: int, first_group: int) -> str:
    return heap_verilog(popcount_module_name(width, first_group), [width], first_group)


def adder_tree_verilog(count: int, value_width: int, first_group: int = 6) -> str:
    return heap_verilog(adder_tree_module_name(count, value_width, first_group), [count] * value_width, first_group)
