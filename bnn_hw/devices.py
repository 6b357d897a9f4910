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
    pnr: dict[str, str] = field(default_factory=dict)  # `bnn-hw synth` place-and-route options, where one exists

    @property
    def bram_unit(self) -> str:
        return BRAM_UNIT[self.family]


BRAM_UNIT = {"xilinx": "RAMB36", "ice40": "SB_RAM40_4K", "ecp5": "DP16KD"}

DEVICES: dict[str, Device] = {
    d.name: d
    for d in (
        Device("xc7a35t", "xilinx", "Xilinx Artix-7 XC7A35T", 20_800, 41_600, 50),
        Device("xc7a100t", "xilinx", "Xilinx Artix-7 XC7A100T", 63_400, 126_800, 135),
        Device("xc7a200t", "xilinx", "Xilinx Artix-7 XC7A200T", 134_600, 269_200, 365),
        Device("xc7z020", "xilinx", "Xilinx Zynq-7000 XC7Z020 (PYNQ-Z1/Z2)", 53_200, 106_400, 140),
        Device("ice40-hx1k", "ice40", "Lattice iCE40HX1K", 1_280, 1_280, 16, {"device": "hx1k", "package": "tq144"}),
        Device("ice40-hx8k", "ice40", "Lattice iCE40HX8K", 7_680, 7_680, 32, {"device": "hx8k", "package": "ct256"}),
        Device("ice40-up5k", "ice40", "Lattice iCE40UP5K", 5_280, 5_280, 30, {"device": "up5k", "package": "sg48"}),
        Device("ecp5-25k", "ecp5", "Lattice ECP5 LFE5U-25F", 24_288, 24_288, 56, {"device": "25k"}),
        Device("ecp5-45k", "ecp5", "Lattice ECP5 LFE5U-45F", 43_848, 43_848, 108, {"device": "45k"}),
        Device("ecp5-85k", "ecp5", "Lattice ECP5 LFE5U-85F", 83_640, 83_640, 208, {"device": "85k"}),
    )
}


def get_device(name: str) -> Device:
    """The named device, or one line naming the known ones."""
    try:
        return DEVICES[name]
    except KeyError:
        raise BnnError(f"unknown device {name!r}; choose from: {', '.join(DEVICES)}") from None
