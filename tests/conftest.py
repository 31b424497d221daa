"""Shared test fixtures: the algorithm files present, small test environments, short-run flags."""

import concurrent.futures
import glob
import importlib
import os
import signal
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

pytest_plugins = ["clean_tree"]  # fails the session if the tests leave a new file in the repository

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# Every algorithm file at the top level; a missing one fails test_shared_helpers rather than shrinking the list.
# dppo runs here as one process (world size 1, no launcher); tests/test_dppo.py adds what needs torchrun.
ALGOS = ["vpg", "trpo", "ppo_penalty", "ppo_clip", "dppo"]


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc (torchrun starts its ranks in process groups of their own, so
    killing a process group would miss them)."""
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.split("/")[2]))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(p: subprocess.Popen) -> None:
    """SIGKILL a started process and everything it started (collected first: orphans would be re-parented)."""
    for pid in [*descendants(p.pid), p.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    p.wait()


def read_line(p: subprocess.Popen, timeout: float) -> str:
    """The next line of p's stdout, or TimeoutError: a silent child must not hang the test."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(p.stdout.readline)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            kill_tree(p)  # closes the pipe, so the reading thread ends too
            raise


def run_script(name: str, *argv, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    """`python ROOT/name ARGV…` in `cwd`, output captured; one process, so subprocess.run's timeout kills it all."""
    cmd = [sys.executable, os.path.join(ROOT, name), *argv]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def load(algo: str):
    return importlib.import_module(algo)


def short_flags(algo: str) -> list[str]:
    """Flags for a run of a few hundred steps that still goes through every phase."""
    return ["--total-timesteps", "256", "--num-envs", "2", "--num-steps", "64", "--eval-episodes", "2"]


def short_args(algo: str, *extra: str, env: str = "CartPole-v1"):
    """Args of a short run on `env`; `extra` flags come last, so they win over short_flags'."""
    return load(algo).parse_args(["--env", env, *short_flags(algo), *extra])


@pytest.fixture(params=ALGOS)
def algo(request):
    return request.param


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty folder, so `runs/` lands there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---- small environments with unusual spaces, registered for in-process tests ----
class SpaceEnv(gym.Env):
    """Observation/action spaces as given; observations are random, reward 1, episodes of 20 steps.
    `nan_after` makes the reward NaN from that step on (to provoke a non-finite loss)."""

    def __init__(self, observation_space, action_space, nan_after=None):
        self.observation_space, self.action_space, self.nan_after = observation_space, action_space, nan_after
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        if seed is not None:  # the observations follow the seed, too
            self.observation_space.seed(seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, dtype=self.action_space.dtype)), action
        self.t += 1
        reward = float("nan") if self.nan_after is not None and self.t >= self.nan_after else 1.0
        return self.observation_space.sample(), reward, False, self.t >= 20, {}


class MatchTarget(gym.Env):
    """Our task for the action spaces a gymnasium env rarely has: every step shows a random target in a Dict
    observation and pays 1 per action head that matches it; 8 steps an episode, so 8 × heads is optimal.
    MultiDiscrete (4 heads of 3 choices, start 1, 2, -1, 0) or MultiBinary(8) actions."""

    def __init__(self, binary: bool = False):
        self.action_space = (
            gym.spaces.MultiBinary(8) if binary else gym.spaces.MultiDiscrete([3] * 4, start=[1, 2, -1, 0])
        )
        self.observation_space = gym.spaces.Dict({"target": self.action_space, "step": gym.spaces.Discrete(8)})
        self.t = 0

    def _obs(self):
        start = getattr(self.action_space, "start", 0)
        shape, high = self.action_space.shape, getattr(self.action_space, "nvec", 2)
        self.target = self.np_random.integers(0, high, size=shape) + start
        return {"target": self.target.astype(self.action_space.dtype), "step": self.t % 8}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, dtype=self.action_space.dtype)), action
        reward = float(np.sum(np.asarray(action) == self.target))
        self.t += 1
        return self._obs(), reward, self.t >= 8, False, {}


class MissingDependencyEnv(gym.Env):
    def __init__(self):
        raise gym.error.DependencyNotInstalled('FakeSim is not installed, run `pip install "fakesim"`')


BOX3 = gym.spaces.Box(-1, 1, (3,), np.float32)
TEST_ENVS = {
    "Test/DictObs-v0": dict(observation_space=gym.spaces.Dict({"x": BOX3}), action_space=gym.spaces.Discrete(2)),
    "Test/TextObs-v0": dict(observation_space=gym.spaces.Text(5), action_space=gym.spaces.Discrete(2)),
    "Test/SequenceInDictObs-v0": dict(
        observation_space=gym.spaces.Dict({"x": BOX3, "seq": gym.spaces.Sequence(BOX3)}),
        action_space=gym.spaces.Discrete(2),
    ),
    "Test/ImageInTupleObs-v0": dict(
        observation_space=gym.spaces.Tuple((BOX3, gym.spaces.Box(0, 255, (8, 8, 3), np.uint8))),
        action_space=gym.spaces.Discrete(2),
    ),
    "Test/MatrixAct-v0": dict(observation_space=BOX3, action_space=gym.spaces.Box(-1, 1, (2, 2), np.float32)),
    "Test/ImageObs-v0": dict(
        observation_space=gym.spaces.Box(0, 255, (8, 8, 3), np.uint8), action_space=gym.spaces.Discrete(2)
    ),
    "Test/TupleAct-v0": dict(
        observation_space=BOX3, action_space=gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Discrete(2)))
    ),
    "Test/MultiDiscreteAct-v0": dict(observation_space=BOX3, action_space=gym.spaces.MultiDiscrete([2, 3])),
    "Test/DiscreteStart-v0": dict(observation_space=BOX3, action_space=gym.spaces.Discrete(3, start=-1)),
    "Test/UnboundedBox-v0": dict(
        observation_space=gym.spaces.Box(-np.inf, np.inf, (3,), np.float32),
        action_space=gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
    ),
    "Test/NanReward-v0": dict(observation_space=BOX3, action_space=gym.spaces.Discrete(2), nan_after=5),
}
for _id, _kwargs in TEST_ENVS.items():
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=SpaceEnv, kwargs=_kwargs)
for _id, _binary in (("Test/MatchTarget-v0", False), ("Test/MatchTargetBinary-v0", True)):
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=MatchTarget, kwargs=dict(binary=_binary))
if "Test/MissingDependency-v0" not in gym.registry:
    gym.register(id="Test/MissingDependency-v0", entry_point=MissingDependencyEnv)
