"""Training curves: held-out rate and quality against steps, from the trainer's ``log.csv``.

``python -m gnuradio.ncsc.bench.training --run mse=DIR --run ms-ssim=DIR [--out results]``
writes ``training.png`` and ``training.csv`` (the held-out evaluations only, small enough
to keep in the repository), so a run's progress can be seen without its checkpoints.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from .codec import ANCHORS

QUALITY = {"mse": ("psnr", "PSNR (dB)"), "ms-ssim": ("ms_ssim", "MS-SSIM")}


PAUSE_S = 120  # a longer gap between two logged steps is a stop, not training time


def read_evaluations(path: Path) -> tuple[list[dict], float]:
    """The held-out rows of a trainer log (numbers as floats; empty cells None; ``hours``: the
    training time so far) and the total hours (gaps between logged steps, pauses left out)."""
    rows, seconds, last = [], 0.0, None
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"step", "time", "kind", "bpp", "quality"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} is not a training log (no column {', '.join(sorted(missing))})")
        for r in reader:
            if r["kind"] == "eval":
                row = {k: (float(v) if v not in ("", None) else None) for k, v in r.items() if k != "kind"}
                rows.append({**row, "hours": seconds / 3600})
            elif r["kind"] == "train":
                t = float(r["time"])
                if last is not None and 0 <= t - last < PAUSE_S:
                    seconds += t - last
                last = t
    return rows, seconds / 3600


def parse_run(text: str) -> tuple[str, Path]:
    metric, sep, folder = text.partition("=")
    if not sep or metric not in QUALITY:
        raise argparse.ArgumentTypeError(f"expected METRIC=DIR with METRIC in {sorted(QUALITY)}, got {text!r}")
    return metric, Path(folder)


def plot(runs: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 4), squeeze=False)
    for ax, (metric, ev) in zip(axes[0], runs.items(), strict=True):
        steps = [r["step"] for r in ev]
        ax.plot(steps, [r["bpp"] for r in ev], "o-", color="tab:blue", ms=3, label="held-out bpp")
        ax.axhline(ANCHORS[metric]["bpp"], color="tab:blue", ls=":", lw=1,
                   label="CompressAI q1 on Kodak (fully trained)")
        ax.set_xlabel("training step (batch 8 of 256x256)")
        ax.set_ylabel("bpp", color="tab:blue")
        ax.grid(alpha=0.3)
        key, label = QUALITY[metric]
        q = ax.twinx()
        q.plot(steps, [r["quality"] for r in ev], "s-", color="tab:red", ms=3, label=f"held-out {label}")
        q.axhline(ANCHORS[metric][key], color="tab:red", ls=":", lw=1)
        q.set_ylabel(f"held-out {label} (dotted: Kodak reference)", color="tab:red")
        ax.set_title(f"{metric} model: 4 held-out training photos", fontsize=10)
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.bench.training", description=__doc__.splitlines()[0])
    p.add_argument("--run", type=parse_run, action="append", required=True, metavar="METRIC=DIR",
                   help="a training folder (holding log.csv) and its metric; repeat for both models")
    p.add_argument("--out", default="results", help="folder for training.png and training.csv")
    args = p.parse_args(argv)
    runs, hours = {}, {}
    for metric, folder in args.run:
        log = folder / "log.csv" if folder.is_dir() else folder
        if not log.is_file():
            p.error(f"no training log at {log}")
        runs[metric], hours[metric] = read_evaluations(log)
        if not runs[metric]:
            p.error(f"{log} has no held-out evaluation yet")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "training.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["metric", "step", "training_hours", "heldout_loss", "heldout_bpp", "heldout_quality"])
        for metric, rows in runs.items():
            for r in rows:
                loss = "" if r.get("loss") is None else f"{r['loss']:.5f}"
                w.writerow([metric, int(r["step"]), f"{r['hours']:.2f}", loss, f"{r['bpp']:.5f}",
                            f"{r['quality']:.5f}"])
    plot(runs, out / "training.png")
    last = {m: {"step": int(ev[-1]["step"]), "bpp": ev[-1]["bpp"], "quality": ev[-1]["quality"],
                "hours": round(hours[m], 2)} for m, ev in runs.items()}
    print(json.dumps(last))
    return 0


if __name__ == "__main__":
    sys.exit(main())
