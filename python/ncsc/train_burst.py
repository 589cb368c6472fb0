"""Train on a borrowed accelerator for minutes: ``python -m gnuradio.ncsc.train_burst pack|run|unpack``.

A GPU machine that is lent for a short while (one H200 for about 15 minutes here) gets only
a copy of the working tree (at most 64 MiB, most of it the shipped weights), reaches nothing
else, runs a Python without CompressAI, and sends back at most 8 files of 16 MiB. So:

- ``pack`` (here) writes a folder (default ``.burst``, ignored by git) that fills what the tree
  leaves of that limit: training crops re-encoded as JPEG, the held-out crops, CompressAI's
  pure-Python sources (its two compiled extensions only code bitstreams, which training never
  does: ``run`` stands in for them where they are missing) and, if it fits, the checkpoint to
  start from (else the burst starts from the shipped weights in the tree, and says so);
- ``run`` (there) trains with :mod:`.train` on the GPU (bf16, batch 16) in chunks of a few
  minutes and after each chunk writes the model (fp32) in parts of at most 16 MiB, its log and
  a manifest (sha256, steps, held-out figures) to ``--out``: a run cut short still returns its
  last chunk;
- ``unpack`` (here) checks the parts against the manifest and makes them the checkpoint that
  ``make train`` resumes (fresh optimiser state: Adam's moments stay behind, 100 MB more),
  keeping the previous checkpoint beside it.

The whole procedure, with the device call, is in ``docs/training.md``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

TREE_LIMIT = 64 << 20  # what may travel to the device machine
PART_LIMIT = 16 << 20  # one file back
FILES_BACK = 8
MARGIN = 2 << 20  # what the tree may grow by between packing and the call (logs, notes)
ROOT = Path(__file__).resolve().parents[2]
PACK_VERSION = 1


# -- pack (here) ----------------------------------------------------------------------------------

def travelling_bytes(root: Path, skip: Path) -> int:
    """Bytes of what a device call sends besides ``skip``: tracked files and untracked files that
    git does not ignore."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                         capture_output=True, check=True).stdout
    total = 0
    skip = skip.resolve()
    for name in {n for n in out.decode().split("\0") if n}:
        p = (root / name)
        if p.is_file() and skip not in p.resolve().parents:
            total += p.stat().st_size
    return total


def _copy_package(name: str, dest: Path) -> int:
    """Copy an installed pure-Python package's sources (and its licence) into ``dest``; bytes."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed here: run `make setup` first")
    src = Path(next(iter(spec.submodule_search_locations)))
    n = 0
    for f in sorted(src.rglob("*.py")):
        if "__pycache__" in f.parts:
            continue
        to = dest / name / f.relative_to(src)
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, to)
        n += to.stat().st_size
    for info in src.parent.glob(f"{name}-*.dist-info"):
        for lic in list(info.glob("LICENSE*")) + list(info.glob("licenses/*")):
            shutil.copyfile(lic, dest / name / f"LICENSE-{lic.name}")
            n += lic.stat().st_size
    return n


def _crop_jpeg(img, box, quality: int, subsampling: int = 2) -> bytes:
    """JPEG at ``quality`` (4:2:0 by default: a third more crops in the same bytes, and the
    codec keeps far less colour detail at its rates than either loses)."""
    buf = io.BytesIO()
    img.crop(box).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return buf.getvalue()


def pack(out: Path, data: list[str], metric: str, checkpoint: str | None, budget: int, crop: int = 320,
         quality: int = 92, seed: int = 0, progress: bool = True) -> dict:
    """Fill ``out`` with at most ``budget`` bytes; returns its manifest."""
    from PIL import Image
    from tqdm import tqdm

    from .train import crop_scales, eval_size, rescale, split_folders

    if crop % 64 or crop < 64:
        raise SystemExit("--crop must be a multiple of 64")
    if out.exists():
        shutil.rmtree(out)
    (out / "crops").mkdir(parents=True)
    (out / "heldout").mkdir()
    used = 0
    site = out / "site"
    for name in ("compressai", "pytorch_msssim"):
        if importlib.util.find_spec(name) is not None:
            used += _copy_package(name, site)
    start = None
    if checkpoint:
        import torch

        ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if ck.get("metric", metric) != metric:
            raise SystemExit(f"{checkpoint} trains {ck['metric']}, not {metric}")
        half = {k: v.half() if v.is_floating_point() else v for k, v in ck["model"].items()}
        raw = io.BytesIO()
        torch.save(half, raw)
        blob = gzip.compress(raw.getvalue(), 6)
        if used + len(blob) > budget // 2:
            raise SystemExit(f"the checkpoint's model takes {len(blob) / 1e6:.1f} MB (fp16, gzip), more than half "
                             f"of the {budget / 1e6:.1f} MB the tree leaves for the pack: pack without --checkpoint "
                             f"(the burst then starts from the shipped weights)")
        (out / "start.pth.gz").write_bytes(blob)
        used += len(blob)
        start = {"file": "start.pth.gz", "from": str(checkpoint), "step": int(ck.get("step", 0)),
                 **{k: ck[k] for k in ("quant", "slice_train", "lmbda", "N") if k in ck}}
    train_files, eval_files = split_folders(data)  # the trainer's split
    for i, f in enumerate(eval_files):  # the crop the trainer evaluates, at the same scale
        with Image.open(f) as im:
            im = im.convert("RGB")
            h, w = eval_size(im.height, im.width)
            blob = _crop_jpeg(im, (0, 0, w, h), 95, subsampling=0)
        (out / "heldout" / f"{i:03d}.jpg").write_bytes(blob)
        used += len(blob)
    if used >= budget:
        raise SystemExit(f"nothing left for training crops: {used / 1e6:.1f} MB of {budget / 1e6:.1f} MB used")
    # Round robin over the photos at the trainer's two scales (short side 1080 and 640), one
    # random crop each time, until the budget is spent: as many different photos as possible.
    rng = random.Random(seed)
    scaled = []
    for f in train_files:
        with Image.open(f) as im:  # the header only: no decoding
            scaled += [(f, s) for s in crop_scales(im.size, crop)]
    if not scaled:
        raise SystemExit(f"no training photo has a side of {crop} px")
    n = 0
    cache: dict = {}
    bar = tqdm(total=budget, initial=used, unit="B", unit_scale=True, desc="pack", disable=not progress)
    order = list(range(len(scaled)))
    while True:
        rng.shuffle(order)
        full = False
        for k in order:
            f, s = scaled[k]
            if (f, s) not in cache:
                cache.clear()  # one decoded photo at a time
                with Image.open(f) as im:
                    cache[(f, s)] = rescale(im.convert("RGB"), s)
            im = cache[(f, s)]
            x, y = rng.randrange(im.width - crop + 1), rng.randrange(im.height - crop + 1)
            blob = _crop_jpeg(im, (x, y, x + crop, y + crop), quality)
            if used + len(blob) > budget:
                full = True
                break
            (out / "crops" / f"{n:05d}.jpg").write_bytes(blob)
            used += len(blob)
            n += 1
            bar.update(len(blob))
        if full:
            break
    bar.close()
    manifest = {"version": PACK_VERSION, "metric": metric, "crops": n, "crop": crop, "quality": quality,
                "photos": len(train_files), "heldout": len(eval_files), "bytes": used, "budget": budget,
                "start": start, "data": [str(d) for d in data]}
    (out / "pack.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


# -- run (there) ----------------------------------------------------------------------------------

def _compiled_missing(package_dir: Path) -> bool:
    return not any(package_dir.glob("_CXX*.so")) or not any(package_dir.glob("ans*.so"))


def stand_in_for_compiled(site: Path | None = None) -> bool:
    """Where the CompressAI on the path lacks its compiled extensions (``_CXX``: probability
    tables, ``ans``: the rANS coder; both only code bitstreams), put modules in their place
    that refuse to be used. Returns whether it did. Call before CompressAI is imported."""
    if site is not None and str(site) not in sys.path:
        sys.path.insert(0, str(site))
    spec = importlib.util.find_spec("compressai")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("CompressAI is not on the path: run pack and carry its folder")
    if not _compiled_missing(Path(next(iter(spec.submodule_search_locations)))):
        return False

    def refuse(*args, **kwargs):
        raise RuntimeError("this CompressAI has no compiled coder (a training-only copy): code bitstreams "
                           "where CompressAI is installed")

    cxx = types.ModuleType("compressai._CXX")
    cxx.pmf_to_quantized_cdf = refuse
    ans = types.ModuleType("compressai.ans")
    for name in ("BufferedRansEncoder", "RansEncoder", "RansDecoder"):  # built by every entropy model
        setattr(ans, name, type(name, (), {"__getattr__": lambda self, attr: refuse}))
    sys.modules.setdefault("compressai._CXX", cxx)
    sys.modules.setdefault("compressai.ans", ans)
    return True


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_parts(state: dict, meta: dict, out: Path) -> dict:
    """The model (fp32) in parts of at most 16 MiB, and ``burst.json`` naming them."""
    import torch

    buf = io.BytesIO()
    torch.save({k: v.detach().float().cpu() if v.is_floating_point() else v.cpu() for k, v in state.items()}, buf)
    blob = buf.getvalue()
    step = PART_LIMIT - 4096
    parts = [blob[i : i + step] for i in range(0, len(blob), step)]
    if len(parts) + 2 > FILES_BACK:
        raise RuntimeError(f"the model needs {len(parts)} parts: more than the {FILES_BACK - 2} files left")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("model.part*"):
        old.unlink()
    names = []
    for i, p in enumerate(parts):
        name = f"model.part{i}"
        (out / f"{name}.tmp").write_bytes(p)
        os.replace(out / f"{name}.tmp", out / name)
        names.append(name)
    manifest = dict(meta, parts=names, bytes=len(blob), sha256=_sha256(blob))
    (out / "burst.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def baseline(init: str, heldout: Path, metric: str, lmbda: float, n: int, device: str) -> dict:
    """Held-out figures of the model the burst starts from, beside which its evaluations read."""
    import torch

    from . import train
    from .codec.model import NcscModel

    model = NcscModel(N=n).to(device)
    model.load_state_dict(train.load_init(init, model), strict=False)
    return train.evaluate(model, train.list_images(heldout), metric, torch.device(device), lmbda)


def run(pack_dir: Path, out: Path, minutes: float, chunk: float, batch: int, work: Path,
        steps: int | None = None, n: int = 128, extra: list[str] = ()) -> dict:
    pack_dir = pack_dir.resolve()
    info = json.loads((pack_dir / "pack.json").read_text())
    if info.get("version") != PACK_VERSION:
        raise SystemExit(f"{pack_dir} is a pack of version {info.get('version')}, this runner reads {PACK_VERSION}")
    stubbed = stand_in_for_compiled(pack_dir / "site")
    import torch

    from . import train
    from .bench.training import read_evaluations

    metric = info["metric"]
    start = info.get("start")
    shipped = ROOT / "weights" / f"ncsc-{metric.replace('-', '')}-q1.pth.gz"
    init = str(pack_dir / start["file"]) if start else str(shipped)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop size: the fastest convolutions, found once
    n = int(start.get("N", n)) if start else n
    print(f"burst: {metric} on {torch.cuda.get_device_name(0) if device == 'cuda' else 'the CPU'}, "
          f"{info['crops']} crops, from {start['from'] + ' step ' + str(start['step']) if start else init}"
          f"{'; CompressAI without its compiled coder (training only)' if stubbed else ''}", file=sys.stderr)
    lmbda = (start or {}).get("lmbda") or train.shipped_lambda(init, train.LAMBDAS[metric])
    before = baseline(init, pack_dir / "heldout", metric, lmbda, n, device)
    print(f"burst: held-out before: loss {before['loss']:.4f} bpp {before['bpp']:.4f} "
          f"quality {before['quality']:.4f}", file=sys.stderr)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    common = ["--metric", metric, "--data", str(pack_dir / "crops"), "--eval-dir", str(pack_dir / "heldout"),
              "--out", str(work), "--init", init, "--batch", str(batch), "--eval-every", "500",
              "--save-every", "1000000", "--lr-patience", "0", "--N", str(n)]
    if start:
        common += [a for k in ("quant", "slice_train", "lmbda") if k in start
                   for a in (f"--{k.replace('_', '-')}", str(start[k]))]
    common += list(extra)
    t0 = time.time()
    first_step = int(start["step"]) if start else 0
    manifest = {}
    while True:
        left = minutes * 60 - (time.time() - t0)
        if steps is None and left < 20:
            break
        args = common + (["--steps", str(steps)] if steps is not None
                         else ["--hours", str(min(chunk * 60, left) / 3600)])
        if train.main(args) != 0:
            raise SystemExit("training failed")
        ck = torch.load(work / "checkpoint.pth", map_location="cpu", weights_only=False)
        log = work / "log.csv"
        evals = [{"step": int(r["step"]) + first_step, "loss": r["loss"], "bpp": r["bpp"], "quality": r["quality"]}
                 for r in read_evaluations(log)[0]]
        meta = {"metric": metric, "step": int(ck["step"]) + first_step, "burst_steps": int(ck["step"]),
                "seconds": round(time.time() - t0, 1), "device": device, "batch": batch,
                **{k: ck[k] for k in ("quant", "slice_train", "lmbda", "N", "patch")},
                "start": start or {"from": init, "step": 0}, "before": before, "evals": evals}
        manifest = write_parts(ck["model"], meta, out)
        shutil.copyfile(log, out / "log.csv")
        print(f"burst: step {meta['burst_steps']} after {meta['seconds']:.0f} s; model in {out}", file=sys.stderr)
        if steps is not None:
            break
    return manifest


# -- unpack (here) --------------------------------------------------------------------------------

def read_parts(src: Path) -> tuple[dict, dict]:
    """The manifest and the model of a burst's files, checked against the manifest's hash."""
    import torch

    try:
        manifest = json.loads((src / "burst.json").read_text())
        names = manifest["parts"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"{src} holds no burst manifest (burst.json): {exc}") from exc
    blob = b""
    for name in names:
        if "/" in name or not (src / name).is_file():
            raise SystemExit(f"part {name} of the burst is missing in {src}")
        blob += (src / name).read_bytes()
    if len(blob) != manifest.get("bytes") or _sha256(blob) != manifest.get("sha256"):
        raise SystemExit(f"the burst's parts in {src} do not match its manifest (sha256 {_sha256(blob)}, "
                         f"expected {manifest.get('sha256')}): refusing them")
    return manifest, torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)


def unpack(src: Path, out: Path) -> Path:
    """Make the burst's model the checkpoint in ``out`` that ``train`` resumes."""
    import torch

    from .codec.model import NcscModel
    from .train import make_optimizers

    manifest, state = read_parts(src)
    model = NcscModel(N=int(manifest.get("N", 128)))
    model.load_state_dict(state)  # refuses a model of another shape
    *_, opt, aux_opt = make_optimizers(model)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.pth"
    if ckpt.exists():
        old = json.dumps(manifest["start"])
        keep = out / f"checkpoint.before-burst-{time.strftime('%Y%m%d-%H%M%S')}.pth"
        os.replace(ckpt, keep)
        print(f"kept the previous checkpoint as {keep} (the burst started from {old})", file=sys.stderr)
    tmp = ckpt.with_suffix(".tmp")
    torch.save({"model": state, "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(),
                "step": int(manifest["step"]), "metric": manifest["metric"],
                **{k: manifest[k] for k in ("quant", "slice_train", "lmbda", "N", "patch") if k in manifest},
                "data": "burst", "batch": int(manifest.get("batch", 16)), "burst": {
                    k: manifest[k] for k in ("seconds", "device", "burst_steps", "evals", "start") if k in manifest}},
               tmp)
    os.replace(tmp, ckpt)
    if (src / "log.csv").is_file():
        shutil.copyfile(src / "log.csv", out / f"burst-log-{manifest['step']}.csv")
    return ckpt


# -- command line ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.train_burst", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pk = sub.add_parser("pack", help="here: the folder that travels to the accelerator")
    pk.add_argument("--out", default=str(ROOT / ".burst"))
    pk.add_argument("--metric", choices=("mse", "ms-ssim"), default="mse")
    pk.add_argument("--data", nargs="+", default=None, help="training photo folders (default: the trainer's)")
    pk.add_argument("--checkpoint", default=None, help="start from this checkpoint if it fits (else the shipped "
                                                       "weights)")
    pk.add_argument("--budget-mb", type=float, default=None,
                    help="bytes for the pack (default: 64 MiB less what else travels, less 2 MiB)")
    pk.add_argument("--crop", type=int, default=320)
    pk.add_argument("--quality", type=int, default=92)
    pk.add_argument("--seed", type=int, default=0)
    rn = sub.add_parser("run", help="there: train and write the model in parts")
    rn.add_argument("--pack", default=str(ROOT / ".burst"))
    rn.add_argument("--out", required=True, help="where the parts go ($OUT on the device machine)")
    rn.add_argument("--minutes", type=float, default=8.0, help="training time in all")
    rn.add_argument("--chunk", type=float, default=2.5, help="minutes between writes of the parts")
    rn.add_argument("--steps", type=int, default=None, help="train this many steps instead (a test)")
    rn.add_argument("--batch", type=int, default=16)
    rn.add_argument("--work", default="/tmp/ncsc-burst")
    rn.add_argument("--N", type=int, default=128, help="the model's width (a test's tiny model)")
    rn.add_argument("train_args", nargs="*", help="after --: more arguments for the trainer")
    up = sub.add_parser("unpack", help="here: the burst's files -> the checkpoint make train resumes")
    up.add_argument("src", help="the folder the device call brought back")
    up.add_argument("--out", default=str(Path.home() / ".cache" / "gr-ncsc" / "train-mse"))
    args = p.parse_args(argv)
    if args.cmd == "pack":
        from .train import DEFAULT_DATA

        out = Path(args.out)
        budget = int(args.budget_mb * 1e6) if args.budget_mb else TREE_LIMIT - MARGIN - travelling_bytes(ROOT, out)
        if budget <= 0:
            p.error("the working tree leaves no room for a pack")
        m = pack(out, args.data or DEFAULT_DATA, args.metric, args.checkpoint, budget, args.crop, args.quality,
                 args.seed)
        print(json.dumps(m))
    elif args.cmd == "run":
        m = run(Path(args.pack), Path(args.out), args.minutes, args.chunk, args.batch, Path(args.work), args.steps,
                args.N, args.train_args)
        print(json.dumps({k: m.get(k) for k in ("step", "burst_steps", "seconds", "sha256", "before", "evals")}))
    else:
        ckpt = unpack(Path(args.src), Path(args.out))
        print(f"{ckpt}: `make train` resumes it", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
