"""ppo_clip.py's maths against independent computations."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import ppo_clip as m


def gae_by_definition(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Â_t = Σ_{l≥0} (γλ)^l δ_{t+l}, summed explicitly within each env's episode segment."""
    T, N = len(rewards), len(rewards[0])
    adv = [[0.0] * N for _ in range(T)]
    for i in range(N):
        for t in range(T):
            total, k = 0.0, 0
            while t + k < T:
                s = t + k
                future = 0.0 if terminated[s][i] else next_values[s][i]
                delta = rewards[s][i] + gamma * future - values[s][i]
                total += (gamma * lam) ** k * delta
                if terminated[s][i] or truncated[s][i]:
                    break
                k += 1
            adv[t][i] = total
    return adv


@pytest.mark.parametrize("gamma, lam", [(0.99, 0.95), (0.9, 1.0), (0.5, 0.0), (1.0, 1.0)])
def test_gae_matches_the_definition_with_mid_rollout_ends(gamma, lam):
    rng = np.random.default_rng(0)
    T, N = 12, 3
    rewards, values, next_values = (rng.normal(size=(T, N)) for _ in range(3))
    next_values[:-1] = values[1:]  # within an episode V(s_{t+1}) is the next row's value ...
    terminated = np.zeros((T, N), bool)
    truncated = np.zeros((T, N), bool)
    terminated[3, 0] = terminated[8, 1] = terminated[11, 2] = True
    truncated[5, 0] = truncated[2, 2] = truncated[7, 2] = True
    ends = terminated | truncated
    next_values[ends] = rng.normal(size=ends.sum())  # ... except at an end: V(final obs)
    want = gae_by_definition(
        rewards.tolist(), values.tolist(), next_values.tolist(), terminated.tolist(), truncated.tolist(), gamma, lam
    )
    adv, ret = m.compute_gae(
        *(torch.as_tensor(x, dtype=torch.float64) for x in (rewards, values, next_values, terminated, ends)), gamma, lam
    )
    np.testing.assert_allclose(adv.numpy(), np.array(want), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ret.numpy(), np.array(want) + values, rtol=1e-12, atol=1e-12)


def test_gae_truncation_bootstraps_and_termination_does_not():
    one = torch.ones(1, 1)
    zero = torch.zeros(1, 1)
    # a single step ending the episode, r = 1, V(s) = 0, V(final obs) = 10
    adv_trunc, _ = m.compute_gae(one, zero, 10 * one, zero, one, 0.9, 0.95)
    adv_term, _ = m.compute_gae(one, zero, 10 * one, one, one, 0.9, 0.95)
    assert adv_trunc.item() == pytest.approx(1 + 0.9 * 10)
    assert adv_term.item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "ratio, adv, want",
    [
        (1.0, 2.0, 2.0),  # on-policy: plain r·Â
        (1.5, 2.0, 2.4),  # Â > 0, r > 1+ε: clipped at (1+ε)·Â
        (0.5, 2.0, 1.0),  # Â > 0, r < 1−ε: min picks the unclipped r·Â (no clip from below)
        (0.5, -2.0, -1.6),  # Â < 0, r < 1−ε: clipped at (1−ε)·Â
        (1.5, -2.0, -3.0),  # Â < 0, r > 1+ε: min picks the unclipped r·Â
        (1.1, -1.0, -1.1),  # inside the trust region: unclipped
    ],
)
def test_clipped_surrogate_on_hand_picked_values(ratio, adv, want):
    logp_old = torch.tensor([-1.3])
    logp_new = logp_old + math.log(ratio)
    loss = m.clipped_surrogate(logp_new, logp_old, torch.tensor([adv]), clip_coef=0.2)
    assert loss.item() == pytest.approx(-want, rel=1e-6)


def test_clipped_surrogate_gradient_vanishes_only_where_clipped():
    logp_old = torch.zeros(4)
    logp_new = torch.log(torch.tensor([1.5, 1.5, 0.5, 1.0])).requires_grad_()
    adv = torch.tensor([1.0, -1.0, -1.0, 1.0])
    m.clipped_surrogate(logp_new, logp_old, adv, 0.2).backward()
    # d/dlogp of −r·Â/4 is −r·Â/4 where unclipped; 0 where the clip is active
    np.testing.assert_allclose(logp_new.grad.numpy(), [0.0, 1.5 / 4, 0.0, -0.25], atol=1e-7)


def test_log_prob_and_entropy_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 4, generator=g)  # a Discrete action: one head, so (batch, 1, choices)
    actions = torch.tensor([0, 3, 1, 2, 3])
    cat = torch.distributions.Categorical(logits=logits)
    torch.testing.assert_close(m.log_prob((logits[:, None], None), actions[:, None]), cat.log_prob(actions))
    torch.testing.assert_close(m.entropy((logits[:, None], None)), cat.entropy())

    mean, log_std = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g) * 0.5
    a = torch.randn(5, 3, generator=g)
    normal = torch.distributions.Independent(torch.distributions.Normal(mean, log_std.exp()), 1)
    torch.testing.assert_close(m.log_prob((mean, log_std), a), normal.log_prob(a))
    torch.testing.assert_close(m.entropy((mean, log_std)), normal.entropy())


def test_sample_and_mode_follow_the_distribution():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[[0.2, 0.5, 0.3]]])).expand(40_000, 1, 3)  # one head
    a = m.sample((logits, None))
    assert a.shape == (40_000, 1)
    torch.testing.assert_close(
        torch.bincount(a[:, 0], minlength=3) / 40_000, torch.tensor([0.2, 0.5, 0.3]), atol=0.01, rtol=0
    )
    assert m.mode((logits[:1], None)).tolist() == [[1]]

    mean, log_std = torch.tensor([[1.0, -2.0]]).expand(40_000, 2), torch.log(torch.tensor([[0.5, 2.0]]))
    x = m.sample((mean, log_std.expand_as(mean)))
    torch.testing.assert_close(x.mean(0), torch.tensor([1.0, -2.0]), atol=0.03, rtol=0)
    torch.testing.assert_close(x.std(0), torch.tensor([0.5, 2.0]), atol=0.03, rtol=0)
    assert torch.equal(m.mode((mean[:1], log_std)), mean[:1])


def test_obs_norm_matches_numpy_over_all_batches():
    rng = np.random.default_rng(1)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) for n in (7, 50, 1, 300)]
    norm = m.ObsNorm((4,), enabled=True)
    for b in batches:
        norm.update(torch.as_tensor(b))
    data = np.concatenate(batches)
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.var.numpy(), data.var(0), rtol=1e-4)  # 1e-4 prior count
    x = rng.normal(size=(2, 4))
    np.testing.assert_allclose(norm(x).numpy(), (x - data.mean(0)) / np.sqrt(data.var(0) + 1e-8), rtol=1e-4)
    assert torch.equal(m.ObsNorm((4,), enabled=False)(x), torch.as_tensor(x, dtype=torch.float32))


def test_policy_shapes_and_initial_gaussian_std():
    box = gym.spaces.Box(-2, 2, (2,))
    p = m.Policy((3,), box, (8,), log_std_init=-0.5)
    mean, log_std = p(torch.zeros(5, 3))
    assert mean.shape == log_std.shape == (5, 2) and torch.allclose(log_std, torch.full((5, 2), -0.5))
    logits, none = m.Policy((3,), gym.spaces.Discrete(4), (8,), 0.0)(torch.zeros(5, 3))
    assert logits.shape == (5, 1, 4) and none is None


def test_to_env_action_shifts_and_clips():
    assert m.to_env_action(torch.tensor([[0], [2]]), gym.spaces.Discrete(3, start=-1)).tolist() == [-1, 1]
    box = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 5.0], np.float32))
    np.testing.assert_allclose(m.to_env_action(torch.tensor([[3.0, -1.0]]), box), [[1.0, 0.0]])


def test_explained_variance():
    y = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert m.explained_variance(y, y) == 1.0
    assert m.explained_variance(torch.full((4,), 2.5), y) == pytest.approx(0.0)
    assert math.isnan(m.explained_variance(y, torch.ones(4)))


def read_csv(run_dir):
    import csv
    import os

    with open(os.path.join(run_dir, "progress.csv")) as f:
        return list(csv.DictReader(f))


def test_kl_early_stop_and_lr_annealing_show_in_the_log(in_tmp):
    flags = [
        "--env",
        "CartPole-v1",
        "--total-timesteps",
        "1024",
        "--num-envs",
        "2",
        "--num-steps",
        "128",
        "--num-minibatches",
        "4",
        "--update-epochs",
        "3",
        "--eval-episodes",
        "1",
    ]
    full = read_csv(m.train(m.parse_args(flags))["run_dir"])
    assert [int(r["epochs_done"]) for r in full] == [3, 3, 3, 3]
    lrs = [float(r["learning_rate"]) for r in full]
    np.testing.assert_allclose(lrs, [1e-3 * (1 - k / 4) for k in range(4)])  # linear decay to 0
    stopped = read_csv(m.train(m.parse_args(flags + ["--kl-early-stop", "1e-12"]))["run_dir"])
    assert [int(r["epochs_done"]) for r in stopped] == [1, 1, 1, 1]
    assert all(float(r["approx_kl"]) > 1e-12 for r in stopped)
    constant = read_csv(m.train(m.parse_args(flags + ["--no-anneal-lr"]))["run_dir"])
    assert {float(r["learning_rate"]) for r in constant} == {1e-3}


def test_policy_parameters_do_not_alias_log_std():
    """π_old's parameters, kept across optimiser steps (KL penalties, line searches), must not move with log σ."""
    p = m.Policy((3,), gym.spaces.Box(-1, 1, (2,)), (8,), log_std_init=0.0)
    with torch.no_grad():
        _, old_log_std = p(torch.zeros(4, 3))
        p.log_std.add_(0.5)  # what an optimiser step does, in place
    assert torch.equal(old_log_std, torch.zeros(4, 2))
