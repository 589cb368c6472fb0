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
import time
from pathlib import Path

import numpy as np

from .codec.image import IMAGE_SUFFIXES, ImageError, load_image, ms_ssim, psnr, save_png, to_array

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

    def __init__(self, codec, first_id: int = 0):
        self.codec = codec
        self.next_id = first_id & 0xFFFF

    def encode(self, path: Path) -> tuple[dict, bytes]:
        """(meta, bitstream) for one file; raises ImageError / ValueError with a clear message."""
        x = load_image(path)
        t0 = time.perf_counter()
        out = self.codec.compress(x)
        data = out["bitstream"]
        h, w = x.shape[-2:]
        meta = {"image_id": self.next_id, "name": Path(path).name, "path": str(Path(path).resolve()),
                "width": int(w), "height": int(h), "model": self.codec.metric, "quality": self.codec.quality,
                "bits": 8 * len(data), "bpp": 8 * len(data) / (w * h), "encode_s": time.perf_counter() - t0}
        self.next_id = (self.next_id + 1) & 0xFFFF
        return meta, data


class ImageReceiver:
    """Decodes reassembled images, writes ``<out>/<id>_<name>.png`` and ``.json``; returns the record."""

    def __init__(self, codec_for, out_dir: str | os.PathLike | None = None, bits_per_symbol: int = 4,
                 code_rate: float = 1 / 3):
        self.codec_for = codec_for  # metric -> codec
        self.out_dir = Path(out_dir) if out_dir else None
        self.bps = bits_per_symbol
        self.rate = code_rate

    def receive(self, meta: dict, data: bytes) -> dict:
        rec = {k: meta[k] for k in ("image_id", "name", "width", "height", "model", "bits", "bpp")
               if k in meta}
        rec["codewords"] = int(meta.get("blocks", meta.get("codewords", 0)) or 0)
        rec["codeword_errors"] = len(meta.get("failed", [])) + len(meta.get("missing", []))
        coded_bits = rec["codewords"] * meta.get("ldpc_k", 1536)
        rec["symbols"] = int(round(coded_bits / self.rate / self.bps))  # transmission overhead (TO)
        if "width" in rec and "height" in rec:
            rec["bcr"] = rec["symbols"] / (3 * rec["width"] * rec["height"])
        if meta.get("status", "complete") != "complete":
            rec.update(status="failed", reason=meta.get("reason", "incomplete image"))
            return self._write(rec, None, meta)
        try:
            from .codec.bitstream import unpack

            header, _, _ = unpack(data)
            codec = self.codec_for(header.metric)
            t0 = time.perf_counter()
            x_hat = codec.decompress(data)["x_hat"]
            rec["decode_s"] = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - a bad stream is a record, never a crash
            rec.update(status="failed", reason=f"undecodable: {exc}")
            return self._write(rec, None, meta)
        rec.update(status="ok", width=int(header.width), height=int(header.height),
                   bits=8 * len(data), bpp=8 * len(data) / (header.width * header.height))
        got = to_array(x_hat)
        ref_path = meta.get("path")
        if ref_path and Path(ref_path).exists():
            try:
                ref = to_array(load_image(ref_path))
                if ref.shape == got.shape:
                    rec["psnr"] = psnr(ref, got)
                    rec["ms_ssim"] = ms_ssim(ref, got)
            except ImageError as exc:
                log.warning("cannot score against %s: %s", ref_path, exc)
        return self._write(rec, x_hat, meta)

    def _write(self, rec: dict, x_hat, meta: dict) -> dict:
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            stem = f"{rec.get('image_id', 'x'):05d}_{Path(str(rec.get('name', 'image'))).stem}"
            if x_hat is not None:
                png = self.out_dir / f"{stem}.png"
                save_png(x_hat, png)
                rec["png"] = str(png)
            (self.out_dir / f"{stem}.json").write_text(json.dumps(_jsonable(rec), indent=1))
        return rec


def _jsonable(d: dict) -> dict:
    return {k: (float(v) if isinstance(v, (np.floating,)) else int(v) if isinstance(v, np.integer) else v)
            for k, v in d.items()}
