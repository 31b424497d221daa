"""Benchmark every algorithm file of this repository against fixed return thresholds.

    python benchmarks/run.py                    # every algo file × CartPole-v1, Pendulum-v1 × seeds 1 2 3
    python benchmarks/run.py --algos ppo_clip --envs CartPole-v1 --seeds 1 --workers 1
    python benchmarks/run.py --peers            # also SB3 PPO and sb3-contrib TRPO with RL-Zoo's settings
                                                # (pip install -r benchmarks/requirements-peers.txt first)
    python benchmarks/run.py --mujoco           # vpg, trpo, ppo_penalty, ppo_clip × HalfCheetah-v5, Hopper-v5
                                                # × seeds 1 2 3 (pip install -r requirements-mujoco.txt first)

What runs: the algorithm files among vpg, trpo, ppo_penalty, ppo_clip, dppo found in the repository root (a new
file is picked up with no edit here). Each run is its own fresh process (spawn; one torch thread), started in a
temporary folder (so `runs/` stays out of the repo) with its stdout captured, and does exactly
`args = parse_args(["--env", E, "--seed", S]); summary = train(args)`: the file's own defaults, no hidden tuning.
`--workers` such processes run at once. dppo.py runs afterwards, alone on the machine, as 2 ranks under
`torchrun --standalone --nproc-per-node 2 dppo.py --env E --seed S --summary-json PATH` (rank 0 writes the summary).

Definitions
- A run passes when its deterministic evaluation (summary["eval_mean_return"]) ≥ THRESHOLDS[env].
  A cell (algo × env) passes when every seed passes (a crashed run fails).
- KNOWN_SHORTFALLS is the only exception: a marked cell that fails is still shown failing ("known shortfall"),
  but does not make the exit code non-zero. Exit code 1 when any unmarked cell fails, 2 on bad flags.
- Time / steps to threshold of a run: the clock (seconds since train() began, summary["curve"][i][1]) / the
  global_step at the first finished training episode where the mean of the last 20 training episodes reaches the
  threshold (needs ≥ 20 finished episodes); ∞ if never. Cells report the median over seeds (∞ when most seeds
  never get there). SPS = summary["sps"] (training only). Ratio = our median seconds / the peer's.
- Learning curves: per seed the rolling mean of the last (up to) 20 episode returns, resampled on a common grid of
  environment steps (or of seconds); the line is the mean over seeds, the band their min–max.
- Start-up: wall time of `python -c "import MODULE"` in a fresh process, median of 3, reported apart.

Writes benchmarks/results/: results.json (every run: summary incl. curve, resolved Args, versions, git commit,
CPU, python), results.md (the table), curve_<env>_steps.png and curve_<env>_seconds.png.

MuJoCo suite (--mujoco): the same one fresh process per run doing only `parse_args(["--env", E, "--seed", S]);
train(args)`; the files' own ENV_DEFAULTS set the steps (1 M), normalisation and eval_every. No dppo, no peers.
- "final" = a run's deterministic evaluation after the last update (summary["eval_mean_return"], over the run's
  args.eval_episodes episodes, 20 unless the file's defaults say otherwise). "best" = the max over the evaluations
  every eval_every steps during training and the final one (summary["best_eval_mean_return"]; a max over ~20 noisy
  evaluations is biased upwards, like Tianshou's "max").
- A cell passes when the MEAN over seeds of the final evaluations ≥ MUJOCO_TARGETS[(algo, env)] and no seed crashed.
  ppo_penalty's target is PPO_PENALTY_RELATIVE × ppo_clip's mean on the same env; none if ppo_clip did not run.
  MUJOCO_KNOWN_SHORTFALLS works as KNOWN_SHORTFALLS. Exit code 1 when any unmarked cell with a target fails.
- Time: per cell the median over seeds of summary["wall_s"] (training only, evaluations excluded) and of the run's
  process time (rec["process_s"]: import, training, periodic and final evaluations, measured in execute()). The
  training median is compared with MUJOCO_SECONDS_TARGET (one 1 M-step run on one core) and reported, never gated.
- PUBLISHED: anchors from other libraries. CleanRL's numbers are final, Tianshou's max; Baselines / Spinning Up are
  read off their learning curves (average training-episode return), not a deterministic evaluation.
- Evaluation curves: per seed summary["evals"] ([global_step, eval mean] every eval_every steps) interpolated on the
  union of all seeds' evaluation steps; the line is the mean over seeds, the band their min–max.
Writes, next to the classic files without touching them: results_mujoco.json, results_mujoco.md and, per env,
curve_<env>_steps.png, curve_<env>_seconds.png, curve_<env>_evals.png.
"""

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ALGOS = ("vpg", "trpo", "ppo_penalty", "ppo_clip", "dppo")
ENVS = ("CartPole-v1", "Pendulum-v1")

# ---- pass criteria: the one place to change them --------------------------------------------------------------
THRESHOLDS = {"CartPole-v1": 475.0, "Pendulum-v1": -200.0}
KNOWN_SHORTFALLS: dict[tuple[str, str], str] = {
    # ("vpg", "Pendulum-v1"): "measured −xxx; see README",
}
WINDOW = 20  # episodes in the rolling mean of time-to-threshold and of the plotted curves

# ---- MuJoCo suite (--mujoco): targets on the MEAN over seeds of the final deterministic evaluation ---------------
MUJOCO_ALGOS = ("vpg", "trpo", "ppo_penalty", "ppo_clip")
MUJOCO_ENVS = ("HalfCheetah-v5", "Hopper-v5")
MUJOCO_TARGETS = {
    ("ppo_clip", "HalfCheetah-v5"): 3000, ("ppo_clip", "Hopper-v5"): 2300,
    ("trpo", "HalfCheetah-v5"): 1500, ("trpo", "Hopper-v5"): 2000,
    ("vpg", "HalfCheetah-v5"): 800, ("vpg", "Hopper-v5"): 800,
}
PPO_PENALTY_RELATIVE = 0.85  # ppo_penalty's target: this × ppo_clip's mean on the same env (same invocation)
MUJOCO_SECONDS_TARGET = 300  # one 1 M-step run on one core, median training seconds: reported, never gated
MUJOCO_KNOWN_SHORTFALLS: dict[tuple[str, str], str] = {
    # ("vpg", "Hopper-v5"): "measured xxx; see README",
}
# Published anchors (1 M steps unless noted), quoted as they are; only for the reader, never a pass criterion.
PUBLISHED = {
    ("ppo_clip", "HalfCheetah-v5"): "~1700 Baselines / ~1670 Spinning Up / 1442 ± 46 CleanRL (final) / "
                                    "5784 ± 1244 Tianshou (max)",
    ("ppo_clip", "Hopper-v5"): "~2400 Baselines / ~1850 Spinning Up / 2383 ± 272 CleanRL (final) / "
                               "2609 ± 701 Tianshou (max)",
    ("trpo", "HalfCheetah-v5"): "~1350 Baselines / ~850 Spinning Up TF / 4471 ± 805 Tianshou (max)",
    ("trpo", "Hopper-v5"): "~2200 Baselines / ~1200 Spinning Up TF / 2046 ± 1038 Tianshou (max)",
    ("vpg", "HalfCheetah-v5"): "~600 Spinning Up PyTorch (3 M steps)",
    ("vpg", "Hopper-v5"): "~800 Spinning Up PyTorch (3 M steps)",
    **{("ppo_penalty", e): "— (no published 1 M table; target: within 15 % of ppo_clip)" for e in MUJOCO_ENVS},
}

# ---- peers (--peers): RL-Zoo's tuned settings, copied from rl-baselines3-zoo hyperparams/ppo.yml (SB3 PPO) and
# hyperparams/trpo.yml (sb3-contrib TRPO), policy 'MlpPolicy', no normalisation. "lin_X" is RL-Zoo's
# linear_schedule(X): X · progress_remaining, decaying from X to 0 over training.
PEER_HYPERPARAMS = {
    ("sb3_ppo", "CartPole-v1"): dict(n_envs=8, n_timesteps=100_000, n_steps=32, batch_size=256, gae_lambda=0.8,
                                     gamma=0.98, n_epochs=20, ent_coef=0.0, learning_rate="lin_0.001",
                                     clip_range="lin_0.2"),
    ("sb3_ppo", "Pendulum-v1"): dict(n_envs=4, n_timesteps=100_000, n_steps=1024, gae_lambda=0.95, gamma=0.9,
                                     n_epochs=10, ent_coef=0.0, learning_rate=1e-3, clip_range=0.2, use_sde=True,
                                     sde_sample_freq=4),
    ("sb3_trpo", "CartPole-v1"): dict(n_envs=2, n_timesteps=100_000, n_steps=512, batch_size=512, cg_damping=1e-3,
                                      gae_lambda=0.98, gamma=0.99, learning_rate=1e-3, n_critic_updates=20),
    ("sb3_trpo", "Pendulum-v1"): dict(n_envs=2, n_timesteps=100_000, n_steps=1024, gamma=0.9, n_critic_updates=15,
                                      use_sde=True, sde_sample_freq=4),
}
PEER_OF = {"ppo_clip": "sb3_ppo", "trpo": "sb3_trpo"}  # our algo -> the peer its time ratio is taken against
EVAL_EPISODES, EVAL_SEED_OFFSET = 20, 1_000_000  # peers' evaluation: as our files do, seeds disjoint from training


# =================================================================================================================
# Pure functions: discovery, time to threshold, aggregation, exit code, table, plots
# =================================================================================================================
def discover_algos(root: Path = ROOT) -> list[str]:
    """The algorithm files present in `root`, in ALGOS order."""
    return [a for a in ALGOS if (Path(root) / f"{a}.py").is_file()]


def time_to_threshold(curve: list, threshold: float, window: int = WINDOW) -> tuple[float, float]:
    """(global_step, seconds) at the first finished episode where the mean of the last `window` episodes'
    returns reaches `threshold`; (inf, inf) if it never does or fewer than `window` episodes finished."""
    if len(curve) < window:
        return math.inf, math.inf
    c = np.asarray(curve, dtype=float)
    csum = np.concatenate([[0.0], np.cumsum(c[:, 2])])
    means = (csum[window:] - csum[:-window]) / window  # means[j] = mean of episodes j .. j+window-1
    hit = np.flatnonzero(means >= threshold)
    if hit.size == 0:
        return math.inf, math.inf
    i = hit[0] + window - 1
    return float(c[i, 0]), float(c[i, 1])


def _median(xs) -> float:
    return float(np.median(xs)) if len(xs) else math.nan


def aggregate(runs: list[dict], thresholds: dict = THRESHOLDS, shortfalls: dict = KNOWN_SHORTFALLS) -> list[dict]:
    """One row per (algo, env) cell from run records {kind, algo, env, seed, summary, error}."""
    cells = {}
    for r in runs:
        cells.setdefault((r["algo"], r["env"]), []).append(r)
    rows = []
    for (algo, env), rs in cells.items():
        rs, thr = sorted(rs, key=lambda r: r["seed"]), thresholds.get(env)
        evals = [r["summary"]["eval_mean_return"] if r.get("summary") else math.nan for r in rs]
        ttt = [time_to_threshold(r["summary"].get("curve", []), thr) if r.get("summary") and thr is not None
               else (math.inf, math.inf) for r in rs]
        ok = [e for e in evals if not math.isnan(e)]
        passed = thr is not None and all(e >= thr for e in evals)  # nan >= thr is False: a crash fails
        kind = rs[0]["kind"]
        row = dict(algo=algo, env=env, kind=kind, threshold=thr, seeds=[r["seed"] for r in rs], evals=evals,
                   eval_mean=float(np.mean(ok)) if ok else math.nan, eval_std=float(np.std(ok)) if ok else math.nan,
                   eval_min=min(ok) if ok else math.nan,
                   steps_to_threshold=_median([t[0] for t in ttt]), seconds_to_threshold=_median([t[1] for t in ttt]),
                   sps=_median([r["summary"]["sps"] for r in rs if r.get("summary")]),
                   errors=[r["seed"] for r in rs if r.get("error")], passed=passed,
                   known_shortfall=shortfalls.get((algo, env)), counts=kind != "peer" and thr is not None)
        if thr is None:
            row["status"] = "no threshold"
        elif passed:
            row["status"] = "pass" + (" (marked known shortfall: remove the mark?)" if row["known_shortfall"] else "")
        elif kind == "peer":
            row["status"] = "below threshold (peer, not gated)"
        else:
            row["status"] = "FAIL (known shortfall)" if row["known_shortfall"] else "FAIL"
            row["status"] += f" (crashed: seeds {row['errors']})" if row["errors"] else ""
        rows.append(row)
    by_key = {(r["algo"], r["env"]): r for r in rows}
    for r in rows:
        peer = by_key.get((PEER_OF.get(r["algo"]), r["env"]))
        r["peer_time_ratio"] = (r["seconds_to_threshold"] / peer["seconds_to_threshold"]
                                if peer and math.isfinite(r["seconds_to_threshold"])
                                and math.isfinite(peer["seconds_to_threshold"]) else math.nan)
    order = {a: i for i, a in enumerate(ALGOS + ("sb3_ppo", "sb3_trpo"))}
    return sorted(rows, key=lambda r: (r["env"], order.get(r["algo"], 99), r["algo"]))


def exit_code(cells: list[dict]) -> int:
    """1 when a gated cell fails without a KNOWN_SHORTFALLS mark, else 0."""
    return int(any(c["counts"] and not c["passed"] and not c["known_shortfall"] for c in cells))


def fmt(x, spec: str = ".1f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return "∞" if math.isinf(x) else format(x, spec)


def failure_report(cells: list[dict], describe=None) -> str:
    """Readable lines naming every failing gated cell and its numbers; describe(cell, per_seed) words the
    middle of a line (default: the per-seed evals against the threshold)."""
    describe = describe or (lambda c, per_seed: f"eval {per_seed}; threshold {fmt(c['threshold'])}")
    lines = []
    for c in cells:
        if c["counts"] and not c["passed"]:
            per_seed = ", ".join(f"seed {s}: {fmt(e)}" for s, e in zip(c["seeds"], c["evals"]))
            mark = f" [known shortfall: {c['known_shortfall']}]" if c["known_shortfall"] else ""
            crash = f" (crashed: seeds {c['errors']})" if c["errors"] else ""
            lines.append(f"{c['algo']} on {c['env']}: {describe(c, per_seed)}{crash}{mark}")
    return "\n".join(lines)


def table(cells: list[dict]) -> str:
    head = ("| algo | env | seeds | eval return mean ± std | min | median steps to thr. | median s to thr. "
            "| median SPS | s-to-thr. ratio vs peer | status |\n|" + "---|" * 10)
    return "\n".join([head] + [
        f"| {c['algo']} | {c['env']} | {len(c['seeds'])} | {fmt(c['eval_mean'])} ± {fmt(c['eval_std'])} "
        f"| {fmt(c['eval_min'])} | {fmt(c['steps_to_threshold'], ',.0f')} | {fmt(c['seconds_to_threshold'])} "
        f"| {fmt(c['sps'], ',.0f')} | {fmt(c['peer_time_ratio'], '.2f')} | {c['status']} |" for c in cells])


def markdown(cells: list[dict], startup: dict, meta: dict) -> str:
    failures = failure_report(cells)
    return "\n".join([
        "# Benchmark results", "",
        f"Thresholds (deterministic eval mean over 20 episodes, every seed): {THRESHOLDS}. Eval return: mean ± std "
        "and min over seeds of each run's eval mean; medians are over seeds. "
        f"Time/steps to threshold: first episode where the mean of the last {WINDOW} training episodes reaches it "
        "(∞: never). Ratio: our median seconds to threshold / the peer's (SB3 PPO for ppo_clip, sb3-contrib TRPO "
        "for trpo). Definitions: docstring of benchmarks/run.py.", "",
        table(cells), "",
        "## Failing cells", "", failures or "none", "",
        "## Start-up (`python -c \"import MODULE\"`, median of 3)", "",
        "| module | seconds |\n|---|---|", *[f"| {m} | {fmt(s, '.2f')} |" for m, s in startup.items()], "",
        "## Machine", "", *[f"- {k}: {v}" for k, v in meta.items() if k != "versions"],
        f"- versions: {meta.get('versions')}", ""])


def smoothed_on_grid(curve: list, grid: np.ndarray, x: str) -> np.ndarray:
    """Rolling mean of the last (up to) WINDOW returns, interpolated on `grid` (steps or seconds); NaN outside."""
    if not curve:
        return np.full(len(grid), np.nan)
    c = np.asarray(curve, dtype=float)
    csum = np.concatenate([[0.0], np.cumsum(c[:, 2])])
    idx = np.arange(1, len(c) + 1)
    lo = np.maximum(idx - WINDOW, 0)
    smooth = (csum[idx] - csum[lo]) / (idx - lo)
    xs = c[:, 0 if x == "steps" else 1]
    return np.interp(grid, xs, smooth, left=np.nan, right=np.nan)


def plot_env(curves: dict[str, list], env: str, x: str, path: Path, threshold=None, points: int = 200) -> None:
    """One figure: per name, the mean over seeds (line) and min–max (band) of the smoothed curves vs `x`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.get_cmap("tab10").colors
    match = {peer: algo for algo, peer in PEER_OF.items()}  # a peer: its match's colour, dotted
    for k, (name, seeds) in enumerate(curves.items()):
        col = 0 if x == "steps" else 1
        end = max((c[-1][col] for c in seeds if c), default=0.0)
        if end <= 0:
            continue
        grid = np.linspace(0.0, end, points)
        ys = np.array([smoothed_on_grid(c, grid, x) for c in seeds])
        have = ~np.all(np.isnan(ys), axis=0)
        g, ys = grid[have], ys[:, have]
        base = match.get(name, name)
        color = colors[ALGOS.index(base) if base in ALGOS else (len(ALGOS) + k) % len(colors)]
        label = f"{name} ({len(seeds)} seed{'s' * (len(seeds) > 1)})"
        ax.plot(g, np.nanmean(ys, axis=0), ":" if name in match else "-", color=color, label=label)
        ax.fill_between(g, np.nanmin(ys, axis=0), np.nanmax(ys, axis=0), color=color, alpha=0.2)
    if threshold is not None:
        ax.axhline(threshold, color="k", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_xlabel("environment steps" if x == "steps" else "seconds since training began")
    ax.set_ylabel(f"episodic return (rolling mean of {WINDOW})")
    ax.set_title(f"{env}: mean over seeds, band = min–max")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- MuJoCo suite: aggregation, exit code, table, evaluation curves -------------------------------------------
def _mean_std(xs) -> tuple[float, float]:
    ok = [x for x in xs if not math.isnan(x)]
    return (float(np.mean(ok)), float(np.std(ok))) if ok else (math.nan, math.nan)


def mujoco_cells(runs: list[dict], targets: dict = MUJOCO_TARGETS, shortfalls: dict = MUJOCO_KNOWN_SHORTFALLS,
                 relative: float = PPO_PENALTY_RELATIVE, seconds_target: float = MUJOCO_SECONDS_TARGET) -> list[dict]:
    """One row per (algo, env) cell from run records {kind, algo, env, seed, args, summary, error, process_s}.
    A cell passes when no seed crashed and the mean over seeds of the final evaluations reaches its target:
    targets[(algo, env)], else for ppo_penalty `relative` × ppo_clip's mean on that env (no target when ppo_clip
    has no result there). The median training time is compared with `seconds_target`, which never decides a pass."""
    groups = {}
    for r in runs:
        groups.setdefault((r["algo"], r["env"]), []).append(r)
    rows = {}
    for (algo, env), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        done = [r for r in rs if r.get("summary")]
        finals = [r["summary"]["eval_mean_return"] if r.get("summary") else math.nan for r in rs]
        bests = [r["summary"]["best_eval_mean_return"] if r.get("summary") else math.nan for r in rs]
        (mean, std), (best_mean, best_std) = _mean_std(finals), _mean_std(bests)
        wall = _median([r["summary"]["wall_s"] for r in done])
        rows[(algo, env)] = dict(
            algo=algo, env=env, kind=rs[0]["kind"], seeds=[r["seed"] for r in rs], evals=finals, eval_mean=mean,
            eval_std=std, best_evals=bests, best_mean=best_mean, best_std=best_std,
            sps=_median([r["summary"]["sps"] for r in done]), wall_s=wall,
            process_s=_median([r["process_s"] for r in done if r.get("process_s") is not None]),
            seconds_target=seconds_target, time_ok=None if math.isnan(wall) else wall <= seconds_target,
            eval_episodes=sorted({(r.get("args") or {}).get("eval_episodes") for r in rs} - {None}),
            eval_every=sorted({(r.get("args") or {}).get("eval_every") for r in rs} - {None}),
            errors=[r["seed"] for r in rs if r.get("error")], known_shortfall=shortfalls.get((algo, env)))
    for (algo, env), c in rows.items():
        c.update(target=targets.get((algo, env)), target_ref=None, target_factor=None)
        if c["target"] is None and algo == "ppo_penalty":
            clip = rows.get(("ppo_clip", env))
            if clip and not math.isnan(clip["eval_mean"]):  # ppo_clip ran here and at least one seed finished
                c.update(target=relative * clip["eval_mean"], target_ref=clip["eval_mean"], target_factor=relative)
        c["counts"] = c["target"] is not None  # (the MuJoCo suite has no peers)
        c["passed"] = c["target"] is not None and not c["errors"] and c["eval_mean"] >= c["target"]
        if c["target"] is None:
            c["status"] = "no target"
        elif c["passed"]:
            c["status"] = "pass" + (" (marked known shortfall: remove the mark?)" if c["known_shortfall"] else "")
        else:
            c["status"] = "FAIL (known shortfall)" if c["known_shortfall"] else "FAIL"
        c["status"] += f" (crashed: seeds {c['errors']})" if c["errors"] else ""
    order = {a: i for i, a in enumerate(ALGOS)}
    return sorted(rows.values(), key=lambda r: (r["env"], order.get(r["algo"], 99), r["algo"]))


def mujoco_exit_code(cells: list[dict]) -> int:
    """1 when a cell with a target fails without a MUJOCO_KNOWN_SHORTFALLS mark, else 0. Time is never looked at."""
    return int(any(c["counts"] and not c["passed"] and not c["known_shortfall"] for c in cells))


def mujoco_target_text(c: dict) -> str:
    if c["target"] is None:
        return "no target"
    if c["target_ref"] is not None:
        return f"≥ {c['target_factor']:g} × ppo_clip's {fmt(c['target_ref'])} = {fmt(c['target'])}"
    return f"≥ {c['target']:g}"


def mujoco_failure_report(cells: list[dict]) -> str:
    return failure_report(cells, lambda c, per_seed: f"mean {fmt(c['eval_mean'])} over seeds ({per_seed}); "
                                                     f"target {mujoco_target_text(c)}")


def mujoco_table(cells: list[dict]) -> str:
    def seconds(c):  # the training median and how it compares with the (ungated) time target
        if c["time_ok"] is None:
            return "—"
        return f"{fmt(c['wall_s'])} ({'≤' if c['time_ok'] else '>'} {c['seconds_target']:g})"

    head = ("| algo | env | seeds | final eval mean ± std | per-seed final | best eval mean ± std | target "
            "| median SPS | median training s | median process s | status |\n|" + "---|" * 11)
    return "\n".join([head] + [
        f"| {c['algo']} | {c['env']} | {len(c['seeds'])} | {fmt(c['eval_mean'])} ± {fmt(c['eval_std'])} "
        f"| {', '.join(fmt(e) for e in c['evals'])} | {fmt(c['best_mean'])} ± {fmt(c['best_std'])} "
        f"| {mujoco_target_text(c)} | {fmt(c['sps'], ',.0f')} | {seconds(c)} | {fmt(c['process_s'])} "
        f"| {c['status']} |" for c in cells])


def _per_algo(cells: list[dict], key: str, default: str) -> str:
    """'20' when every run used the same args[key], else 'vpg 10; ppo_clip 20, 25' (`default` when none says)."""
    per = {}
    for c in cells:
        per.setdefault(c["algo"], set()).update(c[key])
    per = {a: ", ".join(map(str, sorted(v))) for a, v in per.items() if v}
    values = set(per.values())
    if not values:
        return default
    return values.pop() if len(values) == 1 else "; ".join(f"{a} {v}" for a, v in per.items())


def mujoco_markdown(cells: list[dict], meta: dict, published: dict = PUBLISHED) -> str:
    failures = mujoco_failure_report(cells)
    episodes, every = _per_algo(cells, "eval_episodes", "20"), _per_algo(cells, "eval_every", "eval_every")
    order = sorted(published, key=lambda k: (k[1], ALGOS.index(k[0]) if k[0] in ALGOS else 99, k[0]))  # as cells
    return "\n".join([
        "# MuJoCo benchmark results", "",
        "Pass: the mean over seeds of the final evaluations ≥ the target (MUJOCO_TARGETS; ppo_penalty: "
        f"{PPO_PENALTY_RELATIVE:g} × ppo_clip's mean on the same env, no target without ppo_clip), no seed crashed. "
        "Mean ± std over seeds; medians over seeds. Median training s: summary wall time without the evaluations, "
        f"compared with {MUJOCO_SECONDS_TARGET:g} s (one 1 M-step run on one core; reported, never gated). "
        "Median process s: the whole run (import, training, periodic and final evaluations). "
        "Definitions: docstring of benchmarks/run.py.", "",
        mujoco_table(cells), "",
        "## Failing cells", "", failures or "none", "",
        "## Published (1 M steps unless noted)", "",
        "| algo | env | published |\n|---|---|---|",
        *[f"| {algo} | {env} | {published[(algo, env)]} |" for algo, env in order], "",
        "## Definitions", "",
        f'"final" = deterministic evaluation ({episodes} episodes, from the runs\' args.eval_episodes) after the '
        f'last update. "best" = the maximum over the evaluations every {every} steps during training and the '
        "final one (a max over ~20 noisy evaluations is biased upwards, like Tianshou's \"max\" numbers). "
        "CleanRL's numbers are final, Tianshou's max; Baselines / Spinning Up are read off their learning curves "
        "(average training-episode return), not a deterministic evaluation.", "",
        "## Machine", "", *[f"- {k}: {v}" for k, v in meta.items() if k != "versions"],
        f"- versions: {meta.get('versions')}", ""])


def evals_on_grid(seed_evals: list[list]) -> tuple[np.ndarray, np.ndarray]:
    """Per seed [[global_step, eval_mean], …] -> (grid, ys[seed, point]): every seed linearly interpolated on the
    union of all seeds' evaluation steps (exact where a seed evaluated; seeds need not share steps), NaN outside
    the seed's own first..last evaluation."""
    evs = [np.asarray(e, dtype=float).reshape(-1, 2) for e in seed_evals]
    evs = [e[np.argsort(e[:, 0], kind="stable")] for e in evs]
    grid = np.unique(np.concatenate([e[:, 0] for e in evs])) if evs else np.zeros(0)
    ys = np.array([np.interp(grid, e[:, 0], e[:, 1], left=np.nan, right=np.nan) if len(e)
                   else np.full(len(grid), np.nan) for e in evs]).reshape(len(evs), len(grid))
    return grid, ys


def plot_evals(evals: dict[str, list], env: str, path: Path, targets: dict | None = None) -> None:
    """Per algo: the mean over seeds (line) and min–max (band) of the periodic deterministic evaluations vs steps,
    with the algo's target (if any) dashed in the same colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.get_cmap("tab10").colors
    for k, (name, seeds) in enumerate(evals.items()):
        grid, ys = evals_on_grid(seeds)
        if not len(grid):
            continue
        color = colors[ALGOS.index(name) if name in ALGOS else (len(ALGOS) + k) % len(colors)]
        ax.plot(grid, np.nanmean(ys, axis=0), color=color, label=f"{name} ({len(seeds)} seed{'s' * (len(seeds) > 1)})")
        ax.fill_between(grid, np.nanmin(ys, axis=0), np.nanmax(ys, axis=0), color=color, alpha=0.2)
        if (targets or {}).get(name) is not None:
            ax.axhline(targets[name], color=color, linestyle="--", linewidth=1)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("deterministic evaluation: mean return")
    ax.set_title(f"{env}: mean over seeds, band = min–max, dashed = target")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# =================================================================================================================
# Running: one fresh process per run
# =================================================================================================================
def _train_ours(algo: str, env: str, seed: int, root: str) -> tuple[dict, dict]:
    sys.path.insert(0, root)
    import importlib

    mod = importlib.import_module(algo)
    args = mod.parse_args(["--env", env, "--seed", str(seed)])
    return asdict(args), mod.train(args)


def _train_peer(name: str, env: str, seed: int, root: str) -> tuple[dict, dict]:
    """SB3 PPO / sb3-contrib TRPO with RL-Zoo's settings, measured as our files measure themselves."""
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    if name == "sb3_ppo":
        from stable_baselines3 import PPO as Algo
    else:
        from sb3_contrib import TRPO as Algo
    torch.set_num_threads(1)
    hp = dict(PEER_HYPERPARAMS[(name, env)])
    n_envs, total = hp.pop("n_envs"), int(hp.pop("n_timesteps"))
    kwargs = {k: (lambda p, x=float(v[4:]): p * x) if isinstance(v, str) and v.startswith("lin_") else v
              for k, v in hp.items()}

    class Recorder(BaseCallback):  # [global_step, seconds since learn() began, return] per finished episode
        def _on_training_start(self):
            self.t0, self.curve = time.perf_counter(), []

        def _on_step(self):
            for info in self.locals["infos"]:
                if "episode" in info:  # set by the Monitor wrapper make_vec_env adds
                    self.curve.append([self.num_timesteps, time.perf_counter() - self.t0, float(info["episode"]["r"])])
            return True

    model = Algo("MlpPolicy", make_vec_env(env, n_envs=n_envs, seed=seed), seed=seed, device="cpu", **kwargs)
    rec, t0 = Recorder(), time.perf_counter()
    model.learn(total_timesteps=total, callback=rec)
    wall = time.perf_counter() - t0
    eval_env = make_vec_env(env, n_envs=1, seed=seed + EVAL_SEED_OFFSET)
    returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=EVAL_EPISODES, deterministic=True,
                                 return_episode_rewards=True)
    mean = float(np.mean(returns))
    summary = dict(algo=name, env=env, seed=seed, eval_mean_return=mean, eval_std_return=float(np.std(returns)),
                   eval_returns=[float(r) for r in returns], global_step=int(model.num_timesteps), wall_s=wall,
                   sps=model.num_timesteps / wall, curve=rec.curve, evals=[], best_eval_mean_return=mean)
    args = dict(PEER_HYPERPARAMS[(name, env)], algo=Algo.__name__, policy="MlpPolicy", env=env, seed=seed)
    return args, summary


def execute(kind: str, name: str, env: str, seed: int, root: str = str(ROOT)) -> dict:
    """Runs in its own spawned process: cwd in a temp folder, stdout/stderr captured, never raises. process_s: wall
    seconds of the whole run (import, env creation, training, periodic and final evaluations; until a crash)."""
    t0 = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix=f"bench_{name}_{env}_{seed}_")
    os.chdir(tmp)
    rec = dict(kind=kind, algo=name, env=env, seed=seed, args=None, summary=None, error=None)
    log_path = os.path.join(tmp, "stdout.log")
    with open(log_path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            rec["args"], rec["summary"] = (_train_ours if kind == "ours" else _train_peer)(name, env, seed, root)
        except BaseException:
            rec["error"] = traceback.format_exc()
        rec["process_s"] = time.perf_counter() - t0
        sys.stdout.flush()
        sys.stderr.flush()
    if rec["error"]:
        rec["log_tail"] = Path(log_path).read_text(errors="replace").splitlines()[-30:]
    os.chdir("/")
    shutil.rmtree(tmp, ignore_errors=True)
    return rec


def run_dppo(env: str, seed: int, root: Path = ROOT) -> dict:
    """dppo: 2 ranks under torchrun, alone on the machine; rank 0 writes its summary to --summary-json."""
    rec = dict(kind="ours", algo="dppo", env=env, seed=seed, args=None, summary=None, error=None)
    argv = ["--env", env, "--seed", str(seed)]
    tmp = tempfile.mkdtemp(prefix=f"bench_dppo_{env}_{seed}_")
    out = os.path.join(tmp, "summary.json")
    resolve = subprocess.run([sys.executable, "-c", "import sys, json, dataclasses, dppo; print(json.dumps("
                              "dataclasses.asdict(dppo.parse_args(sys.argv[1:])), default=str))", *argv],
                             cwd=root, capture_output=True, text=True, env=_child_env())
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(root / "dppo.py"), *argv, "--summary-json", out],
                          cwd=tmp, capture_output=True, text=True, env=_child_env())
    try:
        rec["args"] = json.loads(resolve.stdout.strip().splitlines()[-1])
        with open(out) as f:
            rec["summary"] = json.load(f)
    except Exception as e:
        rec["error"] = f"torchrun exited {proc.returncode}, no summary read: {type(e).__name__}: {e}"
        lines = (resolve.stderr + proc.stdout + proc.stderr).splitlines()
        rec["log_tail"] = lines if len(lines) <= 80 else lines[:40] + ["[…]"] + lines[-40:]
    shutil.rmtree(tmp, ignore_errors=True)
    return rec


def _child_env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def measure_startup(module: str, root: Path = ROOT, repeats: int = 3) -> float:
    """Median wall seconds of `python -c "import module"` in a fresh process, from the repo root."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=root, env=_child_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0 if proc.returncode == 0 else math.nan)  # nan: the import fails
    return _median(times)


def machine_info(root: Path = ROOT) -> dict:
    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    git = rev.stdout.strip() if rev.returncode == 0 else ""
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout.strip()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown"
    return dict(git_commit=(git or "no commit") + (" (work tree modified)" if dirty else ""), cpu=cpu,
                cpu_count=os.cpu_count(), python=platform.python_version(), date=time.strftime("%Y-%m-%d %H:%M:%S"),
                versions={p: version(p) for p in ("torch", "gymnasium", "mujoco", "numpy", "tyro", "stable-baselines3",
                                                  "sb3-contrib")})


def _json_safe(x):
    """inf / nan -> None (JSON has neither): None in a to-threshold field means 'never reached'."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", nargs="+", default=None, help=f"default: the files present among {ALGOS}")
    p.add_argument("--envs", nargs="+", default=None, help=f"default: {ENVS}; with --mujoco {MUJOCO_ENVS}")
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="runs at once (each one process, 1 thread)")
    p.add_argument("--peers", action="store_true", help="also SB3 PPO and sb3-contrib TRPO with RL-Zoo settings")
    p.add_argument("--mujoco", action="store_true", help=f"the MuJoCo suite: {MUJOCO_ALGOS} × {MUJOCO_ENVS}, "
                   "judged on the mean over seeds; writes results_mujoco.* (no dppo, no peers)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--root", type=Path, default=ROOT, help="folder holding the algorithm files (tests use a fake one)")
    a = p.parse_args(argv)
    root = a.root.resolve()
    present = discover_algos(root)
    a.envs = a.envs or list(MUJOCO_ENVS if a.mujoco else ENVS)
    if a.mujoco:
        if a.peers:
            p.error("--mujoco has no peers: drop --peers")
        if "dppo" in (a.algos or []):
            p.error(f"dppo is not part of the MuJoCo suite ({', '.join(MUJOCO_ALGOS)})")
        present = [x for x in present if x in MUJOCO_ALGOS]
    algos = a.algos or present
    missing = [x for x in algos if x not in present]
    if missing or not algos:
        p.error(f"no algorithm file for {missing or 'any algo'} in {root} (present: {present})")
    if a.peers:
        try:
            import sb3_contrib, stable_baselines3  # noqa: F401  (lazy: only with --peers)
        except ImportError:
            p.error("--peers needs: pip install -r benchmarks/requirements-peers.txt")
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # inherited by the spawned runs

    startup = {"python alone (import sys)": measure_startup("sys")}
    startup.update({m: measure_startup(m, root) for m in algos})
    if a.peers:
        startup.update({m: measure_startup(m, root) for m in ("stable_baselines3", "sb3_contrib")})

    jobs = [("ours", x, e, s) for x in algos if x != "dppo" for e in a.envs for s in a.seeds]
    if a.peers:
        jobs += [("peer", x, e, s) for x in ("sb3_ppo", "sb3_trpo") for e in a.envs if (x, e) in PEER_HYPERPARAMS
                 for s in a.seeds]
        skipped = [e for e in a.envs if ("sb3_ppo", e) not in PEER_HYPERPARAMS]
        if skipped:
            print(f"peers: no RL-Zoo settings recorded here for {skipped}; no peer runs there", flush=True)
    runs, total, t0 = [], len(jobs) + ("dppo" in algos) * len(a.envs) * len(a.seeds), time.perf_counter()

    def done(r):
        runs.append(r)
        res = "CRASHED" if r["error"] else f"eval {r['summary']['eval_mean_return']:.1f}"
        print(f"[{len(runs)}/{total}] {r['algo']} {r['env']} seed {r['seed']}: {res} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)

    with ProcessPoolExecutor(max_workers=max(1, a.workers), mp_context=get_context("spawn"),
                             max_tasks_per_child=1) as pool:
        futures = {pool.submit(execute, *j, str(root)): j for j in jobs}
        for fut in as_completed(futures):
            try:
                done(fut.result())
            except Exception:  # the worker process itself died (e.g. killed, out of memory)
                kind, name, env, seed = futures[fut]
                done(dict(kind=kind, algo=name, env=env, seed=seed, args=None, summary=None,
                          error=traceback.format_exc()))
    if "dppo" in algos:  # after the pool: alone on the machine
        for e in a.envs:
            for s in a.seeds:
                done(run_dppo(e, s, root))

    if a.mujoco:
        return report_mujoco(runs, a.envs, a.out, startup, machine_info(root))
    for r in runs:  # process_s is reported by the MuJoCo suite only: results.json keeps its former fields
        r.pop("process_s", None)
    cells = aggregate(runs)
    meta = machine_info(root)
    a.out.mkdir(parents=True, exist_ok=True)
    for r in runs:
        if r["summary"] and r["env"] in THRESHOLDS:
            steps, secs = time_to_threshold(r["summary"]["curve"], THRESHOLDS[r["env"]])
            r.update(steps_to_threshold=steps, seconds_to_threshold=secs)
    runs.sort(key=lambda r: (r["env"], r["algo"], r["seed"]))
    with open(a.out / "results.json", "w") as f:
        json.dump(_json_safe(dict(meta=meta, thresholds=THRESHOLDS,
                                  known_shortfalls={f"{k[0]} {k[1]}": v for k, v in KNOWN_SHORTFALLS.items()},
                                  startup_s=startup, cells=cells, runs=runs)), f, allow_nan=False)
    (a.out / "results.md").write_text(markdown(cells, startup, meta))
    for env in a.envs:
        curves = {}
        for r in runs:
            if r["env"] == env and r["summary"]:
                curves.setdefault(r["algo"], []).append(r["summary"]["curve"])
        for x in ("steps", "seconds"):
            plot_env(curves, env, x, a.out / f"curve_{env}_{x}.png", THRESHOLDS.get(env))
    for r in runs:
        if r["error"]:
            tail = "\n".join(r.get("log_tail", []))
            print(f"\n{r['algo']} {r['env']} seed {r['seed']} crashed:\n{r['error']}\n{tail}")
    print("\n" + table(cells) + "\nstart-up (s): " + ", ".join(f"{m} {fmt(t, '.2f')}" for m, t in startup.items()))
    code = exit_code(cells)
    report = failure_report(cells)
    print(("FAILED cells:\n" + report) if code else ("all gated cells pass" + (
        " (known shortfalls:\n" + report + ")" if report else "")))
    print(f"wrote {a.out}/results.json, results.md, curve_*.png", flush=True)
    return code


def report_mujoco(runs: list[dict], envs: list[str], out: Path, startup: dict, meta: dict) -> int:
    """--mujoco: results_mujoco.json / .md and the curves of each env; returns the exit code."""
    cells = mujoco_cells(runs)
    out.mkdir(parents=True, exist_ok=True)
    runs.sort(key=lambda r: (r["env"], r["algo"], r["seed"]))
    targets = dict(absolute={f"{k[0]} {k[1]}": v for k, v in MUJOCO_TARGETS.items()},
                   ppo_penalty_relative_to_ppo_clip=PPO_PENALTY_RELATIVE, seconds_target=MUJOCO_SECONDS_TARGET,
                   on="mean over seeds of summary['eval_mean_return']; the seconds target is never gated")
    with open(out / "results_mujoco.json", "w") as f:
        json.dump(_json_safe(dict(meta=meta, targets=targets,
                                  known_shortfalls={f"{k[0]} {k[1]}": v for k, v in MUJOCO_KNOWN_SHORTFALLS.items()},
                                  published={f"{k[0]} {k[1]}": v for k, v in PUBLISHED.items()},
                                  startup_s=startup, cells=cells, runs=runs)), f, allow_nan=False)
    (out / "results_mujoco.md").write_text(mujoco_markdown(cells, meta))
    for env in envs:
        curves, evals = {}, {}
        for r in runs:
            if r["env"] == env and r["summary"]:
                curves.setdefault(r["algo"], []).append(r["summary"]["curve"])
                evals.setdefault(r["algo"], []).append(r["summary"].get("evals") or [])
        for x in ("steps", "seconds"):
            plot_env(curves, env, x, out / f"curve_{env}_{x}.png")
        plot_evals(evals, env, out / f"curve_{env}_evals.png",
                   {c["algo"]: c["target"] for c in cells if c["env"] == env})
    for r in runs:
        if r["error"]:
            tail = "\n".join(r.get("log_tail", []))
            print(f"\n{r['algo']} {r['env']} seed {r['seed']} crashed:\n{r['error']}\n{tail}")
    print("\n" + mujoco_table(cells))
    code, report = mujoco_exit_code(cells), mujoco_failure_report(cells)
    print(("FAILED cells:\n" + report) if code else ("all cells with a target pass" + (
        " (known shortfalls:\n" + report + ")" if report else "")))
    print(f"wrote {out}/results_mujoco.json, results_mujoco.md, curve_*_{{steps,seconds,evals}}.png", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
