"""`AxisTop`: the accelerator as drop-in IP, AXI4-Stream in and out, optional AXI4-Lite status/control.

    s_axis (pixels, TLAST framing) -> framing checker -> BnnTop -> result padder (+TLAST, TUSER) -> m_axis
                                                 |                         ^
                                                 +--- tag FIFO (per image: frame end, framing error) ---+
    s_axi (AXI4-Lite) <-> register file (ID, version, model hash, folding, counters, soft reset)

Port names follow Xilinx's conventions (`aclk`, `aresetn`, `s_axis_*`, `m_axis_*`, `s_axi_*`) so that Vivado
infers the interfaces from the names alone. The framing rules (docs/rtl.md, "AXI4-Stream top") in one paragraph:
an image is exactly `beats_per_image` beats and every image starts on a fresh beat; a frame is one or more whole
images with TLAST on the last beat of its last image. The beat counter is authoritative. A TLAST before an image's
last beat ends that image early: the wrapper completes it with zero pixels (s_axis_tready low meanwhile), flags its
result and starts the next image with the next beat. With `frame_images` = k > 0, a frame must hold exactly k images:
a missing TLAST on the k-th image's last beat, or a TLAST on an earlier image's last beat, flags that image and the
frame count restarts after it. Every image started yields exactly one result, in order; nothing is dropped.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, Const, Module, ResetInserter, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out
from bnn_hw.rtl.errors import reject
from bnn_hw.rtl.folding import Plan

from bnn_hw.model import BnnModel

ID_WORD = 0x424E4E31  # "BNN1"
REGMAP_VERSION = 0x0001_0000  # major 1, minor 0
AXIL_ADDR_BITS = 12  # one 4 KiB address segment, Vivado's smallest
RESULT_FRAMINGS = ("image", "frame")

# Register map: byte offset -> (name, access, meaning). docs/rtl.md prints this table; the tests read it too.
REGISTERS: dict[int, tuple[str, str, str]] = {
    0x000: ("ID", "RO", "0x424E4E31 ('BNN1'): identifies a bnn-hw accelerator"),
    0x004: ("VERSION", "RO", "register map version, major << 16 | minor"),
    0x008: (
        "CONTROL",
        "WO",
        "bit 0: soft reset (datapath and counters; results in flight are lost); "
        "bit 1: clear the counters and the sticky error flag; reads 0",
    ),
    0x00C: (
        "STATUS",
        "RO",
        "bit 0: busy (an image in flight); bit 1: a framing error since the last reset/clear "
        "(sticky); bit 2: filling an image that ended early",
    ),
    0x010: ("IMAGES_IN", "RO", "images started (first beat accepted), modulo 2**32"),
    0x014: ("IMAGES_OUT", "RO", "results handed out on m_axis, modulo 2**32"),
    0x018: ("FRAMING_ERRORS", "RO", "images flagged with a framing error, modulo 2**32"),
    0x01C: ("BUSY_CYCLES", "RO", "aclk cycles with at least one image in flight, modulo 2**32"),
    0x020: (
        "FRAME_IMAGES",
        "RW",
        "images per input frame: 0 = any whole number (TLAST checked for early ends only), k = exactly k",
    ),
    0x024: ("RESULT_FRAMING", "RW", "0: TLAST on every result; 1: TLAST on the result of an input frame's last image"),
    0x028: ("PIXELS_PER_BEAT", "RO", "pixels (bytes) per s_axis beat"),
    0x02C: ("BEATS_PER_IMAGE", "RO", "s_axis beats per image"),
    0x030: ("RESULT_FORMAT", "RO", "num_classes | class_bits << 8 | score_bits << 16"),
    0x034: ("NUM_LAYERS", "RO", "layers; FOLD[l] at 0x100 + 4*l"),
    0x038: ("CYCLES_PER_IMAGE", "RO", "predicted steady-state cycles per image (timing model)"),
    0x03C: ("LATENCY", "RO", "predicted cycles from an image's first beat to its result (timing model)"),
    **{
        0x040 + 4 * i: (f"MODEL_HASH{i}", "RO", f"sha256 of the model, hex digits {8 * i}..{8 * i + 7} as a word")
        for i in range(8)
    },
}
FOLD_BASE = 0x100  # FOLD[l] = PE[l] | SIMD[l] << 16


def in_flight_depth(plan: Plan) -> int:
    """Images that can be inside the core at once in steady state (from the timing model), plus margin, as a power of
    two: the tag FIFO's depth. The wrapper never starts an image beyond it, so this only bounds throughput."""
    from bnn_hw.rtl.timing import simulate_control

    st = simulate_control(plan, 12)
    ins, outs = st["in"][:: plan.beats_per_image], st["out"]  # first beat of each image, each result
    peak = max(sum(1 for t in ins if t <= o) - k for k, o in enumerate(outs))
    need = peak + 2
    return max(4, 1 << (need - 1).bit_length())


class AxisTop(wiring.Component):
    """`BnnTop` behind AXI4-Stream (and optionally AXI4-Lite), Xilinx port names.

    Attributes
    ----------
    aclk, aresetn : In(1), In(1)
        Clock (rising edge) and synchronous active-low reset of everything.
    s_axis_tdata : In(8 * pixels_per_beat)
        Pixel j of a beat in bits [8j+7:8j]; an image is beats_per_image beats in HWC order, starting on a fresh beat.
    s_axis_tvalid, s_axis_tready, s_axis_tlast : In(1), Out(1), In(1)
        TLAST on the last beat of a frame's last image (see the module docstring for the framing rules).
    m_axis_tdata : Out(8 * ceil(result_bits / 8))
        Class index in bits [0, class_bits), then score n (two's complement) at [class_bits + n * score_bits, ...);
        bits past result_bits are 0.
    m_axis_tvalid, m_axis_tready, m_axis_tlast : Out(1), In(1), Out(1)
        One beat per image, in order; TLAST per result_framing ("image": every beat; "frame": the result of an input
        frame's last image).
    m_axis_tuser : Out(1)
        1 when the image had a framing error (its result is that of the image as completed; see docs/rtl.md).
    s_axi_* (only with axi_lite)
        AXI4-Lite slave, 12-bit byte addresses, 32-bit data, register map `REGISTERS` / `FOLD_BASE`.
    """

    def __init__(
        self,
        model: BnnModel,
        plan: Plan,
        *,
        axi_lite: bool = False,
        frame_images: int = 0,
        result_framing: str = "image",
        tag_depth: int | None = None,
        verilog_heaps: bool = False,
        latency: int | None = None,
    ):
        if not isinstance(frame_images, int) or not 0 <= frame_images < 2**16:
            reject(self, f"frame_images must be an integer 0..65535 (0 = any number per frame), got {frame_images!r}")
        if result_framing not in RESULT_FRAMINGS:
            reject(self, f"result_framing must be one of {', '.join(RESULT_FRAMINGS)}, got {result_framing!r}")
        if len(plan.layers) > (0x1000 - FOLD_BASE) // 4:
            reject(self, f"{len(plan.layers)} layers do not fit the register map's fold table")
        self.model, self.plan = model, plan
        self.axi_lite, self.frame_images, self.result_framing = axi_lite, frame_images, result_framing
        self.verilog_heaps = verilog_heaps
        self.tag_depth = tag_depth or in_flight_depth(plan)
        self.latency = latency
        self.pixel_bits = 8 * plan.pixels_per_beat
        self.result_bits = plan.class_bits + plan.num_classes * plan.score_bits
        self.result_tdata_bits = 8 * -(-self.result_bits // 8)
        members = {
            "aclk": In(1),
            "aresetn": In(1),
            "s_axis_tdata": In(self.pixel_bits),
            "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(self.result_tdata_bits),
            "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
            "m_axis_tuser": Out(1),
        }
        if axi_lite:
            members.update(
                {
                    "s_axi_awaddr": In(AXIL_ADDR_BITS),
                    "s_axi_awprot": In(3),
                    "s_axi_awvalid": In(1),
                    "s_axi_awready": Out(1),
                    "s_axi_wdata": In(32),
                    "s_axi_wstrb": In(4),
                    "s_axi_wvalid": In(1),
                    "s_axi_wready": Out(1),
                    "s_axi_bresp": Out(2),
                    "s_axi_bvalid": Out(1),
                    "s_axi_bready": In(1),
                    "s_axi_araddr": In(AXIL_ADDR_BITS),
                    "s_axi_arprot": In(3),
                    "s_axi_arvalid": In(1),
                    "s_axi_arready": Out(1),
                    "s_axi_rdata": Out(32),
                    "s_axi_rresp": Out(2),
                    "s_axi_rvalid": Out(1),
                    "s_axi_rready": In(1),
                }
            )
        super().__init__(members)

    def constant_registers(self) -> dict[int, int]:
        """Values of the read-only constant registers (what the host driver checks after connecting)."""
        from bnn_hw.rtl.timing import predict_latency

        plan, model = self.plan, self.model
        lat = self.latency if self.latency is not None else predict_latency(plan)
        regs = {
            0x000: ID_WORD,
            0x004: REGMAP_VERSION,
            0x028: plan.pixels_per_beat,
            0x02C: plan.beats_per_image,
            0x030: plan.num_classes | plan.class_bits << 8 | plan.score_bits << 16,
            0x034: len(plan.layers),
            0x038: plan.cycles_per_image & 0xFFFFFFFF,
            0x03C: lat & 0xFFFFFFFF,
        }
        for i in range(8):
            regs[0x040 + 4 * i] = int(model.hash[8 * i : 8 * i + 8], 16)
        for f in plan.layers:
            regs[FOLD_BASE + 4 * f.index] = (f.PE & 0xFFFF) | (f.SIMD & 0xFFFF) << 16
        return regs

    def manifest_fields(self) -> dict:
        """The manifest entries that describe this top (replacing the bare top's ports, clock and reset)."""
        ports = {}
        for name, member in self.signature.members.items():
            ports[name] = {"dir": "in" if member.flow == wiring.In else "out", "width": Shape.cast(member.shape).width}
        regs = self.constant_registers() if self.axi_lite else {}
        return {
            "interface": "axis",
            "core_module": "bnn_top.core",  # BnnTop's module name inside this top (per-layer synthesis reports)
            "clock": {"port": "aclk", "edge": "rising"},
            "reset": {"port": "aresetn", "sync": True, "active": "low"},
            "ports": ports,
            "axis": {
                "s_axis_tdata_bits": self.pixel_bits,
                "m_axis_tdata_bits": self.result_tdata_bits,
                "m_axis_tuser_bits": 1,
                "tkeep": False,
                "frame_images": self.frame_images,
                "result_framing": self.result_framing,
                "fill_pixel": 0,
                "tag_fifo_depth": self.tag_depth,
                "wrapper_latency_cycles": 0,
                "framing": "an image is beats_per_image beats starting on a fresh beat; a frame is whole images, "
                "TLAST on its last beat (docs/rtl.md, AXI4-Stream top)",
            },
            "axi_lite": None
            if not self.axi_lite
            else {
                "addr_bits": AXIL_ADDR_BITS,
                "data_bits": 32,
                "registers": [
                    {"offset": a, "name": n, "access": acc, "meaning": t, **({"value": regs[a]} if a in regs else {})}
                    for a, (n, acc, t) in sorted(REGISTERS.items())
                ],
                "fold_base": FOLD_BASE,
            },
        }

    def elaborate(self, platform) -> Module:
        from bnn_hw.rtl.top import BnnTop

        m = Module()
        plan = self.plan
        bpi = plan.beats_per_image

        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += [cd.clk.eq(self.aclk), cd.rst.eq(~self.aresetn)]

        soft_rst = Signal()  # one-cycle pulse from CONTROL bit 0; resets the datapath on top of aresetn
        clear = Signal()  # one-cycle pulse from CONTROL bit 1 (and with every soft reset): counters, sticky flag
        frame_images = Signal(16, init=self.frame_images)
        frame_mode = Signal(init=int(self.result_framing == "frame"))

        core = BnnTop(self.model, plan, verilog_heaps=self.verilog_heaps)
        m.submodules.core = ResetInserter(soft_rst)(core)
        tags = SyncFIFO(width=2, depth=self.tag_depth)  # per image: {framing error, frame end}
        m.submodules.tags = ResetInserter(soft_rst)(tags)

        # ------------------------------------------------------------------ input framing
        beat = Signal(range(max(2, bpi)))  # position of the next beat within its image
        img_in_frame = Signal(16)  # whole images of the current frame already received
        filling = Signal()  # completing an image that ended early with zero pixels
        in_flight = Signal(range(self.tag_depth + 2))  # images started and not yet out
        room = (beat != 0) | (in_flight < self.tag_depth)  # never start an image the tag FIFO could not hold
        last_beat = beat == bpi - 1

        with m.If(filling):
            m.d.comb += [core.pixels.valid.eq(1), core.pixels.payload.eq(0)]
        with m.Else():
            m.d.comb += [
                core.pixels.valid.eq(self.s_axis_tvalid & room & ~soft_rst),
                core.pixels.payload.eq(self.s_axis_tdata),
                self.s_axis_tready.eq(core.pixels.ready & room & ~soft_rst),
            ]
        take = Signal()  # an s_axis beat is transferred this cycle
        m.d.comb += take.eq(self.s_axis_tvalid & self.s_axis_tready)
        fill_beat = filling & core.pixels.ready

        expected_end = (frame_images != 0) & (img_in_frame == frame_images - 1)
        early = take & self.s_axis_tlast & ~last_beat
        whole = take & last_beat
        # At an image's last beat: TLAST missing where a fixed-size frame must end, or present where it must not.
        misplaced = (frame_images != 0) & (self.s_axis_tlast != expected_end)
        push_err, push_end = Signal(), Signal()
        m.d.comb += [
            tags.w_en.eq(early | whole),
            push_err.eq(early | (whole & misplaced)),
            push_end.eq(early | (whole & (self.s_axis_tlast | expected_end))),
            tags.w_data.eq(push_err << 1 | push_end),
        ]
        started = take & (beat == 0)
        finished = Signal()
        m.d.comb += finished.eq(self.m_axis_tvalid & self.m_axis_tready)

        with m.If(soft_rst):
            m.d.sync += [beat.eq(0), img_in_frame.eq(0), filling.eq(0), in_flight.eq(0)]
        with m.Else():
            m.d.sync += in_flight.eq(in_flight + started - finished)
            with m.If(early):
                m.d.sync += [img_in_frame.eq(0), filling.eq(1), beat.eq(beat + 1)]
            with m.Elif(whole):
                m.d.sync += beat.eq(0)
                with m.If(push_end):
                    m.d.sync += img_in_frame.eq(0)
                with m.Else():
                    m.d.sync += img_in_frame.eq(img_in_frame + 1)
            with m.Elif(take):
                m.d.sync += beat.eq(beat + 1)
            with m.Elif(fill_beat):
                with m.If(last_beat):
                    m.d.sync += [beat.eq(0), filling.eq(0)]
                with m.Else():
                    m.d.sync += beat.eq(beat + 1)

        # ------------------------------------------------------------------ results
        m.d.comb += [
            self.m_axis_tdata.eq(core.result.payload),
            self.m_axis_tvalid.eq(core.result.valid & tags.r_rdy & ~soft_rst),
            core.result.ready.eq(self.m_axis_tready & tags.r_rdy & ~soft_rst),
            tags.r_en.eq(finished),
            self.m_axis_tuser.eq(tags.r_data[1]),
            self.m_axis_tlast.eq(~frame_mode | tags.r_data[0]),
        ]

        if self.axi_lite:
            self._register_file(
                m, soft_rst, clear, frame_images, frame_mode, started, finished, push_err, in_flight, filling
            )
        return m

    def _register_file(
        self, m, soft_rst, clear, frame_images, frame_mode, started, finished, push_err, in_flight, filling
    ) -> None:
        """AXI4-Lite slave: a write needs AW and W together (both readies rise in the same cycle), a read answers one
        cycle after AR; responses are always OKAY; unmapped addresses read 0 and ignore writes."""
        images_in, images_out = Signal(32), Signal(32)
        errors, busy_cycles = Signal(32), Signal(32)
        sticky = Signal()
        zap = soft_rst | clear
        with m.If(zap):
            m.d.sync += [images_in.eq(0), images_out.eq(0), errors.eq(0), busy_cycles.eq(0), sticky.eq(0)]
        with m.Else():
            m.d.sync += [
                images_in.eq(images_in + started),
                images_out.eq(images_out + finished),
                errors.eq(errors + push_err),
            ]
            with m.If(push_err):
                m.d.sync += sticky.eq(1)
            with m.If(in_flight != 0):
                m.d.sync += busy_cycles.eq(busy_cycles + 1)

        # ---- write channel
        bvalid = Signal()
        do_write = Signal()
        m.d.comb += [
            do_write.eq(self.s_axi_awvalid & self.s_axi_wvalid & ~bvalid),
            self.s_axi_awready.eq(do_write),
            self.s_axi_wready.eq(do_write),
            self.s_axi_bvalid.eq(bvalid),
            self.s_axi_bresp.eq(0),
        ]
        waddr = self.s_axi_awaddr[2:]
        m.d.sync += [soft_rst.eq(0), clear.eq(0)]
        with m.If(bvalid & self.s_axi_bready):
            m.d.sync += bvalid.eq(0)
        with m.If(do_write):
            m.d.sync += bvalid.eq(1)
            with m.If(self.s_axi_wstrb[0]):
                with m.Switch(waddr):
                    with m.Case(0x008 >> 2):
                        m.d.sync += [soft_rst.eq(self.s_axi_wdata[0]), clear.eq(self.s_axi_wdata[1])]
                    with m.Case(0x020 >> 2):
                        m.d.sync += frame_images[:8].eq(self.s_axi_wdata[:8])
                    with m.Case(0x024 >> 2):
                        m.d.sync += frame_mode.eq(self.s_axi_wdata[0])
            with m.If(self.s_axi_wstrb[1] & (waddr == 0x020 >> 2)):
                m.d.sync += frame_images[8:].eq(self.s_axi_wdata[8:16])

        # ---- read channel
        rvalid, rdata = Signal(), Signal(32)
        m.d.comb += [
            self.s_axi_arready.eq(~rvalid),
            self.s_axi_rvalid.eq(rvalid),
            self.s_axi_rdata.eq(rdata),
            self.s_axi_rresp.eq(0),
        ]
        live = {
            0x00C: (in_flight != 0) | sticky << 1 | filling << 2,
            0x010: images_in,
            0x014: images_out,
            0x018: errors,
            0x01C: busy_cycles,
            0x020: frame_images,
            0x024: frame_mode,
        }
        values = {**{a: Const(v, 32) for a, v in self.constant_registers().items()}, **live}
        with m.If(rvalid & self.s_axi_rready):
            m.d.sync += rvalid.eq(0)
        with m.If(self.s_axi_arvalid & ~rvalid):
            m.d.sync += rvalid.eq(1)
            with m.Switch(self.s_axi_araddr[2:]):
                for addr, value in sorted(values.items()):
                    with m.Case(addr >> 2):
                        m.d.sync += rdata.eq(value)
                with m.Default():
                    m.d.sync += rdata.eq(0)
