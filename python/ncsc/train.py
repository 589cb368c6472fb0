"""Train an NCSC model: ``python -m gnuradio.ncsc.train --metric mse --out DIR``.

Built to run unattended for hours on a CPU (bf16 autocast, channels_last where this
CPU is proven to run it: :mod:`.cpuprobe`; rate terms in fp32) or a GPU, and to be
stopped and resumed at any time: the checkpoint in ``--out`` is written every
``--save-every`` steps and on SIGTERM/SIGINT. Without a checkpoint it starts from
``--init`` (e.g. the shipped weights) and says which.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .codec.coder import PRECISIONS, native_bf16
from .codec.model import TRAIN_QUANT, NcscModel
from .codec.registry import METRICS, config

LAMBDAS = {m: config(m)["lmbda"] for m in METRICS}  # the registry's quality 1: CompressAI's values
DEFAULT_LR, DEFAULT_AUX_LR = 1e-4, 1e-3
MSSSIM_MIN_SIDE = 160  # pytorch_msssim needs a side > (11 - 1) * 2**4
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}
_SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
DEFAULT_DATA = [str(d) for d in (_SHARED / "train", _SHARED / "train2") if d.is_dir()] or [str(_SHARED / "train")]
DEFAULT_SLICE_TRAIN = 0.7


def list_images(*folders: str | os.PathLike) -> list[Path]:
    """The photos of each folder in turn (sorted within a folder)."""
    files = []
    for folder in folders:
        found = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXT)
        if not found:
            raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_EXT))}) in {folder}")
        files += found
    return files


HELD_OUT = 4  # the last photos of each folder, evaluated, never trained on
CROP_SCALES = (1080, 640)  # the short sides photos are cropped at: details and whole scenes


def split_folders(folders) -> tuple[list[Path], list[Path]]:
    """(training photos, held-out photos): the last HELD_OUT of each folder are held out (a
    folder with no more than that trains on all of them too)."""
    train_files, eval_files = [], []
    for folder in folders:
        found = list_images(folder)
        train_files += found[:-HELD_OUT] or found
        eval_files += found[-HELD_OUT:]
    return train_files, eval_files


def crop_scales(size: tuple[int, int], patch: int) -> list[float]:
    """The scales (at most 1) at which a photo of ``size`` is cropped: its short side brought
    to each of CROP_SCALES, where a ``patch`` still fits."""
    scales = []
    for short in CROP_SCALES:
        s = min(1.0, short / min(size))
        if min(round(size[0] * s), round(size[1] * s)) >= patch:
            scales.append(s)
    return scales


def rescale(im: Image.Image, s: float) -> Image.Image:
    return im.resize((round(im.width * s), round(im.height * s)), Image.BICUBIC) if s < 1 else im


class CropBank:
    """All training photos in memory at two scales; random crops with flips."""

    def __init__(self, files: list[Path], patch: int, seed: int = 0):
        self.patch = patch
        self.rng = random.Random(seed)
        self.images = []
        for f in files:
            im = Image.open(f).convert("RGB")
            self.images += [np.asarray(rescale(im, s)) for s in crop_scales(im.size, patch)]

    def batch(self, n: int) -> torch.Tensor:
        out = np.empty((n, self.patch, self.patch, 3), dtype=np.uint8)
        for i in range(n):
            img = self.images[self.rng.randrange(len(self.images))]
            y = self.rng.randrange(img.shape[0] - self.patch + 1)
            x = self.rng.randrange(img.shape[1] - self.patch + 1)
            crop = img[y : y + self.patch, x : x + self.patch]
            if self.rng.random() < 0.5:
                crop = crop[:, ::-1]
            out[i] = crop
        # contiguous NCHW: a permuted view keeps NHWC strides, i.e. channels_last by the back door,
        # which crashes the backward pass on CPUs where channels_last is not proven (cpuprobe)
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous().float().div_(255.0)


def rd_terms(out: dict, x: torch.Tensor, metric: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(bpp, distortion term, quality): MSE in 255^2 units or 1 - MS-SSIM; quality is PSNR or MS-SSIM."""
    n, _, h, w = x.shape
    bpp = sum(torch.log(v.float()).sum() for v in out["likelihoods"].values()) / (-math.log(2) * n * h * w)
    x_hat = out["x_hat"].float()
    if metric == "mse":
        mse = torch.mean((x_hat - x) ** 2)
        return bpp, 255.0**2 * mse, -10 * torch.log10(mse.detach().clamp_min(1e-10))
    from pytorch_msssim import ms_ssim

    q = ms_ssim(x_hat.clamp(0, 1), x, data_range=1.0)
    return bpp, 1 - q, q.detach()


def load_init(path: str, model) -> dict:
    """A state dict from a training checkpoint or a shipped weight file (.pth / .pth.gz)."""
    from .codec.registry import load_state

    if path.endswith(".gz"):
        state = load_state(Path(path), None)
    else:
        state = torch.load(path, map_location="cpu", weights_only=False)
        state = state.get("model", state)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    state.setdefault("context_prediction.mask", model.context_prediction.mask)
    return state


def shipped_lambda(path: str, default: float) -> float:
    """The lambda a shipped weight file was trained at (its manifest entry), else ``default``."""
    try:
        entries = json.loads((Path(path).parent / "manifest.json").read_text())
    except (OSError, ValueError):
        return default
    return next((float(e["lambda"]) for e in entries.values() if e.get("file") == Path(path).name), default)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.train", description=__doc__.splitlines()[0])
    p.add_argument("--metric", choices=sorted(LAMBDAS), default="mse")
    p.add_argument("--lmbda", type=float, default=None,
                   help="rate-distortion trade-off (default: CompressAI q1; on resume: the checkpoint's, or this "
                        "value when given)")
    p.add_argument("--data", nargs="+", default=DEFAULT_DATA,
                   help="folders of training photos (default: shared/data/train and train2 where present)")
    p.add_argument("--eval-dir", default=None,
                   help="held-out folder (default: the last 4 photos of each --data folder)")
    p.add_argument("--out", required=True, help="checkpoint / log folder (resumed when it holds a checkpoint)")
    p.add_argument("--init", default=None,
                   help="start from this state dict when --out holds no checkpoint (e.g. the shipped weights)")
    p.add_argument("--slice-train", type=float, default=None,
                   help=f"share of batches whose context model sees only a random slice (or nothing), so the "
                        f"hyperprior learns to carry across slice edges (default {DEFAULT_SLICE_TRAIN}; on resume: "
                        f"the checkpoint's, or this value when given)")
    p.add_argument("--N", type=int, default=128)
    p.add_argument("--steps", type=int, default=1_000_000, help="stop after this many total steps")
    p.add_argument("--hours", type=float, default=None, help="stop after this much wall time")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=256)
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default 1e-4; on resume: the checkpoint's, or this value when given)")
    p.add_argument("--aux-lr", type=float, default=None, help="quantile learning rate (default 1e-3; as --lr)")
    p.add_argument("--quant", choices=TRAIN_QUANT, default=None,
                   help="how training stands in for rounding (default mixed; on resume: the checkpoint's, "
                   "or this value when given); hard: a final stage, analysis frozen, all latents rounded")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--lr-patience", type=int, default=4,
                   help="halve the learning rate after this many evaluations without a better held-out loss "
                   "(0: never)")
    p.add_argument("--min-lr", type=float, default=1e-5, help="the plateau rule stops lowering here")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto: bf16 autocast on GPUs and on CPUs with native bf16 (AMX / AVX512-BF16), else fp32 "
                        "(emulated bf16 is ~20x slower)")
    p.add_argument("--no-bf16", action="store_true", help="same as --precision fp32")
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    return p


def checkpoint_quant(ck: dict) -> str:
    """The quantization a checkpoint was trained with; those older than ``--quant`` used noise."""
    return ck.get("quant", "noise")


def set_lr(opt: torch.optim.Optimizer, lr: float | None) -> None:
    if lr is not None:
        for group in opt.param_groups:
            group["lr"] = lr


class Plateau:
    """Halve the learning rate when the held-out loss stops falling (CompressAI's examples
    use ReduceLROnPlateau the same way): a long unattended run then settles by itself."""

    def __init__(self, patience: int, factor: float = 0.5, min_lr: float = 1e-5):
        self.patience, self.factor, self.min_lr = patience, factor, min_lr
        self.best, self.bad = math.inf, 0

    def state_dict(self) -> dict:
        return {"best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad = state["best"], state["bad"]

    def step(self, loss: float, opt: torch.optim.Optimizer) -> float | None:
        """Record one evaluation; returns the new learning rate when it was lowered."""
        if loss < self.best:
            self.best, self.bad = loss, 0
            return None
        self.bad += 1
        if self.patience <= 0 or self.bad < self.patience:
            return None
        self.bad = 0
        old = opt.param_groups[0]["lr"]
        new = max(old * self.factor, self.min_lr)
        if new >= old:
            return None
        set_lr(opt, new)
        return new


def eval_size(height: int, width: int) -> tuple[int, int]:
    """The top-left crop a held-out image is evaluated on: whole 64-px blocks, at most 512x768."""
    return min(height // 64 * 64, 512), min(width // 64 * 64, 768)


def min_side(metric: str) -> int:
    """Smallest image side the loss works on: one 64-px block, or MS-SSIM's five scales."""
    return MSSSIM_MIN_SIDE + 1 if metric == "ms-ssim" else 64


@torch.no_grad()
def evaluate(model, files, metric, device, lmbda: float) -> dict:
    model.eval()
    bpps, quals, losses = [], [], []
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB"))
        h, w = eval_size(*img.shape[:2])
        x = torch.from_numpy(img[:h, :w].copy()).permute(2, 0, 1)[None].float().div(255).to(device)
        bpp, dist, q = rd_terms(model(x), x, metric)
        bpps.append(float(bpp))
        quals.append(float(q))
        losses.append(float(lmbda * dist + bpp))
    model.train()
    return {"bpp": float(np.mean(bpps)), "quality": float(np.mean(quals)), "loss": float(np.mean(losses))}


class Distributed:
    """Data-parallel training across processes started by ``torchrun --nproc_per_node N`` (gloo on
    CPUs, NCCL on GPUs); a single process when torchrun did not start this one.

    The model is wrapped in torch's DistributedDataParallel, which averages the gradients of the
    rate-distortion loss across processes. The entropy bottleneck's quantiles are left out of it
    (their auxiliary loss is a second backward pass outside the forward, which DDP's reducer
    cannot follow) and averaged here instead. Process 0 alone logs, evaluates and saves; the
    learning rate it decides is sent to the others."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world > 1
        if self.enabled:
            import torch.distributed as dist

            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self) -> torch.device:
        if torch.cuda.is_available():
            return torch.device("cuda", self.local_rank if self.enabled else 0)
        return torch.device("cpu")

    def wrap(self, model, ignore: set[str]):
        """The module to call for the forward pass: DDP around ``model`` when distributed."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, sorted(ignore))
        ids = [self.local_rank] if torch.cuda.is_available() else None
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    def average_grads(self, params) -> None:
        if not self.enabled:
            return
        import torch.distributed as dist

        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad.div_(self.world)

    def broadcast_lr(self, opt) -> None:
        if not self.enabled:
            return
        import torch.distributed as dist

        t = torch.tensor([opt.param_groups[0]["lr"]], dtype=torch.float64, device=self.device())
        dist.broadcast(t, 0)
        set_lr(opt, float(t.item()))

    def any(self, flag: bool) -> bool:
        """Whether any process says so: they stop together (a clock or a signal seen by one alone
        would leave the others waiting in the next gradient exchange)."""
        if not self.enabled:
            return bool(flag)
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=self.device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.destroy_process_group()


def make_optimizers(model, lr: float | None = None, aux_lr: float | None = None):
    """(aux names, main params, aux params, Adam for the rate-distortion loss, Adam for the
    entropy bottleneck's quantiles): the quantiles learn from their own auxiliary loss only."""
    aux_names = {n for n, _ in model.named_parameters() if n.endswith(".quantiles")}
    main_params = [p for n, p in model.named_parameters() if n not in aux_names]
    aux_params = [p for n, p in model.named_parameters() if n in aux_names]
    return (aux_names, main_params, aux_params, torch.optim.Adam(main_params, lr=lr or DEFAULT_LR),
            torch.optim.Adam(aux_params, lr=aux_lr or DEFAULT_AUX_LR))


def use_bf16(precision: str, device: torch.device) -> bool:
    """bf16 autocast: asked for, or ``auto`` on GPUs and on CPUs with native bf16 (emulated
    bf16 is ~20x slower)."""
    return precision == "bf16" or (precision == "auto" and (device.type == "cuda" or native_bf16()))


def train_step(net, model, x: torch.Tensor, metric: str, lmbda: float, opts, params, bf16: bool,
               channels_last: bool, ddp: Distributed | None = None):
    """One optimisation step on batch ``x``: the rate-distortion loss through ``net`` (the model,
    or DDP around it), gradient clipping, then the entropy bottleneck's auxiliary loss.
    Returns (loss, bpp, quality, aux) as tensors."""
    opt, aux_opt = opts
    main_params, aux_params = params
    x = x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = net(x)
    bpp, dist, qual = rd_terms(out, x, metric)
    loss = lmbda * dist + bpp
    opt.zero_grad(set_to_none=True)
    aux_opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(main_params, 1.0)
    opt.step()
    aux = model.aux_loss()
    aux.backward()
    if ddp is not None:
        ddp.average_grads(aux_params)
    aux_opt.step()
    return loss, bpp, qual, aux


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.lmbda is not None and not args.lmbda > 0:
        parser.error("--lmbda must be positive")
    if args.patch <= 0 or args.patch % 64:
        parser.error("--patch must be a positive multiple of 64 (the model downsamples by 64)")
    if args.slice_train is not None and not 0 <= args.slice_train <= 1:
        parser.error("--slice-train must be within [0, 1]")
    if args.patch < min_side(args.metric):
        parser.error(f"--patch must exceed {MSSSIM_MIN_SIDE} for ms-ssim (5 scales of an 11-tap window)")
    from tqdm import tqdm

    if args.threads:
        torch.set_num_threads(args.threads)
    ddp = Distributed()
    device = ddp.device()
    lmbda = LAMBDAS[args.metric] if args.lmbda is None else args.lmbda
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.eval_dir:
        train_files, eval_files = list_images(*args.data), list_images(args.eval_dir)
    else:
        train_files, eval_files = split_folders(args.data)
    for f in eval_files:
        with Image.open(f) as im:
            if min(eval_size(im.height, im.width)) < min_side(args.metric):
                parser.error(f"held-out image {f} ({im.width}x{im.height}) is too small for {args.metric}")
    torch.manual_seed(args.seed)

    model = NcscModel(N=args.N).to(device)
    aux_names, main_params, aux_params, opt, aux_opt = make_optimizers(model, args.lr, args.aux_lr)
    plateau = Plateau(args.lr_patience, min_lr=args.min_lr)
    ckpt_path = out_dir / "checkpoint.pth"
    step = 0
    quant = "mixed"
    slice_train = DEFAULT_SLICE_TRAIN
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        if ck.get("metric", args.metric) != args.metric:
            parser.error(f"{ckpt_path} trains --metric {ck['metric']}, not {args.metric}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        aux_opt.load_state_dict(ck["aux_opt"])
        step = ck["step"]
        quant = checkpoint_quant(ck)
        slice_train = ck.get("slice_train", 0.0)  # older checkpoints trained with the full context
        saved_lmbda = ck.get("lmbda", LAMBDAS[args.metric])
        lmbda = saved_lmbda if args.lmbda is None else args.lmbda
        if lmbda != saved_lmbda:
            # held-out losses at another lambda are not comparable: the plateau rule starts afresh
            print(f"lambda {saved_lmbda:g} -> {lmbda:g}: the learning-rate plateau rule starts afresh", file=sys.stderr)
        elif "plateau" in ck:
            plateau.load_state_dict(ck["plateau"])
        # load_state_dict restores the saved learning rate; an explicit --lr must still win
        set_lr(opt, args.lr)
        set_lr(aux_opt, args.aux_lr)
        print(f"resumed {ckpt_path} at step {step}", file=sys.stderr)
    elif args.init:
        model.load_state_dict(load_init(args.init, model), strict=False)
        if args.lmbda is None:
            lmbda = shipped_lambda(args.init, lmbda)
        print(f"no checkpoint in {out_dir}: initialised from {args.init}", file=sys.stderr)
    else:
        print(f"no checkpoint in {out_dir} and no --init: training from scratch", file=sys.stderr)

    model.train_quant = quant = args.quant or quant
    model.freeze_analysis(quant == "hard")
    model.slice_train = slice_train = slice_train if args.slice_train is None else args.slice_train
    bf16 = use_bf16("fp32" if args.no_bf16 else args.precision, device)
    channels_last = False
    if device.type == "cpu":
        from .cpuprobe import channels_last_ok

        channels_last = channels_last_ok(bf16)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    print(f"training quantization: {quant}, slice-restricted context in {slice_train:.0%} of batches, "
          f"{'bf16' if bf16 else 'fp32'}{' + channels_last' if channels_last else ''}", file=sys.stderr)
    bank = CropBank(train_files, args.patch, seed=args.seed + step + 7919 * ddp.rank)  # other crops per process
    net = ddp.wrap(model, aux_names)

    def save():
        if not ddp.main:
            return
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(),
                    "plateau": plateau.state_dict(), "step": step, "quant": quant, "metric": args.metric,
                    "slice_train": slice_train,
                    "lmbda": lmbda, "N": args.N, "data": str(args.data), "patch": args.patch, "batch": args.batch}, tmp)
        os.replace(tmp, ckpt_path)

    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log_path = out_dir / "log.csv" if ddp.main else Path(os.devnull)
    new_log = not log_path.exists()
    log = open(log_path, "a", newline="")
    writer = csv.writer(log)
    if new_log:
        writer.writerow(["step", "time", "kind", "loss", "bpp", "quality", "aux"])
    t_end = time.time() + args.hours * 3600 if args.hours else None
    bar = tqdm(total=args.steps, initial=step, desc=f"train {args.metric}", dynamic_ncols=True,
               disable=not ddp.main)
    model.train()
    while not ddp.any(step >= args.steps or stop["now"] or (t_end is not None and time.time() >= t_end)):
        x = bank.batch(args.batch).to(device)
        loss, bpp, qual, aux = train_step(net, model, x, args.metric, lmbda, (opt, aux_opt), (main_params, aux_params),
                                          bf16, channels_last, ddp)
        step += 1
        bar.update(1)
        qname = "psnr" if args.metric == "mse" else "msssim"
        bar.set_postfix(loss=f"{loss.item():.3f}", bpp=f"{bpp.item():.3f}", **{qname: f"{qual.item():.4g}"})
        writer.writerow([step, f"{time.time():.0f}", "train", f"{loss.item():.5f}", f"{bpp.item():.5f}",
                         f"{qual.item():.5f}", f"{aux.item():.3f}"])
        if step % args.save_every == 0:
            save()
            log.flush()
        if step % args.eval_every == 0 and not ddp.main:
            ddp.broadcast_lr(opt)  # the rate process 0 decides from its evaluation
        elif step % args.eval_every == 0:
            ev = evaluate(model, eval_files, args.metric, device, lmbda)
            writer.writerow([step, f"{time.time():.0f}", "eval", f"{ev['loss']:.5f}", f"{ev['bpp']:.5f}",
                             f"{ev['quality']:.5f}", ""])
            log.flush()
            bar.write(f"step {step}: held-out loss {ev['loss']:.4f} bpp {ev['bpp']:.4f} quality {ev['quality']:.4f}")
            new_lr = plateau.step(ev["loss"], opt)
            if new_lr is not None:
                bar.write(f"step {step}: held-out loss has not improved in {args.lr_patience} evaluations; "
                          f"learning rate now {new_lr:g}")
            ddp.broadcast_lr(opt)
    save()
    log.close()
    bar.close()
    ddp.close()
    if ddp.main:
        print(f"saved {ckpt_path} at step {step}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
