"""The peers of `benchmarks/run.py --peers`: SB3 PPO and sb3-contrib TRPO with RL-Zoo's tuned settings, measured as
our files measure themselves (pip install -r benchmarks/requirements-peers.txt).

PEER_HYPERPARAMS is copied from rl-baselines3-zoo hyperparams/ppo.yml (SB3 PPO) and hyperparams/trpo.yml (sb3-contrib
TRPO), policy 'MlpPolicy', no normalisation. "lin_X" is RL-Zoo's linear_schedule(X): X · progress_remaining, decaying
from X to 0 over training. PEER_OF: our algo -> the peer its time-to-threshold ratio is taken against.
"""

import time

import numpy as np

PEERS = ("sb3_ppo", "sb3_trpo")
PEER_OF = {"ppo_clip": "sb3_ppo", "trpo": "sb3_trpo"}
PEER_HYPERPARAMS = {
    ("sb3_ppo", "CartPole-v1"): dict(
        n_envs=8,
        n_timesteps=100_000,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate="lin_0.001",
        clip_range="lin_0.2",
    ),
    ("sb3_ppo", "Pendulum-v1"): dict(
        n_envs=4,
        n_timesteps=100_000,
        n_steps=1024,
        gae_lambda=0.95,
        gamma=0.9,
        n_epochs=10,
        ent_coef=0.0,
        learning_rate=1e-3,
        clip_range=0.2,
        use_sde=True,
        sde_sample_freq=4,
    ),
    ("sb3_trpo", "CartPole-v1"): dict(
        n_envs=2,
        n_timesteps=100_000,
        n_steps=512,
        batch_size=512,
        cg_damping=1e-3,
        gae_lambda=0.98,
        gamma=0.99,
        learning_rate=1e-3,
        n_critic_updates=20,
    ),
    ("sb3_trpo", "Pendulum-v1"): dict(
        n_envs=2,
        n_timesteps=100_000,
        n_steps=1024,
        gamma=0.9,
        n_critic_updates=15,
        use_sde=True,
        sde_sample_freq=4,
    ),
}
EVAL_EPISODES, EVAL_SEED_OFFSET = 20, 1_000_000  # evaluation as our files do it, seeds disjoint from training


def train_peer(name: str, env: str, seed: int, root: str) -> tuple[dict, dict]:
    """One peer run, in the worker process run.py's execute() made -> (its settings, a summary like our files'
    summaries: final deterministic evaluation, curve of [global_step, seconds, return] per episode, wall_s, sps).
    `root` is unused: the same signature as run.py's _train_ours."""
    import torch
    from sb3_contrib import TRPO
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)
    algo = PPO if name == "sb3_ppo" else TRPO
    hp = dict(PEER_HYPERPARAMS[(name, env)])
    n_envs, total = hp.pop("n_envs"), int(hp.pop("n_timesteps"))
    kwargs = {k: (lambda p, x=float(v[4:]): p * x) if str(v).startswith("lin_") else v for k, v in hp.items()}

    class Recorder(BaseCallback):  # [global_step, seconds since learn() began, return] per finished episode
        def _on_training_start(self):
            self.t0, self.curve = time.perf_counter(), []

        def _on_step(self):
            for info in self.locals["infos"]:
                if "episode" in info:  # set by the Monitor wrapper make_vec_env adds
                    self.curve.append([self.num_timesteps, time.perf_counter() - self.t0, float(info["episode"]["r"])])
            return True

    model = algo("MlpPolicy", make_vec_env(env, n_envs=n_envs, seed=seed), seed=seed, device="cpu", **kwargs)
    rec, t0 = Recorder(), time.perf_counter()
    model.learn(total_timesteps=total, callback=rec)
    wall, steps = time.perf_counter() - t0, int(model.num_timesteps)
    eval_env = make_vec_env(env, n_envs=1, seed=seed + EVAL_SEED_OFFSET)
    returns, _ = evaluate_policy(model, eval_env, EVAL_EPISODES, deterministic=True, return_episode_rewards=True)
    mean = float(np.mean(returns))
    summary = dict(algo=name, env=env, seed=seed, eval_mean_return=mean, eval_std_return=float(np.std(returns)))
    summary.update(eval_returns=[float(r) for r in returns], global_step=steps, wall_s=wall, sps=steps / wall)
    summary.update(curve=rec.curve, evals=[], best_eval_mean_return=mean)
    return dict(PEER_HYPERPARAMS[(name, env)], algo=algo.__name__, policy="MlpPolicy", env=env, seed=seed), summary
