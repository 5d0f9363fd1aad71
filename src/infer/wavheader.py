"""Read the sample count a WAV, RF64, Wave64 or AIFF header declares, without trusting the decoder.

libsndfile reports the frames it can actually read, so a file cut short by a full SD card or a
power loss looks complete. Parsing the header ourselves lets the decoder report the difference.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_W64_RIFF = bytes.fromhex("726966662e91cf11a5d628db04c10000")
_W64_FMT = bytes.fromhex("666d7420f3acd3118cd100c04f8edb8a")
_W64_DATA = bytes.fromhex("64617461f3acd3118cd100c04f8edb8a")

# RF64 writes 0xFFFFFFFF in the 32-bit sizes and keeps the real ones in the ds64 chunk. Some
# recorders also write it in a plain RIFF header while they are still recording, and leave it
# there when the power fails: the length is then unknown, not 4 GiB.
_SIZE_PLACEHOLDER = 0xFFFFFFFF


@dataclass(frozen=True)
class DeclaredLength:
    """What a header says about the sample data.

    Attributes:
        frames: Frames per channel the header declares; None when it holds a placeholder.
        data_offset: Byte offset of the first sample in the file.
    """

    frames: int | None
    data_offset: int


def declared_frames(path: Path) -> int | None:
    """Frames the header of a WAV/RF64/W64/AIFF file declares, or None for other or unparsable files."""
    length = read_declared_length(path)
    return None if length is None else length.frames


def read_declared_length(path: Path) -> DeclaredLength | None:
    """The declared length and data offset of a WAV/RF64/W64/AIFF file; None for other formats."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
            if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
                handle.seek(12)
                return _riff_length(handle, is_rf64=head[:4] == b"RF64")
            if head == _W64_RIFF:
                handle.seek(40)
                return _w64_length(handle)
            if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                handle.seek(12)
                return _aiff_length(handle)
    except (OSError, struct.error, ValueError):
        return None
    return None


def _riff_length(handle: BinaryIO, is_rf64: bool) -> DeclaredLength | None:
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
            if not block_align:
                return None
            if size == _SIZE_PLACEHOLDER:
                if rf64_data_size is None:
                    return DeclaredLength(None, handle.tell())
                size = rf64_data_size
            return DeclaredLength(size // block_align, handle.tell())
        # Chunks are word-aligned: an odd size is followed by one pad byte.
        handle.seek(size + size % 2, 1)


def _w64_length(handle: BinaryIO) -> DeclaredLength | None:
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
            return DeclaredLength(body_size // block_align, handle.tell()) if block_align else None
        # Wave64 chunks are aligned to 8 bytes.
        handle.seek(body_size + (8 - size % 8) % 8, 1)


def _aiff_length(handle: BinaryIO) -> DeclaredLength | None:
    # AIFF is big-endian; COMM holds numSampleFrames, SSND an 8-byte preamble before the samples.
    frames = None
    data_offset = None
    while frames is None or data_offset is None:
        header = handle.read(8)
        if len(header) < 8:
            return None
        chunk_id, size = header[:4], struct.unpack(">I", header[4:])[0]
        if chunk_id == b"COMM":
            body = handle.read(size)
            frames = struct.unpack(">I", body[2:6])[0]
            handle.seek(size % 2, 1)
            continue
        if chunk_id == b"SSND":
            offset = struct.unpack(">I", handle.read(8)[:4])[0]
            data_offset = handle.tell() + offset
            handle.seek(size - 8 + size % 2, 1)
            continue
        handle.seek(size + size % 2, 1)
    return DeclaredLength(frames, data_offset)
