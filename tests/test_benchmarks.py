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


# ---- MuJoCo suite (--mujoco): mean over seeds vs target, relative ppo_penalty target, time never gated ----------
def mujoco_run(algo, env, seed, final, best=None, wall=200.0, process=260.0, sps=5000.0, eval_episodes=20):
    r = run(algo, env, seed, final, sps=sps)
    r["summary"].update(wall_s=wall, best_eval_mean_return=final if best is None else best,
                        evals=[[500_000, final / 2], [1_000_000, final]])
    r.update(args=dict(env=env, seed=seed, eval_episodes=eval_episodes, eval_every=10_000), process_s=process)
    return r


def mujoco_fabricated_runs():
    hc, hop = "HalfCheetah-v5", "Hopper-v5"
    return [
        # ppo_clip on HalfCheetah: seed 2 is below 3000 but the mean (3100) is not -> pass
        mujoco_run("ppo_clip", hc, 2, 2400.0, best=2600.0, wall=280.0, process=330.0, sps=3000),
        mujoco_run("ppo_clip", hc, 1, 3500.0, best=3600.0, wall=250.0, process=300.0, sps=4000),
        mujoco_run("ppo_clip", hc, 3, 3400.0, best=3400.0, wall=400.0, process=450.0, sps=2500),
        # trpo on Hopper: seed 1 reaches 2000 but the mean (1900) does not -> FAIL
        mujoco_run("trpo", hop, 1, 2100.0), mujoco_run("trpo", hop, 2, 1800.0), mujoco_run("trpo", hop, 3, 1800.0),
        # ppo_penalty on HalfCheetah: mean 2650 ≥ 0.85 · 3100 = 2635 -> pass
        mujoco_run("ppo_penalty", hc, 1, 2700.0), mujoco_run("ppo_penalty", hc, 2, 2600.0),
        # ppo_penalty on Hopper: ppo_clip did not run there -> no target, whatever its return
        mujoco_run("ppo_penalty", hop, 1, 10.0),
    ]


def test_mujoco_cells_judge_the_mean_over_seeds_not_every_seed():
    cells = bench.mujoco_cells(mujoco_fabricated_runs(), shortfalls={})
    c = cell(cells, "ppo_clip", "HalfCheetah-v5")
    assert c["seeds"] == [1, 2, 3] and c["evals"] == [3500.0, 2400.0, 3400.0]
    assert c["eval_mean"] == pytest.approx(3100.0) and c["eval_std"] == pytest.approx(np.std([3500, 2400, 3400]))
    assert c["best_mean"] == pytest.approx(3200.0) and c["target"] == 3000 and c["passed"] and c["status"] == "pass"
    assert (c["sps"], c["wall_s"], c["process_s"]) == (3000.0, 280.0, 330.0)  # medians over seeds
    assert c["time_ok"] is True and c["eval_episodes"] == [20]
    t = cell(cells, "trpo", "Hopper-v5")
    assert t["evals"][0] >= 2000 and t["eval_mean"] == pytest.approx(1900.0)
    assert not t["passed"] and t["status"] == "FAIL" and t["counts"]


def test_mujoco_ppo_penalty_target_is_relative_to_ppo_clips_mean():
    cells = bench.mujoco_cells(mujoco_fabricated_runs(), shortfalls={})
    pen = cell(cells, "ppo_penalty", "HalfCheetah-v5")
    assert pen["target"] == pytest.approx(bench.PPO_PENALTY_RELATIVE * 3100.0) and pen["target_ref"] == 3100.0
    assert pen["eval_mean"] == pytest.approx(2650.0) and pen["passed"]
    assert "× ppo_clip's 3100.0 = 2635.0" in bench.mujoco_table([pen])
    # the same ppo_penalty runs against a better ppo_clip: 2650 < 0.85 · 3200 = 2720 -> FAIL
    better = [mujoco_run("ppo_clip", "HalfCheetah-v5", s, 3200.0) for s in (1, 2, 3)]
    pen_runs = [r for r in mujoco_fabricated_runs() if r["algo"] == "ppo_penalty"]
    cells = bench.mujoco_cells(better + pen_runs, shortfalls={})
    pen = cell(cells, "ppo_penalty", "HalfCheetah-v5")
    assert pen["target"] == pytest.approx(2720.0) and not pen["passed"] and pen["status"] == "FAIL"
    assert bench.mujoco_exit_code(cells) == 1


def test_mujoco_ppo_penalty_has_no_target_without_ppo_clip():
    cells = bench.mujoco_cells(mujoco_fabricated_runs(), shortfalls={})
    pen = cell(cells, "ppo_penalty", "Hopper-v5")
    assert pen["target"] is None and pen["status"] == "no target" and not pen["counts"]
    assert "| no target |" in bench.mujoco_table([pen])
    alone = bench.mujoco_cells([mujoco_run("ppo_penalty", "HalfCheetah-v5", s, -50.0) for s in (1, 2)], shortfalls={})
    assert alone[0]["target"] is None and bench.mujoco_exit_code(alone) == 0
    # an env with no target at all (e.g. a smaller MuJoCo task passed with --envs) is not gated either
    other = bench.mujoco_cells([mujoco_run("vpg", "InvertedPendulum-v5", 1, 5.0)], shortfalls={})
    assert other[0]["status"] == "no target" and bench.mujoco_exit_code(other) == 0


def test_mujoco_exit_code_fails_and_known_shortfall_exempts():
    runs = mujoco_fabricated_runs()
    assert bench.mujoco_exit_code(bench.mujoco_cells(runs, shortfalls={})) == 1  # trpo on Hopper
    report = bench.mujoco_failure_report(bench.mujoco_cells(runs, shortfalls={}))
    assert "trpo on Hopper-v5: mean 1900.0" in report and "seed 1: 2100.0" in report and "ppo_clip" not in report
    marks = {("trpo", "Hopper-v5"): "measured 1900; see README"}
    cells = bench.mujoco_cells(runs, shortfalls=marks)
    assert cell(cells, "trpo", "Hopper-v5")["status"] == "FAIL (known shortfall)"
    assert bench.mujoco_exit_code(cells) == 0 and "FAIL (known shortfall)" in bench.mujoco_table(cells)
    assert "measured 1900; see README" in bench.mujoco_failure_report(cells)
    # the mark covers its own cell only
    other = {("trpo", "HalfCheetah-v5"): "x"}
    assert bench.mujoco_exit_code(bench.mujoco_cells(runs, shortfalls=other)) == 1


def test_mujoco_a_crashed_seed_fails_the_cell_even_when_the_mean_passes():
    crashed = dict(kind="ours", algo="vpg", env="Hopper-v5", seed=2, args=None, summary=None, error="Traceback",
                   process_s=3.0)
    cells = bench.mujoco_cells([mujoco_run("vpg", "Hopper-v5", 1, 5000.0), crashed], shortfalls={})
    c = cells[0]
    assert c["eval_mean"] == 5000.0 and c["errors"] == [2] and not c["passed"] and "crashed" in c["status"]
    assert c["process_s"] == 260.0  # the crashed run's time is left out
    assert bench.mujoco_exit_code(cells) == 1


def test_mujoco_time_check_is_reported_but_never_gated():
    slow_pass = [mujoco_run("vpg", "Hopper-v5", s, 900.0, wall=1000.0, process=1100.0) for s in (1, 2, 3)]
    fast_fail = [mujoco_run("vpg", "HalfCheetah-v5", s, 100.0, wall=10.0, process=12.0) for s in (1, 2, 3)]
    slow = bench.mujoco_cells(slow_pass, shortfalls={})
    assert slow[0]["passed"] and slow[0]["time_ok"] is False and bench.mujoco_exit_code(slow) == 0
    assert "| 1000.0 (> 300) | 1100.0 |" in bench.mujoco_table(slow)
    fast = bench.mujoco_cells(fast_fail, shortfalls={})
    assert fast[0]["time_ok"] is True and bench.mujoco_exit_code(fast) == 1
    assert "| 10.0 (≤ 300) | 12.0 |" in bench.mujoco_table(fast)
    # whatever the seconds target, the exit code stays the same
    for secs in (1, 300, 10_000):
        cells = bench.mujoco_cells(slow_pass + fast_fail, shortfalls={}, seconds_target=secs)
        assert bench.mujoco_exit_code(cells) == 1
        assert bench.mujoco_exit_code([c for c in cells if c["env"] == "Hopper-v5"]) == 0


def test_mujoco_markdown_has_the_table_the_published_anchors_and_the_definitions():
    runs = [mujoco_run("vpg", "Hopper-v5", s, 900.0, eval_episodes=10) for s in (1, 2)]
    md = bench.mujoco_markdown(bench.mujoco_cells(runs, shortfalls={}), {"cpu": "fake"})
    table_head = ("| algo | env | seeds | final eval mean ± std | per-seed final | best eval mean ± std | target "
                  "| median SPS | median training s | median process s | status |")
    assert table_head in md and "| vpg | Hopper-v5 | 2 | 900.0 ± 0.0 | 900.0, 900.0 | 900.0 ± 0.0 | ≥ 800 |" in md
    published = md.split("## Published (1 M steps unless noted)")[1]
    assert "| algo | env | published |" in published
    assert "| ppo_clip | HalfCheetah-v5 | ~1700 Baselines / ~1670 Spinning Up / 1442 ± 46 CleanRL (final) / " \
           "5784 ± 1244 Tianshou (max) |" in published
    assert "| trpo | Hopper-v5 | ~2200 Baselines / ~1200 Spinning Up TF / 2046 ± 1038 Tianshou (max) |" in published
    assert "| vpg | HalfCheetah-v5 | ~600 Spinning Up PyTorch (3 M steps) |" in published
    assert "| ppo_penalty | Hopper-v5 | — (no published 1 M table; target: within 15 % of ppo_clip) |" in published
    rows = [l for l in published.split("\n## ")[0].splitlines() if l.startswith("| ")][1:]
    assert len(rows) == 8 and rows[0].startswith("| vpg | HalfCheetah-v5 |")  # same order as the results table
    assert '"final" = deterministic evaluation (10 episodes' in md  # from the runs' args, not a constant
    assert "every 10000 steps" in md and "Tianshou's max" in md and "- cpu: fake" in md


def test_evals_on_grid_interpolates_seeds_on_the_union_of_their_steps():
    a = [[10, 1.0], [20, 2.0], [30, 3.0]]
    b = [[35, 30.0], [15, 10.0]]  # other steps, out of order
    grid, ys = bench.evals_on_grid([a, b, []])
    assert grid.tolist() == [10, 15, 20, 30, 35]
    np.testing.assert_allclose(ys[0], [1.0, 1.5, 2.0, 3.0, np.nan])
    np.testing.assert_allclose(ys[1], [np.nan, 10.0, 15.0, 25.0, 30.0])
    assert np.isnan(ys[2]).all()
    # seeds on the same grid come back unchanged
    grid, ys = bench.evals_on_grid([a, [[s, 2 * v] for s, v in a]])
    assert grid.tolist() == [10, 20, 30] and ys.tolist() == [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]
    assert bench.evals_on_grid([])[0].size == 0


def test_plot_evals_writes_a_png(tmp_path):
    steps = np.arange(1, 101) * 10_000
    evals = {"ppo_clip": [[[s, 3000 * s / 1e6 + k * 100] for s in steps] for k in range(3)],
             "vpg": [[[s, 800 * s / 1e6] for s in steps[::2]], []]}
    path = tmp_path / "curve_Hopper-v5_evals.png"
    bench.plot_evals(evals, "Hopper-v5", path, {"ppo_clip": 2300, "vpg": None})
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


@pytest.mark.parametrize("extra", [["--peers"], ["--algos", "dppo"], ["--algos", "ppo_clip", "dppo"]])
def test_main_mujoco_rejects_peers_and_dppo(tmp_path, capsys, extra):
    for name in ("ppo_clip.py", "dppo.py"):
        (tmp_path / name).write_text("")
    with pytest.raises(SystemExit) as e:
        bench.main(["--root", str(tmp_path), "--out", str(tmp_path / "out"), "--mujoco", *extra])
    assert e.value.code == 2
    assert ("--peers" if extra == ["--peers"] else "dppo is not part of the MuJoCo suite") in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


FAKE_MUJOCO_ALGO = textwrap.dedent('''
    from dataclasses import dataclass

    @dataclass
    class Args:
        env: str = "Hopper-v5"
        seed: int = 1
        eval_episodes: int = 7
        eval_every: int = 100

    def parse_args(argv):
        return Args(env=argv[argv.index("--env") + 1], seed=int(argv[argv.index("--seed") + 1]))

    def train(args):
        final = RETURN + args.seed
        evals = [[100 * (i + 1), final * (i + 1) / 5] for i in range(5)]
        curve = [[50 * (i + 1), 0.01 * (i + 1), final / 2] for i in range(10)]
        return dict(eval_mean_return=final, eval_std_return=0.0, global_step=500, wall_s=0.2, sps=2500.0,
                    curve=curve, evals=evals, best_eval_mean_return=final)
''')


def test_main_mujoco_end_to_end_with_fake_algos(tmp_path, capfd):
    repo, out = tmp_path / "repo", tmp_path / "out"
    repo.mkdir()
    (repo / "ppo_clip.py").write_text(FAKE_MUJOCO_ALGO.replace("RETURN", "5000.0"))
    (repo / "trpo.py").write_text(FAKE_MUJOCO_ALGO.replace("RETURN", "100.0"))
    (repo / "dppo.py").write_text("raise SystemExit('dppo must not run with --mujoco')")
    assert bench.main(["--root", str(repo), "--out", str(out), "--mujoco", "--seeds", "1", "2", "--workers", "2"]) == 1
    printed = capfd.readouterr().out
    assert "FAILED cells" in printed and "trpo on HalfCheetah-v5" in printed and "trpo on Hopper-v5" in printed
    results = json.loads((out / "results_mujoco.json").read_text())
    assert set(results) >= {"meta", "targets", "runs", "cells", "published"}
    assert sorted({(r["algo"], r["env"]) for r in results["runs"]}) == [
        ("ppo_clip", "HalfCheetah-v5"), ("ppo_clip", "Hopper-v5"), ("trpo", "HalfCheetah-v5"), ("trpo", "Hopper-v5")]
    assert all(r["process_s"] > 0 and r["error"] is None for r in results["runs"]) and len(results["runs"]) == 8
    c = next(c for c in results["cells"] if c["algo"] == "ppo_clip" and c["env"] == "Hopper-v5")
    assert c["eval_mean"] == pytest.approx(5001.5) and c["passed"] and c["eval_episodes"] == [7]
    assert results["targets"]["absolute"]["ppo_clip Hopper-v5"] == 2300
    assert "## Published (1 M steps unless noted)" in (out / "results_mujoco.md").read_text()
    for env in bench.MUJOCO_ENVS:
        for x in ("steps", "seconds", "evals"):
            assert (out / f"curve_{env}_{x}.png").read_bytes()[:4] == b"\x89PNG"
    assert not (out / "results.json").exists() and not (out / "results.md").exists()  # the classic files untouched
