"""Where a training step's time goes on this machine: ``python -m gnuradio.ncsc.bench.trainstep``.

Times the trainer's own step (:func:`..train.train_step`, with the precision and memory
format the trainer would pick here) on random crops of the training photos, then profiles
one more step and splits its time into convolutions (forward and backward), the crops
(data), the optimisers and the rest. The split says what can pay: data loading off the
training thread only helps if the data share is large, a faster convolution path (native
bf16, channels_last) or fewer pixels (smaller crops) when the convolutions dominate. Last
line: one JSON object (``s_per_step``, ``steps_per_hour``, the shares, the setup).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# The modules ``--compile`` compiles: the convolution stacks. The context model's masked
# convolution rewrites its weight in place and the entropy bottleneck is Python-heavy.
COMPILED = ("g_a", "g_s", "h_a", "h_s", "entropy_parameters")


def main(argv: list[str] | None = None) -> int:
    import torch

    from .. import train
    from ..codec.model import NcscModel
    from ..cpuprobe import channels_last_ok, cpu_model

    p = argparse.ArgumentParser(prog="python -m gnuradio.ncsc.bench.trainstep", description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=train.DEFAULT_DATA)
    p.add_argument("--weights", default=str(Path(__file__).resolve().parents[3] / "weights" / "ncsc-mse-q1.pth.gz"))
    p.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--N", type=int, default=128)
    p.add_argument("--quant", choices=train.TRAIN_QUANT, default="mixed")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    p.add_argument("--photos", type=int, default=20, help="photos to crop from (loading all takes a while)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the transforms and the entropy-parameter network first (inductor); the "
                        "warm-up step then includes the compilation")
    args = p.parse_args(argv)
    if args.patch <= 0 or args.patch % 64:
        p.error("--patch must be a positive multiple of 64")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = NcscModel(N=args.N)
    if args.weights and args.N == 128:
        model.load_state_dict(train.load_init(args.weights, model), strict=False)
    model.train_quant = args.quant
    model.freeze_analysis(args.quant == "hard")
    model.slice_train = train.DEFAULT_SLICE_TRAIN
    model.train()
    bf16 = train.use_bf16(args.precision, torch.device("cpu"))
    channels_last = channels_last_ok(bf16)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    _, main_params, aux_params, opt, aux_opt = train.make_optimizers(model)
    if args.compile:
        import torch._inductor.config as inductor_config

        # Inductor turns convolutions channels_last on its own, which crashes the backward pass
        # where the probe refused channels_last (AMD EPYC without AMX): only where it is safe.
        inductor_config.layout_optimization = channels_last
        for name in COMPILED:
            setattr(model, name, torch.compile(getattr(model, name)))
    files = train.list_images(*args.data)[: args.photos]
    bank = train.CropBank(files, args.patch)

    def step():
        t0 = time.perf_counter()
        x = bank.batch(args.batch)
        t1 = time.perf_counter()
        train.train_step(model, model, x, "mse", train.LAMBDAS["mse"], (opt, aux_opt), (main_params, aux_params),
                         bf16, channels_last)
        return t1 - t0, time.perf_counter() - t0

    warmup_s = step()[1]  # first-call allocations and kernel choices (and the compilation)
    times = [step()[1] for _ in range(args.steps)]
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        data_s, total_s = step()
    conv = opt_s = 0.0
    for ev in prof.key_averages():
        name = ev.key
        self_s = ev.self_cpu_time_total / 1e6
        if "conv" in name and name.startswith("aten::"):
            conv += self_s
        elif name.startswith("Optimizer.step") or "adam" in name.lower():
            opt_s += ev.cpu_time_total / 1e6
    profiled = sum(ev.self_cpu_time_total for ev in prof.key_averages()) / 1e6
    s_step = sorted(times)[len(times) // 2]
    res = {"cpu": cpu_model(), "threads": args.threads, "precision": "bf16" if bf16 else "fp32",
           "channels_last": channels_last, "batch": args.batch, "patch": args.patch, "quant": args.quant,
           "s_per_step": float(f"{s_step:.4g}"), "steps_per_hour": round(3600 / s_step, 1),
           "conv_share": round(conv / profiled, 3), "data_share": round(data_s / total_s, 4),
           "optimizer_share": round(opt_s / profiled, 3), "compile": args.compile,
           "warmup_s": float(f"{warmup_s:.4g}")}
    print(f"{res['cpu']}: {res['s_per_step']} s/step ({res['steps_per_hour']} steps/hour), convolutions "
          f"{res['conv_share']:.0%}, data {res['data_share']:.1%}, optimisers {res['optimizer_share']:.0%}",
          file=sys.stderr)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("KMP_WARNINGS", "0")
    sys.exit(main())
