"""Sample data that a dependency ships, kept free of heavy imports.

GNU Radio Companion evaluates a flowgraph's imports inside its GTK process; importing
CompressAI there crashes it, so the .grc files import from here, not from the codec.
"""

from __future__ import annotations


def default_image() -> str:
    """A photo that matplotlib ships (grace_hopper.jpg), so the demo needs no data set."""
    from matplotlib import cbook

    return str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


SAMPLE_IMAGE = "grace_hopper.jpg"  # what flowgraphs show as their default image parameter


def resolve_images(spec: str) -> str:
    """A ';'-separated image list with the bare sample name (``grace_hopper.jpg``, not a file
    here) replaced by the sample's path: flowgraphs show the short name, not a path inside
    the virtual environment, and the source resolves it when it runs."""
    from pathlib import Path

    parts = [p.strip() for p in str(spec).split(";")]
    return ";".join(default_image() if p == SAMPLE_IMAGE and not Path(p).exists() else p for p in parts)
