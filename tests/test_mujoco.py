"""The MuJoCo tier's first rung: InvertedPendulum-v5 with default flags, seed 1 (CI installs mujoco
through the dev requirements), and a clear error when mujoco is missing."""

import sys

import pytest

from conftest import load

THRESHOLD = 950.0  # InvertedPendulum-v5's best possible return is 1000 (1000 steps upright)


@pytest.mark.parametrize("algo", ["vpg", "trpo", "ppo_penalty", "ppo_clip"])
def test_inverted_pendulum_is_learned_with_default_flags(algo, in_tmp):
    m = load(algo)
    s = m.train(m.parse_args(["--env", "InvertedPendulum-v5", "--seed", "1"]))
    assert s["eval_mean_return"] >= THRESHOLD, f"{algo}: eval {s['eval_mean_return']:.1f} < {THRESHOLD}"


def test_missing_mujoco_names_the_install_command(in_tmp, monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco", None)  # `import mujoco` now raises ImportError
    for mod in [k for k in sys.modules if k.startswith("gymnasium.envs.mujoco")]:
        monkeypatch.delitem(sys.modules, mod)
    m = load("ppo_clip")
    with pytest.raises(ValueError, match=r"cannot make env 'InvertedPendulum-v5'.*pip install"):
        m.train(m.parse_args(["--env", "InvertedPendulum-v5", "--total-timesteps", "256", "--num-envs", "2",
                              "--num-steps", "64"]))
