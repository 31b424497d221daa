"""The runs' learning curves for benchmarks/run.py: the rolling mean of training returns, time to threshold, and the
plots curve_<env>_{steps,seconds,evals}.png (matplotlib, imported only when plotting).

A curve is [global_step, seconds since training began, return] per finished training episode; the evaluations are
[global_step, mean return] per periodic deterministic evaluation.
"""

import math
from pathlib import Path

import numpy as np

from benchmarks.peers import PEER_OF
from benchmarks.suites import ALGOS, WINDOW


def rolling_mean(returns, window: int = WINDOW) -> np.ndarray:
    """At every episode, the mean return of the last (up to) `window` episodes."""
    csum = np.concatenate([[0.0], np.cumsum(returns)])
    idx = np.arange(1, len(returns) + 1)
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def time_to_threshold(curve: list, threshold: float | None, window: int = WINDOW) -> tuple[float, float]:
    """(global_step, seconds) at the first finished episode where the mean of the last `window` episodes' returns
    reaches `threshold`; (inf, inf) if it never does, fewer than `window` episodes finished or there is none."""
    if threshold is None or len(curve) < window:
        return math.inf, math.inf
    c = np.asarray(curve, dtype=float)
    hit = np.flatnonzero(rolling_mean(c[:, 2], window)[window - 1 :] >= threshold)  # full windows only
    if hit.size == 0:
        return math.inf, math.inf
    i = hit[0] + window - 1
    return float(c[i, 0]), float(c[i, 1])


def curves_on_grid(curves: list[list], x: str, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Per seed the rolling mean of its training returns on `points` evenly spaced steps (x = "steps") or seconds up
    to the longest run's end -> (grid, ys[seed, point]), NaN outside the seed's own episodes."""
    col = 0 if x == "steps" else 1
    end = max((c[-1][col] for c in curves if c), default=0.0)
    grid = np.linspace(0.0, end, points) if end > 0 else np.zeros(0)
    ys = np.full((len(curves), len(grid)), np.nan)
    for i, c in enumerate(np.asarray(c, dtype=float) for c in curves):
        if len(c):
            ys[i] = np.interp(grid, c[:, col], rolling_mean(c[:, 2]), left=np.nan, right=np.nan)
    return grid, ys


def evals_on_grid(seed_evals: list[list]) -> tuple[np.ndarray, np.ndarray]:
    """Per seed [[global_step, eval_mean], …] -> (grid, ys[seed, point]): every seed linearly interpolated on the
    union of all seeds' evaluation steps (seeds need not share steps), NaN outside its first..last evaluation."""
    evs = [np.asarray(e, dtype=float).reshape(-1, 2) for e in seed_evals]
    evs = [e[np.argsort(e[:, 0], kind="stable")] for e in evs]
    grid = np.unique(np.concatenate([e[:, 0] for e in evs])) if evs else np.zeros(0)
    ys = np.full((len(evs), len(grid)), np.nan)
    for i, e in enumerate(evs):
        if len(e):
            ys[i] = np.interp(grid, e[:, 0], e[:, 1], left=np.nan, right=np.nan)
    return grid, ys


AXES = {  # x -> (x label, y label, end of the title)
    "steps": ("environment steps", f"episodic return (rolling mean of {WINDOW})", ""),
    "seconds": ("seconds since training began", f"episodic return (rolling mean of {WINDOW})", ""),
    "evals": ("environment steps", "deterministic evaluation: mean return", ", dashed = target"),
}


def plot(series: dict[str, list], env: str, x: str, path: Path, threshold=None, targets: dict | None = None) -> None:
    """Per name (an algo, or a peer: its match's colour, dotted) the mean over seeds (line) and min–max (band) of its
    seeds' training curves (x = "steps" or "seconds") or evaluations (x = "evals"); `threshold`: one black dashed
    line; `targets`: per name a dashed line in its colour."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure  # no pyplot: no backend or global state to manage

    fig = Figure(figsize=(8, 5))
    ax, colors = fig.subplots(), colormaps["tab10"].colors
    match = {peer: algo for algo, peer in PEER_OF.items()}
    for k, (name, seeds) in enumerate(series.items()):
        grid, ys = evals_on_grid(seeds) if x == "evals" else curves_on_grid(seeds, x)
        have = ~np.all(np.isnan(ys), axis=0)  # grid points where some seed has a value
        if not have.any():
            continue
        grid, ys, base = grid[have], ys[:, have], match.get(name, name)
        color = colors[ALGOS.index(base) if base in ALGOS else (len(ALGOS) + k) % len(colors)]
        label = f"{name} ({len(seeds)} seed{'s' * (len(seeds) > 1)})"
        ax.plot(grid, np.nanmean(ys, axis=0), ":" if name in match else "-", color=color, label=label)
        ax.fill_between(grid, np.nanmin(ys, axis=0), np.nanmax(ys, axis=0), color=color, alpha=0.2)
        if (targets or {}).get(name) is not None:
            ax.axhline(targets[name], color=color, linestyle="--", linewidth=1)
    if threshold is not None:
        ax.axhline(threshold, color="k", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.set(xlabel=AXES[x][0], ylabel=AXES[x][1], title=f"{env}: mean over seeds, band = min–max{AXES[x][2]}")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
