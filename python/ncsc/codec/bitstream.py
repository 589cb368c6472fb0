"""The NCSC bitstream: an explicit header, the two entropy-coded strings, and CRC-32s.

Layout (big-endian), documented in docs/bitstream.md::

    0  magic      4s  b"NCSC"
    4  version    B   1
    5  model_id   B   architecture id (registry)
    6  metric     B   0 = mse, 1 = ms-ssim
    7  quality    B
    8  order      B   0 = wavefront, 1 = raster (serial)
    9  flags      B   reserved, 0
    10 height     H   image height in pixels
    12 width      H   image width
    14 z_h, z_w   HH  hyper-latent shape (latent y is 4x that)
    18 len_z      I   bytes of the hyper-latent string
    22 len_y      I   bytes of the latent string
    26 hdr_crc    I   CRC-32 of bytes 0..25
    30 payload        z string, then y string
    end pay_crc   I   CRC-32 of the payload
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

MAGIC = b"NCSC"
VERSION = 1
_HDR = struct.Struct(">4sBBBBBBHHHHII")
HEADER_SIZE = _HDR.size + 4
MAX_SIDE = 8192
# Largest image a decoder accepts unless told otherwise: decoding costs memory and time in
# proportion to the pixels a header declares, so a forged header must not buy 8192x8192.
DEFAULT_MAX_PIXELS = 4_194_304  # 2048 x 2048 (Kodak: 393 216)
METRIC_IDS = {"mse": 0, "ms-ssim": 1}
ORDER_IDS = {"wavefront": 0, "raster": 1}


class BitstreamError(ValueError):
    """A stream that is not a valid NCSC bitstream (truncated, corrupted, wrong format)."""


@dataclass(frozen=True)
class Header:
    model_id: int
    metric: str
    quality: int
    order: str
    height: int
    width: int
    z_shape: tuple[int, int]
    len_z: int
    len_y: int


def latent_shape_for(height: int, width: int) -> tuple[int, int]:
    """Hyper-latent shape of an image padded to a multiple of 64."""
    return (-(-height // 64), -(-width // 64))


def pack(header: Header, z_string: bytes, y_string: bytes) -> bytes:
    if len(z_string) != header.len_z or len(y_string) != header.len_y:
        raise ValueError("header lengths do not match the strings")
    head = _HDR.pack(MAGIC, VERSION, header.model_id, METRIC_IDS[header.metric], header.quality,
                     ORDER_IDS[header.order], 0, header.height, header.width, *header.z_shape,
                     header.len_z, header.len_y)
    payload = z_string + y_string
    return head + struct.pack(">I", zlib.crc32(head)) + payload + struct.pack(">I", zlib.crc32(payload))


def check_pixels(header: Header, max_pixels: int) -> None:
    """Refuse a stream whose header declares more than ``max_pixels`` (before any decoding work)."""
    if header.height * header.width > max_pixels:
        raise BitstreamError(f"image {header.width}x{header.height} is above the limit of {max_pixels} pixels "
                             f"(max_pixels)")


def unpack(data: bytes) -> tuple[Header, bytes, bytes]:
    """Parse and check a bitstream; raise :class:`BitstreamError` with the reason."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < HEADER_SIZE + 4:
        raise BitstreamError(f"stream too short ({len(data)} bytes) for an NCSC header")
    fields = _HDR.unpack_from(data)
    magic, version, model_id, metric, quality, order, flags, h, w, zh, zw, len_z, len_y = fields
    if magic != MAGIC:
        raise BitstreamError(f"not an NCSC stream (magic {magic!r})")
    (hdr_crc,) = struct.unpack_from(">I", data, _HDR.size)
    if zlib.crc32(data[: _HDR.size]) != hdr_crc:
        raise BitstreamError("header CRC mismatch (corrupted header)")
    if version != VERSION:
        raise BitstreamError(f"unsupported bitstream version {version} (this reader knows {VERSION})")
    metrics = {v: k for k, v in METRIC_IDS.items()}
    orders = {v: k for k, v in ORDER_IDS.items()}
    if metric not in metrics or order not in orders or flags:
        raise BitstreamError("unknown metric, order or flags in header")
    if not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE):
        raise BitstreamError(f"absurd image size {w}x{h} in header (max {MAX_SIDE})")
    if (zh, zw) != latent_shape_for(h, w):
        raise BitstreamError(f"latent shape {zh}x{zw} does not fit a {w}x{h} image")
    expected = HEADER_SIZE + len_z + len_y + 4
    if len(data) != expected:
        raise BitstreamError(f"stream is {len(data)} bytes, header promises {expected} (truncated or padded)")
    payload = data[HEADER_SIZE:-4]
    (pay_crc,) = struct.unpack_from(">I", data, len(data) - 4)
    if zlib.crc32(payload) != pay_crc:
        raise BitstreamError("payload CRC mismatch (corrupted stream)")
    header = Header(model_id, metrics[metric], quality, orders[order], h, w, (zh, zw), len_z, len_y)
    return header, payload[:len_z], payload[len_z:]
