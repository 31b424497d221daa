"""Watch a trained agent: film a checkpoint written by any algorithm file here (`--save-model`).

    python watch.py runs/<run>/ppo_clip.pt                      # MP4s of 3 episodes in runs/<run>/videos/
    python watch.py runs/<run>/ppo_clip.pt --gif agent.gif      # and episode 0 as an animated GIF
    python watch.py runs/<run>/trpo.pt --episodes 1 --no-video --gif agent.gif

It rebuilds the policy and observation statistics with the classes of the file that wrote the checkpoint, which
must sit next to this one, and plays the deterministic policy (argmax / Gaussian mean) on the same seeds as that
file's evaluation, so episode k is that evaluation's episode k. Rendering is headless; it needs
`pip install -r requirements-video.txt`. MuJoCo renders through EGL when there is no display (set MUJOCO_GL to
choose another backend) and is filmed by the model's "track" camera where it has one, so a walker stays in view.
"""

import importlib
import os
import signal
import sys
import warnings
from dataclasses import dataclass, fields

import gymnasium as gym
import numpy as np
import torch
import tyro

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass
class WatchArgs:
    checkpoint: tyro.conf.Positional[str]  # a checkpoint written by --save-model (runs/<run>/<algo>.pt)
    episodes: int = 3  # episodes to play
    video: bool = True  # record every episode as an MP4
    video_dir: str | None = None  # where the MP4s go (default: the checkpoint's folder's videos/)
    gif: str | None = None  # also write episode 0 as an animated GIF at this path


def check_video_packages(video: bool, gif: bool) -> None:
    """Fail before any work, with the install command, when a package for rendering or writing is missing."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless: no display, no sound card needed
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl")  # MuJoCo's default (a GLFW window) needs a display
    needed = ["pygame"] + ["moviepy"] * video + ["PIL"] * gif  # classic-control rendering, MP4s, GIFs
    for name in needed:
        try:
            importlib.import_module(name)
        except ImportError:
            raise ValueError(f"video needs {name}: pip install -r requirements-video.txt") from None


def load_agent(path: str):
    """The algorithm module, its Args and the policy and observation statistics stored in the checkpoint."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        algo = importlib.import_module(state["algo"])
    except FileNotFoundError:
        raise ValueError(f"checkpoint not found: {path}") from None
    except ImportError as e:
        raise ValueError(f"checkpoint {path} needs {e.name}.py next to watch.py") from None
    except Exception as e:  # any failure to unpickle or a dict without "algo": not one of ours
        raise ValueError(f"cannot read checkpoint {path} (truncated or not a checkpoint): {type(e).__name__}") from None
    known = {f.name for f in fields(algo.Args)} - {"run"}  # the algorithm's own Args: env, seed, networks
    args = algo.Args(**{k: v for k, v in state["args"].items() if k in known})
    env = algo.make_env(args.env)
    obs_shape, act_space = env.observation_space.shape, env.action_space
    env.close()
    policy = algo.Policy(obs_shape, act_space, args.hidden_sizes, args.log_std_init)
    obs_norm = algo.ObsNorm(obs_shape, args.norm_obs)
    policy.load_state_dict(state["policy"])
    obs_norm.load_state_dict(state["obs_norm"])
    return algo, args, policy, obs_norm


def make_render_env(algo, env_id: str) -> gym.Env:
    """The env rendering rgb_array frames, through the MuJoCo model's "track" camera where it has one (gymnasium
    1.4's default MuJoCo view is a free camera that ignores the env's trackbodyid, so a walker leaves the picture).
    One frame is rendered first, so a backend that cannot start fails here with one line."""
    env = algo.make_env(env_id, render_mode="rgb_array")
    try:
        env.unwrapped.model.camera("track")  # AttributeError: not MuJoCo; KeyError: no such camera
        env.close()
        env = algo.make_env(env_id, render_mode="rgb_array", camera_name="track")
    except (AttributeError, KeyError):
        pass
    try:
        env.reset(seed=0)
        env.render()
    except Exception as e:  # a missing GL backend, a renderer that needs a display …: one line
        hint = " (MuJoCo renders headless with MUJOCO_GL=egl or osmesa)" if hasattr(env.unwrapped, "model") else ""
        raise ValueError(f"cannot render {env_id}: {type(e).__name__}: {str(e).splitlines()[0]}{hint}") from None
    return env


def save_gif(frames: list, path: str, every: int = 2, scale: float = 0.5) -> None:
    """Every `every`-th frame, scaled by `scale`, as a looping GIF at the env's real-time speed (50 fps / every)."""
    from PIL import Image

    images = [Image.fromarray(f).resize((int(f.shape[1] * scale), int(f.shape[0] * scale))) for f in frames[::every]]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=20 * every, loop=0)


@torch.no_grad()
def watch(w: WatchArgs) -> list[float]:
    """Plays w.episodes episodes, writing the MP4s and the GIF; returns the episode returns."""
    if w.episodes < 1:
        raise ValueError(f"episodes must be > 0, got {w.episodes}")
    check_video_packages(w.video, w.gif is not None)
    algo, args, policy, obs_norm = load_agent(w.checkpoint)
    env = make_render_env(algo, args.env)
    video_dir = w.video_dir or os.path.join(os.path.dirname(os.path.abspath(w.checkpoint)), "videos")
    if w.video:
        with warnings.catch_warnings():  # a second watch of the same checkpoint replaces its videos on purpose
            warnings.filterwarnings("ignore", message=".*Overwriting existing videos")
            env = gym.wrappers.RecordVideo(env, video_dir, lambda e: True, name_prefix=algo.ALGO, disable_logger=True)
    returns, frames = [], []
    for k in range(w.episodes):
        obs, _ = env.reset(seed=args.seed + 1_000_000 + k)  # the algorithm file's evaluation seeds
        total, limit = 0.0, env.spec.max_episode_steps or algo.EVAL_MAX_STEPS  # the evaluation's cap
        for _ in range(limit):
            if w.gif and k == 0:
                frames.append(env.unwrapped.render())
            action = algo.mode(policy(obs_norm(obs[None])))[0]
            obs, reward, term, trunc, _ = env.step(algo.to_env_action(action, env.action_space))
            total += float(reward)
            if term or trunc:
                break
        else:
            print(f"episode {k} cut at {limit} steps ({args.env} sets no time limit)")
        returns.append(total)
        print(f"{algo.ALGO} {args.env} episode {k}: return {total:.2f}", flush=True)
    env.close()
    if w.gif:
        save_gif(frames, w.gif)
    where = (f" | MP4s in {video_dir}" if w.video else "") + (f" | GIF {w.gif}" if w.gif else "")
    print(f"{w.episodes} episodes: mean return {np.mean(returns):.2f}{where}", flush=True)
    return returns


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, HERE)  # the algorithm files sit next to this one
    try:
        watch(tyro.cli(WatchArgs, description=__doc__))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
