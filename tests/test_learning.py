"""End to end: every algorithm file, default flags for the env, seed 1, must clear the benchmark
thresholds with its deterministic evaluation. A fixed seed makes each run deterministic, so these are
not flaky; wall time is never asserted here (benchmarks/ measures it)."""

import pytest

from benchmarks.run import KNOWN_SHORTFALLS, THRESHOLDS
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
