"""PPO-Clip: Proximal Policy Optimization with the clipped surrogate objective, in one file.

Each iteration collects `num_envs * num_steps` transitions with the current policy π_old, then runs
`update_epochs` passes of minibatch gradient descent on the loss

    −E_t[ min( r_t(θ)·Â_t , clip(r_t(θ), 1−ε, 1+ε)·Â_t ) ]  +  c_v·½·E_t[(V(s_t) − R̂_t)²]  −  c_H·E_t[H(π_θ(·|s_t))]
    r_t(θ) = π_θ(a_t|s_t) / π_old(a_t|s_t),   ε = clip_coef

with Â_t from GAE(λ) (normalised per minibatch) and R̂_t = Â_t + V_old(s_t). The clip removes any incentive to
push r_t outside [1−ε, 1+ε], which keeps each update close to π_old. Both heads share one CNN for an image, run once
per minibatch (CleanRL's layout): the value loss trains it too; two would cost ×2.2 per update (docs/design.md).
Paper: Schulman et al., 2017, "Proximal Policy Optimization Algorithms", arXiv:1707.06347.

    python ppo_clip.py --env CartPole-v1
    python ppo_clip.py --env Pendulum-v1 --track      # also logs to wandb (WANDB_MODE=offline works)
    python ppo_clip.py --help                         # every flag, with the values for --env
"""

import argparse
import csv
import importlib
import os
import random
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Literal, get_args, get_origin

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import tyro

ALGO = "ppo_clip"


@dataclass
class Args:
    env: str = "CartPole-v1"  # gymnasium environment id (Discrete, MultiDiscrete, MultiBinary or 1-D Box actions)
    seed: int = 1  # seed of python, numpy, torch and the environments
    total_timesteps: int = 200_000  # environment steps to train for, summed over all envs
    num_envs: int = 8  # parallel environments (gymnasium SyncVectorEnv)
    num_steps: int = 256  # steps per env per rollout; a batch is num_envs * num_steps transitions
    gamma: float = 0.99  # discount factor γ
    gae_lambda: float = 0.95  # λ of GAE(λ): 0 gives one-step TD advantages, 1 gives Monte-Carlo returns minus V
    learning_rate: float = 3e-4  # Adam step size of the joint policy + value optimiser
    anneal_lr: bool = True  # decay the learning rate linearly to 0 over training
    update_epochs: int = 10  # passes over each batch
    num_minibatches: int = 32  # minibatches per pass; must divide num_envs * num_steps
    clip_coef: float = 0.2  # ε of the clipped surrogate: r_t is kept in [1−ε, 1+ε]
    ent_coef: float = 0.0  # weight c_H of the entropy bonus
    vf_coef: float = 0.5  # weight c_v of the value loss
    max_grad_norm: float = 0.5  # gradient-norm clip, applied to the policy and the value network separately
    kl_early_stop: float | None = None  # stop an update's epochs once a minibatch's KL(π_old‖π_θ) exceeds this
    norm_obs: bool = False  # normalise observations by a running mean and std (frozen within a rollout)
    norm_reward: bool = False  # divide the learner's rewards by a running std of the discounted return
    clip_reward: bool = False  # the learner sees sign(r) (Atari); logged and evaluated returns stay the env's
    hidden_sizes: tuple[int, ...] = (64, 64)  # tanh hidden layers of the policy and value heads (after an image's CNN)
    log_std_init: float = 0.0  # initial log σ of the Gaussian policy (Box actions only)
    run: "RunArgs" = field(default_factory=lambda: RunArgs())  # evaluation, checkpoints, logging: below the banner


# ---- The maths, as pure functions ----
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


def clipped_surrogate(logp_new, logp_old, advantages, clip_coef: float) -> torch.Tensor:
    """Policy loss −E[min(r·Â, clip(r, 1−ε, 1+ε)·Â)], r = exp(log π_θ − log π_old)."""
    ratio = torch.exp(logp_new - logp_old)
    return -torch.min(ratio * advantages, ratio.clamp(1 - clip_coef, 1 + clip_coef) * advantages).mean()


# ---- Training: rollout → advantages → update → log ----
@torch.no_grad()
def collect_rollout(envs, policy, obs_norm, reward_scale, obs_raw, run) -> tuple[dict, np.ndarray]:
    """num_steps steps of every env with π_old; returns the batch as (T, N, …) arrays and the observation to go on
    from. next_obs[t] is the true s_{t+1}: where an episode ended at t, the env has already reset (SAME_STEP
    autoreset) and s_{t+1} is info["final_obs"]. A lost life (Atari: info["life_lost"]) ends the learner's episode,
    not the game's. Images stay as the env gives them (uint8, bool). raw_obs and disc_return feed the statistics."""
    T, N, shape, device = run.args.num_steps, envs.num_envs, obs_raw.shape[1:], run.device
    kind = dict(dtype=torch.as_tensor(obs_raw).dtype if len(shape) == 3 else torch.float32, device=device)
    batch = {key: torch.zeros(T, N, device=device) for key in ("logp", "reward", "term", "done")}
    batch.update(obs=torch.zeros(T, N, *shape, **kind), next_obs=torch.zeros(T, N, *shape, **kind), raw_obs=[])
    batch.update(act=torch.zeros((T, N, *policy.act_shape), device=device), disc_return=np.zeros((T, N)))
    for t in range(T):
        obs = obs_norm(obs_raw)
        params = policy(obs)
        action = sample(params)
        next_raw, reward, term, trunc, info = envs.step(to_env_action(action, envs.single_action_space))
        done, lost = term | trunc, info.get("life_lost", False)
        real_next = next_raw.copy()
        if "final_obs" in info:
            for i in np.flatnonzero(info["_final_obs"]):
                real_next[i] = info["final_obs"][i]
        batch["raw_obs"].append(obs_raw)
        batch["obs"][t], batch["act"][t], batch["logp"][t] = obs, action, log_prob(params, action)
        batch["next_obs"][t], batch["reward"][t] = obs_norm(real_next), torch.as_tensor(reward)
        batch["term"][t], batch["done"][t] = torch.as_tensor(term | lost), torch.as_tensor(done | lost)
        batch["disc_return"][t] = reward_scale.track(reward, done | lost)
        run.record_step(reward, done)
        obs_raw = next_raw
    batch["raw_obs"] = np.stack(batch["raw_obs"])
    return batch, obs_raw


def ppo_update(policy, value, optimizer, batch: dict, advantages, returns, args: Args, iteration: int) -> dict:
    """update_epochs passes of shuffled minibatches on the clipped loss; returns the update's statistics."""
    obs, act, logp_old = batch["obs"].flatten(0, 1), batch["act"].flatten(0, 1), batch["logp"].flatten()
    b_adv, b_ret = advantages.flatten(), returns.flatten()
    minibatch_size = len(obs) // args.num_minibatches
    clipfracs, approx_kl, stop = [], 0.0, False
    for epoch in range(args.update_epochs):  # noqa: B007  (epoch + 1 is logged after the loop)
        for idx in torch.randperm(len(obs)).split(minibatch_size):
            features = policy.encoder(obs[idx])  # an image's CNN, run once for both heads (a vector: itself)
            params = policy.head(features)
            logp = log_prob(params, act[idx])
            adv = (b_adv[idx] - b_adv[idx].mean()) / (b_adv[idx].std() + 1e-8)
            pg_loss = clipped_surrogate(logp, logp_old[idx], adv, args.clip_coef)
            v_loss = 0.5 * (value.head(features) - b_ret[idx]).pow(2).mean()
            ent = entropy(params).mean()
            loss = pg_loss - args.ent_coef * ent + args.vf_coef * v_loss
            if not torch.isfinite(loss):
                raise ValueError(f"non-finite loss at iteration {iteration}; try a lower learning_rate or --norm-obs")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            pi_grad = nn.utils.clip_grad_norm_(policy.parameters(), args.max_grad_norm)
            v_grad = nn.utils.clip_grad_norm_(value.net.parameters(), args.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                logratio = logp - logp_old[idx]
                approx_kl = float(((logratio.exp() - 1) - logratio).mean())  # k3 estimator of KL(π_old‖π_θ), ≥ 0
                clipfracs.append(float(((logratio.exp() - 1).abs() > args.clip_coef).float().mean()))
            stop = args.kl_early_stop is not None and approx_kl > args.kl_early_stop
            if stop:
                break
        if stop:
            break
    stats = {"policy_loss": pg_loss.item(), "value_loss": v_loss.item(), "entropy": ent.item(), "approx_kl": approx_kl}
    stats.update(clipfrac=float(np.mean(clipfracs)), epochs_done=epoch + 1)
    return {**stats, "policy_grad_norm": float(pi_grad), "value_grad_norm": float(v_grad)}


def train(args: Args) -> dict:
    """Train exactly what `args` says; returns the summary (see Run.finish below the banner)."""
    run = Run(args)  # checks args; seeds python, numpy and torch
    envs = make_envs(args.env, args.num_envs)
    obs_shape, act_space = envs.single_observation_space.shape, envs.single_action_space
    policy = Policy(obs_shape, act_space, args.hidden_sizes, args.log_std_init)
    value = Value(obs_shape, args.hidden_sizes, policy.encoder)  # one CNN for both heads (images; see the docstring)
    obs_norm = ObsNorm(obs_shape, args.norm_obs)
    reward_scale = RewardScale(args.norm_reward, args.gamma, args.num_envs, args.clip_reward)
    params = [*policy.parameters(), *value.net.parameters()]
    optimizer = torch.optim.Adam(params, lr=args.learning_rate, eps=1e-5, fused=True)
    run.load(dict(policy=policy, value=value, obs_norm=obs_norm, reward_scale=reward_scale, optimizer=optimizer))
    run.open_outputs()  # the run folder, progress.csv, wandb
    obs_raw, _ = envs.reset(seed=run.env_seeds())
    for iteration, lr_frac in run.iterations(args.total_timesteps // run.batch_steps):
        optimizer.param_groups[0]["lr"] = lr = args.learning_rate * lr_frac
        batch, obs_raw = collect_rollout(envs, policy, obs_norm, reward_scale, obs_raw, run)
        reward_scale.update(batch["disc_return"])  # the statistics move between rollouts, never within one
        obs_norm.update(batch["raw_obs"])
        with torch.no_grad():  # V of every s_t and of every true s_{t+1}, each in one batched call
            rewards = reward_scale(batch["reward"])  # r / σ(G) with --norm-reward, else r
            values, next_values = value(batch["obs"]), value(batch["next_obs"])
            advantages, returns = compute_gae(
                rewards, values, next_values, batch["term"], batch["done"], args.gamma, args.gae_lambda
            )
        stats = ppo_update(policy, value, optimizer, batch, advantages, returns, args, iteration)
        ev = explained_variance(values.flatten(), returns.flatten())
        run.log(iteration, {"learning_rate": lr, **stats, "explained_variance": ev})
    return run.finish(envs)


# ---- Presets: Args < the env's family (its gymnasium package) < the env's own entry < explicit flags ----
MUJOCO = dict(total_timesteps=1_000_000, norm_obs=True, norm_reward=True, log_std_init=-0.5, eval_every=50_000)
MUJOCO.update(save_every=100_000)
BOX2D = dict(total_timesteps=1_000_000, gamma=0.999, gae_lambda=0.98, ent_coef=0.01)  # γ, λ: long horizons
BOX2D.update(eval_every=50_000, save_every=100_000)
TOY_TEXT = dict(learning_rate=1e-3, norm_reward=True, ent_coef=0.01)  # Taxi: the first two; CliffWalking: the bonus
ATARI = dict(total_timesteps=10_000_000, num_envs=8, num_steps=128, num_minibatches=4, update_epochs=4, ent_coef=0.01)
ATARI.update(learning_rate=2.5e-4, clip_coef=0.1, hidden_sizes=(), clip_reward=True)  # CleanRL's ppo_atari.py
ATARI.update(eval_every=500_000, save_every=500_000)
MINATAR = dict(total_timesteps=10_000_000, num_envs=64, num_steps=128, num_minibatches=8, update_epochs=4, gamma=0.999)
MINATAR.update(learning_rate=1e-3, anneal_lr=False, ent_coef=0.01, hidden_sizes=())  # gymnax's PPO at lr 1e-3
MINATAR.update(eval_every=1_000_000, save_every=1_000_000, eval_episodes=100)
ZOO_LANDER = dict(num_envs=16, num_steps=1024, num_minibatches=256, update_epochs=4, anneal_lr=False)  # RL Zoo's
FAMILY_DEFAULTS = {"mujoco": MUJOCO, "box2d": BOX2D, "toy_text": TOY_TEXT, "atari": ATARI, "minatar": MINATAR}
ENV_DEFAULTS = {  # where an env needs more than its family's preset (docs/benchmarks.md)
    "CartPole-v1": dict(total_timesteps=100_000, learning_rate=1e-3, num_minibatches=8),
    "Pendulum-v1": dict(total_timesteps=150_000, learning_rate=1e-3, num_minibatches=8, gamma=0.9),
    "InvertedPendulum-v5": dict(total_timesteps=50_000, learning_rate=1e-3, num_minibatches=8),
    "Swimmer-v5": dict(gamma=0.9999),  # its reward for forward progress comes over long horizons
    "InvertedDoublePendulum-v5": dict(norm_obs=False),  # its final policies keep their balance without it
    "LunarLanderContinuous-v3": ZOO_LANDER,  # its final policies keep landing in the RL Zoo's batch shape
    "Taxi-v4": dict(total_timesteps=500_000),  # a passenger is delivered reliably only after 200 k steps
}


# =============================================================================================
# The text every algorithm file shares, character for character (a test compares them): networks and distributions,
# statistics, run bookkeeping, environments, checkpoints, the command line. A reader of the algorithm can stop here.
# =============================================================================================


# ---- Networks and distributions: separate policy and value MLPs; π as (μ, log σ) or the heads' logits ----
def mlp(in_dim: int, out_dim: int, hidden: tuple[int, ...], out_gain: float) -> nn.Sequential:
    """tanh MLP, orthogonal init (gain √2 inside, `out_gain` on the last layer), zero biases."""
    layers, sizes = [], (in_dim, *hidden)
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.Tanh()]
    layers.append(nn.Linear(sizes[-1], out_dim))
    for layer in layers:
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, out_gain if layer is layers[-1] else np.sqrt(2))
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """s → features: a vector as it is; an image (3-D: H×W×C, or C×H×W when the first axis is the smallest; uint8
    scaled by 1/255, bool as 0/1) through a ReLU CNN chosen by its size: the Nature CNN (32·8×8/4, 64·4×4/2, 64·3×3/1,
    fc 512; Mnih et al., 2015) from 36×36 up, else MinAtar's (16·3×3/1, fc 128; Young & Tian, 2019)."""

    def __init__(self, obs_shape: tuple):
        super().__init__()
        self.image, self.out_dim = len(obs_shape) == 3, obs_shape[0]
        if self.image:
            self.channels_last = obs_shape[0] > obs_shape[-1]
            c, h, w = (obs_shape[2], *obs_shape[:2]) if self.channels_last else obs_shape
            nature = min(h, w) >= 36
            convs, self.out_dim = ([(32, 8, 4), (64, 4, 2), (64, 3, 1)], 512) if nature else ([(16, 3, 1)], 128)
            layers, c_in = [], c
            for c_out, kernel, stride in convs:
                layers += [nn.Conv2d(c_in, c_out, kernel, stride), nn.ReLU()]
                c_in = c_out
            n = nn.Sequential(*layers, nn.Flatten())(torch.zeros(1, c, h, w)).shape[1]
            self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(n, self.out_dim), nn.ReLU())
            for layer in (m for m in self.net if isinstance(m, nn.Conv2d | nn.Linear)):  # orthogonal, gain √2
                nn.init.orthogonal_(layer.weight, np.sqrt(2))
                nn.init.zeros_(layer.bias)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.image:
            return obs
        x = obs.float() / 255 if obs.dtype == torch.uint8 else obs.float()
        x = x.movedim(-1, -3) if self.channels_last else x
        return self.net(x.flatten(0, -4)).unflatten(0, x.shape[:-3])


class Policy(nn.Module):
    """π_θ(·|s) as (μ, log σ) of N(μ(s), diag(σ²)), σ state-independent, for Box actions, else (logits, None) of shape
    (…, heads, choices): a Categorical per Discrete, per nvec entry, per MultiBinary bit (two choices); padding −1e9."""

    def __init__(self, obs_shape: tuple, act_space: gym.Space, hidden: tuple[int, ...], log_std_init: float):
        super().__init__()
        box = isinstance(act_space, gym.spaces.Box)
        if isinstance(act_space, gym.spaces.Discrete):
            heads = torch.tensor([int(act_space.n)])
        elif isinstance(act_space, gym.spaces.MultiDiscrete):
            heads = torch.as_tensor(act_space.nvec.ravel())
        else:  # MultiBinary: two choices per bit (unused for Box)
            heads = torch.full((int(np.prod(act_space.shape)),), 2)
        self.register_buffer("pad", None if box else torch.arange(heads.max()) >= heads[:, None], persistent=False)
        self.act_shape = act_space.shape if box else heads.shape  # (dimensions,) or (heads,)
        n_out = act_space.shape[0] if box else self.pad.numel()
        self.encoder = Encoder(obs_shape)
        self.net = mlp(self.encoder.out_dim, n_out, hidden, out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((n_out,), log_std_init)) if box else None

    def forward(self, obs: torch.Tensor):
        return self.head(self.encoder(obs))

    def head(self, features: torch.Tensor):  # π's parameters from the encoder's features
        out = self.net(features)
        if self.log_std is None:
            return out.unflatten(-1, self.pad.shape).masked_fill(self.pad, -1e9), None
        # a copy, not a view, of log σ: callers keep π_old's parameters while the optimiser changes log σ in place
        return out, self.log_std.expand_as(out).clone()


class Value(nn.Module):
    """V_φ(s); with `encoder` (the policy's), on the features the policy sees (one CNN, trained by both losses)."""

    def __init__(self, obs_shape: tuple, hidden: tuple[int, ...], encoder: Encoder | None = None):
        super().__init__()
        self.encoder = Encoder(obs_shape) if encoder is None else encoder
        self.net = mlp(self.encoder.out_dim, 1, hidden, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(obs))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)


def log_prob(params, action: torch.Tensor) -> torch.Tensor:
    """log π(a|s) for the parameters returned by Policy.forward."""
    mean_or_logits, log_std = params
    if log_std is None:  # independent Categoricals: Σ_k log softmax(logits_k)[a_k]
        return torch.log_softmax(mean_or_logits, -1).gather(-1, action.long().unsqueeze(-1)).squeeze(-1).sum(-1)
    # diagonal Gaussian: Σ_i −(a_i − μ_i)²/(2σ_i²) − log σ_i − ½ log 2π
    z = (action - mean_or_logits) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)


def entropy(params) -> torch.Tensor:
    """H(π(·|s)): Σ_k −Σ_a p_k,a log p_k,a over the Categorical heads, Σ_i (½ + ½ log 2π + log σ_i) for the Gaussian."""
    mean_or_logits, log_std = params
    if log_std is None:
        logp = torch.log_softmax(mean_or_logits, -1)
        return -(logp.exp() * logp).sum(-1).sum(-1)
    return (0.5 + 0.5 * np.log(2 * np.pi) + log_std).sum(-1)


def sample(params) -> torch.Tensor:
    """a ~ π(·|s): an index per Categorical head, or μ + σ·N(0, I)."""
    mean_or_logits, log_std = params
    if log_std is None:
        return torch.multinomial(torch.softmax(mean_or_logits, -1).flatten(0, -2), 1).view(mean_or_logits.shape[:-1])
    return mean_or_logits + torch.exp(log_std) * torch.randn_like(mean_or_logits)


def mode(params) -> torch.Tensor:
    """The deterministic action: the argmax of every head's logits, or the Gaussian mean."""
    mean_or_logits, log_std = params
    return mean_or_logits.argmax(-1) if log_std is None else mean_or_logits


# ---- Statistics: observation normalisation, reward scaling, explained variance ----
class ObsNorm(nn.Module):
    """(s − mean)/√(var + 1e-8) clipped to ±10, over every observation seen so far, or the identity if not enabled.
    The statistics are buffers, so they travel in the checkpoint."""

    def __init__(self, obs_shape: tuple, enabled: bool):
        super().__init__()
        self.enabled, self.image = enabled, len(obs_shape) == 3  # images pass as they are: the Encoder scales them
        if enabled and self.image:
            raise ValueError("--norm-obs is for vector observations: an image is scaled by 1/255 in the network")
        self.register_buffer("mean", torch.zeros(() if self.image else obs_shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(() if self.image else obs_shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))

    def forward(self, obs) -> torch.Tensor:
        if self.image:  # uint8 / bool, stored and sent as they are
            return torch.as_tensor(obs, device=self.mean.device)
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.mean.device)
        return ((obs - self.mean) / torch.sqrt(self.var + 1e-8)).clamp(-10, 10).float() if self.enabled else obs

    def update(self, batch) -> None:
        """Merge the batch's mean and variance into the running ones (Chan et al.'s parallel formula)."""
        if self.image:
            return
        batch = torch.as_tensor(batch, device=self.mean.device).reshape(-1, *self.mean.shape).double()
        b_mean, b_var, b_n = batch.mean(0), batch.var(0, unbiased=False), batch.shape[0]
        delta, total = b_mean - self.mean, self.count + b_n
        self.mean += delta * b_n / total
        self.var.copy_((self.var * self.count + b_var * b_n + delta**2 * self.count * b_n / total) / total)
        self.count.fill_(total)


class RewardScale(ObsNorm):
    """r / √(Var[G] + 1e-8), G ← γ·G + r the discounted return of each env's episode so far, Var over every G seen:
    Engstrom et al., 2020's reward scaling. Divided, never shifted (a shift would change what ending an episode is
    worth); only the learner sees it, logged and evaluated returns are the env's. `clip`: sign(r) first (Atari)."""

    def __init__(self, enabled: bool, gamma: float, num_envs: int, clip: bool = False):
        super().__init__((1,), enabled)
        self.gamma, self.returns, self.clip = gamma, np.zeros(num_envs), clip

    def forward(self, rewards: torch.Tensor) -> torch.Tensor:
        rewards = rewards.sign() if self.clip else rewards
        return rewards / torch.sqrt(self.var + 1e-8).float() if self.enabled else rewards

    def track(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        """G ← γ·G + r for every env; returns G, then restarts it where an episode ended."""
        self.returns = self.gamma * self.returns + (np.sign(reward) if self.clip else reward)
        returns = self.returns.copy()
        self.returns[done] = 0.0
        return returns


def explained_variance(pred: torch.Tensor, target: torch.Tensor) -> float:
    """1 − Var[target − pred] / Var[target]: 1 is a perfect critic, ≤ 0 is no better than a constant."""
    var = target.var()
    return float("nan") if var == 0 else float(1 - (target - pred).var() / var)


# ---- Checkpoints ----
def read_checkpoint(path: str) -> dict:
    """torch.load(path, weights_only=True) with one-line errors; a run folder means its checkpoint.pt."""
    path = os.path.join(path, "checkpoint.pt") if os.path.isdir(path) else path
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any failure to unpickle means the same to the user
        why = "not found" if isinstance(e, FileNotFoundError) else f"unreadable (truncated?): {type(e).__name__}"
        raise ValueError(f"cannot read checkpoint {path}: {why}") from None
    return {"args": {}, **state, "path": path} if isinstance(state, dict) else {"path": path, "args": {}}


def get_rng() -> dict:
    """python's, numpy's and torch's global random states, in types a weights_only checkpoint holds."""
    numpy_keys, *numpy_rest = np.random.get_state()[1:]
    numpy_state = (torch.from_numpy(numpy_keys.astype(np.int64)), *numpy_rest)
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}


def set_rng(state: dict) -> None:
    random.setstate(state["python"])
    keys, *rest = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])


# ---- Run bookkeeping: the flags, seeding, the iterations, the run folder and its logs, evaluation, checkpoints ----
@dataclass
class RunArgs:  # Args.run: what a run evaluates, saves and logs; its flags take no prefix (--eval-every)
    eval_episodes: int = 20  # episodes of the final deterministic evaluation
    eval_every: int = 0  # also evaluate every this many environment steps (0: only at the end)
    track: bool = False  # log to Weights & Biases
    wandb_project: str = "policy-gradients"  # wandb project
    wandb_entity: str | None = None  # wandb entity (team or user); None uses your default
    save_model: bool = False  # write {algo}.pt to the run folder at the end (and on Ctrl-C); watch.py films it
    save_every: int = 0  # write the run's checkpoint.pt (all --resume needs) every this many steps and at the end
    resume: str | None = None  # continue the run of this checkpoint.pt (or run folder) in its folder, where it stopped
    checkpoint: str | None = None  # start a new run from this checkpoint's weights and statistics, or evaluate it
    eval_only: bool = False  # with --checkpoint: only evaluate the loaded policy, do not train
    torch_deterministic: bool = True  # torch.use_deterministic_algorithms: same seed, same result
    torch_threads: int = 1  # torch intra-op threads; these networks are too small to gain from more
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"  # auto: a GPU for images where there is one, else the CPU


EVAL_ENVS = 32  # evaluation episodes played at once
EVAL_MAX_STEPS = 1_000  # an evaluation episode's cap where the env has no time limit of its own
SHAPING = ("hidden_sizes", "norm_obs", "norm_reward", "objective")  # Args a checkpoint's networks and inputs need
RUN_STATE = ("iteration", "evals", "next_eval", "next_save", "best", "anneal")  # Run's counters that --resume restores


class Run:
    """What a run keeps and writes: the learning curve, runs/{env}__{algo}__{seed}__{time}/progress.csv, wandb,
    evaluations, the progress line, the summary and checkpoints. dppo's DistributedRun adds ranks (here 0 of 1)."""

    rank, world = 0, 1
    read_checkpoint = staticmethod(read_checkpoint)  # DistributedRun's reads on rank 0 and shares

    def __init__(self, args):
        """Checks args, seeds python, numpy and torch, and sets torch's determinism and threads; writes nothing."""
        self.setup(args)
        self.args, self.opts = args, args.run
        self.curve, self.evals = [], []  # curve: [step, clock, return] per finished episode; evals: [step, mean]
        self.ep_return, self.global_step, self.iteration, self.interrupted = np.zeros(args.num_envs), 0, 0, False
        self.eval_time, self.next_eval, self.wall_s = 0.0, self.opts.eval_every, 0.0
        self.next_save, self.best, self.anneal, self.clock_offset = self.opts.save_every, -np.inf, None, 0.0
        self.batch_steps = self.world * args.num_envs * args.num_steps  # environment steps per iteration
        self.modules, self.checkpoint, self.run_dir, self.wandb = {}, {}, None, None
        self.csv_file, self.csv, self.device = None, None, torch.device("cpu")  # progress.csv, its writer; see load

    def setup(self, args) -> None:
        check_args(args)
        torch.use_deterministic_algorithms(args.run.torch_deterministic)
        torch.set_num_threads(args.run.torch_threads)
        for seed in (random.seed, np.random.seed, torch.manual_seed):
            seed(args.seed + self.rank)

    def load(self, modules: dict) -> None:
        """Moves `modules` (networks, statistics, optimisers: what a checkpoint holds) to the device and keeps them;
        loads --checkpoint into them (not the optimisers), or with --resume the whole run, counters and random states
        included. ValueError for a checkpoint of another algo or env, or of networks and inputs of another shape."""
        self.modules, opts, path = modules, self.opts, self.opts.resume or self.opts.checkpoint
        gpu = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
        image = modules["policy"].encoder.image  # --device auto: a GPU for a CNN, the CPU for small MLPs
        self.device = torch.device(gpu if opts.device == "auto" and image else opts.device.replace("auto", "cpu"))
        for module in (m for m in modules.values() if isinstance(m, nn.Module)):
            module.to(self.device)
        state = self.checkpoint = self.read_checkpoint(path) if path else {}
        if not path:
            return
        if (got := (state.get("algo"), state.get("env"))) != (ALGO, self.args.env):
            raise ValueError(f"checkpoint {path} is for {got}, not {(ALGO, self.args.env)}")
        if opts.resume and "rng" not in state:
            raise ValueError(f"{state['path']} has no training state to resume (--save-every writes checkpoint.pt)")
        for name in (n for n in SHAPING + ("num_envs", "num_steps") * bool(opts.resume) if hasattr(self.args, n)):
            if name in state["args"] and state["args"][name] != getattr(self.args, name):
                why = f"{getattr(self.args, name)} contradicts the checkpoint's {state['args'][name]}"
                raise ValueError(f"--{name.replace('_', '-')} {why}")
        try:
            for name, module in modules.items():
                if isinstance(module, nn.Module) or opts.resume:
                    module.load_state_dict(state[name])
        except (KeyError, RuntimeError, ValueError) as e:
            raise ValueError(f"checkpoint {path} does not fit these networks: {str(e).splitlines()[0]}") from None
        if opts.resume:
            for name in (*RUN_STATE, "clock_offset", "global_step", "curve"):
                setattr(self, name, state[name])
            set_rng(state["rng"])
            if "reward_scale" in modules:
                modules["reward_scale"].returns = state["reward_returns"].numpy().copy()
        elif not opts.eval_only:
            print(f"fine-tuning {path}: a new run, with fresh steps, schedule and optimiser", flush=True)

    def env_seeds(self) -> list[int]:
        """The seeds of this rank's envs: new ones for every iteration a resumed run starts from."""
        first = self.args.seed + (self.iteration * self.world + self.rank) * self.args.num_envs
        return [first + i for i in range(self.args.num_envs)]

    def iterations(self, num_iterations: int):
        """Yields (iteration, learning-rate fraction) from the first iteration not done (--resume) to num_iterations;
        the fraction falls linearly to 0 where Args.anneal_lr (lr_fraction), else stays 1. Times the loop, evaluations
        excluded. Ctrl-C stops it after the iteration (evaluation and saving follow), a second Ctrl-C at once."""
        if self.opts.eval_only:
            return
        self.start, self.last_print = time.perf_counter() - self.clock_offset, time.perf_counter()
        main = threading.current_thread() is threading.main_thread()  # only it can take signals
        previous = signal.signal(signal.SIGINT, self.on_sigint) if main else None
        try:
            for iteration in range(self.iteration + 1, num_iterations + 1):
                anneal = getattr(self.args, "anneal_lr", False)
                yield iteration, self.lr_fraction(iteration, num_iterations) if anneal else 1.0
                if self.interrupted:  # DistributedRun: any rank's Ctrl-C, agreed after the iteration
                    break
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
            self.wall_s = self.clock()
            if self.csv_file:
                self.csv_file.close()

    def on_sigint(self, signum, frame) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        print("\ninterrupted: stopping after this iteration, then evaluating (Ctrl-C again: at once)", flush=True)

    def lr_fraction(self, iteration: int, num_iterations: int) -> float:
        """1 − (iteration − 1)/num_iterations: linear to 0 at the end. Resumed with another total_timesteps, it goes
        linearly from the fraction of the last iteration done to 0 at the new end."""
        k, frac, n = self.anneal or (0, 1.0, num_iterations)  # (iteration, fraction, end) the line starts from
        if n != num_iterations:
            k, frac, n = self.iteration, frac * (1 - (self.iteration - 1 - k) / (n - k)), num_iterations
        self.anneal = (k, frac, n)
        return frac * (1 - (iteration - 1 - k) / (n - k))

    def clock(self) -> float:  # seconds of training so far: since the loop began, evaluations excluded
        return time.perf_counter() - self.start - self.eval_time

    def record_step(self, reward: np.ndarray, done: np.ndarray) -> None:
        """Counts a step of every env; a finished episode joins the learning curve with its return."""
        global_step = self.global_step = self.global_step + len(reward)
        self.ep_return += reward
        for i in np.flatnonzero(done):
            self.curve.append([global_step, self.clock(), float(self.ep_return[i])])
            self.ep_return[i] = 0.0

    def open_outputs(self) -> None:
        """Creates the run folder (--resume: reopens its own), progress.csv and, with --track, the wandb run."""
        if self.opts.eval_only:
            return
        args, opts = self.args, self.opts
        if opts.resume:  # the same folder; progress.csv keeps its rows up to the checkpoint's iteration
            self.run_dir = os.path.dirname(self.checkpoint["path"])
            path = os.path.join(self.run_dir, "progress.csv")
            if not os.path.isfile(path):
                raise ValueError(f"--resume continues the run's progress.csv, and {path} is missing")
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                rows = [row for row in reader if int(row["iteration"]) <= self.iteration]
            self.csv_file = open(path + ".tmp", "w", newline="")
            self.csv = csv.DictWriter(self.csv_file, fieldnames=reader.fieldnames)
            self.csv.writeheader()
            self.csv.writerows(rows)
            os.replace(path + ".tmp", path)  # atomic; the open file goes on as progress.csv
        else:
            self.run_dir = self.make_run_dir()
            self.csv_file = open(os.path.join(self.run_dir, "progress.csv"), "w", newline="")
        if opts.track:  # works offline (WANDB_MODE=offline) with no account; --resume goes on with the same wandb run
            try:
                import wandb

                where = dict(project=opts.wandb_project, entity=opts.wandb_entity, dir=self.run_dir, resume="allow")
                where.update(name=os.path.basename(self.run_dir), id=self.checkpoint.get("wandb_id"))
                self.wandb = wandb.init(config=asdict(args), **where)
            except Exception as e:  # not installed, no login, no network …
                raise ValueError(f"wandb could not start ({str(e).splitlines()[0]}); try WANDB_MODE=offline") from None

    def make_run_dir(self) -> str:
        """runs/{env}__{algo}__{seed}__{time}; a run started in the same second gets -1, -2 … (mkdir is atomic)."""
        base, n = f"runs/{self.args.env.replace('/', '-')}__{ALGO}__{self.args.seed}__{int(time.time())}", 0
        while True:
            try:
                os.makedirs(base if n == 0 else f"{base}-{n}")
                return base if n == 0 else f"{base}-{n}"
            except FileExistsError:
                n += 1

    def log(self, iteration: int, stats: dict, note: str = "", saved: dict | None = None) -> None:
        """The periodic evaluation when due, one row to progress.csv (and wandb), the progress line once a second;
        with --save-every, checkpoint.pt when due and best.pt after a better evaluation (+ saved, e.g. β)."""
        global_step, self.iteration, opts = self.global_step, iteration, self.opts
        saved = {"global_step": global_step, **(saved or {})}
        if opts.eval_every and global_step >= self.next_eval:
            t0 = time.perf_counter()
            self.evals.append([global_step, float(np.mean(self.evaluate()))])
            self.next_eval += opts.eval_every
            if opts.save_every and self.evals[-1][1] > self.best:
                self.best = self.evals[-1][1]
                self.save("best.pt", saved)
            self.eval_time += time.perf_counter() - t0
        elapsed, recent = self.clock(), [episode[2] for episode in self.curve[-20:]]
        row = {"global_step": global_step, "time_s": round(elapsed, 3), "iteration": iteration}
        row.update(sps=int(global_step / elapsed), mean_return=np.mean(recent) if recent else np.nan)
        row.update(episodes=len(self.curve), **stats, eval_mean_return=self.evals[-1][1] if self.evals else np.nan)
        if self.rank == 0:  # DistributedRun: rank 0 alone writes and prints
            if self.csv is None:
                self.csv = csv.DictWriter(self.csv_file, fieldnames=list(row))
                self.csv.writeheader()
            self.csv.writerow(row)
            self.csv_file.flush()
            if self.wandb:
                self.wandb.log(row, step=global_step)
            last = global_step + self.batch_steps > self.args.total_timesteps
            if time.perf_counter() - self.last_print >= 1.0 or last:
                self.last_print = time.perf_counter()
                line = f"step {global_step:>9,} | {row['sps']:>6,} SPS | return {row['mean_return']:9.2f}"
                print(f"{line} (last {len(recent)}) |{note} {elapsed:6.1f} s", flush=True)
        if opts.save_every and global_step >= self.next_save:
            self.next_save = (global_step // opts.save_every + 1) * opts.save_every
            self.save("checkpoint.pt", saved, full=True)

    @torch.no_grad()
    def evaluate(self) -> list[float]:
        """Returns of the deterministic policy (argmax per head / Gaussian mean), EVAL_ENVS episodes at a time, episode
        k from seed + 1,000,000 + k; cut at the env's time limit, or at EVAL_MAX_STEPS (and said) where it has none."""
        policy, obs_norm, args, n = self.modules["policy"], self.modules["obs_norm"], self.args, self.opts.eval_episodes
        envs = make_envs(args.env, min(n, EVAL_ENVS))
        limit, returns, cut = envs.envs[0].spec.max_episode_steps or EVAL_MAX_STEPS, [], 0
        for first in range(0, n, envs.num_envs):  # the envs past the last episode play unscored
            obs, _ = envs.reset(seed=[args.seed + 1_000_000 + first + k for k in range(envs.num_envs)])
            ret, running = np.zeros(envs.num_envs), np.arange(envs.num_envs) < n - first
            for _ in range(limit):
                action = to_env_action(mode(policy(obs_norm(obs))), envs.single_action_space)
                obs, reward, term, trunc, _ = envs.step(action)
                ret += reward * running
                if not (running := running & ~(term | trunc)).any():
                    break
            returns, cut = returns + ret[: n - first].tolist(), cut + running.sum()
        envs.close()
        if cut:
            print(f"evaluation: {cut} of {n} episodes cut at {limit} steps ({args.env} sets no limit)")
        return returns

    def save(self, name: str, extra: dict, full: bool = False) -> str:
        """Writes run_dir/name (returned): tensors, numbers and asdict(args) only, which weights_only=True loads,
        atomically (a crash leaves no half file). Networks and statistics; `full`: also the rest of the run's state."""
        state = {"algo": ALGO, "env": self.args.env, "args": asdict(self.args), **extra}
        state.update({k: m.state_dict() for k, m in self.modules.items() if full or isinstance(m, nn.Module)})
        if full:
            state.update({name: getattr(self, name) for name in RUN_STATE}, clock_offset=self.clock(), rng=get_rng())
            state.update(global_step=self.global_step, curve=self.curve, wandb_id=self.wandb and self.wandb.id)
            if "reward_scale" in self.modules:  # each env's discounted return so far
                state["reward_returns"] = torch.from_numpy(self.modules["reward_scale"].returns.copy())
        path = os.path.join(self.run_dir, name)
        torch.save(state, path + ".tmp")
        os.replace(path + ".tmp", path)
        return path

    def finish(self, envs, extra: dict | None = None, saved: dict | None = None) -> dict:
        """The final evaluation, the summary (+ extra) and, with --save-model, the checkpoint (+ saved)."""
        args, opts, extra, steps, wall_s = self.args, self.opts, extra or {}, self.global_step, self.wall_s
        envs.close()
        returns = self.evaluate()
        mean, sps = float(np.mean(returns)), steps / wall_s if wall_s > 0 else 0.0
        summary = {"algo": ALGO, "env": args.env, "seed": args.seed, "eval_mean_return": mean}
        summary.update(eval_std_return=float(np.std(returns)), eval_returns=returns, global_step=steps)
        summary.update(wall_s=wall_s, sps=sps, curve=self.curve, evals=self.evals, interrupted=self.interrupted)
        summary.update(best_eval_mean_return=max([mean] + [e[1] for e in self.evals]), run_dir=self.run_dir, **extra)
        saved = {"global_step": steps, **(saved or {})}
        if opts.save_model and not opts.eval_only:
            summary["checkpoint"] = self.save(f"{ALGO}.pt", saved)
        if opts.save_every and not opts.eval_only:  # --resume goes on from here
            self.save("checkpoint.pt", saved, full=True)
        if self.wandb:
            self.wandb.log({"eval_mean_return": mean}, step=steps)
            self.wandb.summary.update({k: v for k, v in extra.items() if isinstance(v, int | float)})
            self.wandb.finish()
        where = opts.checkpoint if opts.eval_only else f"{steps:,} steps in {wall_s:.1f} s ({sps:,.0f} SPS)"
        head = f"{ALGO} {args.env} seed {args.seed}: eval return {mean:.2f} ± {np.std(returns):.2f}"
        print(f"{head} over {opts.eval_episodes} episodes | {where} | {self.run_dir}", flush=True)
        return summary


# ---- Environments ----
CATEGORICAL = gym.spaces.Discrete | gym.spaces.MultiDiscrete | gym.spaces.MultiBinary  # policies of Categorical heads
EXTRAS = {"ALE/": ("ale_py", "atari"), "MinAtar/": ("minatar.gym", "minatar")}  # id prefix: (package, requirements-*)


def make_env(env_id: str, **kwargs) -> gym.Env:
    """gym.make, any failure as one line; check_spaces; an image as it is, any other observation as one vector
    (FlattenObservation). Atari (ALE/…) as CleanRL plays it: no sticky actions, no-op starts, 4 frames a step (the
    last 2 max-pooled), 84×84 grey, 4 stacked, info["life_lost"]; MinAtar as gymnax's PPO: no sticky actions, 1,000
    steps an episode (Freeway: its own 2,500)."""
    family = env_family(env_id)
    if family == "atari":
        kwargs = dict(frameskip=1, repeat_action_probability=0.0, max_episode_steps=108_000, **kwargs)  # 108,000 frames
    elif family == "minatar":
        kwargs = dict(sticky_action_prob=0.0, max_episode_steps=2_500 if "Freeway" in env_id else 1_000, **kwargs)
    try:
        env = gym.make(env_id, **kwargs)
        if family == "atari":  # AtariPreprocessing needs OpenCV: a missing one is reported below
            env = LifeLoss(gym.wrappers.FrameStackObservation(gym.wrappers.AtariPreprocessing(env, noop_max=30), 4))
    except Exception as e:
        why, known = (str(e) or type(e).__name__).splitlines()[0], isinstance(e, gym.error.Error | ImportError)
        hint = " (here: pip install -r requirements-mujoco.txt)" if known and "mujoco" in why.lower() else ""
        hint = f" (pip install -r requirements-{family}.txt)" if known and family in ("atari", "minatar") else hint
        gl = f" with MUJOCO_GL={os.environ['MUJOCO_GL']}" if not known and "MUJOCO_GL" in os.environ else ""
        raise ValueError(f"cannot make env {env_id!r}{gl}: {why}{hint}") from None
    check_spaces(space := env.observation_space, env.action_space)
    flat_or_image = isinstance(space, gym.spaces.Box) and len(space.shape) in (1, 3)
    return env if flat_or_image else gym.wrappers.FlattenObservation(env)


class LifeLoss(gym.Wrapper):
    """Adds info["life_lost"]: the step cost a life and the game goes on (from ALE's info["lives"])."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.lives = info["lives"]
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["life_lost"], self.lives = info["lives"] < self.lives, info["lives"]
        return obs, reward, terminated, truncated, info


def make_envs(env_id: str, num_envs: int) -> gym.vector.SyncVectorEnv:
    """`num_envs` copies of make_env that reset an env in the step that ends its episode (SAME_STEP autoreset)."""
    envs = [lambda: make_env(env_id) for _ in range(num_envs)]
    return gym.vector.SyncVectorEnv(envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def check_spaces(obs_space: gym.Space, act_space: gym.Space | None = None, inside: bool = False) -> None:
    """ValueError for an image (a 3-D Box) inside a Dict or Tuple, observations of no fixed size (Text, Sequence …,
    checked on the space), also nested, and actions other than Discrete, MultiDiscrete, MultiBinary or a 1-D Box."""
    if isinstance(obs_space, gym.spaces.Dict | gym.spaces.Tuple):
        for sub in obs_space.values() if isinstance(obs_space, gym.spaces.Dict) else obs_space:
            check_spaces(sub, inside=True)
    elif isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 3 and inside:
        raise ValueError(f"unsupported observation space {obs_space}: an image inside a Dict or Tuple")
    elif not isinstance(obs_space, gym.spaces.Box | CATEGORICAL):
        raise ValueError(f"unsupported observation space {obs_space}: {type(obs_space).__name__} has no fixed size")
    flat_box = isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1
    if act_space is not None and not (flat_box or isinstance(act_space, CATEGORICAL)):
        raise ValueError(f"unsupported action space {act_space}: only Discrete, MultiDiscrete, MultiBinary, 1-D Box")


def to_env_action(action: torch.Tensor, space: gym.Space) -> np.ndarray:
    """Policy sample → env action: a Box action clipped to its bounds, else the heads' indices in the space's shape and
    dtype (a Discrete's one head dropped), shifted by its `start` (Discrete, MultiDiscrete)."""
    action = action.cpu().numpy()
    if isinstance(space, gym.spaces.Box):
        return np.clip(action, space.low, space.high)
    return action.reshape((*action.shape[:-1], *space.shape)).astype(space.dtype) + getattr(space, "start", 0)


def env_family(env_id: str) -> str | None:
    """The package an env comes from: gymnasium's (mujoco, box2d, classic_control …), atari (ale-py) or minatar, whose
    ids exist once the package is imported (MinAtar: and registered); None for any other."""
    for prefix, (package, family) in EXTRAS.items():
        if env_id.startswith(prefix):
            try:
                module = importlib.import_module(package)
            except ImportError:
                raise ValueError(f"{env_id} needs a package: pip install -r requirements-{family}.txt") from None
            if family == "minatar" and env_id not in gym.registry:
                module.register_envs()
            return family
    entry = str(getattr(gym.registry.get(env_id), "entry_point", ""))  # an unknown id: make_env reports it
    return entry.split(".")[2] if entry.startswith("gymnasium.envs.") else None


# ---- The command line ----
def with_values(args, **values):
    """`args` with `values` set, each on Args or on its run (RunArgs) by its name."""
    own = {f.name for f in fields(args)}
    run = replace(args.run, **{k: v for k, v in values.items() if k not in own})
    return replace(args, **{k: v for k, v in values.items() if k in own}, run=run)


def parse_args(argv: list[str] | None = None) -> Args:
    """Args for `argv` (default sys.argv[1:]): Args' defaults < FAMILY_DEFAULTS[the env's family] < ENV_DEFAULTS[--env]
    < explicit flags. A checkpoint comes before the flags: with --resume all its Args, else its env and SHAPING."""
    argv = list(sys.argv[1:] if argv is None else argv)
    first = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for name in ("--env", "--resume", "--checkpoint"):  # read first: they choose the defaults of the rest
        first.add_argument(name)
    given = first.parse_known_args(argv)[0]
    path = given.resume or given.checkpoint
    saved = read_checkpoint(path)["args"] if path else {}
    saved = {**saved, **saved.get("run", {})}  # Args and their run's flags (older checkpoints: one level)
    env = given.env or saved.get("env", Args.env)
    family, known = env_family(env), ["Args"]
    known += [f"the {family} preset"] * (family in FAMILY_DEFAULTS) + [f"{env}'s entry"] * (env in ENV_DEFAULTS)
    known += [f"{path}'s " + ("Args" if given.resume else "env and networks")] * bool(path)
    default = with_values(Args(env=env), **{**FAMILY_DEFAULTS.get(family, {}), **ENV_DEFAULTS.get(env, {})})
    names = {f.name for f in fields(Args) + fields(RunArgs)} - {"run", "resume", "checkpoint", "eval_only"}
    keep = names if given.resume else SHAPING  # a resume takes every setting but these three; else what shapes
    default = with_values(default, **{name: value for name, value in saved.items() if name in keep and name in names})
    where = f"\nDefaults for {env}: {' < '.join(known)} < your flags"
    config = (tyro.conf.OmitArgPrefixes,)  # --eval-every, not --run.eval-every
    args = tyro.cli(Args, default=default, args=argv, description=__doc__ + where, config=config)
    check_args(args)
    return args


def check_args(args) -> None:
    """Raise ValueError naming the first setting no run can use."""
    values = {**asdict(args), **asdict(args.run)}
    counts = ("total_timesteps", "num_envs", "num_steps", "num_minibatches", "update_epochs", "vf_epochs")
    for name in (*counts, "learning_rate", "vf_learning_rate", "eval_episodes"):
        if name in values and not values[name] > 0:
            raise ValueError(f"{name} must be > 0, got {values[name]}")
    for name in ("gamma", "gae_lambda"):
        if not 0.0 <= values[name] <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {values[name]}")
    batch = args.num_envs * args.num_steps
    if batch % values.get("num_minibatches", 1):
        raise ValueError(f"num_envs*num_steps = {batch} is not divisible into num_minibatches = {args.num_minibatches}")
    if args.total_timesteps < batch:
        raise ValueError(f"total_timesteps {args.total_timesteps} is smaller than one batch ({batch})")
    if args.run.eval_only and not args.run.checkpoint:
        raise ValueError("--eval-only needs --checkpoint")
    if not {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}.get(args.run.device, True):
        raise ValueError(f"--device {args.run.device}: torch sees no such device here (try --device cpu)")
    if args.run.resume and (args.run.checkpoint or args.run.eval_only):
        raise ValueError("--resume continues a run: it takes no --checkpoint or --eval-only")
    for field_ in (*fields(args), *fields(args.run)):  # tyro checks a Literal flag's value; this checks Args built here
        value = getattr(args.run if field_ in fields(args.run) else args, field_.name)
        if get_origin(field_.type) is Literal and value not in get_args(field_.type):
            raise ValueError(f"{field_.name} must be one of {get_args(field_.type)}, got {value!r}")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C works however the program was started
    try:
        train(parse_args())
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # a second Ctrl-C (the first stops after the iteration), or one outside training
        print("interrupted: stopped at once, without evaluation or saving", file=sys.stderr)
        sys.exit(130)
