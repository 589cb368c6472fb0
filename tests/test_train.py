"""The training CLI with a tiny model: it trains, checkpoints, logs, evaluates and resumes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from gnuradio.ncsc import train


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        # smooth images: a random field upsampled, like photos rather than noise
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((256, 192), Image.BICUBIC).save(folder / f"p{i}.png")
    (folder / "LICENSE.txt").write_text("not an image: ignored")
    return folder


def _args(photos, out, *extra):
    return ["--data", str(photos), "--eval-dir", str(photos), "--out", str(out), "--N", "8", "--patch", "192",
            "--batch", "2", "--threads", "1", "--save-every", "1", "--eval-every", "2", *extra]


def _rows(out):
    with open(out / "log.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("metric", ["mse", "ms-ssim"])
def test_trains_logs_and_resumes(photos, tmp_path, metric):
    out = tmp_path / "run"
    assert train.main(_args(photos, out, "--metric", metric, "--steps", "2")) == 0
    ck = torch.load(out / "checkpoint.pth", weights_only=False)
    assert ck["step"] == 2 and ck["metric"] == metric and ck["lmbda"] == train.LAMBDAS[metric]
    rows = _rows(out)
    assert [r["kind"] for r in rows] == ["train", "train", "eval"]
    assert all(np.isfinite(float(r["bpp"])) and float(r["bpp"]) > 0 for r in rows)
    assert float(rows[2]["loss"]) > float(rows[2]["bpp"])  # held-out loss = lambda * D + R
    assert ck["plateau"]["best"] == pytest.approx(float(rows[2]["loss"]), rel=1e-4)
    first = {k: v.clone() for k, v in ck["model"].items()}

    # resume: continues from step 2, and an explicit --lr replaces the saved one
    assert train.main(_args(photos, out, "--metric", metric, "--steps", "3", "--lr", "5e-5")) == 0
    ck = torch.load(out / "checkpoint.pth", weights_only=False)
    assert ck["step"] == 3 and ck["opt"]["param_groups"][0]["lr"] == 5e-5
    assert [r["step"] for r in _rows(out)] == ["1", "2", "2", "3"]
    assert any(not torch.equal(first[k], v) for k, v in ck["model"].items() if v.is_floating_point())

    # resume without --lr keeps the checkpoint's rate
    assert train.main(_args(photos, out, "--metric", metric, "--steps", "4")) == 0
    ck = torch.load(out / "checkpoint.pth", weights_only=False)
    assert ck["step"] == 4 and ck["opt"]["param_groups"][0]["lr"] == 5e-5


def test_plateau_halves_the_rate_after_patience_evaluations():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=4e-5)
    rule = train.Plateau(patience=2, min_lr=1e-5)
    assert [rule.step(v, opt) for v in (1.0, 0.9, 0.95, 0.91)] == [None, None, None, 2e-5]
    assert [rule.step(v, opt) for v in (0.8, 0.85, 0.85, 0.9, 0.9)] == [None, None, 1e-5, None, None]
    assert opt.param_groups[0]["lr"] == 1e-5  # floored at min_lr
    restored = train.Plateau(patience=2)
    restored.load_state_dict(rule.state_dict())
    assert (restored.best, restored.bad) == (0.8, rule.bad)
    never = train.Plateau(patience=0)
    assert all(never.step(1.0, opt) is None for _ in range(10))


def test_patch_sizes_are_checked(photos, tmp_path, capsys):
    with pytest.raises(SystemExit):
        train.main(_args(photos, tmp_path / "run", "--metric", "ms-ssim", "--patch", "128"))
    assert "--patch must exceed 160" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(_args(photos, tmp_path / "run", "--patch", "100"))
    assert "multiple of 64" in capsys.readouterr().err
    Image.new("RGB", (300, 150)).save(photos / "small.png")
    with pytest.raises(SystemExit):
        train.main(_args(photos, tmp_path / "run", "--metric", "ms-ssim"))
    assert "small.png (300x150) is too small for ms-ssim" in capsys.readouterr().err


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        train.main(["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run"), "--N", "8"])


def test_training_curves_from_the_log(photos, tmp_path, capsys):
    from gnuradio.ncsc.bench import training

    out = tmp_path / "run"
    train.main(_args(photos, out, "--steps", "4"))
    capsys.readouterr()
    assert training.main(["--run", f"mse={out}", "--out", str(tmp_path / "res")]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["mse"]["step"] == 4 and 0 <= last["mse"]["hours"] < 0.05
    with open(tmp_path / "res" / "training.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["2", "4"] and all(float(r["heldout_loss"]) > 0 for r in rows)
    assert (tmp_path / "res" / "training.png").stat().st_size > 10_000
    for bad in (["--run", f"psnr={out}"], ["--run", f"mse={tmp_path / 'nothing'}"]):
        with pytest.raises(SystemExit):
            training.main([*bad, "--out", str(tmp_path / "res")])
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a training log"):
        training.main(["--run", f"mse={tmp_path / 'x.csv'}", "--out", str(tmp_path / "res")])


def test_training_hours_leave_out_pauses(tmp_path):
    from gnuradio.ncsc.bench import training

    log = tmp_path / "log.csv"
    rows = ["step,time,kind,loss,bpp,quality,aux", "1,1000,train,1,0.5,20,1", "2,1004,train,1,0.5,20,1",
            "2,1010,eval,1.1,0.4,21,", "3,1014,train,1,0.5,20,1", "4,9000,train,1,0.5,20,1",
            "5,9006,train,1,0.5,20,1"]
    log.write_text("\n".join(rows) + "\n")
    ev, hours = training.read_evaluations(log)
    assert [r["step"] for r in ev] == [2.0] and ev[0]["loss"] == 1.1 and ev[0]["hours"] == pytest.approx(4 / 3600)
    assert hours == pytest.approx((4 + 10 + 6) / 3600)  # the 8000 s stop is not training time


def test_mixed_quantization_decodes_what_the_coder_sees():
    """``mixed``: synthesis gets rounded latents (no noise), yet gradients still reach the analysis."""
    from gnuradio.ncsc.codec.model import NcscModel

    torch.manual_seed(0)
    model = NcscModel(N=8).train()
    model.train_quant = "mixed"
    x = torch.rand(1, 3, 64, 64)
    a, b = model(x), model(x)
    assert torch.equal(a["x_hat"], b["x_hat"])  # no noise on the synthesis path
    assert not torch.equal(a["likelihoods"]["y"], b["likelihoods"]["y"])  # the rate keeps its noise
    with torch.no_grad():
        y = model.g_a(x)
        assert torch.allclose(a["x_hat"], model.g_s(torch.round(y)), atol=1e-6)
    a["x_hat"].square().mean().backward()
    assert model.g_a[0].conv1.weight.grad.abs().sum() > 0  # straight-through gradient
    model.train_quant = "noise"
    assert not torch.equal(model(x)["x_hat"], model(x)["x_hat"])


def test_lambda_is_kept_on_resume_and_a_new_one_restarts_the_plateau_rule(photos, tmp_path, capsys):
    out = tmp_path / "run"
    train.main(_args(photos, out, "--metric", "ms-ssim", "--steps", "2"))
    ck = torch.load(out / "checkpoint.pth", weights_only=False)
    assert ck["lmbda"] == train.LAMBDAS["ms-ssim"]
    ck["plateau"] = {"best": -1.0, "bad": 1}  # a best the new lambda could never beat
    torch.save(ck, out / "checkpoint.pth")
    train.main(_args(photos, out, "--metric", "ms-ssim", "--steps", "4", "--lmbda", "1.5"))
    ck = torch.load(out / "checkpoint.pth", weights_only=False)
    assert ck["lmbda"] == 1.5 and ck["plateau"]["best"] > 0 and ck["plateau"]["bad"] == 0
    eval_rows = [r for r in _rows(out) if r["kind"] == "eval"]
    assert float(eval_rows[-1]["loss"]) == pytest.approx(ck["plateau"]["best"], rel=1e-4)
    train.main(_args(photos, out, "--metric", "ms-ssim", "--steps", "5"))  # no --lmbda: keeps 1.5
    assert torch.load(out / "checkpoint.pth", weights_only=False)["lmbda"] == 1.5
    with pytest.raises(SystemExit):
        train.main(_args(photos, out, "--metric", "mse", "--steps", "6"))
    assert "trains --metric ms-ssim" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(_args(photos, out, "--metric", "ms-ssim", "--lmbda", "0"))


def test_quantization_mode_is_kept_on_resume(photos, tmp_path):
    out = tmp_path / "run"
    train.main(_args(photos, out, "--steps", "1"))
    ck = torch.load(out / "checkpoint.pth", weights_only=False)
    assert ck["quant"] == "mixed"  # the default for new runs
    del ck["quant"]  # a checkpoint from before --quant was trained with noise, and resumes so
    torch.save(ck, out / "checkpoint.pth")
    train.main(_args(photos, out, "--steps", "2"))
    assert torch.load(out / "checkpoint.pth", weights_only=False)["quant"] == "noise"
    train.main(_args(photos, out, "--steps", "3", "--quant", "mixed"))
    assert torch.load(out / "checkpoint.pth", weights_only=False)["quant"] == "mixed"


def test_hard_stage_fits_the_coded_latents_with_the_analysis_frozen(photos, tmp_path):
    from gnuradio.ncsc.codec.model import NcscModel

    torch.manual_seed(0)
    model = NcscModel(N=8)
    x = torch.rand(1, 3, 64, 64)
    model.eval()
    ref = model(x)
    model.train()
    model.train_quant = "hard"
    model.freeze_analysis()
    out = model(x)  # training in this mode sees exactly what evaluation (and the coder) sees
    assert torch.equal(out["x_hat"], ref["x_hat"])
    for k in ("y", "z"):
        assert torch.equal(out["likelihoods"][k], ref["likelihoods"][k])
    (out["x_hat"].square().mean() - torch.log(out["likelihoods"]["y"]).mean()).backward()
    assert all(p.grad is None for p in model.g_a.parameters())
    for part in (model.g_s, model.entropy_parameters):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())

    out_dir = tmp_path / "run"
    train.main(_args(photos, out_dir, "--steps", "1"))
    before = torch.load(out_dir / "checkpoint.pth", weights_only=False)["model"]
    train.main(_args(photos, out_dir, "--steps", "3", "--quant", "hard"))
    ck = torch.load(out_dir / "checkpoint.pth", weights_only=False)
    assert ck["quant"] == "hard"
    assert all(torch.equal(before[k], v) for k, v in ck["model"].items() if k.startswith(("g_a.", "h_a.")))
    assert any(not torch.equal(before[k], v) for k, v in ck["model"].items() if k.startswith("g_s."))


def test_export_writes_weights_and_their_manifest_entry(photos, tmp_path, capsys):
    import hashlib

    from gnuradio.ncsc import export

    out_dir = tmp_path / "run"
    train.main(_args(photos, out_dir, "--metric", "ms-ssim", "--steps", "2", "--quant", "hard"))
    weights = tmp_path / "weights"
    assert export.main([str(out_dir / "checkpoint.pth"), "--metric", "ms-ssim", "--out", str(weights),
                        "--images", str(tmp_path / "no-kodak-here"), "--threads", "1"]) == 0
    entry = json.loads((weights / "manifest.json").read_text())["ncsc-msssim-q1"]
    assert entry["training_steps"] == 2 and entry["final_quantization"] == "hard"
    assert entry["lambda"] == train.LAMBDAS["ms-ssim"] and entry["N"] == 8
    assert entry["sha256"] == hashlib.sha256((weights / entry["file"]).read_bytes()).hexdigest()
    assert "kodak" not in entry  # nothing measured without the images
    assert "/photos (3 photos, 3 for training" in entry["training_data"]  # the trainer's split, recorded


@pytest.mark.slow
def test_data_parallel_training_with_two_processes(photos, tmp_path):
    """``torchrun --nproc_per_node 2`` (gloo on CPU): both processes train in step, process 0 alone
    logs and saves, and the checkpoint resumes in a single process."""
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "gnuradio.ncsc.train", *_args(photos, out, "--steps", "3", "--eval-every", "2")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = _rows(out)
    assert [r["step"] for r in rows if r["kind"] == "train"] == ["1", "2", "3"]  # one writer, not two
    assert torch.load(out / "checkpoint.pth", weights_only=False)["step"] == 3
    assert train.main(_args(photos, out, "--steps", "4")) == 0  # resumes without torchrun
    assert torch.load(out / "checkpoint.pth", weights_only=False)["step"] == 4


def test_distributed_is_a_single_process_without_torchrun(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    d = train.Distributed()
    assert not d.enabled and d.main and d.any(True) and not d.any(False)
    model = torch.nn.Linear(2, 2)
    assert d.wrap(model, set()) is model


def test_step_benchmark_splits_the_time(photos, capsys):
    """bench.trainstep times the trainer's own step and says where it goes, as one JSON line."""
    from gnuradio.ncsc.bench import trainstep

    assert trainstep.main(["--data", str(photos), "--weights", "", "--N", "8", "--batch", "2", "--patch", "64",
                           "--steps", "1", "--photos", "3"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["s_per_step"] > 0 and res["steps_per_hour"] == pytest.approx(3600 / res["s_per_step"], rel=1e-2)
    assert 0 < res["conv_share"] <= 1 and 0 <= res["data_share"] < 1 and res["precision"] in ("fp32", "bf16")


@pytest.mark.slow
def test_step_benchmark_compiles_without_crashing(photos):
    """``bench.trainstep --compile`` in a child process (inductor's own channels_last layout
    crashed the backward pass on a CPU where the probe refuses channels_last): it must finish
    and time the compiled step."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "gnuradio.ncsc.bench.trainstep", "--data", str(photos), "--weights", "",
           "--N", "8", "--batch", "2", "--patch", "64", "--steps", "1", "--photos", "3", "--compile"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["compile"] is True and out["s_per_step"] > 0 and out["warmup_s"] >= out["s_per_step"]
