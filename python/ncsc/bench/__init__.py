"""Benchmarks: scripts that print figures, the last line one JSON object."""

from pathlib import Path

# The shared Kodak set beside a checkout (evaluation only): every benchmark's default --images.
DEFAULT_IMAGES = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "kodak"


def add_image_args(parser) -> None:
    """``--images DIR`` or ``--held-out DIR...``: what a benchmark scores."""
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--images", default=str(DEFAULT_IMAGES), help="folder of test images (default: Kodak)")
    g.add_argument("--held-out", nargs="+", metavar="DIR", default=None,
                   help="score the trainer's held-out photos of these training folders instead (the last "
                        "4 of each, never trained on): photos the codec has not seen, beside Kodak")


def pick_images(args) -> tuple[list[Path], str]:
    """(files, what they are called in tables) for ``add_image_args``' options; FileNotFoundError
    with the folder named when there is nothing (held out) to score."""
    if args.held_out:
        from ..train import HELD_OUT, split_folders  # the trainer's own split

        files = []
        for d in args.held_out:
            trained, held = split_folders([d])
            if set(held) & set(trained):  # a folder this small is trained on whole
                raise FileNotFoundError(f"{d} has no more than {HELD_OUT} photos: none of them is held out")
            files += held
        return files, "held-out photos of " + ", ".join(Path(d).name for d in args.held_out)
    # here: the light benchmarks import this package without torch
    from ..codec.image import IMAGE_SUFFIXES
    from ..imaging import expand_paths

    folder = Path(args.images)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} not found (pass --images DIR)")
    files = expand_paths(folder)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return files, "Kodak images" if folder.name.lower() == "kodak" else f"images of {folder.name}"
