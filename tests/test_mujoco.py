"""MuJoCo in CI (the dev requirements install mujoco): InvertedPendulum-v5 learned with default flags, seed 1,
by every single-process file; clear one-line errors when mujoco is missing or cannot start; headless GIFs.
HalfCheetah/Hopper at 1 M steps are too long for CI: `python benchmarks/run.py --mujoco` measures them."""

import os
import subprocess
import sys

import pytest

from conftest import load, run_script

THRESHOLD = 950.0  # InvertedPendulum-v5's best possible return is 1000 (1000 steps upright)


@pytest.mark.parametrize("algo", ["vpg", "trpo", "ppo_penalty", "ppo_clip"])
def test_inverted_pendulum_is_learned_with_default_flags(algo, in_tmp):
    m = load(algo)
    s = m.train(m.parse_args(["--env", "InvertedPendulum-v5", "--seed", "1"]))
    assert s["eval_mean_return"] >= THRESHOLD, f"{algo}: eval {s['eval_mean_return']:.1f} < {THRESHOLD}"


@pytest.mark.parametrize("env", ["HalfCheetah-v5", "Hopper-v5"])
def test_dppo_trains_mujoco_with_its_preset(env, in_tmp):
    """dppo's MuJoCo preset (the paper's setting: statistics, gradients averaged every step, the KL stop at 4·d_targ)
    builds, trains two iterations, evaluates and saves in one process; 2 ranks at 1 M steps: docs/distributed.md."""
    m = load("dppo")
    args = m.parse_args(["--env", env, "--eval-episodes", "1", "--save-model"])
    assert args.norm_obs and args.norm_reward and args.run.save_every == 100_000 and args.total_timesteps == 1_000_000
    assert args.kl_early_stop == 4 * args.kl_target and args.kl_hinge_coef > 0 and args.sync == "step"
    s = m.train(m.replace(args, total_timesteps=2 * args.num_envs * args.num_steps))
    assert s["global_step"] == 2 * args.num_envs * args.num_steps and os.path.isfile(s["checkpoint"])


def test_missing_mujoco_names_the_install_command(in_tmp, monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco", None)  # `import mujoco` now raises ImportError
    for mod in [k for k in sys.modules if k.startswith("gymnasium.envs.mujoco")]:
        monkeypatch.delitem(sys.modules, mod)
    m = load("ppo_clip")
    install = r"pip install -r requirements-mujoco.txt"
    with pytest.raises(ValueError, match=rf"cannot make env 'InvertedPendulum-v5'.*{install}"):
        m.train(
            m.parse_args(
                ["--env", "InvertedPendulum-v5", "--total-timesteps", "256", "--num-envs", "2", "--num-steps", "64"]
            )
        )


def run_cli(args: list[str], env: dict, cwd) -> subprocess.CompletedProcess:
    return run_script("ppo_clip.py", *args, cwd=cwd, env=env)


def test_gif_of_a_mujoco_env_on_a_headless_machine(tmp_path):
    """No DISPLAY and no MUJOCO_GL: watch.py picks MuJoCo's EGL backend itself."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MUJOCO_GL")}
    p = run_cli(
        [
            "--env",
            "InvertedPendulum-v5",
            "--total-timesteps",
            "256",
            "--num-envs",
            "2",
            "--num-steps",
            "64",
            "--eval-episodes",
            "1",
            "--save-model",
        ],
        env,
        tmp_path,
    )
    assert p.returncode == 0, p.stderr
    (ckpt,) = tmp_path.glob("runs/*/ppo_clip.pt")
    p = run_script("watch.py", str(ckpt), "--episodes", "1", "--no-video", "--gif", "ip.gif", cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    from PIL import Image

    assert Image.open(tmp_path / "ip.gif").n_frames >= 2


def test_a_simulator_that_cannot_start_is_one_line(tmp_path):
    env = dict(os.environ, MUJOCO_GL="no-such-backend")
    p = run_cli(
        ["--env", "Hopper-v5", "--total-timesteps", "256", "--num-envs", "2", "--num-steps", "64"], env, tmp_path
    )
    assert p.returncode == 2
    assert p.stderr.startswith("error: cannot make env 'Hopper-v5' with MUJOCO_GL=no-such-backend")
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def hopper_pixels(env, x: float) -> int:
    """Pixels of the hopper's brown body in a frame rendered with the hopper moved to x metres along the track."""
    u = env.unwrapped
    qpos = u.data.qpos.copy()
    qpos[0] = x
    u.set_state(qpos, u.data.qvel.copy())
    frame = env.render().astype(int)
    r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]
    return int(((r > g + 40) & (r > b + 40)).sum())


def test_videos_of_a_walker_follow_it(monkeypatch):
    if not os.environ.get("DISPLAY"):
        monkeypatch.setenv("MUJOCO_GL", os.environ.get("MUJOCO_GL", "egl"))
    import watch

    m = load("ppo_clip")
    tracked = watch.make_render_env(m, "Hopper-v5")
    tracked.reset(seed=0)
    home = hopper_pixels(tracked, 0.0)
    assert home > 500 and hopper_pixels(tracked, 8.0) > 0.5 * home
    tracked.close()
    fixed = m.make_env("Hopper-v5", render_mode="rgb_array")  # the control: gymnasium's default view
    fixed.reset(seed=0)
    assert hopper_pixels(fixed, 0.0) > 500 and hopper_pixels(fixed, 8.0) < 50
    fixed.close()
    assert watch.make_render_env(m, "InvertedPendulum-v5").render_mode == "rgb_array"  # no "track" camera
