"""NCSC Image Viewer: shows each decoded image (the NCSC Decoder Sink's output PDUs) in a Qt window.

The PDU payload is the PNG that the sink wrote; the caption is built from its record
(name, status, bpp, PSNR). Messages arrive on a GNU Radio thread, so the image is handed
to the Qt thread through a signal. A PDU that is not an image is logged and ignored.
"""

from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr
from PyQt5 import QtCore, QtGui, QtWidgets

from .pdu import PORT_IN, PduError, from_pdu


class _Bridge(QtCore.QObject):
    show = QtCore.pyqtSignal(bytes, str)


class image_viewer(gr.basic_block):  # noqa: N801
    def __init__(self, title: str = "NCSC", parent=None):
        gr.basic_block.__init__(self, name="ncsc_image_viewer", in_sig=None, out_sig=None)
        self.message_port_register_in(pmt.intern(PORT_IN))
        self.set_msg_handler(pmt.intern(PORT_IN), self._handle)
        self._widget = QtWidgets.QWidget(parent)
        layout = QtWidgets.QVBoxLayout(self._widget)
        self._title = QtWidgets.QLabel(title)
        self._image = QtWidgets.QLabel("waiting for an image")
        self._image.setAlignment(QtCore.Qt.AlignCenter)
        self._caption = QtWidgets.QLabel("")
        for w in (self._title, self._image, self._caption):
            layout.addWidget(w)
        self._bridge = _Bridge()
        self._bridge.show.connect(self._show)
        self.shown = 0

    def qwidget(self):
        return self._widget

    def widget(self):
        return self._widget

    def _show(self, png: bytes, caption: str) -> None:
        pix = QtGui.QPixmap()
        if png and pix.loadFromData(png, "PNG"):
            self._image.setPixmap(pix.scaled(640, 480, QtCore.Qt.KeepAspectRatio, QtCore.Qt.SmoothTransformation))
        else:
            self._image.setText("no image (decoding failed)")
        self._caption.setText(caption)
        self.shown += 1

    def _handle(self, msg):
        try:
            meta, data = from_pdu(msg, np.uint8)
        except PduError as exc:
            self.logger.warn(f"ignored message: {exc}")
            return
        psnr = meta.get("psnr")
        caption = f"{meta.get('name', '?')}: {meta.get('status', '?')}"
        if meta.get("status") == "ok":
            caption += f", {meta.get('bpp', 0):.4f} bpp" + (f", PSNR {psnr:.2f} dB" if psnr else "")
        else:
            caption += f" ({meta.get('reason', '')})"
        self._bridge.show.emit(data.tobytes(), caption)
