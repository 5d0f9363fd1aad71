"""A minimal PNG encoder for 8-bit palette images, so reports need no imaging library.

Follows the PNG specification (ISO/IEC 15948): signature, IHDR, PLTE, one IDAT of
zlib-compressed scanlines (filter type 0 on every row), IEND, each chunk with its CRC-32.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPE_PALETTE = 3


def encode_indexed_png(pixels: np.ndarray, palette: np.ndarray) -> bytes:
    """Encode palette indices as a PNG.

    Args:
        pixels: uint8 `[height, width]`, each value an index into `palette`.
        palette: uint8 `[colors, 3]` RGB entries, at most 256.

    Returns:
        The PNG file's bytes.
    """
    if pixels.ndim != 2 or pixels.dtype != np.uint8 or 0 in pixels.shape:
        raise ValueError(f"expected a non-empty 2-D uint8 array, got {pixels.dtype} {pixels.shape}")
    if palette.ndim != 2 or palette.shape[1] != 3 or not 1 <= len(palette) <= 256:
        raise ValueError(f"expected a palette of 1 to 256 RGB entries, got shape {palette.shape}")
    height, width = pixels.shape
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPE_PALETTE, 0, 0, 0)
    # Each scanline starts with its filter type byte (0: none).
    scanlines = np.hstack([np.zeros((height, 1), dtype=np.uint8), pixels]).tobytes()
    return b"".join([
        _SIGNATURE,
        _chunk(b"IHDR", header),
        _chunk(b"PLTE", palette.astype(np.uint8).tobytes()),
        _chunk(b"IDAT", zlib.compress(scanlines, 9)),
        _chunk(b"IEND", b""),
    ])


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
