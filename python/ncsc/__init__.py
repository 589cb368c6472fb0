"""gr-ncsc: images over a digital radio link with a learned image codec (NCSC).

Plain modules (``fec``, ``modulation``, ``channel``, ``framing``, ``codec``) hold the
logic and test without a flowgraph; ``blocks`` adapts them to GNU Radio.
Blocks are imported lazily so that ``from gnuradio import ncsc`` stays cheap and
the plain modules work where torch is not needed.
"""

__version__ = "0.1.0"

_BLOCKS = {
    "ldpc_encoder": "ldpc_encoder",
    "ldpc_decoder": "ldpc_decoder",
    "qam_mapper": "qam_mapper",
    "soft_demapper": "soft_demapper",
    "awgn_channel": "awgn_channel",
    "image_source": "image_source",
    "framer": "framer",
    "deframer": "deframer",
    "decoder_sink": "decoder_sink",
    "burst_modulator": "burst_modulator",
    "burst_tx": "burst_tx",
    "burst_rx": "burst_rx",
    "image_viewer": "image_viewer",
}


def __getattr__(name):
    if name == "load_profile":  # for flowgraph variables: ``link = ncsc.load_profile(profile)``
        from .profiles import load_profile

        return load_profile
    if name in _BLOCKS:
        import importlib

        module = importlib.import_module(f"{__name__}.blocks.{_BLOCKS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
