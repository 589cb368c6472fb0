"""Gray QAM mapping and soft demapping (TS 38.211)."""

from .qam import DEMAPPERS, ORDERS, bits_per_symbol, constellation, demodulate, modulate

__all__ = ["DEMAPPERS", "ORDERS", "bits_per_symbol", "constellation", "demodulate", "modulate"]
