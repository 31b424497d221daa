"""trpo.py's maths against independent computations: conjugate gradient against a direct solve, the
Fisher-vector product against an explicit Hessian of the mean KL, the natural step against an explicit solve of
(∇²KL̄ + ηI)s = g, the analytic KL against torch.distributions, and real TRPO steps on batches collected from
CartPole and Pendulum."""

import math
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.func import functional_call

import trpo as m

D = torch.distributions


def dist(params):
    """The torch.distributions object for a parameter tuple of Policy.forward (independent of trpo.py's maths)."""
    out, log_std = params  # Categorical heads (logits: …, heads, choices), or a diagonal Gaussian
    return D.Independent(D.Categorical(logits=out) if log_std is None else D.Normal(out, log_std.exp()), 1)


def tiny_policy(space, seed=0):
    """A small float64 policy with random (not near-zero) weights, so every term of the KL matters."""
    torch.manual_seed(seed)
    policy = m.Policy((3,), space, (5,), log_std_init=-0.3).double()
    with torch.no_grad():
        for p in policy.parameters():
            p.normal_(0.0, 0.7)
    return policy


SPACES = {"categorical": gym.spaces.Discrete(4), "gaussian": gym.spaces.Box(-1, 1, (2,))}


def flat_params(policy):
    return torch.cat([p.detach().reshape(-1) for p in policy.parameters()]).clone()


def mean_kl_hessian(policy, obs):
    """θ_old (flat), π_old's parameters on `obs`, and the explicit Hessian ∇²_θ KL̄ at θ_old, where
    KL̄(θ) = mean KL(π_old‖π_θ) over `obs` is computed by torch.distributions (not trpo.py's kl_divergence)."""
    names = [n for n, _ in policy.named_parameters()]
    shapes = [p.shape for p in policy.parameters()]
    theta_old = flat_params(policy)
    with torch.no_grad():
        old = policy(obs)

    def mean_kl(theta):  # KL̄(θ) with θ flat
        chunks = theta.split([s.numel() for s in shapes])
        params = {n: c.view(s) for n, c, s in zip(names, chunks, shapes, strict=True)}
        return D.kl_divergence(dist(old), dist(functional_call(policy, params, (obs,)))).mean()

    H = torch.autograd.functional.hessian(mean_kl, theta_old)
    assert H.shape == (theta_old.numel(), theta_old.numel())
    return theta_old, old, H


# ---------------------------------------------------------------------------------------------
# Conjugate gradient
# ---------------------------------------------------------------------------------------------
def test_conjugate_gradient_solves_a_random_spd_system():
    g = torch.Generator().manual_seed(0)
    n = 30
    Q = torch.randn(n, n, generator=g, dtype=torch.float64)
    A = Q @ Q.T + 0.5 * torch.eye(n, dtype=torch.float64)  # SPD, moderately conditioned
    b = torch.randn(n, generator=g, dtype=torch.float64)
    want = torch.linalg.solve(A, b)
    x = m.conjugate_gradient(lambda v: A @ v, b, iters=3 * n, tol=1e-20)
    torch.testing.assert_close(x, want, rtol=1e-8, atol=1e-8)


def test_conjugate_gradient_stops_at_the_tolerance_and_the_iteration_limit():
    A = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    b = torch.ones(4, dtype=torch.float64)
    calls = []

    def avp(v):
        calls.append(1)
        return A @ v

    x = m.conjugate_gradient(avp, b, iters=100, tol=1e-20)
    assert len(calls) <= 5  # 4 distinct eigenvalues: exact after 4 steps, then the residual is ~0
    torch.testing.assert_close(x, b / torch.diagonal(A))
    calls.clear()
    m.conjugate_gradient(avp, b, iters=2, tol=1e-20)
    assert len(calls) == 2
    calls.clear()
    assert torch.equal(m.conjugate_gradient(avp, torch.zeros(4, dtype=torch.float64), iters=10), torch.zeros(4))
    assert not calls  # b = 0: already solved, no product needed


# ---------------------------------------------------------------------------------------------
# Analytic KL and the Fisher-vector product
# ---------------------------------------------------------------------------------------------
def test_kl_divergence_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    p, q = torch.randn(6, 1, 5, generator=g), torch.randn(6, 1, 5, generator=g)  # a Discrete action: one head
    torch.testing.assert_close(
        m.kl_divergence((p, None), (q, None)),
        D.kl_divergence(D.Categorical(logits=p[:, 0]), D.Categorical(logits=q[:, 0])),
    )
    mu_p, mu_q = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    ls_p, ls_q = 0.5 * torch.randn(6, 3, generator=g), 0.5 * torch.randn(6, 3, generator=g)
    torch.testing.assert_close(
        m.kl_divergence((mu_p, ls_p), (mu_q, ls_q)), D.kl_divergence(dist((mu_p, ls_p)), dist((mu_q, ls_q)))
    )
    assert torch.allclose(m.kl_divergence((mu_p, ls_p), (mu_p, ls_p)), torch.zeros(6))


@pytest.mark.parametrize("kind", SPACES)
@pytest.mark.parametrize("damping", [0.0, 0.1])
def test_fisher_vector_product_matches_the_explicit_hessian_of_the_mean_kl(kind, damping):
    policy = tiny_policy(SPACES[kind])
    obs = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    theta_old, old, H = mean_kl_hessian(policy, obs)
    fvp = m.fisher_vector_product(policy, obs, old, damping)
    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        v = torch.randn(theta_old.numel(), dtype=torch.float64, generator=g)
        torch.testing.assert_close(fvp(v), H @ v + damping * v, rtol=1e-9, atol=1e-10)
    # the Fisher matrix is positive semi-definite: the KL has its minimum at θ_old
    assert torch.linalg.eigvalsh((H + H.T) / 2).min() > -1e-10


@pytest.mark.parametrize("kind", SPACES)
def test_trpo_step_is_the_explicit_solve_of_the_damped_fisher_system(kind):
    """The full step trpo_step takes is β·s with s the direct solution of (∇²KL̄ + ηI)s = g (explicit Hessian,
    torch.linalg.solve) and β = √(2δ / sᵀ(∇²KL̄ + ηI)s): the natural gradient, not the plain gradient g."""
    policy = tiny_policy(SPACES[kind])
    gen = torch.Generator().manual_seed(5)
    obs = torch.randn(32, 3, dtype=torch.float64, generator=gen)
    theta_old, old, H = mean_kl_hessian(policy, obs)
    with torch.no_grad():
        act = dist(old).sample()
        logp_old = dist(old).log_prob(act)
    # large advantages make g large, so CG's absolute stopping tolerance is negligible; the step does not scale with g
    adv = 1e3 * torch.randn(32, dtype=torch.float64, generator=gen)
    ratio = torch.exp(dist(policy(obs)).log_prob(act) - logp_old)
    g = torch.cat([x.reshape(-1) for x in torch.autograd.grad((ratio * adv).mean(), list(policy.parameters()))])
    delta, eta, n = 1e-4, 0.1, theta_old.numel()
    A = H + eta * torch.eye(n, dtype=torch.float64)
    s = torch.linalg.solve(A, g)
    want = math.sqrt(2 * delta / (s @ A @ s).item()) * s
    assert torch.nn.functional.cosine_similarity(s, g, dim=0) < 0.9  # the solve turns the direction
    args = m.Args(max_kl=delta, cg_damping=eta, cg_iters=n, backtrack_iters=1, accept_ratio=0.0)
    stats = m.trpo_step(policy, obs, act, logp_old, adv, args)
    assert stats["accepted"] and stats["step_fraction"] == 1.0, stats
    torch.testing.assert_close(flat_params(policy) - theta_old, want, rtol=1e-5, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Real TRPO steps on real batches
# ---------------------------------------------------------------------------------------------
def collect(env_id: str, num_envs=4, num_steps=128, seed=0):
    """A fresh on-policy batch from trpo.py's own env, network, sampling and GAE functions."""
    args = m.parse_args(["--env", env_id, "--seed", str(seed)])
    torch.manual_seed(seed)
    envs = m.make_envs(env_id, num_envs)
    space, obs_dim = envs.single_action_space, envs.single_observation_space.shape[0]
    policy, value = (
        m.Policy((obs_dim,), space, args.hidden_sizes, args.log_std_init),
        m.Value((obs_dim,), args.hidden_sizes),
    )
    obs_l, act_l, logp_l, rew_l, term_l, done_l, next_l = [], [], [], [], [], [], []
    obs, _ = envs.reset(seed=[seed + i for i in range(num_envs)])
    with torch.no_grad():
        for _ in range(num_steps):
            o = torch.as_tensor(obs, dtype=torch.float32)
            params = policy(o)
            a = m.sample(params)
            nxt, r, term, trunc, info = envs.step(m.to_env_action(a, space))
            real_next = nxt.copy()
            if "final_obs" in info:
                for i in np.flatnonzero(info["_final_obs"]):
                    real_next[i] = info["final_obs"][i]
            obs_l.append(o), act_l.append(a), logp_l.append(m.log_prob(params, a))
            rew_l.append(torch.as_tensor(r, dtype=torch.float32)), next_l.append(torch.as_tensor(real_next))
            term_l.append(torch.as_tensor(term, dtype=torch.float32))
            done_l.append(torch.as_tensor(term | trunc, dtype=torch.float32))
            obs = nxt
        o, nx = torch.stack(obs_l), torch.stack(next_l).float()
        rew, term, done = torch.stack(rew_l), torch.stack(term_l), torch.stack(done_l)
        adv, _ = m.compute_gae(rew, value(o), value(nx), term, done, args.gamma, args.gae_lambda)
    envs.close()
    adv = adv.reshape(-1)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    act = torch.stack(act_l)
    return args, policy, o.reshape(-1, obs_dim), act.reshape(-1, *act.shape[2:]), torch.stack(logp_l).reshape(-1), adv


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_trpo_step_on_a_real_batch_stays_in_the_trust_region_and_improves(env_id):
    args, policy, obs, act, logp_old, adv = collect(env_id)
    with torch.no_grad():
        old = dist(policy(obs))
    theta_old = flat_params(policy)
    stats = m.trpo_step(policy, obs, act, logp_old, adv, args)
    assert stats["accepted"], stats
    assert 1 <= stats["ls_steps"] <= args.backtrack_iters
    assert not torch.equal(flat_params(policy), theta_old)
    with torch.no_grad():
        new = dist(policy(obs))
        kl = D.kl_divergence(old, new).mean().item()
        ratio = torch.exp(new.log_prob(act) - logp_old)
        surrogate_new, surrogate_old = (ratio * adv).mean().item(), adv.mean().item()  # ratio = 1 at θ_old
    assert 0 < kl <= args.max_kl * (1 + 1e-5)
    assert kl == pytest.approx(stats["kl"], rel=1e-4)
    assert surrogate_new > surrogate_old
    assert surrogate_new - surrogate_old == pytest.approx(stats["surrogate_improvement"], rel=1e-3, abs=1e-7)
    # the first-order prediction of the accepted step bounds what the line search asked for
    assert stats["surrogate_improvement"] >= args.accept_ratio * stats["expected_improvement"] > 0


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_full_step_sits_on_the_edge_of_the_quadratic_trust_region(env_id):
    """β = √(2δ / sᵀ(F+ηI)s) puts the full step Δθ where ½·Δθᵀ(F+ηI)Δθ = δ; for a small δ the quadratic
    model ½·ΔθᵀFΔθ is close to the true KL̄ there."""
    args, policy, obs, act, logp_old, adv = collect(env_id, num_envs=2, num_steps=64)
    delta, damping = 1e-5, 1e-3
    args = replace(args, max_kl=delta, cg_damping=damping, backtrack_iters=1, accept_ratio=0.0)
    theta_old = flat_params(policy)
    with torch.no_grad():
        old_params = tuple(None if x is None else x.clone() for x in policy(obs))  # log σ: a view of a parameter
    stats = m.trpo_step(policy, obs, act, logp_old, adv, args)
    assert stats["accepted"] and stats["step_fraction"] == 1.0
    step = flat_params(policy) - theta_old
    with torch.no_grad():
        kl = D.kl_divergence(dist(old_params), dist(policy(obs))).mean().item()
    m.assign(list(policy.parameters()), theta_old)
    F_step = m.fisher_vector_product(policy, obs, old_params, 0.0)(step)
    quadratic = 0.5 * (step @ F_step).item()
    assert quadratic + 0.5 * damping * (step @ step).item() == pytest.approx(delta, rel=1e-3)
    assert kl == pytest.approx(quadratic, rel=0.05)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_line_search_rejects_a_step_that_cannot_improve_and_keeps_the_old_parameters(env_id):
    args, policy, obs, act, logp_old, adv = collect(env_id, num_envs=2, num_steps=64)
    params = list(policy.parameters())
    theta_old = flat_params(policy)
    with torch.no_grad():
        old = tuple(None if x is None else x.clone() for x in policy(obs))
    L = (torch.exp(m.log_prob(policy(obs), act) - logp_old) * adv).mean()
    g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(L, params)])
    downhill = -0.01 * g / g.norm()  # against the gradient: the surrogate only falls along it
    stats = m.line_search(policy, obs, act, logp_old, adv, old, downhill, (g @ downhill).item(), args)
    assert not stats["accepted"] and stats["ls_steps"] == args.backtrack_iters
    assert stats["kl"] == 0.0 and stats["surrogate_improvement"] == 0.0
    assert torch.equal(flat_params(policy), theta_old)  # bit for bit

    huge = 1e3 * g / g.norm()  # uphill but far outside the trust region at every backtrack
    stats = m.line_search(
        policy, obs, act, logp_old, adv, old, huge, (g @ huge).item(), replace(args, backtrack_iters=3)
    )
    assert not stats["accepted"]
    assert torch.equal(flat_params(policy), theta_old)


def test_trpo_step_measures_the_kl_against_the_old_sigma_when_sigma_moves():
    """Far-off actions with positive advantages make log σ the main thing the step changes; the KL the line
    search checks must use π_old's σ (a copy, not a view of the parameter being changed)."""
    policy = m.Policy((3,), SPACES["gaussian"], (8,), log_std_init=-1.0)
    g = torch.Generator().manual_seed(4)
    obs = torch.randn(256, 3, generator=g)
    with torch.no_grad():
        mean, log_std = policy(obs)
        z = torch.randn(256, 2, generator=g)
        act = mean + log_std.exp() * z
        logp_old, old = m.log_prob((mean, log_std), act), dist((mean, log_std.clone()))
    adv = z.pow(2).sum(-1)
    adv = (adv - adv.mean()) / adv.std()  # actions far from μ were good: widen σ
    args = m.parse_args(["--env", "Pendulum-v1"])
    stats = m.trpo_step(policy, obs, act, logp_old, adv, args)
    assert stats["accepted"] and policy.log_std.min() > -1.0 + 1e-3
    with torch.no_grad():
        kl = D.kl_divergence(old, dist(policy(obs))).mean().item()
    assert kl == pytest.approx(stats["kl"], rel=1e-4) and kl <= args.max_kl * (1 + 1e-5)


def test_trpo_step_with_zero_advantages_takes_no_step():
    args, policy, obs, act, logp_old, adv = collect("CartPole-v1", num_envs=2, num_steps=64)
    theta_old = flat_params(policy)
    stats = m.trpo_step(policy, obs, act, logp_old, torch.zeros_like(adv), args)
    assert not stats["accepted"] and stats["kl"] == 0.0
    assert torch.equal(flat_params(policy), theta_old)


def test_summary_reports_line_search_statistics(in_tmp):
    args = m.parse_args(
        "--env CartPole-v1 --total-timesteps 1024 --num-envs 2 --num-steps 128 --eval-episodes 2".split()
    )
    s = m.train(args)
    assert s["iterations"] == 4
    assert sum(s["line_search_steps_hist"]) + round(s["rejected_fraction"] * 4) == 4
    assert 1.0 <= s["line_search_steps_mean"] <= args.backtrack_iters
    rows = (in_tmp / s["run_dir"] / "progress.csv").read_text().splitlines()
    header = rows[0].split(",")
    for col in ("kl", "accepted", "ls_steps", "surrogate_improvement", "rejected_fraction"):
        assert col in header
    assert len(rows) == 5
