"""The rollout every algorithm file shares: what it stores for each step, checked on a tiny env whose episodes end
by truncation and whose final observation differs from the next episode's first, so bootstrapping from the wrong
one shows."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import ALGOS, load


class Counter(gym.Env):
    """Observation [t, episode]: t counts steps within the episode, episode counts resets. Truncated after 3 steps,
    never terminated; reward t after the step. So the final observation of an episode is [3, e] and the next
    reset's is [0, e + 1]."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.episode = 0, getattr(self, "episode", -1) + 1
        return np.array([0.0, self.episode]), {}

    def step(self, action):
        self.t += 1
        return np.array([float(self.t), self.episode]), float(self.t), False, self.t >= 3, {}


if "Test/Counter-v0" not in gym.registry:
    gym.register(id="Test/Counter-v0", entry_point=Counter)


class Recorder:
    """Stands in for the run's logger: counts the steps reported to it."""

    def __init__(self, args):
        self.args, self.steps, self.device = args, 0, torch.device("cpu")

    def record_step(self, reward, done):
        self.steps += len(reward)


def rollout(algo: str, num_envs: int, num_steps: int):
    """One collect_rollout of `algo` on Test/Counter-v0, statistics off: (batch, last observation, recorder)."""
    m = load(algo)
    args = m.Args(env="Test/Counter-v0", num_envs=num_envs, num_steps=num_steps)
    torch.manual_seed(0)
    envs = m.make_envs(args.env, num_envs)
    obs, _ = envs.reset(seed=list(range(num_envs)))
    policy = m.Policy((2,), envs.single_action_space, args.hidden_sizes, args.log_std_init)
    run = Recorder(args)
    batch, last = m.collect_rollout(
        envs, policy, m.ObsNorm((2,), enabled=False), m.RewardScale(False, args.gamma, num_envs), obs, run
    )
    envs.close()
    return batch, last, run


@pytest.mark.parametrize("algo", ALGOS)
def test_a_truncated_step_keeps_its_final_observation(algo):
    batch, last, run = rollout(algo, num_envs=2, num_steps=7)
    t = np.arange(7) % 3  # step t of an episode, then [t + 1, e] follows; e = t // 3
    want_obs = np.stack([t, np.arange(7) // 3], 1)
    want_next = np.stack([t + 1, np.arange(7) // 3], 1)  # the final obs [3, e] at every truncation, not [0, e + 1]
    for i in range(2):
        np.testing.assert_array_equal(batch["obs"][:, i].numpy(), want_obs)
        np.testing.assert_array_equal(batch["next_obs"][:, i].numpy(), want_next)
    np.testing.assert_array_equal(batch["done"][:, 0].numpy(), t == 2)
    np.testing.assert_array_equal(batch["term"].numpy(), 0)
    np.testing.assert_array_equal(batch["reward"][:, 0].numpy(), t + 1)
    np.testing.assert_array_equal(last, [[1.0, 2.0], [1.0, 2.0]])
    assert run.steps == 14


@pytest.mark.parametrize("algo", ALGOS)
def test_the_final_observation_reaches_the_advantage(algo):
    """With V(s) = s[0] and r = t, the truncated step's δ bootstraps from V([3, e]) = 3, not V([0, e + 1]) = 0."""
    batch, _, _ = rollout(algo, num_envs=1, num_steps=3)
    v, v_next = batch["obs"][..., 0], batch["next_obs"][..., 0]
    adv, _ = load(algo).compute_gae(batch["reward"], v, v_next, batch["term"], batch["done"], 0.5, 1.0)
    # δ_2 = r_2 + γ·V(final) − V(s_2) = 3 + 0.5·3 − 2 = 2.5 is the last step's advantage
    assert adv[2, 0].item() == pytest.approx(2.5)
