"""NCSC Image Viewer: shows each decoded image (the NCSC Decoder Sink's output PDUs) in a Qt window.

The PDU payload is the PNG that the sink wrote; the caption is built from its record
(name, status, bpp, PSNR, failed codewords) and a line of running figures (images
decoded / failed, codewords and their error rate, mean PSNR so far). The picture is
scaled to the widget, keeping its aspect ratio, and follows window resizes. Messages
arrive on a GNU Radio thread, so the image is handed to the Qt thread through a signal.
A PDU that is not an image is logged and ignored. Pictures still arriving (a progressive
Deframer's ``interim`` PDUs) are shown as they build up; ``mark_concealed`` outlines the
regions the decoder concealed. The optional ``bursts`` port takes Burst
RX's output and shows a burst report line (SNR, carrier offset, modulation, LDPC result).
"""

from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr
from PyQt5 import QtCore, QtGui, QtWidgets

from .pdu import PORT_IN, PduError, from_pdu

PORT_BURSTS = "bursts"


class _Bridge(QtCore.QObject):
    show = QtCore.pyqtSignal(bytes, str, str)
    burst = QtCore.pyqtSignal(str)


class _ScaledImage(QtWidgets.QLabel):
    """A label that shows its pixmap scaled to its own size, aspect ratio kept."""

    def __init__(self, text: str):
        super().__init__(text)
        self._pix = None
        self.setAlignment(QtCore.Qt.AlignCenter)
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Expanding)

    def set_image(self, pix) -> None:
        self._pix = pix
        self._rescale()

    def resizeEvent(self, event):  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pix is not None:
            self.setPixmap(self._pix.scaled(self.size(), QtCore.Qt.KeepAspectRatio, QtCore.Qt.SmoothTransformation))


class LinkFigures:
    """Running figures over the image records seen so far (plain Python: tested without Qt)."""

    def __init__(self):
        self.images = self.ok = self.partial = self.codewords = self.failed_codewords = 0
        self._psnr = []

    def add(self, rec: dict) -> None:
        self.images += 1
        self.ok += rec.get("status") in ("ok", "partial")
        self.partial += rec.get("status") == "partial"
        self.codewords += int(rec.get("codewords", 0) or 0)
        self.failed_codewords += int(rec.get("codeword_errors", 0) or 0)
        if isinstance(rec.get("psnr"), (int, float)):
            self._psnr.append(float(rec["psnr"]))

    def text(self) -> str:
        fer = self.failed_codewords / self.codewords if self.codewords else 0.0
        psnr = f", mean PSNR {sum(self._psnr) / len(self._psnr):.2f} dB" if self._psnr else ""
        shown = f"{self.ok} decoded ({self.partial} in part)" if self.partial else f"{self.ok} decoded"
        return (f"images {self.images}: {shown}, {self.images - self.ok} failed; "
                f"codewords {self.codewords}, {self.failed_codewords} failed (FER {fer:.3g}){psnr}")


def parse_boxes(text: str) -> list[tuple[int, int, int, int]]:
    """The record's concealed regions, "x0,y0,x1,y1;..." in pixels (malformed entries skipped)."""
    boxes = []
    for part in str(text).split(";"):
        try:
            x0, y0, x1, y1 = (int(v) for v in part.split(","))
        except ValueError:
            continue
        if 0 <= x0 < x1 and 0 <= y0 < y1:
            boxes.append((x0, y0, x1, y1))
    return boxes


class BurstFigures:
    """The burst report line: the last burst (SNR, carrier offset, modulation, LDPC result) and
    counts so far, from NCSC Burst RX's output metadata (plain Python: tested without Qt)."""

    def __init__(self):
        self.bursts = self.failed = 0
        self.last = ""

    def add(self, meta: dict) -> None:
        ok = meta.get("ldpc_ok", [False])
        ok = bool(ok[0] if isinstance(ok, (list, tuple)) and ok else ok)
        iters = meta.get("ldpc_iterations", ["?"])
        iters = iters[0] if isinstance(iters, (list, tuple)) and iters else iters
        self.bursts += 1
        self.failed += not ok
        cfo = f"CFO {meta['cfo_hz']:+.0f} Hz" if isinstance(meta.get("cfo_hz"), (int, float)) else \
            f"CFO {meta.get('cfo', 0):+.4f} cyc/sym"
        self.last = (f"burst {self.bursts}: SNR {meta.get('snr_db', float('nan')):.1f} dB, {cfo}, "
                     f"{meta.get('modulation', '?')}, LDPC {'ok' if ok else 'failed'} ({iters} iterations)")

    def text(self) -> str:
        return f"{self.last}; bursts {self.bursts}, {self.failed} failed LDPC" if self.bursts else "no burst yet"


class image_viewer(gr.basic_block):  # noqa: N801
    def __init__(self, title: str = "NCSC", parent=None, mark_concealed: bool = False):
        gr.basic_block.__init__(self, name="ncsc_image_viewer", in_sig=None, out_sig=None)
        self.mark_concealed = bool(mark_concealed)
        self.message_port_register_in(pmt.intern(PORT_IN))
        self.set_msg_handler(pmt.intern(PORT_IN), self._handle)
        self.message_port_register_in(pmt.intern(PORT_BURSTS))
        self.set_msg_handler(pmt.intern(PORT_BURSTS), self._handle_burst)
        self._widget = QtWidgets.QWidget(parent)
        layout = QtWidgets.QVBoxLayout(self._widget)
        self._title = QtWidgets.QLabel(title)
        self._image = _ScaledImage("waiting for an image")
        self._caption = QtWidgets.QLabel("")
        self._figures_label = QtWidgets.QLabel("")
        self._bursts_label = QtWidgets.QLabel("")
        for w in (self._title, self._image, self._caption, self._figures_label, self._bursts_label):
            layout.addWidget(w)
        layout.setStretch(1, 1)
        self.figures = LinkFigures()
        self.burst_figures = BurstFigures()
        self._bridge = _Bridge()
        self._bridge.show.connect(self._show)
        self._bridge.burst.connect(self._bursts_label.setText)
        self.shown = 0

    def qwidget(self):
        return self._widget

    def widget(self):
        return self._widget

    def _show(self, png: bytes, caption: str, boxes: str) -> None:
        pix = QtGui.QPixmap()
        if png and pix.loadFromData(png, "PNG"):
            if self.mark_concealed and boxes:
                painter = QtGui.QPainter(pix)
                painter.setPen(QtGui.QPen(QtGui.QColor(255, 40, 40), 2))
                for x0, y0, x1, y1 in parse_boxes(boxes):
                    painter.drawRect(x0, y0, x1 - x0 - 1, y1 - y0 - 1)
                painter.end()
            self._image.set_image(pix)
        else:
            self._image.set_image(None)
            self._image.setText("no image (decoding failed)")
        self._caption.setText(caption)
        self._figures_label.setText(self.figures.text())
        self.shown += 1

    def _handle_burst(self, msg):
        """A Burst RX output PDU: only its report (metadata) is shown."""
        if not pmt.is_pair(msg) or not pmt.is_dict(pmt.car(msg)):
            self.logger.warn("ignored burst message: not a PDU with a report")
            return
        self.burst_figures.add(dict(pmt.to_python(pmt.car(msg)) or {}))
        self._bridge.burst.emit(self.burst_figures.text())

    def _handle(self, msg):
        try:
            meta, data = from_pdu(msg, np.uint8)
        except PduError as exc:
            self.logger.warn(f"ignored message: {exc}")
            return
        psnr = meta.get("psnr")
        caption = f"{meta.get('name') or 'image ' + str(meta.get('image_id', '?'))}: {meta.get('status', '?')}"
        if meta.get("status") in ("ok", "partial"):
            if meta.get("status") == "partial":
                caption += f" ({meta.get('concealed', 0):.0%} concealed)"
            caption += f", {meta.get('bpp', 0):.4f} bpp" + (f", PSNR {psnr:.2f} dB" if psnr else "")
        else:
            caption += f" ({meta.get('reason', '')})"
        if "codewords" in meta:
            caption += f"; {meta.get('codeword_errors', 0)} of {meta['codewords']} codewords failed"
        if meta.get("interim"):
            caption = f"arriving ({meta.get('reason', '')}): " + caption
        else:
            self.figures.add(meta)
        self._bridge.show.emit(data.tobytes(), caption, str(meta.get("concealed_boxes", "")))
