#!/usr/bin/env python
"""Every memory core's training speed, in one process, against the FWM's: the catbAbI model's
training step (embedding -> core -> decoder, forward + backward + Adam, the state carried
from the previous segment) in tokens/s, and the MetroPOMDP agent's A2C training in env-steps/s.
Each core is sized to the FWM's parameter count (``memory.size_for_budget``); the rounds
alternate between the cores so that a slow spell of the machine hits all of them alike. Not a
test: prints a table.

Example:
    python benchmarks/bench_cores.py --threads 1
    python benchmarks/bench_cores.py --cores fwm delta-net --rounds 5 --skip-agents
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from torch import nn

import memory
from training.cli import (
    HelpFormatter,
    add_machine_options,
    apply_machine_options,
    positive_int,
)

#: the catbAbI model's sizes (paper section 4.1): embedding and LSTM 256, d_FWM 32
CATBABI = {"embedding": 256, "hidden": 256, "d_fwm": 32, "vocab": 180}
#: the agent's (section 4.2): LSTM 32, d_FWM 16, on MetroPOMDP's 17 observation features
AGENT = {"input": 17, "hidden": 32, "d_fwm": 16}


def catbabi_core(name: str, budget: int | None):
    """The core of the catbAbI model: the FWM at the paper's size, another core at the width
    that matches ``budget`` parameters (None: the FWM's width)."""
    if name == "fwm":
        return memory.make_core("fwm", CATBABI["embedding"], CATBABI["hidden"],
                                d_fwm=CATBABI["d_fwm"], n_reads=3)
    hidden = CATBABI["hidden"] if budget is None else memory.size_for_budget(
        name, CATBABI["embedding"], budget, low=8, high=2048)
    return memory.make_core(name, CATBABI["embedding"], hidden)


class TokenModel(nn.Module):
    def __init__(self, core):
        super().__init__()
        self.embed = nn.Embedding(CATBABI["vocab"], CATBABI["embedding"])
        self.core = core
        self.head = nn.Linear(core.output_size, CATBABI["vocab"])

    def forward(self, tokens, state=None):
        out, state = self.core(self.embed(tokens), state)
        return self.head(out), state


def token_step(model: TokenModel, batch: int, bptt: int, device: str):
    """A function that runs one training step and returns its seconds."""
    tokens = torch.randint(0, CATBABI["vocab"], (bptt + 1, batch), device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with torch.no_grad():
        _, state = model(tokens[:-1])
    loss_fn = nn.CrossEntropyLoss()

    def step() -> float:
        start = time.perf_counter()
        logits, _ = model(tokens[:-1], state)
        loss = loss_fn(logits.flatten(0, 1), tokens[1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return step


def agent_updates(name: str, budget: int, n_envs: int, device: str):
    """A function that runs A2C updates of the agent with core ``name`` (64-64 heads) and
    returns its seconds per update; the agent's parameter count."""
    from agents.a2c import PAPER_PRESET, RecurrentA2C

    def build(hidden: int) -> RecurrentA2C:
        kwargs = {"core": name, "hidden_size": hidden, "net_arch": [64, 64]}
        if name == "fwm":
            kwargs["d_fwm"] = AGENT["d_fwm"]
        return RecurrentA2C("RecurrentActorCriticPolicy", "MetroPOMDP-v0", n_envs=n_envs,
                            policy_kwargs=kwargs, seed=0, device=device, **PAPER_PRESET)

    hidden = AGENT["hidden"]
    if name != "fwm":  # the width whose whole agent (heads included) is nearest
        hidden = memory.nearest_width(lambda h: memory.parameter_count(build(h).policy),
                                      budget, low=4, high=512)
    model = build(hidden)
    model.learn(n_envs * 30)  # warm-up: one update

    def update() -> float:
        start = time.perf_counter()
        model.learn(n_envs * 30, reset_num_timesteps=False)
        return time.perf_counter() - start

    return update, memory.parameter_count(model.policy), hidden


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--cores", nargs="+", default=list(memory.core_names()),
                        choices=list(memory.core_names()), help="cores to time")
    parser.add_argument("--batch", type=positive_int, default=32, help="catbAbI batch size")
    parser.add_argument("--bptt", type=positive_int, default=200, help="catbAbI segment length")
    parser.add_argument("--n-envs", type=positive_int, default=600, help="agent envs")
    parser.add_argument("--rounds", type=positive_int, default=5,
                        help="alternating rounds; the median of each core is reported")
    parser.add_argument("--skip-agents", action="store_true", help="catbAbI rows only")
    parser.add_argument("--json", default=None, help="also write the rows here")
    add_machine_options(parser, device="cpu", keep_memory=False)
    args = parser.parse_args(argv)
    apply_machine_options(parser, args)
    device = args.device
    torch.manual_seed(0)
    fwm_core = catbabi_core("fwm", None)
    budget = memory.parameter_count(fwm_core)
    token, sizes = {}, {}
    for name in args.cores:
        core = fwm_core if name == "fwm" else catbabi_core(name, budget)
        sizes[name] = (memory.parameter_count(core), core.output_size)
        token[name] = token_step(TokenModel(core).to(device), args.batch, args.bptt, device)
    agent, agent_sizes = {}, {}
    if not args.skip_agents:
        fwm_agent, fwm_agent_params, _ = agent_updates("fwm", 0, args.n_envs, device)
        for name in args.cores:
            if name == "fwm":
                agent[name], agent_sizes[name] = fwm_agent, (fwm_agent_params, AGENT["hidden"])
            else:
                fn, params, hidden = agent_updates(name, fwm_agent_params, args.n_envs, device)
                agent[name], agent_sizes[name] = fn, (params, hidden)
    times = {("token", n): [] for n in token} | {("agent", n): [] for n in agent}
    for _ in range(args.rounds):
        for name in args.cores:
            times[("token", name)].append(token[name]())
            if name in agent:
                times[("agent", name)].append(agent[name]())
    tokens = args.batch * args.bptt
    steps = args.n_envs * 30
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {device}; medians of {args.rounds} "
          f"alternating rounds")
    print(f"{'core':<20}{'core params':>12}{'width':>7}{'catbAbI tok/s':>15}{'x FWM':>7}"
          f"{'agent params':>14}{'width':>7}{'env-steps/s':>13}{'x FWM':>7}")
    rows = {}
    for name in args.cores:
        rate = tokens / statistics.median(times[("token", name)])
        row = {"core_parameters": sizes[name][0], "width": sizes[name][1],
               "catbabi_tokens_per_s": rate}
        line = f"{name:<20}{sizes[name][0]:>12,}{sizes[name][1]:>7}{rate:>15,.0f}"
        base = tokens / statistics.median(times[("token", args.cores[0])]) \
            if "fwm" not in token else tokens / statistics.median(times[("token", "fwm")])
        line += f"{rate / base:>7.2f}"
        if name in agent:
            env = steps / statistics.median(times[("agent", name)])
            env_base = steps / statistics.median(times[("agent", "fwm")]) \
                if "fwm" in agent else env
            row.update(agent_parameters=agent_sizes[name][0], agent_width=agent_sizes[name][1],
                       env_steps_per_s=env)
            line += (f"{agent_sizes[name][0]:>14,}{agent_sizes[name][1]:>7}{env:>13,.0f}"
                     f"{env / env_base:>7.2f}")
        rows[name] = row
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": torch.get_num_threads(), "rounds": args.rounds,
                       "rows": rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
