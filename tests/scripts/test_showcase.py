"""The README's main job and the watch script run end to end (their time is printed, not
asserted)."""

import json
import re
import time

import pytest
from PIL import Image

from agents import pretrained


def test_the_main_job_runs_end_to_end(run_script, tmp_path):
    start = time.perf_counter()
    out = run_script("showcase.py", "--out", tmp_path)
    print(f"scripts/showcase.py: {time.perf_counter() - start:.1f} s")
    summary = json.loads((tmp_path / "showcase.json").read_text())
    rows = summary["rows"]
    assert list(rows) == ["fwm-32-16", "lstm-64", "random", "shortest path (knows graph)"]
    for name in ("fwm-32-16", "lstm-64"):  # the default protocol is the cards'
        card = pretrained.card(name)["evaluation"]
        for split in ("train", "test"):
            assert round(rows[name][split]["mean"], 2) == card[f"sampled/{split}"]["mean"]
    assert "fwm-32-16" in out.stdout and "shortest path" in out.stdout
    for name in ("train_vs_test.png", "fwm-test-graph0.gif"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_watch_agent_writes_the_gif_it_reports(run_script, tmp_path):
    out = run_script("watch_agent.py", "lstm-64", "--split", "train", "--graphs", "7",
                     "--greedy", "--dpi", "40", "--out", tmp_path / "w.gif")
    # the GIF's own length, not the time it took to make
    frames, seconds = re.search(r": (\d+) frames, ([\d.]+) s long at 2 frames/s",
                                out.stdout).groups()
    assert float(seconds) == pytest.approx(int(frames) / 2, abs=0.05)
    with Image.open(tmp_path / "w.gif") as im:
        assert im.n_frames == int(frames) > 31
    bad = run_script("watch_agent.py", "fwm-32-16", "--graphs", "600", expect=2)
    assert "--graphs must lie in [0, 600)" in bad.stderr
