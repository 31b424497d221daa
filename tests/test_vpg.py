"""vpg.py's maths against plain loops and closed forms: reward-to-go, GAE, the REINFORCE truncation
rule, and the score-function policy-gradient estimator on one-step problems with known gradients."""

import csv
import glob
import math
import os

import numpy as np
import pytest
import torch

import vpg as m
from conftest import short_flags


def f64(x):
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def gae_by_loop(rewards, values, next_values, terminated, dones, gamma, lam):
    """Â_t = Σ_l (γλ)^l δ_{t+l}, δ_s = r_s + γ(1 − term_s)·V(next obs_s) − V(s_s), to the episode's end."""
    T, N = rewards.shape
    out = np.zeros((T, N))
    for i in range(N):
        for t in range(T):
            total = 0.0
            for k in range(T - t):
                s = t + k
                delta = rewards[s, i] + gamma * (0.0 if terminated[s, i] else next_values[s, i]) - values[s, i]
                total += (gamma * lam) ** k * delta
                if dones[s, i]:
                    break
            out[t, i] = total
    return out


def reward_to_go_by_loop(rewards, dones, gamma):
    """G_t = Σ_{k≥0} γ^k r_{t+k} until the episode or the rollout ends: the loop above with V ≡ 0 and λ = 1."""
    zeros = np.zeros_like(rewards)
    return gae_by_loop(rewards, zeros, zeros, dones, dones, gamma, 1.0)


def random_rollout(T=15, N=3, seed=0):
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(T, N))
    terminated, truncated = np.zeros((T, N), bool), np.zeros((T, N), bool)
    terminated[4, 0] = terminated[10, 1] = True
    truncated[7, 0] = truncated[2, 2] = truncated[9, 2] = True
    return rng, rewards, terminated, truncated, terminated | truncated


# ---------------------------------------------------------------------------------------------
# Reward-to-go and GAE
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gamma", [0.99, 0.9, 0.5, 1.0, 0.0])
def test_reward_to_go_matches_a_plain_loop(gamma):
    _, rewards, _, _, dones = random_rollout()
    got = m.reward_to_go(f64(rewards), f64(dones), gamma)
    np.testing.assert_allclose(got.numpy(), reward_to_go_by_loop(rewards, dones, gamma), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("gamma, lam", [(0.99, 0.95), (0.9, 1.0), (0.5, 0.0), (1.0, 1.0)])
def test_gae_matches_a_plain_loop(gamma, lam):
    rng, rewards, terminated, _, dones = random_rollout(seed=1)
    values, next_values = rng.normal(size=rewards.shape), rng.normal(size=rewards.shape)
    next_values[:-1] = np.where(dones[:-1], next_values[:-1], values[1:])  # V(s_{t+1}) unless the episode ended
    want = gae_by_loop(rewards, values, next_values, terminated, dones, gamma, lam)
    adv, ret = m.compute_gae(f64(rewards), f64(values), f64(next_values), f64(terminated), f64(dones), gamma, lam)
    np.testing.assert_allclose(adv.numpy(), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ret.numpy(), want + values, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("gamma", [0.99, 0.9, 1.0])
def test_gae_with_lambda_1_and_a_zero_critic_is_the_reward_to_go(gamma):
    _, rewards, terminated, _, dones = random_rollout(seed=2)
    zero = f64(np.zeros_like(rewards))
    adv, ret = m.compute_gae(f64(rewards), zero, zero, f64(terminated), f64(dones), gamma, 1.0)
    rtg = m.reward_to_go(f64(rewards), f64(dones), gamma)
    torch.testing.assert_close(adv, rtg, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ret, rtg, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# REINFORCE without a critic: truncations and the rollout's cut count as terminations
# ---------------------------------------------------------------------------------------------
def test_reinforce_treats_a_truncation_like_a_termination():
    rewards = f64([[1.0], [2.0], [4.0], [8.0]])
    end_at_1 = f64([[0.0], [1.0], [0.0], [0.0]])  # the episode ends after step 1 (truncated or terminated alike)
    got = m.reward_to_go(rewards, end_at_1, 0.5).flatten().tolist()
    # nothing after the truncation is added (no bootstrap); the next episode starts afresh at step 2
    assert got == [1 + 0.5 * 2, 2.0, 4 + 0.5 * 8, 8.0]


def test_reinforce_cuts_the_unfinished_episode_at_the_end_of_the_rollout():
    rewards = f64(np.ones((3, 2)))
    got = m.reward_to_go(rewards, f64(np.zeros((3, 2))), 0.9)
    # the episode goes on past the rollout: its unseen rewards count as 0, as after a truncation
    np.testing.assert_allclose(got.numpy(), [[1 + 0.9 + 0.81] * 2, [1.9] * 2, [1.0] * 2])


def test_reward_to_go_does_not_restart_at_a_non_zero_reward():
    # the seed's Pong trick restarted the sum at every r ≠ 0; a general return keeps summing
    rewards = f64([[0.0], [1.0], [0.0], [-1.0]])
    got = m.reward_to_go(rewards, f64(np.zeros((4, 1))), 0.5).flatten().tolist()
    assert got == [0.5 * 1 + 0.125 * -1, 1 + 0.25 * -1, 0.5 * -1, -1.0]


def test_normalize_has_zero_mean_and_unit_std():
    x = torch.tensor([3.0, 5.0, 9.0, -1.0])
    z = m.normalize(x)
    assert z.mean().item() == pytest.approx(0.0, abs=1e-6) and z.std().item() == pytest.approx(1.0, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# The estimator: mean of ∇ over many samples against the exact gradient of E[r]
# ---------------------------------------------------------------------------------------------
def estimate(params, leaves, rewards_of, seed, baseline=0.0):
    """∇E[r] estimated as −∇ policy_gradient_loss over the batch of samples drawn from `params`."""
    torch.manual_seed(seed)
    actions = m.sample(tuple(p.detach() if p is not None else None for p in params))
    logp = m.log_prob(params, actions)
    return torch.autograd.grad(-m.policy_gradient_loss(logp, rewards_of(actions) - baseline), leaves)


def bandit_standard_error(pi, psi_arm, n):
    """SE of the mean of n per-sample estimates x = Ψ_a (e_a − π), a ~ π (the gradient of log softmax):
    E[x_j] = Σ_a π_a Ψ_a (δ_aj − π_j),  E[x_j²] = Σ_a π_a Ψ_a² (δ_aj − π_j)², both exact."""
    d = torch.eye(len(pi), dtype=pi.dtype) - pi[None, :]  # row a: e_a − π
    mean = (pi[:, None] * psi_arm[:, None] * d).sum(0)
    second = (pi[:, None] * psi_arm[:, None] ** 2 * d**2).sum(0)
    return torch.sqrt(second - mean**2) / math.sqrt(n)


def test_estimator_on_a_softmax_bandit_matches_the_exact_gradient():
    # one step, 3 arms, π = softmax(θ), deterministic rewards: J = Σ_a π_a r_a, ∂J/∂θ_j = π_j (r_j − J)
    theta = torch.tensor([0.3, -0.5, 0.1], dtype=torch.float64, requires_grad=True)
    r_arm = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)
    n = 200_000
    pi = torch.softmax(theta, 0).detach()
    exact = pi * (r_arm - (pi * r_arm).sum())
    for baseline in (0.0, float((pi * r_arm).sum()), -3.0):  # a constant baseline leaves the mean unchanged
        (grad,) = estimate((theta.expand(n, 1, 3), None), [theta], lambda a: r_arm[a[:, 0]], seed=0, baseline=baseline)
        tol = 5 * bandit_standard_error(pi, r_arm - baseline, n)  # 5 standard errors
        assert torch.all((grad - exact).abs() < tol), (baseline, grad, exact, tol)


def test_estimator_on_a_one_step_gaussian_matches_the_exact_gradient():
    # a ~ N(μ, σ²), r = −(a − c)²: J = −((μ − c)² + σ²)
    # ∂J/∂μ = −2(μ − c), ∂J/∂log σ = −2σ²
    mu = torch.tensor([0.4], dtype=torch.float64, requires_grad=True)
    log_std = torch.tensor([math.log(0.7)], dtype=torch.float64, requires_grad=True)
    c, n = 1.5, 200_000
    sigma = 0.7
    exact = torch.tensor([-2 * (0.4 - c), -2 * sigma**2], dtype=torch.float64)
    params = (mu.expand(n, 1), log_std.expand(n, 1))

    def rewards_of(a):
        return -((a[:, 0] - c) ** 2)

    g_mu, g_ls = estimate(params, [mu, log_std], rewards_of, seed=1)
    # per-sample estimates written out, x_μ = r·(a − μ)/σ² and x_logσ = r·((a − μ)²/σ² − 1);
    # the standard error of their mean comes from their spread
    torch.manual_seed(1)
    a = m.sample(tuple(p.detach() for p in params))[:, 0]
    r = rewards_of(a[:, None])
    x_mu, x_ls = r * (a - 0.4) / sigma**2, r * ((a - 0.4) ** 2 / sigma**2 - 1)
    assert g_mu.item() == pytest.approx(x_mu.mean().item(), rel=1e-9)  # autograd = the formula
    assert g_ls.item() == pytest.approx(x_ls.mean().item(), rel=1e-9)
    for got, want, x in ((g_mu, exact[0], x_mu), (g_ls, exact[1], x_ls)):
        assert abs(got.item() - want.item()) < 5 * x.std().item() / math.sqrt(n), (got, want)


def test_normalised_estimator_points_along_the_exact_gradient():
    # Ψ̂ = (r − mean) / std: a baseline and a scale, so E[estimate] = ∇J / std(r) (up to O(1/n) from
    # using the batch's own mean and std)
    theta = torch.tensor([0.3, -0.5, 0.1], dtype=torch.float64, requires_grad=True)
    r_arm = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)
    n = 200_000
    torch.manual_seed(2)
    pi = torch.softmax(theta, 0).detach()
    a = m.sample((theta.detach().expand(n, 1, 3), None))  # one head
    logp = m.log_prob((theta.expand(n, 1, 3), None), a)
    a = a[:, 0]
    (grad,) = torch.autograd.grad(-m.policy_gradient_loss(logp, m.normalize(r_arm[a])), [theta])
    r_mean = (pi * r_arm).sum()
    r_std = torch.sqrt((pi * (r_arm - r_mean) ** 2).sum())
    exact = pi * (r_arm - r_mean) / r_std
    tol = 5 * bandit_standard_error(pi, (r_arm - r_mean) / r_std, n) + 10 / n
    assert torch.all((grad - exact).abs() < tol), (grad, exact, tol)


def test_policy_gradient_loss_does_not_differentiate_through_psi():
    logp = torch.tensor([-1.0, -2.0], requires_grad=True)
    psi = torch.tensor([1.0, 3.0], requires_grad=True)
    m.policy_gradient_loss(logp, psi).backward()
    assert psi.grad is None or torch.all(psi.grad == 0)
    torch.testing.assert_close(logp.grad, torch.tensor([-0.5, -1.5]))


# ---------------------------------------------------------------------------------------------
# train(): one policy step per batch; the REINFORCE mode runs without a critic
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimator, value_steps", [("gae", [2 * 3 * 4]), ("reinforce", [])])
def test_exactly_one_policy_step_per_batch(estimator, value_steps, in_tmp, monkeypatch):
    losses, steps = [], {}
    real_loss, real_step = m.policy_gradient_loss, torch.optim.Adam.step
    monkeypatch.setattr(m, "policy_gradient_loss", lambda logp, psi: losses.append(len(logp)) or real_loss(logp, psi))

    def counting_step(self, *a, **k):
        steps[id(self)] = steps.get(id(self), 0) + 1
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", counting_step)
    flags = ["--vf-epochs", "3", "--num-minibatches", "4", "--estimator", estimator]
    args = m.parse_args(["--env", "Pendulum-v1", *short_flags("vpg"), *flags])
    m.train(args)
    assert losses == [args.num_envs * args.num_steps] * 2  # 256 steps, 128 a batch: one full-batch loss each
    # policy: 1 step a batch; value: vf_epochs × minibatches a batch with gae, none without a critic
    assert sorted(steps.values()) == sorted([2, *value_steps])


@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_reinforce_mode_runs_without_a_critic(env, in_tmp):
    s = m.train(m.parse_args(["--env", env, *short_flags("vpg"), "--estimator", "reinforce"]))
    assert s["global_step"] == 256 and math.isfinite(s["eval_mean_return"])
    (path,) = glob.glob(os.path.join(s["run_dir"], "progress.csv"))
    rows = list(csv.DictReader(open(path)))
    assert rows and all(math.isnan(float(r["value_loss"])) for r in rows)  # the value network is never fitted
    gae = m.train(m.parse_args(["--env", env, *short_flags("vpg")]))
    rows = list(csv.DictReader(open(os.path.join(gae["run_dir"], "progress.csv"))))
    assert all(math.isfinite(float(r["value_loss"])) for r in rows)


def test_estimator_is_documented_and_the_cli_refuses_other_values(capsys):
    assert "reinforce" in m.__doc__ and "--estimator" in m.__doc__
    assert m.parse_args(["--estimator", "reinforce"]).estimator == "reinforce"
    with pytest.raises(SystemExit) as e:  # a Literal field: tyro names the choices and exits with 2
        m.parse_args(["--estimator", "a2c"])
    assert e.value.code == 2 and "reinforce" in capsys.readouterr().err
    with pytest.raises(ValueError, match="vf_learning_rate"):
        m.parse_args(["--vf-learning-rate", "0"])


def test_bound_penalty_is_zero_inside_and_pulls_the_mean_back():
    low, high = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 1.0])
    inside = torch.tensor([[1.9, 0.5], [-2.0, 1.0]])
    assert m.bound_penalty(inside, low, high).item() == 0.0
    mean = torch.tensor([[3.0, -0.5], [0.0, 0.5]], requires_grad=True)
    pen = m.bound_penalty(mean, low, high)
    assert pen.item() == pytest.approx((1.0**2 + 0.5**2 + 0.0) / 2)  # per-state sums, averaged over states
    pen.backward()
    torch.testing.assert_close(mean.grad, torch.tensor([[1.0, -0.5], [0.0, 0.0]]))  # descent moves μ inside
    inf = torch.tensor([np.inf, np.inf])
    far = torch.tensor([[1e6, -1e6]], requires_grad=True)
    pen = m.bound_penalty(far, -inf, inf)
    pen.backward()
    assert pen.item() == 0.0 and torch.all(far.grad == 0)  # unbounded Box: no penalty, no NaN
