"""RecurrentPPO: minibatches of whole env sequences from the rollout's start state, the clipped
update, and learning a task that needs memory with each core."""

import numpy as np
import pytest
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecMonitor

from agents.ppo import RecurrentPPO
from agents.vec_env import GymnasiumVecEnv, make_vec_env

from .test_a2c import CORES, CueRecallVectorEnv, ElmanCore, assert_same_optimizer_state


@pytest.mark.parametrize("core,kwargs", [*CORES, (ElmanCore, {"hidden_size": 8})],
                         ids=["fwm", "lstm", "gru", "user-core"])
def test_learns_a_memory_task_a_memoryless_policy_cannot(core, kwargs):
    """The cue must be carried over 3 steps, through minibatches of 16 of the 64 envs: a
    memoryless policy earns at most 0.5, and so does a broken state (not carried, or taken from
    the wrong rows of the rollout's start state)."""
    torch.manual_seed(0)
    model = RecurrentPPO("RecurrentActorCriticPolicy", CueRecallVectorEnv(num_envs=64, length=4),
                         n_steps=6, batch_size=16 * 6, n_epochs=4, learning_rate=3e-3,
                         ent_coef=0.01, gamma=1.0, seed=0, device="cpu",
                         policy_kwargs={"core": core, "net_arch": [16], **kwargs})
    model.learn(64 * 6 * 50)  # rollouts of 6 steps start inside 4-step episodes
    eval_env = VecMonitor(GymnasiumVecEnv(CueRecallVectorEnv(num_envs=64, length=4)))
    mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=256, deterministic=True)
    assert mean > 0.9, f"{core}: mean reward {mean:.2f} (a memoryless policy gets <= 0.5)"


def test_one_full_batch_epoch_without_clipping_is_the_a2c_gradient_step():
    """With one epoch, one minibatch, the ratio at 1 on the first (and only) step, and no
    advantage normalisation, PPO's clipped loss has A2C's policy gradient; the first update's
    parameters then equal RecurrentA2C's with the same settings and seed, and differ from the
    initial ones."""
    from agents.a2c import RecurrentA2C

    settings = dict(n_steps=5, gamma=0.9, gae_lambda=1.0, ent_coef=0.01, vf_coef=0.5,
                    max_grad_norm=None, normalize_advantage=False, learning_rate=1e-3,
                    bootstrap_truncated=False, seed=3, device="cpu",
                    # SGD: Adam's first step is lr * sign(gradient), which turns rounding-level
                    # differences of near-zero gradients into differences of size lr
                    policy_kwargs={"core": "lstm", "hidden_size": 8,
                                   "optimizer_class": torch.optim.SGD})
    # one after the other: the seed sets torch's global generator, which acting draws from
    a2c = RecurrentA2C("RecurrentActorCriticPolicy", make_vec_env("MetroPOMDP-v0", 4),
                       **settings)
    a2c.learn(20)
    ppo = RecurrentPPO("RecurrentActorCriticPolicy", make_vec_env("MetroPOMDP-v0", 4),
                       n_epochs=1, batch_size=None, clip_range=0.2, **settings)
    before = [p.detach().clone() for p in ppo.policy.parameters()]
    ppo.learn(20)
    np.testing.assert_array_equal(a2c.rollout_buffer.actions, ppo.rollout_buffer.actions)
    for p, q in zip(a2c.policy.parameters(), ppo.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)
    assert any(not torch.equal(p, q) for p, q in zip(before, ppo.policy.parameters(),
                                                      strict=True))


def test_clipped_losses_equal_the_hand_computed_ones(monkeypatch):
    """At every optimizer step (2 epochs x 2 minibatches of 4 of the 8 envs) the losses
    RecurrentPPO minimises equal PPO's, written out here from the rollout, the minibatch's envs
    and the current policy: -mean(min(A r, A clip(r, 1 - eps, 1 + eps))) with the minibatch's
    advantages normalised, the value loss on clip(V, V_old - eps_vf, V_old + eps_vf), and the
    entropy term. In the second epoch the ratios have moved off 1, and the clipping is live:
    some ratios and some values are clipped."""
    import torch.nn.functional as F

    model = RecurrentPPO("RecurrentActorCriticPolicy", make_vec_env("MetroPOMDP-v0", 8),
                         n_steps=6, batch_size=4 * 6, n_epochs=2, learning_rate=3e-2,
                         clip_range=0.05, clip_range_vf=0.01, normalize_advantage=True,
                         seed=0, device="cpu", policy_kwargs={"core": "lstm", "hidden_size": 8})
    minibatches, checked = [], []
    clipped = {"ratio": 0, "value": 0}
    randperm, original = torch.randperm, model._optimizer_step

    def recorded_randperm(n, *args, **kwargs):  # the envs of each epoch's minibatches
        order = randperm(n, *args, **kwargs)
        minibatches.extend(order.split(4))
        return order

    def step_and_check(policy_loss, value_loss, entropy_loss, unit):
        buf, idx = model.rollout_buffer, minibatches[len(checked)]
        obs = torch.as_tensor(buf.observations)[:, idx]
        actions = torch.as_tensor(buf.actions)[:, idx].squeeze(-1).long()
        starts = torch.as_tensor(buf.episode_starts)[:, idx].bool()
        state = tuple(s[idx] for s in model._rollout_state)
        with torch.no_grad():
            values, log_prob, entropy = model.policy.evaluate_actions(obs, actions, state, starts)
        ratio = (log_prob - torch.as_tensor(buf.log_probs)[:, idx]).exp()
        adv = torch.as_tensor(buf.advantages)[:, idx]
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        old = torch.as_tensor(buf.values)[:, idx]
        hand = {"policy": -torch.min(adv * ratio, adv * ratio.clamp(0.95, 1.05)).mean(),
                "value": F.mse_loss(torch.as_tensor(buf.returns)[:, idx],
                                    old + (values - old).clamp(-0.01, 0.01)),
                "entropy": -entropy.mean()}
        for name, loss in (("policy", policy_loss), ("value", value_loss),
                           ("entropy", entropy_loss)):
            torch.testing.assert_close(loss.detach(), hand[name], rtol=1e-5, atol=1e-7,
                                       msg=f"{name} loss, step {len(checked)}")
        clipped["ratio"] += int(((ratio - 1).abs() > 0.05).sum())
        clipped["value"] += int(((values - old).abs() > 0.01).sum())
        checked.append(unit)
        return original(policy_loss, value_loss, entropy_loss, unit)

    monkeypatch.setattr(torch, "randperm", recorded_randperm)
    monkeypatch.setattr(model, "_optimizer_step", step_and_check)
    model.learn(8 * 6)
    assert len(checked) == 4 and len(minibatches) == 4
    for epoch in (0, 1):  # each epoch's minibatches: every env's whole sequence, once
        assert sorted(torch.cat(minibatches[2 * epoch:2 * epoch + 2]).tolist()) == list(range(8))
    assert clipped["ratio"] > 0 and clipped["value"] > 0, clipped


def test_save_load_and_settings_checks(tmp_path):
    env = make_vec_env("MetroPOMDP-v0", 4)
    model = RecurrentPPO("FWMPolicy", env, n_steps=6, batch_size=12, n_epochs=2, seed=0,
                         target_kl=0.05, clip_range_vf=0.3, device="cpu")
    model.learn(48)
    assert model._n_updates == 2 * 2  # two rollouts of two epochs (unless stopped by the KL)
    model.save_atomic(tmp_path / "ppo")
    loaded = RecurrentPPO.load(tmp_path / "ppo.zip", env=env, device="cpu")
    assert (loaded.batch_size, loaded.n_epochs, loaded.clip_range_vf) == (12, 2, 0.3)
    obs = env.reset()
    starts = np.ones(4, bool)
    a, _ = model.predict(obs, None, starts, deterministic=True)
    b, _ = loaded.predict(obs, None, starts, deterministic=True)
    np.testing.assert_array_equal(a, b)
    saved = assert_same_optimizer_state(model, loaded)  # Adam's moments and steps came back
    assert float(saved[0]["step"]) > 0  # one step per minibatch
    for bad, match in (({"batch_size": 7}, "multiple of n_steps"),
                       ({"batch_size": 18}, "divides"), ({"n_epochs": 0}, "n_epochs"),
                       ({"clip_range": 0}, "clip_range")):
        with pytest.raises(ValueError, match=match):
            RecurrentPPO("FWMPolicy", env, n_steps=6, **bad)


@pytest.mark.parametrize("core,kwargs", CORES)
def test_a_minibatch_replays_its_envs_from_their_own_start_state(core, kwargs):
    """A minibatch of envs, run from the rows of the rollout's start state that belong to
    them, gives the rollout's own log-probabilities and values (the ratio starts at exactly 1):
    here rollouts of 6 steps start inside 4-step episodes, so the start state matters."""
    from agents.ppo import _rows

    model = RecurrentPPO("RecurrentActorCriticPolicy", CueRecallVectorEnv(num_envs=8, length=4),
                         n_steps=6, batch_size=12, learning_rate=0.0, seed=0, device="cpu",
                         policy_kwargs={"core": core, **kwargs})
    model.learn(2 * 8 * 6)  # the second rollout starts in mid-episode
    buf = model.rollout_buffer
    assert not buf.episode_starts[0].all()
    idx = torch.tensor([5, 2])
    obs = torch.as_tensor(buf.observations)[:, idx]
    actions = torch.as_tensor(buf.actions).squeeze(-1).long()[:, idx]
    starts = torch.as_tensor(buf.episode_starts).bool()[:, idx]
    with torch.no_grad():
        values, log_prob, _ = model.policy.evaluate_actions(
            obs, actions, _rows(model._rollout_state, idx), starts)
    torch.testing.assert_close(log_prob, torch.as_tensor(buf.log_probs)[:, idx], rtol=0,
                               atol=1e-5)
    torch.testing.assert_close(values, torch.as_tensor(buf.values)[:, idx], rtol=0, atol=1e-5)
