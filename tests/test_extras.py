"""The optional extras: each requirement file, beside requirements.txt, installs what gymnasium's extra of the same
name asks for (imageio was once missing from the MuJoCo one; Box2D envs import pygame even to train), and the Box2D
envs train in every file."""

import os

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT, load, short_flags


def names(path: str) -> set[str]:
    with open(os.path.join(ROOT, path)) as f:
        return {
            canonicalize_name(Requirement(line).name)
            for line in map(str.strip, f)
            if line and not line.startswith(("#", "-r"))
        }


def extra_packages(extra: str) -> set[str]:
    """What `pip install gymnasium[extra]` adds on this python."""
    from importlib.metadata import requires

    wanted = set()
    for r in map(Requirement, requires("gymnasium")):
        if r.marker and "extra" in str(r.marker) and r.marker.evaluate({"extra": extra}):
            wanted.add(canonicalize_name(r.name))
    return wanted


@pytest.mark.parametrize("extra", ["mujoco", "box2d", "atari"])
def test_each_requirement_file_covers_its_gymnasium_extra(extra):
    wanted = extra_packages(extra)
    assert wanted and wanted <= names(f"requirements-{extra}.txt"), wanted - names(f"requirements-{extra}.txt")


def test_every_requirement_file_that_brings_pygame_brings_pygame_ce():
    """pygame and pygame-ce install the same module and cannot share a venv; gymnasium's extras ask for pygame-ce."""
    files = [f for f in os.listdir(ROOT) if f.startswith("requirements") and f.endswith(".txt")]
    assert all("pygame" not in names(f) for f in files) and "pygame-ce" in names("requirements-video.txt")


@pytest.mark.parametrize("env", ["LunarLander-v3", "LunarLanderContinuous-v3"])
@pytest.mark.parametrize("algo", ["vpg", "trpo", "ppo_penalty", "ppo_clip", "dppo"])
def test_box2d_envs_train_with_their_preset(algo, env, in_tmp):
    """Two iterations with the Box2D family's preset (γ = 0.999, λ = 0.98, 1 M steps; dppo has none: its Args):
    builds, trains, evaluates, saves. The 1 M-step results are the benchmarks' job."""
    m = load(algo)
    if algo == "dppo":
        s = m.train(m.parse_args(["--env", env, *short_flags(algo)]))
        assert s["global_step"] == 256 and len(s["eval_returns"]) == 2
        return
    args = m.parse_args(["--env", env, "--eval-episodes", "1", "--save-model"])
    assert (args.gamma, args.gae_lambda, args.total_timesteps, args.run.save_every) == (0.999, 0.98, 1_000_000, 100_000)
    s = m.train(m.replace(args, total_timesteps=2 * args.num_envs * args.num_steps))
    assert s["global_step"] == 2 * args.num_envs * args.num_steps and os.path.isfile(s["checkpoint"])


@pytest.mark.parametrize("env", ["Walker2d-v5", "Swimmer-v5", "InvertedDoublePendulum-v5"])
@pytest.mark.parametrize("algo", ["vpg", "trpo", "ppo_penalty", "ppo_clip"])
def test_new_mujoco_envs_train_with_their_preset(algo, env, in_tmp):
    """Two iterations with the MuJoCo family's preset (its batch shape, statistics, σ0) and the env's entry on top
    (Swimmer's γ, a file's own): builds, trains, evaluates, saves. The 1 M-step results are the benchmarks' job."""
    m = load(algo)
    args = m.parse_args(["--env", env, "--eval-episodes", "1", "--save-model"])
    assert args.norm_reward and args.run.save_every == 100_000
    assert args.norm_obs == m.ENV_DEFAULTS.get(env, {}).get("norm_obs", True)  # ppo_clip's IDP entry switches it off
    assert args.gamma == (0.9999 if env == "Swimmer-v5" else 0.99)
    s = m.train(m.replace(args, total_timesteps=2 * args.num_envs * args.num_steps))
    assert s["global_step"] == 2 * args.num_envs * args.num_steps and os.path.isfile(s["checkpoint"])
