"""benchmarks/run.py: discovery, time to threshold, aggregation, exit code, known
shortfalls, plots, one pass through main() with fake algorithm files, and two short real --peers runs."""

import json
import math
import textwrap

import numpy as np
import pytest

import conftest  # noqa: F401  (puts the repo root on sys.path; spawned runs inherit it)
from benchmarks import run as bench


def curve_of(returns, steps_per_ep=100, secs_per_ep=0.5):
    """[global_step, seconds, return] per episode, evenly spaced."""
    return [[steps_per_ep * (i + 1), secs_per_ep * (i + 1), float(r)] for i, r in enumerate(returns)]


def run(algo, env, seed, eval_mean, curve=None, sps=1000.0, kind="ours"):
    summary = dict(eval_mean_return=eval_mean, eval_std_return=0.0, global_step=10_000, wall_s=1.0, sps=sps,
                   curve=curve if curve is not None else [], evals=[], best_eval_mean_return=eval_mean)
    return dict(kind=kind, algo=algo, env=env, seed=seed, args={}, summary=summary, error=None)


# ---- discovery ------------------------------------------------------------------------------------------------
def test_discover_algos_finds_known_names_in_fixed_order(tmp_path):
    assert bench.discover_algos(tmp_path) == []
    for name in ("dppo.py", "ppo_clip.py", "trpo.py", "notes.py", "ppo_clip_old.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "vpg.py").mkdir()  # a folder is not an algorithm file
    assert bench.discover_algos(tmp_path) == ["trpo", "ppo_clip", "dppo"]


def test_discover_algos_in_this_repo_includes_ppo_clip():
    assert "ppo_clip" in bench.discover_algos()


# ---- time to threshold ----------------------------------------------------------------------------------------
def test_time_to_threshold_first_window_reaching_it():
    # 20 episodes of 0 then 500s: the window ending at episode i holds i-19 fives-hundreds; 19·500/20 = 475 at i=38
    curve = curve_of([0] * 20 + [500] * 30)
    assert bench.time_to_threshold(curve, 475.0) == (3900.0, 19.5)
    assert bench.time_to_threshold(curve, 475.1) == (4000.0, 20.0)  # needs all 20 at 500: i=39


def test_time_to_threshold_needs_a_full_window():
    assert bench.time_to_threshold(curve_of([500] * 19), 475.0) == (math.inf, math.inf)
    assert bench.time_to_threshold(curve_of([500] * 20), 475.0) == (2000.0, 10.0)
    assert bench.time_to_threshold([], 475.0) == (math.inf, math.inf)


def test_time_to_threshold_never_and_negative_thresholds():
    assert bench.time_to_threshold(curve_of([474.0] * 100), 475.0) == (math.inf, math.inf)
    pendulum = curve_of([-1200.0] * 25 + [-150.0] * 25, steps_per_ep=200)
    steps, secs = bench.time_to_threshold(pendulum, -200.0)
    # the window ending at i (≥ 25) holds k = i-24 episodes of −150:
    # (k·(−150) + (20−k)·(−1200)) / 20 ≥ −200  ⇔  k ≥ 19.05, so k = 20, i = 44
    assert steps == 200 * (25 + 20 - 1 + 1) and secs == pytest.approx(0.5 * 45)


def test_time_to_threshold_uses_the_curves_own_clock():
    curve = [[8, 0.1, 500.0]] * 19 + [[1234, 7.25, 500.0]]
    assert bench.time_to_threshold(curve, 475.0) == (1234.0, 7.25)


# ---- aggregation, exit code, known shortfalls -----------------------------------------------------------------
def fabricated_runs():
    fast, slow, never = curve_of([500] * 40, secs_per_ep=0.1), curve_of([0] * 20 + [500] * 20), curve_of([10] * 40)
    return [
        run("ppo_clip", "CartPole-v1", 1, 500.0, fast, sps=3000),
        run("ppo_clip", "CartPole-v1", 2, 480.0, slow, sps=1000),
        run("ppo_clip", "CartPole-v1", 3, 490.0, never, sps=2000),
        run("vpg", "CartPole-v1", 1, 500.0, never),
        run("vpg", "CartPole-v1", 2, 400.0, never),
        run("vpg", "CartPole-v1", 3, 500.0, fast),
        run("sb3_ppo", "CartPole-v1", 1, 100.0, curve_of([500] * 20, secs_per_ep=0.2), kind="peer"),
    ]


def cell(cells, algo, env="CartPole-v1"):
    return next(c for c in cells if c["algo"] == algo and c["env"] == env)


def test_aggregate_statistics_per_cell():
    cells = bench.aggregate(fabricated_runs()[::-1], shortfalls={})  # runs arrive in completion order
    c = cell(cells, "ppo_clip")
    assert c["seeds"] == [1, 2, 3] and c["passed"] and c["status"] == "pass"
    assert c["eval_mean"] == pytest.approx(490.0)
    assert c["eval_std"] == pytest.approx(np.std([500, 480, 490]))
    assert c["eval_min"] == 480.0
    # seconds to threshold per seed: 2.0 (fast, ep 20 at 0.1 s), 19.5 (slow), ∞ (never) → median 19.5
    assert c["seconds_to_threshold"] == pytest.approx(19.5) and c["steps_to_threshold"] == 3900.0
    assert c["sps"] == 2000.0
    # two seeds of three never reach it: the median is ∞, shown as ∞
    v = cell(cells, "vpg")
    assert math.isinf(v["seconds_to_threshold"]) and math.isinf(v["steps_to_threshold"])
    assert "| ∞ |" in bench.table([v])


def test_a_missed_threshold_fails_the_cell_and_the_exit_code():
    cells = bench.aggregate(fabricated_runs(), shortfalls={})
    v = cell(cells, "vpg")
    assert not v["passed"] and v["status"] == "FAIL" and v["eval_min"] == 400.0
    assert bench.exit_code(cells) == 1
    report = bench.failure_report(cells)
    assert "vpg on CartPole-v1" in report and "seed 2: 400.0" in report and "ppo_clip" not in report
    # a run exactly at the threshold passes
    assert bench.exit_code(bench.aggregate([run("vpg", "CartPole-v1", 1, 475.0)], shortfalls={})) == 0


def test_known_shortfall_still_shown_failing_but_exit_code_zero():
    marks = {("vpg", "CartPole-v1"): "measured 400; see README"}
    cells = bench.aggregate(fabricated_runs(), shortfalls=marks)
    v = cell(cells, "vpg")
    assert not v["passed"] and v["status"] == "FAIL (known shortfall)"
    assert bench.exit_code(cells) == 0
    assert "FAIL (known shortfall)" in bench.table(cells)
    assert "measured 400; see README" in bench.failure_report(cells)
    # the mark covers only its own cell
    other = bench.aggregate([run("vpg", "Pendulum-v1", 1, -900.0)], shortfalls=marks)
    assert bench.exit_code(other) == 1


def test_a_crashed_run_fails_its_cell():
    crashed = dict(kind="ours", algo="trpo", env="Pendulum-v1", seed=2, args=None, summary=None, error="Traceback")
    cells = bench.aggregate([run("trpo", "Pendulum-v1", 1, -150.0), crashed], shortfalls={})
    c = cell(cells, "trpo", "Pendulum-v1")
    assert not c["passed"] and c["errors"] == [2] and "crashed" in c["status"] and c["eval_min"] == -150.0
    assert bench.exit_code(cells) == 1


def test_peers_are_not_gated_and_give_the_time_ratio():
    cells = bench.aggregate(fabricated_runs(), shortfalls={("vpg", "CartPole-v1"): "x"})
    peer = cell(cells, "sb3_ppo")
    assert not peer["passed"] and not peer["counts"] and bench.exit_code(cells) == 0
    assert cell(cells, "ppo_clip")["peer_time_ratio"] == pytest.approx(19.5 / 4.0)  # peer: 20th episode at 4.0 s
    assert math.isnan(cell(cells, "vpg")["peer_time_ratio"])


def test_json_safe_turns_infinities_into_null():
    safe = bench._json_safe({"a": [math.inf, 1.0, (math.nan,)]})
    assert json.dumps(safe, allow_nan=False) == '{"a": [null, 1.0, [null]]}'


# ---- plots ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("x", ["steps", "seconds"])
def test_plot_writes_a_png(tmp_path, x):
    rng = np.random.default_rng(0)
    curves = {name: [curve_of(np.minimum(500, np.arange(n) * 5 + rng.normal(0, 20, n)), secs_per_ep=0.1 * (k + 1))
                     for k, n in enumerate((150, 120, 140))] for name in ("ppo_clip", "sb3_ppo")}
    curves["vpg"] = [[]]  # a run with no finished episode is skipped, not an error
    path = tmp_path / f"curve_{x}.png"
    bench.plot_env(curves, "CartPole-v1", x, path, threshold=475.0)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


# ---- main() end to end on fake algorithm files (no training) --------------------------------------------------
FAKE_ALGO = textwrap.dedent('''
    import os
    from dataclasses import dataclass

    @dataclass
    class Args:
        env: str = "CartPole-v1"
        seed: int = 1

    def parse_args(argv):
        return Args(env=argv[argv.index("--env") + 1], seed=int(argv[argv.index("--seed") + 1]))

    def train(args):
        print("chatter that must not reach the benchmark's output")
        os.makedirs("runs/x", exist_ok=True)
        curve = [[100 * (i + 1), 0.01 * (i + 1), RETURN] for i in range(30)]
        return dict(eval_mean_return=RETURN, eval_std_return=0.0, global_step=3000, wall_s=0.3, sps=1e4,
                    curve=curve, evals=[], best_eval_mean_return=RETURN, args_seen=[args.env, args.seed])
''')


def test_main_end_to_end_with_fake_algos(tmp_path, monkeypatch, capfd):
    repo, out = tmp_path / "repo", tmp_path / "out"
    repo.mkdir()
    (repo / "ppo_clip.py").write_text(FAKE_ALGO.replace("RETURN", "500.0"))
    (repo / "vpg.py").write_text(FAKE_ALGO.replace("RETURN", "100.0"))
    argv = ["--root", str(repo), "--out", str(out), "--envs", "CartPole-v1", "--seeds", "1", "2", "--workers", "2"]
    assert bench.main(argv) == 1  # vpg misses 475
    printed = capfd.readouterr().out
    assert "FAILED cells" in printed and "vpg on CartPole-v1" in printed and "chatter" not in printed
    assert not (repo / "runs").exists() and not (tmp_path / "runs").exists()
    results = json.loads((out / "results.json").read_text())
    assert sorted((r["algo"], r["seed"]) for r in results["runs"]) == [("ppo_clip", 1), ("ppo_clip", 2),
                                                                       ("vpg", 1), ("vpg", 2)]
    r = next(r for r in results["runs"] if r["algo"] == "vpg" and r["seed"] == 2)
    assert r["args"] == {"env": "CartPole-v1", "seed": 2} and r["summary"]["args_seen"] == ["CartPole-v1", 2]
    assert set(results["startup_s"]) >= {"ppo_clip", "vpg"} and "torch" in results["meta"]["versions"]
    assert (out / "curve_CartPole-v1_steps.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "curve_CartPole-v1_seconds.png").exists()

    monkeypatch.setitem(bench.KNOWN_SHORTFALLS, ("vpg", "CartPole-v1"), "fake: measured 100")
    assert bench.main(argv + ["--algos", "vpg"]) == 0
    assert "FAIL (known shortfall)" in (out / "results.md").read_text()


def test_main_rejects_an_algo_without_a_file(tmp_path):
    with pytest.raises(SystemExit) as e:
        bench.main(["--root", str(tmp_path), "--algos", "trpo"])
    assert e.value.code == 2


@pytest.mark.parametrize("peer, env", [("sb3_ppo", "CartPole-v1"), ("sb3_trpo", "Pendulum-v1")])
def test_peer_runs_are_measured_like_ours(peer, env, monkeypatch, tmp_path):
    """A short real SB3 / sb3-contrib run through the --peers path (dev requirements install both)."""
    monkeypatch.chdir(tmp_path)
    hp = dict(bench.PEER_HYPERPARAMS[(peer, env)], n_timesteps=2048)
    monkeypatch.setitem(bench.PEER_HYPERPARAMS, (peer, env), hp)
    args, s = bench._train_peer(peer, env, 1, str(bench.ROOT))
    assert args["n_timesteps"] == 2048 and s["global_step"] >= 2048
    assert len(s["eval_returns"]) == bench.EVAL_EPISODES and s["sps"] > 0
    assert s["curve"] and all(len(c) == 3 and c[0] <= s["global_step"] for c in s["curve"])
    if env == "Pendulum-v1":
        assert {c[2] < 0 for c in s["curve"]} == {True}
