"""Deterministic entropy coding of the latent y: integer mixture pmfs and a 32-bit rANS coder (numba).

Every probability is built with integer arithmetic from quantised mixture parameters
(weight logits on a 1/8 grid, means on a 1/16 grid, one of 64 log-spaced scales), so
the encoder and decoder agree exactly. Values outside an element's support are sent
through an escape symbol followed by 32 raw bits.
"""

from __future__ import annotations

import math
import threading

import numba as nb
import numpy as np

PREC = 16  # rANS probability precision (bits)
RANS_L = 1 << 23
MEAN_STEPS = 16  # mean grid: 1/16
MEAN_SHIFT = 4
LOGIT_STEPS = 8  # logit grid: 1/8
LOGIT_RANGE = 255
WEIGHT_BITS = 10
N_SCALES = 64
SCALE_MIN, SCALE_MAX = 0.11, 64.0
TAB_BITS = 16
MEAN_LIMIT = 1024 * MEAN_STEPS  # keeps every support (and the pmf buffer) bounded


def scale_levels() -> np.ndarray:
    return np.exp(np.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), N_SCALES))


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


class Tables:
    """Integer pmf tables of a discretised Gaussian per (scale index, mean fraction), built once."""

    def __init__(self):
        levels = scale_levels()
        self.half = np.array([math.ceil(7.0 * s) + 2 for s in levels], dtype=np.int64)
        offs = np.zeros((N_SCALES, MEAN_STEPS), dtype=np.int64)
        chunks = []
        pos = 0
        for s, sigma in enumerate(levels):
            t = int(self.half[s])
            d = np.arange(-t, t + 1, dtype=np.float64)
            for f in range(MEAN_STEPS):
                frac = f / MEAN_STEPS
                upper = np.array([_phi((v + 0.5 - frac) / sigma) for v in d])
                lower = np.array([_phi((v - 0.5 - frac) / sigma) for v in d])
                chunks.append(np.round((upper - lower) * (1 << TAB_BITS)).astype(np.int64))
                offs[s, f] = pos
                pos += 2 * t + 1
        self.tab = np.concatenate(chunks)
        self.offs = offs
        # exp(-d/8) on the logit grid, for integer softmax weights
        self.exp = np.array([round((1 << 20) * math.exp(-d / LOGIT_STEPS)) for d in range(LOGIT_RANGE + 1)],
                            dtype=np.int64)
        geo = np.sqrt(levels[:-1] * levels[1:])
        self.scale_thresholds = geo  # in real units; converted to fixed point by the caller


_TABLES: Tables | None = None
_TABLES_LOCK = threading.Lock()


def tables() -> Tables:
    global _TABLES
    if _TABLES is None:
        with _TABLES_LOCK:  # built once, also when a warm-up thread and a coder ask together
            if _TABLES is None:
                _TABLES = Tables()
    return _TABLES


def quantize_params(raw: np.ndarray, fa: int, K: int, M: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer head outputs (n, 3*K*M) at 2**fa -> (weights, scale index, mean on 1/16 grid), each (n, M, K).

    Integer-only: floor shifts and comparisons against fixed-point thresholds.
    """
    t = tables()
    r = raw.astype(np.int64).reshape(-1, 3, K, M)
    logits = (r[:, 0] * LOGIT_STEPS) >> fa  # floor to the 1/8 grid
    means = np.clip((r[:, 1] * MEAN_STEPS + (1 << (fa - 1))) >> fa, -MEAN_LIMIT, MEAN_LIMIT)
    thr = np.ceil(t.scale_thresholds * (1 << fa)).astype(np.int64)
    sidx = np.searchsorted(thr, r[:, 2], side="right")
    d = np.minimum(logits.max(axis=1, keepdims=True) - logits, LOGIT_RANGE)
    e = t.exp[d]
    w = np.maximum((e << WEIGHT_BITS) // e.sum(axis=1, keepdims=True), 1)
    return (np.ascontiguousarray(w.transpose(0, 2, 1)), np.ascontiguousarray(sidx.transpose(0, 2, 1)),
            np.ascontiguousarray(means.transpose(0, 2, 1)))


@nb.njit(cache=True, nogil=True)
def _build_pmf(w, s, mu, half, offs, tab, freq):
    """Frequencies (sum 2**PREC) over [lo, hi] plus an escape symbol; returns (lo, n_symbols)."""
    K = w.size
    lo = 1 << 40
    hi = -(1 << 40)
    for k in range(K):
        base = mu[k] >> MEAN_SHIFT
        lo = min(lo, base - half[s[k]])
        hi = max(hi, base + half[s[k]])
    n = hi - lo + 1
    total = 0
    for i in range(n):
        freq[i] = 0
    for k in range(K):
        base = mu[k] >> MEAN_SHIFT
        f = mu[k] - (base << MEAN_SHIFT)
        t = half[s[k]]
        o = offs[s[k], f]
        start = base - t - lo
        for j in range(2 * t + 1):
            freq[start + j] += w[k] * tab[o + j]
    for i in range(n):
        total += freq[i]
    budget = (1 << PREC) - (n + 1)
    used = 0
    best = 0
    for i in range(n):
        if freq[i] > freq[best]:
            best = i
    for i in range(n):
        v = 1 + (freq[i] * budget) // total
        freq[i] = v
        used += v
    freq[n] = 1  # escape
    used += 1
    freq[best] += (1 << PREC) - used
    return lo, n + 1


@nb.njit(cache=True, nogil=True)
def _symbols(values, w, s, mu, half, offs, tab):
    """(start, freq) of every coded symbol in coding order, escapes expanded."""
    n_el = values.size
    starts = np.empty(n_el * 3, dtype=np.int64)
    freqs = np.empty(n_el * 3, dtype=np.int64)
    freq = np.empty(1 << 13, dtype=np.int64)
    n = 0
    for i in range(n_el):
        lo, ns = _build_pmf(w[i], s[i], mu[i], half, offs, tab, freq)
        v = values[i] - lo
        idx = v if 0 <= v < ns - 1 else ns - 1
        c = 0
        for j in range(idx):
            c += freq[j]
        starts[n] = c
        freqs[n] = freq[idx]
        n += 1
        if idx == ns - 1:
            raw = values[i] + (1 << 31)
            starts[n] = raw >> 16
            freqs[n] = 1
            starts[n + 1] = raw & 0xFFFF
            freqs[n + 1] = 1
            n += 2
    return starts[:n], freqs[:n]


@nb.njit(cache=True, nogil=True)
def _rans_encode(starts, freqs):
    out = np.empty(starts.size * 4 + 16, dtype=np.uint8)
    n = 0
    x = RANS_L
    for i in range(starts.size - 1, -1, -1):
        f = freqs[i]
        x_max = ((RANS_L >> PREC) << 8) * f
        while x >= x_max:
            out[n] = x & 0xFF
            n += 1
            x >>= 8
        x = ((x // f) << PREC) + (x % f) + starts[i]
    res = np.empty(n + 4, dtype=np.uint8)
    for b in range(4):
        res[b] = (x >> (8 * b)) & 0xFF
    for i in range(n):
        res[4 + i] = out[n - 1 - i]
    return res


def encode_values(values: np.ndarray, w, s, mu) -> bytes:
    """rANS-code integer values (in coding order) under their mixture parameters."""
    t = tables()
    starts, freqs = _symbols(values.astype(np.int64), w, s, mu, t.half, t.offs, t.tab)
    return _rans_encode(starts, freqs).tobytes()


@nb.njit(cache=True, nogil=True)
def _rans_decode(buf, state, w, s, mu, half, offs, tab, out):
    """Decode len(out) values; state = [x, read position]. Returns len(out), or -1 - n when the
    string ran out after n values: a value is exact once decided, even when the reads that
    follow it fail, so the beginning of a cut-off string decodes as sent."""
    freq = np.empty(1 << 13, dtype=np.int64)
    x = state[0]
    pos = state[1]
    mask = (1 << PREC) - 1
    nbuf = buf.size
    for i in range(out.size):
        lo, ns = _build_pmf(w[i], s[i], mu[i], half, offs, tab, freq)
        cf = x & mask
        c = 0
        idx = 0
        while idx < ns - 1 and c + freq[idx] <= cf:
            c += freq[idx]
            idx += 1
        x = freq[idx] * (x >> PREC) + cf - c
        escape = idx == ns - 1
        if not escape:
            out[i] = lo + idx
        while x < RANS_L:
            if pos >= nbuf:
                return -1 - (i if escape else i + 1)
            x = (x << 8) | buf[pos]
            pos += 1
        if escape:
            raw = 0
            for _ in range(2):
                cf = x & mask
                x = x >> PREC
                raw = (raw << 16) | cf
                while x < RANS_L:
                    if pos >= nbuf:
                        return -1 - i
                    x = (x << 8) | buf[pos]
                    pos += 1
            out[i] = raw - (1 << 31)
    state[0] = x
    state[1] = pos
    return out.size


class RansStream:
    """Incremental decoder over one rANS string: ``decode(w, s, mu)`` returns the next values."""

    def __init__(self, data: bytes):
        if len(data) < 4:
            raise ValueError("latent stream too short")
        self.buf = np.frombuffer(data, dtype=np.uint8)
        x = int(self.buf[0]) | int(self.buf[1]) << 8 | int(self.buf[2]) << 16 | int(self.buf[3]) << 24
        self.state = np.array([x, 4], dtype=np.int64)
        self.t = tables()
        self.ended = False  # a partial decode ran out of string: nothing more to decode

    def decode(self, w, s, mu, partial: bool = False) -> np.ndarray:
        """The next len(w) values. A string that ends first is an error, unless ``partial``
        (the received beginning of a longer string): then the values decoded before it ended."""
        out = np.empty(w.shape[0], dtype=np.int64)
        n = _rans_decode(self.buf, self.state, w, s, mu, self.t.half, self.t.offs, self.t.tab, out)
        if n < 0:
            if not partial:
                raise ValueError("latent stream ends early (truncated or corrupted)")
            self.ended = True
            return out[: -1 - n]
        return out


# -- the hyper-latent z: CompressAI's rANS format, decoded with bounds checks ------------------
# CompressAI's C++ decoder (Rans64, 16-bit precision, 4-bit bypass chunks) trusts its input: it
# reads past the end of a short string and loops on a long run of bypass flags, so a forged z
# string could crash the process or decode heap bytes. This decoder reads the same format and
# refuses, instead, anything that a CompressAI encoder cannot have produced.
Z_RANS_L = 1 << 31
Z_BYPASS_BITS = 4
Z_MAX_BYPASS_CHUNKS = 8  # raw values fit 32 bits: 8 chunks of 4 bits


@nb.njit(cache=True, nogil=True)
def _z_chunk(x, pos, words):
    """One 4-bit bypass chunk: (value, state, read position, whether the string held enough)."""
    val = x & ((1 << Z_BYPASS_BITS) - 1)
    x >>= Z_BYPASS_BITS
    if x < Z_RANS_L:
        if pos >= words.size:
            return val, x, pos, False
        x = (x << 32) | words[pos]
        pos += 1
    return val, x, pos, True


@nb.njit(cache=True, nogil=True)
def _z_decode(words, indexes, cdf, cdf_len, offsets, out):
    """Decode len(out) symbols; 0 = ok, 1 = string ends early, 2 = impossible symbol or state,
    3 = trailing words."""
    n = words.size
    if n < 2 or words[1] >= (1 << 31):  # an encoder's final state is below 2**63
        return 1 if n < 2 else 2
    x = words[0] | (words[1] << 32)
    pos = 2
    mask = (1 << 16) - 1
    bmask = (1 << Z_BYPASS_BITS) - 1
    for i in range(indexes.size):
        ci = indexes[i]
        length = cdf_len[ci]
        cf = x & mask
        s = 0
        while s + 2 < length and cdf[ci, s + 1] <= cf:
            s += 1
        start = cdf[ci, s]
        freq = cdf[ci, s + 1] - start
        if freq <= 0 or cf < start:
            return 2
        x = freq * (x >> 16) + cf - start
        if x < Z_RANS_L:
            if pos >= n:
                return 1
            x = (x << 32) | words[pos]
            pos += 1
        value = s
        if value == length - 2:  # bypass: a count of 4-bit chunks, then the chunks
            n_chunks = 0
            val = bmask
            while val == bmask:
                val, x, pos, ok = _z_chunk(x, pos, words)
                if not ok:
                    return 1
                n_chunks += val
                if n_chunks > Z_MAX_BYPASS_CHUNKS:
                    return 2
            raw = 0
            for j in range(n_chunks):
                val, x, pos, ok = _z_chunk(x, pos, words)
                if not ok:
                    return 1
                raw |= val << (j * Z_BYPASS_BITS)
            value = raw >> 1
            if raw & 1:
                value = -value - 1
            else:
                value += length - 2
        out[i] = value + offsets[ci]
    return 3 if pos != n else 0


Z_ERRORS = {1: "hyper-latent string ends early (truncated or corrupted)",
            2: "hyper-latent string holds an impossible symbol (corrupted)",
            3: "hyper-latent string has trailing bytes (corrupted)"}


def decode_z(bottleneck, data: bytes, shape: tuple[int, int]):
    """Decode a z string made by ``EntropyBottleneck.compress`` (one image); ValueError on bad input.

    Returns the dequantized z_hat, (1, C, h, w) float32, as ``EntropyBottleneck.decompress`` does."""
    import torch

    if len(data) % 4:
        raise ValueError("hyper-latent string length is not a multiple of 4 bytes (corrupted)")
    cdf = bottleneck._quantized_cdf.numpy().astype(np.int64)
    cdf_len = bottleneck._cdf_length.numpy().astype(np.int64)
    offsets = bottleneck._offset.numpy().astype(np.int64)
    if cdf.ndim != 2 or cdf.size == 0:
        raise ValueError("entropy bottleneck has no CDF tables: run update() first")
    c = cdf.shape[0]
    h, w = shape
    indexes = np.repeat(np.arange(c, dtype=np.int64), h * w)
    words = np.frombuffer(data, dtype="<u4").astype(np.int64)
    out = np.empty(indexes.size, dtype=np.int64)
    err = _z_decode(words, indexes, cdf, cdf_len, offsets, out)
    if err:
        raise ValueError(Z_ERRORS[err])
    medians = bottleneck._get_medians().detach().reshape(1, c, 1, 1)
    return torch.from_numpy(out.reshape(1, c, h, w)).to(medians.dtype) + medians


def warm_up(K: int = 3) -> None:
    """Build the pmf tables and load every compiled coder kernel now, on a few dummy symbols.

    The first image of a process otherwise pays for both (about 0.5 s here, most of it numba
    loading its cache) inside its encode and decode; a flowgraph runs this on a thread of
    its own when it starts, while the encoder's transform (which does not hold the GIL) runs.
    The arguments have the dtypes and layouts of the real calls: numba loads per signature."""
    tables()
    n = 4
    w = np.full((n, K), (1 << WEIGHT_BITS) // K, dtype=np.int64)
    s = np.full((n, K), N_SCALES // 4, dtype=np.int64)
    mu = np.zeros((n, K), dtype=np.int64)
    values = np.arange(n, dtype=np.int64) - 1
    RansStream(encode_values(values, w, s, mu)).decode(w, s, mu)
    one = np.zeros(1, dtype=np.int64)
    _z_decode(one, one, np.zeros((1, 2), dtype=np.int64), one, one, one)  # returns at once: too short
