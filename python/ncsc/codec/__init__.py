"""The NCSC learned image codec: model, deterministic entropy coder, bitstream, registry."""

from .bitstream import BitstreamError, Header
from .coder import NcscCodec
from .image import ImageError, load_image, save_png
from .model import NcscModel
from .registry import CONFIGS, METRICS, WeightsError, load_codec

__all__ = ["BitstreamError", "CONFIGS", "Header", "ImageError", "METRICS", "NcscCodec", "NcscModel",
           "WeightsError", "load_codec", "load_image", "save_png"]
