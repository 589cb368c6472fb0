"""Burst PHY: preamble, header, pilots and RRC pulses around LDPC codewords, and its receiver."""

from .burst import PREAMBLE, BurstReport, BurstRx, BurstTx, rrc_taps

__all__ = ["PREAMBLE", "BurstReport", "BurstRx", "BurstTx", "rrc_taps"]
