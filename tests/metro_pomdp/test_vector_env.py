"""MetroPOMDPVectorEnv: equals N single envs step for step, registration, bad input."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import metro_pomdp  # noqa: F401  (registers the envs)
from metro_pomdp import MetroPOMDPEnv, MetroPOMDPVectorEnv

N = 7


def _compare_infos(ours: dict, theirs: dict, keys):
    for key in keys:
        mask = theirs[f"_{key}"]
        np.testing.assert_array_equal(np.asarray(ours[key])[mask], np.asarray(theirs[key])[mask],
                                      err_msg=key)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("kwargs", [{}, {"graph_set": "sample"},
                                    {"n_states": 10, "n_actions": 4, "graph_set": "test"}],
                         ids=["train", "sample", "10x4-test"])
def test_vector_env_equals_sync_vector_env_of_single_envs(mode, kwargs):
    offset = 0 if kwargs.get("graph_set") == "sample" else 3  # sampling has no graph index
    ours = MetroPOMDPVectorEnv(num_envs=N, autoreset_mode=mode, graph_offset=offset, **kwargs)
    theirs = SyncVectorEnv([lambda i=i: MetroPOMDPEnv(
        graph_index=None if kwargs.get("graph_set") == "sample" else offset + i, **kwargs)
                            for i in range(N)], autoreset_mode=mode)
    keys = ["agent", "reward_location", "graph_index", "reset_timer", "invalid_action",
            "reached_reward"]
    obs_a, info_a = ours.reset(seed=11)
    obs_b, info_b = theirs.reset(seed=11)
    np.testing.assert_array_equal(obs_a, obs_b)
    _compare_infos(info_a, info_b, keys)
    np.testing.assert_array_equal(ours.adjacency, np.stack([e.adjacency for e in theirs.envs]))
    rng = np.random.default_rng(0)
    n_actions = ours.single_action_space.n
    ended = 0
    for _ in range(100):  # three episode ends
        actions = rng.integers(n_actions, size=N)
        out_a, out_b = ours.step(actions), theirs.step(actions)
        for a, b in zip(out_a[:4], out_b[:4], strict=True):
            np.testing.assert_array_equal(a, b)
        _compare_infos(out_a[4], out_b[4], keys)
        if mode == AutoresetMode.SAME_STEP and out_b[3].any():
            ended += 1
            mask = out_b[4]["_final_obs"]
            np.testing.assert_array_equal(out_a[4]["_final_obs"], mask)
            np.testing.assert_array_equal(out_a[4]["final_obs"][mask],
                                          np.stack(out_b[4]["final_obs"][mask]))
            _compare_infos(out_a[4]["final_info"], out_b[4]["final_info"], keys)
        ended += mode == AutoresetMode.NEXT_STEP and out_b[3].any()
    assert ended == 3


def test_make_vec_returns_native_vector_env():
    envs = gym.make_vec("MetroPOMDP-v0", num_envs=600)
    assert isinstance(envs, MetroPOMDPVectorEnv)
    assert envs.num_envs == 600
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.single_observation_space.shape == (17,)
    assert envs.observation_space.shape == (600, 17)
    obs, info = envs.reset(seed=0)
    assert obs.shape == (600, 17) and obs.dtype == np.float32
    # env i uses graph i of the paper's 600 train graphs
    np.testing.assert_array_equal(info["graph_index"], np.arange(600))
    np.testing.assert_array_equal(envs.adjacency, metro_pomdp.graph_set("train"))
    same = gym.make_vec("MetroPOMDP-v0", num_envs=4, autoreset_mode="SameStep")
    assert same.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    test = gym.make_vec("MetroPOMDP-Test-v0", num_envs=600)
    test.reset(seed=0)
    np.testing.assert_array_equal(test.adjacency, metro_pomdp.graph_set("test"))


def test_more_envs_than_graphs_are_refused_unless_graphs_are_drawn():
    """Env i plays graph i: a 601st env would replay graph 0, silently; it is refused, naming
    the fix. With random_graph each episode draws its graph, and any number of envs is fine."""
    with pytest.raises(ValueError, match=r"num_envs=601 envs on a fixed set of 600 graphs.*"
                                         r"random_graph=True"):
        gym.make_vec("MetroPOMDP-v0", num_envs=601)
    envs = MetroPOMDPVectorEnv(num_envs=5, n_graphs=3, random_graph=True)
    assert set(envs.reset(seed=0)[1]["graph_index"]) <= {0, 1, 2}
    envs = MetroPOMDPVectorEnv(num_envs=3, n_graphs=3)
    np.testing.assert_array_equal(envs.reset(seed=0)[1]["graph_index"], [0, 1, 2])


def test_random_graph_draws_each_episode_from_the_whole_set():
    envs = gym.make_vec("MetroPOMDP-v0", num_envs=4, autoreset_mode="SameStep", random_graph=True)
    _, info = envs.reset(seed=0)
    seen = [info["graph_index"]]
    for _ in range(20 * 30):  # 20 episodes of 30 steps
        _, _, _, trunc, info = envs.step(np.zeros(4, dtype=np.int64))
        if trunc.any():
            seen.append(info["graph_index"])
        # every env plays the graph its info names
        np.testing.assert_array_equal(envs.adjacency,
                                      metro_pomdp.graph_set("train")[info["graph_index"]])
    seen = np.stack(seen)  # [episodes, 4]
    assert seen.shape[0] == 21
    # 84 uniform draws from 600 graphs: nearly all distinct, and not one graph per env
    assert len(np.unique(seen)) > 70
    assert all(len(np.unique(seen[:, i])) > 15 for i in range(4))


def test_vector_env_observations_within_space_and_rewards_plausible():
    envs = gym.make_vec("MetroPOMDP-v0", num_envs=600, autoreset_mode="SameStep")
    obs, _ = envs.reset(seed=0)
    rng = np.random.default_rng(0)
    total = np.zeros(600)
    for _ in range(30):
        obs, reward, term, trunc, info = envs.step(rng.integers(3, size=600))
        total += reward
        assert envs.observation_space.contains(obs)
    assert trunc.all() and not term.any()
    # the random policy's reference value (10 episodes on each train graph), within 5 standard
    # errors of a 600-episode mean (0.8; seeds 0-2 give 44.51, 44.36, 45.10)
    from metro_pomdp.baselines import reference_returns

    assert abs(total.mean() - reference_returns("train")["random"]) < 4, total.mean()


def test_disabled_autoreset_with_reset_mask():
    envs = MetroPOMDPVectorEnv(num_envs=4, autoreset_mode="Disabled")
    envs.reset(seed=0)
    for _ in range(30):
        _, _, _, trunc, _ = envs.step(np.zeros(4, np.int64))
    assert trunc.all()
    mask = np.array([True, False, True, False])
    obs, _ = envs.reset(options={"reset_mask": mask})
    np.testing.assert_array_equal(obs[:, 15], [0, 1, 0, 1])  # t / 30
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": np.ones(3, bool)})


def test_vector_env_bad_input():
    envs = MetroPOMDPVectorEnv(num_envs=4)
    with pytest.raises(ResetNeeded):
        envs.step(np.zeros(4, np.int64))
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        envs.step(np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"env indices \[2\]"):
        envs.step(np.array([0, 1, 5, 0]))
    with pytest.raises(ValueError, match="seed"):
        envs.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="autoreset_mode"):
        MetroPOMDPVectorEnv(num_envs=2, autoreset_mode="sometimes")
    with pytest.raises(ValueError, match="num_envs"):
        MetroPOMDPVectorEnv(num_envs=0)
    with pytest.raises(TypeError, match="unknown"):
        MetroPOMDPVectorEnv(num_envs=2, n_state=5)


def test_vector_env_does_not_alias_caller_actions():
    envs = MetroPOMDPVectorEnv(num_envs=3, autoreset_mode="SameStep")
    envs.reset(seed=0)
    actions = np.zeros(3, np.int64)
    for _ in range(31):
        envs.step(actions)
    np.testing.assert_array_equal(actions, 0)


def test_vector_render_rgb_array():
    envs = MetroPOMDPVectorEnv(num_envs=2, render_mode="rgb_array")
    envs.reset(seed=0)
    frame = envs.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    envs.close()


def test_graph_offset_outside_the_set_or_with_sampling_is_refused():
    with pytest.raises(ValueError, match=r"graph_offset must be an integer in \[0, 600\)"):
        MetroPOMDPVectorEnv(num_envs=2, graph_offset=600)
    with pytest.raises(ValueError, match="graph_offset=2 has no meaning with graph_set='sample'"):
        MetroPOMDPVectorEnv(num_envs=2, graph_offset=2, graph_set="sample")
    # an offset wraps around the set, every graph at most once: env i plays graph
    # (offset + i) mod n_graphs
    envs = MetroPOMDPVectorEnv(num_envs=3, n_graphs=3, graph_offset=2)
    np.testing.assert_array_equal(envs.reset(seed=0)[1]["graph_index"], [2, 0, 1])
