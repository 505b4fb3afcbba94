"""The language-model and data scripts end to end on tiny inputs."""

import io
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import tarfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = os.environ.get("FWM_DATA_DIR", "")


# the paper's PTB settings (appendix H, table 4), beside AWD-LSTM's clip, decay and AR / TAR
PTB_DROPOUTS = {"dropout": 0.4, "dropoute": 0.1, "dropouth": 0.3, "dropouti": 0.5, "wdrop": 0.66}
PTB_TRAIN = {"epochs": 1000, "asgd_epoch": 916, "lr": 0.001, "asgd_lr": 2.0, "clip": 0.25,
             "weight_decay": 1.2e-6, "alpha": 2.0, "beta": 1.0}


def tiny_ptb(root):
    folder = root / "ptb"
    folder.mkdir(parents=True)
    lines = ["the cat sat on the mat", "a dog sat on a log", "the dog saw the cat"] * 20
    for split in ("train", "valid", "test"):
        (folder / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_train_lm_resume_evaluate_and_plot(tmp_path, run_script):
    data = tiny_ptb(tmp_path / "data")
    tiny = ["--corpus", "ptb", "--data-dir", data, "--no-verify", "--embedding-size", "8",
            "--hidden-size", "12", "--layers", "2", "--d-fwm", "4", "--batch-size", "4",
            "--bptt", "10", "--eval-batch-size", "2", "--final-batch-size", "1",
            "--no-progress", "--threads", "1"]
    runs = {}
    for model in ("lstm", "fwm"):
        run_dir = tmp_path / model
        run_script("train_lm.py", "--model", model, "--max-tokens", 200, "--run-dir", run_dir,
                   *tiny)
        first = json.loads((run_dir / "results.json").read_text())
        # the same command with a larger budget resumes from last.pt and continues
        run_script("train_lm.py", "--model", model, "--max-tokens", 400, "--run-dir", run_dir,
                   *tiny, "--eval-train")
        result = json.loads((run_dir / "results.json").read_text())
        assert first["tokens"] >= 200 and result["tokens"] >= 400 > first["tokens"]
        assert result["temperature"] in [0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2]
        for split in ("train", "valid", "test", "valid_tuned", "test_tuned"):
            r = result[split]  # the summaries of one loss, consistently
            assert r["perplexity"] == pytest.approx(math.exp(r["loss"]), rel=1e-9), split
            assert r["bits_per_word"] == pytest.approx(r["loss"] / math.log(2), rel=1e-9)
        if result["temperature"] == 1.0:  # the tuned evaluation is then the plain one
            assert result["test_tuned"]["loss"] == pytest.approx(result["test"]["loss"])
        config = json.loads((run_dir / "config.json").read_text())
        assert config["model"]["memory"] == ("fwm" if model == "fwm" else "none")
        # the PTB preset reaches the model and the trainer: appendix H and table 4
        assert {k: config["model"][k] for k in PTB_DROPOUTS} == PTB_DROPOUTS
        assert {k: config["train"][k] for k in PTB_TRAIN} == PTB_TRAIN
        # --eval-only (the command a skipped evaluation prints) evaluates best.pt again and
        # trains nothing
        last = (run_dir / "last.pt").read_bytes()
        run_script("train_lm.py", "--model", model, "--max-tokens", 400, "--run-dir", run_dir,
                   *tiny, "--eval-only")
        again = json.loads((run_dir / "results.json").read_text())
        assert (run_dir / "last.pt").read_bytes() == last
        assert again["test"] == result["test"] and again["tokens"] == result["tokens"]
        assert again["learn_wall_s"] == result["learn_wall_s"]  # the training's record kept
        runs[model] = run_dir
    curves = tmp_path / "curves.png"
    run_script("plot_lm_curves.py", runs["lstm"], runs["fwm"], "--labels", "LSTM", "FWM",
               "--out", curves)
    assert curves.read_bytes()[:4] == b"\x89PNG"
    bad = run_script("plot_lm_curves.py", runs["lstm"], "--labels", "a", "b", expect=2)
    assert "--labels: 2 names for 1 runs" in bad.stderr
    out = tmp_path / "fig6.png"
    res = run_script("plot_lm_losses.py", runs["lstm"] / "best.pt", runs["fwm"] / "best.pt",
                     "--corpus", "ptb", "--data-dir", data, "--no-verify", "--start", 5,
                     "--length", 20, "--out", out, "--whole", "--window", 10, "--json",
                     tmp_path / "fig6.json")
    assert out.read_bytes()[:4] == b"\x89PNG" and "mean bits per token" in res.stdout
    whole = json.loads((tmp_path / "fig6.json").read_text())["whole"]
    # the 399 targets of the tiny test split, split by recurrence within the 10 before
    assert whole["recurring"]["tokens"] + whole["new"]["tokens"] == whole["all"]["tokens"]
    assert whole["all"]["tokens"] == 399 and 0 < whole["new"]["tokens"] < 200
    assert whole["all"]["difference"] == pytest.approx(
        whole["all"]["LSTM"] - whole["all"]["FWM"], rel=1e-4)
    # a different model size cannot resume the FWM's run
    config = (runs["fwm"] / "config.json").read_text()
    res = run_script("train_lm.py", "--model", "fwm", "--max-tokens", 800, "--run-dir", runs["fwm"],
                     *tiny, "--embedding-size", "16", expect=2)
    assert "cannot be resumed with these settings" in res.stderr
    assert "model embedding_size=" in res.stderr and "(now 16)" in res.stderr
    assert (runs["fwm"] / "config.json").read_text() == config  # the failed resume wrote nothing
    res = run_script("train_lm.py", "--corpus", "ptb", "--data-dir", data, expect=2)
    assert "sha256" in res.stderr and "ptb.train.txt" in res.stderr


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm", "non-finite loss"])
def test_train_lm_stops_with_a_resumable_checkpoint(tmp_path, run_script, monkeypatch, stop,
                                                    ctrl_c_after_optimizer_step):
    """A run of 200 tokens, continued to 400: Ctrl-C after the continuation's second step
    exits 130 with last.pt holding that step; a non-finite loss in its first step exits 1
    naming the loss, with last.pt and best.pt byte for byte those of the good run (the check
    comes before the optimizer step). The same command then finishes the run."""
    import torch

    from training.atomic import torch_load_checkpoint

    data = tiny_ptb(tmp_path / "data")
    run_dir = tmp_path / "run"
    args = ["--corpus", "ptb", "--data-dir", data, "--no-verify", "--model", "fwm",
            "--embedding-size", "8", "--hidden-size", "12", "--layers", "2", "--d-fwm", "4",
            "--batch-size", "4", "--bptt", "10", "--eval-batch-size", "2", "--no-progress",
            "--threads", "1", "--no-final-eval", "--run-dir", run_dir]
    run_script("train_lm.py", *args, "--max-tokens", 200)
    good = {name: (run_dir / name).read_bytes() for name in ("last.pt", "best.pt")}
    batches = torch_load_checkpoint(run_dir / "last.pt")["batches"]
    with monkeypatch.context() as patch:
        if stop in ("ctrl-c", "sigterm"):  # SIGTERM: a cluster scheduler's stop
            sig, code = ((signal.SIGINT, 130) if stop == "ctrl-c" else (signal.SIGTERM, 143))
            ctrl_c_after_optimizer_step(2, sig)
            res = run_script("train_lm.py", *args, "--max-tokens", 400, expect=code)
            assert ("interrupted" if stop == "ctrl-c" else "terminated (SIGTERM)") in res.stderr
            assert "last.pt is resumable" in res.stderr and "Traceback" not in res.stderr
            assert torch_load_checkpoint(run_dir / "last.pt")["batches"] == batches + 2
        else:
            ce = torch.nn.functional.cross_entropy
            patch.setattr(torch.nn.functional, "cross_entropy",
                          lambda *a, **k: ce(*a, **k) * float("nan"))
            res = run_script("train_lm.py", *args, "--max-tokens", 400, expect=1)
            assert f"non-finite loss at batch {batches}" in res.stderr
            assert "Traceback" not in res.stderr
            assert {name: (run_dir / name).read_bytes() for name in good} == good
    run_script("train_lm.py", *args, "--max-tokens", 400)
    assert torch_load_checkpoint(run_dir / "last.pt")["tokens"] >= 400


def test_download_verifies_checksums(tmp_path, run_script):
    bad = tmp_path / "mirror"
    bad.mkdir()
    for split in ("train", "valid", "test"):
        (bad / f"ptb.{split}.txt").write_text("not the treebank\n")
    res = run_script("download_data.py", "ptb", "--data-dir", tmp_path / "d", "--url",
                     bad.as_uri() + "/", expect=1)
    assert "ptb.train.txt" in res.stderr and "fcea919f6cf83f35" in res.stderr
    assert not (tmp_path / "d" / "ptb" / "ptb.train.txt").exists()  # nothing installed
    archive = tmp_path / "babi.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("tasks_1-20_v1-2/README")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    res = run_script("download_data.py", "babi", "--data-dir", tmp_path / "d", "--url",
                     archive.as_uri(), expect=1)
    assert "has no tasks_1-20_v1-2/en-valid-10k/qa1_train.txt" in res.stderr


def test_download_installs_verified_files(run_script):
    if not DATA:
        pytest.skip("FWM_DATA_DIR is not set (.ci/run sets it)")
    ptb = pathlib.Path(DATA).resolve() / "ptb"  # FWM_DATA_DIR set: a missing folder fails
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        res = run_script("download_data.py", "ptb", "--data-dir", tmp, "--url", ptb.as_uri() + "/")
        assert "3 files fetched and verified" in res.stdout
        assert (pathlib.Path(tmp) / "ptb" / "ptb.valid.txt").stat().st_size == 399_782
        res = run_script("download_data.py", "ptb", "--data-dir", tmp, "--url", "file:///nowhere/")
        assert "all 3 files present and verified" in res.stdout


@pytest.mark.slow  # a torchrun launch; the trainer's two-process test runs by default
def test_train_lm_under_torchrun(tmp_path):
    data = tiny_ptb(tmp_path / "data")
    run_dir = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(ROOT / "scripts" / "train_lm.py"), "--corpus", "ptb", "--data-dir",
           str(data), "--no-verify", "--model", "fwm", "--embedding-size", "8",
           "--hidden-size", "12", "--layers", "2", "--d-fwm", "4", "--batch-size", "4",
           "--bptt", "10", "--eval-batch-size", "2", "--max-tokens", "200", "--run-dir",
           str(run_dir), "--no-progress", "--threads", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run_dir / "config.json").read_text())["processes"] == 2
    assert json.loads((run_dir / "results.json").read_text())["tokens"] >= 200
    assert result.stdout.count("valid perplexity") == 1  # the final evaluation ran once



def test_download_offline_and_a_corrupt_corpus_name_the_file(tmp_path, run_script):
    res = run_script("download_data.py", "ptb", "--data-dir", tmp_path / "d", "--url",
                     "file:///nowhere/at/all/", expect=1)
    assert "could not fetch file:///nowhere/at/all/ptb.train.txt" in res.stderr
    assert "Traceback" not in res.stderr and "--url" in res.stderr
    from lm.data import read_words

    bad = tmp_path / "wiki.train.tokens"
    bad.write_bytes(b"fine words\n\xff\xfe broken\n")
    with pytest.raises(ValueError, match=r"wiki\.train\.tokens: not UTF-8 text"):
        read_words(bad)


def test_train_lm_minutes_bound_the_whole_command(tmp_path, run_script):
    """``--minutes`` bounds training, the validation that ends it and the final evaluation:
    with valid and test splits whose evaluation at batch size 1 takes longer than the whole
    budget, the command ends within the budget plus a margin of 3 s, the validation ran, and
    the skipped final evaluation is announced with the command that runs it later
    (``--eval-only``, tested in test_train_lm_resume_evaluate_and_plot)."""
    import time

    data = tiny_ptb(tmp_path / "data")
    lines = (data / "ptb" / "ptb.train.txt").read_text()
    for split in ("valid", "test"):  # 8,000 tokens each: 4,000 segments of 2 at batch size 1
        (data / "ptb" / f"ptb.{split}.txt").write_text(lines * 20)
    run_dir = tmp_path / "run"
    args = ["--corpus", "ptb", "--data-dir", data, "--no-verify", "--model", "fwm",
            "--embedding-size", "8", "--hidden-size", "12", "--layers", "2", "--d-fwm", "4",
            "--batch-size", "4", "--bptt", "2", "--eval-batch-size", "100", "--epochs", "1000",
            "--no-progress", "--threads", "1", "--run-dir", run_dir]
    t0 = time.monotonic()
    res = run_script("train_lm.py", *args, "--minutes", 0.1)
    wall = time.monotonic() - t0
    assert wall < 6 + 3, (wall, res.stdout)
    assert (run_dir / "best.pt").exists()
    assert "valid_loss" in (run_dir / "progress.csv").read_text()
    assert "the final evaluation (8,000 segments at batch size 1): skipped" in res.stdout
    later = "python scripts/train_lm.py " + " ".join(str(a) for a in args) + " --eval-only"
    assert later in res.stdout, res.stdout
    assert not (run_dir / "results.json").exists()
