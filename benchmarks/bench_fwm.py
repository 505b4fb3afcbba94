#!/usr/bin/env python
"""Benchmark the Fast Weight Memory cell: training (forward + backward + Adam) and forward-only
throughput of the catbAbI-sized model, the plain-loop reference for comparison, peak memory, and
env-steps/s of the agent-sized cell, training and acting (one call per step). Not a test:
prints a table.

Example:
    python benchmarks/bench_fwm.py
    python benchmarks/bench_fwm.py --device cuda
    python benchmarks/bench_fwm.py --chunk-sizes 8 16 32 64 --skip-reference   # chunk length
    python benchmarks/bench_fwm.py --skip-reference --compile   # + torch.compile of acting
"""

from __future__ import annotations

import argparse
import platform
import resource
import time

import torch
from torch import nn

from memory.fwm import FWMCell, FWMConfig, settings_options
from training.cli import HelpFormatter, add_machine_options, apply_machine_options


class TokenModel(nn.Module):
    """Embedding -> FWMCell -> linear: the catbAbI model's shape."""

    def __init__(self, vocab: int, config: FWMConfig):
        super().__init__()
        self.embed = nn.Embedding(vocab, config.input_size)
        self.cell = FWMCell(config)
        self.head = nn.Linear(config.hidden_size, vocab)

    def forward(self, tokens, state=None, reference=False, read_mask=None):
        out, state = self.cell(self.embed(tokens), state, reference=reference,
                               read_mask=read_mask)
        return self.head(out), state


def _wall(fn, device: str) -> float:
    """Wall time of one call of ``fn`` (synchronised on CUDA)."""
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def timed(fn, repeats: int, device: str) -> float:
    """Best wall time of ``repeats`` calls (after one warm-up call)."""
    fn()
    return min(_wall(fn, device) for _ in range(repeats))


def timed_pair(fn_a, fn_b, repeats: int, device: str) -> tuple[float, float]:
    """Best wall times of ``fn_a`` and ``fn_b`` over ``repeats`` alternating calls each, after
    one warm-up call each (so that a slow spell of the machine hits both alike)."""
    fn_a(), fn_b()
    times = [(_wall(fn_a, device), _wall(fn_b, device)) for _ in range(repeats)]
    return min(t[0] for t in times), min(t[1] for t in times)


def token_rates(model, tokens, device, repeats, reference=False, read_mask=None):
    """Training and forward-only tokens/s over ``tokens [T + 1, B]``, each call starting from
    the state one segment of the same tokens leaves (as in catbAbI training, where the state is
    carried across segments, so the memory is never empty)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    with torch.no_grad():
        _, state = model(tokens[:-1])

    def train_step():
        logits, _ = model(tokens[:-1], state, reference=reference, read_mask=read_mask)
        loss = loss_fn(logits.flatten(0, 1), tokens[1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()

    def forward():
        with torch.no_grad():
            model(tokens[:-1], state, reference=reference, read_mask=read_mask)

    n = tokens[:-1].numel()
    return n / timed(train_step, repeats, device), n / timed(forward, repeats, device)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--batch", type=int, default=32, help="catbAbI batch size B")
    parser.add_argument("--bptt", type=int, default=200, help="catbAbI segment length T")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed calls per row; the best is reported")
    parser.add_argument("--reference-steps", type=int, default=10,
                        help="sequence length for the (slow) plain-loop reference")
    parser.add_argument("--skip-reference", action="store_true",
                        help="leave out the slow plain-loop reference rows")
    parser.add_argument("--chunk-sizes", type=int, nargs="*", default=[],
                        help="also time both cells at these chunk lengths of the chunk-parallel "
                             "scan (the main rows use FWMConfig's default)")
    parser.add_argument("--compile", action="store_true",
                        help="also time acting with FWMCell.step under torch.compile "
                             "(dynamic shapes; the compile time, tens of seconds on a "
                             "CPU, is printed separately)")
    add_machine_options(parser, device="cpu")
    args = parser.parse_args(argv)
    apply_machine_options(parser, args)
    if any(c < 1 for c in args.chunk_sizes):
        parser.error(f"--chunk-sizes must be positive integers, got {args.chunk_sizes}")
    device = args.device
    torch.manual_seed(0)
    vocab = 180
    rows = []

    cfg = FWMConfig(input_size=256, hidden_size=256, d_fwm=32, n_reads=3, residual=False)
    model = TokenModel(vocab, cfg).to(device)
    tokens = torch.randint(vocab, (args.bptt + 1, args.batch), device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train, fwd = token_rates(model, tokens, device, args.repeats)
    # measured right after the default fast path, before the other variants run
    peak = (torch.cuda.max_memory_allocated() / 2**30 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    rows.append((f"catbAbI cell, fast path (B={args.batch}, T={args.bptt})", train, fwd,
                 "tokens/s"))
    # QA mode reads only at answers: 171,923 of the 4,408,706 training tokens (3.9%)
    answers = torch.rand(args.bptt, args.batch, generator=torch.Generator().manual_seed(0)) < 0.039
    train_qa, fwd_qa = token_rates(model, tokens, device, args.repeats,
                                   read_mask=answers.to(device))
    rows.append(("catbAbI cell, QA mode (reads at 3.9% of positions)", train_qa, fwd_qa,
                 "tokens/s"))
    for size in args.chunk_sizes:
        model.cell.config.chunk_size = size
        train_c, fwd_c = token_rates(model, tokens, device, args.repeats)
        rows.append((f"catbAbI cell, chunks of {size}", train_c, fwd_c, "tokens/s"))
    model.cell.config.chunk_size = cfg.chunk_size
    if not args.skip_reference:
        short = tokens[: args.reference_steps + 1]
        ref_train, ref_fwd = token_rates(model, short, device, 1, reference=True)
        rows.append((f"catbAbI cell, plain-loop reference (T={args.reference_steps})",
                     ref_train, ref_fwd, "tokens/s"))

    agent_cfg = FWMConfig(input_size=17, hidden_size=32, d_fwm=16, n_reads=3, residual=True,
                          **settings_options("authors-write", 16))  # the agents' default
    agent = FWMCell(agent_cfg).to(device)
    head = nn.Linear(32, 4).to(device)
    opt = torch.optim.Adam([*agent.parameters(), *head.parameters()], lr=1e-3)
    obs = torch.randn(30, 600, 17, device=device)

    def agent_train(final_state=True):
        out, _ = agent(obs, final_state=final_state)
        loss = head(out).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def agent_forward():
        with torch.no_grad():
            agent(obs)

    n = obs.shape[0] * obs.shape[1]
    # a call of the agent cell takes a fraction of a second: best of 10 at least
    agent_repeats = max(10, args.repeats)
    rows.append(("agent cell (LSTM 32, d_FWM 16, B=600, T=30)",
                 n / timed(agent_train, agent_repeats, device),
                 n / timed(agent_forward, agent_repeats, device), "env-steps/s"))
    # the A2C update runs the rollout with final_state=False: F_T is not formed
    rows.append(("agent cell, final state not formed (the A2C update)",
                 n / timed(lambda: agent_train(False), agent_repeats, device), float("nan"),
                 "env-steps/s"))
    # acting: one call per env step, episode starts at step 0 as in the paper's rollouts
    starts = torch.ones(obs.shape[1], dtype=torch.bool, device=device)

    def act(one_step):
        with torch.no_grad():
            state = None
            for t in range(obs.shape[0]):
                state = one_step(obs[t], state, starts if t == 0 else None)

    def low_rank(x, state, reset):  # FWMCell.step: the memory in low-rank form
        return agent.step(x, state, reset)[1]

    def plain(x, state, reset):  # a one-step forward: F formed and read at every step
        return agent(x[None], state, None if reset is None else reset[None])[1]

    # alternate the two paths, best of agent_repeats each
    best_low, best_plain = timed_pair(lambda: act(low_rank), lambda: act(plain),
                                      agent_repeats, device)
    rows.append(("agent cell acting, step() (low-rank memory)", float("nan"), n / best_low,
                 "env-steps/s"))
    rows.append(("agent cell acting, forward() with T=1 (F every step)", float("nan"),
                 n / best_plain, "env-steps/s"))
    if args.compile:
        compiled_step = torch.compile(agent.step, dynamic=True)

        def compiled(x, state, reset):
            return compiled_step(x, state, reset)[1]

        start = time.perf_counter()
        act(compiled)  # the first call compiles
        print(f"torch.compile of FWMCell.step: first rollout (compiling) took "
              f"{time.perf_counter() - start:.1f} s")
        best_eager, best_compiled = timed_pair(lambda: act(low_rank), lambda: act(compiled),
                                               agent_repeats, device)
        rows.append(("agent cell acting, step(), eager (paired with the next row)", float("nan"),
                     n / best_eager, "env-steps/s"))
        rows.append(("agent cell acting, step() under torch.compile", float("nan"),
                     n / best_compiled, "env-steps/s"))
    for size in args.chunk_sizes:
        agent.config.chunk_size = size
        rows.append((f"agent cell, chunks of {size}", n / timed(agent_train, agent_repeats, device),
                     n / timed(agent_forward, agent_repeats, device), "env-steps/s"))
    agent.config.chunk_size = agent_cfg.chunk_size

    print(f"device={device} ({platform.processor() or platform.machine()}), torch "
          f"{torch.__version__}, threads={torch.get_num_threads()}")
    print(f"| {'model':<58} | {'train':>10} | {'forward':>10} | unit |")
    print(f"|{'-' * 60}|{'-' * 12}|{'-' * 12}|------|")
    for name, tr, fw, unit in rows:
        tr_text, fw_text = (f"{x:>10,.0f}" if x == x else f"{'-':>10}" for x in (tr, fw))  # nan: -
        print(f"| {name:<58} | {tr_text} | {fw_text} | {unit} |")
    kind = "GPU memory allocated" if device == "cuda" else "resident memory of the process"
    print(f"peak {kind} after the catbAbI fast-path runs: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
