"""MetroPOMDPEnv: API checks, dynamics on hand-made graphs, observation layout, bad input."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded

import metro_pomdp
from metro_pomdp import MetroPOMDPEnv, decode_observation


def ring_graph():
    """5 states; action 0 walks the ring 0->1->2->3->4->0, action 1 jumps s -> s+2 from even
    states only, action 2 is never valid."""
    adj = np.zeros((3, 5, 5), np.uint8)
    for s in range(5):
        adj[0, s, (s + 1) % 5] = 1
    for s in (0, 2, 4):
        adj[1, s, (s + 2) % 5] = 1
    return adj


def test_gymnasium_env_checker_passes():
    from gymnasium.utils.env_checker import check_env
    check_env(gym.make("MetroPOMDP-v0").unwrapped, skip_render_check=True)
    check_env(gym.make("MetroPOMDP-Sample-v0").unwrapped, skip_render_check=True)


def test_sb3_env_checker_passes():
    from stable_baselines3.common.env_checker import check_env
    check_env(MetroPOMDPEnv(), warn=True)


@pytest.mark.parametrize("env_id", list(metro_pomdp.REGISTERED))
def test_same_seed_same_rollout(env_id):
    def rollout(seed):
        env = gym.make(env_id)
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(0)
        out = [obs]
        for _ in range(75):  # past an episode end
            obs, r, term, trunc, info = env.step(int(rng.integers(env.action_space.n)))
            out += [obs, [r, info["agent"], info["reward_location"]]]
            if term or trunc:
                obs, _ = env.reset()
                out.append(obs)
        return np.concatenate([np.ravel(x) for x in out])

    np.testing.assert_array_equal(rollout(3), rollout(3))
    assert not np.array_equal(rollout(3), rollout(4))


def test_dynamics_on_hand_made_graph():
    env = MetroPOMDPEnv(graphs=ring_graph(), graph_index=0)
    obs, info = env.reset(seed=0)
    assert info["agent"] != info["reward_location"]
    assert info["graph_index"] == 0
    np.testing.assert_array_equal(env.adjacency, ring_graph())
    total = 0.0
    for step in range(1, 31):
        agent, goal, timer = info["agent"], info["reward_location"], info["reset_timer"]
        # walk the ring towards the reward, but waste a step with the invalid action 2 whenever
        # the reward is exactly 2 steps ahead (to exercise penalty and timer)
        action = 2 if (goal - agent) % 5 == 2 else 0
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        assert not terminated
        assert truncated == (step == 30)
        if action == 2:
            assert reward == pytest.approx(-0.05) and info["invalid_action"]
            expected_timer = timer + 1
            if expected_timer >= 6:  # six unsuccessful steps: both placed anew
                assert info["reset_timer"] == 0
            else:
                assert info["agent"] == agent and info["reset_timer"] == expected_timer
        else:
            arrived = (agent + 1) % 5 == goal
            assert info["reached_reward"] == arrived
            assert not info["invalid_action"]
            if arrived:
                assert reward == 10.0
                assert info["reset_timer"] == 0
                assert info["reward_location"] != goal, "new reward location differs"
                assert info["agent"] != info["reward_location"]
            else:
                assert reward == 0.0
                assert info["agent"] == (agent + 1) % 5 or timer + 1 >= 6
        d = decode_observation(obs)
        assert d["agent"] == info["agent"] and d["reward_location"] == info["reward_location"]
        assert d["prev_action"] == action
        assert d["time_fraction"] == pytest.approx(step / 30)
        assert d["reward_signal"] == pytest.approx(total / 300, abs=1e-6)
        assert d["constant"] == 1.0
    assert total > 0


def test_timeout_after_six_unsuccessful_steps():
    env = MetroPOMDPEnv(graphs=ring_graph(), graph_index=0)
    _, info = env.reset(seed=1)
    placements = 0
    for step in range(1, 31):
        _, reward, _, _, info = env.step(2)  # always invalid: never arrives
        assert reward == pytest.approx(-0.05)
        assert info["reset_timer"] == step % 6
        placements += info["reset_timer"] == 0
    assert placements == 5


def test_placement_rules_after_success_and_after_timeout():
    """Every placement, after an arrival or after the 6-step timer, moves the reward off its old
    location and puts the agent off the new one; over 600 envs and 30 steps each case occurs
    hundreds of times and every new reward location other than the old one is drawn."""
    from metro_pomdp import MetroPOMDPVectorEnv

    envs = MetroPOMDPVectorEnv(num_envs=600, autoreset_mode="SameStep")
    rng = np.random.default_rng(0)
    _, info = envs.reset(seed=3)
    counts = {"success": 0, "timeout": 0}
    offsets = {"success": set(), "timeout": set()}
    for _ in range(29):  # the 30th step ends the episode, and SameStep would reset
        goal, timer = info["reward_location"], info["reset_timer"]
        _, _, _, _, info = envs.step(rng.integers(3, size=600))
        for case, where in (("success", info["reached_reward"]),
                            ("timeout", ~info["reached_reward"] & (timer + 1 == 6))):
            assert (info["reset_timer"][where] == 0).all()
            assert (info["reward_location"][where] != goal[where]).all(), case
            assert (info["agent"][where] != info["reward_location"][where]).all(), case
            counts[case] += int(where.sum())
            offsets[case] |= set(((info["reward_location"] - goal)[where] % 5).tolist())
        moved = ~info["reached_reward"] & (timer + 1 < 6)
        assert (info["reward_location"][moved] == goal[moved]).all()  # no placement in between
    assert min(counts.values()) > 300, counts
    assert offsets == {"success": {1, 2, 3, 4}, "timeout": {1, 2, 3, 4}}


def test_reset_observation_layout():
    env = MetroPOMDPEnv()
    obs, info = env.reset(seed=5)
    assert obs.shape == (17,) and obs.dtype == np.float32
    assert obs[info["reward_location"]] == 1 and obs[:5].sum() == 1
    assert obs[5 + info["agent"]] == 1 and obs[5:10].sum() == 1
    np.testing.assert_array_equal(obs[10:14], [0, 0, 0, 1])  # no previous action yet
    assert obs[14] == 1 and obs[15] == 0 and obs[16] == 0


def test_larger_variant_shapes():
    env = gym.make("MetroPOMDP-10x4-v0")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2 * 10 + 4 + 4,)
    assert env.unwrapped.adjacency.shape == (4, 10, 10)
    assert env.action_space.n == 4


def test_sample_variant_draws_new_graphs_each_episode():
    env = gym.make("MetroPOMDP-Sample-v0")
    env.reset(seed=0)
    first = env.unwrapped.adjacency.copy()
    env.reset()
    assert not np.array_equal(first, env.unwrapped.adjacency)
    assert env.unwrapped._info()["graph_index"] == -1


def test_test_variant_uses_test_graphs():
    env = gym.make("MetroPOMDP-Test-v0")
    _, info = env.reset(seed=0)
    np.testing.assert_array_equal(env.unwrapped.adjacency,
                                  metro_pomdp.graph_set("test")[info["graph_index"]])


def test_render_rgb_array_frame():
    env = gym.make("MetroPOMDP-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    assert frame.shape[0] > 100 and frame.shape[1] > 100
    # the agent's green and the reward's yellow are both drawn
    assert (np.abs(frame.astype(int) - [0x4c, 0xaf, 0x50]).sum(-1) < 10).any()
    assert (np.abs(frame.astype(int) - [0xff, 0xd5, 0x4f]).sum(-1) < 10).any()
    env.close()


@pytest.mark.parametrize("kwargs,match", [
    ({"n_states": 1}, "n_states"),
    ({"n_states": 2}, "n_states"),
    ({"n_actions": 0}, "n_actions"),
    ({"reward": -1.0}, "reward"),
    ({"penalty": -0.1}, "penalty"),
    ({"episode_length": 0}, "episode_length"),
    ({"reset_after": 0}, "reset_after"),
    ({"graph_set": "valid"}, "graph_set"),
    ({"n_states": 3, "n_actions": 2, "n_graphs": 600}, "impossible"),
    ({"graph_index": -1}, r"graph_index must be None or an integer in \[0, 600\)"),
    ({"graph_index": 600}, r"graph_index .* in \[0, 600\) .* got 600"),
    ({"graph_index": 1e6}, r"graph_index .* got 1000000.0"),
    ({"graph_index": 3, "graph_set": "sample"}, "graph_index=3 has no meaning with "
                                                "graph_set='sample'"),
    ({"graph_index": 1, "graphs": ring_graph()}, r"graph_index .* \[0, 1\)"),
    ({"n_graphs": 10**7}, r"n_graphs must be an integer in \[1, 100,000\]"),
    ({"render_mode": "ansi"}, "render_mode"),
    ({"graphs": np.zeros((3, 4, 4))}, "graphs must have shape"),
    ({"graphs": np.full((3, 5, 5), 2)}, "only 0 and 1"),
    ({"graphs": np.zeros((3, 5, 5))}, r"graphs\[0\] is not strongly connected"),
    ({"graphs": np.stack([ring_graph(), np.eye(5, k=1)[None].repeat(3, 0)])},
     r"graphs\[1\] is not strongly connected"),
    ({"graphs": ring_graph() + np.eye(5, dtype=np.uint8)[None] * [[[0]], [[0]], [[1]]]},
     r"graphs\[0\] has a self-loop"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MetroPOMDPEnv(**kwargs)


def test_bad_actions_and_step_before_reset():
    env = MetroPOMDPEnv()
    with pytest.raises(ResetNeeded):
        env.step(0)
    env.reset(seed=0)
    for bad in (3, -1):
        with pytest.raises(ValueError, match="actions must lie in"):
            env.step(bad)
    with pytest.raises(ValueError, match="action must be a scalar"):
        env.step(np.array([0, 1]))
    with pytest.raises(ValueError, match="integers"):
        env.step(0.5)
    env.step(np.int64(1))  # numpy integers are fine


def test_registered_spec_metadata():
    for env_id in metro_pomdp.REGISTERED:
        spec = gym.spec(env_id)
        assert spec.max_episode_steps == 30 and spec.reward_threshold is None
    env = gym.make("MetroPOMDP-v0")
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, _ = env.step(0)
        steps += 1
        assert not terminated
    assert steps == 30
    # a longer episode through gym.make takes both arguments; make_vec refuses a mismatch
    env = gym.make("MetroPOMDP-v0", episode_length=40, max_episode_steps=40)
    env.reset(seed=0)
    assert sum(1 for _ in iter(lambda: env.step(0)[3], True)) == 39
    with pytest.raises(ValueError, match="max_episode_steps=30 differs from episode_length=40"):
        gym.make_vec("MetroPOMDP-v0", num_envs=2, episode_length=40)
    envs = gym.make_vec("MetroPOMDP-v0", num_envs=2, episode_length=40, max_episode_steps=40)
    assert envs.config.episode_length == 40


def test_a_hand_made_strongly_connected_graph_is_accepted():
    env = MetroPOMDPEnv(graphs=np.stack([ring_graph(), ring_graph()]), graph_index=1)
    assert env.reset(seed=0)[1]["graph_index"] == 1


def test_non_default_values_reach_rewards_timer_and_observation():
    """reward, penalty, episode_length and reset_after other than the paper's: the step reward,
    the timer, the truncation step and the observation's raw entries (time fraction, the reward
    signal scaled by 1 / (reward * episode_length), the previous-action one-hot) follow them."""
    reward, penalty, length, reset_after = 4.0, 0.5, 12, 3
    env = MetroPOMDPEnv(graphs=ring_graph(), graph_index=0, reward=reward, penalty=penalty,
                        episode_length=length, reset_after=reset_after)
    obs, info = env.reset(seed=2)
    s, a = 5, 3
    assert obs[2 * s + a] == 1 and obs[2 * s:2 * s + a].sum() == 0  # no previous action yet
    total = 0.0
    for t in range(1, length + 1):
        goal, agent, timer = info["reward_location"], info["agent"], info["reset_timer"]
        action = 2 if t % 4 == 0 else 0  # action 2 is never an edge of the ring graph
        obs, r, terminated, truncated, info = env.step(action)
        arrived = action == 0 and (agent + 1) % 5 == goal
        assert r == pytest.approx(reward if arrived else -penalty if action == 2 else 0.0)
        total += r
        placed = arrived or timer + 1 == reset_after
        assert info["reset_timer"] == (0 if placed else timer + 1)
        assert obs[2 * s + action] == 1 and obs[2 * s:2 * s + a + 1].sum() == 1  # raw one-hot
        assert obs[2 * s + a + 1] == 1  # the constant
        assert obs[2 * s + a + 2] == pytest.approx(t / length)
        assert obs[2 * s + a + 3] == pytest.approx(total / (reward * length))
        assert obs[info["reward_location"]] == 1 and obs[s + info["agent"]] == 1
        assert not terminated and truncated == (t == length)


def test_random_graphs_match_single_envs_step_for_step():
    """random_graph=True in the vector env: env i draws its graphs as a single env seeded
    seed + i with graph_index=None does (the same graph every episode, rewards, observations)."""
    from metro_pomdp import MetroPOMDPVectorEnv

    n = 4
    envs = MetroPOMDPVectorEnv(num_envs=n, random_graph=True, autoreset_mode="SameStep")
    singles = [MetroPOMDPEnv() for _ in range(n)]
    obs, info = envs.reset(seed=7)
    for i, env in enumerate(singles):
        o, inf = env.reset(seed=7 + i)
        np.testing.assert_array_equal(obs[i], o)
        assert info["graph_index"][i] == inf["graph_index"]
    rng = np.random.default_rng(0)
    graphs_seen = set()
    for _ in range(95):  # three episodes and a bit: every reset draws a new graph
        actions = rng.integers(3, size=n)
        obs, reward, _, truncated, info = envs.step(actions)
        for i, env in enumerate(singles):
            o, r, _, tr, inf = env.step(int(actions[i]))
            if tr:
                o, inf = env.reset()
            np.testing.assert_array_equal(obs[i], o)
            assert reward[i] == r and truncated[i] == tr
            assert info["graph_index"][i] == inf["graph_index"]
            graphs_seen.add(int(inf["graph_index"]))
    assert len(graphs_seen) > n  # the graphs did change between episodes


def test_max_episode_steps_minus_one_leaves_the_env_s_own_truncation():
    """Gymnasium's ``max_episode_steps=-1`` drops the TimeLimit wrapper; the env still ends
    every episode after its 30 steps, so the setting changes nothing silently."""
    env = gym.make("MetroPOMDP-v0", max_episode_steps=-1)
    env.reset(seed=0)
    truncated = [env.step(0)[3] for _ in range(30)]
    assert truncated == [False] * 29 + [True]


def test_a_negative_data_seed_is_refused_by_name():
    with pytest.raises(ValueError, match="data_seed must be a non-negative integer.*got -1"):
        gym.make("MetroPOMDP-v0", data_seed=-1)
