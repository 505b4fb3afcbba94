"""The device path of A2C and PPO: with the env and the policy on a device, a rollout and an
update ask the device for values only at the places meant to (once per rollout for the episode
statistics, once per optimizer step for the finite-loss check, once per update for the logs).

Here the device is ``meta`` (tensors without data: any ``.item()``, ``bool()``, ``.tolist()``,
``.cpu()`` or ``.numpy()`` of one raises, and so does an operation mixing it with a CPU tensor);
where CUDA is present, also ``cuda`` under ``torch.cuda.set_sync_debug_mode("error")``, which
raises at any synchronising call."""

import gymnasium as gym
import pytest
import torch

import metro_pomdp  # noqa: F401  (registers the envs)
from agents.a2c import RecurrentA2C
from agents.ppo import RecurrentPPO
from agents.vec_env import DeviceVecEnv
from memory import core_names

N_ENVS, N_STEPS = 8, 5  # (on meta, no value is known: a short rollout takes every path)
DEVICES = ["meta"] + (["cuda"] if torch.cuda.is_available() else [])
ALGOS = {"a2c": (RecurrentA2C, {}, 1),  # (class, settings, optimizer steps per update)
         "ppo": (RecurrentPPO, {"batch_size": 4 * N_STEPS, "n_epochs": 2}, 4)}


@pytest.mark.parametrize("core", core_names())
@pytest.mark.parametrize("algo", list(ALGOS))
@pytest.mark.parametrize("device", DEVICES)
def test_a_rollout_and_an_update_wait_for_the_device_only_where_meant(device, algo, core,
                                                                       monkeypatch,
                                                                       no_device_sync):
    cls, settings, optimizer_steps = ALGOS[algo]
    env = gym.make_vec("MetroPOMDP-v0", num_envs=N_ENVS, autoreset_mode="SameStep",
                       device=device, random_graph=True)
    model = cls("RecurrentActorCriticPolicy", env, n_envs=N_ENVS, n_steps=N_STEPS, seed=0,
                device=device, policy_kwargs={"core": core, "hidden_size": 8}, **settings)
    assert isinstance(model.env, DeviceVecEnv)
    # the three places meant to read the device, counted and answered without reading it
    calls = {"episodes": 0, "finite": 0, "record": 0}

    def count(name, answer):
        def read(*args, **kwargs):
            calls[name] += 1
            return answer
        return read

    monkeypatch.setattr(model.env, "episodes", count("episodes", []))
    monkeypatch.setattr(model, "_finite", count("finite", True))
    monkeypatch.setattr(model, "_record_on_host", count("record", None))

    _, callback = model._setup_learn(N_ENVS * N_STEPS, None)
    callback.on_training_start(locals(), globals())
    with no_device_sync(device):
        assert model.collect_rollouts(model.env, callback, model.rollout_buffer, N_STEPS)
    assert calls == {"episodes": 1, "finite": 0, "record": 0}
    buffer = model.rollout_buffer
    for name in buffer._TENSORS:
        assert getattr(buffer, name).device.type == device, name
    with no_device_sync(device):
        model.train()
    assert calls == {"episodes": 1, "finite": optimizer_steps, "record": 1}
    assert all(p.device.type == device for p in model.policy.parameters())
