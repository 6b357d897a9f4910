"""Named FPGA devices: the Yosys target family, the place-and-route arguments and the capacity the report's
utilisation bars are drawn against. Capacities are the vendors' data-sheet totals; block RAM is counted in the unit
`bnn-hw synth` reports for the family (RAMB36 equivalents, SB_RAM40_4K, DP16KD)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bnn_hw.errors import BnnError


@dataclass(frozen=True)
class Device:
    name: str  # the configuration file's spelling
    family: str  # the `bnn-hw synth --target`
    part: str  # the vendor's part name
    luts: int
    ffs: int
    bram: int  # in the family's block-RAM unit (see BRAM_UNIT)
    code: str = ""  # the vendor's short part code (LFE5U-85F), as place-and-route reports name the device
    pnr_name: str | None = None  # nextpnr's device flag without dashes (85k, hx8k); None: no open place and route
    packages: dict[str, int] = field(default_factory=dict)  # package -> user I/O pins (data sheet)
    default_package: str | None = None

    @property
    def bram_unit(self) -> str:
        return BRAM_UNIT[self.family]

    @property
    def pnr(self) -> dict[str, str]:
        """`bnn-hw synth` place-and-route options for this part; empty where no open place and route exists."""
        if self.pnr_name is None:
            return {}
        return {"device": self.pnr_name, **({"package": self.default_package} if self.default_package else {})}


BRAM_UNIT = {"xilinx": "RAMB36", "ice40": "SB_RAM40_4K", "ecp5": "DP16KD"}

# Capacities (LUTs, flip-flops, block RAMs, user I/O per package) from the vendors' data sheets: Xilinx 7 series
# DS180/DS190, Lattice ECP5/ECP5-5G and iCE40 LP/HX/UltraPlus. nextpnr's own utilisation table (in a place-and-route
# report) is the authority for a routed design.
_ECP5_25_45 = {"CABGA256": 197, "CSFBGA285": 118, "TQFP144": 98}
DEVICES: dict[str, Device] = {
    d.name: d
    for d in (
        Device("xc7a35t", "xilinx", "Xilinx Artix-7 XC7A35T", 20_800, 41_600, 50, "XC7A35T"),
        Device("xc7a100t", "xilinx", "Xilinx Artix-7 XC7A100T", 63_400, 126_800, 135, "XC7A100T"),
        Device("xc7a200t", "xilinx", "Xilinx Artix-7 XC7A200T", 134_600, 269_200, 365, "XC7A200T"),
        Device("xc7z020", "xilinx", "Xilinx Zynq-7000 XC7Z020 (PYNQ-Z1/Z2)", 53_200, 106_400, 140, "XC7Z020"),
        Device(
            "ice40-hx1k",
            "ice40",
            "Lattice iCE40HX1K",
            1_280,
            1_280,
            16,
            "iCE40HX1K",
            "hx1k",
            {"tq144": 95, "vq100": 72},
            "tq144",
        ),
        Device(
            "ice40-hx8k",
            "ice40",
            "Lattice iCE40HX8K",
            7_680,
            7_680,
            32,
            "iCE40HX8K",
            "hx8k",
            {"ct256": 206, "cb132": 95, "tq144": 107},
            "ct256",
        ),
        Device(
            "ice40-up5k",
            "ice40",
            "Lattice iCE40UP5K",
            5_280,
            5_280,
            30,
            "iCE40UP5K",
            "up5k",
            {"sg48": 39, "uwg30": 21},
            "sg48",
        ),
        Device(
            "ecp5-25k",
            "ecp5",
            "Lattice ECP5 LFE5U-25F",
            24_288,
            24_288,
            56,
            "LFE5U-25F",
            "25k",
            {**_ECP5_25_45, "CABGA381": 197},
            "CABGA381",
        ),
        Device(
            "ecp5-45k",
            "ecp5",
            "Lattice ECP5 LFE5U-45F",
            43_848,
            43_848,
            108,
            "LFE5U-45F",
            "45k",
            {**_ECP5_25_45, "CABGA381": 203, "CABGA554": 245},
            "CABGA381",
        ),
        Device(
            "ecp5-85k",
            "ecp5",
            "Lattice ECP5 LFE5U-85F",
            83_640,
            83_640,
            208,
            "LFE5U-85F",
            "85k",
            {"CABGA381": 205, "CABGA554": 259, "CABGA756": 365, "CSFBGA285": 118},
            "CABGA381",
        ),
    )
}


def get_device(name: str) -> Device:
    """The named device, or one line naming the known ones."""
    try:
        return DEVICES[name]
    except KeyError:
        raise BnnError(f"unknown device {name!r}; choose from: {', '.join(DEVICES)}") from None
