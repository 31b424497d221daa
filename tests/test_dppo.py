"""dppo.py: its maths, the distributed update against one process on the whole batch (--sync step) and the
parameter average (--sync epoch), both with real ranks on loopback launched by torchrun; bit-identical ranks,
rank-0-only outputs, errors, Ctrl-C, learning with 2 ranks, on one node and as two nodes (the generic contract of
test_contract.py runs on dppo at world size 1: conftest.ALGOS)."""

import csv
import json
import math
import os
import signal
import socket
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import dppo as m
from benchmarks.run import THRESHOLDS
from conftest import ROOT, kill_tree, read_line, short_flags

DPPO = os.path.join(ROOT, "dppo.py")
TESTS = os.path.dirname(os.path.abspath(__file__))


def torchrun(*argv, cwd, nproc=2, timeout=600):
    """`torchrun --standalone --nproc-per-node N …`: a local rendezvous on a free loopback port."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc), *argv]
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        kill_tree(p)  # the ranks too, whatever happened
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def train_ranks(cwd, *flags, timeout=600) -> tuple[subprocess.CompletedProcess, dict]:
    """dppo.py with `flags` on 2 ranks under torchrun; asserts it succeeded. Returns the run and rank 0's summary."""
    r = torchrun(DPPO, *flags, "--summary-json", "s.json", cwd=cwd, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r, json.loads((cwd / "s.json").read_text())


# ---------------------------------------------------------------------------------------------
# The maths, in one process
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "beta, kl, want",
    [
        (1.0, 0.001, 0.5),  # d < d_targ/1.5: halve
        (1.0, 0.0066, 0.5),  # just below 0.01/1.5
        (1.0, 0.007, 1.0),  # inside [d_targ/1.5, 1.5·d_targ]: keep
        (1.0, 0.015, 1.0),  # the upper edge is still inside
        (1.0, 0.016, 2.0),  # d > 1.5·d_targ: double
        (m.BETA_MAX, 1.0, m.BETA_MAX),  # bounded above
        (m.BETA_MIN, 0.0, m.BETA_MIN),  # bounded below
    ],
)
def test_update_beta_follows_the_ppo_rule(beta, kl, want):
    assert m.update_beta(beta, kl, kl_target=0.01) == pytest.approx(want)


def test_kl_divergence_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    p, q = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    want = torch.distributions.kl_divergence(
        torch.distributions.Categorical(logits=p), torch.distributions.Categorical(logits=q)
    )
    torch.testing.assert_close(m.kl_divergence((p[:, None], None), (q[:, None], None)), want)  # one head
    mp, mq, sp, sq = (torch.randn(6, 2, generator=g) for _ in range(4))

    def normal(mu, ls):
        return torch.distributions.Independent(torch.distributions.Normal(mu, ls.exp()), 1)

    torch.testing.assert_close(
        m.kl_divergence((mp, sp), (mq, sq)), torch.distributions.kl_divergence(normal(mp, sp), normal(mq, sq))
    )


def heads(head):
    """A stand-in network: its encoder passes the observation on, `head` maps it to the output (as Policy/Value)."""
    return SimpleNamespace(encoder=lambda obs: obs, head=head)


@pytest.mark.parametrize(
    "objective, ratio, adv, want",
    [
        ("clip", 1.5, 2.0, 2.4),  # Â > 0, r > 1+ε: clipped at (1+ε)·Â
        ("clip", 0.5, -2.0, -1.6),  # Â < 0, r < 1−ε: clipped at (1−ε)·Â
        ("clip", 1.5, -2.0, -3.0),  # Â < 0, r > 1+ε: min keeps the unclipped r·Â
        ("penalty", 1.5, 2.0, None),  # r·Â − β·KL, no clip
        ("penalty", 0.5, -2.0, None),
    ],
)
def test_policy_objectives_on_hand_picked_values(objective, ratio, adv, want):
    """ppo_loss's policy term on one state: π_old = (½, ½) over 2 actions, π_θ(0) = ½·r, action 0 taken."""
    q0, beta = 0.5 * ratio, 0.7
    kl = 0.5 * math.log(0.5 / q0) + 0.5 * math.log(0.5 / (1 - q0))  # KL(π_old‖π_θ) in closed form
    if want is None:
        want = ratio * adv - beta * kl
    new_logits = torch.log(torch.tensor([[[q0, 1 - q0]]]))  # one two-way head

    policy = heads(lambda features: (new_logits.expand(len(features), 1, 2), None))
    value = heads(lambda features: torch.zeros(len(features)))

    args = m.Args(objective=objective, clip_coef=0.2, ent_coef=0.0, vf_coef=0.5, kl_hinge_coef=0.0)  # hinge: below
    loss, pg, v_loss, ent, kl_out = m.ppo_loss(
        policy,
        value,
        torch.zeros(1, 3),
        torch.tensor([[0]]),
        torch.log(torch.tensor([0.5])),
        torch.tensor([adv]),
        torch.zeros(1),
        (torch.zeros(1, 1, 2), None),
        beta,
        args,
    )
    assert pg.item() == pytest.approx(-want, rel=1e-5)
    assert kl_out.item() == pytest.approx(kl, rel=1e-5)
    assert loss.item() == pytest.approx(-want, rel=1e-5)  # ent_coef 0 and V = R̂ = 0


@pytest.mark.parametrize("kl_target", [0.01, 0.1])  # KL ≈ 0.144: above 2·d_targ = 0.02, below 0.2
def test_the_kl_hinge_adds_xi_times_the_squared_excess_over_twice_the_target(kl_target):
    """--kl-hinge-coef ξ: the penalty objective gains ξ·max(0, E[KL] − 2·d_targ)² (Heess et al., 2017)."""
    old, new = (torch.tensor([[[0.0, 0.0]]]), None), (torch.log(torch.tensor([[[0.75, 0.25]]])), None)
    kl = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    losses = []
    for xi in (0.0, 100.0):
        args = m.Args(objective="penalty", kl_target=kl_target, kl_hinge_coef=xi, ent_coef=0.0)
        batch = (torch.zeros(1, 3), torch.tensor([[0]]), torch.log(torch.tensor([0.5])), torch.tensor([2.0]))
        policy, value = heads(lambda features: new), heads(lambda features: torch.zeros(len(features)))
        out = m.ppo_loss(policy, value, *batch, torch.zeros(1), old, 0.7, args)
        losses.append(out[1].item())
    assert losses[1] - losses[0] == pytest.approx(100.0 * max(0.0, kl - 2 * kl_target) ** 2, rel=1e-4, abs=1e-9)
    assert (losses[1] > losses[0]) == (kl > 2 * kl_target)


def test_collectives_are_the_identity_without_a_group():
    x = torch.tensor([1.0, 2.0, 4.0, 7.0])
    torch.testing.assert_close(m.global_normalize(x), (x - x.mean()) / (x.std() + 1e-8))
    w = torch.nn.Parameter(torch.ones(3))
    (w * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    extras = m.average_gradients([w], torch.tensor([5.0, 6.0]))
    assert extras.tolist() == [5.0, 6.0] and w.grad.tolist() == [1.0, 2.0, 3.0]
    assert m.all_gather("x") == ["x"] and m.world_size() == 1
    optimizer = torch.optim.Adam([w], lr=0.1)
    optimizer.step()
    before = [w.detach().clone(), *(optimizer.state[w][k].clone() for k in ("exp_avg", "exp_avg_sq"))]
    assert m.average_parameters([w], optimizer, torch.tensor([5.0])).tolist() == [5.0]
    assert all(
        torch.equal(x, y)
        for x, y in zip(before, [w, *(optimizer.state[w][k] for k in ("exp_avg", "exp_avg_sq"))], strict=True)
    )


# ---------------------------------------------------------------------------------------------
# 2 ranks, each with half of a fixed batch, against one process with all of it
# ---------------------------------------------------------------------------------------------
N_FIXED = 512


def fixed_problem(discrete: bool):
    """Networks (float64, so the comparison is tight) and a batch, the same in every process that builds it.
    The second half's advantages have another mean and scale than the first's: normalising each rank's half
    by its own statistics would give another gradient."""
    import gymnasium as gym

    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    space = gym.spaces.Discrete(3) if discrete else gym.spaces.Box(-1, 1, (2,))
    policy, value = m.Policy((4,), space, (16,), -0.5).double(), m.Value((4,), (16,)).double()
    old_policy = m.Policy((4,), space, (16,), -0.3).double()  # π_old ≠ π_θ: a non-zero KL in the penalty
    obs = torch.randn(N_FIXED, 4, generator=g, dtype=torch.float64)
    with torch.no_grad():
        old_params = old_policy(obs)
        act = m.sample(old_params)
        logp_old = m.log_prob(old_params, act)
    adv = torch.randn(N_FIXED, generator=g, dtype=torch.float64)
    adv[N_FIXED // 2 :] = 3.0 * adv[N_FIXED // 2 :] + 2.0
    ret = torch.randn(N_FIXED, generator=g, dtype=torch.float64)
    return policy, value, dict(obs=obs, act=act, logp_old=logp_old, adv=adv, ret=ret, old=old_params)


def averaged_gradient(policy, value, batch, rows, objective: str, per_rank_norm: bool = False):
    """What one rank computes on `rows` of the batch: Â normalised (globally, or wrongly per rank), the loss,
    backward, then the all-reduced gradient (one flat buffer). Returns (flat gradient, averaged loss)."""
    adv = batch["adv"][rows]
    adv = (adv - adv.mean()) / (adv.std() + 1e-8) if per_rank_norm else m.global_normalize(adv)
    old = tuple(None if p is None else p[rows] for p in batch["old"])
    # ξ = 0: the hinge squares each rank's own minibatch KL, so only without it is the average the whole-batch update
    args = m.Args(objective=objective, clip_coef=0.2, ent_coef=0.01, vf_coef=0.5, kl_hinge_coef=0.0)
    loss = m.ppo_loss(
        policy,
        value,
        batch["obs"][rows],
        batch["act"][rows],
        batch["logp_old"][rows],
        adv,
        batch["ret"][rows],
        old,
        0.7,
        args,
    )[0]
    weights = [*policy.parameters(), *value.parameters()]
    for w in weights:
        w.grad = None
    loss.backward()
    extras = m.average_gradients(weights, loss.detach().reshape(1))
    return torch.cat([w.grad.reshape(-1) for w in weights]), extras.item()


CASES = [(objective, discrete) for objective in ("penalty", "clip") for discrete in (True, False)]

RANK_SCRIPT = """
import os, sys
sys.path[:0] = [{root!r}, {tests!r}]
import torch, torch.distributed as dist
import test_dppo as t
dist.init_process_group("gloo")
rank, half = dist.get_rank(), t.N_FIXED // 2
rows = slice(rank * half, (rank + 1) * half)
out = {{}}
for objective, discrete in t.CASES:
    for per_rank in (False, True):
        policy, value, batch = t.fixed_problem(discrete)
        out[(objective, discrete, per_rank)] = t.averaged_gradient(policy, value, batch, rows, objective, per_rank)
torch.save(out, f"grads_{{rank}}.pt")
dist.destroy_process_group()
"""


def test_two_ranks_average_to_the_whole_batch_gradient(tmp_path):
    (tmp_path / "ranks.py").write_text(RANK_SCRIPT.format(root=ROOT, tests=TESTS))
    r = torchrun("ranks.py", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    per_rank = [torch.load(tmp_path / f"grads_{k}.pt") for k in (0, 1)]
    for objective, discrete in CASES:
        policy, value, batch = fixed_problem(discrete)
        whole, whole_loss = averaged_gradient(policy, value, batch, slice(None), objective)  # one process
        (g0, loss0), (g1, loss1) = (p[(objective, discrete, False)] for p in per_rank)
        assert torch.equal(g0, g1)  # every rank holds the same bits
        torch.testing.assert_close(g0, whole, rtol=0, atol=1e-9)
        assert loss0 == pytest.approx(whole_loss, abs=1e-9)
        wrong, _ = per_rank[0][(objective, discrete, True)]  # per-rank normalisation: not the same update
        assert (wrong - whole).abs().max() > 1e-3


AVERAGE_SCRIPT = """
import sys
sys.path[:0] = [{root!r}]
import torch, torch.distributed as dist
import dppo as m
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(rank)  # other weights, gradients and so Adam moments on each rank
net = torch.nn.Linear(3, 2)
optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
for _ in range(2):
    optimizer.zero_grad()
    net(torch.randn(5, 3)).pow(2).sum().backward()
    optimizer.step()
weights = list(net.parameters())
moments = lambda w: (optimizer.state[w]["exp_avg"], optimizer.state[w]["exp_avg_sq"])
state = lambda: [t.detach().clone() for w in weights for t in (w, *moments(w))]
before = state()
extras = m.average_parameters(weights, optimizer, torch.tensor([float(rank), 10.0 * rank]))
torch.save(dict(before=before, after=state(), extras=extras), f"avg_{{rank}}.pt")
dist.destroy_process_group()
"""


def test_sync_epoch_replaces_parameters_and_adam_moments_by_their_mean_over_ranks(tmp_path):
    """--sync epoch: after average_parameters both ranks hold the same bits, the mean of what each held before (in
    float32, (a + b)/2 rounds once: compared with a tolerance of one rounding)."""
    (tmp_path / "avg.py").write_text(AVERAGE_SCRIPT.format(root=ROOT))
    r = torchrun("avg.py", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"avg_{k}.pt") for k in (0, 1))
    assert rank0["extras"].tolist() == rank1["extras"].tolist() == [0.5, 5.0]
    for b0, b1, a0, a1 in zip(rank0["before"], rank1["before"], rank0["after"], rank1["after"], strict=True):
        assert not torch.equal(b0, b1)  # the ranks did differ: the test is not vacuous
        assert torch.equal(a0, a1)
        torch.testing.assert_close(a0, (b0 + b1) / 2, rtol=1e-6, atol=1e-7)


def test_one_process_updates_the_same_with_either_sync(tmp_path, monkeypatch):
    """Alone, --sync epoch and --sync step are the same update, bit for bit (so is the 1-process baseline)."""
    monkeypatch.chdir(tmp_path)
    runs = [
        m.train(m.parse_args(["--env", "Pendulum-v1", *short_flags("dppo"), "--sync", sync]))
        for sync in ("epoch", "step")
    ]
    assert runs[0]["param_checksums"] == runs[1]["param_checksums"] and runs[0]["curve"] == runs[1]["curve"]


# ---------------------------------------------------------------------------------------------
# Real training with 2 ranks
# ---------------------------------------------------------------------------------------------
def test_two_ranks_stay_bit_identical_and_only_rank_0_writes(tmp_path):
    flags = ["--env", "Pendulum-v1", "--num-envs", "2", "--num-steps", "64", "--total-timesteps", "1024"]
    r, s = train_ranks(tmp_path, *flags, "--eval-episodes", "2", "--norm-obs", "--save-model")
    assert s["world_size"] == 2 and s["global_step"] == 1024  # 4 iterations of 2 ranks × 2 envs × 64 steps
    checksums = s["param_checksums"]  # each rank's sha256 of its weights and statistics after 160 Adam steps
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    # every env of both ranks ends its first 200-step episode at global step 200 × 2 envs × 2 ranks
    assert [c[0] for c in s["curve"]] == [800] * 4
    assert len({c[2] for c in s["curve"]}) == 4  # four different episodes (distinct env seeds per rank)
    (run,) = os.listdir(tmp_path / "runs")  # one run folder, one checkpoint, one CSV: rank 0's
    assert sorted(os.listdir(tmp_path / "runs" / run)) == ["dppo.pt", "progress.csv"]
    header = (tmp_path / "runs" / run / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"time_rollout", "time_update", "time_allreduce", "world_size"} <= set(header)
    assert r.stdout.count("eval return") == 1 and "| 2 ranks |" in r.stdout
    state = torch.load(tmp_path / "runs" / run / "dppo.pt", weights_only=True)
    assert state["algo"] == "dppo" and state["global_step"] == 1024


def test_norm_reward_statistics_are_every_ranks(tmp_path):
    """--norm-reward: σ(G) is over every rank's discounted returns, so the ranks hold the same statistics (in the
    checksums) and they count every rank's steps."""
    flags = ["--env", "Pendulum-v1", "--num-envs", "2", "--num-steps", "64", "--total-timesteps", "512"]
    _, s = train_ranks(tmp_path, *flags, "--eval-episodes", "1", "--norm-reward", "--save-model", timeout=300)
    assert s["param_checksums"][0] == s["param_checksums"][1]
    state = torch.load(tmp_path / s["checkpoint"], weights_only=True)["reward_scale"]
    assert float(state["count"]) == pytest.approx(512 + 1e-4)  # 2 iterations × 2 ranks × 2 envs × 64 steps
    assert float(state["var"][0]) > 0


@pytest.mark.parametrize("sync", ["epoch", "step"])
def test_a_kl_early_stop_is_agreed_by_every_rank(tmp_path, sync):
    """Each rank sees the KL averaged over ranks where they sync, so all stop together (a disagreement would hang).
    The learning rate follows the sync: W × the schedule under --sync epoch (--scale-lr), the schedule under step."""
    flags = ["--env", "CartPole-v1", "--num-envs", "2", "--num-steps", "64", "--total-timesteps", "768"]
    flags += ["--eval-episodes", "1", "--objective", "clip", "--kl-early-stop", "1e-12", "--sync", sync]
    _, s = train_ranks(tmp_path, *flags, timeout=300)
    assert s["param_checksums"][0] == s["param_checksums"][1]
    (csv_path,) = tmp_path.glob("runs/*/progress.csv")
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["epochs_done"]) for row in rows] == [1, 1, 1]
    peak = (2 if sync == "epoch" else 1) * m.ENV_DEFAULTS["CartPole-v1"]["learning_rate"]
    assert [float(row["learning_rate"]) for row in rows] == pytest.approx([peak, peak * 2 / 3, peak / 3])


def test_an_error_under_torchrun_is_one_line_per_rank(tmp_path):
    r = torchrun(DPPO, "--env", "NoSuchEnv-v0", cwd=tmp_path)
    assert r.returncode != 0
    # torchrun stops the other worker as soon as one exits, so the slower rank may be killed before it
    # prints: at least one rank's own line, never more than one per rank, each one clear
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error: rank ")]
    assert 1 <= len(lines) <= 2 and len({ln[:13] for ln in lines}) == len(lines), r.stderr[-3000:]
    assert all("cannot make env 'NoSuchEnv-v0'" in ln for ln in lines), r.stderr[-3000:]
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_ctrl_c_under_torchrun_stops_every_rank_and_rank_0_saves(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        DPPO,
        "--env",
        "Pendulum-v1",
        "--total-timesteps",
        "10000000",
        "--save-model",
        "--eval-episodes",
        "2",
        "--summary-json",
        "s.json",
    ]
    p = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = read_line(p, timeout=180)
        assert first.startswith("step"), first
        p.send_signal(signal.SIGINT)  # torchrun forwards it to both ranks
        out, err = p.communicate(timeout=120)
    finally:
        kill_tree(p)
    assert "interrupted" in out and "eval return" in out, err[-3000:]
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["interrupted"] and s["param_checksums"][0] == s["param_checksums"][1]
    (ckpt,) = tmp_path.glob("runs/*/*.pt")
    assert torch.load(ckpt, weights_only=True)["global_step"] == s["global_step"] > 0


@pytest.mark.parametrize("env", ["Pendulum-v1"])  # CartPole-v1: test_two_nodes_learn_cartpole, 2 ranks as 2 nodes
def test_two_ranks_learn_with_default_flags(env, tmp_path):
    _, s = train_ranks(tmp_path, "--env", env, "--seed", "1")
    assert s["world_size"] == 2 and s["global_step"] <= m.parse_args(["--env", env]).total_timesteps
    assert s["eval_mean_return"] >= THRESHOLDS[env], f"dppo on {env}: eval {s['eval_mean_return']:.1f}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_nodes_learn_cartpole(tmp_path):
    """The multi-node command of docs/distributed.md, as two torchrun agents on this machine: --nnodes 2, one worker
    each, a c10d rendezvous on 127.0.0.1 that node 0 hosts. Each agent runs in its own session and is killed whatever
    happens."""
    endpoint, agents = f"127.0.0.1:{free_port()}", []
    for node in (0, 1):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1"]
        cmd += ["--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "two-nodes"]
        cmd += ["--rdzv-conf", f"join_timeout=60,is_host={int(node == 0)}", "--local-addr", "127.0.0.1"]
        cmd += [DPPO, "--env", "CartPole-v1", "--summary-json", "s.json"]  # the same flags on every node
        agents.append(
            subprocess.Popen(
                cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
            )
        )
    try:
        outputs = [agent.communicate(timeout=600)[0] for agent in agents]
    finally:
        for agent in agents:
            kill_tree(agent)
    assert [agent.returncode for agent in agents] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    summary = json.loads((tmp_path / "s.json").read_text())  # rank 0's (both nodes share this folder)
    assert summary["world_size"] == 2 and len(set(summary["param_checksums"])) == 1
    assert summary["eval_mean_return"] >= THRESHOLDS["CartPole-v1"], summary["eval_mean_return"]


# ---------------------------------------------------------------------------------------------
# World size 1, no launcher (the generic contract tests also run on dppo: conftest.ALGOS includes it)
# ---------------------------------------------------------------------------------------------
def test_no_process_group_without_a_launcher(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    s = m.train(m.parse_args(["--env", "CartPole-v1", *short_flags("dppo")]))
    assert s["world_size"] == 1 and len(s["param_checksums"]) == 1
    assert not torch.distributed.is_initialized()
    assert math.isfinite(s["eval_mean_return"]) and np.isfinite(s["sps"])
