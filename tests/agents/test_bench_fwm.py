"""scripts/bench_fwm.py runs end to end with a tiny budget and prints its table."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_bench_fwm_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_fwm.py"), "--batch", "2", "--bptt", "6",
         "--reference-steps", "2", "--repeats", "1", "--chunk-sizes", "4"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    for row in ("fast path", "QA mode", "chunks of 4", "plain-loop reference", "agent cell",
                "agent cell, chunks of 4", "peak"):
        assert row in result.stdout
