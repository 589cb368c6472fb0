"""Plain (flowgraph-free) image sender and receiver that the GNU Radio blocks wrap.

``ImageSender`` turns image files into NCSC bitstreams with metadata;
``ImageReceiver`` turns reassembled bitstreams back into PNG files and JSON records
(status, bits, transmission overhead, BCR, PSNR, MS-SSIM). Neither ever raises on a
bad image: the error becomes part of the record.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

import numpy as np

from .codec.bitstream import head_pages
from .codec.image import IMAGE_SUFFIXES, ImageError, load_image, ms_ssim, psnr, save_png, to_array
from .fec.repetition import codewords_sent
from .framing.frame import checked_int

log = logging.getLogger(__name__)


def expand_paths(spec: str | os.PathLike | list) -> list[Path]:
    """A file, a folder (its images, sorted) or a list / ';'-separated string of those."""
    if isinstance(spec, (list, tuple)):
        items = [Path(p) for p in spec]
    else:
        items = [Path(p.strip()) for p in str(spec).split(";") if p.strip()]
    out: list[Path] = []
    for p in items:
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out


class ImageSender:
    """Encodes images one by one; ids count up from ``first_id`` (16-bit, wrapping)."""

    def __init__(self, codec, first_id: int = 0, slices: tuple[int, int] | None = None, page: int = 180,
                 head_copies: int = 2, align: bool = False):
        """``slices=(rows, cols)``: sliced streams (tiles of latent rows x columns, pages of
        ``page`` bytes, the framer's block payload), which a lossy link delivers in part; their
        head goes ``head_copies`` times into the stream (1 when the link repeats its blocks
        itself); ``align=True``: short slices start a new page rather than straddle one."""
        self.codec = codec
        self.next_id = first_id & 0xFFFF
        self.slices, self.page = (tuple(slices) if slices else None), int(page)
        self.head_copies, self.align = int(head_copies), bool(align)

    @classmethod
    def for_profile(cls, codec, profile, page: int, first_id: int = 0, align: bool = False) -> ImageSender:
        """The sender a link profile asks for: its slicing, and the head once when the link
        repeats the head's blocks (``ldpc.head_repeat``)."""
        return cls(codec, first_id, profile.slices, page, 1 if profile.head_repeat > 1 else 2, align)

    def encode(self, path: Path) -> tuple[dict, bytes]:
        """(meta, bitstream) for one file; raises ImageError / ValueError with a clear message."""
        x = load_image(path)
        t0 = time.perf_counter()
        if self.slices:
            out = self.codec.compress(x, slices=self.slices, page=self.page, head_copies=self.head_copies,
                                      align=self.align)
        else:
            out = self.codec.compress(x)
        data = out["bitstream"]
        h, w = x.shape[-2:]
        meta = {"image_id": self.next_id, "name": Path(path).name, "path": str(Path(path).resolve()),
                "width": int(w), "height": int(h), "model": self.codec.metric, "quality": self.codec.quality,
                "bits": 8 * len(data), "bpp": 8 * len(data) / (w * h), "encode_s": time.perf_counter() - t0}
        if self.slices:  # the blocks a link may protect more (bitstream.head_pages)
            meta["head_blocks"] = head_pages(data)
        self.next_id = (self.next_id + 1) & 0xFFFF
        return meta, data


MAX_NAME = 64


def safe_name(name) -> str:
    """A file-name stem from untrusted metadata: printable, no separators, at most MAX_NAME characters."""
    stem = Path(str(name)).stem if isinstance(name, str) else ""
    stem = re.sub(r"[^A-Za-z0-9._+-]", "_", stem)[:MAX_NAME].strip("._")
    return stem or "image"


def _int_field(meta: dict, key: str, lo: int, hi: int):
    return checked_int(meta.get(key), lo, hi)


def _sanitize(meta) -> dict:
    """The metadata fields a record takes, checked: anything odd is dropped, never raised on."""
    meta = meta if isinstance(meta, dict) else {}
    rec = {}
    for key, lo, hi in (("image_id", 0, 0xFFFF), ("width", 1, 1 << 16), ("height", 1, 1 << 16),
                        ("bits", 0, 1 << 40)):
        v = _int_field(meta, key, lo, hi)
        if v is not None:
            rec[key] = v
    if isinstance(meta.get("name"), str):
        rec["name"] = safe_name(meta["name"])
    if isinstance(meta.get("model"), str) and len(meta["model"]) <= 16:
        rec["model"] = meta["model"]
    if isinstance(meta.get("bpp"), (int, float)) and not isinstance(meta.get("bpp"), bool):
        rec["bpp"] = float(meta["bpp"])
    return rec


class ImageReceiver:
    """Decodes reassembled images, writes ``<out>/<id>_<name>.png`` and ``.json``; returns the record.

    ``receive`` never raises: metadata is untrusted (fields of the wrong type or range are
    dropped, names are reduced to safe stems) and a stream above ``max_pixels`` is refused
    from its header, before any decoding."""

    def __init__(self, codec_for, out_dir: str | os.PathLike | None = None, bits_per_symbol: int = 4,
                 code_rate: float = 1 / 3, max_pixels: int | None = None, keep_image: bool = False,
                 head_repeat: int = 1):
        """``head_repeat``: the link's repetition of a sliced image's head blocks (profile
        ``ldpc.head_repeat``), counted in the record's channel symbols."""
        from .codec.bitstream import DEFAULT_MAX_PIXELS

        self.codec_for = codec_for  # metric -> codec
        self.out_dir = Path(out_dir) if out_dir else None
        self.bps = bits_per_symbol
        self.rate = code_rate
        self.max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
        self.keep_image = keep_image  # the decoded tensor in the record ("x_hat"), for a display
        self.head_repeat = int(head_repeat)

    def receive(self, meta: dict, data: bytes) -> dict:
        try:
            return self._receive(meta if isinstance(meta, dict) else {}, data)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: a record, never a crash
            log.exception("image record failed")
            rec = _sanitize(meta)
            rec.update(status="failed", reason=f"receiver error: {exc}")
            try:
                return self._write(rec, None, {})
            except Exception:  # noqa: BLE001 - e.g. an unwritable output folder
                return rec

    def _receive(self, meta: dict, data: bytes) -> dict:
        rec = _sanitize(meta)
        rec["codewords"] = _int_field(meta, "blocks", 0, 1 << 16) or _int_field(meta, "codewords", 0, 1 << 16) or 0
        lost = [meta.get("failed"), meta.get("missing")]
        rec["codeword_errors"] = sum(len(v) for v in lost if isinstance(v, (list, tuple)))
        sent = rec["codewords"]  # codewords on the channel: the head's repeated ones too
        if self.head_repeat > 1:
            # the sender's count, or over the air (where image metadata does not travel) the
            # head the stream itself declares
            head = _int_field(meta, "head_blocks", 0, 1 << 16)
            if head is None and data:
                head = head_pages(data[: 1 << 16])
            sent = codewords_sent(sent, head or 0, self.head_repeat)
        coded_bits = sent * (_int_field(meta, "ldpc_k", 1, 1 << 20) or 1536)
        rec["symbols"] = int(round(coded_bits / self.rate / self.bps))  # transmission overhead (TO)
        if "width" in rec and "height" in rec:
            rec["bcr"] = rec["symbols"] / (3 * rec["width"] * rec["height"])
        lost, page = (), None
        if meta.get("status", "complete") != "complete":
            lost, page = _loss_map(meta, rec["codewords"])
            from .codec.bitstream import looks_sliced

            if not data or page is None or not looks_sliced(data, page):  # all-or-nothing stream
                rec.update(status="failed", reason=meta.get("reason", "incomplete image"))
                return self._write(rec, None, meta)
        try:
            from .codec.bitstream import check_pixels, is_sliced, unpack, unpack_sliced

            if lost or is_sliced(data[:5]):
                header = unpack_sliced(data, lost, page)[0]
            else:
                header = unpack(data)[0]
            check_pixels(header, self.max_pixels)  # before a codec is loaded
            codec = self.codec_for(header.metric)
            t0 = time.perf_counter()
            partial = {"lost_pages": lost, "page": page} if lost else {}
            out = codec.decompress(data, max_pixels=self.max_pixels, **partial)
            x_hat = out["x_hat"]
            rec["decode_s"] = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - a bad stream is a record, never a crash
            why = f"{meta.get('reason', 'incomplete image')}; " if lost else ""
            rec.update(status="failed", reason=f"{why}undecodable: {exc}")
            return self._write(rec, None, meta)
        # bits sent: the stream's length, or with blocks lost the sender's (checked) figure
        bits = rec.get("bits", 8 * len(data)) if lost else 8 * len(data)
        rec.update(status="ok", width=int(header.width), height=int(header.height),
                   bits=bits, bpp=bits / (header.width * header.height))
        if out.get("concealed"):
            boxes = [(c0 * 16, r0 * 16, min(c1 * 16, header.width), min(r1 * 16, header.height))
                     for r0, r1, c0, c1 in out["concealed_boxes"]]
            boxes = [b for b in boxes if b[0] < b[2] and b[1] < b[3]]  # tiles in the padding: not shown
            rec.update(status="partial", concealed=float(out["concealed"]), lost_slices=len(out["lost_slices"]),
                       partial_slices=len(out["partial_slices"]),
                       reason=meta.get("reason", "blocks lost"),
                       concealed_boxes=";".join(",".join(str(v) for v in b) for b in boxes))  # pixels: x0,y0,x1,y1
        got = to_array(x_hat)
        ref_path = meta.get("path")
        if isinstance(ref_path, str) and "\0" not in ref_path and Path(ref_path).is_file():
            try:
                ref = to_array(load_image(ref_path))
                if ref.shape == got.shape:
                    rec["psnr"] = psnr(ref, got)
                    rec["ms_ssim"] = ms_ssim(ref, got)
            except ImageError as exc:
                log.warning("cannot score against %s: %s", ref_path, exc)
        return self._write(rec, x_hat, meta)

    def _write(self, rec: dict, x_hat, meta: dict) -> dict:
        if self.keep_image and x_hat is not None:
            rec["x_hat"] = x_hat
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            iid = rec.get("image_id")
            stem = f"{iid:05d}_{rec.get('name', 'image')}" if isinstance(iid, int) else f"x_{rec.get('name', 'image')}"
            if x_hat is not None:
                png = self.out_dir / f"{stem}.png"
                save_png(x_hat, png)
                rec["png"] = str(png)
            (self.out_dir / f"{stem}.json").write_text(json.dumps(_jsonable(rec), indent=1))
        return rec


def _loss_map(meta: dict, blocks: int) -> tuple[tuple[int, ...], int | None]:
    """The lost block indices and the block size of an incomplete image, checked (untrusted)."""
    page = _int_field(meta, "block_bytes", 16, 1 << 16)
    lost = meta.get("lost")
    if page is None or not isinstance(lost, (list, tuple)) or len(lost) > max(blocks, 1):
        return (), None
    idx = [checked_int(i, 0, 0xFFFF) for i in lost]
    return (tuple(i for i in idx if i is not None), page) if None not in idx else ((), None)


def _jsonable(d: dict) -> dict:
    return {k: (float(v) if isinstance(v, (np.floating,)) else int(v) if isinstance(v, np.integer) else v)
            for k, v in d.items() if k != "x_hat"}
