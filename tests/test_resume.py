"""--save-every and --resume: the full training state survives a new process, a real SIGKILL and a torchrun restart;
a checkpoint says what its networks need, and contradicting it is a one-line error."""

import csv
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from benchmarks.run import THRESHOLDS
from conftest import ALGOS, ROOT, descendants, kill_tree, load, run_script

BATCH = 2 * 64  # --num-envs 2 --num-steps 64
SMALL = ["--env", "Pendulum-v1", "--num-envs", "2", "--num-steps", "64", "--eval-episodes", "2", "--norm-obs"]
NOT_STATE = ("args", "path", "clock_offset")  # what may differ between two saves of the same state


def wait_until(condition, deadline: float) -> None:
    """Polls `condition` until it holds; TimeoutError at `deadline` (time.time()), so a stuck child fails the test."""
    while not condition():
        if time.time() > deadline:
            raise TimeoutError("the training process did not get there in time")
        time.sleep(0.02)


def eval_return(stdout: str) -> float:
    """The final evaluation's mean return, from a run's closing line."""
    return float(stdout.split("eval return ")[1].split()[0])


def rows(run_dir) -> list[dict]:
    with open(os.path.join(run_dir, "progress.csv"), newline="") as f:
        return list(csv.DictReader(f))


def assert_same(a, b, where: str = "") -> None:
    """Equal, tensors bit for bit, through nested dicts, lists and tuples."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (where, set(a) ^ set(b))
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


@pytest.mark.parametrize("algo", ALGOS)
def test_every_piece_of_state_survives_a_new_process(algo, in_tmp, monkeypatch):
    """A 4-iteration run saves at iteration 2; a new process resumes that checkpoint with nothing left to train and
    saves again: the two checkpoints are equal. Resumed to the end instead, iterations 3-4 use the learning rates
    of the run that never stopped, and progress.csv holds each iteration once."""
    m, copies = load(algo), {}
    save = m.Run.save

    def keep_each_full_save(self, name, extra, full=False):
        path = save(self, name, extra, full)
        if full:
            copies[self.iteration] = shutil.copy(path, f"{path}.{self.iteration}")
        return path

    monkeypatch.setattr(m.Run, "save", keep_each_full_save)
    budget = ["--total-timesteps", str(4 * BATCH), "--save-every", str(2 * BATCH)]
    s = m.train(m.parse_args([*SMALL, "--norm-reward", *budget]))  # the running returns are state too
    assert sorted(copies) == [2, 4] and s["global_step"] == 4 * BATCH
    straight = rows(s["run_dir"])
    checkpoint = os.path.join(s["run_dir"], "checkpoint.pt")

    shutil.copy(copies[2], checkpoint)
    r = run_script(f"{algo}.py", "--resume", s["run_dir"], "--total-timesteps", str(2 * BATCH), cwd=in_tmp)
    assert r.returncode == 0, r.stderr
    saved, resaved = (torch.load(p, weights_only=True) for p in (copies[2], checkpoint))
    assert saved["iteration"] == 2 and {"optimizer", "pi_optimizer", "vf_optimizer"} & set(saved)
    assert {"rng", "curve", "evals", "global_step", "anneal", "obs_norm", "reward_scale", "reward_returns"} <= set(
        saved
    )
    assert_same(
        {k: v for k, v in saved.items() if k not in NOT_STATE}, {k: v for k, v in resaved.items() if k not in NOT_STATE}
    )

    shutil.copy(copies[2], checkpoint)
    r = run_script(f"{algo}.py", "--resume", checkpoint, cwd=in_tmp)
    assert r.returncode == 0, r.stderr
    resumed = rows(s["run_dir"])
    assert [int(row["iteration"]) for row in resumed] == [1, 2, 3, 4]
    assert resumed[-1]["global_step"] == str(4 * BATCH)
    column = next(c for c in ("learning_rate", "vf_learning_rate", "iteration") if c in straight[0])
    assert [row[column] for row in resumed] == [row[column] for row in straight]
    assert [row["global_step"] for row in resumed] == [row["global_step"] for row in straight]


def test_a_larger_total_goes_on_from_the_learning_rate_reached(in_tmp):
    m = load("ppo_clip")
    s = m.train(m.parse_args([*SMALL, "--total-timesteps", str(4 * BATCH), "--save-every", str(4 * BATCH)]))
    r = run_script("ppo_clip.py", "--resume", s["run_dir"], "--total-timesteps", str(8 * BATCH), cwd=in_tmp)
    assert r.returncode == 0, r.stderr
    lr = [float(row["learning_rate"]) for row in rows(s["run_dir"])]
    first = m.parse_args(SMALL).learning_rate  # Pendulum-v1's
    assert lr[:4] == pytest.approx([first * (1 - i / 4) for i in range(4)])  # 1, ¾, ½, ¼ of it
    # from the last fraction used (¼), linearly to 0 over the 4 new iterations
    assert lr[4:] == pytest.approx([first / 4 * (1 - i / 4) for i in range(4)])


@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_a_killed_run_resumes_and_still_learns(env, tmp_path):
    """SIGKILL after the first periodic checkpoint (and after some rows it did not save); --resume finishes it."""
    total = load("ppo_clip").parse_args(["--env", env]).total_timesteps
    every = total // 4
    cmd = [sys.executable, os.path.join(ROOT, "ppo_clip.py"), "--env", env, "--save-every", str(every)]
    p = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        wait_until(lambda: glob.glob(str(tmp_path / "runs/*/checkpoint.pt")), deadline)
        (run_dir,) = glob.glob(str(tmp_path / "runs/*"))
        saved_iteration = torch.load(os.path.join(run_dir, "checkpoint.pt"), weights_only=True)["iteration"]
        wait_until(lambda: len(rows(run_dir)) >= saved_iteration + 2, deadline)  # rows the checkpoint lacks
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
    finally:
        kill_tree(p)
    assert p.returncode == -signal.SIGKILL
    checkpoint = torch.load(os.path.join(run_dir, "checkpoint.pt"), weights_only=True)
    assert checkpoint["global_step"] < 2 * every  # killed between the first periodic save and the second
    assert len(rows(run_dir)) > checkpoint["iteration"]

    r = run_script("ppo_clip.py", "--resume", run_dir, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    iterations = [int(row["iteration"]) for row in rows(run_dir)]
    assert iterations == list(range(1, len(iterations) + 1))
    final = torch.load(os.path.join(run_dir, "checkpoint.pt"), weights_only=True)
    assert total - 2 * 1024 < final["global_step"] <= total  # ppo_clip's classic batch: 8 × 256 = 2048
    assert eval_return(r.stdout) >= THRESHOLDS[env]


def test_torchrun_restarts_a_killed_rank_from_the_checkpoint(tmp_path):
    """2 ranks, --max-restarts 1: SIGKILL one rank after the first checkpoint; torchrun restarts the group, the new
    ranks resume from runs/NAME/checkpoint.pt by themselves, and the run finishes and learns CartPole."""
    argv = ["--standalone", "--nproc-per-node", "2", "--max-restarts", "1", os.path.join(ROOT, "dppo.py")]
    argv += ["--env", "CartPole-v1", "--run-name", "restarted", "--save-every", "32768", "--summary-json", "s.json"]
    p = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", *argv],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_dir = tmp_path / "runs" / "restarted"
    try:
        deadline = time.time() + 300
        wait_until((run_dir / "checkpoint.pt").exists, deadline)
        wait_until(lambda: len(rows(run_dir)) >= 16 + 2, deadline)  # 16 iterations of 2 × 8 × 128 steps saved
        ranks = [pid for pid in descendants(p.pid) if "dppo.py" in open(f"/proc/{pid}/cmdline").read()]
        assert len(ranks) == 2, ranks
        os.kill(ranks[-1], signal.SIGKILL)
        _, err = p.communicate(timeout=600)
    finally:
        kill_tree(p)
    assert p.returncode == 0, err[-3000:]
    s = json.loads((tmp_path / "s.json").read_text())
    iterations = [int(row["iteration"]) for row in rows(run_dir)]
    assert iterations == list(range(1, 49)) and s["global_step"] == 98_304  # 48 iterations of 2048 steps
    assert s["param_checksums"][0] == s["param_checksums"][1]
    assert s["eval_mean_return"] >= THRESHOLDS["CartPole-v1"]


@pytest.mark.parametrize("algo", ALGOS)
def test_a_checkpoint_says_what_it_needs(algo, in_tmp):
    """A --norm-obs checkpoint evaluates as trained, in a new process, with no flags at all; a flag that contradicts
    it, a resume with another batch shape and a resume of a weights-only file are one-line errors. The errors are
    checked in this process (every file's __main__ turns a ValueError into `error:` and exit code 2, as test_contract
    checks per file) and, for ppo_clip, also through the command line."""
    m = load(algo)
    trained = m.train(m.parse_args([*SMALL, "--total-timesteps", str(2 * BATCH), "--save-model"]))["eval_mean_return"]
    (weights,) = glob.glob(str(in_tmp / f"runs/*/{algo}.pt"))
    r = run_script(f"{algo}.py", "--checkpoint", weights, "--eval-only", "--eval-episodes", "2", cwd=in_tmp)
    assert r.returncode == 0, r.stderr
    assert eval_return(r.stdout) == pytest.approx(trained, abs=0.005)  # env and statistics from the checkpoint

    s = m.train(m.parse_args([*SMALL, "--total-timesteps", str(2 * BATCH), "--save-every", str(BATCH)]))
    cases = [
        (
            ["--checkpoint", weights, "--eval-only", "--no-norm-obs"],
            "--norm-obs False contradicts the checkpoint's True",
        ),
        (["--checkpoint", weights, "--eval-only", "--hidden-sizes", "32"], "--hidden-sizes (32,) contradicts"),
        (["--resume", weights], "has no training state to resume"),
        (["--resume", weights, "--checkpoint", weights], "--resume continues a run"),
        (["--resume", s["run_dir"], "--num-envs", "4"], "--num-envs 4 contradicts the checkpoint's 2"),
        (["--resume", s["run_dir"]], "progress.csv is missing"),
    ]
    os.remove(os.path.join(s["run_dir"], "progress.csv"))  # for the last case (the others fail before reading it)
    for argv, message in cases:
        with pytest.raises(ValueError) as error:
            m.train(m.parse_args(argv))
        assert message in str(error.value) and "\n" not in str(error.value), (argv, str(error.value))
        if algo == "ppo_clip":
            r = run_script(f"{algo}.py", *argv, cwd=in_tmp)
            assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, (argv, r)


def test_best_pt_holds_the_best_periodic_evaluation(in_tmp):
    m = load("ppo_clip")
    argv = [*SMALL, "--total-timesteps", str(6 * BATCH), "--eval-every", str(BATCH), "--save-every", str(3 * BATCH)]
    s = m.train(m.parse_args(argv))
    best = os.path.join(s["run_dir"], "best.pt")
    again = m.train(m.parse_args(["--checkpoint", best, "--eval-only", "--eval-episodes", "2"]))
    assert len(s["evals"]) == 6 and again["eval_mean_return"] == max(e[1] for e in s["evals"])
