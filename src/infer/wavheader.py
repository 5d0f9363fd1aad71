"""Read the sample count a WAV, RF64 or Wave64 header declares, without trusting the decoder.

libsndfile reports the frames it can actually read, so a file cut short by a full SD card or a
power loss looks complete. Parsing the header ourselves lets the decoder report the difference.
"""

from __future__ import annotations

import struct
from pathlib import Path

_W64_RIFF = bytes.fromhex("726966662e91cf11a5d628db04c10000")
_W64_FMT = bytes.fromhex("666d7420f3acd3118cd100c04f8edb8a")
_W64_DATA = bytes.fromhex("64617461f3acd3118cd100c04f8edb8a")

# RF64 writes 0xFFFFFFFF in the 32-bit sizes and keeps the real ones in the ds64 chunk.
_RF64_PLACEHOLDER = 0xFFFFFFFF


def declared_frames(path: Path) -> int | None:
    """Frames the header of a WAV/RF64/W64 file declares, or None for other or unparsable files."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
            if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
                handle.seek(12)
                return _riff_frames(handle, is_rf64=head[:4] == b"RF64")
            if head == _W64_RIFF:
                handle.seek(40)
                return _w64_frames(handle)
    except (OSError, struct.error):
        return None
    return None


def _riff_frames(handle, is_rf64: bool) -> int | None:
    block_align = None
    rf64_data_size = None
    while True:
        header = handle.read(8)
        if len(header) < 8:
            return None
        chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
        if chunk_id == b"ds64" and is_rf64:
            body = handle.read(size)
            rf64_data_size = struct.unpack("<Q", body[8:16])[0]
            handle.seek(size % 2, 1)
            continue
        if chunk_id == b"fmt ":
            body = handle.read(size)
            block_align = struct.unpack("<H", body[12:14])[0]
            handle.seek(size % 2, 1)
            continue
        if chunk_id == b"data":
            if size == _RF64_PLACEHOLDER and rf64_data_size is not None:
                size = rf64_data_size
            return size // block_align if block_align else None
        # Chunks are word-aligned: an odd size is followed by one pad byte.
        handle.seek(size + size % 2, 1)


def _w64_frames(handle) -> int | None:
    block_align = None
    while True:
        header = handle.read(24)
        if len(header) < 24:
            return None
        guid, size = header[:16], struct.unpack("<Q", header[16:])[0]
        body_size = size - 24
        if guid == _W64_FMT:
            body = handle.read(body_size)
            block_align = struct.unpack("<H", body[12:14])[0]
            handle.seek((8 - size % 8) % 8, 1)
            continue
        if guid == _W64_DATA:
            return body_size // block_align if block_align else None
        # Wave64 chunks are aligned to 8 bytes.
        handle.seek(body_size + (8 - size % 8) % 8, 1)
