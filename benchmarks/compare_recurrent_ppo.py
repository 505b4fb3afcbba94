"""Peer comparison in one process: sb3-contrib's ``RecurrentPPO`` (``MlpLstmPolicy``) against
our ``RecurrentPPO`` with an LSTM, a GRU and the FWM core, with the same PPO settings, env and
env steps, and our ``RecurrentA2C`` FWM agent beside them.

Example::

    python benchmarks/compare_recurrent_ppo.py --timesteps 1800000 --out runs/ppo_vs_fwm.json

All train on the 600 training graphs (env i on graph i, 30-step episodes) and are then
evaluated on the 600 training and the 600 held-out test graphs (one episode each, with sampled
and with greedy actions), and their training speed is reported in env steps per second. The
PPO agents share one configuration: sb3-contrib's defaults (clip 0.2, GAE 0.95) except
rollouts of one episode (``n_steps=30``), the paper's discount 0.9 and entropy coefficient
0.03, minibatches of 100 episodes and 4 epochs (10 epochs of 128-step minibatches would take
hours on 600 envs); LSTM and GRU of ``--hidden`` units (256 by default, sb3-contrib's default
width), the FWM agent's LSTM 32 + FWM 16, and the same actor and critic heads on every
policy (``--net-arch``: SB3's 64-64 MLPs by default; none: linear heads, as in the paper's
agent). sb3-contrib's default policy has separate actor and critic LSTMs (twice the recurrent
arithmetic of ours); ``contrib-lstm-shared`` is its policy with one LSTM for both
(``shared_lstm=True``: the network of ours, except that its value loss does not train the
LSTM). ``--agents`` picks a subset.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from agents.a2c import PAPER_PRESET, RecurrentA2C
from agents.callbacks import mean_episode_rewards
from agents.ppo import RecurrentPPO as OurRecurrentPPO
from agents.vec_env import make_metro_vec_env
from training.cli import HelpFormatter, add_machine_options, apply_machine_options

AGENTS = ("contrib-lstm", "contrib-lstm-shared", "ppo-lstm", "ppo-gru", "ppo-fwm", "a2c-fwm")


def evaluate(model, n_envs: int = 600) -> dict[str, float]:
    """Mean reward of one episode on each of the first ``n_envs`` train and test graphs, with
    sampled actions (as in training and in ``train_agent.py``'s curves) and greedy ones."""
    envs = {"train": make_metro_vec_env("MetroPOMDP-v0", num_envs=n_envs),
            "test": make_metro_vec_env("MetroPOMDP-Test-v0", num_envs=n_envs)}
    out = {}
    for kind, deterministic in (("sampled", False), ("greedy", True)):
        for split, reward in mean_episode_rewards(model, envs, deterministic=deterministic).items():
            out[f"{split}_reward_{kind}"] = reward
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--timesteps", type=int, default=1_800_000, help="env steps per agent")
    p.add_argument("--n-envs", type=int, default=600, help="parallel training envs")
    p.add_argument("--eval-envs", type=int, default=600, help="graphs per evaluation set")
    p.add_argument("--seed", type=int, default=0, help="seed of both agents and their envs")
    p.add_argument("--hidden", type=int, default=256,
                   help="width of the LSTMs (sb3-contrib's and ours) and of the GRU; the FWM "
                        "agent keeps the paper's LSTM 32 + FWM 16")
    p.add_argument("--net-arch", type=int, nargs="*", default=[64, 64],
                   help="actor and critic MLP widths of every policy, sb3-contrib's and ours "
                        "(SB3's net_arch); none: linear heads on the recurrent core's output, "
                        "as in the paper's agent")
    p.add_argument("--agents", nargs="+", default=list(AGENTS),
                   help="which agents to train, in this order")
    p.add_argument("--out", default=None, help="JSON file for the results")
    add_machine_options(p, device="cpu", keep_memory=False)
    args = p.parse_args(argv)
    apply_machine_options(p, args)
    if args.hidden < 1:
        p.error(f"--hidden must be a positive width, got {args.hidden}")
    if any(width < 1 for width in args.net_arch):
        p.error(f"--net-arch widths must be positive, got {args.net_arch}")
    try:
        from sb3_contrib import RecurrentPPO
    except ImportError as err:
        raise SystemExit("this comparison needs sb3-contrib: pip install sb3-contrib") from err
    results = {}
    env = make_metro_vec_env("MetroPOMDP-v0", num_envs=args.n_envs)
    batch = 30 * min(100, args.n_envs)  # minibatches of 100 whole episodes
    ppo = dict(n_steps=30, batch_size=batch, n_epochs=4, gamma=0.9, ent_coef=0.03,
               seed=args.seed, device=args.device)
    heads = args.net_arch

    def ours(core, hidden):
        return lambda: OurRecurrentPPO("RecurrentActorCriticPolicy", env, **ppo,
                                       policy_kwargs={"core": core, "hidden_size": hidden,
                                                      "net_arch": heads})

    h = args.hidden
    agents = {
        "contrib-lstm": (f"RecurrentPPO MlpLstmPolicy, LSTM {h} (sb3-contrib)", lambda:
                         RecurrentPPO("MlpLstmPolicy", env, **ppo,
                                      policy_kwargs=dict(lstm_hidden_size=h,
                                                         net_arch=heads))),
        "contrib-lstm-shared": (f"RecurrentPPO MlpLstmPolicy, one LSTM {h} for actor and "
                                "critic (sb3-contrib)", lambda: RecurrentPPO(
                                    "MlpLstmPolicy", env, **ppo, policy_kwargs=dict(
                                        lstm_hidden_size=h, net_arch=heads, shared_lstm=True,
                                        enable_critic_lstm=False))),
        "ppo-lstm": (f"RecurrentPPO LSTM {h} (ours)", ours("lstm", h)),
        "ppo-gru": (f"RecurrentPPO GRU {h} (ours)", ours("gru", h)),
        "ppo-fwm": ("RecurrentPPO FWM-32-16 (ours)", ours("fwm", 32)),
        "a2c-fwm": ("RecurrentA2C FWM-32-16, the paper's preset (ours)", lambda: RecurrentA2C(
            "FWMPolicy", env, seed=args.seed, device=args.device,
            policy_kwargs={"net_arch": heads}, **PAPER_PRESET)),
    }
    unknown = set(args.agents) - set(agents)
    if unknown:
        p.error(f"--agents must be among {list(agents)}, got {sorted(unknown)}")
    for key in args.agents:
        name, make = agents[key]
        model = make()
        start = time.perf_counter()
        model.learn(args.timesteps, progress_bar=False)
        wall = time.perf_counter() - start
        results[name] = {"timesteps": model.num_timesteps, "wall_s": round(wall, 1),
                         "env_steps_per_s": round(model.num_timesteps / wall, 1),
                         "parameters": sum(q.numel() for q in model.policy.parameters()),
                         **evaluate(model, args.eval_envs)}
        print(name, json.dumps(results[name]), flush=True)
    summary = {"seed": args.seed, "n_envs": args.n_envs, "hidden": h, "net_arch": heads,
               "device": args.device,
               "threads": torch.get_num_threads(), "results": results}
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=2)
    return summary


if __name__ == "__main__":
    main()
