"""The distribution installs as a plain (non-editable) wheel into a clean environment, with
its package data, and its generic top-level names (``agents``, ``memory``, ``training``, ``qa``, ``lm``)
import from there."""

import os
import pathlib
import subprocess
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("metro_pomdp", "agents", "memory", "memory/fwm", "memory/delta", "training", "qa",
            "lm")


def test_wheel_installs_into_a_clean_venv_with_its_package_data(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(tmp_path / "dist"), str(ROOT)], check=True, timeout=300,
                   capture_output=True)
    wheel, = (tmp_path / "dist").glob("metro_fwm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in PACKAGES:
        assert f"{package}/py.typed" in names, f"{package}/py.typed is not in {wheel.name}"
        assert f"{package}/__init__.py" in names
    assert not any(n.startswith(("tests/", "scripts/", "docs/")) for n in names)
    for agent in ("fwm-32-16", "lstm-64"):  # the shipped agents are package data
        assert {f"agents/pretrained/{agent}.pt", f"agents/pretrained/{agent}.json"} <= names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, timeout=300,
                   capture_output=True)
    # the clean venv has the project and nothing else; its dependencies come from this
    # environment's site-packages, put after the venv's own on the path
    deps = next(p for p in sys.path if p.endswith("site-packages"))
    probe = ("import agents, memory, lm, metro_pomdp, qa, training\n"
             "import importlib.resources as r\n"
             "for m in (agents, memory, lm, metro_pomdp, qa, training):\n"
             "    assert r.files(m).joinpath('py.typed').is_file(), m\n"
             "    print(m.__file__)\n"
             "import gymnasium as gym\n"
             "from agents import pretrained\n"
             "assert pretrained.load('fwm-32-16').num_timesteps > 0\n"
             "print(gym.make('MetroPOMDP-v0').reset(seed=0)[0].shape)\n")
    result = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": deps, "PYTHONNOUSERSITE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    *files, shape = result.stdout.split()
    site = str(venv / "lib")
    assert all(f.startswith(site) for f in files), files  # the installed copy, not the checkout
    assert shape == "(17,)"
