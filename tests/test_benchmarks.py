"""benchmarks/run.py and its modules (suites.py, curves.py, peers.py): time to threshold, each suite's pass rule,
known shortfalls, crashes, the exit code, the tables, JSON safety, plots, main() end to end on fake algorithm files
for both suites (once as `python benchmarks/run.py`), and short real peer runs."""

import importlib
import json
import math
import os
import pathlib
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict

import numpy as np
import pytest

import conftest  # noqa: F401  (puts the repo root on sys.path; spawned runs inherit it)
from benchmarks import curves, peers, suites
from benchmarks import run as bench

CLASSIC_HEAD = (
    "| algo | env | seeds | eval return mean ± std | min | median steps to thr. | median s to thr. | median SPS "
    "| s-to-thr. ratio vs peer | status |"
)
MUJOCO_HEAD = (
    "| algo | env | seeds | final eval mean ± std | per-seed final | best eval mean ± std | target | median SPS "
    "| median training s | median process s | commit | status |"
)


def curve_of(returns, steps_per_ep=100, secs_per_ep=0.5):
    """[global_step, seconds, return] per episode, evenly spaced."""
    return [[steps_per_ep * (i + 1), secs_per_ep * (i + 1), float(r)] for i, r in enumerate(returns)]


def run(algo, env, seed, final, curve=(), kind="ours", best=None, wall=200.0, process=260.0, sps=1000.0, commit=None):
    summary = dict(eval_mean_return=final, best_eval_mean_return=final if best is None else best, wall_s=wall, sps=sps)
    summary.update(curve=list(curve), evals=[[500_000, final / 2], [1_000_000, final]])
    args = dict(env=env, seed=seed, eval_episodes=20, eval_every=10_000)
    rec = dict(kind=kind, algo=algo, env=env, seed=seed, args=args, summary=summary, error=None, process_s=process)
    return dict(rec, commit=commit) if commit else rec


def crashed(algo, env, seed):
    return dict(kind="ours", algo=algo, env=env, seed=seed, args=None, summary=None, error="Traceback", process_s=3.0)


def cell(cells, algo, env):
    return next(c for c in cells if c["algo"] == algo and c["env"] == env)


def test_discover_algos_finds_known_names_in_fixed_order(tmp_path):
    for name in ("dppo.py", "ppo_clip.py", "trpo.py", "notes.py", "ppo_clip_old.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "vpg.py").mkdir()  # a folder is not an algorithm file
    assert bench.discover_algos(tmp_path) == ["trpo", "ppo_clip", "dppo"]


def test_time_to_threshold_is_the_first_full_window_reaching_it():
    # 20 episodes of 0 then 500s: the window ending at episode i holds i-19 five-hundreds; 19·500/20 = 475 at i=38
    curve = curve_of([0] * 20 + [500] * 30)
    assert curves.time_to_threshold(curve, 475.0) == (3900.0, 19.5)
    assert curves.time_to_threshold(curve, 475.1) == (4000.0, 20.0)  # needs all 20 at 500: i=39
    assert curves.time_to_threshold(curve_of([500] * 19), 475.0) == (math.inf, math.inf)  # no full window yet
    assert curves.time_to_threshold(curve_of([474.0] * 100), 475.0) == (math.inf, math.inf)
    assert curves.time_to_threshold(curve, None) == (math.inf, math.inf)  # an env without a threshold
    # negative thresholds; the curve's own clock: window ending at i ≥ 25 holds k = i-24 episodes of −150,
    # (k·(−150) + (20−k)·(−1200)) / 20 ≥ −200 ⇔ k ≥ 19.05, so i = 44
    pendulum = [[8 * i, 0.25 * i, -1200.0 if i < 25 else -150.0] for i in range(50)]
    assert curves.time_to_threshold(pendulum, -200.0) == (8 * 44, 0.25 * 44)


def test_classic_cell_statistics_and_time_ratio_against_the_peer():
    fast, slow, never = curve_of([500] * 40, secs_per_ep=0.1), curve_of([0] * 20 + [500] * 20), curve_of([10] * 40)
    runs = [
        run("ppo_clip", "CartPole-v1", 3, 490.0, never, sps=2000),  # runs arrive in completion order
        run("ppo_clip", "CartPole-v1", 1, 500.0, fast, sps=3000),
        run("ppo_clip", "CartPole-v1", 2, 480.0, slow, sps=1000),
        run("vpg", "CartPole-v1", 1, 500.0, never),
        run("vpg", "CartPole-v1", 2, 500.0, never),
        run("vpg", "CartPole-v1", 3, 500.0, fast),
        run("sb3_ppo", "CartPole-v1", 1, 100.0, curve_of([500] * 20, secs_per_ep=0.2), kind="peer"),
    ]
    cells = bench.aggregate(runs, bench.CLASSIC)
    assert [c["algo"] for c in cells] == ["vpg", "ppo_clip", "sb3_ppo"]  # ALGOS order, peers last
    c = cell(cells, "ppo_clip", "CartPole-v1")
    assert c["seeds"] == [1, 2, 3] and c["evals"] == [500.0, 480.0, 490.0] and c["status"] == "pass"
    assert (c["eval_mean"], c["eval_min"], c["sps"]) == (pytest.approx(490.0), 480.0, 2000.0)
    assert c["eval_std"] == pytest.approx(np.std([500, 480, 490]))
    # seconds to threshold per seed: 2.0 (fast), 19.5 (slow), ∞ (never) -> median 19.5; the peer's: 4.0
    assert (c["seconds_to_threshold"], c["steps_to_threshold"]) == (19.5, 3900.0)
    assert c["peer_time_ratio"] == pytest.approx(19.5 / 4.0)
    vpg = cell(cells, "vpg", "CartPole-v1")  # two seeds of three never get there: the median is ∞
    assert math.isinf(vpg["seconds_to_threshold"]) and math.isnan(vpg["peer_time_ratio"])
    peer = cell(cells, "sb3_ppo", "CartPole-v1")  # a peer below the threshold is shown but not gated
    assert peer["status"] == "below threshold (peer, not gated)" and not peer["counts"]
    table = bench.table(cells, bench.CLASSIC)
    assert table.splitlines()[0] == CLASSIC_HEAD
    assert "| ppo_clip | CartPole-v1 | 3 | 490.0 ± 8.2 | 480.0 | 3,900 | 19.5 | 2,000 | 4.88 | pass |" in table
    assert "| vpg | CartPole-v1 | 3 | 500.0 ± 0.0 | 500.0 | ∞ | ∞ | 1,000 | — | pass |" in table
    assert bench.exit_code(cells) == 0


def test_toy_text_every_seed_must_reach_the_target():
    runs = [run("vpg", "Blackjack-v1", 1, -0.05), run("vpg", "Blackjack-v1", 2, -0.1201)]
    runs += [run("trpo", "Blackjack-v1", s, -0.12) for s in (1, 2)] + [run("dppo", "FrozenLake-v1", 1, 0.59)]
    cells = bench.aggregate(runs, bench.TOY_TEXT)
    vpg = cell(cells, "vpg", "Blackjack-v1")
    assert vpg["eval_mean"] > -0.12 and not vpg["passed"] and vpg["status"] == "FAIL"  # the mean does not count
    assert cell(cells, "trpo", "Blackjack-v1")["passed"] and not cell(cells, "dppo", "FrozenLake-v1")["passed"]
    report = bench.failure_report(cells, bench.TOY_TEXT)
    assert report == (
        "vpg on Blackjack-v1: eval seed 1: -0.05, seed 2: -0.1201; target -0.12\n"
        "dppo on FrozenLake-v1: eval seed 1: 0.59; target 0.6"
    )


def test_classic_every_seed_must_reach_the_threshold():
    runs = [
        run("vpg", "CartPole-v1", 1, 500.0),
        run("vpg", "CartPole-v1", 2, 474.9),
        run("trpo", "CartPole-v1", 1, 475.0),
    ]
    cells = bench.aggregate(runs, bench.CLASSIC)
    vpg = cell(cells, "vpg", "CartPole-v1")
    assert vpg["eval_mean"] > 475 and not vpg["passed"] and vpg["status"] == "FAIL"  # the mean does not count
    assert cell(cells, "trpo", "CartPole-v1")["passed"]  # exactly at the threshold passes
    assert bench.exit_code(cells) == 1
    report = bench.failure_report(cells, bench.CLASSIC)
    assert report == "vpg on CartPole-v1: eval seed 1: 500.0, seed 2: 474.9; threshold 475.0"


def test_mujoco_the_mean_over_seeds_must_reach_the_target():
    hc, hop = "HalfCheetah-v5", "Hopper-v5"
    runs = [run("ppo_clip", hc, s, e) for s, e in ((1, 3500.0), (2, 2400.0), (3, 3400.0))]  # mean 3100 ≥ 3000
    runs += [run("trpo", hop, s, e) for s, e in ((1, 2100.0), (2, 1800.0), (3, 1800.0))]  # mean 1900 < 2000
    cells = bench.aggregate(runs, bench.MUJOCO)
    clip, trpo = cell(cells, "ppo_clip", hc), cell(cells, "trpo", hop)
    assert clip["passed"] and clip["status"] == "pass" and clip["target"] == 3000
    assert not trpo["passed"] and trpo["status"] == "FAIL" and bench.exit_code(cells) == 1
    report = bench.failure_report(cells, bench.MUJOCO)
    assert (
        report
        == "trpo on Hopper-v5: mean 1900.0 over seeds (seed 1: 2100.0, seed 2: 1800.0, seed 3: 1800.0); target ≥ 2000"
    )


@pytest.mark.parametrize("suite", [bench.MUJOCO, bench.BOX2D])
def test_a_mean_over_fewer_seeds_than_the_targets_is_incomplete(suite):
    """Two seeds whose mean clears the target do not pass: the target is a mean over seeds 1-3."""
    env, seeds = suite.envs[0], suites.MEAN_SEEDS
    runs = [run("ppo_clip", env, s, 9999.0) for s in seeds[:-1]] + [run("trpo", env, s, 9999.0) for s in seeds]
    cells = bench.aggregate(runs, suite)
    clip, trpo = cell(cells, "ppo_clip", env), cell(cells, "trpo", env)
    assert trpo["passed"] and not clip["passed"] and clip["status"] == f"incomplete (no seed {seeds[-1]})"
    assert bench.exit_code(cells) == 1 and f"incomplete: no seed {seeds[-1]}" in bench.failure_report(cells, suite)


@pytest.mark.parametrize(
    "suite, env",
    [
        (bench.CLASSIC, "Pendulum-v1"),
        (bench.MUJOCO, "Hopper-v5"),
        (bench.BOX2D, "LunarLander-v3"),
        (bench.TOY_TEXT, "Taxi-v4"),
    ],
)
def test_known_shortfall_shows_failing_but_exits_zero(suite, env):
    runs = [run(algo, env, seed, -5000.0) for algo in ("vpg", "trpo") for seed in (1, 2, 3)]
    marks = {("vpg", env): "measured −5000; see README"}
    cells = bench.aggregate(runs, suite, shortfalls=marks)
    assert cell(cells, "vpg", env)["status"] == "FAIL (known shortfall)" and bench.exit_code(cells) == 1  # trpo
    cells = bench.aggregate(runs, suite, shortfalls={**marks, ("trpo", env): "also"})
    assert bench.exit_code(cells) == 0 and "FAIL (known shortfall)" in bench.table(cells, suite)
    assert "[known shortfall: measured −5000; see README]" in bench.failure_report(cells, suite)
    own = {"classic": suites.KNOWN_SHORTFALLS, "MuJoCo": suites.MUJOCO_KNOWN_SHORTFALLS}
    own.update({"Box2D": suites.BOX2D_KNOWN_SHORTFALLS, "toy-text": suites.TOY_TEXT_KNOWN_SHORTFALLS})
    assert suite.shortfalls is own[suite.name]


@pytest.mark.parametrize(
    "suite, env",
    [
        (bench.CLASSIC, "CartPole-v1"),
        (bench.MUJOCO, "Hopper-v5"),
        (bench.BOX2D, "LunarLander-v3"),
        (bench.TOY_TEXT, "FrozenLake-v1"),
    ],
)
def test_a_crashed_seed_fails_the_cell_even_when_the_others_pass(suite, env):
    runs = [run("vpg", env, 1, 5000.0), crashed("vpg", env, 2), run("vpg", env, 3, 5000.0)]
    cells = bench.aggregate(runs, suite, shortfalls={})  # whatever the suite marks today
    c = cells[0]
    assert c["eval_mean"] == 5000.0 and c["errors"] == [2] and not c["passed"]  # the seeds that ran would pass
    assert c["status"] == "FAIL (crashed: seeds [2])" and bench.exit_code(cells) == 1
    assert c["process_s"] == 260.0  # the crashed run's time is left out


def test_mujoco_ppo_penalty_target_is_relative_to_the_larger_of_ppo_clips_mean_and_target():
    hc = "HalfCheetah-v5"
    penalty = [run("ppo_penalty", hc, s, e) for s, e in ((1, 2700.0), (2, 2600.0), (3, 2650.0))]  # mean 2650
    cells = bench.aggregate(penalty + [run("ppo_clip", hc, s, 3100.0) for s in (1, 2, 3)], bench.MUJOCO)
    pen = cell(cells, "ppo_penalty", hc)  # 2650 ≥ 0.85 · 3100 = 2635
    assert pen["target"] == pytest.approx(suites.PPO_PENALTY_RELATIVE * 3100.0) and pen["passed"]
    assert "| ≥ 0.85 × ppo_clip's 3100.0 = 2635.0 |" in bench.table(cells, bench.MUJOCO)
    cells = bench.aggregate(penalty + [run("ppo_clip", hc, s, 3200.0) for s in (1, 2, 3)], bench.MUJOCO)
    assert not cell(cells, "ppo_penalty", hc)["passed"] and bench.exit_code(cells) == 1  # 2650 < 2720
    cells = bench.aggregate(penalty + [run("ppo_clip", hc, s, 2900.0) for s in (1, 2, 3)], bench.MUJOCO)
    pen = cell(cells, "ppo_penalty", hc)  # ppo_clip's mean 2900 < its target 3000: 0.85 · 3000 = 2550
    assert pen["target"] == pytest.approx(2550.0) and pen["passed"] and not cell(cells, "ppo_clip", hc)["passed"]
    assert "| ≥ 0.85 × ppo_clip's target 3000.0 = 2550.0 |" in bench.table(cells, bench.MUJOCO)
    alone = bench.aggregate(penalty, bench.MUJOCO)  # no ppo_clip: no target, not gated
    assert alone[0]["target"] is None and alone[0]["status"] == "no target" and bench.exit_code(alone) == 0


def test_mujoco_table_and_markdown_keep_their_columns_and_sections():
    runs = [run("vpg", "Hopper-v5", 1, 900.0, best=1000.0, wall=400.0, process=450.0, sps=5000.0, commit="abc1234")]
    runs += [
        run("vpg", "Hopper-v5", s, 900.0, best=1000.0, wall=400.0, process=450.0, sps=5000.0, commit="def5678")
        for s in (2, 3)
    ]
    cells = bench.aggregate(runs, bench.MUJOCO)
    md = bench.markdown(cells, bench.MUJOCO, {"sys": 0.01}, {"cpu": "fake"})
    row = "| vpg | Hopper-v5 | 3 | 900.0 ± 0.0 | 900.0, 900.0, 900.0 | 1000.0 ± 0.0 | ≥ 800 | 5,000 | 400.0 (> 300) "
    row += "| 450.0 | abc1234, def5678 | pass |"  # the seconds target: shown, not gated
    assert MUJOCO_HEAD + "\n|" + "---|" * 12 + "\n" + row in md
    published = md.split("## Published (1 M steps unless noted)")[1].split("## Definitions")[0]
    rows = [line for line in published.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 4 and rows[0].startswith("| vpg | Hopper-v5 | ~800 Spinning Up")  # the envs run, in order
    assert '"final" = deterministic evaluation (20 episodes' in md and "every 10000 steps" in md
    assert md.endswith("- cpu: fake\n- versions: None\n")


def test_the_commit_is_marked_modified_by_code_changes_not_by_results(tmp_path):
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)  # noqa: E731
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "results.md").write_text("old")
    (tmp_path / "ppo_clip.py").write_text("x = 1")
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    (tmp_path / "benchmarks" / "results" / "results.md").write_text("new")  # an earlier invocation's output
    assert not bench.machine_info(tmp_path)["git_commit"].endswith("(work tree modified)")
    (tmp_path / "ppo_clip.py").write_text("x = 2")
    assert bench.machine_info(tmp_path)["git_commit"].endswith("(work tree modified)")


def test_json_safe_turns_infinities_into_null():
    safe = bench._json_safe({"a": [math.inf, 1.0, (math.nan, -math.inf)]})
    assert json.dumps(safe, allow_nan=False) == '{"a": [null, 1.0, [null, null]]}'


def full_curves(rng, lengths):
    """Training curves as train() returns them: several episodes may end on the same step (and second), a rising
    noisy return."""
    out = []
    for n in lengths:
        new_step = rng.random(n) < 0.4  # else the episode ended on the step before's
        steps = 64 * np.cumsum(new_step) + 64
        secs = np.cumsum(np.where(new_step, rng.exponential(0.02, n), 0.0))
        returns = np.round(np.linspace(-300, 500, n) + rng.normal(0, 150, n), 1)
        out.append([[int(a), float(b), float(c)] for a, b, c in zip(steps, secs, returns, strict=True)])
    return out


def test_slim_curves_give_the_same_plots_and_times_to_threshold():
    """The results files keep slim curves (curves.slim_curves): every plotted value and every time to threshold is
    the full curves', to the last bit, at a fraction of the points; a JSON round trip or slimming again changes
    nothing."""
    rng = np.random.default_rng(0)
    full = [*full_curves(rng, (6000, 4000, 15)), []]  # 15: not one full window; []: no episode finished
    slim = json.loads(json.dumps(curves.slim_curves(full)))
    assert slim[-1] == [] and [s["episodes"] for s in slim[:-1]] == [6000, 4000, 15]
    assert sum(len(s["step"]) for s in slim[:2]) < 10_000 / 4
    for x in ("steps", "seconds"):
        for full_array, slim_array in zip(curves.curves_on_grid(full, x), curves.curves_on_grid(slim, x), strict=True):
            np.testing.assert_array_equal(full_array, slim_array)  # NaN where NaN
    for f, s in zip(full, slim, strict=True):
        means = curves.rolling_points(f)["mean"]
        thresholds = [None, -math.inf, math.inf, *np.quantile(means, np.linspace(0, 1, 201))] if len(f) else [0.0]
        for t in thresholds:
            assert curves.time_to_threshold(f, t) == curves.time_to_threshold(s, t), t
    assert curves.slim_curves(slim) == slim
    with pytest.raises(ValueError, match="rolling means of 20 episodes"):
        curves.time_to_threshold(slim[0], 0.0, window=10)


def test_results_files_are_gzip_json_with_the_same_bytes_for_the_same_results(tmp_path):
    record = {"runs": [{"summary": {"curve": [[1, 0.5, math.inf]]}}]}
    bench.write_results(tmp_path / "a.json.gz", record)
    bench.write_results(tmp_path / "b.json.gz", record)
    assert (tmp_path / "a.json.gz").read_bytes() == (tmp_path / "b.json.gz").read_bytes()  # no time stamp
    assert bench.read_results(tmp_path / "a.json.gz") == {"runs": [{"summary": {"curve": [[1, 0.5, None]]}}]}
    (tmp_path / "old.json").write_text(json.dumps(record["runs"][0]))  # an older plain file
    assert bench.read_results(tmp_path / "old.json") == {"summary": {"curve": [[1, 0.5, math.inf]]}}


def test_a_crashed_run_reports_the_end_of_its_log_and_leaves_nothing_behind(tmp_path, monkeypatch):
    """execute() in a spawned process, as main() runs it: the log goes to the run's temporary folder by its full
    path, its last lines come back with the error, and the folder is removed; nothing lands in the cwd."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    repo, tmp = tmp_path / "repo", tmp_path / "tmp"
    repo.mkdir()
    tmp.mkdir()
    (repo / "vpg.py").write_text(
        textwrap.dedent("""
        from dataclasses import dataclass

        @dataclass
        class Args:
            seed: int = 1

        def parse_args(argv):
            return Args()

        def train(args):
            print("the last words of a run")
            raise RuntimeError("boom")
        """)
    )
    monkeypatch.setenv("TMPDIR", str(tmp))  # the run's temporary folder goes here
    cwd = empty_cwd(tmp_path, monkeypatch)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        rec = pool.submit(bench.execute, "ours", "vpg", "CartPole-v1", 1, str(repo)).result(timeout=120)
    assert "RuntimeError: boom" in rec["error"] and rec["log_tail"] == ["the last words of a run"]
    assert not any(tmp.iterdir()) and not any(cwd.iterdir())


def test_evals_on_grid_interpolates_seeds_on_the_union_of_their_steps():
    grid, ys = curves.evals_on_grid([[[10, 1.0], [20, 2.0], [30, 3.0]], [[35, 30.0], [15, 10.0]], []])
    assert grid.tolist() == [10, 15, 20, 30, 35]
    np.testing.assert_allclose(ys, [[1, 1.5, 2, 3, np.nan], [np.nan, 10, 15, 25, 30], [np.nan] * 5])


@pytest.mark.parametrize("x", ["steps", "seconds", "evals"])
def test_plot_writes_a_png(tmp_path, x):
    rng = np.random.default_rng(0)
    if x == "evals":
        steps = np.arange(1, 101) * 10_000
        series = {"ppo_clip": [[[s, 3000 * s / 1e6 + k * 100] for s in steps] for k in range(3)], "vpg": [[]]}
    else:
        series = {
            name: [
                curve_of(np.minimum(500, np.arange(n) * 5 + rng.normal(0, 20, n)), secs_per_ep=0.1 * (k + 1))
                for k, n in enumerate((150, 120, 140))
            ]
            for name in ("ppo_clip", "sb3_ppo")
        }
        series["vpg"] = [[]]  # a run with no finished episode is skipped, not an error
    path = tmp_path / f"curve_{x}.png"
    curves.plot(series, "CartPole-v1", x, path, threshold=475.0, targets={"ppo_clip": 2300})
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


# ---- main() end to end on fake algorithm files (no training) --------------------------------------------------
FAKE_ALGO = textwrap.dedent("""
    import json, os, sys
    from dataclasses import dataclass

    @dataclass
    class Args:
        env: str = "CartPole-v1"
        seed: int = 1
        eval_episodes: int = 7
        eval_every: int = 100

    def parse_args(argv):
        value = lambda flag, default: type(default)(argv[argv.index(flag) + 1]) if flag in argv else default
        episodes = value("--eval-episodes", 7)
        return Args(env=value("--env", "CartPole-v1"), seed=value("--seed", 1), eval_episodes=episodes)

    def train(args):
        print("chatter that must not reach the benchmark's output")
        os.makedirs("runs/x", exist_ok=True)
        final = RETURN + args.seed
        curve = [[100 * (i + 1), 0.01 * (i + 1), final] for i in range(30)]
        return dict(eval_mean_return=final, eval_std_return=0.0, global_step=3000, wall_s=0.3, sps=1e4, curve=curve,
                    evals=[[100 * (i + 1), final * (i + 1) / 5] for i in range(5)], best_eval_mean_return=final)

    if __name__ == "__main__":  # dppo.py under torchrun: rank 0 writes the summary
        summary = train(parse_args(sys.argv[1:]))
        if os.environ["RANK"] == "0":
            json.dump(summary, open(sys.argv[sys.argv.index("--summary-json") + 1], "w"))
""")


def runs_folders(*dirs) -> dict:
    """What runs/ holds in each folder (None: no runs/): a benchmark must leave every one of them as it was."""
    return {str(d): sorted(os.listdir(d / "runs")) if (d / "runs").exists() else None for d in dirs}


def empty_cwd(tmp_path, monkeypatch) -> pathlib.Path:
    """An empty working directory for a benchmark: whatever it writes relative to the cwd instead of its run's own
    temporary folder (runs/, its log, dppo's summary) shows up here, and not in the folder pytest runs from (this
    repository: once a stdout.log there got committed)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def fake_repo(tmp_path, **returns):
    repo = tmp_path / "repo"
    repo.mkdir()
    for algo, value in returns.items():
        (repo / f"{algo}.py").write_text(FAKE_ALGO.replace("RETURN", str(value)))
    return repo


def test_main_classic_end_to_end_with_fake_algos(tmp_path, monkeypatch):
    repo, out = fake_repo(tmp_path, ppo_clip=500.0, vpg=100.0, dppo=500.0), tmp_path / "out"
    watched = (repo, tmp_path, pathlib.Path.cwd(), bench.ROOT)  # the fake repo, the out's parent, pytest's cwd, ours
    before = runs_folders(*watched)
    cwd = empty_cwd(tmp_path, monkeypatch)  # the script's
    argv = ["--root", str(repo), "--out", str(out), "--envs", "CartPole-v1", "--seeds", "1", "2", "--workers", "2"]
    script = subprocess.run([sys.executable, str(bench.ROOT / "benchmarks" / "run.py"), *argv], capture_output=True)
    assert script.returncode == 1, script.stderr  # vpg misses 475
    printed = script.stdout.decode()
    assert "FAILED cells:\nvpg on CartPole-v1" in printed and "chatter" not in printed and "[6/6] dppo" in printed
    assert runs_folders(*watched) == before  # each fake run wrote runs/x in its own temporary folder
    assert not any(cwd.iterdir())  # and its log there too
    results = bench.read_results(out / "results.json.gz")
    assert set(results) >= {"meta", "thresholds", "known_shortfalls", "startup_s", "cells", "runs"}
    assert [(r["algo"], r["seed"]) for r in results["runs"]] == [
        (a, s) for a in ("dppo", "ppo_clip", "vpg") for s in (1, 2)
    ]
    dppo = results["runs"][1]  # 2 ranks under torchrun; Args resolved by parse_args
    assert dppo["args"]["seed"] == 2 and dppo["summary"]["eval_mean_return"] == 502.0 and dppo["error"] is None
    assert results["runs"][3]["steps_to_threshold"] == 2000.0  # each run's own time to threshold
    assert set(results["startup_s"]) >= {"ppo_clip", "vpg", "dppo"} and "torch" in results["meta"]["versions"]
    assert CLASSIC_HEAD in (out / "results.md").read_text()
    assert {p.name for p in out.glob("*.png")} == {"curve_CartPole-v1_steps.png", "curve_CartPole-v1_seconds.png"}

    # in-process now, marked through run.py's re-export (tests/test_learning.py reads the marks from there)
    monkeypatch.setitem(bench.KNOWN_SHORTFALLS, ("vpg", "CartPole-v1"), "fake: measured 100")
    assert bench.main(argv + ["--algos", "vpg"]) == 0
    assert "FAIL (known shortfall)" in (out / "results.md").read_text()
    assert not any(cwd.iterdir())


def test_main_mujoco_end_to_end_with_fake_algos(tmp_path, capfd, monkeypatch):
    repo, out = fake_repo(tmp_path, ppo_clip=5000.0, trpo=100.0), tmp_path / "out"
    watched = (repo, tmp_path, pathlib.Path.cwd(), bench.ROOT)  # the fake repo, the out's parent, pytest's cwd, ours
    before = runs_folders(*watched)
    cwd = empty_cwd(tmp_path, monkeypatch)  # in-process: the benchmark's cwd, inherited by its worker processes
    (repo / "dppo.py").write_text("raise SystemExit('dppo must not run with --mujoco')")
    argv = ["--root", str(repo), "--out", str(out), "--mujoco", "--workers", "2"]
    assert bench.main([*argv, "--envs", "HalfCheetah-v5", "Hopper-v5", "--seeds", "1", "2"]) == 1
    printed = capfd.readouterr().out
    assert "trpo on HalfCheetah-v5" in printed and "trpo on Hopper-v5" in printed and "dppo" not in printed
    results = bench.read_results(out / "results_mujoco.json.gz")
    assert set(results) >= {"meta", "targets", "known_shortfalls", "published", "startup_s", "cells", "runs"}
    assert len(results["runs"]) == 8 and all(r["process_s"] > 0 and r["error"] is None for r in results["runs"])
    assert {r["commit"] for r in results["runs"]} == {"no commit"}  # the fake repo is not a git work tree
    c = cell(results["cells"], "ppo_clip", "Hopper-v5")
    assert c["eval_mean"] == pytest.approx(5001.5) and c["eval_episodes"] == [7]
    assert not c["passed"] and c["status"] == "incomplete (no seed 3)"  # the targets are means over seeds 1-3
    md = (out / "results_mujoco.md").read_text()
    assert MUJOCO_HEAD in md and '"final" = deterministic evaluation (7 episodes' in md
    pngs = {f"curve_{e}_{x}.png" for e in ("HalfCheetah-v5", "Hopper-v5") for x in ("steps", "seconds", "evals")}
    assert {p.name for p in out.glob("*.png")} == pngs
    assert not list(out.glob("results.*"))  # the classic files are not touched
    assert runs_folders(*watched) == before and not any(cwd.iterdir())
    assert {type(r["summary"]["curve"]) for r in results["runs"]} == {dict}  # kept slim

    # one more env, and one run repeated: the file keeps the other runs, each with its commit. The file is an older
    # one: plain JSON, full curves, no commit per run
    (repo / "trpo.py").write_text(FAKE_ALGO.replace("RETURN", "4000.0"))
    results["meta"]["git_commit"] = "1234567abcdef"  # as if the first invocation had run at a commit
    for r in results["runs"]:
        del r["commit"]  # as in a file written before runs said their commit: the file's meta says it
        final = r["summary"]["eval_mean_return"]
        r["summary"]["curve"] = [[100 * (i + 1), 0.01 * (i + 1), final] for i in range(30)]  # FAKE_ALGO's
    (out / "results_mujoco.json.gz").unlink()
    (out / "results_mujoco.json").write_text(json.dumps(results))
    assert bench.main([*argv, "--envs", "Walker2d-v5", "Hopper-v5", "--algos", "trpo", "--seeds", "1"]) == 1
    assert not (out / "results_mujoco.json").exists()  # its runs are in the .gz now
    merged = bench.read_results(out / "results_mujoco.json.gz")
    runs = {(r["algo"], r["env"], r["seed"]): r for r in merged["runs"]}
    assert len(merged["runs"]) == 9 and runs["trpo", "Walker2d-v5", 1]["summary"]["eval_mean_return"] == 4001.0
    assert runs["trpo", "Hopper-v5", 1]["summary"]["eval_mean_return"] == 4001.0  # repeated: replaced
    assert runs["trpo", "Hopper-v5", 2]["summary"]["eval_mean_return"] == 102.0  # not repeated: kept
    assert runs["trpo", "Hopper-v5", 2]["commit"] == "1234567" and runs["trpo", "Hopper-v5", 1]["commit"] == "no commit"
    assert cell(merged["cells"], "trpo", "Hopper-v5")["commits"] == ["1234567", "no commit"]
    assert {p.name for p in out.glob("*.png")} == pngs | {
        f"curve_Walker2d-v5_{x}.png" for x in ("steps", "seconds")
    } | {"curve_Walker2d-v5_evals.png"}
    assert "| trpo | Walker2d-v5 | 1 | 4001.0 ± 0.0 |" in (out / "results_mujoco.md").read_text()
    assert {type(r["summary"]["curve"]) for r in merged["runs"]} == {dict}  # the older file's runs slim too

    # a killed invocation leaves the runs it finished in results_mujoco.partial.jsonl: the next one keeps them
    assert not (out / "results_mujoco.partial.jsonl").exists()  # a finished invocation leaves none
    killed = dict(runs["trpo", "Walker2d-v5", 1], seed=2, commit="7654321")
    (out / "results_mujoco.partial.jsonl").write_text(json.dumps(killed) + "\n")
    assert bench.main([*argv, "--envs", "Swimmer-v5", "--algos", "ppo_clip", "--seeds", "1"]) == 1  # ppo_clip 5001
    merged = bench.read_results(out / "results_mujoco.json.gz")
    runs = {(r["algo"], r["env"], r["seed"]): r for r in merged["runs"]}
    assert len(runs) == 11 and runs["trpo", "Walker2d-v5", 2]["commit"] == "7654321"
    assert not (out / "results_mujoco.partial.jsonl").exists()
    assert runs_folders(*watched) == before and not any(cwd.iterdir())


def test_main_toy_text_every_seed_with_its_evaluation_episodes(tmp_path, capfd, monkeypatch):
    """All five files (dppo under torchrun too) get the env's --eval-episodes; every seed must reach the target."""
    repo, out = fake_repo(tmp_path, ppo_clip=-1.05, vpg=-1.15, dppo=-1.05), tmp_path / "out"
    cwd = empty_cwd(tmp_path, monkeypatch)
    argv = ["--root", str(repo), "--out", str(out), "--toy-text", "--envs", "Blackjack-v1", "--seeds", "1", "2"]
    assert bench.main([*argv, "--workers", "2"]) == 1  # vpg's seed 1 ends at −0.15 < −0.12
    printed = capfd.readouterr().out
    assert "FAILED cells:\nvpg on Blackjack-v1: eval seed 1: -0.15, seed 2: 0.85; target -0.12" in printed
    assert not any(cwd.iterdir())  # dppo's summary.json too stayed in its run's folder
    results = bench.read_results(out / "results_toy_text.json.gz")
    assert results["eval_episodes"] == suites.TOY_TEXT_EPISODES and results["targets"]["Blackjack-v1"] == -0.12
    assert {(r["algo"], r["args"]["eval_episodes"]) for r in results["runs"]} == {
        (a, 5000) for a in ("ppo_clip", "vpg", "dppo")
    }
    statuses = {c["algo"]: c["status"] for c in results["cells"]}
    assert statuses == {"vpg": "FAIL", "ppo_clip": "pass", "dppo": "pass"}
    assert "| ppo_clip | Blackjack-v1 | 2 | -0.05, 0.95 | -0.12 | 5000 |" in (out / "results_toy_text.md").read_text()
    assert {p.name for p in out.glob("*.png")} == {"curve_Blackjack-v1_steps.png"}


@pytest.mark.parametrize(
    "extra, error",
    [
        (["--peers"], "has no peers"),
        (["--algos", "ppo_clip", "dppo"], "dppo is not part of the MuJoCo suite"),
        (["--algos", "trpo"], "no algorithm file"),
        (["--box2d"], "not allowed with argument --mujoco"),
        (["--toy-text"], "not allowed with argument --mujoco"),
    ],
)
def test_main_rejects_bad_flags(tmp_path, capsys, extra, error):
    for name in ("ppo_clip.py", "dppo.py"):
        (tmp_path / name).write_text("")
    with pytest.raises(SystemExit) as e:
        bench.main(["--root", str(tmp_path), "--out", str(tmp_path / "out"), "--mujoco", *extra])
    assert e.value.code == 2 and error in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_main_without_matplotlib_stops_before_any_run(tmp_path, capsys, monkeypatch):
    (tmp_path / "ppo_clip.py").write_text("raise SystemExit('no run may start')")
    real = bench.find_spec
    monkeypatch.setattr(bench, "find_spec", lambda name: None if name == "matplotlib" else real(name))
    with pytest.raises(SystemExit) as e:
        bench.main(["--root", str(tmp_path), "--out", str(tmp_path / "out"), "--toy-text"])
    assert e.value.code == 2 and "pip install -r requirements-dev.txt" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("peer, env", [("sb3_ppo", "CartPole-v1"), ("sb3_trpo", "Pendulum-v1")])
def test_peer_runs_are_measured_like_ours(peer, env, monkeypatch, tmp_path):
    """A short real SB3 / sb3-contrib run through the --peers path (dev requirements install both)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(
        peers.PEER_HYPERPARAMS, (peer, env), dict(peers.PEER_HYPERPARAMS[(peer, env)], n_timesteps=2048)
    )
    args, s = peers.train_peer(peer, env, 1, str(bench.ROOT))
    assert args["n_timesteps"] == 2048 and s["global_step"] >= 2048 and s["sps"] > 0
    assert len(s["eval_returns"]) == peers.EVAL_EPISODES and s["eval_mean_return"] == np.mean(s["eval_returns"])
    assert s["curve"] and all(len(c) == 3 and c[0] <= s["global_step"] for c in s["curve"])


# ---- MinAtar and Atari suites ----------------------------------------------------------------------------------------
BREAKOUT, FREEWAY, PONG = "MinAtar/Breakout-v1", "MinAtar/Freeway-v1", "ALE/Pong-v5"


def test_minatar_gates_ppo_clip_and_reports_the_others_against_the_same_target():
    runs = [run("ppo_clip", BREAKOUT, s, e) for s, e in ((1, 30.0), (2, 25.0), (3, 29.0))]  # mean 28 ≥ 28
    runs += [run("ppo_penalty", BREAKOUT, s, 40.0) for s in (1, 2, 3)]  # reaches the target: ✓ (and gated)
    runs += [run("dppo", BREAKOUT, s, 10.0) for s in (1, 2, 3)]  # below: reported
    runs += [run("vpg", BREAKOUT, s, 50.0) for s in (1, 2)]  # above, but seed 3 is missing
    runs += [run("trpo", BREAKOUT, 1, 50.0), crashed("trpo", BREAKOUT, 2), run("trpo", BREAKOUT, 3, 50.0)]
    cells = bench.aggregate(runs, bench.MINATAR)
    assert [c["algo"] for c in cells] == ["vpg", "trpo", "ppo_penalty", "ppo_clip", "dppo"]
    status = {c["algo"]: c["status"] for c in cells}
    assert status == {
        "ppo_clip": "pass",
        "ppo_penalty": "✓",
        "dppo": "report",
        "vpg": "report (no seed 3)",
        "trpo": "report (crashed: seeds [2])",
    }
    assert {c["algo"] for c in cells if c["counts"]} == {"ppo_clip", "ppo_penalty"}  # gated once it reaches it
    assert all(c["target"] == 28 for c in cells) and bench.exit_code(cells) == 0
    assert bench.failure_report(cells, bench.MINATAR) == ""  # a reported cell below its target is no failure
    row = "| ppo_penalty | MinAtar/Breakout-v1 | 3 | 40.0 ± 0.0 | 40.0, 40.0, 40.0 | 40.0 ± 0.0 | 28 | 1,000 | 200 "
    assert row + "| 260 | — | ✓ |" in bench.table(cells, bench.MINATAR)

    low = [run("ppo_clip", FREEWAY, s, 57.9) for s in (1, 2, 3)]
    cells = bench.aggregate(low, bench.MINATAR)
    assert cells[0]["status"] == "FAIL" and bench.exit_code(cells) == 1
    report = bench.failure_report(cells, bench.MINATAR)
    per_seed = "seed 1: 57.9, seed 2: 57.9, seed 3: 57.9"
    assert report == f"ppo_clip on MinAtar/Freeway-v1: mean 57.9 over seeds ({per_seed}); target ≥ 58"
    cells = bench.aggregate(low, bench.MINATAR, shortfalls={("ppo_clip", FREEWAY): "measured 57.9"})
    assert cells[0]["status"] == "FAIL (known shortfall)" and bench.exit_code(cells) == 0
    assert bench.MINATAR.shortfalls is suites.MINATAR_KNOWN_SHORTFALLS == {}
    assert bench.ATARI.shortfalls is suites.ATARI_KNOWN_SHORTFALLS == {}


def test_minatar_markdown_says_the_settings_next_to_the_table():
    runs = [run("ppo_clip", BREAKOUT, s, 30.0) for s in (1, 2, 3)]
    md = bench.markdown(bench.aggregate(runs, bench.MINATAR), bench.MINATAR, {"sys": 0.01}, {"cpu": "fake"})
    intro = md.split("| algo |")[0]
    for said in ("no sticky actions", "1,000 steps", "Freeway at its own 2,500", "MLP (2×256)", "164 episodes"):
        assert said in intro
    assert "CNN (16·3×3, fc 128)" in intro and "deterministically (argmax) over 100 episodes" in intro
    assert "| MinAtar/Breakout-v1 | gymnax PPO 28 (an earlier checkpoint; the retrained one ends at 22.9) |" in md


@pytest.mark.parametrize("algo", suites.ALGOS)
def test_the_minatar_markdown_describes_the_files_presets(algo):
    """What the MinAtar intro says of the runs' settings holds for every file: 10 M steps, 100 evaluation episodes,
    the episode caps."""
    module = importlib.import_module(algo)
    preset = module.FAMILY_DEFAULTS["minatar"]
    assert (preset["total_timesteps"], preset["eval_episodes"]) == (10_000_000, 100)
    caps = {env: module.make_env(env).spec.max_episode_steps for env in (BREAKOUT, FREEWAY)}
    assert caps == {BREAKOUT: 1_000, FREEWAY: 2_500}
    atari = module.FAMILY_DEFAULTS["atari"]
    assert atari["total_timesteps"] == 10_000_000 and atari.get("eval_episodes", 20) == 20


def test_atari_gates_on_the_last_100_training_episodes_not_on_the_evaluation():
    # per seed 50 episodes at −21, then 100 at 19 + seed: the last 100 average 19 + seed; the evaluation says 21
    tail = lambda seed: curve_of([-21.0] * 50 + [19.0 + seed] * 100)  # noqa: E731
    runs = [run("ppo_clip", PONG, s, 21.0, curve=tail(s)) for s in (1, 2, 3)]  # 20, 21, 22: mean 21 ≥ 20.4
    cells = bench.aggregate(runs, bench.ATARI)
    c = cells[0]
    assert c["tail_means"] == [20.0, 21.0, 22.0] and c["tail_mean"] == 21.0 and c["passed"] and c["status"] == "pass"
    runs = [run("ppo_clip", PONG, s, 21.0, curve=tail(s - 2)) for s in (1, 2, 3)]  # 18, 19, 20: mean 19 < 20.4
    cells = bench.aggregate(runs, bench.ATARI)
    assert cells[0]["eval_mean"] == 21.0 and not cells[0]["passed"] and bench.exit_code(cells) == 1
    assert bench.failure_report(cells, bench.ATARI) == (
        "ppo_clip on ALE/Pong-v5: last 100 training episodes: mean 19.0 over seeds (seed 1: 18.0, seed 2: 19.0, "
        "seed 3: 20.0); target ≥ 20.4; final evaluation 21.0"
    )
    table = bench.table(cells, bench.ATARI)
    assert (
        "| ppo_clip | ALE/Pong-v5 | 3 | 19.0 ± 0.8 | 18.0, 19.0, 20.0 | 20.4 | 21.0 ± 0.0 | 21.0, 21.0, 21.0 |" in table
    )
    short = [run("ppo_clip", PONG, 1, 21.0, curve=curve_of([5.0, 7.0]))]  # fewer than 100 episodes: all of them
    assert bench.aggregate(short, bench.ATARI)[0]["tail_means"] == [6.0]
    assert curves.last_episodes_mean([], 100) != curves.last_episodes_mean([], 100)  # NaN without an episode
    md = bench.markdown(cells, bench.ATARI, {"sys": 0.01}, {"cpu": "fake"})
    assert "mean return of the last 100 training episodes" in md and "about 17 h a run (165 SPS measured)" in md


def test_main_minatar_end_to_end_with_fake_algos(tmp_path, capfd, monkeypatch):
    """Env ids with a "/" (temporary folders, plot names), vpg on Breakout only, ppo_clip gated, the others reported."""
    repo, out = fake_repo(tmp_path, ppo_clip=30.0, vpg=5.0, ppo_penalty=200.0), tmp_path / "out"
    cwd = empty_cwd(tmp_path, monkeypatch)
    argv = ["--root", str(repo), "--out", str(out), "--minatar", "--workers", "2"]
    assert bench.main([*argv, "--envs", BREAKOUT, FREEWAY]) == 1  # ppo_clip's 31–33 < Freeway's 58
    printed = capfd.readouterr().out
    assert "[15/15]" in printed and "FAILED cells:\nppo_clip on MinAtar/Freeway-v1" in printed
    results = bench.read_results(out / "results_minatar.json.gz")
    assert {(r["algo"], r["env"]) for r in results["runs"]} == {
        *((a, e) for a in ("ppo_clip", "ppo_penalty") for e in (BREAKOUT, FREEWAY)),
        ("vpg", BREAKOUT),
    }
    assert all(r["error"] is None for r in results["runs"]) and results["only"] == {
        "vpg": [BREAKOUT],
        "trpo": [BREAKOUT],
    }
    statuses = {(c["algo"], c["env"]): c["status"] for c in results["cells"]}
    assert statuses == {
        ("ppo_clip", BREAKOUT): "pass",
        ("ppo_clip", FREEWAY): "FAIL",
        ("ppo_penalty", BREAKOUT): "✓",
        ("ppo_penalty", FREEWAY): "✓",
        ("vpg", BREAKOUT): "report",
    }
    pngs = {f"curve_{e}_{x}.png" for e in ("MinAtar-Breakout-v1", "MinAtar-Freeway-v1") for x in ("steps", "seconds")}
    assert {p.name for p in out.glob("*.png")} == pngs | {
        "curve_MinAtar-Breakout-v1_evals.png",
        "curve_MinAtar-Freeway-v1_evals.png",
    }
    assert not any(cwd.iterdir())
    with pytest.raises(SystemExit) as e:
        bench.main([*argv, "--algos", "vpg", "--envs", FREEWAY])
    assert e.value.code == 2 and "vpg runs only on MinAtar/Breakout-v1 in the MinAtar suite" in capfd.readouterr().err


def test_main_atari_keeps_each_runs_last_100_mean_past_the_slim_curves(tmp_path, capfd, monkeypatch):
    """The statistic needs every episode's return; the results file keeps slim curves (rolling means), so each run
    keeps its own train_tail_mean and a later invocation reads that."""
    repo, out = tmp_path / "repo", tmp_path / "out"
    repo.mkdir()
    long_curve = "curve = [[100 * (i + 1), 0.01 * (i + 1), -21.0 if i < 50 else final - 1] for i in range(150)]"
    fake = FAKE_ALGO.replace("curve = [[100 * (i + 1), 0.01 * (i + 1), final] for i in range(30)]", long_curve)
    assert long_curve in fake
    (repo / "ppo_clip.py").write_text(fake.replace("RETURN", "20.0"))  # seed s: evaluation 20 + s, last 100 19 + s
    cwd = empty_cwd(tmp_path, monkeypatch)
    argv = ["--root", str(repo), "--out", str(out), "--atari", "--envs", PONG, "--workers", "2"]
    assert bench.main(argv) == 0  # 20, 21, 22: mean 21 ≥ 20.4
    results = bench.read_results(out / "results_atari.json.gz")
    assert [r["train_tail_mean"] for r in results["runs"]] == [20.0, 21.0, 22.0]
    assert {type(r["summary"]["curve"]) for r in results["runs"]} == {dict} and results["train_tail"] == 100
    assert cell(results["cells"], "ppo_clip", PONG)["tail_mean"] == 21.0
    (repo / "ppo_clip.py").write_text(fake.replace("RETURN", "0.0"))
    assert bench.main([*argv, "--seeds", "1"]) == 1  # 0, 21, 22 (the file's slim runs): mean 14.3 < 20.4
    c = cell(bench.read_results(out / "results_atari.json.gz")["cells"], "ppo_clip", PONG)
    assert c["tail_means"] == [0.0, 21.0, 22.0] and c["evals"] == [1.0, 22.0, 23.0]
    assert "ppo_clip on ALE/Pong-v5: last 100 training episodes: mean 14.3" in capfd.readouterr().out
    assert {p.name for p in out.glob("*.png")} == {f"curve_ALE-Pong-v5_{x}.png" for x in ("steps", "seconds", "evals")}
    assert not any(cwd.iterdir())


def test_invocations_at_once_take_turns_on_the_results_folder(tmp_path):
    """Single runs started side by side into one results file: while the results folder's lock is held (here by the
    test), none of them records its run or reports; once it is free they take turns, and the file keeps all three."""
    repo, out = fake_repo(tmp_path, ppo_clip=30.0), tmp_path / "out"
    script = [sys.executable, str(bench.ROOT / "benchmarks" / "run.py"), "--root", str(repo), "--out", str(out)]
    one = [*script, "--minatar", "--algos", "ppo_clip", "--envs", BREAKOUT, "--workers", "1", "--seeds"]
    with bench.results_lock(out):
        procs = [subprocess.Popen([*one, str(seed)], cwd=tmp_path, stdout=subprocess.PIPE) for seed in (1, 2, 3)]
        time.sleep(10)  # a fake run takes a few seconds: long done, were the lock not held
        assert [p.poll() for p in procs] == [None] * 3 and not list(out.iterdir())
    codes = [p.wait(timeout=300) for p in procs]  # 1 while a report sees fewer than 3 seeds (incomplete), else 0
    assert set(codes) <= {0, 1} and 0 in codes
    results = bench.read_results(out / "results_minatar.json.gz")
    assert sorted(r["seed"] for r in results["runs"]) == [1, 2, 3]
    assert cell(results["cells"], "ppo_clip", BREAKOUT)["status"] == "pass"  # the last report saw all three
    assert not list(out.glob("*.partial.jsonl"))


# ---- benchmarks/pong_curve.py ----------------------------------------------------------------------------------------
def fake_pong_run(parent, seed, last_step, batch=1024):
    """A run folder as ppo_clip.py writes it: progress.csv with a row per iteration; mean_return NaN until the first
    episode (step 5,120), then rising by 1 per 100 k steps from −21 and capped at 21."""
    folder = parent / f"ALE-Pong-v5__ppo_clip__{seed}__1767000000"
    folder.mkdir(parents=True)
    rows = ["global_step,time_s,iteration,sps,mean_return,episodes"]
    for i in range(1, last_step // batch + 1):
        step = batch * i
        mean = "nan" if step < 5_120 else f"{min(21.0, -21.0 + step / 100_000 + seed):.2f}"
        rows.append(f"{step},{i / 10},{i},700,{mean},{i}")
    (folder / "progress.csv").write_text("\n".join(rows) + "\n")
    (folder / "checkpoint.pt").write_bytes(b"not read")
    return folder


def test_pong_curve_reads_our_runs_beside_cleanrls_curve(tmp_path, capsys):
    from benchmarks import pong_curve

    full = fake_pong_run(tmp_path / "runs", 1, 10_000_000)  # 9,765 iterations: the last at 9,999,360
    half = fake_pong_run(tmp_path / "runs", 2, 2_600_000)
    out = tmp_path / "results"
    assert pong_curve.main([str(full), str(half), "--out", str(out)]) == 0
    md = (out / "pong_curve.md").read_text()
    head = "| agent steps | ours, seed 1 | ours, seed 2 | ours, mean over runs | CleanRL ppo_atari (±0.5) |"
    assert head in md and md.count("| 10 M |") == 1
    # the first iteration at or after 0.5 M is at 500,736: −21 + 5.00736 + seed
    assert "| 0.5 M | -15.0 | -14.0 | -14.5 | -19.5 |" in md
    assert "| 3 M | +10.0 | — | +10.0 (1 of 2) | +17.1 |" in md  # seed 2 stopped at 2.6 M
    assert "| 10 M | +21.0 | — | +21.0 (1 of 2) | +20.6 |" in md  # 9,999,360: less than an iteration short
    assert "PongNoFrameskip-v4" in md and "FireReset" in md and "frameskip 1" in md and "sticky" in md
    assert (out / "pong_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 0.5 M |" in capsys.readouterr().out

    assert pong_curve.main([str(half), "--out", str(out)]) == 0  # one run: no mean column, only the steps it reached
    md = (out / "pong_curve.md").read_text()
    assert "| agent steps | ours, seed 2 | CleanRL ppo_atari (±0.5) |" in md
    assert "| 2.5 M |" in md and "| 3 M |" not in md
    early = fake_pong_run(tmp_path / "early", 3, 4_096)  # no episode finished yet: no step of the table reached
    assert pong_curve.main([str(early), "--out", str(out)]) == 0
    assert "| 0.5 M |" not in (out / "pong_curve.md").read_text()
    with pytest.raises(SystemExit) as e:
        pong_curve.main([str(tmp_path), "--out", str(out)])  # no progress.csv there
    assert e.value.code == 2 and "no progress.csv" in capsys.readouterr().err


def test_pong_curve_takes_the_first_iteration_at_or_after_each_step():
    from benchmarks import pong_curve

    steps, means = np.array([1024, 2048, 3072]), np.array([math.nan, -20.0, -19.0])
    assert math.isnan(pong_curve.value_at(steps, means, 1000))  # no episode finished yet
    assert pong_curve.value_at(steps, means, 1025) == -20.0 and pong_curve.value_at(steps, means, 2048) == -20.0
    assert pong_curve.value_at(steps, means, 4000) == -19.0  # 928 short: less than an iteration (1,024)
    assert pong_curve.row_at(steps, 4096) is None  # a whole iteration short: not reached


# ---- benchmarks/pixel_speed.py ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("env, extractor", [("ALE/Pong-v5", "NatureCNN"), ("MinAtar/Breakout-v1", "OurEncoder")])
def test_sb3_gets_our_envs_settings_and_networks(env, extractor):
    """Built, not trained: SB3's PPO for our Args has parameters of the same shapes as our networks (one CNN, linear
    heads), the same hyper-parameters, and plays the same observations."""
    import torch

    from benchmarks import pixel_speed

    small = ["--num-envs", "2", "--num-steps", "16", "--num-minibatches", "2"]
    args = pixel_speed.our_args(env, 1, 64, "cpu", small)
    model, ppo_clip = pixel_speed.sb3_model(args), importlib.import_module("ppo_clip")
    envs = model.get_env()
    space = envs.observation_space
    policy = ppo_clip.Policy(space.shape, envs.action_space, args.hidden_sizes, args.log_std_init)
    value = ppo_clip.Value(space.shape, args.hidden_sizes, policy.encoder)
    ours = sorted(tuple(p.shape) for p in [*policy.parameters(), *value.net.parameters()])
    assert ours == sorted(tuple(p.shape) for p in model.policy.parameters())
    assert type(model.policy.features_extractor).__name__ == extractor and model.policy.share_features_extractor
    preset = ppo_clip.FAMILY_DEFAULTS[ppo_clip.env_family(env)]
    assert (model.n_envs, model.n_steps, model.batch_size, model.n_epochs) == (2, 16, 16, preset["update_epochs"])
    assert model.clip_range(1.0) == args.clip_coef and model.clip_range_vf is None and model.normalize_advantage
    assert (model.ent_coef, model.vf_coef, model.max_grad_norm) == (args.ent_coef, args.vf_coef, args.max_grad_norm)
    assert (model.gamma, model.gae_lambda) == (args.gamma, args.gae_lambda)
    assert model.lr_schedule(1.0) == args.learning_rate
    assert model.lr_schedule(0.5) == (args.learning_rate / 2 if args.anneal_lr else args.learning_rate)
    assert model.policy.optimizer.defaults["eps"] == 1e-5
    obs = envs.reset()
    assert obs.dtype == space.dtype == ppo_clip.make_env(env).observation_space.dtype  # uint8 / bool
    assert model.policy.obs_to_tensor(obs)[0].shape == (2, *space.shape)
    with torch.no_grad():  # the extractor takes what SB3's preprocessing makes of the env's observations
        features = model.policy.extract_features(model.policy.obs_to_tensor(obs)[0])
    assert features.shape == (2, policy.encoder.out_dim)


def test_pixel_speed_summary_and_markdown():
    from benchmarks import pixel_speed

    rec = lambda library, sps, error=None: dict(  # noqa: E731
        library=library, env="ALE/Pong-v5", steps=16_384, sps=sps, error=error, repeat=1, seconds=1.0, seed=1
    )
    runs = [rec("ppo_clip", 300.0), rec("sb3_ppo", 200.0), rec("sb3_ppo", 100.0), rec("ppo_clip", 100.0)]
    runs += [rec("ppo_clip", None, "Traceback"), rec("sb3_ppo", 150.0)]
    rows = pixel_speed.summarise(runs)
    assert [(r["library"], r["min"], r["median"], r["max"], r["errors"]) for r in rows] == [
        ("ppo_clip", 100.0, 200.0, 300.0, 1),
        ("sb3_ppo", 100.0, 150.0, 200.0, 0),
    ]
    assert rows[0]["ratio"] == pytest.approx(200 / 150) and math.isnan(rows[1]["ratio"])
    args = asdict(pixel_speed.our_args("ALE/Pong-v5", 1, 16_384, "cpu", []))
    settings = {"ALE/Pong-v5": dict(ppo_clip=args, sb3_ppo=dict(batch_size=256, features_extractor="NatureCNN"))}
    md = pixel_speed.markdown(runs, settings, {"cpu": "fake", "device": "cpu"}, [])
    assert "| ALE/Pong-v5 | ours (ppo_clip.py) | 2 (1 crashed) | 16,384 | 100 | 200 | 300 | 1.33 |" in md
    assert "| ALE/Pong-v5 | Stable-Baselines3 PPO | 3 | 16,384 | 100 | 150 | 200 | — |" in md
    assert "8 envs × 128 steps, 4 epochs of 4 minibatches (256 transitions), lr 0.00025 falling linearly" in md


def test_pixel_speed_runs_both_libraries_in_turn_on_a_tiny_budget(tmp_path, capsys, monkeypatch):
    """The real path on a few steps (MinAtar, 2 envs × 32 steps): each library in its own process, the results written,
    nothing left in the cwd."""
    from benchmarks import pixel_speed

    cwd = empty_cwd(tmp_path, monkeypatch)
    out = tmp_path / "out"
    argv = ["--envs", "MinAtar/Breakout-v1", "--repeats", "1", "--minatar-steps", "64", "--out", str(out)]
    assert pixel_speed.main([*argv, "--flags", "--num-envs 2 --num-steps 32 --num-minibatches 2"]) == 0
    printed = capsys.readouterr().out
    assert "[1/2] ppo_clip MinAtar/Breakout-v1 run 1" in printed and "[2/2] sb3_ppo" in printed
    record = json.loads((out / "pixel_speed.json").read_text())
    assert [(r["library"], r["steps"], r["error"]) for r in record["runs"]] == [
        ("ppo_clip", 64, None),
        ("sb3_ppo", 64, None),
    ]
    assert all(r["sps"] > 0 for r in record["runs"]) and record["flags"][:2] == ["--num-envs", "2"]
    sb3 = record["settings"]["MinAtar/Breakout-v1"]["sb3_ppo"]
    assert sb3["features_extractor"] == "ppo_clip.Encoder" and sb3["batch_size"] == 32 and sb3["n_steps"] == 32
    assert "| MinAtar/Breakout-v1 | ours (ppo_clip.py) | 1 | 64 |" in (out / "pixel_speed.md").read_text()
    assert not any(cwd.iterdir())
    with pytest.raises(SystemExit) as e:  # 100 steps are no multiple of a 64-step batch
        pixel_speed.main([*argv[:4], "--minatar-steps", "100", "--flags", "--num-envs 2 --num-steps 32"])
    assert e.value.code == 2 and "no multiple of the batch of 64" in capsys.readouterr().err
