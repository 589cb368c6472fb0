"""Burst PHY for real front-ends: one LDPC codeword per burst, found and corrected at the receiver.

Burst layout (symbols, then root-raised-cosine pulses at ``sps`` samples per symbol)::

    preamble: 4 x 16-symbol QPSK sequence   detection, timing, coarse CFO, gain, phase
    header:   48 bits x 4 (repetition) rotated BPSK  version, modulation, code, payload length, CRC-8
    payload:  16-QAM codeword symbols with a QPSK pilot (fixed sequence) before every 16 data symbols

Why this shape: repeating a short sequence makes detection and coarse carrier-offset
estimation immune to the offset itself (Schmidl-Cox: the angle between repetitions gives
the offset, unambiguous up to 1/32 of the symbol rate, i.e. +-3 %); pilots every 17
symbols track the residual phase across the burst (16-QAM rules out a Costas loop); a
burst per codeword keeps sample-clock drift below 0.2 symbol at 100 ppm, so a timing
offset plus a linear drift per burst suffices. The per-burst noise variance (pilots
against a reference made without them, and the training residual) scales the LLRs.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..dsp import complex_mean, fir_into
from ..modulation import bits_per_symbol, demodulate, modulate
from . import kernels
from .copies import parse_copy

SEG = 16
N_SEG = 4
PILOT_EVERY = 16
RESIDUAL_CFO_MAX = 1e-3  # cycles per symbol left after the preamble and header
RESIDUAL_STEPS = 97  # frequencies on the residual-carrier search grid over +-RESIDUAL_CFO_MAX
TRACK_WINDOWS = (9, 17, 33, 65, 1 << 16)  # tracking windows (pilots) tried per burst
CHOICE_MARGIN = 0.03  # a more complex equaliser or a shorter window must do this much better
EQ_TAPS = 3
HEADER_BITS = 48
HEADER_REP = 4
VERSION = 2  # 2: pilots from a QPSK sequence (1 had all-ones pilots)
MODS = {"qpsk": 0, "16qam": 1, "64qam": 2}
MAX_PAYLOAD_SYMBOLS = 8192  # no code this receiver is built for needs longer bursts
DC_WINDOW = 1024  # detection's DC blocker (centred moving average): a notch ~1/DC_WINDOW wide at 0 Hz


def payload_symbols(code_bits: int, modulation: str) -> int:
    """Payload symbols of a burst carrying one ``code_bits`` codeword."""
    return -(-int(code_bits) // bits_per_symbol(modulation))


def _segment() -> np.ndarray:
    rng = np.random.default_rng(0x5EED)
    bits = rng.integers(0, 2, (SEG, 2))
    return ((1 - 2 * bits[:, 0]) + 1j * (1 - 2 * bits[:, 1])).astype(np.complex64) / np.sqrt(2)


PREAMBLE = np.tile(_segment(), N_SEG)
# Header BPSK symbols are rotated by known multiples of 90 degrees so that, as training
# symbols, they are proper (circular) like the data: a widely linear equaliser trained on
# plain real BPSK would learn to squash the quadrature axis and distort 16-QAM.
HDR_ROT = np.exp(0.5j * np.pi * np.random.default_rng(0xBEEF).integers(0, 4, HEADER_BITS * HEADER_REP)).astype(
    np.complex64)
_PREAMBLE128 = PREAMBLE.astype(np.complex128)  # the compiled stages' copies
_HDR_ROT128 = HDR_ROT.astype(np.complex128)


def rrc_taps(sps: int, beta: float, span: int = 8) -> np.ndarray:
    """Root-raised-cosine taps, unit energy, ``span`` symbols long."""
    t = np.arange(-span * sps / 2, span * sps / 2 + 1) / sps
    h = np.empty_like(t)
    for i, x in enumerate(t):
        if abs(x) < 1e-9:
            h[i] = 1 + beta * (4 / np.pi - 1)
        elif beta > 0 and abs(abs(x) - 1 / (4 * beta)) < 1e-9:
            h[i] = beta / np.sqrt(2) * ((1 + 2 / np.pi) * np.sin(np.pi / (4 * beta))
                                        + (1 - 2 / np.pi) * np.cos(np.pi / (4 * beta)))
        else:
            h[i] = (np.sin(np.pi * x * (1 - beta)) + 4 * beta * x * np.cos(np.pi * x * (1 + beta))) / (
                np.pi * x * (1 - (4 * beta * x) ** 2))
    return (h / np.sqrt(np.sum(h**2))).astype(np.float32)


# Pilots are QPSK from a fixed sequence, not a constant: a constant pilot is improper, so
# the widely linear equaliser's conjugate and DC terms would add to the pilots coherently
# while they only add noise to the data, and the pilots would set a gain several percent
# off the data's (seen as +-7 % per burst with all-ones pilots).
PILOT_SEQ = (np.exp(0.5j * np.pi * (np.random.default_rng(0xB1107).integers(0, 4, 1 << 13) + 0.5))).astype(
    np.complex64)


_STEERING: dict = {}
# the residual-carrier grid: +-max rad per symbol, and its spacing (what np.linspace steps by)
_RESIDUAL_RAD = RESIDUAL_CFO_MAX * 2 * np.pi
_RESIDUAL_DW = float(np.diff(np.linspace(-_RESIDUAL_RAD, _RESIDUAL_RAD, RESIDUAL_STEPS)[:2])[0])
_CONTROLLER = None
_WARM = False  # BurstRx.warm_up has run in this process


def _blas_controller():
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def _steering(k: np.ndarray, max_rad: float, steps: int) -> np.ndarray:
    """exp(-j w k) over the frequency grid: the same for every burst of a length, so cached."""
    key = (k.tobytes(), max_rad, steps)
    m = _STEERING.get(key)
    if m is None:
        if len(_STEERING) > 16:
            _STEERING.clear()
        w = np.linspace(-max_rad, max_rad, steps)
        m = _STEERING[key] = np.exp(-1j * np.outer(w, k))
    return m


def _crc8(data: bytes) -> int:
    return zlib.crc32(data) & 0xFF


def header_bits(modulation: str, code_id: int, n_symbols: int) -> np.ndarray:
    body = bytes([VERSION << 4 | MODS[modulation], code_id & 0xFF]) + int(n_symbols).to_bytes(2, "big")
    raw = body + bytes([_crc8(body), 0])
    return np.unpackbits(np.frombuffer(raw, np.uint8))


@lru_cache(maxsize=64)
def _training(modulation: str, code_id: int, n_symbols: int) -> np.ndarray:
    """Preamble and header of a burst, the equaliser's training symbols (cached, read-only)."""
    out = np.concatenate([PREAMBLE, header_symbols(modulation, code_id, n_symbols)]).astype(np.complex128)
    out.setflags(write=False)
    return out


def header_symbols(modulation: str, code_id: int, n_symbols: int) -> np.ndarray:
    """The header as sent: its bits repeated HEADER_REP times, rotated BPSK (complex128)."""
    return (1.0 - 2.0 * np.tile(header_bits(modulation, code_id, n_symbols), HEADER_REP)) * HDR_ROT


def parse_header(llr: np.ndarray) -> dict | None:
    """Combine the repetitions, check the CRC; None when the header is not trustworthy."""
    soft = llr.reshape(HEADER_REP, HEADER_BITS).sum(0)
    raw = np.packbits((soft > 0).astype(np.uint8)).tobytes()
    body = raw[:4]
    if _crc8(body) != raw[4] or raw[5] != 0 or body[0] >> 4 != VERSION:
        return None
    mods = {v: k for k, v in MODS.items()}
    if body[0] & 0xF not in mods:
        return None
    return {"modulation": mods[body[0] & 0xF], "code_id": body[1], "n_symbols": int.from_bytes(body[2:4], "big")}


def insert_pilots(data: np.ndarray) -> np.ndarray:
    n_blocks = -(-data.size // PILOT_EVERY)
    if n_blocks + 1 > PILOT_SEQ.size:
        raise ValueError(f"payload of {data.size} symbols needs more than {PILOT_SEQ.size} pilots")
    out = []
    for b in range(n_blocks):
        out.append(PILOT_SEQ[b : b + 1])
        out.append(data[b * PILOT_EVERY : (b + 1) * PILOT_EVERY])
    out.append(PILOT_SEQ[n_blocks : n_blocks + 1])  # closing pilot: phase known at both ends
    return np.concatenate(out)


@lru_cache(maxsize=64)
def pilot_positions(n_data: int) -> np.ndarray:
    """Pilot indices in a body of n_data payload symbols (read-only: cached, asked per burst)."""
    n_blocks = -(-n_data // PILOT_EVERY)
    pos = np.append(np.arange(n_blocks, dtype=np.int64) * (PILOT_EVERY + 1), n_data + n_blocks)
    pos.setflags(write=False)
    return pos


@dataclass
class BurstTx:
    """Builds the sample waveform of one burst from code bits."""

    sps: int = 4
    beta: float = 0.35
    modulation: str = "16qam"
    code_id: int = 0
    taps: np.ndarray = field(init=False)

    def __post_init__(self):
        self.taps = rrc_taps(self.sps, self.beta)

    def symbols(self, code_bits: np.ndarray, code_id: int | None = None) -> np.ndarray:
        data = modulate(np.asarray(code_bits, np.uint8), self.modulation)
        hdr = header_symbols(self.modulation, self.code_id if code_id is None else code_id, data.size)
        return np.concatenate([PREAMBLE, hdr.astype(np.complex64), insert_pilots(data)]).astype(np.complex64)

    def burst(self, code_bits: np.ndarray, code_id: int | None = None) -> np.ndarray:
        """The burst of one codeword; ``code_id`` (default the TX's) goes in its header, e.g.
        ``copy_id(r, j)`` for copy j of a codeword sent r times."""
        return self.shape(self.symbols(code_bits, code_id))

    def shape(self, sym: np.ndarray) -> np.ndarray:
        """Symbols -> samples (root-raised-cosine pulses at ``sps``)."""
        up = np.zeros(sym.size * self.sps, np.complex64)
        up[:: self.sps] = sym
        return (np.convolve(up, self.taps) * np.sqrt(self.sps)).astype(np.complex64)


@dataclass
class BurstReport:
    """What the receiver found for one burst."""

    start: int
    cfo: float  # cycles per symbol
    snr_db: float
    noise_var: float
    header: dict | None
    llr: np.ndarray | None = None
    symbols: np.ndarray | None = None  # equalised, phase-tracked data symbols (for a constellation view)


class BurstRx:
    """Detects bursts in a block of samples and returns their payload LLRs with per-burst reports."""

    def __init__(self, sps: int = 4, beta: float = 0.35, threshold: float = 0.45, code_bits: int | None = None):
        """``code_bits``: the codeword length the link uses; a header (CRC-8 only) whose payload length
        does not fit it at its own modulation is not trusted, so it cannot make the receiver skip
        the bursts that follow. Without it, lengths up to MAX_PAYLOAD_SYMBOLS pass."""
        self.sps = sps
        self.beta = beta
        self.code_bits = code_bits
        self.bad_length = 0
        self.taps = rrc_taps(sps, beta)
        self._taps64 = self.taps.astype(np.float64)
        self.threshold = threshold
        self.resume_at = 0  # after receive(final=False): where the next search starts
        self.pending_end = None  # ... and the sample at which a burst seen cut off is complete
        self.pre_len = PREAMBLE.size
        self.hdr_len = HEADER_BITS * HEADER_REP
        self.false_alarms = 0
        self._blas_limit = None  # receive's single-threaded BLAS, set at the first burst
        self._metric_step = _LazyMetric.FIRST  # the detection metric's next segment (see _LazyMetric)
        # the detection metric from every second matched-filter output at 4+ samples per symbol
        # (half the work; kernels.detection_metric says why it loses nothing)
        self.detect_step = 2 if sps >= 4 and (SEG * sps) % 2 == 0 else 1
        # ... through the filter's central taps, 1.5 symbols each side (99.5 % of its energy)
        self.detect_half = (3 * sps) // 2
        # samples after a detection before even the shortest burst the code allows can be whole
        # (the detection may lead the burst by the timing search's span): a stream search defers
        # a detection closer to the end than this without reading its header
        self.min_burst = 0
        if code_bits is not None:
            shortest = min(burst_symbols(payload_symbols(code_bits, m)) for m in MODS)
            self.min_burst = max(0, (shortest - N_SEG * SEG - 8) * sps)

    def length_ok(self, header: dict) -> bool:
        """Whether a header's payload length is one this link can have."""
        n = header["n_symbols"]
        if self.code_bits is not None:
            return n == payload_symbols(self.code_bits, header["modulation"])
        return 0 < n <= MAX_PAYLOAD_SYMBOLS

    def metric(self, samples: np.ndarray, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Detection metric of raw samples (DC blocker, matched filter, Schmidl-Cox over N_SEG-1
        repetitions): (normalised correlation, correlation) per start position, on the matched
        filter's time axis. Each window's own mean is taken out first: a DC offset is a perfect
        repetition, and the leftover of the DC blocker in the silence before a strong burst (a
        centred average that already sees the burst) would otherwise read as a preamble there.
        Positions before ``start`` (samples given as history) are zero."""
        lag = SEG * self.sps
        return kernels.detection_metric(np.ascontiguousarray(samples, np.complex64), self._taps64, lag,
                                        (N_SEG - 1) * lag, DC_WINDOW, self.detect_step, self.detect_half,
                                        int(start))

    def max_burst_samples(self) -> int:
        """Samples of the longest burst a header may announce (the code's at its lowest order)."""
        if self.code_bits is not None:
            n = max(payload_symbols(self.code_bits, m) for m in MODS)
        else:
            n = MAX_PAYLOAD_SYMBOLS
        return burst_symbols(n) * self.sps

    def receive(self, samples: np.ndarray, start: int = 0, final: bool = True) -> list[BurstReport]:
        """Bursts in ``samples`` whose detection lies at or after ``start``.

        With ``final=False`` (a stream, more samples to come) the search stops before a
        detection whose preamble or burst is not wholly in the block yet; ``self.resume_at``
        then says where to search again (bursts found before it are complete or reported cut
        off). With ``final=True`` everything is searched to the end.
        """
        # Single-threaded BLAS for the small products of a burst: with the cores busy (a
        # flowgraph, the codec) OpenBLAS's worker threads wait for a time slice, measured at 5 ms
        # for one 97x329 matrix-vector product that takes 15 us on one thread. Scoped to this
        # call, and set only once a burst is found (setting it costs 10 us: noise needs none).
        self._blas_limit = None
        try:
            return self._receive(np.asarray(samples, np.complex64), int(start), bool(final))
        finally:
            if self._blas_limit is not None:
                self._blas_limit.restore_original_limits()
                self._blas_limit = None

    def warm_up(self) -> None:
        """Load the compiled kernels now: one burst of each modulation through a receiver of the
        same settings (not this one: its state stays as it is). numba reads its cache on a
        kernel's first call, tenths of a second that the first burst on the air cannot wait
        for; a flowgraph runs this on a thread of its own when it starts. Once per process: what
        it loads stays loaded."""
        global _WARM
        if _WARM:
            return
        _blas_controller()
        rx = BurstRx(self.sps, self.beta, self.threshold, self.code_bits)
        rng = np.random.default_rng(0)
        n = self.code_bits or 4608
        for mod in MODS:
            burst = BurstTx(self.sps, self.beta, mod).burst(rng.integers(0, 2, n, dtype=np.uint8))
            pad = np.zeros(64 * self.sps, np.complex64)
            x = np.concatenate([pad, burst, pad])
            x += (0.05 * (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size))).astype(np.complex64)
            rx.receive(x, 0, True)
        _WARM = True

    @property
    def lookback(self) -> int:
        """Samples before a search start that the next search needs (DC blocker and filter
        history, the timing search before a detection)."""
        return DC_WINDOW + self.taps.size + (N_SEG * SEG + 8) * self.sps

    def _receive(self, samples: np.ndarray, start: int, final: bool) -> list[BurstReport]:
        sps = self.sps
        # the metric from a little before ``start``: its DC blocker and filter need the history
        a0 = max(0, start - DC_WINDOW - self.taps.size)
        metric = _LazyMetric(self, samples, a0, start - a0, self._metric_step)
        plateau = (N_SEG + 1) * SEG * sps
        head = (self.pre_len + self.hdr_len + N_SEG * SEG) * sps + 2 * self.taps.size
        reports = []
        i = max(0, start - a0)
        self.pending_end = None
        # without a detection, the positions whose windows reach the filter's tail are searched again
        self.resume_at = a0 + max(i, metric.size - plateau) if not final else samples.size
        while i < metric.size:
            d0 = metric.first_above(i, self.threshold)
            if d0 < 0:
                break
            if not final and (d0 + plateau > metric.size or a0 + d0 + head > samples.size):
                self.resume_at = a0 + d0  # its preamble or header is still arriving
                break
            if not final and a0 + d0 + self.min_burst > samples.size:
                # not whole whatever its header says: search again once the shortest could be
                self.pending_end, self.resume_at = a0 + d0 + self.min_burst, a0 + d0
                break
            # the peak of the plateau that follows the first crossing (the whole preamble's span:
            # a crossing on leftover DC or noise just before a burst must not cut the search short)
            norm, corr = metric.upto(d0, d0 + plateau)
            peak = d0 + int(np.argmax(norm[d0 : d0 + plateau]))
            if self._blas_limit is None:
                self._blas_limit = _blas_controller().limit(limits=1, user_api="blas")
            rep = self._demodulate_at(samples, a0 + peak, float(np.angle(corr[peak])))
            if rep is None:  # no preamble there after all (noise, a fragment): move on
                self.false_alarms += 1
                i = d0 + SEG * sps
                continue
            n_total = self.pre_len + self.hdr_len
            if rep.header:
                n_total = burst_symbols(rep.header["n_symbols"])
                end = rep.start + (n_total + EQ_TAPS) * sps + self.taps.size
                if not final and rep.llr is None and end > samples.size:
                    self.pending_end, self.resume_at = end, a0 + d0  # cut off: complete at ``end``
                    break
            reports.append(rep)
            i = rep.start - a0 + n_total * sps
            if not final:
                self.resume_at = a0 + max(i, metric.size - plateau)
        self._metric_step = metric.step  # a stream of bursts starts small, noise alone large
        return reports

    def _demodulate_at(self, samples: np.ndarray, coarse: int, sc_angle: float) -> BurstReport | None:
        """Demodulate the burst detected at ``coarse`` (matched-filter time axis) from a window of
        the samples around it: the matched filter runs over that window only, not the block."""
        sps = self.sps
        t_len = self.taps.size
        lo = max(0, coarse - (N_SEG * SEG + 8) * sps - t_len)
        hi = min(samples.size, coarse + self.max_burst_samples() + (N_SEG * SEG + 2 * EQ_TAPS + 8) * sps)
        rep = self._demodulate(_FilteredWindow(samples, lo, hi, self._taps64), coarse - lo, sc_angle)
        if rep is not None:
            rep.start += lo
        return rep

    def _clock_drift(self, x, t0: float, n_sym: int, seg: int = 160) -> float:
        """Sample-clock drift (samples per symbol) over the burst, blind (Oerder-Meyr).

        |x|^2 of a root-raised-cosine signal after its matched filter has a spectral line at
        the symbol rate whose phase is the symbol timing; its slope over segments of the
        burst is the drift. It averages over every symbol, where the sparse pilots alone,
        flanked by unknown data, leave a drift error of ~0.4 sample over a burst.
        """
        return float(kernels.clock_drift(np.ascontiguousarray(x, np.complex128), float(t0), int(n_sym), self.sps,
                                         seg))  # compiled

    def _timing_offset(self, x, t0, cfo, drift, known_k, known_v, group: int = 16) -> float:
        """Timing offset (samples) at symbol 0 from the known symbols, the drift given.

        Per group of known symbols, the correlation at -d, 0, +d samples (d = sps/2), taken
        coherently against the group's own phase (the real part: half the noise of a
        magnitude), traces the top of the pulse; a parabola through it gives the group's
        timing error; the groups are averaged by energy. A second pass at the corrected times
        removes most of the parabola's bias. (Compiled: ``kernels.timing_offset``.)
        """
        return float(kernels.timing_offset(x, float(t0), float(cfo), float(drift),
                                           np.ascontiguousarray(known_k, np.int64),
                                           np.ascontiguousarray(known_v, np.complex128), self.sps, group))

    # -- the receiver chain: one method per stage, each testable on its own ------------------------
    def _demodulate(self, window: _FilteredWindow, coarse: int, sc_angle: float) -> BurstReport | None:
        """The stages for one detected burst: timing, carrier and header, resampling, residual
        carrier, equaliser and tracking, demapping. None when there was no preamble after all.
        ``window`` filters as far as the stages read: to the header first, then to the end of
        the burst its header announces."""
        sps = self.sps
        cfo = sc_angle / (2 * np.pi * SEG)  # cycles per symbol, from the detector
        # what the front stages read: the timing search's reach, preamble, header, margins
        x = window.upto(coarse + (N_SEG * SEG + self.pre_len + self.hdr_len + 4) * sps + 8)
        t0 = self.stage_timing(x, coarse, cfo)
        if t0 is None:
            return None
        sync = self.stage_carrier(x, t0, cfo)
        if sync is None:
            return None
        t0f, cfo, pre, g, hdr = sync
        nv = max(float(np.mean(np.abs(pre / g - PREAMBLE) ** 2)), 1e-6)

        def report(header=None, llr=None, symbols=None):
            return BurstReport(t0, cfo, 10 * np.log10(1 / nv), nv, header, llr, symbols)

        refused = self.bad_length
        header = self.stage_header(hdr, nv)
        if header is None and hdr.size == self.hdr_len and self.bad_length == refused:  # CRC failed: try again
            header = self.stage_header(self.equalised_header(x, t0f, cfo), nv)
        if header is None:
            return report()
        # the whole burst its header announces, and the clock-drift segments' reach past it
        need = int(t0f) + (burst_symbols(header["n_symbols"]) + 168) * sps + 16
        if t0f + (burst_symbols(header["n_symbols"]) + EQ_TAPS // 2) * sps > window.size_upto(need) - 1:
            return report(header)  # its tail has not arrived (what stage_resample would find, for less)
        x = window.upto(need)
        burst = self.stage_resample(x, t0f, cfo, header)
        if burst is None:
            return report(header)  # truncated burst
        s, known, pp, k = burst
        s, slope = self.stage_residual_carrier(s, known, pp, k)
        cfo += slope / (2 * np.pi)
        best = self.stage_equalise(s, known, pp)
        if best is None:
            return report(header)
        body, nv = best
        data = np.delete(body, pp)
        return report(header, demodulate(data, nv, header["modulation"]), data.astype(np.complex64))

    def _read(self, x: np.ndarray, t: float, kk: np.ndarray, cfo: float) -> np.ndarray:
        """Symbols kk read at fractional sample time t + kk*sps, carrier offset removed."""
        return kernels.read_symbols(x, float(t), np.asarray(kk, np.int64), self.sps, float(cfo))

    def stage_timing(self, x: np.ndarray, coarse: int, cfo: float) -> int | None:
        """Whole-sample burst start: the best preamble correlation around the detector's peak;
        None when even the best match is weak (a false alarm)."""
        sps = self.sps
        n = np.arange(self.pre_len)
        rot = np.exp(-2j * np.pi * cfo * n)
        # Over +-N_SEG segments: the preamble repeats every SEG symbols, so a search window
        # that misses the true start would settle on a partial (3/4) alignment instead.
        lo = max(0, coarse - N_SEG * SEG * sps)
        hi = min(coarse + N_SEG * SEG * sps, x.size - self.pre_len * sps + 1)
        if hi <= lo:
            return None
        corr = kernels.preamble_search(x, lo, hi, sps, np.conj(PREAMBLE) * rot)
        i_best = int(np.argmax(corr))
        best, best_t = float(corr[i_best]), lo + i_best
        seg_energy = np.sum(np.abs(x[best_t : best_t + self.pre_len * sps : sps]) ** 2)
        if best**2 < 0.3 * self.pre_len * seg_energy:  # weak match to the known preamble: a false alarm
            return None
        return best_t

    def stage_carrier(self, x: np.ndarray, t0: int, cfo: float):
        """Fractional timing, carrier offset and gain from preamble and header: (t0f, cfo,
        preamble symbols, gain, header symbols), or None when the preamble has no energy.

        A parabola through the preamble correlation at t0-1, t0, t0+1 gives the fractional
        timing (a whole-sample error is a quarter symbol at 4 samples per symbol); the phase
        drift between the preamble's halves refines the carrier offset, then one complex gain
        from the preamble reads the header. The preamble alone pins the carrier offset to
        ~1e-3 of the symbol rate at low SNR, too loose over the header: with the whole header
        in, a line is fitted to the phase over preamble and header (squared, which strips the
        BPSK header bits without deciding them, as a decision error would flip the phase by
        pi), and both are read again. Compiled: ``kernels.carrier_sync``."""
        ok, t0f, cfo, pre, g, hdr = kernels.carrier_sync(x, float(t0), float(cfo), self.sps, _PREAMBLE128,
                                                         _HDR_ROT128, self.hdr_len)
        return (float(t0f), float(cfo), pre, complex(g), hdr) if ok else None

    def equalised_header(self, x: np.ndarray, t0f: float, cfo: float) -> np.ndarray:
        """The header symbols through a widely linear 3-tap equaliser trained on the preamble
        alone: the second try when the header read with one complex gain fails its CRC, as
        under multipath (whose echoes the single gain leaves as interference)."""
        kk = np.arange(-1, self.pre_len + self.hdr_len + 1)
        s = self._read(x, t0f, kk, cfo)
        a = np.stack([s[:-2], s[1:-1], s[2:]], axis=1)
        a = np.concatenate([a, np.conj(a), np.ones((a.shape[0], 1))], axis=1)
        w = _least_squares(a[: self.pre_len], PREAMBLE.astype(np.complex128))
        if w is None:
            return np.zeros(0, np.complex128)
        return (a[self.pre_len :] @ w) * np.conj(HDR_ROT)

    def stage_header(self, hdr: np.ndarray, nv: float) -> dict | None:
        """The header, when it is whole, passes its CRC and has a length this link can have."""
        if hdr.size < self.hdr_len:
            return None
        header = parse_header(-4 * np.real(hdr) / nv)
        if header is not None and (not self.length_ok(header) or parse_copy(header["code_id"]) is None):
            self.bad_length += 1
            return None
        return header

    def stage_resample(self, x: np.ndarray, t0f: float, cfo: float, header: dict):
        """Symbol-rate samples of the whole burst (and a margin for the equaliser taps), at
        fractional positions that follow the sample-clock drift: (samples, known training
        symbols, pilot positions, symbol indices), or None when the burst is cut off."""
        sps = self.sps
        half_taps = EQ_TAPS // 2
        n_data = header["n_symbols"]
        pp = pilot_positions(n_data)
        body0 = self.pre_len + self.hdr_len
        total = body0 + n_data + pp.size
        if t0f + (total + half_taps) * sps > x.size - 1:
            return None
        # the training symbols: preamble and the now-known header
        known = _training(header["modulation"], header["code_id"], n_data)
        drift = self._clock_drift(x, t0f, total)
        # the offset from the preamble and header: contiguous known symbols, no unknown neighbours
        offset = self._timing_offset(x, t0f, cfo, drift, np.arange(body0), known)
        k = np.arange(-half_taps, total + half_taps)
        s = kernels.resample(np.ascontiguousarray(x, np.complex128), float(t0f), sps, float(offset), float(drift),
                             float(cfo), -half_taps, k.size)  # compiled
        return s, known, pp, k

    def stage_residual_carrier(self, s: np.ndarray, known: np.ndarray, pp: np.ndarray, k: np.ndarray):
        """Residual carrier offset over the burst, removed before the widely linear equaliser
        (whose conjugate taps would turn a leftover rotation into distortion): the maximum
        likelihood line through all known symbols (preamble, header, pilots), i.e. the peak of
        their periodogram near zero, refined by a parabola. No unwrapping of noisy phases: a
        smoothed-phase line fit left up to 0.3 rad at the burst ends at Es/N0 3.5 dB.
        Returns (corrected samples, the slope in rad per symbol)."""
        half_taps = EQ_TAPS // 2
        body0 = known.size
        kk = np.concatenate([np.arange(body0), body0 + pp])
        ref = np.concatenate([known, PILOT_SEQ[: pp.size]]).astype(np.complex128)
        if k[0] != -half_taps:
            raise ValueError("symbol indices must start at -EQ_TAPS // 2 (what stage_resample returns)")
        return kernels.residual_carrier(np.ascontiguousarray(s, np.complex128), ref, kk, half_taps,
                                        _steering(kk, _RESIDUAL_RAD, RESIDUAL_STEPS), _RESIDUAL_RAD,
                                        _RESIDUAL_DW)  # compiled

    def stage_equalise(self, s: np.ndarray, known: np.ndarray, pp: np.ndarray):
        """Equaliser and pilot tracking: (body symbols, noise variance), or None.

        Symbol-spaced equalisers trained by least squares on the preamble and the now-known
        header (256 symbols): a plain complex gain, and widely linear ones with a DC term (1 and
        EQ_TAPS taps) that absorb IQ imbalance, DC and a short multipath channel. Each is tracked
        with several pilot windows (short ones follow phase noise, long ones average more noise
        away); the leave-one-out pilot error (pilots are not training symbols) picks the best
        pair: extra taps cost estimation noise where the channel does not need them.
        Candidates go from the simplest (a complex gain, the longest window) to the most
        complex; each must beat the best so far by CHOICE_MARGIN: the estimates are noisy, and
        picking the smallest of a dozen of them would often buy estimation noise.
        """
        windows = np.array(sorted({min(wnd, pp.size) for wnd in TRACK_WINDOWS}, reverse=True), np.int64)
        body, nv, found = kernels.equalise(np.ascontiguousarray(s, np.complex128),
                                           np.ascontiguousarray(known, np.complex128),
                                           np.ascontiguousarray(pp, np.int64),
                                           np.ascontiguousarray(PILOT_SEQ[: pp.size], np.complex128), windows,
                                           EQ_TAPS // 2, CHOICE_MARGIN)  # compiled
        return (body, float(nv)) if found else None


class _LazyMetric:
    """The detection metric of ``samples[a0:]`` (``BurstRx.metric``), computed segment by segment
    as the search reaches it: after a burst the search goes on from the burst's end, so the
    metric over the bursts' own samples, most of a busy stream, is never computed. A segment
    reads its samples' history and enough samples ahead (DC blocker, filter, window) for its
    values to be the whole block's; the last one reads to the block's end, as the whole block."""

    FIRST = 1024  # positions of the segment after a detection; doubled while nothing is found
    LONGEST = 1 << 15

    def __init__(self, rx: BurstRx, samples: np.ndarray, a0: int, start: int, step: int = FIRST):
        self.rx, self.samples, self.a0 = rx, samples, a0
        lag = SEG * rx.sps
        self.span = N_SEG * lag  # the metric's window (win + lag)
        self.size = max(samples.size - a0 + rx.taps.size - 1 - self.span, 0)
        self.norm = np.zeros(self.size)
        self.corr = np.zeros(self.size, np.complex64)
        self.lo = self.hi = max(start, 0)  # positions [lo, hi) are computed
        self.step = min(max(int(step), self.FIRST), self.LONGEST)
        # raw samples a position's value reads past it: its window, the filter, the DC blocker
        self.ahead = self.span + rx.taps.size + DC_WINDOW - DC_WINDOW // 2
        self.history = DC_WINDOW + rx.taps.size

    def upto(self, i: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(norm, corr) with positions [i, stop) computed (stop clipped to the size)."""
        stop = min(stop, self.size)
        if self.lo <= i and stop <= self.hi:
            return self.norm, self.corr
        p0 = self.hi if self.lo <= i <= self.hi else i
        p1 = min(max(stop, p0 + self.step), self.size)
        # from a0 (the whole block's start) on, and a whole number of the detector's steps
        # after it: every step-th filter output is the same one as in the whole block
        st = self.rx.detect_step
        s_lo = self.a0 + max(0, (p0 - self.history) // st * st)
        s_hi = self.a0 + p1 + self.ahead
        if s_hi >= self.samples.size - self.ahead:  # near the end: to the end, as the whole block
            s_hi, p1 = self.samples.size, self.size
        norm, corr = self.rx.metric(self.samples[s_lo:s_hi], self.a0 + p0 - s_lo)
        off = self.a0 - s_lo  # position p is norm[p + off]
        p1 = min(p1, norm.size - off)
        self.norm[p0:p1] = norm[p0 + off : p1 + off]
        self.corr[p0:p1] = corr[p0 + off : p1 + off]
        if not self.lo <= p0 <= self.hi:
            self.lo = p0
        self.hi = p1
        return self.norm, self.corr

    def first_above(self, i: int, threshold: float) -> int:
        """The first position >= i whose metric exceeds threshold, or -1."""
        while i < self.size:
            self.upto(i, i + 1)
            d = int(kernels.first_above(self.norm[: self.hi], max(i, self.lo), threshold))
            if d >= 0:
                self.step = self.FIRST
                return d
            i = self.hi
            self.step = min(2 * self.step, self.LONGEST)
        return -1


class _FilteredWindow:
    """The matched filter over one detection's window of samples (DC removed: the window's
    mean), computed only as far as asked: a prefix of the output needs only that prefix of the
    input, so filtering to the header first and then on to the burst's end gives what filtering
    the whole window (sized for the longest burst) gave, each output computed once."""

    def __init__(self, samples: np.ndarray, lo: int, hi: int, taps: np.ndarray):
        self.seg = samples[lo:hi]
        self.mean = complex_mean(self.seg)  # removed inside the filter
        self.cut = hi < samples.size  # the filter's tail there would lack the samples that follow
        self.taps = taps
        # the outputs of the whole window; a burst's tail past the window's cut is not read
        self.end = self.seg.size if self.cut else self.seg.size + taps.size - 1
        self.buf = np.empty(self.end, np.complex128)
        self.done = 0

    @property
    def x(self) -> np.ndarray:
        return self.buf[: self.done]

    def size_upto(self, n: int) -> int:
        """The length of ``upto(n)``, without filtering."""
        return self.end if n >= self.seg.size else min(max(n, self.done), self.end)

    def upto(self, n: int) -> np.ndarray:
        """The output from the window's start to at least ``n`` (or to its end)."""
        want = self.size_upto(n)
        if want > self.done:
            fir_into(self.seg, self.taps, self.mean, self.buf, self.done, want)
            self.done = want
        return self.x


def _least_squares(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Least-squares taps by the normal equations (a handful of columns, hundreds of rows: 4x
    faster than lstsq's SVD); lstsq where they are singular; None when nothing finite comes out."""
    ah = a.conj().T
    try:
        w = np.linalg.solve(ah @ a, ah @ b)
    except np.linalg.LinAlgError:
        w, *_ = np.linalg.lstsq(a, b, rcond=None)
    return w if np.all(np.isfinite(w)) else None


def track_pilots(body: np.ndarray, pp: np.ndarray, pv: np.ndarray, window: int):
    """Phase and gain from the pilots, smoothed in the complex plane over ``window`` pilots (no
    unwrapping of noisy phases); returns (noise var, corrected body or None, smooth): the body is
    corrected only when the noise variance needs it, so ranking a dozen candidates costs little.

    The noise variance compares each pilot with the reference made without it (leave one out):
    that error, pilot noise plus reference noise, is what a data symbol sees, so it also ranks
    the candidate equalisers and windows fairly.
    """
    pp = np.ascontiguousarray(pp, np.int64)
    pv = np.ascontiguousarray(pv, np.complex128)
    smooth, min_count, nv = kernels.pilot_windows(body, pp, pv, int(window))
    nv, corrected = kernels.window_error(body, pp, pv, smooth, min_count, nv)  # what kernels.equalise uses
    return float(nv), (corrected if corrected.size else None), smooth


def burst_symbols(n_data: int) -> int:
    """Symbols in a burst carrying n_data payload symbols."""
    return PREAMBLE.size + HEADER_BITS * HEADER_REP + n_data + pilot_positions(n_data).size
