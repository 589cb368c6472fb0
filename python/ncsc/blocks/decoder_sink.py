"""NCSC Decoder Sink: reassembled image PDUs -> PNG + JSON record per image, and a record PDU.

Every image gets a record (status ok or failed with the reason, bits, transmission
overhead in symbols, BCR, PSNR and MS-SSIM against the original when its path is
known); an undecodable image never stops the flowgraph.
"""

from __future__ import annotations

import threading

import numpy as np

from ..codec.bitstream import DEFAULT_MAX_PIXELS
from ..imaging import ImageReceiver
from .image_source import load_named_codec
from .pdu import PduBlock


class decoder_sink(PduBlock):  # noqa: N801
    def __init__(self, out_dir: str = "", bits_per_symbol: int = 4, code_rate: float = 1 / 3,
                 weights_dir: str = "", codec=None, max_pixels: int = DEFAULT_MAX_PIXELS):
        PduBlock.__init__(self, "ncsc_decoder_sink")
        self._codecs = {}
        if codec is not None:
            self._codecs[codec.metric] = codec
        self.weights_dir = weights_dir
        self.receiver = ImageReceiver(self._codec_for, out_dir or None, bits_per_symbol, code_rate,
                                      max_pixels=max_pixels)
        self.records: list[dict] = []
        self.record_event = threading.Event()

    def _codec_for(self, metric: str):
        if metric not in self._codecs:
            self._codecs[metric] = load_named_codec(metric, self.weights_dir)
        return self._codecs[metric]

    def process(self, meta, data):
        rec = self.receiver.receive(meta, data.astype(np.uint8).tobytes())
        self.records.append(rec)
        self.record_event.set()
        if rec["status"] == "ok":
            self.logger.info(f"image {rec.get('image_id')} {rec.get('name')}: ok, {rec.get('bpp', 0):.4f} bpp, "
                             f"PSNR {rec.get('psnr', float('nan')):.2f} dB")
        else:
            self.logger.warn(f"image {rec.get('image_id')} {rec.get('name')}: {rec['reason']}")
        png = rec.get("png")
        payload = np.fromfile(png, dtype=np.uint8) if png else np.zeros(0, np.uint8)
        return {k: v for k, v in rec.items() if isinstance(v, (int, float, str, bool))}, payload
