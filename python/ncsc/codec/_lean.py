"""Import CompressAI without PyTorch Geometric and torchvision.

CompressAI's package import loads its point-cloud transforms and its transform registry,
which import PyTorch Geometric and torchvision, both of which import ``torch._dynamo``: more
than half of the time that torch and CompressAI take to import (4 s on these machines, 6-9 s
on a loaded one), all before a GUI flowgraph can show its first picture. The image codec
uses none of it. So, when neither is imported in the process yet, CompressAI is imported
against placeholders of the few names those modules take from them at import; the
placeholders leave ``sys.modules`` right after, so a later ``import torch_geometric`` or
``import torchvision`` loads the real package. What CompressAI built on them, and never used
here, is then incomplete: its point-cloud transforms refuse to run with a clear message, and
its transform registry (``compressai.registry.TRANSFORMS``) lacks torchvision's and PyG's.

``NCSC_FULL_IMPORT=1`` imports CompressAI as it is: for a process that also uses those parts,
or whose other threads may import torchvision or PyTorch Geometric during the under a second
that CompressAI takes to import (they would get the placeholder).
"""

from __future__ import annotations

import os
import sys
import types

PLACEHOLDER = ("torch_geometric", "torch_geometric.data", "torch_geometric.data.datapipes",
               "torch_geometric.transforms", "torchvision", "torchvision.transforms")


class _NotLoaded:
    """Stands in for PyTorch Geometric's base classes inside CompressAI's point-cloud modules."""

    def __new__(cls, *args, **kwargs):
        raise RuntimeError("gr-ncsc imported CompressAI without PyTorch Geometric (its point-cloud "
                           "transforms are unused here); set NCSC_FULL_IMPORT=1 to use them")


def _module(name: str):
    mod = types.ModuleType(name)
    mod.__ncsc_placeholder__ = True
    return mod


def _placeholder() -> dict:
    mods = {name: _module(name) for name in PLACEHOLDER}
    root, data, pipes, transforms, vision, vision_transforms = mods.values()
    data.Data = type("Data", (_NotLoaded,), {})
    pipes.functional_transform = lambda name: (lambda cls: cls)
    transforms.BaseTransform = type("BaseTransform", (_NotLoaded,), {})
    transforms.Center = type("Center", (_NotLoaded,), {})
    root.data, root.transforms, data.datapipes = data, transforms, pipes
    vision.transforms = vision_transforms  # no names: the registry takes none from it
    return mods


def import_compressai():
    """``import compressai``, without PyTorch Geometric and torchvision where that is safe (see
    the module's docstring)."""
    if "compressai" in sys.modules or os.environ.get("NCSC_FULL_IMPORT") == "1" or any(
            name in sys.modules for name in PLACEHOLDER):
        import compressai

        return compressai
    stand_ins = _placeholder()
    sys.modules.update(stand_ins)
    try:
        import compressai
    finally:
        for name, mod in stand_ins.items():
            if sys.modules.get(name) is mod:
                del sys.modules[name]
    return compressai
