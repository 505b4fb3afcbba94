"""benchmarks/run_cores.py: every core at the FWM's parameter count, run a few at a time, then
compared; finished runs are not run again."""

import json

import pytest


def test_metro_widths_put_every_agent_at_the_fwm_agent_s_count(run_script):
    """The widths of docs/results.md's MetroPOMDP comparison, within 10% of the FWM-32-16
    agent's 23,460 parameters (a core whose count changed would move its width)."""
    res = run_script("benchmarks/run_cores.py", "metro", "--dry-run", "--seeds", 0, 1)
    assert "each core at the FWM's count (23,460 parameters)" in res.stdout
    for core, width in (("fwm", 32), ("lstm", 40), ("gru", 46), ("linear-transformer", 45),
                        ("delta-net", 45), ("gated-delta-net", 41)):
        line = next(li for li in res.stdout.splitlines() if li.strip().startswith(core + " "))
        assert f"width {width:>7}" in line, line
        share = float(line.rsplit("(", 1)[1].rstrip("%)"))
        assert abs(share) < 10, line
        for seed in (0, 1):
            assert (f"--core {core} --hidden {width} --minutes 40 --n-envs 150 --random-graph "
                    f"--ent-coef 0.3 --threads 1 --seed {seed}") in res.stdout
    # without the FWM among the cores, the budget is still the FWM's
    res = run_script("benchmarks/run_cores.py", "metro", "--dry-run", "--cores", "lstm")
    assert "each core at the FWM's count (23,460 parameters)" in res.stdout
    assert "--core lstm --hidden 40 " in res.stdout and "--core fwm" not in res.stdout


def test_catbabi_runs_every_core_then_compares_them(tmp_path, run_script, toy_babi):
    """Toy catbAbI: two cores at the toy FWM model's count run side by side, each with its test
    at batch size 1; the comparison's table follows; the same command then runs nothing."""
    data = toy_babi
    out = tmp_path / "cores"
    args = ["benchmarks/run_cores.py", "catbabi", "--cores", "gru", "lstm", "--minutes", 1,
            "--out", out, "--data-dir", data, "--no-verify",
            "--train-args=--steps 4 --bptt 20 --batch-size 2 --eval-every 2"]
    res = run_script(*args)
    assert "--model lstm-core" in res.stdout and "| lstm-core |" not in res.stderr
    for core in ("gru", "lstm"):
        test = json.loads((out / f"{core}-s0" / "test.json").read_text())
        assert test["test"]["answers"] == 40
        assert "test accuracy" in (out / f"{core}-s0.log").read_text()
    assert (out / "cores.png").read_bytes()[:4] == b"\x89PNG"
    again = run_script(*args)
    assert again.stdout.count("done before, not run again") == 2
    assert "scripts/train_catbabi.py" not in again.stdout


def test_more_jobs_than_cores_are_refused(run_script):
    import os

    res = run_script("benchmarks/run_cores.py", "metro", "--jobs", (os.cpu_count() or 1) + 1,
                     "--dry-run", expect=2)
    assert "cores: the runs would share cores unevenly" in res.stderr


@pytest.mark.parametrize("bad", [["--jobs", "0"], ["--minutes", "-1"], ["--cores", "lstm2"]])
def test_bad_options_are_named(run_script, bad):
    res = run_script("benchmarks/run_cores.py", "catbabi", *bad, "--dry-run", expect=2)
    assert bad[0] in res.stderr


def test_ctrl_c_stops_the_runs_with_resumable_checkpoints(tmp_path, toy_babi):
    """SIGINT to the runner (a terminal's Ctrl-C reaches it alone: each run has a session of
    its own) is passed on once: the run ends its step, keeps a resumable last.pt and the
    runner exits 130 saying the same command goes on."""
    import pathlib
    import signal
    import subprocess
    import sys
    import time

    root = pathlib.Path(__file__).resolve().parents[2]
    out = tmp_path / "cores"
    proc = subprocess.Popen(
        [sys.executable, str(root / "benchmarks" / "run_cores.py"), "catbabi", "--cores", "gru",
         "--minutes", "10", "--out", str(out), "--data-dir", str(toy_babi), "--no-verify",
         "--train-args=--steps 1000000 --bptt 20 --batch-size 2 --eval-every 20"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = out / "gru-s0" / "last.pt"
    deadline = time.monotonic() + 300
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert last.exists(), proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "the same command goes on" in stderr and "Traceback" not in stderr
    log = (out / "gru-s0.log").read_text()
    assert "last.pt is resumable" in log and "Traceback" not in log
    assert not (out / "gru-s0" / "test.json").exists()
