"""The documentation site builds with warnings as errors, and the Python examples of its pages
run as written."""

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# the pages with examples; results.md and journal.md hold commands and numbers, not examples
PAGES = ("index.md", "environments.md", "fwm.md", "agents.md", "catbabi.md", "lm.md",
         "benchmarks.md")
EXAMPLES = [(page, i, block) for page in PAGES
            for i, block in enumerate(re.findall(r"```python\n(.*?)```",
                                                 (ROOT / "docs" / page).read_text(), re.S))]


def test_the_docs_build_strictly(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                             "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                            capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "environments" / "index.html").is_file()


def test_the_pages_have_examples():
    assert {page for page, _, _ in EXAMPLES} >= {"environments.md", "fwm.md", "agents.md"}


@pytest.mark.parametrize("page,index,source", EXAMPLES,
                         ids=[f"{p}-{i}" for p, i, _ in EXAMPLES])
def test_docs_example_runs(page, index, source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples may save files
    exec(compile(source, f"docs/{page} python block {index}", "exec"), {"__name__": "docs"})
