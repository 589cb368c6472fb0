"""Seeded complex AWGN at a stated Eb/N0 or Es/N0.

The reference paper says only "SNR"; ncsc always names which one. Eb/N0 is per
*information* bit, so Es/N0 = Eb/N0 + 10*log10(bits_per_symbol * code_rate)
(+1.25 dB for 16-QAM with the rate-1/3 code). The default everywhere is Eb/N0.
"""

from __future__ import annotations

import math

import numpy as np

SNR_TYPES = ("ebn0", "esn0")


def esn0_from_ebn0(ebn0_db: float, bits_per_symbol: int, code_rate: float) -> float:
    return float(ebn0_db) + 10.0 * math.log10(bits_per_symbol * code_rate)


def noise_variance(snr_db: float, snr_type: str = "ebn0", bits_per_symbol: int = 4,
                   code_rate: float = 1 / 3) -> float:
    """Total complex noise variance N0 for unit-energy symbols (Es = 1)."""
    if snr_type not in SNR_TYPES:
        raise ValueError(f"snr_type must be one of {SNR_TYPES}, got {snr_type!r}")
    if not math.isfinite(snr_db):
        raise ValueError(f"SNR must be finite, got {snr_db}")
    esn0 = snr_db if snr_type == "esn0" else esn0_from_ebn0(snr_db, bits_per_symbol, code_rate)
    return 10.0 ** (-esn0 / 10.0)


class AwgnChannel:
    """Adds circular complex Gaussian noise of variance N0 (N0/2 per dimension) to unit-energy symbols."""

    def __init__(self, snr_db: float = 3.0, snr_type: str = "ebn0", bits_per_symbol: int = 4,
                 code_rate: float = 1 / 3, seed: int | None = None):
        self.bits_per_symbol = bits_per_symbol
        self.code_rate = code_rate
        self.snr_type = snr_type
        self.set_snr(snr_db)
        self.rng = np.random.default_rng(seed)

    def set_snr(self, snr_db: float) -> None:
        self.noise_var = noise_variance(snr_db, self.snr_type, self.bits_per_symbol, self.code_rate)
        self.snr_db = float(snr_db)

    @property
    def esn0_db(self) -> float:
        return -10.0 * math.log10(self.noise_var)

    def __call__(self, symbols) -> np.ndarray:
        x = np.asarray(symbols, dtype=np.complex64)
        sigma = math.sqrt(self.noise_var / 2.0)
        noise = self.rng.standard_normal(x.shape + (2,), dtype=np.float32) * sigma
        return x + (noise[..., 0] + 1j * noise[..., 1]).astype(np.complex64)
