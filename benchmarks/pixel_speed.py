"""Training speed on image observations: ppo_clip.py beside Stable-Baselines3's PPO, same settings, one machine.

    python benchmarks/pixel_speed.py                  # MinAtar/Breakout-v1 and ALE/Pong-v5, 3 runs of each library
    python benchmarks/pixel_speed.py --envs ALE/Pong-v5 --repeats 5 --atari-steps 32768
    python benchmarks/pixel_speed.py --device cuda    # both libraries on the GPU

(pip install -r benchmarks/requirements-peers.txt -r requirements-atari.txt -r requirements-minatar.txt first.)

Measured. Each run is a fresh spawned process (torch, OMP and MKL on one thread) in a temporary folder that trains a
fixed number of agent steps: by default 16,384 on an Atari game (16 iterations of the preset) and 262,144 on MinAtar
(32), a multiple of the batch so both libraries do the same iterations. The libraries alternate, ours first on odd
repetitions and SB3 first on even ones, so a drift in the machine's speed hits both alike. SPS = agent steps / seconds
of training: ours summary["sps"] (global_step / wall_s, from the first rollout to the last update, evaluations left
out), SB3's model.num_timesteps / the seconds from its training start (after learn()'s setup, which resets the envs,
as ours resets them before its clock starts) to the return of learn(). Neither counts the process start, imports,
building the envs and networks, or our final evaluation (1 episode here: --eval-episodes 1; no periodic evaluation
or checkpoint: --eval-every 0 --save-every 0). Writes benchmarks/results/pixel_speed.json (every run, the settings,
the machine) and pixel_speed.md (min / median / max SPS per library and env).

Same settings. SB3 plays the very env our file makes: DummyVecEnv over ppo_clip.make_env, so the frames are the same
bytes (84×84 grey, 4 stacked on Atari; the 10×10 bool grid on MinAtar; SB3 ignores the extra info["life_lost"]). Its
hyper-parameters are translated from ppo_clip's resolved Args for the env (its preset; --flags changes both alike):
envs × steps per rollout, epochs, minibatch size, the learning rate and whether it falls linearly to 0, the clip
range, the entropy and value coefficients, the gradient-norm clip, γ and λ. Both normalise advantages per minibatch,
neither clips the value (SB3's clip_range_vf=None, its default) nor stops early on KL, both use Adam with eps 1e-5.
The networks are the same: one CNN whose features both heads share (SB3's share_features_extractor, its default), a
linear head each (net_arch=[]: our hidden_sizes=()), orthogonal init with gains √2 / 0.01 / 1. On Atari it is the
Nature CNN (SB3's own NatureCNN of CnnPolicy; uint8 frames / 255 in both); on MinAtar SB3 cannot use NatureCNN on
10×10, so its features extractor is our own Encoder, MinAtar's small CNN (conv 16·3×3 stride 1, ReLU, flatten, linear
128, ReLU), fed the grid as floats (SB3's preprocessing turns the bool observations into 0/1 floats, as our Encoder
does). tests/test_benchmarks.py checks that both libraries build parameters of the same shapes. Where our Args clip
rewards (Atari), SB3's envs pass the sign of the reward on (a wrapper), as our learner sees it.

What differs, each library doing it its own way: after a rollout ours runs the CNN over the whole batch twice more (V
of every s_t and of every true s_{t+1}, batched), where SB3 takes V(s_t) from the rollout's forward pass and
bootstraps a truncated episode's last state one at a time; ours ends the learner's episode at a lost life (no lives
in Pong; MinAtar has none), SB3 does not; ours clips the gradient norms of the policy and of the value head
separately, SB3 that of all parameters at once; our value loss is ½·MSE, SB3's MSE (coefficient 0.5 in both); ours
writes a progress.csv row per iteration and runs torch.use_deterministic_algorithms (its defaults), SB3 logs in
memory. Both keep the rollout's observations in the space's dtype (uint8, bool).
"""

import argparse
import contextlib
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python benchmarks/pixel_speed.py` too (then only benchmarks/ is on the path)

import ppo_clip  # noqa: E402
from benchmarks.run import _json_safe, machine_info  # noqa: E402
from benchmarks.suites import fmt  # noqa: E402

ENVS = ("MinAtar/Breakout-v1", "ALE/Pong-v5")
STEPS = {"minatar": 262_144, "atari": 16_384}  # agent steps a measured run, per env family (--minatar-steps …)
LIBRARIES = ("ppo_clip", "sb3_ppo")
NAMES = {"ppo_clip": "ours (ppo_clip.py)", "sb3_ppo": "Stable-Baselines3 PPO"}


# ---- the same settings for both ------------------------------------------------------------------------------------
def our_args(env: str, seed: int, steps: int, device: str, flags: list[str]):
    """ppo_clip's Args of a measured run: the env's preset, `flags`, and nothing evaluated or saved on the way."""
    run = ["--eval-episodes", "1", "--eval-every", "0", "--save-every", "0", "--torch-threads", "1", "--device", device]
    return ppo_clip.parse_args(["--env", env, "--seed", str(seed), "--total-timesteps", str(steps), *run, *flags])


def nature_cnn(obs_shape: tuple) -> bool:
    """Whether our Encoder takes these images through the Nature CNN (3 convolutions), else MinAtar's small CNN."""
    import torch.nn as nn

    encoder = ppo_clip.Encoder(obs_shape)
    if not encoder.image:
        raise ValueError(f"observations of shape {obs_shape} are no image: this script compares CNNs")
    return sum(isinstance(m, nn.Conv2d) for m in encoder.net) == 3


def sb3_settings(args) -> dict:
    """SB3 PPO's keyword arguments for the same hyper-parameters as our resolved `args` (policy_kwargs apart: see
    sb3_model); ValueError for Args SB3 would need more than PPO's arguments for."""
    from stable_baselines3.common.utils import LinearSchedule

    unmatched = [name for name in ("norm_obs", "norm_reward", "kl_early_stop") if getattr(args, name)]
    if unmatched:
        raise ValueError(f"no SB3 counterpart here for {', '.join(unmatched)}: leave them at their off values")
    lr = LinearSchedule(args.learning_rate, 0.0, 1.0) if args.anneal_lr else args.learning_rate
    return dict(
        n_steps=args.num_steps,
        batch_size=args.num_envs * args.num_steps // args.num_minibatches,
        n_epochs=args.update_epochs,
        learning_rate=lr,
        gamma=args.gamma,
        gae_lambda=args.gae_lambda,
        clip_range=args.clip_coef,
        clip_range_vf=None,
        normalize_advantage=True,
        ent_coef=args.ent_coef,
        vf_coef=args.vf_coef,
        max_grad_norm=args.max_grad_norm,
        target_kl=None,
    )


def sb3_model(args, device: str = "cpu"):
    """SB3's PPO for `args` on DummyVecEnv over ppo_clip.make_env: the same envs, hyper-parameters and networks."""
    import gymnasium as gym
    import torch.nn as nn
    from stable_baselines3 import PPO
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
    from stable_baselines3.common.vec_env import DummyVecEnv

    class OurEncoder(BaseFeaturesExtractor):  # ppo_clip's Encoder as SB3's features extractor
        def __init__(self, observation_space):
            encoder = ppo_clip.Encoder(observation_space.shape)
            super().__init__(observation_space, encoder.out_dim)
            self.encoder = encoder

        def forward(self, obs):
            return self.encoder(obs)

    def make():
        env = ppo_clip.make_env(args.env)
        return gym.wrappers.TransformReward(env, lambda r: float(np.sign(r))) if args.clip_reward else env

    envs = DummyVecEnv([make for _ in range(args.num_envs)])
    extractor = NatureCNN if nature_cnn(envs.observation_space.shape) else OurEncoder
    hidden = list(args.hidden_sizes)
    kwargs = dict(net_arch=dict(pi=hidden, vf=hidden) if hidden else [], activation_fn=nn.Tanh, ortho_init=True)
    kwargs.update(share_features_extractor=True, features_extractor_class=extractor)
    return PPO("CnnPolicy", envs, policy_kwargs=kwargs, seed=args.seed, device=device, **sb3_settings(args))


# ---- one measured run, in its own process --------------------------------------------------------------------------
def train_sb3(args, device: str) -> tuple[int, float]:
    """(agent steps, seconds from SB3's training start to the end of learn())."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Clock(BaseCallback):
        def _on_training_start(self):
            self.t0 = time.perf_counter()

        def _on_step(self):
            return True

    model, clock = sb3_model(args, device), Clock()
    model.learn(total_timesteps=args.total_timesteps, callback=clock)
    return int(model.num_timesteps), time.perf_counter() - clock.t0


def measure(library: str, env: str, seed: int, steps: int, device: str, flags: list[str]) -> dict:
    """One run in a spawned process: cwd a temporary folder (our runs/ folder lands there and goes with it), output
    into a log there; never raises. The record: its steps, seconds and SPS, or its error and the end of its log."""
    import torch

    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix=f"pixel_speed_{library}_")
    log_path = os.path.join(tmp, "stdout.log")
    os.chdir(tmp)
    rec = dict(library=library, env=env, seed=seed, steps=None, seconds=None, sps=None, error=None)
    with open(log_path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            args = our_args(env, seed, steps, device, flags)
            if library == "ppo_clip":
                summary = ppo_clip.train(args)
                rec.update(steps=summary["global_step"], seconds=summary["wall_s"], sps=summary["sps"])
            else:
                done, seconds = train_sb3(args, device)
                rec.update(steps=done, seconds=seconds, sps=done / seconds)
        except BaseException:
            rec["error"] = traceback.format_exc()
        sys.stdout.flush()
        sys.stderr.flush()
    if rec["error"]:
        rec["log_tail"] = Path(log_path).read_text(errors="replace").splitlines()[-30:]
    os.chdir("/")
    shutil.rmtree(tmp, ignore_errors=True)
    return rec


# ---- the report ------------------------------------------------------------------------------------------------------
def summarise(runs: list[dict]) -> list[dict]:
    """Per (env, library) in the order measured: how many runs finished, their steps and min / median / max SPS; and
    per env, ours' median over SB3's."""
    rows: dict[tuple[str, str], dict] = {}
    for r in runs:
        row = dict(env=r["env"], library=r["library"], steps=None, sps=[], errors=0)
        row = rows.setdefault((r["env"], r["library"]), row)
        if r["error"] is None:
            row["steps"], row["sps"] = r["steps"], [*row["sps"], r["sps"]]
        row["errors"] += r["error"] is not None
    for row in rows.values():
        sps = row["sps"] or [math.nan]
        row.update(min=float(np.min(sps)), median=float(np.median(sps)), max=float(np.max(sps)))
    for row in rows.values():
        theirs = rows.get((row["env"], "sb3_ppo"))
        row["ratio"] = row["median"] / theirs["median"] if row["library"] == "ppo_clip" and theirs else math.nan
    return list(rows.values())


def settings_line(env: str, args: dict, sb3: dict) -> str:
    lr = f"{args['learning_rate']:g}" + (" falling linearly to 0" if args["anneal_lr"] else " constant")
    network = "Nature CNN (fc 512)" if sb3["features_extractor"] == "NatureCNN" else "MinAtar's CNN (16·3×3, fc 128)"
    return (
        f"- {env}: {args['num_envs']} envs × {args['num_steps']} steps, {args['update_epochs']} epochs of "
        f"{args['num_minibatches']} minibatches ({sb3['batch_size']:,} transitions), lr {lr}, clip "
        f"{args['clip_coef']:g}, entropy {args['ent_coef']:g}, value {args['vf_coef']:g}, grad norm "
        f"{args['max_grad_norm']:g}, γ {args['gamma']:g}, λ {args['gae_lambda']:g}, rewards "
        f"{'clipped to their sign' if args['clip_reward'] else 'as they are'}; {network} shared by both heads, "
        "linear heads"
    )


def markdown(runs: list[dict], settings: dict, meta: dict, flags: list[str]) -> str:
    rows = summarise(runs)
    head = "| env | library | runs | agent steps a run | SPS min | SPS median | SPS max | median ours / SB3 |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        runs_text = f"{len(r['sps'])}" + (f" ({r['errors']} crashed)" if r["errors"] else "")
        cells = [r["env"], NAMES[r["library"]], runs_text, fmt(r["steps"], ",")]
        cells += [fmt(r[k], ",.0f") for k in ("min", "median", "max")] + [fmt(r["ratio"], ".2f")]
        lines.append("| " + " | ".join(cells) + " |")
    repeats = max(r["repeat"] for r in runs)
    intro = (
        f"Steps per second of training, {repeats} run{'s' * (repeats > 1)} of each library per env, alternating, "
        f"each a fresh process on one torch thread ({meta.get('device', 'cpu')}); a run trains the agent steps of "
        "the table, and its SPS leaves out the process start, building the envs and networks and any evaluation. "
        "What is timed, what the same settings cover and what still differs: the docstring of "
        "benchmarks/pixel_speed.py."
    )
    extra = [f"More flags for both: `{shlex.join(flags)}`", ""] if flags else []
    lines_settings = [settings_line(env, s["ppo_clip"], s["sb3_ppo"]) for env, s in settings.items()]
    machine = [f"- {k}: {v}" for k, v in meta.items() if k != "versions"] + [f"- versions: {meta.get('versions')}"]
    return "\n".join(
        ["# Image observations: ppo_clip.py and Stable-Baselines3 PPO, steps per second", "", intro, "", *lines, ""]
        + ["## Settings (both libraries)", "", *extra, *lines_settings, "", "## Machine", "", *machine, ""]
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", nargs="+", default=list(ENVS), help="image envs of the atari or minatar family")
    p.add_argument("--repeats", type=int, default=3, help="measured runs of each library per env")
    p.add_argument("--atari-steps", type=int, default=STEPS["atari"], help="agent steps of a run on an Atari game")
    p.add_argument("--minatar-steps", type=int, default=STEPS["minatar"], help="agent steps of a run on MinAtar")
    p.add_argument("--flags", default="", help="more ppo_clip flags, for both libraries: e.g. '--num-envs 4'")
    p.add_argument("--device", choices=("cpu", "cuda", "mps"), default="cpu", help="for both libraries")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    a = p.parse_args(argv)
    flags, steps = shlex.split(a.flags), {"atari": a.atari_steps, "minatar": a.minatar_steps}
    if a.repeats < 1:
        p.error("--repeats must be ≥ 1")
    settings = {}
    for env in a.envs:  # every setting checked before the first run
        try:
            family = ppo_clip.env_family(env)
            if family not in steps:
                raise ValueError(f"{env} is no env of the atari or minatar family")
            args = our_args(env, 1, steps[family], a.device, flags)
            batch = args.num_envs * args.num_steps
            if args.total_timesteps % batch:
                raise ValueError(f"{args.total_timesteps:,} steps are no multiple of the batch of {batch:,}")
            sb3 = sb3_settings(args)
            extractor = (
                "NatureCNN" if nature_cnn(ppo_clip.make_env(env).observation_space.shape) else "ppo_clip.Encoder"
            )
        except ValueError as e:
            p.error(f"{env}: {e}")
        except SystemExit:  # tyro rejected a flag of --flags, and said why above
            p.error(f"{env}: ppo_clip.py does not take --flags {a.flags!r}")
        sb3.update(learning_rate=repr(sb3["learning_rate"]), features_extractor=extractor, policy="CnnPolicy")
        settings[env] = dict(ppo_clip=asdict(args), sb3_ppo=sb3)
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # inherited by every run
    meta, runs, t0 = dict(machine_info(), device=a.device), [], time.perf_counter()
    for package in ("ale-py", "minatar"):
        with contextlib.suppress(PackageNotFoundError):
            meta["versions"][package] = version(package)
    order = [(env, rep) for env in a.envs for rep in range(a.repeats)]
    for env, rep in order:
        family = ppo_clip.env_family(env)
        for library in LIBRARIES if rep % 2 == 0 else LIBRARIES[::-1]:  # ours first, then SB3 first, …
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                job = (library, env, rep + 1, steps[family], a.device, flags)
                r = dict(pool.submit(measure, *job).result(), repeat=rep + 1)
            runs.append(r)
            done = "CRASHED" if r["error"] else f"{r['sps']:,.0f} SPS ({r['steps']:,} steps in {r['seconds']:.1f} s)"
            print(f"[{len(runs)}/{len(order) * 2}] {library} {env} run {rep + 1}: {done}", flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    record = dict(meta=meta, flags=flags, settings=settings, runs=runs, summary=summarise(runs))
    (a.out / "pixel_speed.json").write_text(json.dumps(_json_safe(record), indent=1, allow_nan=False) + "\n")
    (a.out / "pixel_speed.md").write_text(markdown(runs, settings, meta, flags))
    for r in runs:
        if r["error"]:
            print(f"\n{r['library']} {r['env']} run {r['repeat']} crashed:\n{r['error']}" + "\n".join(r["log_tail"]))
    print(f"({time.perf_counter() - t0:.0f} s) wrote {a.out}/pixel_speed.json, pixel_speed.md", flush=True)
    return int(any(r["error"] for r in runs))


if __name__ == "__main__":
    sys.exit(main())
