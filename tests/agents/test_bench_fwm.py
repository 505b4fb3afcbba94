"""scripts/bench_fwm.py runs end to end with a tiny budget and prints its table."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_bench_fwm_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_fwm.py"), "--batch", "2", "--bptt", "6",
         "--reference-steps", "2", "--repeats", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    for row in ("fast path", "QA mode", "plain-loop reference", "agent cell", "peak"):
        assert row in result.stdout
