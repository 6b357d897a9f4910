"""Host driver for the AXI4-Stream accelerator, as PYNQ users know it: `Accelerator(build_dir, backend=...)`.

    acc = bnn_hw.Accelerator("build/", backend="sim")   # the generated design in Verilator (bnn_hw.sim.host)
    result = acc.classify(images_uint8_nhwc)              # .classes, .scores (numpy, bit-exact with bnn_hw.golden)
    acc.status()                                          # the AXI4-Lite counters, decoded
    acc.reset()                                           # CONTROL.soft_reset

The driver owns everything that is the same on every platform: checking that the device is the build's (ID word,
model hash), packing images into one AXI4-Stream frame (each image on fresh beats, TLAST on the last beat), splitting
batches, decoding result words, and checking the counters after each transfer. A backend only moves bytes; the
contract is `Backend` below (docs/rtl.md, "Host driver"). Numpy only: a backend's heavy imports happen when it is
chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bnn_hw.artifacts import Manifest
from bnn_hw.errors import BnnError

BACKENDS = "bnn_hw.accelerator_backends"  # entry points: name -> Backend class (pyproject.toml: sim)


def _named_backend(name: str) -> Any:
    """The Backend class registered as `name` (found at run time: the core imports no spoke)."""
    from bnn_hw.plugins import entry_points

    backends = entry_points(BACKENDS)
    if name not in backends:
        known = sorted(backends)
        raise BnnError(f"unknown backend {name!r}: use {', '.join(map(repr, known)) or 'sim'} or pass a Backend object")
    return backends[name].load()


ID_WORD = 0x424E4E31
REG = {
    "ID": 0x000,
    "VERSION": 0x004,
    "CONTROL": 0x008,
    "STATUS": 0x00C,
    "IMAGES_IN": 0x010,
    "IMAGES_OUT": 0x014,
    "FRAMING_ERRORS": 0x018,
    "BUSY_CYCLES": 0x01C,
    "FRAME_IMAGES": 0x020,
    "RESULT_FRAMING": 0x024,
    "MODEL_HASH0": 0x040,
}


class Backend(Protocol):
    """What a platform provides (PYNQ: `pynq.lib.dma` + `pynq.MMIO`; XRT: `xrt.bo` + `xrt.ip`; Linux: UIO + a DMA
    driver). Transfers are whole AXI4-Stream frames; register accesses are 32-bit AXI4-Lite words."""

    def transfer(self, frame: bytes, result_bytes: int) -> bytes:
        """Send `frame` on s_axis (TLAST on its last beat) and return the next `result_bytes` bytes from m_axis
        (the two DMA channels run concurrently, as `dma.sendchannel`/`dma.recvchannel` do in PYNQ)."""
        ...

    def read_register(self, offset: int) -> int: ...

    def write_register(self, offset: int, value: int) -> None: ...

    def close(self) -> None: ...


@dataclass
class Classification:
    classes: np.ndarray  # int64 (N,)
    scores: np.ndarray  # int64 (N, num_classes)


class Accelerator:
    """One accelerator built by `bnn-hw rtl --interface axis --axi-lite`, reached through `backend`."""

    def __init__(self, build_dir: str | Path, backend: str | Backend = "sim", *, max_batch: int = 1024, **options):
        self.build_dir = Path(build_dir)
        path = self.build_dir / "manifest.json"
        if not path.is_file():
            raise BnnError(
                f"{self.build_dir} has no manifest.json: generate it with `bnn-hw rtl MODEL -o DIR "
                "--interface axis --axi-lite`"
            )
        man = Manifest.read(path).to_json()  # checked strictly; the plain form decode_results indexes
        if man["interface"] != "axis" or not man["axi_lite"]:
            raise BnnError(
                f"{self.build_dir} is not an AXI build with registers: regenerate it with `bnn-hw rtl "
                "MODEL -o DIR --interface axis --axi-lite`"
            )
        if not isinstance(max_batch, int) or max_batch < 1:
            raise BnnError(f"max_batch must be a positive integer, got {max_batch!r}")
        self.manifest: dict[str, Any] = man
        self.max_batch = max_batch
        self.input_shape = tuple(man["input"]["shape_hwc"])
        self.num_classes = man["num_classes"]
        self._ppb, self._bpi = man["pixels_per_beat"], man["beats_per_image"]
        self._rb = man["axis"]["m_axis_tdata_bits"] // 8
        if isinstance(backend, str):
            backend = _named_backend(backend)(self.build_dir, **options)
        elif options:
            raise BnnError(f"options {sorted(options)} only apply to backend='sim'")
        self.backend: Backend = backend
        self._check_identity()

    # ---------------------------------------------------------------------------------------------------- API

    def classify(self, images: np.ndarray) -> Classification:
        """Classes and scores of uint8 images (N, H, W, C) or (H, W, C); raises BnnError if the device flags a
        framing error or returns a different number of results."""
        x = np.asarray(images)
        if x.ndim == len(self.input_shape):
            x = x[None]
        if x.dtype != np.uint8 or tuple(x.shape[1:]) != self.input_shape:
            raise BnnError(
                f"images must be uint8 of shape (N, {', '.join(map(str, self.input_shape))}), got {x.dtype} "
                f"{tuple(x.shape)}"
            )
        classes, scores = [], []
        for start in range(0, len(x), self.max_batch):
            c, s = self._batch(x[start : start + self.max_batch])
            classes.append(c)
            scores.append(s)
        if not classes:
            return Classification(np.zeros(0, np.int64), np.zeros((0, self.num_classes), np.int64))
        return Classification(np.concatenate(classes), np.concatenate(scores))

    def status(self) -> dict[str, Any]:
        """The register file, decoded."""
        rd = self.backend.read_register
        st = rd(REG["STATUS"])
        return {
            "busy": bool(st & 1),
            "framing_error": bool(st & 2),
            "filling": bool(st & 4),
            "images_in": rd(REG["IMAGES_IN"]),
            "images_out": rd(REG["IMAGES_OUT"]),
            "framing_errors": rd(REG["FRAMING_ERRORS"]),
            "busy_cycles": rd(REG["BUSY_CYCLES"]),
            "frame_images": rd(REG["FRAME_IMAGES"]),
            "result_framing": "frame" if rd(REG["RESULT_FRAMING"]) & 1 else "image",
            "version": rd(REG["VERSION"]),
            "model_hash": self.manifest["model_hash"],
        }

    def reset(self) -> None:
        """Soft reset: clears the datapath (results in flight are lost) and the counters."""
        self.backend.write_register(REG["CONTROL"], 1)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Accelerator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------ helpers

    def _check_identity(self) -> None:
        ident = self.backend.read_register(REG["ID"])
        if ident != ID_WORD:
            raise BnnError(f"the device's ID register reads 0x{ident:08x}, not a bnn-hw accelerator (0x{ID_WORD:08x})")
        hw = "".join(f"{self.backend.read_register(REG['MODEL_HASH0'] + 4 * i):08x}" for i in range(8))
        if hw != self.manifest["model_hash"]:
            raise BnnError(
                f"the device runs model {hw[:12]}... but {self.build_dir} was built for "
                f"{self.manifest['model_hash'][:12]}...: load the matching bitstream"
            )
        # The driver sends whole images in one frame and wants one result word per image.
        self.backend.write_register(REG["FRAME_IMAGES"], 0)
        self.backend.write_register(REG["RESULT_FRAMING"], 1)

    def _batch(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(x)
        flat = x.reshape(n, -1)
        slots = self._ppb * self._bpi
        frame = np.zeros((n, slots), dtype=np.uint8)
        frame[:, : flat.shape[1]] = flat
        errors_before = self.backend.read_register(REG["FRAMING_ERRORS"])
        data = self.backend.transfer(frame.tobytes(), n * self._rb)
        if len(data) != n * self._rb:
            raise BnnError(f"the device returned {len(data) // self._rb} results for {n} images")
        errors = (self.backend.read_register(REG["FRAMING_ERRORS"]) - errors_before) & 0xFFFFFFFF
        if errors:
            raise BnnError(
                f"the device flagged {errors} framing errors in a batch of {n} images: status {self.status()}"
            )
        return decode_results(data, self._rb, self.manifest)


def decode_results(data: bytes, result_bytes: int, manifest: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """m_axis result beats (little-endian TDATA words) -> (classes, scores), per the manifest's result layout."""
    cb, sb, nc = manifest["class_bits"], manifest["score_bits"], manifest["num_classes"]
    n = len(data) // result_bytes
    classes = np.zeros(n, np.int64)
    scores = np.zeros((n, nc), np.int64)
    smask, sign = (1 << sb) - 1, 1 << (sb - 1)
    for i in range(n):
        word = int.from_bytes(data[i * result_bytes : (i + 1) * result_bytes], "little")
        classes[i] = word & ((1 << cb) - 1)
        for k in range(nc):
            s = (word >> (cb + k * sb)) & smask
            scores[i, k] = s - (smask + 1) if s & sign else s
    return classes, scores
