"""Channel models."""

from .awgn import SNR_TYPES, AwgnChannel, esn0_from_ebn0, noise_variance

__all__ = ["SNR_TYPES", "AwgnChannel", "esn0_from_ebn0", "noise_variance"]
