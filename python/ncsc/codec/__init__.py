"""The NCSC learned image codec: model, deterministic entropy coder, bitstream, registry.

Names load lazily: ``codec.bitstream`` (and whatever needs only it, e.g. a block checking a
header) imports without torch; ``NcscCodec``, ``load_codec`` and the model bring torch and
CompressAI in when first used.
"""

_NAMES = {
    "BitstreamError": "bitstream", "Header": "bitstream", "NcscCodec": "coder", "ImageError": "image",
    "load_image": "image", "save_png": "image", "NcscModel": "model", "CONFIGS": "registry",
    "METRICS": "registry", "WeightsError": "registry", "load_codec": "registry",
}

__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
