"""Burst PHY: preamble, header, pilots and RRC pulses around LDPC codewords, and its receiver."""

from .burst import PREAMBLE, BurstReport, BurstRx, BurstTx, rrc_taps
from .copies import CopyCombiner, copy_id, parse_copy

__all__ = ["PREAMBLE", "BurstReport", "BurstRx", "BurstTx", "CopyCombiner", "copy_id", "parse_copy", "rrc_taps"]
