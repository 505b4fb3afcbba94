"""The README's Python blocks run as written and print what the README says they print.

The training block's budget is the one knob: ``FWM_README_TIMESTEPS`` (default: two updates of
600 envs) replaces its ``model.learn(1_800_000 ...)`` so that the suite stays short; the README
states what the full 100 updates print, and a short run must print a value in the same range.
"""

import os
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
LEARN = "model.learn(1_800_000"


def test_the_readme_has_the_blocks_this_test_knows():
    assert len(BLOCKS) >= 3 and sum(LEARN in b for b in BLOCKS) == 1


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=lambda i: f"block{i}")
def test_readme_block_runs_and_prints_what_the_readme_says(index, tmp_path, monkeypatch,
                                                           capsys):
    monkeypatch.chdir(tmp_path)  # blocks may save files
    source = BLOCKS[index]
    budget = os.environ.get("FWM_README_TIMESTEPS", "36_000")
    source = source.replace(LEARN, f"model.learn({budget}")
    exec(compile(source, f"README.md python block {index}", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out
    if "print(f\"test reward" in BLOCKS[index]:
        low, high = map(float, re.search(r"it prints a test reward between (\d+) and (\d+)",
                                         README.read_text()).groups())
        value = float(re.search(r"test reward (-?[\d.]+)", printed).group(1))
        assert low <= value <= high, f"printed {value}, the README says {low}-{high}"
