"""The contract every algorithm file keeps (docs/design.md), checked on each: Args/parse_args/train, outputs, errors,
checkpoints, determinism, wandb offline, Ctrl-C, and the copy-one-file promise."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict, replace

import pytest
import torch

from conftest import ALGOS, ROOT, kill_tree, load, read_line, run_script, short_args, short_flags


def cli(algo, *argv, cwd, env=None):
    return run_script(f"{algo}.py", *argv, cwd=cwd, env=env)


# ---------------------------------------------------------------------------------------------
# parse_args and --help
# ---------------------------------------------------------------------------------------------
def test_env_defaults_apply_and_explicit_flags_win(algo):
    m = load(algo)
    for env, overrides in m.ENV_DEFAULTS.items():
        args = m.parse_args(["--env", env])
        for key, val in overrides.items():
            assert getattr(args, key) == val, (env, key)
        key, val = next(iter(overrides.items()))
        flag = "--" + key.replace("_", "-")
        if isinstance(val, bool):  # the other value, by its flag: --norm-obs / --no-norm-obs
            explicit = not val
            argv = [flag if explicit else "--no-" + flag[2:]]
        else:  # another valid value: a count doubled, a rate or γ halved
            explicit = val * 2 if isinstance(val, int) else val / 2
            argv = [flag, str(explicit)]
        assert explicit != val, (env, key)
        assert getattr(m.parse_args([*argv, "--env", env]), key) == explicit  # any order
    assert m.parse_args(["--env=Pendulum-v1"]).env == "Pendulum-v1"
    assert m.parse_args(["--env", "Acrobot-v1"]) == m.Args(env="Acrobot-v1")  # no table entry: Args' defaults


def test_an_env_no_file_lists_gets_its_familys_preset(algo, tmp_path):
    """Args < the family preset < the env's own entry < explicit flags; --help says which layers applied."""
    m = load(algo)
    envs = ("Ant-v5", "LunarLander-v3", "CartPole-v1", "FrozenLake-v1", "Test/DictObs-v0", "No-v0")
    assert [m.env_family(e) for e in envs] == ["mujoco", "box2d", "classic_control", "toy_text", None, None]
    preset = m.FAMILY_DEFAULTS.get("mujoco", {})
    assert preset
    ant = m.parse_args(["--env", "Ant-v5"])
    assert ant == m.with_values(m.Args(env="Ant-v5"), **preset)
    assert m.parse_args(["--env", "Ant-v5", "--total-timesteps", "5000"]).total_timesteps == 5000
    if "InvertedPendulum-v5" in m.ENV_DEFAULTS:  # its entry sits on the preset: its budget wins, the statistics stay
        pendulum = m.parse_args(["--env", "InvertedPendulum-v5"])
        assert pendulum.total_timesteps == m.ENV_DEFAULTS["InvertedPendulum-v5"]["total_timesteps"] < 1_000_000
        assert pendulum.norm_obs == preset["norm_obs"] is True
    if algo != "dppo":  # an env of the Box2D family that no file lists gets that preset too
        bipedal = m.parse_args(["--env", "BipedalWalker-v3"])
        assert bipedal == m.with_values(m.Args(env="BipedalWalker-v3"), **m.FAMILY_DEFAULTS["box2d"])
    for env in ("FrozenLake-v1", "CliffWalking-v1"):  # toy-text: the file's own preset, or Args' defaults where none
        assert m.parse_args(["--env", env]) == m.with_values(m.Args(env=env), **m.FAMILY_DEFAULTS.get("toy_text", {}))
    r = cli(algo, "--env", "Ant-v5", "--help", cwd=tmp_path)
    assert "Defaults for Ant-v5: Args < the mujoco preset < your flags" in " ".join(
        r.stdout.replace("│", " ").split()
    ), r.stdout


def test_help_shows_the_values_for_the_env(algo, tmp_path):
    m = load(algo)
    generic = m.Args.total_timesteps  # an env whose entry changes it: showing Args' own default would fail
    env, steps = next(
        (e, o["total_timesteps"]) for e, o in m.ENV_DEFAULTS.items() if o.get("total_timesteps", generic) != generic
    )
    r = cli(algo, "--env", env, "--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    shown = " ".join(r.stdout.replace("│", " ").split())
    assert int(re.search(r"--total-timesteps INT .*?\(default: (\d+)\)", shown).group(1)) == steps != generic


def test_help_shows_every_fields_comment(algo, tmp_path):
    """Each field's inline comment, the algorithm's Args and its run's flags, is its --help text (tyro reads it from
    the source); the run's flags take no prefix."""
    import inspect

    r = cli(algo, "--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    shown = " ".join(r.stdout.replace("│", " ").split())
    m, run_args = load(algo), type(load(algo).Args().run)
    for cls in {m.Args, m.RunArgs, run_args}:
        comments = re.findall(r"^    \w+: [^#\n]*  # (.*)$", inspect.getsource(cls), re.M)
        assert len(comments) == len(cls.__annotations__)  # its own fields (a subclass adds to RunArgs')
        for comment in comments:
            assert " ".join(comment.split()[:4]) in shown, comment
    assert "--eval-every INT" in shown and "--save-every INT" in shown and "--run." not in shown


# ---------------------------------------------------------------------------------------------
# A real short run: CLI, summary, CSV
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_short_cli_run_writes_csv_and_summary(algo, env, tmp_path):
    r = cli(algo, "--env", env, *short_flags(algo), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "eval return" in r.stdout and "SPS" in r.stdout
    (run,) = os.listdir(tmp_path / "runs")
    assert run.startswith(f"{env}__{algo}__1__")
    lines = (tmp_path / "runs" / run / "progress.csv").read_text().splitlines()
    assert lines[0].startswith("global_step,") and len(lines) >= 3  # header + one row per iteration


def test_summary_follows_the_contract(algo, in_tmp):
    args = short_args(algo, "--eval-every", "128", "--total-timesteps", "512", env="Pendulum-v1")
    s = load(algo).train(args)
    json.dumps(s)  # JSON-serialisable
    assert s["global_step"] == 512
    # 2 envs x 256 steps: each env's first 200-step Pendulum episode ends at global step 2 x 200
    assert [c[0] for c in s["curve"]] == [400, 400] and all(len(c) == 3 for c in s["curve"])
    assert s["wall_s"] > 0 and s["sps"] == pytest.approx(s["global_step"] / s["wall_s"])
    assert len(s["evals"]) == 4 and [e[0] for e in s["evals"]] == [128, 256, 384, 512]
    assert s["best_eval_mean_return"] == max([s["eval_mean_return"]] + [e[1] for e in s["evals"]])
    assert len(s["eval_returns"]) == 2 and -2000 < s["eval_mean_return"] < 0


# ---------------------------------------------------------------------------------------------
# Spaces: Discrete with a start, unbounded Box, and the unsupported ones
# ---------------------------------------------------------------------------------------------
SUPPORTED = [
    "Test/DiscreteStart-v0",
    "Test/UnboundedBox-v0",
    "Test/DictObs-v0",
    "Test/MultiDiscreteAct-v0",
    "Test/ImageObs-v0",
]


@pytest.mark.parametrize("env", SUPPORTED)
def test_unusual_but_supported_spaces_run(algo, env, in_tmp):
    s = load(algo).train(short_args(algo, env=env))  # the test env asserts every action is in its space
    assert s["global_step"] == 256 and s["eval_mean_return"] == 20.0


@pytest.mark.parametrize(
    "env, message",
    [
        ("Foo-v0", "cannot make env 'Foo-v0'"),
        ("CartPole-v9", "cannot make env"),
        ("Test/MissingDependency-v0", "pip install"),
        ("Test/ImageInTupleObs-v0", "unsupported observation space .*an image inside a Dict or Tuple"),
        ("Test/TextObs-v0", "unsupported observation space .*Text has no fixed size"),
        ("Test/SequenceInDictObs-v0", "unsupported observation space .*Sequence has no fixed size"),
        ("Test/TupleAct-v0", "unsupported action space"),
        ("Test/MatrixAct-v0", "unsupported action space"),
    ],
)
def test_bad_env_is_a_value_error(algo, env, message, in_tmp):
    with pytest.raises(ValueError, match=message):
        load(algo).train(short_args(algo, env=env))


BAD_VALUES = [
    ("total_timesteps", 0, "total_timesteps"),
    ("num_envs", 0, "num_envs"),
    ("num_steps", -5, "num_steps"),
    ("num_minibatches", 0, "num_minibatches"),
    ("update_epochs", 0, "update_epochs"),
    ("vf_epochs", 0, "vf_epochs"),
    ("gamma", 1.5, "gamma"),
    ("gamma", -0.1, "gamma"),
    ("gae_lambda", 2.0, "gae_lambda"),
    ("learning_rate", -1e-3, "learning_rate"),
    ("learning_rate", 0, "learning_rate"),
    ("vf_learning_rate", -1e-3, "vf_learning_rate"),
    ("eval_episodes", 0, "eval_episodes"),
    ("eval_only", True, "--checkpoint"),
]
BAD_CASES = [
    (a, *bad)
    for a in ALGOS
    for bad in BAD_VALUES
    if bad[0] in {*asdict(load(a).Args()), *load(a).RunArgs.__dataclass_fields__}
]


def test_every_bad_value_applies_somewhere():
    """A renamed field would silently drop its cases: each one must still be tried on some file."""
    assert {bad[0] for bad in BAD_VALUES} == {case[1] for case in BAD_CASES}


# every (file, field) pair where the file has that field (TRPO, say, has no policy learning rate)
@pytest.mark.parametrize("algo, field, value, message", BAD_CASES)
def test_bad_hyper_parameters_are_value_errors(algo, field, value, message):
    m = load(algo)
    flag = "--" + field.replace("_", "-")
    with pytest.raises(ValueError, match=message):
        m.parse_args([flag] if value is True else [flag, str(value)])
    with pytest.raises(ValueError, match=message):  # train() checks too, for Args built by hand
        m.train(m.with_values(m.parse_args([]), **{field: value}))


@pytest.mark.parametrize("algo, field", [("vpg", "estimator"), ("dppo", "objective")])
def test_a_choice_outside_its_literal_is_a_value_error(algo, field):
    """tyro refuses such a flag; Args built in Python reach check_args, which refuses it too."""
    m = load(algo)
    with pytest.raises(ValueError, match=f"{field} must be one of"):
        m.train(replace(m.parse_args([]), **{field: "nonsense"}))


@pytest.mark.parametrize("algo", [a for a in ALGOS if "num_minibatches" in load(a).Args.__dataclass_fields__])
def test_minibatches_must_divide_the_batch(algo):
    m = load(algo)
    with pytest.raises(ValueError, match="not divisible"):
        m.parse_args(["--num-envs", "3", "--num-steps", "10", "--num-minibatches", "4"])


def test_cli_turns_errors_into_one_line_and_exit_2(algo, tmp_path):
    for argv in (["--env", "NoSuchEnv-v0"], ["--gamma", "7"], ["--checkpoint", "missing.pt", "--eval-only"]):
        r = cli(algo, *argv, cwd=tmp_path)
        assert r.returncode == 2, (argv, r.stderr)
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
        assert "Traceback" not in r.stderr


def test_nan_loss_stops_with_the_iteration_and_no_checkpoint(algo, in_tmp):
    with pytest.raises(ValueError, match=r"non-finite .*iteration 1"):
        load(algo).train(short_args(algo, "--save-model", env="Test/NanReward-v0"))
    assert not list(in_tmp.glob("runs/*/*.pt"))


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------
def test_checkpoint_round_trip_and_errors(algo, in_tmp):
    m = load(algo)
    s = m.train(short_args(algo, "--save-model", env="Pendulum-v1"))
    path = s["checkpoint"]
    state = torch.load(path, weights_only=True)
    assert state["algo"] == algo and state["env"] == "Pendulum-v1"
    assert state["args"] == asdict(short_args(algo, "--save-model", env="Pendulum-v1"))
    assert not [f for f in os.listdir(os.path.dirname(path)) if f.endswith(".tmp")]  # no leftovers

    ev = m.train(short_args(algo, "--checkpoint", path, "--eval-only", env="Pendulum-v1"))
    assert ev["eval_mean_return"] == s["eval_mean_return"]  # same weights, same eval seeds

    with pytest.raises(ValueError, match="cannot read checkpoint nope.pt: not found"):
        m.train(short_args(algo, "--checkpoint", "nope.pt", "--eval-only", env="Pendulum-v1"))
    with pytest.raises(ValueError, match="not .*CartPole-v1"):
        m.train(short_args(algo, "--checkpoint", path, "--eval-only", env="CartPole-v1"))
    truncated = in_tmp / "truncated.pt"
    truncated.write_bytes(open(path, "rb").read()[:200])
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        m.train(short_args(algo, "--checkpoint", str(truncated), "--eval-only", env="Pendulum-v1"))
    other = dict(state, algo="some_other_algo")
    torch.save(other, in_tmp / "other.pt")
    with pytest.raises(ValueError, match="some_other_algo"):
        m.train(short_args(algo, "--checkpoint", str(in_tmp / "other.pt"), "--eval-only", env="Pendulum-v1"))
    with pytest.raises(ValueError, match=r"--hidden-sizes \(16,\) contradicts the checkpoint's \(64, 64\)"):
        m.train(short_args(algo, "--checkpoint", path, "--eval-only", "--hidden-sizes", "16", env="Pendulum-v1"))
    cut = dict(state, value={name: tensor[..., :1] for name, tensor in state["value"].items()})
    torch.save(cut, in_tmp / "cut.pt")  # its Args say 64 × 64; its value network is not
    with pytest.raises(ValueError, match="does not fit"):
        m.train(short_args(algo, "--checkpoint", str(in_tmp / "cut.pt"), "--eval-only", env="Pendulum-v1"))


def test_checkpoints_are_written_atomically(algo, in_tmp, monkeypatch):
    """torch.save writes a temporary file, which os.replace then moves over the checkpoint in one step."""
    m, calls = load(algo), []
    save, replace_ = torch.save, os.replace
    monkeypatch.setattr(m.torch, "save", lambda obj, f: (calls.append(("save", str(f))), save(obj, f)))
    monkeypatch.setattr(m.os, "replace", lambda a, b: (calls.append(("replace", str(a), str(b))), replace_(a, b)))
    s = m.train(short_args(algo, "--save-model", env="CartPole-v1"))
    (saved,) = [c[1] for c in calls if c[0] == "save"]
    assert saved != s["checkpoint"] and ("replace", saved, s["checkpoint"]) in calls


def test_runs_started_in_the_same_second_get_their_own_folders(algo, in_tmp, monkeypatch):
    m = load(algo)
    monkeypatch.setattr(m.time, "time", lambda: 1_800_000_000.5)
    a = m.train(short_args(algo, "--save-model", env="Pendulum-v1"))
    b = m.train(short_args(algo, "--save-model", env="Pendulum-v1"))
    assert a["run_dir"].endswith(f"Pendulum-v1__{algo}__1__1800000000")
    assert b["run_dir"] == a["run_dir"] + "-1"
    for s in (a, b):  # each kept its own log and checkpoint
        assert os.path.isfile(os.path.join(s["run_dir"], "progress.csv")) and os.path.isfile(s["checkpoint"])


def test_ctrl_c_stops_cleanly_and_saves(algo, tmp_path):
    """Started with SIGINT ignored, as `cmd &` in a script starts it: the program restores Ctrl-C itself."""
    p = subprocess.Popen(
        [
            sys.executable,
            os.path.join(ROOT, f"{algo}.py"),
            "--env",
            "Pendulum-v1",
            "--total-timesteps",
            "10000000",
            "--save-model",
            "--eval-episodes",
            "2",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        first = read_line(p, timeout=120)  # the first progress line: training is under way
        assert first.startswith("step"), first
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        kill_tree(p)
    assert p.returncode == 0, err
    assert "interrupted" in out and "eval return" in out
    (ckpt,) = tmp_path.glob("runs/*/*.pt")
    assert torch.load(ckpt, weights_only=True)["global_step"] > 0


# ---------------------------------------------------------------------------------------------
# Determinism, wandb offline, copy-alone
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_same_seed_same_result(algo, env, in_tmp):
    m = load(algo)
    runs = [
        m.train(short_args(algo, "--save-model", "--total-timesteps", "1024", "--seed", "3", env=env)) for _ in range(2)
    ]
    assert [c[::2] for c in runs[0]["curve"]] == [c[::2] for c in runs[1]["curve"]]
    assert runs[0]["curve"] and runs[0]["eval_returns"] == runs[1]["eval_returns"]
    w0, w1 = (torch.load(r["checkpoint"], weights_only=True) for r in runs)
    keys = [k for k in w0 if isinstance(w0[k], dict) and k != "args"]
    assert keys
    for k in keys:
        for name, tensor in w0[k].items():
            assert torch.equal(tensor, w1[k][name]), (k, name)
    other = m.train(short_args(algo, "--total-timesteps", "1024", "--seed", "4", env=env))
    assert [c[2] for c in other["curve"]] != [c[2] for c in runs[0]["curve"]]


def test_wandb_offline(algo, tmp_path):
    env = dict(os.environ, WANDB_MODE="offline", WANDB_DIR=str(tmp_path), WANDB_SILENT="true")
    r = cli(algo, "--env", "CartPole-v1", *short_flags(algo), "--track", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    runs = list(tmp_path.glob("**/offline-run-*/run-*.wandb"))
    assert runs and runs[0].stat().st_size > 0


def test_copied_alone_into_an_empty_folder(algo, tmp_path):
    shutil.copy(os.path.join(ROOT, f"{algo}.py"), tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run(
        [sys.executable, f"{algo}.py", "--env", "Pendulum-v1", *short_flags(algo)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "eval return" in r.stdout


# ---------------------------------------------------------------------------------------------
# Watching the agent: watch.py films any file's checkpoint
# ---------------------------------------------------------------------------------------------
def mp4_frames(path) -> int:
    from moviepy import VideoFileClip

    with VideoFileClip(str(path)) as clip:
        return sum(1 for _ in clip.iter_frames())


def gif_frames(path) -> int:
    from PIL import Image

    with Image.open(path) as im:
        return im.n_frames


def watch_cli(*argv, cwd):
    return run_script("watch.py", *argv, cwd=cwd)


def test_watch_replays_the_evaluation_episodes_of_any_file(algo, in_tmp):
    """watch.py plays episode k on the seed of the file's evaluation episode k: the same return."""
    import watch

    s = load(algo).train(short_args(algo, "--save-model", env="Pendulum-v1"))
    (ret,) = watch.watch(watch.WatchArgs(s["checkpoint"], episodes=1, video=False, gif="w.gif"))
    assert ret == pytest.approx(s["eval_returns"][0], rel=1e-6)  # one env at a time: float sums in another order
    assert gif_frames(in_tmp / "w.gif") >= 90  # 200 steps, every second frame (PIL merges identical ones)
    assert not (in_tmp / s["run_dir"] / "videos").exists()


def test_watch_writes_an_mp4_per_episode(in_tmp):
    s = load("ppo_clip").train(short_args("ppo_clip", "--save-model", env="Pendulum-v1"))
    videos = in_tmp / s["run_dir"] / "videos"
    assert not videos.exists()  # training films nothing: every MP4 below is watch.py's
    r = watch_cli(s["checkpoint"], "--episodes", "2", cwd=in_tmp)
    assert r.returncode == 0, r.stderr
    mp4s = sorted(videos.glob("*.mp4"))
    assert len(mp4s) == 2 and all(mp4_frames(v) >= 199 for v in mp4s)  # whole 200-step episodes


@pytest.mark.parametrize("package, video", [("moviepy", True), ("pygame", False), ("PIL", False)])
def test_watch_without_its_packages_names_the_install_command(package, video, in_tmp, monkeypatch):
    import watch

    s = load("ppo_clip").train(short_args("ppo_clip", "--save-model", env="CartPole-v1"))
    monkeypatch.setitem(sys.modules, package, None)  # `import package` now raises ImportError
    with pytest.raises(ValueError, match=rf"{package}.*pip install -r requirements-video.txt"):
        watch.watch(watch.WatchArgs(s["checkpoint"], video=video, gif="x.gif"))
    assert not (in_tmp / "x.gif").exists() and not (in_tmp / s["run_dir"] / "videos").exists()


def test_watch_errors_are_one_line(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    for argv in (["missing.pt"], ["junk.pt"], ["junk.pt", "--episodes", "0"]):
        r = watch_cli(*argv, cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, (argv, r.stderr)


def test_a_checkpoint_with_flat_args_still_loads(algo, in_tmp):
    """Checkpoints written before the run's flags moved to Args.run hold one flat asdict(args): --checkpoint and
    --resume still read their env, networks and settings."""
    m = load(algo)
    s = m.train(short_args(algo, "--save-every", "128", "--hidden-sizes", "16", env="Pendulum-v1"))
    path = os.path.join(s["run_dir"], "checkpoint.pt")
    state = torch.load(path, weights_only=True)
    state["args"] = {**{k: v for k, v in state["args"].items() if k != "run"}, **state["args"]["run"]}
    torch.save(state, path)
    ev = m.train(m.parse_args(["--checkpoint", path, "--eval-only", "--eval-episodes", "2"]))
    assert ev["eval_mean_return"] == s["eval_mean_return"]  # the same weights on the same evaluation seeds
    resumed = m.parse_args(["--resume", s["run_dir"]])
    assert resumed.hidden_sizes == (16,) and resumed.run.save_every == 128 and resumed.run.eval_episodes == 2
