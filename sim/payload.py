"""Bit layouts of the top-level streams, in numpy: images to input beats, result words to (class, scores).

The generated top (rtl/) takes an image as `beats_per_image` beats of `pixels_per_beat` uint8 pixels in channels-last
flattened order, pixel j of a beat in bits [8j+7:8j]; it returns one word per image: the class index in bits
[0, class_bits), then score n as a two's-complement field at [class_bits + n*score_bits, ...). Both directions are
defined once here so that the fast HDL harness, the Python stream driver and the scoreboard cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bnn_hw.errors import BnnError


@dataclass(frozen=True)
class PixelStream:
    """How an image becomes input beats."""

    pixels_per_beat: int
    beats_per_image: int

    @property
    def width(self) -> int:
        return 8 * self.pixels_per_beat

    def beats(self, images: np.ndarray) -> np.ndarray:
        """uint8 (B, H, W, C) or (B, H*W*C) images -> uint8 (B * beats_per_image, pixels_per_beat) beats; the unused
        slots of an image's last beat are 0 (the DUT must ignore them; tests may fill them with noise instead)."""
        flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
        slots = self.pixels_per_beat * self.beats_per_image
        if flat.shape[1] > slots or flat.shape[1] <= slots - self.pixels_per_beat:
            raise BnnError(
                f"an image of {flat.shape[1]} pixels does not fill {self.beats_per_image} beats of "
                f"{self.pixels_per_beat} pixels: the build's manifest does not match these images"
            )
        padded = np.zeros((len(flat), slots), dtype=np.uint8)
        padded[:, : flat.shape[1]] = flat
        return padded.reshape(-1, self.pixels_per_beat)

    @staticmethod
    def to_ints(beats: np.ndarray) -> list[int]:
        """Beats as integers, pixel j in bits [8j+7:8j] (what a Python driver writes to the payload port)."""
        return [int.from_bytes(row.tobytes(), "little") for row in beats]

    @staticmethod
    def write_hex(path: str | Path, beats: np.ndarray) -> None:
        """One beat per line in $readmemh format: the most significant pixel (highest index) first."""
        digits = 2 * beats.shape[1]
        text = np.ascontiguousarray(beats[:, ::-1]).tobytes().hex()
        lines = [text[i : i + digits] for i in range(0, len(text), digits)]
        Path(path).write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class ResultFormat:
    """How (class, scores) are laid out in a result word."""

    class_bits: int
    score_bits: int
    num_classes: int

    @property
    def width(self) -> int:
        return self.class_bits + self.num_classes * self.score_bits

    def encode(self, classes: np.ndarray, scores: np.ndarray) -> list[int]:
        """The words a correct DUT emits; used by toy DUT tests and to show expected payloads in reports."""
        out = []
        cmask, smask = (1 << self.class_bits) - 1, (1 << self.score_bits) - 1
        for c, row in zip(np.asarray(classes).tolist(), np.asarray(scores).tolist(), strict=True):
            word = int(c) & cmask
            for n, s in enumerate(row):
                word |= (int(s) & smask) << (self.class_bits + n * self.score_bits)
            out.append(word)
        return out

    def decode(self, words: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Result words -> (classes int64 (B,), scores int64 (B, num_classes)), scores sign-extended."""
        classes = np.empty(len(words), dtype=np.int64)
        scores = np.empty((len(words), self.num_classes), dtype=np.int64)
        cmask, smask, sign = (1 << self.class_bits) - 1, (1 << self.score_bits) - 1, 1 << (self.score_bits - 1)
        for i, word in enumerate(words):
            classes[i] = word & cmask
            for n in range(self.num_classes):
                s = (word >> (self.class_bits + n * self.score_bits)) & smask
                scores[i, n] = s - (smask + 1) if s & sign else s
        return classes, scores

    def fits(self, scores: np.ndarray) -> bool:
        """Whether every reference score is representable in score_bits (else the build is too narrow)."""
        lim = 1 << (self.score_bits - 1)
        return bool(scores.size == 0 or (scores.min() >= -lim and scores.max() < lim))


def read_hex_words(path: str | Path, count: int) -> list[int | None]:
    """The first `count` words of a $writememh file; a word holding x or z bits reads as None."""
    words: list[int | None] = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        if line.startswith("@"):
            continue
        try:
            words.append(int(line, 16))
        except ValueError:
            words.append(None)
        if len(words) == count:
            break
    if len(words) < count:
        raise BnnError(f"{path}: expected {count} words from the simulator, found {len(words)}")
    return words
