"""The layer engine: a FINN-MVAU-like PE x SIMD matrix-vector-threshold unit for one layer.

Input words of SIMD elements (bits, or 8-bit pixels for the first layer) arrive SF per vector and are written into one
bank of a double-buffered input memory; while the next vector fills the other bank, the current one is read NF times
(once per neuron fold). Each cycle every PE takes the same SIMD inputs and its own SIMD weight bits (one word of the
weight memory, initialised from the model), and adds their contribution to its accumulator; after SF cycles the
accumulator's sign is the output bit (or the accumulator is the score). See rtl/folding.py for the arithmetic.

The datapath never stalls: a fold only starts when the output FIFO is sure to have room for its result (credits),
so backpressure reaches the datapath only as "do not start", and the popcount pipelines need no enables.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from bnn_hw.rtl.errors import reject
from bnn_hw.rtl.folding import LayerFold, init_words, weight_words
from bnn_hw.rtl.pe_array import ROM_ADDR_DELAY, PEArray
from bnn_hw.rtl.timing import (
    BLOCK_RAM_MIN_BITS,
    address_transport_cycles,
    engine_fifo_depth,
    engine_latency,
    memory_read_cycles,
    weight_bank_words,
    weight_banks,
)

from bnn_hw.model import Layer

X_PES_PER_COPY = 4  # PEs served by one copy of the registered input word
X_COPIES_PER_GROUP = 3  # copies of the input word fed by one register of the level before them (when it exists)
WEIGHT_SLICE_BITS = 144  # width of one slice of a block-RAM weight memory (4 DP16KD / RAMB18 at 36 bits)
INPUT_SLICE_BITS = 64  # width of one slice of the input memory, behind its own copy of the read address


class LayerEngine(wiring.Component):
    """One layer, folded as `fold` says (PE x SIMD, NF neuron folds, SF synapse folds).

    Attributes
    ----------
    i : In(stream.Signature(SIMD * elem_bits))
        SF words per input vector; element j of a word in bits [j*elem_bits, ...). Spare lanes of the last word must
        be zero (the width converter guarantees it).
    o : Out(stream.Signature(PE * out_bits))
        NF beats per input vector, neuron nf*PE + p in field p. out_bits = 1 (output bits) or acc_bits (scores, two's
        complement). Fields of padding neurons (>= MH) are don't-care.
    latency : int
        Cycles from a fold's last issue to its result entering the output FIFO.
    """

    def __init__(self, layer: Layer, fold: LayerFold, *, verilog_heaps: bool = False):
        if fold.MW != layer.fan_in or fold.MH != layer.out_features:
            reject(self, "fold does not describe this layer")
        self.layer, self.fold = layer, fold
        self.verilog_heaps = verilog_heaps  # popcounts / adder trees as Verilog modules (see rtl/heap_verilog.py)
        self.pixels = layer.input == "pixels"
        self.scores = layer.output == "scores"
        self.out_bits = fold.acc_bits if self.scores else 1
        # AdderTree(SIMD, 8).latency for pixels, Popcount(SIMD, first_group=3).latency for bits
        self.pipe_latency = engine_latency(fold)
        # issue -> memory words (address register, data registers or bank and bank-mux registers) -> contribution (pipe)
        # -> accumulator register (1) -> FIFO write (1)
        self.read_cycles = memory_read_cycles(fold)
        self.address_cycles = address_transport_cycles(fold)  # sequencer address -> memory address registers
        self.banks = weight_banks(fold)
        self.latency = self.read_cycles + self.pipe_latency + 2
        # copies of the registered input word, and of the register before them (1: not replicated); see elaborate
        self.x_copies = -(-fold.PE // X_PES_PER_COPY)
        spare = self.read_cycles - 2 - self.address_cycles  # delay registers of the input word before its copies
        xc = self.x_copies
        # the tree needs a register after the memory with one load (beside it) before its first level
        self.x_groups = -(-xc // X_COPIES_PER_GROUP) if spare >= 2 and xc > X_COPIES_PER_GROUP else 1
        # Enough credits that a fold never waits for a result still in flight when downstream keeps up.
        self.fifo_depth = engine_fifo_depth(fold)
        super().__init__(
            {
                "i": In(stream.Signature(fold.SIMD * fold.elem_bits)),
                "o": Out(stream.Signature(fold.PE * self.out_bits)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        f = self.fold
        pe, simd, nf_n, sf_n, aw, eb = f.PE, f.SIMD, f.NF, f.SF, f.acc_bits, f.elem_bits

        # ---------------------------------------------------------------- memories
        # The input memory, split by width into INPUT_SLICE_BITS slices when its read address is transported (each
        # slice read at its own copy of the address, beside it).
        at = self.address_cycles
        xw = simd * eb
        in_slices = [(lo, min(xw, lo + INPUT_SLICE_BITS)) for lo in range(0, xw, INPUT_SLICE_BITS)] if at else [(0, xw)]
        ibufs = []
        for k, (lo, hi) in enumerate(in_slices):
            ibufs.append(Memory(shape=unsigned(hi - lo), depth=2 * sf_n, init=[]))
            m.submodules["ibuf" if len(in_slices) == 1 else f"ibuf_s{k}"] = ibufs[-1]
        # A memory without write port is a ROM, which Yosys would happily build from LUTs: ask for block RAM
        # unless the whole memory is smaller than a fraction of one block.
        # A memory deeper than one block RAM is split into banks of one RAM depth (equal sizes, the last padded with
        # zero words), each with its own data register; a registered mux picks the bank, so no RAM output drives
        # logic or a long wire in the cycle it is read. Logic weights (`weight_style`) have no memory here.
        big = f.weight_memory_bits >= BLOCK_RAM_MIN_BITS
        words = weight_words(self.layer, f)
        logic = f.weight_style == "logic"  # constants in the PE array's ROMs (rtl/pe_array.py): no weight memory
        # A wide block-RAM weight memory is also split by width into slices of WEIGHT_SLICE_BITS (four DP16KD side by
        # side at 36 bits), each addressed by its own copy of the address register: one address net to dozens of
        # block RAMs across the die was a critical path.
        bank_words = nf_n * sf_n
        width = pe * simd
        slice_bits = WEIGHT_SLICE_BITS if big and not logic else width
        slices = [(lo, min(width, lo + slice_bits)) for lo in range(0, width, slice_bits)]
        wrs = []  # per bank: its slices' read ports, lowest bits first

        def weight_memory(name: str, bank_init: list[int], depth: int) -> None:
            ports = []
            for k, (lo, hi) in enumerate(slices):
                mem = Memory(
                    shape=unsigned(hi - lo),
                    depth=depth,
                    init=[(v >> lo) & ((1 << (hi - lo)) - 1) for v in bank_init],
                    attrs={"ram_style": "block", "rom_style": "block"} if big else None,
                )
                m.submodules[name if len(slices) == 1 else f"{name}_s{k}"] = mem
                ports.append(mem.read_port())
            wrs.append(ports)

        if self.banks == 1 and not logic:
            weight_memory("wmem", words, nf_n * sf_n)
        elif not logic:
            bank_words = weight_bank_words(f)
            for b in range(self.banks):
                weight_memory(f"wmem{b}", words[b * bank_words : (b + 1) * bank_words], bank_words)
        m.submodules.tmem = tmem = Memory(shape=unsigned(pe * aw), depth=nf_n, init=init_words(self.layer, f))
        iws = [mem.write_port() for mem in ibufs]
        irs = [mem.read_port(transparent_for=()) for mem in ibufs]
        ir_data = Cat(*[port.data for port in irs])
        tr = tmem.read_port()

        full = Signal(2)  # bank b holds a complete input vector

        # ---------------------------------------------------------------- writer: input words -> bank
        wbank = Signal()
        wsf = Signal(range(max(sf_n, 2)))
        # The input memory's addresses (bank * SF + word) are registers stepped with the counters: no adder or bank
        # mux between a register and a RAM address (the 8x16 MLP's critical path).
        w_addr = Signal(range(2 * sf_n))
        w_acc = Signal()
        m.d.comb += [
            self.i.ready.eq(~Mux(wbank, full[1], full[0])),
            w_acc.eq(self.i.valid & self.i.ready),
        ]
        for port, (lo, hi) in zip(iws, in_slices, strict=True):
            m.d.comb += [port.addr.eq(w_addr), port.data.eq(self.i.payload[lo:hi]), port.en.eq(w_acc)]
        w_done = Signal()
        m.d.comb += w_done.eq(w_acc & (wsf == sf_n - 1))
        with m.If(w_acc):
            m.d.sync += [wsf.eq(Mux(wsf == sf_n - 1, 0, wsf + 1)), w_addr.eq(w_addr + 1)]
            with m.If(w_done):
                m.d.sync += [wbank.eq(~wbank), w_addr.eq(Mux(wbank, 0, sf_n))]

        # ---------------------------------------------------------------- reader / sequencer
        rbank = Signal()
        nf = Signal(range(max(nf_n, 2)))
        sf = Signal(range(max(sf_n, 2)))
        r_addr = Signal(range(2 * sf_n))  # rbank * SF + sf
        waddr = Signal(range(max(nf_n * sf_n, 2)))
        # With address transport (block-RAM weights): one copy of the weight address per width slice of the weight
        # memory and of the read address per slice of the input memory, each a plain register of the sequencer's
        # (kept apart: rtl.generate.keep_registers), so the sequencer's decisions drive a few local loads and each
        # copy sits by its RAMs.
        waddrs = [waddr]
        r_addrs = [r_addr]
        if at:
            waddrs = [
                Signal(range(max(nf_n * sf_n, 2)), name=f"waddr_t{k}", reset_less=True, attrs={"keep": 1})
                for k in range(len(slices))
            ]
            r_addrs = [
                Signal(range(2 * sf_n), name=f"r_addr_t{k}", reset_less=True, attrs={"keep": 1})
                for k in range(len(in_slices))
            ]
            m.d.sync += [wa.eq(waddr) for wa in waddrs] + [ra.eq(r_addr) for ra in r_addrs]
        credits = Signal(range(self.fifo_depth + 1), init=self.fifo_depth)
        issue = Signal()
        fold_start = Signal()
        r_done = Signal()
        m.d.comb += [
            issue.eq(Mux(rbank, full[1], full[0]) & ((sf != 0) | (credits != 0))),
            fold_start.eq(issue & (sf == 0)),
            r_done.eq(issue & (sf == sf_n - 1) & (nf == nf_n - 1)),
        ]
        m.d.comb += [port.addr.eq(ra) for port, ra in zip(irs, r_addrs, strict=True)]
        with m.If(issue):
            with m.If(sf == sf_n - 1):
                m.d.sync += sf.eq(0)
                with m.If(nf == nf_n - 1):
                    m.d.sync += [nf.eq(0), rbank.eq(~rbank), r_addr.eq(Mux(rbank, 0, sf_n))]
                with m.Else():
                    m.d.sync += [nf.eq(nf + 1), r_addr.eq(r_addr - (sf_n - 1))]
            with m.Else():
                m.d.sync += [sf.eq(sf + 1), r_addr.eq(r_addr + 1)]
            m.d.sync += waddr.eq(Mux(r_done, 0, waddr + 1))
        for b in range(2):
            with m.If(w_done & (wbank == b)):
                m.d.sync += full[b].eq(1)
            with m.If(r_done & (rbank == b)):
                m.d.sync += full[b].eq(0)

        # ---------------------------------------------------------------- control pipeline
        # stage s holds the control of the word issued s cycles ago; its memory words reach the datapath at stage
        # read_cycles (the RAM's own output register, then the data registers of memory_read_cycles).
        rc = self.read_cycles
        n_stages = rc + self.pipe_latency  # stages 1 .. A, A = accumulate stage
        valid = [Signal(name=f"v{s}") for s in range(n_stages + 1)]
        # Only `valid` is reset: the rest of the pipeline is data that nothing reads while its valid bit is low, and a
        # reset reaching every datapath flip-flop would be a net of thousands of loads (docs/rtl.md, "Reset").
        first = [Signal(name=f"first{s}", reset_less=True) for s in range(n_stages + 1)]
        last = [Signal(name=f"last{s}", reset_less=True) for s in range(n_stages + 1)]
        nfp = [Signal(range(max(nf_n, 2)), name=f"nf{s}", reset_less=True) for s in range(n_stages + 1)]
        m.d.comb += [valid[0].eq(issue), first[0].eq(sf == 0), last[0].eq(sf == sf_n - 1), nfp[0].eq(nf)]
        for s in range(1, n_stages + 1):
            m.d.sync += [
                valid[s].eq(valid[s - 1]),
                first[s].eq(first[s - 1]),
                last[s].eq(last[s - 1]),
                nfp[s].eq(nfp[s - 1]),
            ]
        acc_stage = n_stages
        # start-value memory read, timed so that its word arrives with the accumulate stage
        m.d.comb += tr.addr.eq(nfp[acc_stage - rc])

        def delayed(value, name, registers=rc - 1):
            """`value` through `registers` registers; by default rc - 1: memory data (1 cycle after its address) ->
            datapath (rc)."""
            for k in range(registers):
                reg = Signal(len(value), name=f"{name}_q{k + 1}", reset_less=True)
                m.d.sync += reg.eq(value)
                value = reg
            return value

        # The input word feeds every PE: its last register is replicated, one copy per X_PES_PER_COPY PEs (kept
        # apart in synthesis, rtl.generate.keep_registers), so no input bit is one net across the whole array. Where
        # the read has a delay register before the copies (x_groups, see __init__) and there are more than
        # X_COPIES_PER_GROUP copies, that register is replicated too, one per group of copies: a two-level tree,
        # so no net spans the array in one cycle (the 32x32 MLP's layer 0 measured 7.25 ns of wire to 8 copies).
        x_copies, x_groups = self.x_copies, self.x_groups
        x_pre = delayed(ir_data, "x", rc - 2 - at - (x_groups > 1))
        x_mids = [x_pre]
        if x_groups > 1:
            x_mids = [Signal(len(x_pre), name=f"x_mid{g}", reset_less=True, attrs={"keep": 1}) for g in range(x_groups)]
            m.d.sync += [mid.eq(x_pre) for mid in x_mids]
        x_reps = []
        for c in range(x_copies):
            reg = Signal(len(x_pre), name=f"x_rep{c}", reset_less=True, attrs={"keep": 1})
            m.d.sync += reg.eq(x_mids[c * x_groups // x_copies])
            x_reps.append(reg)
        x_q = Cat(*x_reps)
        t_q = delayed(tr.data, "init")
        w_q = None
        if logic:
            assert rc == ROM_ADDR_DELAY  # the ROM address takes the registers the memory read had
        elif self.banks == 1:
            for port, wa in zip(wrs[0], waddrs, strict=True):
                m.d.comb += port.addr.eq(wa)
            w_q = delayed(Cat(*[port.data for port in wrs[0]]), "w", rc - 1 - at)
        else:
            lo = (bank_words - 1).bit_length()
            sel1 = Signal(range(self.banks), reset_less=True)
            m.d.sync += sel1.eq(waddrs[0][lo:])
            # the bank select of each width slice's mux: one copy per slice, like the address
            sel2 = [
                Signal(range(self.banks), name=f"sel2_rep{k}" if k else "sel2", reset_less=True, attrs={"keep": 1})
                for k in range(len(slices))
            ]
            m.d.sync += [s2.eq(sel1) for s2 in sel2]
            held = []
            for b, ports in enumerate(wrs):
                for port, wa in zip(ports, waddrs, strict=True):
                    m.d.comb += port.addr.eq(wa[:lo])
                q = Signal(pe * simd, name=f"w_bank{b}", reset_less=True)
                m.d.sync += q.eq(Cat(*[port.data for port in ports]))
                held.append(q)
            w_sel = Signal(pe * simd, reset_less=True)
            for (s_lo, s_hi), s2 in zip(slices, sel2, strict=True):
                with m.Switch(s2):
                    for b, q in enumerate(held):
                        with m.Case(b):
                            m.d.sync += w_sel[s_lo:s_hi].eq(q[s_lo:s_hi])
            # w_sel stays beside the RAMs (its one load is this register); w_q is the datapath's copy
            w_q = delayed(w_sel, "w", 1)

        # ---------------------------------------------------------------- datapath (rtl/pe_array.py)
        m.submodules.array = arr = PEArray(
            pe,
            simd,
            aw,
            pixels=self.pixels,
            double=self.scores and not self.pixels,
            verilog_heaps=self.verilog_heaps,
            rom=words if logic else None,
            x_copies=x_copies,
        )
        assert arr.latency == self.pipe_latency
        m.d.comb += arr.waddr.eq(waddr) if logic else arr.w.eq(w_q)
        m.d.comb += [
            arr.x.eq(x_q),
            arr.acc_en.eq(valid[acc_stage]),
            arr.acc_first.eq(first[acc_stage]),
            arr.init.eq(t_q),
        ]
        accs = [arr.acc[p * aw : (p + 1) * aw].as_signed() for p in range(pe)]
        done = Signal()
        m.d.sync += done.eq(valid[acc_stage] & last[acc_stage])

        # ---------------------------------------------------------------- output FIFO with credits
        m.submodules.ofifo = ofifo = fifo.SyncFIFO(width=pe * self.out_bits, depth=self.fifo_depth)
        if self.scores and not self.pixels:
            m.d.comb += ofifo.w_data.eq(Cat(*[(-a)[:aw] for a in accs]))
        elif self.scores:
            m.d.comb += ofifo.w_data.eq(Cat(*accs))
        elif self.pixels:
            m.d.comb += ofifo.w_data.eq(Cat(*[~a[-1] for a in accs]))
        else:
            m.d.comb += ofifo.w_data.eq(Cat(*[a[-1] for a in accs]))
        pop = Signal()
        m.d.comb += [
            ofifo.w_en.eq(done),
            self.o.valid.eq(ofifo.r_rdy),
            self.o.payload.eq(ofifo.r_data),
            ofifo.r_en.eq(self.o.ready),
            pop.eq(ofifo.r_rdy & self.o.ready),
        ]
        m.d.sync += credits.eq(credits - fold_start + pop)
        return m
