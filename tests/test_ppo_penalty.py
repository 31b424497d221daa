"""ppo_penalty.py's maths against independent computations: the β rule, the penalised surrogate,
the analytic KL, whole updates against torch.distributions, and β's life in training (fixed mode, checkpoints)."""

import copy
import math

import gymnasium as gym
import pytest
import torch
import torch.distributions as D

import ppo_penalty as m


# ---------------------------------------------------------------------------------------------
# The adaptive β rule
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kl, want",
    [
        (0.001, 0.5),  # d < d_targ/1.5: halve
        (0.0066, 0.5),  # just below d_targ/1.5 = 0.00667
        (0.0067, 1.0),  # just above d_targ/1.5: keep
        (0.01, 1.0),  # on target: keep
        (0.0149, 1.0),  # just below 1.5·d_targ: keep
        (0.0151, 2.0),  # just above 1.5·d_targ: double
        (0.5, 2.0),  # far above: still only doubles
        (0.0, 0.5),  # no movement at all: halve
    ],
)
def test_update_beta_three_branches(kl, want):
    assert m.update_beta(1.0, kl, 0.01) == want


def test_update_beta_scales_with_the_target():
    assert m.update_beta(0.3, 0.05, 0.1) == pytest.approx(0.15)  # 0.05 < 0.1/1.5
    assert m.update_beta(0.3, 0.12, 0.1) == pytest.approx(0.3)
    assert m.update_beta(0.3, 0.2, 0.1) == pytest.approx(0.6)  # 0.2 > 0.15


def test_update_beta_stays_within_the_bounds():
    assert (m.BETA_MIN, m.BETA_MAX) == (1e-3, 1e2)
    assert m.update_beta(0.0015, 0.0, 0.01) == 1e-3  # halving would give 7.5e-4
    assert m.update_beta(1e-3, 0.0, 0.01) == 1e-3  # already at the floor
    assert m.update_beta(80.0, 1.0, 0.01) == 1e2  # doubling would give 160
    assert m.update_beta(1e2, 1.0, 0.01) == 1e2  # already at the ceiling
    assert m.update_beta(1e2, 0.0, 0.01) == 50.0  # and comes back down
    assert m.update_beta(500.0, 0.01, 0.01) == 1e2  # "keep" is clamped too
    assert m.update_beta(1e-4, 0.01, 0.01) == 1e-3
    assert isinstance(m.update_beta(1, 0.01, 0.01), float)


# ---------------------------------------------------------------------------------------------
# The penalised surrogate
# ---------------------------------------------------------------------------------------------
def test_penalized_surrogate_matches_the_formula():
    logp_old = torch.tensor([-1.0, -0.5, -2.0, -0.1])
    ratio = torch.tensor([1.0, 1.3, 0.6, 2.0])
    adv = torch.tensor([2.0, -1.0, 0.5, 3.0])
    kl = torch.tensor([0.0, 0.02, 0.1, 0.4])
    beta = 0.7
    # −(1/4)·Σ (r·Â − β·KL), written out term by term
    want = (
        -((1.0 * 2.0 - 0.7 * 0.0) + (1.3 * -1.0 - 0.7 * 0.02) + (0.6 * 0.5 - 0.7 * 0.1) + (2.0 * 3.0 - 0.7 * 0.4)) / 4
    )
    got = m.penalized_surrogate(logp_old + torch.log(ratio), logp_old, adv, kl, beta)
    assert got.item() == pytest.approx(want, rel=1e-6)
    # β = 0 is the plain importance-sampled policy gradient; no clipping anywhere
    assert m.penalized_surrogate(logp_old + torch.log(ratio), logp_old, adv, kl, 0.0).item() == pytest.approx(
        -(ratio * adv).mean().item(), rel=1e-6
    )


def test_penalized_surrogate_gradients():
    logp_old = torch.zeros(3)
    logp_new = torch.log(torch.tensor([0.5, 1.0, 3.0])).requires_grad_()
    adv = torch.tensor([1.0, -2.0, 1.0])
    kl = torch.tensor([0.1, 0.2, 0.3], requires_grad=True)
    m.penalized_surrogate(logp_new, logp_old, adv, kl, 2.0).backward()
    # ∂/∂logp_i = −r_i·Â_i/n (never zeroed: no clip);  ∂/∂KL_i = β/n
    torch.testing.assert_close(logp_new.grad, torch.tensor([-0.5, 2.0, -3.0]) / 3)
    torch.testing.assert_close(kl.grad, torch.full((3,), 2.0 / 3))


# ---------------------------------------------------------------------------------------------
# Analytic KL
# ---------------------------------------------------------------------------------------------
def test_kl_divergence_categorical_matches_torch():
    g = torch.Generator().manual_seed(0)
    p_logits, q_logits = torch.randn(6, 5, generator=g) * 2, torch.randn(6, 5, generator=g) * 2
    want = torch.distributions.kl_divergence(
        torch.distributions.Categorical(logits=p_logits), torch.distributions.Categorical(logits=q_logits)
    )
    p_logits, q_logits = p_logits[:, None], q_logits[:, None]  # a Discrete action: one head
    torch.testing.assert_close(m.kl_divergence((p_logits, None), (q_logits, None)), want)
    # logits are only defined up to a constant per state
    torch.testing.assert_close(m.kl_divergence((p_logits + 3.0, None), (q_logits - 1.0, None)), want)
    assert torch.allclose(m.kl_divergence((p_logits, None), (p_logits, None)), torch.zeros(6), atol=1e-6)


def test_kl_divergence_diagonal_gaussian_matches_torch():
    g = torch.Generator().manual_seed(1)
    mp, mq = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    sp, sq = torch.randn(6, 3, generator=g) * 0.7, torch.randn(6, 3, generator=g) * 0.7

    def normal(mean, log_std):
        return torch.distributions.Independent(torch.distributions.Normal(mean, log_std.exp()), 1)

    want = torch.distributions.kl_divergence(normal(mp, sp), normal(mq, sq))
    got = m.kl_divergence((mp, sp), (mq, sq))
    torch.testing.assert_close(got, want)
    # the order matters: KL(p‖q) ≠ KL(q‖p), and the function computes the first
    assert not torch.allclose(got, m.kl_divergence((mq, sq), (mp, sp)))
    assert torch.allclose(m.kl_divergence((mp, sp), (mp, sp)), torch.zeros(6), atol=1e-6)


def test_kl_divergence_one_dimensional_gaussian_closed_form():
    # KL(N(0, 1) ‖ N(1, 2²)) = log 2 + (1 + 1)/(2·4) − ½
    got = m.kl_divergence((torch.zeros(1, 1), torch.zeros(1, 1)), (torch.ones(1, 1), torch.full((1, 1), math.log(2))))
    assert got.item() == pytest.approx(math.log(2) + 2 / 8 - 0.5, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Whole updates against torch.distributions
# ---------------------------------------------------------------------------------------------
SPACES = {"gaussian": gym.spaces.Box(-1, 1, (2,)), "categorical": gym.spaces.Discrete(3)}


def dist(params):
    """The torch.distributions object for Policy.forward's parameters (Categorical heads, or a diagonal Gaussian)."""
    out, log_std = params
    return D.Independent(D.Categorical(logits=out) if log_std is None else D.Normal(out, log_std.exp()), 1)


def reference_update(policy, value, optimizer, obs, act, logp_old, adv, ret, beta, args):
    """The update written with torch.distributions: every epoch one full-batch Adam step on
    −E[r·Â − β·KL(π_old‖π_θ)] + c_v·½·E[(V − R̂)²] − c_H·E[H(π_θ)], each network's gradient clipped on its own."""
    with torch.no_grad():
        old = dist(policy(obs))
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    for _ in range(args.update_epochs):
        new = dist(policy(obs))
        ratio = torch.exp(new.log_prob(act) - logp_old)
        pg_loss = -(ratio * adv - beta * D.kl_divergence(old, new)).mean()
        v_loss = 0.5 * (value(obs) - ret).pow(2).mean()
        loss = pg_loss + args.vf_coef * v_loss - args.ent_coef * new.entropy().mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), args.max_grad_norm)
        torch.nn.utils.clip_grad_norm_(value.parameters(), args.max_grad_norm)
        optimizer.step()
    return old, pg_loss.item()


@pytest.mark.parametrize("kind", SPACES)
def test_penalty_update_matches_torch_distributions(kind):
    """One full-batch minibatch, two epochs and a β large enough to matter: the second step's KL term is taken
    where π_θ ≠ π_old, so KL(π_θ‖π_old) in the loss (or in the logged KL that sets β) gives other numbers."""
    torch.manual_seed(0)
    space, T, N, beta = SPACES[kind], 16, 2, 10.0
    policy, value = m.Policy((3,), space, (8,), -0.3).double(), m.Value((3,), (8,)).double()
    obs = torch.randn(T, N, 3, dtype=torch.float64)
    with torch.no_grad():
        act = dist(policy(obs)).sample()
        logp_old = dist(policy(obs)).log_prob(act)
    adv, ret = torch.randn(T, N, dtype=torch.float64), torch.randn(T, N, dtype=torch.float64)
    args = m.Args(update_epochs=2, num_minibatches=1, ent_coef=0.01, max_grad_norm=10.0)
    ref_policy, ref_value = copy.deepcopy(policy), copy.deepcopy(value)
    ref_opt = torch.optim.Adam([*ref_policy.parameters(), *ref_value.parameters()], lr=0.05, eps=1e-5)
    flat = (obs.flatten(0, 1), act.flatten(0, 1), logp_old.flatten(), adv.flatten(), ret.flatten())
    old, ref_pg_loss = reference_update(ref_policy, ref_value, ref_opt, *flat, beta, args)

    optimizer = torch.optim.Adam([*policy.parameters(), *value.parameters()], lr=0.05, eps=1e-5)
    batch = {"obs": obs, "act": act, "logp": logp_old}
    stats = m.penalty_update(policy, value, optimizer, batch, adv, ret, beta, args, iteration=1)

    params, ref_params = (
        [*policy.parameters(), *value.parameters()],
        [*ref_policy.parameters(), *ref_value.parameters()],
    )
    for got, want in zip(params, ref_params, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-10)
    assert stats["epochs_done"] == 2 and stats["policy_loss"] == pytest.approx(ref_pg_loss, rel=1e-7)
    with torch.no_grad():
        kl = D.kl_divergence(old, dist(ref_policy(flat[0]))).mean().item()  # KL(π_old‖π_new), what β is set by
        reverse = D.kl_divergence(dist(ref_policy(flat[0])), old).mean().item()
    assert kl > 1e-3 and abs(reverse - kl) > 1e-3 * kl  # the test can tell the two directions apart
    assert stats["kl"] == pytest.approx(kl, rel=1e-7)


# ---------------------------------------------------------------------------------------------
# β in training: the rule is applied, fixed mode, checkpoints
# ---------------------------------------------------------------------------------------------
def short(*extra, env="CartPole-v1"):
    return m.parse_args(
        [
            "--env",
            env,
            "--total-timesteps",
            "512",
            "--num-envs",
            "2",
            "--num-steps",
            "64",
            "--eval-episodes",
            "2",
            *extra,
        ]
    )


def test_training_applies_the_rule_to_the_measured_kl(in_tmp):
    s = m.train(short("--beta-init", "0.5"))
    history = s["beta_history"]
    assert len(history) == 4 and [h[0] for h in history] == [128, 256, 384, 512]
    assert history[0][1] == 0.5 and all(h[2] >= 0 for h in history)
    betas = [h[1] for h in history] + [s["beta"]]
    for (_, beta, kl), nxt in zip(history, betas[1:], strict=True):
        assert nxt == m.update_beta(beta, kl, 0.01)


def test_fixed_beta_mode_keeps_beta_constant(in_tmp):
    # a KL target no update can meet would move an adaptive β at every iteration
    fixed = m.train(short("--no-adaptive-beta", "--beta-init", "0.3", "--kl-target", "1e-9", env="Pendulum-v1"))
    assert [h[1] for h in fixed["beta_history"]] == [0.3] * 4 and fixed["beta"] == 0.3
    adaptive = m.train(short("--beta-init", "0.3", "--kl-target", "1e-9", env="Pendulum-v1"))
    assert [h[1] for h in adaptive["beta_history"]] == [0.3, 0.6, 1.2, 2.4] and adaptive["beta"] == 4.8


def test_beta_is_saved_and_restored(in_tmp):
    s = m.train(short("--save-model", "--beta-init", "0.3", "--kl-target", "1e-9", env="Pendulum-v1"))
    state = torch.load(s["checkpoint"], weights_only=True)
    assert state["beta"] == s["beta"] == 4.8

    # --eval-only reports it; training resumes from it (the adaptive β continues where it stopped)
    assert m.train(short("--checkpoint", s["checkpoint"], "--eval-only", env="Pendulum-v1"))["beta"] == 4.8
    resumed = m.train(short("--checkpoint", s["checkpoint"], "--kl-target", "1e-9", env="Pendulum-v1"))
    assert resumed["beta_history"][0][1] == 4.8 and resumed["beta"] == 4.8 * 2**4

    # a β written by hand comes back exactly
    torch.save(dict(state, beta=7.25), in_tmp / "edited.pt")
    edited = m.train(short("--checkpoint", str(in_tmp / "edited.pt"), "--total-timesteps", "128", env="Pendulum-v1"))
    assert edited["beta_history"][0][1] == 7.25

    # with a fixed β the flag is the hyper-parameter: the checkpoint's β is not used
    fixed = m.train(
        short("--checkpoint", s["checkpoint"], "--no-adaptive-beta", "--beta-init", "0.2", env="Pendulum-v1")
    )
    assert [h[1] for h in fixed["beta_history"]] == [0.2] * 4
