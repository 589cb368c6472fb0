"""NCSC Decoder Sink: reassembled image PDUs -> PNG + JSON record per image, and a record PDU.

Every image gets a record (status ok or failed with the reason, bits, transmission
overhead in symbols, BCR, PSNR and MS-SSIM against the original when its path is
known); an undecodable image never stops the flowgraph.

The codec runs on a worker thread of its own, not in the message handler: a slow decode
(seconds on a small CPU) then never holds a scheduler thread, images queue in order
and none is dropped; stop() finishes the queue before it returns.
"""

from __future__ import annotations

import queue
import threading

import numpy as np
import pmt

from ..codec.bitstream import DEFAULT_MAX_PIXELS
from ..imaging import ImageReceiver
from ..profiles import link_profile
from .pdu import PORT_OUT, PduBlock, to_pdu

_STOP = object()


class decoder_sink(PduBlock):  # noqa: N801
    def __init__(self, out_dir: str = "", bits_per_symbol: int | None = None, code_rate: float | None = None,
                 weights_dir: str = "", codec=None, max_pixels: int | None = None, profile=None):
        """Settings left as None come from ``profile`` (a name, a path or a Profile; default paper-awgn)."""
        PduBlock.__init__(self, "ncsc_decoder_sink")
        prof = link_profile(profile)
        bits_per_symbol = bits_per_symbol or prof.bits_per_symbol
        code_rate = code_rate or prof.code_rate
        max_pixels = max_pixels or prof.max_pixels or DEFAULT_MAX_PIXELS
        self._codecs = {}
        if codec is not None:
            self._codecs[codec.metric] = codec
        self.weights_dir = weights_dir
        self.model = prof.model
        self.receiver = ImageReceiver(self._codec_for, out_dir or None, bits_per_symbol, code_rate,
                                      max_pixels=max_pixels, head_repeat=prof.head_repeat)
        # interim pictures (a progressive Deframer): decoded, never written
        self.preview = ImageReceiver(self._codec_for, None, bits_per_symbol, code_rate, max_pixels=max_pixels,
                                     keep_image=True, head_repeat=prof.head_repeat)
        self.records: list[dict] = []
        self.record_event = threading.Event()
        self._queue: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def backlog(self) -> int:
        """Images received and not yet decoded."""
        return self._queue.qsize()

    def _codec_for(self, metric: str):
        if metric not in self._codecs:
            from ..codec.registry import load_named_codec  # torch only when an image arrives

            self._codecs[metric] = load_named_codec(metric, self.weights_dir)
        return self._codecs[metric]

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="ncsc_decoder_sink", daemon=True)
                self._worker.start()

    def warm_up(self) -> None:
        """The codec the first image will most likely need (the one given, else the profile's
        model) loaded and warmed up: over the air the first image would otherwise wait for
        torch, CompressAI and the weights, seconds in which the next images queue up."""
        for codec in list(self._codecs.values()) or [self._codec_for(self.model)]:
            codec.warm_up()

    def start(self):
        self._ensure_worker()
        return PduBlock.start(self)

    def stop(self):
        """Decode what is queued, then end the worker."""
        with self._lock:
            worker = self._worker
            self._worker = None
        if worker is not None and worker.is_alive():
            self._queue.put(_STOP)
            worker.join()
        return PduBlock.stop(self)

    def process(self, meta, data):
        if meta.get("interim") and self._queue.qsize():
            return None  # a picture still arriving: shown only when the decoder has nothing else to do
        self._queue.put((meta, data.astype(np.uint8).tobytes()))
        self._ensure_worker()  # also when used outside a running flowgraph
        return None

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                shown = self._decode(*item)
                if shown is not None:
                    self.message_port_pub(pmt.intern(PORT_OUT), to_pdu(*shown))
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any one image
                self.logger.error(f"image record failed: {exc}")

    def _decode(self, meta: dict, data: bytes):
        if meta.get("interim"):  # a picture building up: decoded for display, no record, no file
            rec = self.preview.receive(meta, data)
            if rec["status"] == "failed":
                return None  # nothing to show yet (or a stream that only decodes whole)
            rec["interim"] = True
            return {k: v for k, v in rec.items() if isinstance(v, (int, float, str, bool))}, self._png(rec)
        rec = self.receiver.receive(meta, data)
        self.records.append(rec)
        self.record_event.set()
        who = f"image {rec.get('image_id', '?')} {rec.get('name', '(no name)')}"
        if rec["status"] in ("ok", "partial"):
            score = (f"PSNR {rec['psnr']:.2f} dB" if "psnr" in rec
                     else "no reference image here to score against (normal over the air)")
            part = ""
            if rec["status"] == "partial":
                part = f" ({rec.get('concealed', 0):.0%} concealed: {rec.get('reason')})"
            self.logger.info(f"{who}: {rec['status']}{part}, {rec.get('bpp', 0):.4f} bpp, {score}")
        else:
            self.logger.warn(f"{who}: {rec['reason']}")
        png = rec.get("png")
        payload = np.fromfile(png, dtype=np.uint8) if png else np.zeros(0, np.uint8)
        return {k: v for k, v in rec.items() if isinstance(v, (int, float, str, bool))}, payload

    def _png(self, rec: dict) -> np.ndarray:
        x_hat = rec.pop("x_hat", None)
        if x_hat is None:
            return np.zeros(0, np.uint8)
        import io

        from ..codec.image import save_png

        buf = io.BytesIO()
        save_png(x_hat, buf)
        return np.frombuffer(buf.getvalue(), np.uint8)
