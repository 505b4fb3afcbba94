"""The agent scripts run end to end with a tiny budget; Ctrl-C leaves a resumable checkpoint."""

import csv
import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import torch

from agents.a2c import RecurrentA2C

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = ["--n-envs", "4", "--eval-every", "2", "--eval-envs", "8", "--log-every", "1",
        "--no-progress"]


def rows(run_dir):
    with open(run_dir / "progress.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_train_resume_and_plot(tmp_path, run_script):
    run_dir = tmp_path / "fwm"
    # with the entropy coefficient annealed from 0.4 to 0 between updates 1 and 5
    run_script("train_agent.py", "--core", "fwm", "--timesteps", 4 * 30 * 3, "--run-dir",
               run_dir, "--ent-coef", 0.4, "--ent-coef-final", 0, "--ent-anneal", 1, 5, *TINY)
    final = json.loads((run_dir / "final.json").read_text())
    assert final["timesteps"] == 360 and final["updates"] == 3
    assert (run_dir / "model.zip").exists()
    logged = [r for r in rows(run_dir) if r.get("eval/test_reward")]
    # the final numbers are the last evaluation's, as logged
    assert float(logged[-1]["eval/test_reward"]) == pytest.approx(final["test_reward"])
    assert float(logged[-1]["eval/train_reward"]) == pytest.approx(final["train_reward"])
    for png in ("curve.png", "graphs.png"):
        assert (run_dir / png).read_bytes()[:4] == b"\x89PNG"
    first = rows(run_dir)
    # resume: the curve continues (more rows, timesteps keep growing from where they were)
    run_script("train_agent.py", "--resume", run_dir, "--timesteps", 240, "--no-plots", *TINY[2:])
    after = rows(run_dir)
    steps = [int(r["time/total_timesteps"]) for r in after if r["time/total_timesteps"]]
    assert len(after) > len(first) and steps == sorted(steps) and max(steps) == 600
    assert json.loads((run_dir / "final.json").read_text())["updates"] == 5
    # the resumed run continued the schedule: each update's coefficient, in order
    used = [float(r["train/ent_coef"]) for r in after if r.get("train/ent_coef")]
    assert used == pytest.approx([0.4, 0.4, 0.3, 0.2, 0.1])
    assert RecurrentA2C.load(run_dir / "model.zip", device="cpu").ent_coef == pytest.approx(0.1)
    # a second fresh run into the same folder is refused
    err = run_script("train_agent.py", "--timesteps", 120, "--run-dir", run_dir, *TINY, expect=2)
    assert "use --resume" in err.stderr and "--overwrite" in err.stderr
    run_script("train_agent.py", "--timesteps", 120, "--run-dir", run_dir, "--overwrite",
               "--no-plots", *TINY)
    assert len(rows(run_dir)) < len(after)  # a fresh log
    lstm_dir = tmp_path / "lstm"
    run_script("train_agent.py", "--core", "lstm", "--hidden", 16, "--timesteps", 240, "--run-dir",
               lstm_dir, "--no-plots", "--random-graph", "--ent-coef", 0.1, "--gae-lambda", 0.95,
               "--vf-coef", 0.5, *TINY)
    config = json.loads((lstm_dir / "config.json").read_text())
    assert config["random_graph"] is True and config["preset"]["ent_coef"] == 0.1
    assert config["preset"]["gae_lambda"] == 0.95 and config["preset"]["vf_coef"] == 0.5
    model = RecurrentA2C.load(lstm_dir / "model.zip", device="cpu")
    assert (model.gae_lambda, model.vf_coef, model.ent_coef) == (0.95, 0.5, 0.1)
    for flag, value in (("--gae-lambda", 1.5), ("--vf-coef", -1)):
        err = run_script("train_agent.py", "--timesteps", 120, flag, value, *TINY, expect=2)
        assert f"{flag} must be" in err.stderr and str(value) in err.stderr
    for flags, message in ((["--ent-coef-final", 0.1], "go together"),
                           (["--ent-coef-final", 0.1, "--ent-anneal", 5, 5], "BEGIN < FINISH"),
                           (["--ent-coef-final", -1, "--ent-anneal", 0, 5],
                            "argument --ent-coef-final: must be a number >= 0, got -1")):
        err = run_script("train_agent.py", "--timesteps", 120, *flags, *TINY, expect=2)
        assert message in err.stderr
    # the final checkpoint, several episodes per graph, sampled and greedy, reproducibly
    evals = []
    for name in ("a.json", "b.json"):
        run_script("evaluate_agent.py", lstm_dir, "--episodes", 2, "--eval-envs", 3, "--out",
                   tmp_path / name)
        evals.append(json.loads((tmp_path / name).read_text()))
    assert evals[0] == evals[1] and evals[0]["updates"] == 2
    for key in ("sampled/train", "sampled/test", "greedy/train", "greedy/test"):
        assert evals[0][key]["episodes"] == 6 and evals[0][key]["stderr"] > 0
    err = run_script("evaluate_agent.py", tmp_path / "nowhere", expect=2)
    assert "nowhere/model.zip not found" in err.stderr
    # the run shipped as a pretrained agent: its card holds the run's settings
    run_script("make_model_card.py", lstm_dir, "--name", "tiny", "--description", "a test",
               "--command", "train_agent.py ...", "--commit", "0" * 7, "--episodes", 1,
               "--out-dir", tmp_path / "cards")
    card = json.loads((tmp_path / "cards" / "tiny.json").read_text())
    assert (card["core"], card["hidden"], card["random_graph"]) == (config["core"],
                                                                     config["hidden"], True)
    assert card["preset"] == config["preset"] and (tmp_path / "cards" / "tiny.pt").is_file()
    png = tmp_path / "fig5.png"
    out = run_script("plot_training.py", run_dir, lstm_dir, "--out", png)
    assert png.read_bytes()[:4] == b"\x89PNG" and "wrote" in out.stdout


@pytest.mark.slow  # two torchrun launches, ~20 s; the update itself is test_distributed.py's
def test_train_agent_under_torchrun(tmp_path):
    """Two gloo processes of 4 envs each (graphs 0-3 and 4-7): process 0 alone writes the run
    folder; --timesteps counts both processes' env steps (2 x 4 envs x 30 steps x 4
    updates). That the update is the one-process update on all 8 envs is
    tests/agents/test_distributed.py's."""
    run_dir = tmp_path / "ddp"
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc_per_node", "2", str(ROOT / "scripts" / "train_agent.py"),
                             "--timesteps", "960", "--run-dir", str(run_dir), "--no-plots",
                             "--n-envs", "8", *TINY[2:]],
                            capture_output=True, text=True, timeout=300, cwd=ROOT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    final = json.loads((run_dir / "final.json").read_text())
    assert (final["processes"], final["timesteps"], final["updates"]) == (2, 960, 4)
    assert result.stdout.count("2 process(es)") == 1  # one process talks
    assert RecurrentA2C.load(run_dir / "model.zip", device="cpu")._n_updates == 4
    bad = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", str(ROOT / "scripts" / "train_agent.py"),
                          "--timesteps", "960", "--run-dir", str(tmp_path / "odd"),
                          "--n-envs", "5", *TINY[2:]],
                         capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert bad.returncode != 0 and "--n-envs 5 must be divisible by the 2 processes" in bad.stderr


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["ctrl-c", "sigterm"])
def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path, run_script, sig, code):
    """Ctrl-C, or the SIGTERM a cluster scheduler sends before it kills a job, ends the update,
    saves model.zip and exits 130 or 143; the run resumes from it."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train_agent.py"),
                             "--minutes", "10", "--run-dir", str(run_dir), *TINY],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a shell without job control starts background jobs with SIGINT
                            # ignored, and a child would inherit that: give it the default back
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:  # a few updates logged
            if (run_dir / "progress.csv").exists() and len(rows(run_dir)) >= 3:
                break
            time.sleep(0.5)
        assert proc.poll() is None, f"training exited early: {proc.communicate()[1][-2000:]}"
        assert len(rows(run_dir)) >= 3, "no training progress within 300 s"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == code, err[-2000:]
        assert ("interrupted" if sig == signal.SIGINT else "terminated (SIGTERM)") in out
        assert "is resumable" in err and "Traceback" not in err
    finally:  # never leave a training child behind a failed assertion
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert (run_dir / "model.zip").exists()
    result = run_script("train_agent.py", "--resume", run_dir, "--timesteps", 120, "--no-plots",
                        *TINY[2:])
    assert "resumed" in result.stdout





@pytest.mark.parametrize("script", ["train_agent.py", "plot_training.py", "evaluate_agent.py"])
def test_help(script, run_script):
    assert "usage" in run_script(script, "--help").stdout


def test_minutes_axis_adds_up_over_a_resume(tmp_path):
    from agents.plots import read_eval_curve

    fields = ["eval/updates", "eval/train_reward", "eval/test_reward", "time/time_elapsed"]
    rows = [(0, 44, 43, ""), (50, 50, 49, 600), (80, 51, 50, ""), (100, 52, 51, 1200),
            (150, 60, 58, 300)]  # the last row after a resume: SB3's clock restarted
    with open(tmp_path / "progress.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(fields)
        writer.writerows(rows)
    curve = read_eval_curve(str(tmp_path), "eval/minutes")
    assert curve["x"] == [0, 10, 20, 25]  # the untimed evaluation at update 80 is left out
    assert curve["test"] == [43, 49, 51, 58]
    assert read_eval_curve(str(tmp_path))["x"] == [0, 50, 80, 100, 150]


def _train(argv, capsys=None):
    """``train_agent.main(argv)`` in this process; returns its result dict."""
    script = ROOT / "scripts" / "train_agent.py"
    spec = importlib.util.spec_from_file_location("train_agent", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.main([str(a) for a in argv])


def _refused(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        _train(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_other_envs_their_test_variant_and_mismatched_spaces(tmp_path, capsys):
    run = tmp_path / "10x4"
    result = _train(["--env-id", "MetroPOMDP-10x4-v0", "--timesteps", 120, "--run-dir", run,
                     "--no-plots", *TINY])
    assert result["test_env_id"] == "MetroPOMDP-10x4-Test-v0" and result["updates"] == 1
    cart = _train(["--env-id", "CartPole-v1", "--core", "lstm", "--hidden", 8, "--timesteps",
                   120, "--run-dir", tmp_path / "cart", "--no-plots", *TINY])
    assert cart["test_env_id"] == "CartPole-v1" and cart["timesteps"] == 120
    bad = tmp_path / "bad"
    err = _refused(["--env-id", "MetroPOMDP-10x4-v0", "--test-env-id", "MetroPOMDP-Test-v0",
                    "--timesteps", 120, "--run-dir", bad, *TINY], capsys)
    assert "MetroPOMDP-10x4-v0 and --test-env-id MetroPOMDP-Test-v0 have different" in err
    assert not bad.exists(), "a refused run wrote its run dir"
    err = _refused(["--eval-envs", 700, "--timesteps", 120, "--run-dir", bad, "--n-envs", 4],
                   capsys)
    assert "--eval-envs 700: the evaluation sets have 600 graphs" in err and not bad.exists()


def test_a_run_that_died_before_its_first_checkpoint_starts_again(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "progress.csv").write_text("")  # what a crash at start-up used to leave
    err = _refused(["--resume", run, "--timesteps", 120], capsys)
    assert f"no checkpoint {run}/model.zip" in err and f"--run-dir {run}" in err
    result = _train(["--timesteps", 120, "--run-dir", run, "--no-plots", *TINY])
    assert result["updates"] == 1 and (run / "model.zip").exists()
    assert json.loads((run / "config.json").read_text())["n_envs"] == 4


def test_resume_refuses_flags_that_contradict_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    _train(["--timesteps", 120, "--run-dir", run, "--no-plots", *TINY])
    config = (run / "config.json").read_text()
    err = _refused(["--resume", run, "--timesteps", 120, "--core", "lstm", "--n-envs", 16,
                    "--ent-coef", 0.9], capsys)
    for part in ("--core lstm (the run has 'fwm')", "--n-envs 16 (the run has 4)",
                 "--ent-coef 0.9 (the run has 0.03)"):
        assert part in err
    assert (run / "config.json").read_text() == config
    # the run's own values and the flags that may change are accepted
    result = _train(["--resume", run, "--timesteps", 120, "--n-envs", 4, "--core", "fwm",
                     "--eval-every", 3, "--threads", 1, "--no-plots", "--no-progress"])
    assert result["updates"] == 2


def test_help_lists_what_resume_may_change(run_script):
    text = " ".join(run_script("train_agent.py", "--help").stdout.split())
    assert "Flags that --resume accepts: --minutes, --timesteps, --eval-every" in text


def test_terminal_tables_come_every_print_every_updates(tmp_path, capsys):
    _train(["--timesteps", 4 * 30 * 4, "--run-dir", tmp_path / "run", "--print-every", 2,
            "--no-plots", *TINY])
    out = capsys.readouterr().out
    assert out.count("| rollout/") == 2  # 4 updates, a table every 2 (the CSV has every one)
    assert len(rows(tmp_path / "run")) >= 4


def test_a_non_finite_loss_stops_the_script_with_the_last_good_checkpoint(tmp_path,
                                                                          run_script):
    """A learning rate of 1e30 makes the values explode in the first update, and the second
    update's loss is infinite: the script exits 1 naming the loss, before the optimizer step,
    and model.zip is the checkpoint of the last good update: finite parameters, equal to
    those of the same run stopped by its budget after that update."""
    run_dir = tmp_path / "nan"
    res = run_script("train_agent.py", "--lr", "1e30", "--timesteps", 36000, "--n-envs", 4,
                     "--eval-envs", 4, "--eval-every", 100, "--checkpoint-every", 1,
                     "--log-every", 1, "--no-plots", "--no-progress", "--run-dir", run_dir,
                     expect=1)
    assert "non-finite loss" in res.stderr and "last good checkpoint" in res.stderr
    assert not (run_dir / "final.json").exists()
    model = RecurrentA2C.load(run_dir / "model.zip", device="cpu")
    stopped_at = int(res.stderr.split(" at update ")[1].split()[0])
    assert model._n_updates == stopped_at >= 1
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())
    # the same run stopped by its budget after that update holds the same parameters
    good = tmp_path / "good"
    run_script("train_agent.py", "--lr", "1e30", "--timesteps", stopped_at * 4 * 30,
               "--n-envs", 4, "--eval-envs", 4, "--eval-every", 100, "--no-plots",
               "--no-progress", "--run-dir", good)
    reference = RecurrentA2C.load(good / "model.zip", device="cpu")
    assert reference._n_updates == stopped_at
    for p, q in zip(model.policy.parameters(), reference.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_ppo_runs_resumes_and_is_read_back_as_ppo(tmp_path, capsys):
    """``--algo ppo`` trains RecurrentPPO with METRO_PRESET and the PPO flags, keeps them in
    config.json, resumes as PPO (its optimizer and epoch count continued), and the scripts
    that read a run load it with its own class."""
    from agents.ppo import METRO_PRESET, RecurrentPPO
    from agents.runs import RunConfig

    run = tmp_path / "ppo"
    result = _train(["--algo", "ppo", "--n-epochs", 3, "--batch-size", 60, "--timesteps", 240,
                     "--run-dir", run, "--no-plots", *TINY])
    config = json.loads((run / "config.json").read_text())
    assert config["algo"] == "ppo"
    assert {k: config["preset"][k] for k in METRO_PRESET} == {
        **METRO_PRESET, "n_epochs": 3, "batch_size": 60}
    assert result["timesteps"] == 240 and result["updates"] == 2 * 3  # SB3's PPO counts epochs
    model = RecurrentPPO.load(run / "model.zip", device="cpu")
    assert (model.n_epochs, model.batch_size) == (3, 60)
    assert RunConfig.load(run / "config.json").algorithm is RecurrentPPO
    resumed = _train(["--resume", run, "--timesteps", 120, "--no-plots", *TINY[2:]])
    assert resumed["updates"] == 3 * 3 and resumed["timesteps"] == 360
    err = _refused(["--resume", run, "--timesteps", 120, "--algo", "a2c"], capsys)
    assert "--algo a2c (the run has 'ppo')" in err
    # PPO's options are refused without --algo ppo, and a bad minibatch names the rule
    err = _refused(["--n-epochs", 2, "--timesteps", 120, "--run-dir", tmp_path / "x", *TINY],
                   capsys)
    assert "--n-epochs: options of --algo ppo, not of --algo a2c" in err
    err = _refused(["--algo", "ppo", "--batch-size", 45, "--timesteps", 120, "--run-dir",
                    tmp_path / "y", *TINY], capsys)
    assert "--batch-size must be a multiple of the 30-step rollout" in err and "got 45" in err
    # an A2C run's config.json has no algo key: the files of runs from before PPO are unchanged
    _train(["--timesteps", 120, "--run-dir", tmp_path / "a2c", "--no-plots", *TINY])
    assert "algo" not in json.loads((tmp_path / "a2c" / "config.json").read_text())


def test_resume_keeps_the_run_s_cadences_and_threads_unless_given_again(tmp_path, capsys):
    """--resume takes every flag of the run it was started with (options.json), the budget
    excepted; a flag given again wins."""
    spec = importlib.util.spec_from_file_location("_train_agent", ROOT / "scripts" /
                                                  "train_agent.py")
    train_agent = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_agent)
    run_dir = tmp_path / "run"
    train_agent.main([str(a) for a in ["--timesteps", 120, "--run-dir", run_dir, "--threads",
                                       1, "--checkpoint-every", 3, "--no-plots", *TINY]])
    parser = train_agent.build_parser()
    args = train_agent.parse_args(parser, ["--resume", str(run_dir), "--timesteps", "120"])
    assert (args.threads, args.eval_every, args.checkpoint_every, args.no_plots) == (
        1, 2, 3, True)
    assert args.eval_envs == 8 and args.log_every == 1
    args = train_agent.parse_args(parser, ["--resume", str(run_dir), "--timesteps", "120",
                                           "--eval-every", "5"])
    assert args.eval_every == 5 and args.checkpoint_every == 3


@pytest.mark.parametrize("flags, message", [
    (["--ent-coef", "-1"], "argument --ent-coef: must be a number >= 0, got -1"),
    (["--lr", "-0.1"], "argument --lr: must be a positive number, got -0.1"),
    (["--minutes", "0"], "argument --minutes: must be a positive number, got 0"),
    (["--minutes", "nan"], "argument --minutes: must be a positive number, got nan"),
])
def test_bad_numbers_are_refused_by_name(flags, message, run_script):
    res = run_script("train_agent.py", "--timesteps", 120, *flags, *TINY, expect=2)
    assert message in res.stderr


def test_env_on_device_trains_with_torch_envs_and_names_what_it_cannot(tmp_path, run_script):
    """--env-on-device: the training envs are torch tensors on --device (the same numbers as
    numpy's, tests/agents/test_rollout.py); a run logs its episode statistics and finishes.
    A non-MetroPOMDP id is refused by name."""
    run_dir = tmp_path / "run"
    run_script("train_agent.py", "--timesteps", 240, "--run-dir", run_dir, "--no-plots",
               "--env-on-device", "--device", "cpu", *TINY)
    rows = (run_dir / "progress.csv").read_text().splitlines()
    header = rows[0].split(",")
    rewards = [r.split(",")[header.index("rollout/ep_rew_mean")] for r in rows[1:]]
    assert any(rewards), "no episode statistics logged"
    res = run_script("train_agent.py", "--timesteps", 120, "--env-on-device", "--env-id",
                     "CartPole-v1", *TINY, expect=2)
    assert "--env-on-device steps MetroPOMDP envs" in res.stderr


def test_damaged_run_files_are_named_with_what_to_do(tmp_path, run_script):
    """A damaged model.zip or config.json: evaluate_agent.py, watch_agent.py and --resume say
    which file and what to do, without a traceback."""
    run_dir = tmp_path / "run"
    run_script("train_agent.py", "--timesteps", 120, "--run-dir", run_dir, "--no-plots", *TINY)
    good = (run_dir / "model.zip").read_bytes()
    (run_dir / "model.zip").write_bytes(good[:len(good) // 2])  # a copy cut short
    for script, args in (("evaluate_agent.py", [run_dir, "--eval-envs", 2]),
                         ("watch_agent.py", [run_dir, "--out", tmp_path / "w.gif"]),
                         ("train_agent.py", ["--resume", run_dir, "--timesteps", 120])):
        res = run_script(script, *args, expect=2)
        assert f"{run_dir / 'model.zip'} cannot be loaded" in res.stderr, script
        assert "truncated or damaged" in res.stderr and "Traceback" not in res.stderr
    (run_dir / "model.zip").write_bytes(good)
    (run_dir / "config.json").write_text('{"core": "fwm", ')
    for script, args in (("evaluate_agent.py", [run_dir, "--eval-envs", 2]),
                         ("train_agent.py", ["--resume", run_dir, "--timesteps", 120])):
        res = run_script(script, *args, expect=2)
        assert f"{run_dir / 'config.json'} is not valid JSON" in res.stderr, script
        assert "Traceback" not in res.stderr


def test_training_on_several_threads_warns_once():
    """The library warns (once per process) instead of changing the process's thread count."""
    import warnings

    import agents.a2c as a2c
    import agents.on_policy as on_policy

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        on_policy._threads_warned = False
        model = RecurrentA2C("LstmPolicy", "MetroPOMDP-v0", n_envs=2,
                             policy_kwargs={"hidden_size": 4})
        with pytest.warns(a2c.ThreadWarning, match="2 torch threads.*set_num_threads"):
            model.learn(60)
        with warnings.catch_warnings():
            warnings.simplefilter("error", a2c.ThreadWarning)
            model.learn(60)  # once only
        torch.set_num_threads(1)
        on_policy._threads_warned = False
        with warnings.catch_warnings():
            warnings.simplefilter("error", a2c.ThreadWarning)
            model.learn(60)  # one thread: nothing to say
        assert torch.get_num_threads() == 1  # the library leaves the count alone
    finally:
        torch.set_num_threads(threads)


def test_compare_cores_tables_and_plots_run_folders(run_script, tmp_path):
    """The comparison script reads finished run folders (here the committed paper-setting
    FWM run) into a table and a figure."""
    out = tmp_path / "cores.png"
    res = run_script("compare_cores.py", ROOT / "checkpoints" / "fwm-paper-rl-s0", "--out", out,
                     "--json", tmp_path / "cores.json", "--levels", 80, 95)
    table = json.loads((tmp_path / "cores.json").read_text())
    fwm = table["fwm"]
    assert fwm["seeds"] == [0] and fwm["test"]["mean"] == pytest.approx(97.67, abs=0.01)
    assert fwm["minutes_to_80"][0] < fwm["minutes_to_95"][0]
    assert out.read_bytes()[:4] == b"\x89PNG" and "| minutes to 95 |" in res.stdout
    bad = run_script("compare_cores.py", tmp_path, "--out", out, expect=2)
    assert "is not a finished train_agent.py or train_catbabi.py run" in bad.stderr
    # --keep: the small copies give the same table
    run_script("compare_cores.py", ROOT / "checkpoints" / "fwm-paper-rl-s0", "--out", out,
               "--keep", tmp_path / "kept")
    kept = tmp_path / "kept" / "fwm-paper-rl-s0"
    assert not (kept / "model.zip").exists()
    run_script("compare_cores.py", kept, "--out", out, "--json", tmp_path / "again.json",
               "--levels", 80, 95)
    assert json.loads((tmp_path / "again.json").read_text()) == table
    # kept copies kept again into their own folder (a new run added to a committed set) are
    # left as they are
    before = {p.name: p.read_bytes() for p in kept.iterdir()}
    run_script("compare_cores.py", kept, "--out", out, "--keep", tmp_path / "kept")
    assert {p.name: p.read_bytes() for p in kept.iterdir()} == before


def test_compare_cores_lists_and_colours_cores_by_the_registry(run_script, tmp_path):
    """Whatever order the run folders come in, the cores are tabled in the registry's order,
    and a core has one colour in every figure: its place in the registry (catbAbI's
    ``lstm-core`` is the ``lstm`` core), a core not registered after them."""
    runs = sorted((ROOT / "results" / "cores" / "catbabi").iterdir(), reverse=True)
    run_script("compare_cores.py", *runs, "--out", tmp_path / "c.png",
               "--json", tmp_path / "c.json")
    order = list(json.loads((tmp_path / "c.json").read_text()))
    assert order == ["fwm", "lstm-core", "gru", "linear-transformer", "delta-net",
                     "gated-delta-net"]
    spec = importlib.util.spec_from_file_location("_compare", ROOT / "scripts" /
                                                  "compare_cores.py")
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    assert compare.core_colours(["gru", "lstm-core"]) == {"gru": "C2", "lstm-core": "C1"}
    assert compare.core_colours(["my-core", "fwm", "lstm", "lstm-core", "other"]) == {
        "my-core": "C6", "fwm": "C0", "lstm": "C1", "lstm-core": "C7", "other": "C8"}
