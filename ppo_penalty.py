"""PPO-Penalty: Proximal Policy Optimization with an adaptive KL penalty, in one file.

Each iteration collects `num_envs * num_steps` transitions with the current policy π_old, then
runs `update_epochs` passes of minibatch gradient ascent on

    L(θ) = E_t[ r_t(θ)·Â_t − β·KL(π_old(·|s_t) ‖ π_θ(·|s_t)) ]  −  c_v·E_t[(V(s_t) − R̂_t)²]  +  c_H·E_t[H(π_θ(·|s_t))]
    r_t(θ) = π_θ(a_t|s_t) / π_old(a_t|s_t)

with Â_t from GAE(λ) (normalised per minibatch), R̂_t = Â_t + V_old(s_t) and the KL in closed form
(Categorical or diagonal Gaussian). After the epochs, the mean KL d over the batch sets the next β:
    d < d_targ / 1.5  ⇒  β ← β / 2          d > 1.5·d_targ  ⇒  β ← 2·β          (d_targ = kl_target)
so the penalty tightens when updates move too far and loosens when they are too timid.
`--no-adaptive-beta` keeps β = beta_init throughout (the paper's fixed-penalty variant).
Paper: Schulman et al., 2017, "Proximal Policy Optimization Algorithms", arXiv:1707.06347, section 4.

    python ppo_penalty.py --env CartPole-v1
    python ppo_penalty.py --env Pendulum-v1 --track      # also logs to wandb (WANDB_MODE=offline works)
    python ppo_penalty.py --help                         # every flag, with the values for --env
"""

import csv
import os
import random
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro

ALGO = "ppo_penalty"
# β is kept in [BETA_MIN, BETA_MAX]: below 1e-3 the penalty is already negligible next to a normalised
# advantage, above 1e2 it already pins π_θ to π_old; going further would only delay the way back.
BETA_MIN, BETA_MAX = 1e-3, 1e2


@dataclass
class Args:
    env: str = "CartPole-v1"
    """gymnasium environment id (flat Box observations; Discrete or Box actions)"""
    seed: int = 1
    """seed of python, numpy, torch and the environments"""
    total_timesteps: int = 200_000
    """environment steps to train for, summed over all envs"""
    num_envs: int = 8
    """parallel environments (gymnasium SyncVectorEnv)"""
    num_steps: int = 256
    """steps per env per rollout; a batch is num_envs * num_steps transitions"""
    gamma: float = 0.99
    """discount factor γ"""
    gae_lambda: float = 0.95
    """λ of GAE(λ): 0 gives one-step TD advantages, 1 gives Monte-Carlo returns minus V"""
    learning_rate: float = 3e-4
    """Adam step size of the joint policy + value optimiser"""
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 over training"""
    update_epochs: int = 10
    """passes over each batch"""
    num_minibatches: int = 32
    """minibatches per pass; must divide num_envs * num_steps"""
    kl_target: float = 0.01
    """d_targ: the mean KL(π_old‖π_θ) per update that the adaptive β aims for"""
    beta_init: float = 1.0
    """initial weight β of the KL penalty (the fixed β with --no-adaptive-beta)"""
    adaptive_beta: bool = True
    """adapt β after each batch (halve if KL < d_targ/1.5, double if KL > 1.5·d_targ); off: β stays beta_init"""
    ent_coef: float = 0.0
    """weight c_H of the entropy bonus"""
    vf_coef: float = 0.5
    """weight c_v of the value loss"""
    max_grad_norm: float = 0.5
    """gradient-norm clip, applied to the policy and the value network separately"""
    kl_early_stop: Optional[float] = None
    """stop an update's epochs once the KL(π_old‖π_θ) of a minibatch exceeds this (off: None)"""
    norm_obs: bool = False
    """normalise observations by running mean and std (statistics frozen within a rollout and at evaluation)"""
    norm_reward: bool = False
    """divide the learner's rewards by a running std of the discounted return (statistics in the checkpoint)"""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """hidden layers of both the policy and the value network (tanh)"""
    log_std_init: float = 0.0
    """initial log σ of the Gaussian policy (Box actions only)"""
    eval_episodes: int = 20
    """episodes of the final deterministic evaluation"""
    eval_every: int = 0
    """also evaluate every this many environment steps (0: only at the end)"""
    track: bool = False
    """log to Weights & Biases"""
    wandb_project: str = "policy-gradients"
    """wandb project"""
    wandb_entity: Optional[str] = None
    """wandb entity (team or user); None uses your default"""
    save_model: bool = False
    """write a checkpoint to the run folder at the end (and on Ctrl-C)"""
    checkpoint: Optional[str] = None
    """load weights, normalisation statistics and β from this checkpoint before training"""
    eval_only: bool = False
    """with --checkpoint: only evaluate the loaded policy, do not train"""
    capture_video: bool = False
    """record MP4s of the first 3 episodes of the final evaluation, in the run folder's videos/ (in the
    checkpoint's folder with --eval-only); needs pygame and moviepy: pip install -r requirements-video.txt"""
    gif: Optional[str] = None
    """also save the first episode of the final evaluation as an animated GIF at this path (same packages)"""
    torch_deterministic: bool = True
    """torch.use_deterministic_algorithms: same seed, same result"""
    torch_threads: int = 1
    """torch intra-op threads; these networks are too small to gain from more"""


# Per-env defaults, applied before the explicit flags (which always win). Any other env gets Args' defaults.
# Measured on seeds 1-3: with the adaptive penalty a 10× larger step than CleanRL's 3e-4 stays stable, and
# 8 minibatches of 256 need a quarter of the optimiser steps of 32 of 64; Pendulum needs γ = 0.9.
# InvertedPendulum-v5: the same step size holds 1000 on seeds 1-4 after 50 k steps.
# MuJoCo locomotion (1 M steps): ppo_clip's settings (Args' 3e-4, 32 minibatches, 10 epochs; normalised observations,
# scaled rewards, initial σ 0.6) with d_targ = 0.03, about the KL that ppo_clip's clipped updates reach on
# HalfCheetah (0.02-0.03 mid-run). HalfCheetah seed 1: 4465 with 0.03, 4011 with 0.01 (ppo_clip: 5286).
# `benchmarks/run.py --mujoco`, final eval means over seeds 1-3: HalfCheetah 4457, Hopper 3322.
MUJOCO = dict(total_timesteps=1_000_000, norm_obs=True, norm_reward=True, log_std_init=-0.5, eval_every=50_000,
              kl_target=0.03)
ENV_DEFAULTS = {
    "CartPole-v1": dict(total_timesteps=100_000, learning_rate=3e-3, num_minibatches=8),
    "Pendulum-v1": dict(total_timesteps=150_000, learning_rate=3e-3, num_minibatches=8, gamma=0.9),
    "InvertedPendulum-v5": dict(total_timesteps=50_000, learning_rate=3e-3, num_minibatches=8),
    "HalfCheetah-v5": MUJOCO,
    "Hopper-v5": MUJOCO,
}


def parse_args(argv: Optional[list[str]] = None) -> Args:
    """Args for `argv` (default sys.argv[1:]): Args' defaults < ENV_DEFAULTS[--env] < explicit flags."""
    argv = list(sys.argv[1:] if argv is None else argv)
    env = Args.env
    for i, a in enumerate(argv):
        if a == "--env" and i + 1 < len(argv):
            env = argv[i + 1]
        elif a.startswith("--env="):
            env = a.split("=", 1)[1]
    defaults = replace(Args(env=env), **ENV_DEFAULTS.get(env, {}))
    args = tyro.cli(Args, default=defaults, args=argv, description=__doc__)
    check_args(args)
    return args


def check_args(args: Args) -> None:
    """Raise ValueError naming the first hyper-parameter that makes no sense."""
    batch = args.num_envs * args.num_steps
    checks = [
        (args.total_timesteps > 0, "total_timesteps must be > 0"),
        (args.num_envs > 0 and args.num_steps > 0, "num_envs and num_steps must be > 0"),
        (args.num_minibatches > 0 and batch % args.num_minibatches == 0,
         f"num_envs*num_steps = {batch} is not divisible into num_minibatches = {args.num_minibatches}"),
        (args.total_timesteps >= batch, f"total_timesteps {args.total_timesteps} is smaller than one batch ({batch})"),
        (0.0 <= args.gamma <= 1.0, f"gamma must be in [0, 1], got {args.gamma}"),
        (0.0 <= args.gae_lambda <= 1.0, f"gae_lambda must be in [0, 1], got {args.gae_lambda}"),
        (args.learning_rate > 0, f"learning_rate must be > 0, got {args.learning_rate}"),
        (args.update_epochs > 0, "update_epochs must be > 0"),
        (args.kl_target > 0, f"kl_target must be > 0, got {args.kl_target}"),
        (BETA_MIN <= args.beta_init <= BETA_MAX,
         f"beta_init must be in [{BETA_MIN}, {BETA_MAX}], got {args.beta_init}"),
        (args.ent_coef >= 0 and args.vf_coef >= 0, "ent_coef and vf_coef must be >= 0"),
        (args.max_grad_norm > 0, "max_grad_norm must be > 0"),
        (args.kl_early_stop is None or args.kl_early_stop > 0, "kl_early_stop must be > 0 (or None)"),
        (len(args.hidden_sizes) > 0 and min(args.hidden_sizes) > 0, "hidden_sizes must be positive"),
        (args.eval_episodes > 0 and args.eval_every >= 0, "eval_episodes must be > 0 and eval_every >= 0"),
        (args.torch_threads > 0, "torch_threads must be > 0"),
        (not args.eval_only or args.checkpoint, "--eval-only needs --checkpoint"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


# ---------------------------------------------------------------------------------------------
# Environments
# ---------------------------------------------------------------------------------------------
def make_env(env_id: str, **kwargs) -> gym.Env:
    """gym.make, with its errors (unknown id, missing Box2D/MuJoCo …) turned into one-line ValueErrors."""
    try:
        return gym.make(env_id, **kwargs)
    except (gym.error.Error, ImportError) as e:
        hint = " (here: pip install -r requirements-mujoco.txt)" if "mujoco" in str(e).lower() else ""
        raise ValueError(f"cannot make env {env_id!r}: {str(e).splitlines()[0]}{hint}") from None
    except Exception as e:  # a simulator that cannot start (e.g. a MUJOCO_GL backend missing): one line, not a wall
        gl = f" with MUJOCO_GL={os.environ['MUJOCO_GL']}" if "MUJOCO_GL" in os.environ else ""
        first_line = (str(e) or "?").splitlines()[0]
        raise ValueError(f"cannot make env {env_id!r}{gl}: {type(e).__name__}: {first_line}") from None


def make_envs(env_id: str, num_envs: int) -> gym.vector.SyncVectorEnv:
    """`num_envs` copies in a SyncVectorEnv that resets an env in the same step that ends its episode.

    SAME_STEP autoreset: the observation returned for a finished env is already the next episode's
    first one; the true last observation (needed to bootstrap a truncation) is in info["final_obs"].
    """
    check_spaces(make_env(env_id))
    return gym.vector.SyncVectorEnv([lambda: make_env(env_id) for _ in range(num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def check_spaces(env: gym.Env) -> None:
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    if not (isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1):
        raise ValueError(f"unsupported observation space {obs_space}: only flat (1-D) Box observations")
    if not (isinstance(act_space, gym.spaces.Discrete)
            or (isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1)):
        raise ValueError(f"unsupported action space {act_space}: only Discrete or 1-D Box actions")


def to_env_action(action: torch.Tensor, space: gym.Space) -> np.ndarray:
    """Policy sample → what the env accepts: shift a Discrete index by `start`, clip a Box action to its bounds.
    The unclipped sample is what the log-probabilities are computed for."""
    a = action.numpy()
    if isinstance(space, gym.spaces.Discrete):
        return a.astype(np.int64) + int(space.start)
    return np.clip(a, space.low, space.high)


# ---------------------------------------------------------------------------------------------
# Networks: separate policy and value MLPs, plus running observation statistics
# ---------------------------------------------------------------------------------------------
def mlp(in_dim: int, out_dim: int, hidden: tuple[int, ...], out_gain: float) -> nn.Sequential:
    """tanh MLP, orthogonal init (gain √2 inside, `out_gain` on the last layer), zero biases."""
    layers, sizes = [], (in_dim, *hidden)
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.Tanh()]
    layers.append(nn.Linear(sizes[-1], out_dim))
    for layer in layers:
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, out_gain if layer is layers[-1] else np.sqrt(2))
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class Policy(nn.Module):
    """π_θ(·|s). Discrete: Categorical(logits(s)). Box: N(μ(s), diag(σ²)) with a state-independent log σ.
    forward(obs) returns the distribution's parameters (logits, None) or (μ, log σ)."""

    def __init__(self, obs_dim: int, act_space: gym.Space, hidden: tuple[int, ...], log_std_init: float):
        super().__init__()
        discrete = isinstance(act_space, gym.spaces.Discrete)
        n_out = int(act_space.n) if discrete else act_space.shape[0]
        self.net = mlp(obs_dim, n_out, hidden, out_gain=0.01)
        self.log_std = None if discrete else nn.Parameter(torch.full((n_out,), log_std_init))

    def forward(self, obs: torch.Tensor):
        out = self.net(obs)
        # a copy, not a view, of log σ: callers keep π_old's parameters while the optimiser changes log σ in place
        return out, None if self.log_std is None else self.log_std.expand_as(out).clone()


class Value(nn.Module):
    """V_φ(s)."""

    def __init__(self, obs_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.net = mlp(obs_dim, 1, hidden, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


class ObsNorm(nn.Module):
    """(s − mean) / √(var + 1e-8), clipped to ±10, with mean/var over every observation seen so far.
    `enabled=False` makes it the identity. Buffers, so the statistics travel in the checkpoint."""

    def __init__(self, obs_dim: int, enabled: bool):
        super().__init__()
        self.enabled = enabled
        self.register_buffer("mean", torch.zeros(obs_dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(obs_dim, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))

    def forward(self, obs) -> torch.Tensor:
        obs = torch.as_tensor(obs, dtype=torch.float32)
        if not self.enabled:
            return obs
        return ((obs - self.mean) / torch.sqrt(self.var + 1e-8)).clamp(-10, 10).float()

    def update(self, batch: torch.Tensor) -> None:
        """Merge the batch's mean and variance into the running ones (Chan et al.'s parallel formula)."""
        batch = batch.double()
        b_mean, b_var, b_n = batch.mean(0), batch.var(0, unbiased=False), batch.shape[0]
        delta, total = b_mean - self.mean, self.count + b_n
        self.mean += delta * b_n / total
        self.var.copy_((self.var * self.count + b_var * b_n + delta**2 * self.count * b_n / total) / total)
        self.count.fill_(total)


class RewardScale(ObsNorm):
    """r / √(Var[G] + 1e-8), where G ← γ·G + r is the discounted return so far of each env's current episode
    (reset when it ends) and Var runs over every G seen so far: the "reward scaling" of Engstrom et al., 2020,
    "Implementation Matters in Deep Policy Gradients". Rewards are divided, never shifted (a shift would change
    what ending an episode early is worth). Only the learner sees scaled rewards; logged and evaluated returns
    are the env's own. `enabled=False` makes it the identity."""

    def __init__(self, enabled: bool):
        super().__init__(1, enabled)

    def forward(self, rewards: torch.Tensor) -> torch.Tensor:
        return rewards / torch.sqrt(self.var + 1e-8).float() if self.enabled else rewards


# ---------------------------------------------------------------------------------------------
# The maths, as pure functions
# ---------------------------------------------------------------------------------------------
def log_prob(params, action: torch.Tensor) -> torch.Tensor:
    """log π(a|s) for the parameters returned by Policy.forward."""
    mean_or_logits, log_std = params
    if log_std is None:  # Categorical: log softmax(logits)[a]
        return torch.log_softmax(mean_or_logits, -1).gather(-1, action.long().unsqueeze(-1)).squeeze(-1)
    # diagonal Gaussian: Σ_i −(a_i − μ_i)²/(2σ_i²) − log σ_i − ½ log 2π
    z = (action - mean_or_logits) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)


def entropy(params) -> torch.Tensor:
    """H(π(·|s)): −Σ_a p log p for Categorical, Σ_i (½ + ½ log 2π + log σ_i) for the Gaussian."""
    mean_or_logits, log_std = params
    if log_std is None:
        logp = torch.log_softmax(mean_or_logits, -1)
        return -(logp.exp() * logp).sum(-1)
    return (0.5 + 0.5 * np.log(2 * np.pi) + log_std).sum(-1)


def sample(params) -> torch.Tensor:
    """a ~ π(·|s) (Categorical index, or μ + σ·N(0, I))."""
    mean_or_logits, log_std = params
    if log_std is None:
        return torch.multinomial(torch.softmax(mean_or_logits, -1), 1).squeeze(-1)
    return mean_or_logits + torch.exp(log_std) * torch.randn_like(mean_or_logits)


def mode(params) -> torch.Tensor:
    """The deterministic action: argmax of the logits, or the Gaussian mean."""
    mean_or_logits, log_std = params
    return mean_or_logits.argmax(-1) if log_std is None else mean_or_logits


def compute_gae(rewards, values, next_values, terminations, dones, gamma: float, lam: float):
    """GAE(λ) over a (T, N) rollout; returns (advantages, returns = advantages + values).

    next_values[t] = V(s_{t+1}), where s_{t+1} is the true next state — the final observation when
    the episode ended at t. A termination zeroes the future; a truncation bootstraps with it:
        δ_t = r_t + γ·(1 − terminated_t)·V(s_{t+1}) − V(s_t)
        Â_t = δ_t + γλ·(1 − done_t)·Â_{t+1}        (done = terminated or truncated: the trace stops)
    """
    advantages = torch.zeros_like(rewards)
    next_adv = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * (1.0 - terminations[t]) * next_values[t] - values[t]
        next_adv = delta + gamma * lam * (1.0 - dones[t]) * next_adv
        advantages[t] = next_adv
    return advantages, advantages + values


def kl_divergence(p, q) -> torch.Tensor:
    """KL(p‖q) per state, analytic, for two parameter tuples of Policy.forward.
    Categorical: Σ_a p_a·(log p_a − log q_a).
    Diagonal Gaussian: Σ_i [log σq_i − log σp_i + (σp_i² + (μp_i − μq_i)²) / (2σq_i²) − ½]."""
    (p_out, p_log_std), (q_out, q_log_std) = p, q
    if p_log_std is None:
        logp, logq = torch.log_softmax(p_out, -1), torch.log_softmax(q_out, -1)
        return (logp.exp() * (logp - logq)).sum(-1)
    var_ratio_term = (torch.exp(2 * p_log_std) + (p_out - q_out).pow(2)) / (2 * torch.exp(2 * q_log_std))
    return (q_log_std - p_log_std + var_ratio_term - 0.5).sum(-1)


def penalized_surrogate(logp_new, logp_old, advantages, kl, beta: float) -> torch.Tensor:
    """Policy loss −E[r·Â − β·KL(π_old‖π_θ)], r = exp(log π_θ − log π_old); `kl` holds the KL per state."""
    ratio = torch.exp(logp_new - logp_old)
    return -(ratio * advantages - beta * kl).mean()


def update_beta(beta: float, kl: float, kl_target: float, lo: float = BETA_MIN, hi: float = BETA_MAX) -> float:
    """The PPO paper's rule: d < d_targ/1.5 ⇒ β/2; d > 1.5·d_targ ⇒ 2β; otherwise β; then kept in [lo, hi]."""
    if kl < kl_target / 1.5:
        beta = beta / 2
    elif kl > kl_target * 1.5:
        beta = beta * 2
    return float(min(max(beta, lo), hi))


def explained_variance(pred: torch.Tensor, target: torch.Tensor) -> float:
    """1 − Var[target − pred] / Var[target]: 1 is a perfect critic, ≤ 0 is no better than a constant."""
    var = target.var()
    return float("nan") if var == 0 else float(1 - (target - pred).var() / var)


# ---------------------------------------------------------------------------------------------
# Checkpoints, logging, evaluation
# ---------------------------------------------------------------------------------------------
def save_checkpoint(path: str, args: Args, modules: dict, extra: Optional[dict] = None) -> None:
    """Write tensors, numbers and asdict(args) only (so weights_only=True loads it), atomically:
    to a temp file in the same folder, then os.replace, so a crash never leaves half a checkpoint."""
    state = {"algo": ALGO, "env": args.env, "args": asdict(args), **(extra or {})}
    state.update({name: m.state_dict() for name, m in modules.items()})
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: str, args: Args, modules: dict) -> dict:
    """Load `path` into `modules`; ValueError if it is missing, unreadable, or for another algo/env/shape."""
    if not os.path.isfile(path):
        raise ValueError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"cannot read checkpoint {path} (truncated or not a checkpoint): {type(e).__name__}") from None
    if not isinstance(state, dict) or state.get("algo") != ALGO or state.get("env") != args.env:
        got = (state.get("algo"), state.get("env")) if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"checkpoint {path} is for {got}, not ({ALGO!r}, {args.env!r})")
    try:
        for name, module in modules.items():
            module.load_state_dict(state[name])
    except (KeyError, RuntimeError) as e:
        raise ValueError(f"checkpoint {path} does not fit these networks: {str(e).splitlines()[0]}") from None
    return state


def make_run_dir(env_id: str, seed: int) -> tuple[str, str]:
    """Create runs/{env}__{algo}__{seed}__{unix time} and return (name, path); a run started in the same second
    with the same name (another process, or train() called twice) gets the next free "-1", "-2" … suffix."""
    base, n = f"{env_id.replace('/', '-')}__{ALGO}__{seed}__{int(time.time())}", 0
    while True:
        name = base if n == 0 else f"{base}-{n}"
        try:
            os.makedirs(os.path.join("runs", name))  # mkdir is atomic: exactly one caller creates a given name
            return name, os.path.join("runs", name)
        except FileExistsError:
            n += 1


class CsvLog:
    """One row of scalars per iteration, flushed as written, so a killed run keeps its log."""

    def __init__(self, path: str):
        self.file, self.writer = open(path, "w", newline=""), None

    def write(self, row: dict) -> None:
        if self.writer is None:
            self.writer = csv.DictWriter(self.file, fieldnames=list(row))
            self.writer.writeheader()
        self.writer.writerow(row)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def start_wandb(args: Args, run_name: str, run_dir: str):
    """wandb.init with the resolved Args as config; works offline (WANDB_MODE=offline) with no account."""
    try:
        import wandb

        wandb.init(project=args.wandb_project, entity=args.wandb_entity, name=run_name, dir=run_dir,
                   config=asdict(args))
    except ImportError:
        raise ValueError("--track needs wandb: pip install wandb") from None
    except Exception as e:  # no login, no network …
        raise ValueError(f"wandb could not start ({str(e).splitlines()[0]}); run `wandb login` "
                         "or set WANDB_MODE=offline") from None
    return wandb


def check_video_packages(env_id: str) -> None:
    """Fail before training, not after it, when rendering or video writing is impossible."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless: no display, no sound card needed
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl")  # MuJoCo's default (a GLFW window) needs a display
    try:
        import moviepy  # noqa: F401  (RecordVideo writes MP4s with it)
        import PIL  # noqa: F401  (animated GIFs)
        import pygame  # noqa: F401  (classic-control rendering)
    except ImportError as e:
        raise ValueError(f"video needs {e.name}: pip install -r requirements-video.txt") from None
    env = make_env(env_id, render_mode="rgb_array")
    try:
        env.reset(seed=0)
        env.render()
    except Exception as e:
        mujoco = "mujoco" in type(env.unwrapped).__module__
        hint = " (MuJoCo renders headless with MUJOCO_GL=egl or osmesa)" if mujoco else ""
        raise ValueError(f"cannot render {env_id}: {type(e).__name__}: {str(e).splitlines()[0]}{hint}") from None
    finally:
        env.close()


def make_render_env(env_id: str) -> gym.Env:
    """The env rendering rgb_array frames. A MuJoCo model with a "track" camera is filmed through it: gymnasium
    1.4's default MuJoCo view is a free camera that ignores the env's trackbodyid, so a walker leaves the picture."""
    env = make_env(env_id, render_mode="rgb_array")
    try:
        env.unwrapped.model.camera("track")  # AttributeError: not MuJoCo; KeyError: no such camera
    except (AttributeError, KeyError):
        return env
    env.close()
    return make_env(env_id, render_mode="rgb_array", camera_name="track")


@torch.no_grad()
def evaluate(policy: Policy, obs_norm: ObsNorm, env_id: str, episodes: int, seed: int,
             video_dir: Optional[str] = None, gif_path: Optional[str] = None) -> list[float]:
    """Returns of `episodes` episodes of the deterministic policy (argmax / clipped Gaussian mean),
    one env per episode, all stepped together; env k is reset with seed `seed + k`.
    With video_dir, episodes 0-2 are recorded there as MP4s; with gif_path, episode 0 becomes a GIF."""
    def env_k(k: int) -> gym.Env:
        render = (video_dir is not None and k < 3) or (gif_path is not None and k == 0)
        env = make_render_env(env_id) if render else make_env(env_id)
        if video_dir is not None and k < 3:
            env = gym.wrappers.RecordVideo(env, video_dir, episode_trigger=lambda e: e == 0,
                                           name_prefix=f"eval-{k}", disable_logger=True)
        return env

    with warnings.catch_warnings():  # several recorders share video_dir on purpose
        warnings.filterwarnings("ignore", message=".*Overwriting existing videos")
        envs = gym.vector.SyncVectorEnv([lambda k=k: env_k(k) for k in range(episodes)],
                                        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    obs, _ = envs.reset(seed=[seed + k for k in range(episodes)])
    frames = [envs.envs[0].unwrapped.render()] if gif_path else []
    returns, running = np.zeros(episodes), np.ones(episodes, dtype=bool)
    while running.any():
        action = mode(policy(obs_norm(obs)))
        obs, reward, term, trunc, _ = envs.step(to_env_action(action, envs.single_action_space))
        returns += reward * running
        running &= ~(term | trunc)
        if gif_path and running[0]:  # (once episode 0 ends, env 0 shows the next episode)
            frames.append(envs.envs[0].unwrapped.render())
    envs.close()
    if gif_path:
        save_gif(frames, gif_path)
    return returns.tolist()


def save_gif(frames: list, path: str, every: int = 2, scale: float = 0.5) -> None:
    """Every `every`-th frame, scaled by `scale`, as a looping GIF at the env's real-time speed (50 fps / every)."""
    from PIL import Image

    images = [Image.fromarray(f).resize((int(f.shape[1] * scale), int(f.shape[0] * scale))) for f in frames[::every]]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=20 * every, loop=0)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def train(args: Args) -> dict:
    check_args(args)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(args.torch_deterministic)
    torch.set_num_threads(args.torch_threads)
    torch.distributions.Distribution.set_default_validate_args(False)

    envs = make_envs(args.env, args.num_envs)
    act_space = envs.single_action_space
    obs_dim = envs.single_observation_space.shape[0]
    policy = Policy(obs_dim, act_space, args.hidden_sizes, args.log_std_init)
    value = Value(obs_dim, args.hidden_sizes)
    obs_norm = ObsNorm(obs_dim, args.norm_obs)
    reward_scale = RewardScale(args.norm_reward)
    modules = {"policy": policy, "value": value, "obs_norm": obs_norm, "reward_scale": reward_scale}
    if args.capture_video or args.gif:
        check_video_packages(args.env)
    beta = args.beta_init
    if args.checkpoint:
        state = load_checkpoint(args.checkpoint, args, modules)
        if args.adaptive_beta:  # the adaptive β continues where it stopped; a fixed β is beta_init
            beta = float(state.get("beta", beta))
    eval_seed = args.seed + 1_000_000  # training envs use seed .. seed+num_envs-1: disjoint
    if args.eval_only:
        envs.close()
        video_dir = os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "videos")
        returns = evaluate(policy, obs_norm, args.env, args.eval_episodes, eval_seed,
                           video_dir if args.capture_video else None, args.gif)
        print(f"{ALGO} {args.env} {args.checkpoint}: eval return {np.mean(returns):.2f} ± {np.std(returns):.2f} "
              f"over {args.eval_episodes} episodes", flush=True)
        return {"eval_mean_return": float(np.mean(returns)), "eval_std_return": float(np.std(returns)),
                "eval_returns": returns, "global_step": 0, "wall_s": 0.0, "sps": 0.0, "curve": [],
                "evals": [], "best_eval_mean_return": float(np.mean(returns)), "beta": beta}
    optimizer = torch.optim.Adam([*policy.parameters(), *value.parameters()], lr=args.learning_rate,
                                 eps=1e-5, fused=True)

    run_name, run_dir = make_run_dir(args.env, args.seed)
    log = CsvLog(os.path.join(run_dir, "progress.csv"))
    wandb = start_wandb(args, run_name, run_dir) if args.track else None

    T, N = args.num_steps, args.num_envs
    batch_size = T * N
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = args.total_timesteps // batch_size
    act_shape = act_space.shape  # () for Discrete
    obs_buf = torch.zeros(T, N, obs_dim)
    next_obs_buf = torch.zeros(T, N, obs_dim)
    raw_obs_buf = np.zeros((T, N, obs_dim), dtype=np.float64)
    act_buf = torch.zeros((T, N, *act_shape))
    logp_buf, rew_buf = torch.zeros(T, N), torch.zeros(T, N)
    term_buf, done_buf = torch.zeros(T, N), torch.zeros(T, N)

    curve, evals, recent, beta_history = [], [], [], []
    ep_return, global_step = np.zeros(N), 0
    disc_return, disc_return_buf = np.zeros(N), np.zeros((T, N))
    eval_time, next_eval = 0.0, args.eval_every
    start = last_print = time.perf_counter()
    obs_raw, _ = envs.reset(seed=[args.seed + i for i in range(N)])
    interrupted = False
    try:
        for iteration in range(1, num_iterations + 1):
            lr = args.learning_rate * (1 - (iteration - 1) / num_iterations if args.anneal_lr else 1.0)
            for group in optimizer.param_groups:
                group["lr"] = lr

            # ---- rollout: T steps of N envs with π_old; observation statistics frozen meanwhile ----
            with torch.no_grad():
                for t in range(T):
                    obs = obs_norm(obs_raw)
                    params = policy(obs)
                    action = sample(params)
                    next_raw, reward, term, trunc, info = envs.step(to_env_action(action, act_space))
                    done = term | trunc
                    real_next = next_raw.copy()  # the true s_{t+1}: final obs where an episode just ended
                    if "final_obs" in info:
                        for i in np.flatnonzero(info["_final_obs"]):
                            real_next[i] = info["final_obs"][i]
                    raw_obs_buf[t], obs_buf[t], act_buf[t] = obs_raw, obs, action
                    logp_buf[t] = log_prob(params, action)
                    next_obs_buf[t] = obs_norm(real_next)
                    rew_buf[t] = torch.as_tensor(reward)
                    term_buf[t], done_buf[t] = torch.as_tensor(term), torch.as_tensor(done)
                    global_step += N
                    ep_return += reward
                    disc_return = args.gamma * disc_return + reward  # G of each running episode (--norm-reward)
                    disc_return_buf[t] = disc_return
                    disc_return[done] = 0.0
                    for i in np.flatnonzero(done):
                        curve.append([global_step, time.perf_counter() - start - eval_time, float(ep_return[i])])
                        recent = (recent + [float(ep_return[i])])[-20:]
                        ep_return[i] = 0.0
                    obs_raw = next_raw

                reward_scale.update(torch.as_tensor(disc_return_buf.reshape(-1, 1)))
                rewards = reward_scale(rew_buf)  # r / σ(G) with --norm-reward, else r

                # ---- advantages: V of every s_t and of every true s_{t+1}, each in one batched call ----
                values, next_values = value(obs_buf), value(next_obs_buf)
                advantages, returns = compute_gae(rewards, values, next_values, term_buf, done_buf,
                                                  args.gamma, args.gae_lambda)
            obs_norm.update(torch.as_tensor(raw_obs_buf.reshape(batch_size, obs_dim)))

            # ---- update: update_epochs passes of shuffled minibatches on the KL-penalised surrogate ----
            b_obs, b_act = obs_buf.reshape(batch_size, obs_dim), act_buf.reshape(batch_size, *act_shape)
            b_logp, b_adv, b_ret = logp_buf.reshape(-1), advantages.reshape(-1), returns.reshape(-1)
            with torch.no_grad():
                old_out, old_log_std = policy(b_obs)  # π_old's parameters: unchanged since the rollout
            stop = False
            for epoch in range(args.update_epochs):
                for idx in torch.randperm(batch_size).split(minibatch_size):
                    params = policy(b_obs[idx])
                    logp = log_prob(params, b_act[idx])
                    adv = (b_adv[idx] - b_adv[idx].mean()) / (b_adv[idx].std() + 1e-8)
                    old = (old_out[idx], None if old_log_std is None else old_log_std[idx])
                    kl = kl_divergence(old, params)  # KL(π_old‖π_θ) per state
                    pg_loss = penalized_surrogate(logp, b_logp[idx], adv, kl, beta)
                    v_loss = 0.5 * (value(b_obs[idx]) - b_ret[idx]).pow(2).mean()
                    ent = entropy(params).mean()
                    loss = pg_loss - args.ent_coef * ent + args.vf_coef * v_loss
                    if not torch.isfinite(loss):
                        raise ValueError(f"non-finite loss at iteration {iteration} (step {global_step}); "
                                         "try a lower learning_rate or --norm-obs")
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    pi_grad = nn.utils.clip_grad_norm_(policy.parameters(), args.max_grad_norm)
                    v_grad = nn.utils.clip_grad_norm_(value.parameters(), args.max_grad_norm)
                    optimizer.step()
                    if args.kl_early_stop is not None and kl.mean().item() > args.kl_early_stop:
                        stop = True
                        break
                if stop:
                    break

            # ---- β: the mean KL d over the whole batch after the update sets the next iteration's β ----
            with torch.no_grad():
                params = policy(b_obs)
                kl_mean = float(kl_divergence((old_out, old_log_std), params).mean())
                ratio = torch.exp(log_prob(params, b_act) - b_logp)
                surrogate = float((ratio * (b_adv - b_adv.mean()) / (b_adv.std() + 1e-8)).mean())  # E[r·Â]
            beta_history.append([global_step, beta, kl_mean])
            beta_used = beta
            if args.adaptive_beta:
                beta = update_beta(beta, kl_mean, args.kl_target)

            # ---- logging ----
            if args.eval_every and global_step >= next_eval:
                t0 = time.perf_counter()
                ev = float(np.mean(evaluate(policy, obs_norm, args.env, args.eval_episodes, eval_seed)))
                evals.append([global_step, ev])
                next_eval += args.eval_every
                eval_time += time.perf_counter() - t0
            elapsed = time.perf_counter() - start - eval_time
            stats = {
                "global_step": global_step, "time_s": round(elapsed, 3), "iteration": iteration,
                "sps": int(global_step / elapsed), "mean_return": np.mean(recent) if recent else float("nan"),
                "episodes": len(curve), "learning_rate": lr, "policy_loss": pg_loss.item(),
                "value_loss": v_loss.item(), "entropy": ent.item(), "kl": kl_mean, "beta": beta_used,
                "next_beta": beta, "surrogate": surrogate, "epochs_done": epoch + 1,
                "explained_variance": explained_variance(values.flatten(), returns.flatten()),
                "policy_grad_norm": float(pi_grad), "value_grad_norm": float(v_grad),
                "eval_mean_return": evals[-1][1] if evals else float("nan"),
            }
            log.write(stats)
            if wandb:
                wandb.log(stats, step=global_step)
            now = time.perf_counter()
            if now - last_print >= 1.0 or iteration == num_iterations:
                last_print = now
                print(f"step {global_step:>9,} | {stats['sps']:>6,} SPS | return {stats['mean_return']:9.2f} "
                      f"(last {len(recent)}) | β {beta:.3g} | {elapsed:6.1f} s", flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping after evaluation" + (" and saving" if args.save_model else ""), flush=True)
    finally:
        envs.close()
        log.close()

    wall_s = time.perf_counter() - start - eval_time
    video_dir = os.path.join(run_dir, "videos") if args.capture_video else None
    returns = evaluate(policy, obs_norm, args.env, args.eval_episodes, eval_seed, video_dir, args.gif)
    summary = {
        "algo": ALGO, "env": args.env, "seed": args.seed,
        "eval_mean_return": float(np.mean(returns)), "eval_std_return": float(np.std(returns)),
        "eval_returns": returns, "global_step": global_step, "wall_s": wall_s,
        "sps": global_step / wall_s if wall_s > 0 else 0.0, "curve": curve, "evals": evals,
        "best_eval_mean_return": max([float(np.mean(returns))] + [e[1] for e in evals]),
        "interrupted": interrupted, "run_dir": run_dir,
        "beta": beta, "beta_history": beta_history,  # [global_step, β used, KL measured after the update]
    }
    if args.save_model:
        summary["checkpoint"] = os.path.join(run_dir, f"{ALGO}.pt")
        save_checkpoint(summary["checkpoint"], args, modules, {"global_step": global_step, "beta": beta})
    if wandb:
        wandb.log({"eval_mean_return": summary["eval_mean_return"]}, step=global_step)
        wandb.finish()
    print(f"{ALGO} {args.env} seed {args.seed}: eval return {summary['eval_mean_return']:.2f} "
          f"± {summary['eval_std_return']:.2f} over {args.eval_episodes} episodes | {global_step:,} steps "
          f"in {wall_s:.1f} s ({summary['sps']:,.0f} SPS) | {run_dir}", flush=True)
    return summary


if __name__ == "__main__":
    try:
        train(parse_args())
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
