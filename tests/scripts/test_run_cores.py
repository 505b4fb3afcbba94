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
