"""Observation normalisation and reward scaling (--norm-obs, --norm-reward): the statistics against numpy, their
trip through a checkpoint into evaluation, and the one property reward scaling exists for: the learner no longer
cares about the reward's units."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import load, short_flags

SCALED = ["vpg", "trpo", "ppo_penalty", "ppo_clip", "dppo"]  # dppo at world size 1 (its 2 ranks: test_dppo.py)


def scaled_pendulum(scale: float) -> gym.Env:
    return gym.wrappers.TransformReward(gym.make("Pendulum-v1"), lambda r: scale * r)


for _scale in (1.0, 1000.0):
    if f"Test/PendulumX{_scale:g}-v0" not in gym.registry:
        gym.register(
            id=f"Test/PendulumX{_scale:g}-v0",
            entry_point=scaled_pendulum,
            kwargs={"scale": _scale},
            max_episode_steps=200,
        )


@pytest.mark.parametrize("algo", SCALED)
def test_reward_scale_divides_by_the_std_of_every_return_seen(algo):
    m = load(algo)
    rs = m.RewardScale(True, 0.99, 1)
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 5.0, size=(n, 1)) for n in (64, 7, 300)]
    for b in batches:
        rs.update(torch.as_tensor(b))
    std = np.concatenate(batches).std()
    r = torch.tensor([[1.0, -2.0], [0.5, 4.0]])
    torch.testing.assert_close(rs(r), r / std, rtol=1e-5, atol=0)
    assert torch.equal(m.RewardScale(False, 0.99, 1)(r), r)


@pytest.mark.parametrize("algo", SCALED)
def test_reward_scale_tracks_each_envs_discounted_return(algo):
    """G ← γ·G + r per env, returned before it restarts at an episode's end."""
    rs = load(algo).RewardScale(True, 0.5, 2)
    got = [
        rs.track(np.array(r), np.array(d))
        for r, d in [([1.0, 2.0], [False, True]), ([1.0, 4.0], [True, False]), ([8.0, 2.0], [False, False])]
    ]
    np.testing.assert_array_equal(got, [[1.0, 2.0], [1.5, 4.0], [8.0, 4.0]])


@pytest.mark.parametrize("algo", SCALED)
def test_training_tracks_each_episodes_discounted_return(algo, in_tmp):
    """Test/UnboundedBox-v0 pays 1 per step and truncates after 20 steps, so the k-th step of every episode
    has G = (1 − γ^k) / (1 − γ): the saved statistics must be those of exactly these values, reset per episode."""
    m = load(algo)
    gamma, steps = 0.9, 256  # 2 envs × 64 steps × 2 iterations
    s = m.train(
        m.parse_args(
            [
                "--env",
                "Test/UnboundedBox-v0",
                *short_flags(algo),
                "--total-timesteps",
                str(steps),
                "--gamma",
                str(gamma),
                "--norm-reward",
                "--save-model",
            ]
        )
    )
    per_env = steps // 2
    k = np.arange(per_env) % 20 + 1
    g = np.tile((1 - gamma**k) / (1 - gamma), 2)
    state = torch.load(s["checkpoint"], weights_only=True)["reward_scale"]
    assert float(state["count"]) == pytest.approx(steps + 1e-4)
    assert float(state["mean"][0]) == pytest.approx(g.mean(), rel=1e-5)
    assert float(state["var"][0]) == pytest.approx(g.var(), rel=1e-4)


@pytest.mark.parametrize("algo", SCALED)
def test_normalisation_statistics_travel_in_the_checkpoint_to_evaluation(algo, in_tmp):
    m = load(algo)
    flags = ["--env", "Pendulum-v1", *short_flags(algo), "--norm-obs", "--norm-reward"]
    s = m.train(m.parse_args([*flags, "--save-model"]))
    state = torch.load(s["checkpoint"], weights_only=True)
    assert float(state["obs_norm"]["count"]) > 1 and float(state["reward_scale"]["count"]) > 1
    assert not torch.allclose(state["obs_norm"]["mean"], torch.zeros(3, dtype=torch.float64))
    ev = m.train(m.parse_args([*flags, "--checkpoint", s["checkpoint"], "--eval-only"]))
    assert ev["eval_mean_return"] == s["eval_mean_return"]
    # the same weights without the saved observation statistics act differently
    stripped = dict(
        state,
        obs_norm={
            "mean": torch.zeros(3, dtype=torch.float64),
            "var": torch.ones(3, dtype=torch.float64),
            "count": torch.tensor(1e-4, dtype=torch.float64),
        },
    )
    torch.save(stripped, in_tmp / "stripped.pt")
    ev2 = m.train(m.parse_args([*flags, "--checkpoint", str(in_tmp / "stripped.pt"), "--eval-only"]))
    assert ev2["eval_mean_return"] != s["eval_mean_return"]


@pytest.mark.parametrize("algo", SCALED)
def test_reward_scaling_makes_learning_blind_to_the_reward_units(algo, in_tmp):
    """Pendulum with rewards ×1000: with --norm-reward the learner sees the same scaled rewards, so it ends with
    the same policy, and the evaluation returns are the unscaled run's ×1000 (up to float rounding)."""
    m = load(algo)
    flags = [*short_flags(algo), "--total-timesteps", "1024", "--num-steps", "128", "--norm-reward"]
    one = m.train(m.parse_args(["--env", "Test/PendulumX1-v0", *flags]))
    big = m.train(m.parse_args(["--env", "Test/PendulumX1000-v0", *flags]))
    np.testing.assert_allclose(np.array(big["eval_returns"]) / 1000, one["eval_returns"], rtol=1e-3)
    # without it the units matter (the control for the assertion above)
    one = m.train(m.parse_args(["--env", "Test/PendulumX1-v0", *flags[:-1]]))
    big = m.train(m.parse_args(["--env", "Test/PendulumX1000-v0", *flags[:-1]]))
    assert not np.allclose(np.array(big["eval_returns"]) / 1000, one["eval_returns"], rtol=1e-3)
