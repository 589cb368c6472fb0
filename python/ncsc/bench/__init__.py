"""Benchmarks: scripts that print figures, the last line one JSON object."""

from pathlib import Path

# The shared Kodak set beside a checkout (evaluation only): every benchmark's default --images.
DEFAULT_IMAGES = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "kodak"
