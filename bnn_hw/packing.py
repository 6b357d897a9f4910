"""Bit order and packing, defined once for the whole toolkit (see docs/format.md, "Bits and words").

A vector of signs s[0..K) in {-1,+1} is stored as bits b[i] = 1 if s[i] == +1 else 0, packed little-endian into
64-bit words: element i lives in word i // 64, bit i % 64 (bit 0 = least significant). Bits past K in the last word
are 0. Every component (golden model, exporter, RTL memory images, GPU kernels) goes through these functions.
"""

from __future__ import annotations

import numpy as np

WORD_BITS = 64


def words_for(bits: int) -> int:
    """Number of 64-bit words that hold `bits` bits."""
    return (bits + WORD_BITS - 1) // WORD_BITS


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack a boolean (or 0/1) array along its last axis into uint64 words, little-endian bit order."""
    bits = np.asarray(bits).astype(bool, copy=False)
    k = bits.shape[-1]
    n_words = words_for(k)
    padded = np.zeros(bits.shape[:-1] + (n_words * WORD_BITS,), dtype=bool)
    padded[..., :k] = bits
    as_bytes = np.packbits(padded, axis=-1, bitorder="little")  # 8 bytes per word, little-endian byte order
    return np.ascontiguousarray(as_bytes).view("<u8").astype(np.uint64, copy=False)


def unpack_bits(words: np.ndarray, k: int) -> np.ndarray:
    """Inverse of `pack_bits`: uint64 (or uint32, the GPU's word) rows -> boolean array of the first `k` bits along
    the last axis. The bit order is the same for both word widths, so 32-bit rows need no reordering."""
    words = np.asarray(words)
    if words.dtype not in (np.uint32, np.uint64):
        words = words.astype(np.uint64)
    words = np.ascontiguousarray(words).astype(words.dtype.newbyteorder("<"), copy=False)
    as_bytes = words.view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, count=k, bitorder="little").astype(bool)


def signs_to_bits(signs: np.ndarray) -> np.ndarray:
    """{-1,+1} (any numeric dtype, 0 counts as +1 as in sign(0) = +1) -> boolean bits, 1 = +1."""
    return np.asarray(signs) >= 0


def bits_to_signs(bits: np.ndarray) -> np.ndarray:
    """Boolean bits -> int8 signs in {-1,+1}."""
    return np.where(np.asarray(bits, dtype=bool), np.int8(1), np.int8(-1))
