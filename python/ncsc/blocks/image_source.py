"""NCSC Image Source/Encoder: image files -> one PDU per image (the NCSC bitstream + metadata).

A worker thread encodes the images (a file, a ';'-separated list or a folder, optionally
repeating) and publishes each as ``pmt.cons(meta, u8vector)``. An unreadable or
unsupported file is logged and skipped; the source goes on with the next image.
"""

from __future__ import annotations

import threading

import numpy as np
import pmt
from gnuradio import gr

from ..framing import Framer
from ..imaging import ImageSender, expand_paths
from ..profiles import link_profile
from ..samples import resolve_images
from ._stream import WarmUp
from .pdu import PORT_OUT, to_pdu


class image_source(gr.basic_block):  # noqa: N801
    def __init__(self, images: str = "", model: str | None = None, repeat: bool = False, interval: float = 0.0,
                 first_id: int = 0, weights_dir: str = "", codec=None, profile=None):
        """``model`` left as None comes from ``profile`` (default paper-awgn), as does the slicing."""
        prof = link_profile(profile)
        gr.basic_block.__init__(self, name="ncsc_image_source", in_sig=None, out_sig=None)
        self.message_port_register_out(pmt.intern(PORT_OUT))
        self.paths = expand_paths(resolve_images(images)) if images else []
        if codec is None:
            from ..codec.registry import load_named_codec  # torch only when a block is built

            codec = load_named_codec(model or prof.model, weights_dir)
        self.codec = codec
        # sliced streams when the profile slices (a lost block then costs only its slices), in
        # pages of the framer's block payload
        self.sender = ImageSender.for_profile(self.codec, prof, Framer(prof.k).capacity, first_id)
        self.repeat = bool(repeat)
        self.interval = float(interval)
        self.sent = 0
        self.skipped = 0
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        # the coder's kernels load beside the first image's transform, not after it
        self._warm = WarmUp(getattr(self.codec, "warm_up", lambda: None), "ncsc_image_source_warm_up", self.logger)
        # The first image is encoded from here on, beside the rest of the flowgraph being built
        # and its window shown (the transform does not hold the GIL): a GUI's first picture
        # comes that much sooner. Sent when the flowgraph starts, like any other.
        self._first = None
        if self.paths:
            self._warm.start()
            self._first = _Prefetch(self.sender, self.paths[0])

    def set_interval(self, interval: float) -> None:
        self.interval = max(0.0, float(interval))

    def start(self):
        self._stop.clear()
        self.finished.clear()
        self._warm.start()
        self._thread = threading.Thread(target=self._run, name="ncsc_image_source", daemon=True)
        self._thread.start()
        return True

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._warm.join()
        return True

    def _run(self):
        try:
            while not self._stop.is_set():
                for path in self.paths:
                    if self._stop.is_set():
                        return
                    first, self._first = self._first, None
                    try:
                        meta, data = first.result() if first is not None else self.sender.encode(path)
                    except Exception as exc:  # noqa: BLE001 - skip the bad image, keep going
                        self.skipped += 1
                        self.logger.error(f"skipping {path}: {exc}")
                        continue
                    self.message_port_pub(pmt.intern(PORT_OUT), to_pdu(meta, np.frombuffer(data, np.uint8)))
                    self.sent += 1
                    self.logger.info(f"image {meta['image_id']} {meta['name']}: {meta['bits']} bits, "
                                     f"{meta['bpp']:.4f} bpp")
                    if self.interval:
                        self._stop.wait(self.interval)
                if not self.repeat or not self.paths:
                    return
        finally:
            self.finished.set()


class _Prefetch:
    """One image encoded on a thread of its own; ``result()`` waits for it (or raises its error).
    Not a daemon: a flowgraph built and never started still ends cleanly, after the encode."""

    def __init__(self, sender: ImageSender, path):
        self._out = None
        self._thread = threading.Thread(target=self._run, args=(sender, path), name="ncsc_image_source_first")
        self._thread.start()

    def _run(self, sender, path) -> None:
        try:
            self._out = sender.encode(path), None
        except Exception as exc:  # noqa: BLE001 - raised where the source handles a bad image
            self._out = None, exc

    def result(self) -> tuple[dict, bytes]:
        self._thread.join()
        value, exc = self._out
        if exc is not None:
            raise exc
        return value
