"""End to end: every algorithm file, default flags for the env, seed 1, must clear the benchmark
thresholds with its deterministic evaluation, and on FrozenLake-v1 and Blackjack-v1 (with a step budget) the
toy-text suite's targets. A fixed seed makes each run deterministic, so these are
not flaky; wall time is never asserted here (benchmarks/ measures it)."""

import pytest

from benchmarks.run import KNOWN_SHORTFALLS, THRESHOLDS
from benchmarks.suites import TOY_TEXT_EPISODES, TOY_TEXT_TARGETS
from conftest import ALGOS, load

# A cell marked in KNOWN_SHORTFALLS is excluded here, and only through that mark (benchmarks still
# run it and show it failing).
CELLS = [(a, e) for a in ALGOS for e in THRESHOLDS if (a, e) not in KNOWN_SHORTFALLS]


@pytest.mark.parametrize("algo, env", CELLS)
def test_default_flags_learn_the_task(algo, env, in_tmp):
    m = load(algo)
    summary = m.train(m.parse_args(["--env", env, "--seed", "1"]))
    assert summary["eval_mean_return"] >= THRESHOLDS[env], (
        f"{algo} on {env}: eval {summary['eval_mean_return']:.1f} < {THRESHOLDS[env]}"
    )


# gymnasium's toy-text envs (issue 17): each file's toy-text preset (docs/benchmarks.md), a step budget of its own
# here, the suite's evaluation episodes. The budgets are the least that reached the target on seed 1 where a smaller
# one fell short: FrozenLake-v1 at 40,960 trpo 0.204 (and ppo_clip, ppo_penalty, dppo 0.204, 0.105, 0.358 before
# their preset); vpg (its whole 200 k) FrozenLake-v1 0.053 at 122,880, Blackjack-v1 −0.179 at 81,920.
TOY_BUDGET = {
    "FrozenLake-v1": dict(vpg=200_000, trpo=81_920, ppo_penalty=81_920, ppo_clip=81_920, dppo=81_920),
    "Blackjack-v1": dict(vpg=200_000, trpo=40_960, ppo_penalty=40_960, ppo_clip=40_960, dppo=40_960),
}


@pytest.mark.parametrize("env", TOY_BUDGET)
def test_toy_text_reaches_its_target(algo, env, in_tmp):
    m = load(algo)
    budget, episodes = str(TOY_BUDGET[env][algo]), str(TOY_TEXT_EPISODES[env])
    summary = m.train(m.parse_args(["--env", env, "--total-timesteps", budget, "--eval-episodes", episodes]))
    assert summary["eval_mean_return"] >= TOY_TEXT_TARGETS[env], (algo, env, summary["eval_mean_return"])


def test_ppo_clip_learns_minatar_breakout_from_pixels(in_tmp):
    """ppo_clip's MinAtar preset (64 envs × 128 steps, the small CNN) on Breakout-v1: the mean of the last 50 training
    episodes reaches 2 within 15 iterations (122,880 steps; random play scores about 0.3, and seed 1 measured 4.75 over
    its last 20 there)."""
    m = load("ppo_clip")
    summary = m.train(
        m.parse_args(["--env", "MinAtar/Breakout-v1", "--total-timesteps", "122880", "--eval-episodes", "10"])
    )
    last = [episode[2] for episode in summary["curve"][-50:]]
    assert len(last) == 50 and sum(last) / 50 >= 2, sum(last) / len(last)
