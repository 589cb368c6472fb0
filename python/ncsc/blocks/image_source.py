"""NCSC Image Source/Encoder: image files -> one PDU per image (the NCSC bitstream + metadata).

A worker thread encodes the images (a file, a ';'-separated list or a folder, optionally
repeating) and publishes each as ``pmt.cons(meta, u8vector)``. An unreadable or
unsupported file is logged and skipped; the source goes on with the next image. The codec
loads, and the first image is encoded, on a setup thread from construction on, so that a
flowgraph is built and shown while torch and the weights load.
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
        self.codec = codec  # the named codec (when none is given) once the setup thread has it
        self.sender: ImageSender | None = None
        self.repeat = bool(repeat)
        self.interval = float(interval)
        self.sent = 0
        self.skipped = 0
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        # Torch, CompressAI and the weights (seconds) load, and the first image is encoded, on a
        # thread of its own from here on: a GUI flowgraph builds and shows its window meanwhile
        # (the transforms do not hold the GIL). The first image is sent when the flowgraph starts.
        self._setup = _Setup(self, model or prof.model, weights_dir, prof, first_id)

    def set_interval(self, interval: float) -> None:
        self.interval = max(0.0, float(interval))

    def start(self):
        self._stop.clear()
        self.finished.clear()
        self._thread = threading.Thread(target=self._run, name="ncsc_image_source", daemon=True)
        self._thread.start()
        return True

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._setup.join()
        return True

    def _run(self):
        try:
            self._setup.join()
            if self._setup.error is not None:
                self.logger.error(f"no codec, so no images: {self._setup.error}")
                return
            while not self._stop.is_set():
                for path in self.paths:
                    if self._stop.is_set():
                        return
                    try:
                        first = self._setup.take_first()  # once, for the first path of the first start
                        meta, data = first if first is not None else self.sender.encode(path)
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


class _Setup:
    """The source's codec (loaded when none was given), its sender, the coder's warm-up and the
    first image's encoding, on one thread started at construction; ``take_first()`` waits for
    it and returns that image once (or raises its error). Not a daemon: a flowgraph built and never
    started still ends cleanly, after the setup."""

    def __init__(self, src: image_source, model: str, weights_dir: str, prof, first_id: int):
        self.error: Exception | None = None
        self._first = None
        self._warm = None
        self._thread = threading.Thread(target=self._run, args=(src, model, weights_dir, prof, first_id),
                                        name="ncsc_image_source_setup")
        self._thread.start()

    def _run(self, src, model, weights_dir, prof, first_id) -> None:
        try:
            if src.codec is None:
                from ..codec.registry import load_named_codec  # torch only when a block is built

                src.codec = load_named_codec(model, weights_dir)
            # sliced streams when the profile slices (a lost block then costs only its slices),
            # in pages of the framer's block payload
            src.sender = ImageSender.for_profile(src.codec, prof, Framer(prof.k).capacity, first_id)
        except Exception as exc:  # noqa: BLE001 - reported when the flowgraph starts
            self.error = exc
            return
        # the coder's kernels load beside the first image's transform, not after it
        self._warm = WarmUp(getattr(src.codec, "warm_up", lambda: None), "ncsc_image_source_warm_up", src.logger)
        self._warm.start()
        if src.paths:
            try:
                self._first = src.sender.encode(src.paths[0]), None
            except Exception as exc:  # noqa: BLE001 - raised where the source handles a bad image
                self._first = None, exc

    def join(self) -> None:
        self._thread.join()
        if self._warm is not None:
            self._warm.join()

    def take_first(self) -> tuple[dict, bytes] | None:
        """The first image, once (None after that, or with no images); raises its error."""
        self._thread.join()
        first, self._first = self._first, None
        if first is None:
            return None
        value, exc = first
        if exc is not None:
            raise exc
        return value
