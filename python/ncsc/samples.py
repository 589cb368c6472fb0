"""Sample data that a dependency ships, kept free of heavy imports.

GNU Radio Companion evaluates a flowgraph's imports inside its GTK process; importing
CompressAI there crashes it, so the .grc files import from here, not from the codec.
"""

from __future__ import annotations


def default_image() -> str:
    """A photo that matplotlib ships (grace_hopper.jpg), so the demo needs no data set."""
    from matplotlib import cbook

    return str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
