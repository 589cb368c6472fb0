"""Front-end impairments on complex baseband samples, for tests and the over-the-air benchmark.

Carrier offset, sample-clock offset (by interpolation), phase, phase noise (a Wiener
process, as a free-running oscillator's), start time, a multipath channel, IQ imbalance,
DC offset and AWGN at a stated Es/N0 (``sps`` samples per symbol,
unit symbol energy spread over them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dsp import interp_cubic


@dataclass
class Impairments:
    esn0_db: float = 10.0
    cfo: float = 0.0  # cycles per symbol (0.02 = 2 % of the symbol rate)
    sco_ppm: float = 0.0
    phase: float = 0.0
    taps: tuple = ()  # symbol-spaced multipath taps, e.g. (1, 0.4j, -0.2)
    iq_gain: float = 0.0  # amplitude imbalance (fraction)
    iq_phase: float = 0.0  # phase imbalance (radians)
    dc: complex = 0.0
    phase_noise: float = 0.0  # Wiener phase noise: std of the phase change per symbol (radians)
    sps: int = 4
    seed: int | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        x = np.asarray(x, np.complex64)
        n = np.arange(x.size)
        if self.sco_ppm:
            # Cubic Lagrange resampling (as GNU Radio's MMSE fractional resampler, not linear
            # interpolation, which at 4 samples per symbol would itself cost ~0.2 dB).
            t = n * (1 + self.sco_ppm * 1e-6)
            # zero beyond the ends: pad, shift the positions by the padding
            x = interp_cubic(np.concatenate([[0, 0], x, [0, 0, 0]]).astype(np.complex128), np.clip(t, -1, x.size) + 2)
        if self.taps:
            h = np.zeros((len(self.taps) - 1) * self.sps + 1, np.complex64)
            h[:: self.sps] = self.taps
            x = np.convolve(x, h / np.linalg.norm(self.taps))[: x.size]
        x = x * np.exp(2j * np.pi * self.cfo / self.sps * n + 1j * self.phase)
        if self.phase_noise:
            walk = np.cumsum(rng.standard_normal(x.size)) * (self.phase_noise / np.sqrt(self.sps))
            x = x * np.exp(1j * walk)
        if self.iq_gain or self.iq_phase:
            g, p = self.iq_gain, self.iq_phase
            x = (1 + g / 2) * x.real * np.exp(-0.5j * p) + 1j * (1 - g / 2) * x.imag * np.exp(0.5j * p)
        n0 = self.sps * 10 ** (-self.esn0_db / 10)  # per-sample noise for unit symbol energy
        noise = np.sqrt(n0 / 2) * (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size))
        return (x + noise + self.dc).astype(np.complex64)
