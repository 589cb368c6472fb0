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
class StreamInfo:
    """What both versions' headers say: the model, the image and the hyperprior string."""

    model_id: int
    metric: str
    quality: int
    order: str
    height: int
    width: int
    z_shape: tuple[int, int]
    len_z: int


@dataclass(frozen=True)
class Header(StreamInfo):
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


# -- version 2: sliced and paged, for links that lose blocks -------------------------------------
#
#    0  magic 4s, version B (2), model_id B, metric B, quality B, order B, flags B (FLAG_*),
#    10 height H, width H, z_h H, z_w H, len_z I,
#    22 tile_h B, tile_w B    latent rows / columns per slice (tiles in raster order)
#    24 page H                bytes per page (the framer's block payload)
#    26 n_slices H
#    28 hdr_crc I             CRC-32 of bytes 0..27
#    32 slice lengths         n_slices x u16
#    .. z string              len_z bytes
#    .. head_crc I            CRC-32 of the lengths and the z string
#
# The head (all of the above) is padded to whole pages and sent twice (once with FLAG_HEAD_ONCE,
# when the link repeats the head's blocks itself and combines them; with FLAG_HEAD_PACKED as
# well, the slices start right after it, in its last page, which the link protects anyway);
# then the slices, placed by slice_layout: one after the other (FLAG_UNALIGNED, what the encoder
# writes), or with a slice that fits in a page never straddling a page boundary. Each slice is
# its own rANS string, coded with the context model restricted to its tile: any subset of slices
# decodes, and a slice cut by a lost page (block) keeps its beginning.
VERSION_SLICED = 2
_HDR2 = struct.Struct(">4sBBBBBBHHHHIBBHH")
HEAD2_FIXED = _HDR2.size + 4
MIN_PAGE = 16
# The head is in the stream once: the link protects its pages (repeated codewords whose LLRs the
# receiver adds, i.e. a lower code rate) instead of a second copy in the stream.
FLAG_HEAD_ONCE = 0x01
# With FLAG_HEAD_ONCE: the slice area is not page-aligned after the head but follows it, so the
# rest of the head's last page (its padding, up to a page per image) carries slices.
FLAG_HEAD_PACKED = 0x02
# Slices follow each other with no page alignment: no padding (3 % of Kodak's bits with 4 x 24
# tiles), and a lost page also cuts the slice running into it, which keeps its beginning.
FLAG_UNALIGNED = 0x04
FLAGS_KNOWN = FLAG_HEAD_ONCE | FLAG_HEAD_PACKED | FLAG_UNALIGNED


@dataclass(frozen=True)
class SlicedHeader(StreamInfo):
    tile: tuple[int, int]
    page: int
    slice_lengths: tuple[int, ...]
    head_copies: int = 2  # 1: FLAG_HEAD_ONCE
    packed: bool = False  # FLAG_HEAD_PACKED (only with one head copy)
    aligned: bool = True  # False: FLAG_UNALIGNED

    def tiles(self) -> list[tuple[int, int, int, int]]:
        """(row0, row1, col0, col1) of each slice's latent tile, in slice order."""
        return tile_grid(4 * self.z_shape[0], 4 * self.z_shape[1], *self.tile)


def tile_grid(h: int, w: int, th: int, tw: int) -> list[tuple[int, int, int, int]]:
    return [(r, min(r + th, h), c, min(c + tw, w)) for r in range(0, h, th) for c in range(0, w, tw)]


def slice_layout(lengths, page: int, start: int = 0, aligned: bool = True) -> list[int]:
    """Byte offset of each slice in the slice area, which begins ``start`` bytes into the
    stream: slices follow each other, except, when ``aligned``, that a slice that fits in a page
    but not in the rest of the current one starts the next page (so a lost page loses only its
    own slices; a slice longer than a page spans pages where it is, since aligning it would
    waste the rest of a page and still not keep it on one)."""
    offsets, pos = [], 0
    for n in lengths:
        at = (start + pos) % page
        room = page - at
        if aligned and room < n <= page and at:
            pos += room
        offsets.append(pos)
        pos += n
    return offsets


def _area_start(header: SlicedHeader, head_len: int) -> int:
    """Where the slice area begins: after the head's copies, each padded to whole pages, or
    right after the one head (FLAG_HEAD_PACKED)."""
    if header.packed:
        return head_len
    return header.head_copies * -(-head_len // header.page) * header.page


def _head_bytes(header: SlicedHeader, z_string: bytes) -> bytes:
    if header.head_copies not in (1, 2) or (header.packed and header.head_copies != 1):
        raise ValueError("the head is sent once or twice, and packed only when once")
    flags = (FLAG_HEAD_ONCE if header.head_copies == 1 else 0) | (FLAG_HEAD_PACKED if header.packed else 0) \
        | (0 if header.aligned else FLAG_UNALIGNED)
    fixed = _HDR2.pack(MAGIC, VERSION_SLICED, header.model_id, METRIC_IDS[header.metric], header.quality,
                       ORDER_IDS[header.order], flags, header.height, header.width, *header.z_shape, header.len_z,
                       *header.tile, header.page, len(header.slice_lengths))
    body = struct.pack(f">{len(header.slice_lengths)}H", *header.slice_lengths) + z_string
    return fixed + struct.pack(">I", zlib.crc32(fixed)) + body + struct.pack(">I", zlib.crc32(body))


def pack_sliced(header: SlicedHeader, z_string: bytes, slices: list[bytes]) -> bytes:
    if tuple(len(s) for s in slices) != header.slice_lengths or len(z_string) != header.len_z:
        raise ValueError("header lengths do not match the strings")
    if len(slices) != len(header.tiles()):
        raise ValueError("one slice per tile")
    page = header.page
    head = _head_bytes(header, z_string)
    area0 = _area_start(header, len(head))
    if not header.packed:
        head += bytes(-len(head) % page)
    offsets = slice_layout(header.slice_lengths, page, area0, header.aligned)
    area = bytearray(offsets[-1] + len(slices[-1]) if slices else 0)
    for off, s in zip(offsets, slices, strict=True):
        area[off : off + len(s)] = s
    return head * header.head_copies + bytes(area)


def head_pages(data: bytes) -> int:
    """Pages at the start of a version-2 stream that hold its head (both copies, or the one),
    i.e. the blocks a link protects more; 0 when ``data`` does not start with an intact head."""
    try:
        found = _parse_head(bytes(data), 0)
    except BitstreamError:
        return 0
    if found is None:
        return 0
    header, _, head_len = found
    return header.head_copies * -(-head_len // header.page)


def _parse_head(data: bytes, at: int) -> tuple[SlicedHeader, bytes, int] | None:
    """The head at byte ``at``, or None when it is not an intact version-2 head."""
    if len(data) < at + HEAD2_FIXED:
        return None
    fields = _HDR2.unpack_from(data, at)
    (crc,) = struct.unpack_from(">I", data, at + _HDR2.size)
    if fields[0] != MAGIC or fields[1] != VERSION_SLICED or zlib.crc32(data[at : at + _HDR2.size]) != crc:
        return None
    _, _, model_id, metric, quality, order, flags, h, w, zh, zw, len_z, th, tw, page, n = fields
    metrics = {v: k for k, v in METRIC_IDS.items()}
    orders = {v: k for k, v in ORDER_IDS.items()}
    if metric not in metrics or order not in orders or flags & ~FLAGS_KNOWN \
            or (flags & FLAG_HEAD_PACKED and not flags & FLAG_HEAD_ONCE) or th == 0 or tw == 0 or page < MIN_PAGE:
        raise BitstreamError("unknown metric, order or flags, or an impossible slicing, in header")
    if not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE) or (zh, zw) != latent_shape_for(h, w):
        raise BitstreamError(f"absurd image size {w}x{h} or latent shape {zh}x{zw} in header")
    if n != len(tile_grid(4 * zh, 4 * zw, th, tw)):
        raise BitstreamError(f"{n} slices do not tile a {4 * zh}x{4 * zw} latent in {th}x{tw} tiles")
    start = at + HEAD2_FIXED
    end = start + 2 * n + len_z
    if len(data) < end + 4:
        return None
    body = data[start:end]
    if zlib.crc32(body) != struct.unpack_from(">I", data, end)[0]:
        return None
    lengths = struct.unpack_from(f">{n}H", body)
    header = SlicedHeader(model_id, metrics[metric], quality, orders[order], h, w, (zh, zw), len_z, (th, tw), page,
                          tuple(lengths), 1 if flags & FLAG_HEAD_ONCE else 2, bool(flags & FLAG_HEAD_PACKED),
                          not flags & FLAG_UNALIGNED)
    head_len = end + 4 - at
    return header, body[2 * n :], head_len


def is_sliced(data: bytes) -> bool:
    return len(data) >= 5 and data[:4] == MAGIC and data[4] == VERSION_SLICED


HEAD_SEARCH_PAGES = 64  # how far into a damaged stream the head's copies are looked for


def _head_candidates(data: bytes, page: int | None) -> list[int]:
    """Where a head may start: the stream's start, or with losses any page start near it."""
    return [0] if page is None else [j * page for j in range(min(HEAD_SEARCH_PAGES, max(1, len(data) // page)))]


def looks_sliced(data: bytes, page: int) -> bool:
    """Whether a page start of a damaged stream begins a sliced (version 2) head: an incomplete
    image of bitstream 1 has nothing to decode, one of bitstream 2 may."""
    return any(is_sliced(data[at : at + 5]) for at in _head_candidates(data, page))


class SlicePrefix(bytes):
    """The received beginning of a slice whose later pages were lost. rANS reads its string
    forward, so the values coded before the cut decode exactly as sent; the rest is concealed."""


def unpack_sliced(data: bytes, lost_pages=(), page: int | None = None):
    """(header, z string, slices) of a version-2 stream. A slice whose first page was lost is
    None; one that lost a later page is the :class:`SlicePrefix` that arrived before it.

    ``lost_pages``: indices of pages (the link's blocks, ``page`` bytes each) that did not arrive
    and are zeros in ``data``; the head is read from whichever copy is intact. Raises
    :class:`BitstreamError` when no copy of the head is."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    lost = {int(i) for i in lost_pages}
    found = None
    for at in _head_candidates(data, page):
        if page is not None and at // page in lost:
            continue
        found = _parse_head(data, at)
        if found is not None:
            break
    if found is None:
        raise BitstreamError("no intact copy of the stream's head (header and hyperprior) arrived")
    header, z_string, head_len = found
    if page is not None and header.page != page:
        raise BitstreamError(f"stream pages are {header.page} bytes, the link's blocks {page}")
    pg = header.page
    area0 = _area_start(header, head_len)
    offsets = slice_layout(header.slice_lengths, pg, area0, header.aligned)
    if lost == set() and len(data) != area0 + (offsets[-1] + header.slice_lengths[-1] if offsets else 0):
        raise BitstreamError("sliced stream is truncated or padded")
    slices = []
    for off, n in zip(offsets, header.slice_lengths, strict=True):
        a, b = area0 + off, area0 + off + n
        gone = [p for p in range(a // pg, (b - 1) // pg + 1) if p in lost] if n else []
        if b <= len(data) and not gone:
            slices.append(data[a:b])
            continue
        cut = min(len(data), gone[0] * pg if gone else b)
        slices.append(SlicePrefix(data[a:cut]) if cut - a >= 4 else None)  # 4 bytes: the coder's state
    return header, z_string, slices
