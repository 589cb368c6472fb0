"""The stream end of NCSC Burst RX: finds bursts in a sample stream and publishes their LLRs
(or, given an LDPC decoder, their decoded bits)."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
import pmt
from gnuradio import gr

from ..phy import BurstRx, CopyCombiner
from ..phy.burst import MODS, burst_symbols, payload_symbols
from ._stream import Ticker, WarmUp
from .ldpc_decoder import decode_pdu
from .pdu import PORT_OUT, to_pdu

PORT_SYMBOLS = "symbols"
REPORTS_KEPT = 1000  # the most recent bursts' reports (a receiver runs for hours: ~500 bursts a second)


class burst_receiver(gr.sync_block):  # noqa: N801
    """Buffers samples, runs :class:`BurstRx` over them, emits one LLR PDU per decoded burst.

    Metadata per burst: burst_start (absolute sample), cfo (cycles/symbol), cfo_hz,
    snr_db, noise_var, header fields. Bursts whose header fails, or that are cut off by
    the end of the stream, are counted and logged, not emitted.
    """

    def __init__(self, sps: int = 4, rolloff: float = 0.35, samp_rate: float = 0.0, threshold: float = 0.5,
                 code_bits: int = 4608, decoder=None):
        """``decoder`` (an :class:`~gnuradio.ncsc.fec.LdpcDecoder`): decode each burst here and
        publish its bits with the decoder's results, as the LDPC Decoder block would; on one
        core this saves the LLR PDU's conversions and a thread hand-over per burst."""
        gr.sync_block.__init__(self, name="ncsc_burst_receiver", in_sig=[np.complex64], out_sig=None)
        self.message_port_register_out(pmt.intern(PORT_OUT))
        self.message_port_register_out(pmt.intern(PORT_SYMBOLS))
        self.rx = BurstRx(int(sps), float(rolloff), float(threshold), code_bits=int(code_bits))
        self.sps = int(sps)
        self.samp_rate = float(samp_rate)
        # searched every half of the shortest burst: the last burst of a finite stream must be
        # handed on with its own last samples, whatever its modulation
        shortest = min(payload_symbols(int(code_bits), m) for m in MODS)
        self.search_every = burst_symbols(shortest) * self.sps // 2
        self.chunk = 6 * (self.rx.max_burst_samples() + 16 * self.sps)  # searched at once at the latest
        self.buf = np.zeros(0, np.complex64)
        self.base = 0  # absolute index of buf[0]
        self.done_until = -(1 << 62)  # absolute index up to which bursts were handled
        self.search_from = 0  # absolute index from which the next search starts
        self.stats = {"detected": 0, "decoded_headers": 0, "emitted": 0, "bad_header": 0}
        self.reports = deque(maxlen=REPORTS_KEPT)
        self.decoder = decoder
        self.combiner = CopyCombiner()  # copies of a repeated codeword, summed before decoding
        self.idle_flush = 0.5  # seconds without input after which the buffer is searched to its end
        self._lock = threading.Lock()
        self._last_input = time.monotonic()
        self._dirty = False
        self._fresh = 0  # samples added since the last search
        self._pending_end = None  # absolute sample index at which a cut-off burst is complete
        self._ticker = Ticker(self._watch, 0.1, "ncsc_burst_receiver_idle")
        self._warm = WarmUp(self._warm_up, "ncsc_burst_receiver_warm_up", self.logger)

    def _process(self, final: bool) -> None:
        """Search the new part of the buffer; emit complete bursts; keep what the next search needs.

        Each sample is searched once: the receiver starts where the last search stopped (before
        a burst still arriving), and only a burst's own window goes through the matched filter.
        """
        start = max(0, self.search_from - self.base)
        reports = self.rx.receive(self.buf, start=start, final=final)
        delay = self.rx.taps.size - 1  # TX pulse + matched filter
        for rep in reports:
            start = max(self.base + rep.start - delay, 0)
            if start < self.done_until:
                continue  # already handed on
            n_sym = burst_symbols(rep.header["n_symbols"]) if rep.header else 64
            self.done_until = start + n_sym * self.sps
            self._emit(rep, start)
        if final:
            self._pending_end = None
            self.search_from = self.base + self.buf.size
            drop = self.buf.size
        else:
            pending = self.rx.pending_end
            self._pending_end = None if pending is None else self.base + pending
            self.search_from = self.base + self.rx.resume_at
            drop = self.rx.resume_at - self.rx.lookback
        drop = max(0, min(int(drop), self.buf.size))
        self.buf = self.buf[drop:]
        self.base += drop

    def _emit(self, rep, start: int) -> None:
        self.stats["detected"] += 1
        info = {"burst_start": int(start), "cfo": float(rep.cfo), "snr_db": float(rep.snr_db),
                "noise_var": float(rep.noise_var), "detected": True}
        if self.samp_rate:
            info["cfo_hz"] = float(rep.cfo * self.samp_rate / self.sps)
        self.reports.append(dict(info, header=rep.header is not None, decoded=rep.llr is not None))
        if rep.llr is None:
            self.stats["bad_header"] += 1
            self.logger.warn(f"burst at sample {start}: header unreadable or burst truncated "
                             f"(SNR {rep.snr_db:.1f} dB)")
            return
        self.stats["decoded_headers"] += 1
        info.update(rep.header)
        self._publish(self.combiner.add(info, rep.llr.astype(np.float32), rep.header["code_id"]))
        if rep.symbols is not None and self._has_subscribers(PORT_SYMBOLS):  # for a constellation view
            self.message_port_pub(pmt.intern(PORT_SYMBOLS), to_pdu(info, rep.symbols))

    def _warm_up(self) -> None:
        self.rx.warm_up()
        if self.decoder is not None:
            self.decoder.warm_up()

    def _publish(self, ready) -> None:
        for info, llr, copies in ready:
            if copies > 1:
                info = dict(info, copies=copies)
            if self.decoder is not None:
                try:
                    info, llr = decode_pdu(self.decoder, info, llr)
                except ValueError as exc:  # cannot happen for the receiver's own LLRs; never die on it
                    self.logger.warn(f"burst not decoded: {exc}")
                    continue
            self.message_port_pub(pmt.intern(PORT_OUT), to_pdu(info, llr))
            self.stats["emitted"] += 1

    def _has_subscribers(self, port: str) -> bool:
        """Whether anything listens on ``port`` (building a PDU nobody takes costs per burst)."""
        try:
            return pmt.length(self.message_subscribers(pmt.intern(port))) > 0
        except Exception:  # noqa: BLE001 - an older binding without message_subscribers: publish
            return True

    def _safe_process(self, final: bool) -> None:
        try:
            self._process(final)
        except Exception as exc:  # noqa: BLE001 - never die on one bad stretch of samples
            self.logger.error(f"burst search failed, skipping {self.buf.size} samples: {exc}")
            self.base += self.buf.size
            self.search_from = self.base
            self._pending_end = None
            self.buf = self.buf[:0]

    def work(self, input_items, output_items):
        with self._lock:
            self._last_input = time.monotonic()
            self._dirty = True
            self.buf = np.concatenate([self.buf, input_items[0]])
            self._fresh += len(input_items[0])
            # Search every half burst of new samples, and as soon as a burst seen cut off is
            # complete: a burst is handed on with its last sample. Waiting for more (or for the
            # idle timer, or stop()) would lose the last bursts of a finite stream: at its end
            # the message blocks downstream are told "done" and take no more messages.
            # While a burst seen cut off is arriving, nothing before its end is searched again.
            if self._pending_end is not None:
                due = self.base + self.buf.size >= self._pending_end
            else:
                due = self._fresh >= self.search_every and self.buf.size >= self.search_every
            if due or self.buf.size >= self.chunk:
                self._fresh = 0
                self._safe_process(final=False)
            # idle is counted from the end of this call: a long search (a first call compiling
            # the kernels) is not a transmitter gone quiet
            self._last_input = time.monotonic()
        return len(input_items[0])

    def flush(self) -> None:
        """Search what is buffered to its end (end of stream, or a transmitter gone quiet)."""
        with self._lock:
            if self.buf.size:
                self._safe_process(final=True)
            self._publish(self.combiner.flush())

    def _watch(self):
        # A transmitter that sends only bursts leaves the last ones in the buffer: search it once
        # no sample has come for idle_flush seconds. Not as the end of the stream, though: a
        # stall of a loaded machine looks the same, so a burst cut off at the end stays buffered.
        if self._dirty and time.monotonic() - self._last_input > self.idle_flush:
            with self._lock:
                if time.monotonic() - self._last_input <= self.idle_flush:
                    return  # samples came while this waited for the lock (a long search)
                self._dirty = False
                if self.buf.size:
                    self._safe_process(final=False)
                self._publish(self.combiner.flush())  # a codeword's last copy is not coming

    def start(self):
        self._warm.start()
        self._ticker.start()
        return True

    def stop(self):
        self._ticker.stop()
        self._warm.join()
        self.flush()
        return True
