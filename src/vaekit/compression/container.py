"""The ``.vkc`` file format: a small header, then the entropy-coded payload.

Layout (integers little-endian; ``varint`` = unsigned LEB128, one byte below 128)::

    b"VKC" | version u8 | mode u8 (0 lossy, 1 lossless) | model identity 8 bytes
    | varint count | varint C | varint H | varint W | varint payload length
    | CRC32 u32 of every byte before it and of the payload | payload

The header is kept small on purpose (22 bytes for one 28x28 image): at 28x28 it is a
fifth of a bit per pixel, which per-image files pay in full. The model identity
(``identity.model_identity``) makes a file decoded with another model a clear error; the
CRC32 makes a flipped byte anywhere a clear error; the stored payload length makes a cut
file a clear error — never a crash or a silently wrong image.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from vaekit.errors import VaekitError

MAGIC = b"VKC"
FORMAT_VERSION = 1
MODES = ("lossy", "lossless")
IDENTITY_BYTES = 8


@dataclass(frozen=True)
class Header:
    """What a ``.vkc`` file says about its contents."""

    mode: str
    identity: bytes
    count: int
    shape: tuple[int, int, int]
    version: int = FORMAT_VERSION


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, pos: int, name: str) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise VaekitError(f"{name}: truncated or corrupted header (a .vkc file cut short?)")


def pack(header: Header, payload: bytes) -> bytes:
    """The bytes of a ``.vkc`` file holding ``payload``."""
    if header.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    if len(header.identity) != IDENTITY_BYTES:
        raise ValueError(f"identity must be {IDENTITY_BYTES} bytes")
    head = (MAGIC + bytes([FORMAT_VERSION, MODES.index(header.mode)]) + header.identity
            + b"".join(_varint(v) for v in (header.count, *header.shape, len(payload))))
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + struct.pack("<I", crc) + payload


def unpack(data: bytes, name: str = "input") -> tuple[Header, bytes]:
    """``(header, payload)`` of a ``.vkc`` file's bytes, or a one-line ``VaekitError`` naming
    ``name`` for a file that is not one, is of a newer format, was cut short or was altered."""
    fixed = len(MAGIC) + 2 + IDENTITY_BYTES
    if not data.startswith(MAGIC):
        raise VaekitError(f"{name}: not a vaekit compressed file (expected it to start with {MAGIC!r})")
    if len(data) < fixed:
        raise VaekitError(f"{name}: truncated (only {len(data)} bytes; the header alone needs more)")
    version, mode = data[3], data[4]
    if version != FORMAT_VERSION:
        raise VaekitError(f"{name}: format version {version}, this vaekit reads version {FORMAT_VERSION}")
    identity = data[5:fixed]
    pos = fixed
    values = []
    for _ in range(5):
        v, pos = _read_varint(data, pos, name)
        values.append(v)
    count, c, h, w, length = values
    if pos + 4 > len(data):
        raise VaekitError(f"{name}: truncated (the header is cut short)")
    (crc,) = struct.unpack_from("<I", data, pos)
    payload = data[pos + 4:]
    if len(payload) < length:
        raise VaekitError(f"{name}: truncated ({len(payload)} of {length} payload bytes)")
    if len(payload) > length:
        raise VaekitError(f"{name}: corrupted ({len(payload) - length} bytes more than the header says)")
    if zlib.crc32(payload, zlib.crc32(data[:pos])) != crc:
        raise VaekitError(f"{name}: corrupted (checksum mismatch: the file was altered after it was written)")
    if mode >= len(MODES):
        raise VaekitError(f"{name}: corrupted (unknown mode {mode})")
    return Header(mode=MODES[mode], identity=identity, count=count, shape=(c, h, w), version=version), payload
