"""The runs' learning curves for benchmarks/run.py: the rolling mean of training returns, time to threshold, and the
plots curve_<env>_{steps,seconds,evals}.png (matplotlib, imported only when plotting).

A run's curve comes in one of two forms, and every function here takes either:

- full: what train() returns, [global_step, seconds since training began, return] per finished training episode (a
  list): runs just finished, <stem>.partial.jsonl, results files written before the slim form.
- slim (slim_curves): what the results files keep, a dict holding the rolling mean of the last WINDOW returns, with
  its episode, step and seconds, at only the episodes the tables and plots read, so that both come out exactly as
  from the full curve. Time to threshold is read at the first full window whose mean reaches the threshold: such an
  episode sets a new high of the full-window means, and every one that does is kept. A plot interpolates each run on
  GRID_POINTS evenly spaced steps or seconds: the two episodes around each point are kept, for the grid of the runs
  slimmed together (one algo on one env). A 200 k-step Blackjack run of some 135 000 episodes keeps about 800. Should
  a later run lengthen that grid, the plot interpolates between kept points instead: still finer than the plot.

The evaluations are [global_step, mean return] per periodic deterministic evaluation, kept as they are.
"""

import io
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


def rolling_points(curve, window: int = WINDOW) -> dict:
    """A curve in either form -> arrays "episode" (its index among the run's finished episodes), "step", "seconds",
    "mean" (the rolling mean of the last `window` returns at that episode), one entry per point the curve holds (per
    episode when full), and "episodes": how many episodes the run finished."""
    if isinstance(curve, dict):
        if curve["window"] != window:
            raise ValueError(f"a slim curve holds rolling means of {curve['window']} episodes, not {window}")
        cols = {k: np.asarray(curve[k], dtype=float) for k in ("step", "seconds", "mean")}
        return dict(cols, episode=np.asarray(curve["episode"], dtype=int), episodes=curve["episodes"])
    c = np.asarray(curve, dtype=float).reshape(-1, 3)
    points = dict(step=c[:, 0], seconds=c[:, 1], mean=rolling_mean(c[:, 2], window))
    return dict(points, episode=np.arange(len(c)), episodes=len(c))


def time_to_threshold(curve, threshold: float | None, window: int = WINDOW) -> tuple[float, float]:
    """(global_step, seconds) at the first finished episode where the mean of the last `window` episodes' returns
    reaches `threshold`; (inf, inf) if it never does, fewer than `window` episodes finished or there is none."""
    if threshold is None:
        return math.inf, math.inf
    p = rolling_points(curve, window)
    if p["episodes"] < window:
        return math.inf, math.inf
    hit = np.flatnonzero((p["episode"] >= window - 1) & (p["mean"] >= threshold))  # full windows only
    if hit.size == 0:
        return math.inf, math.inf
    return float(p["step"][hit[0]]), float(p["seconds"][hit[0]])


def last_episodes_mean(curve, n: int) -> float:
    """The mean return of the last `n` finished episodes of a full curve (all of them if fewer); NaN without an
    episode, or for a slim curve, which keeps rolling means of WINDOW, not the returns."""
    if isinstance(curve, dict) or not curve:
        return math.nan
    return float(np.mean([episode[2] for episode in curve[-n:]]))


GRID_POINTS = 200  # points of a plotted training curve (curves_on_grid); slim_curves keeps what these read
COLUMN = {"steps": "step", "seconds": "seconds"}  # x of a training-curve plot -> the points' array


def grid_of(points: list[dict], x: str, n: int = GRID_POINTS) -> np.ndarray:
    """`n` evenly spaced steps (x = "steps") or seconds from 0 to the end of the longest of these runs (their
    rolling_points); empty when no run has an episode."""
    col = COLUMN[x]
    end = max((p[col][-1] for p in points if len(p[col])), default=0.0)
    return np.linspace(0.0, end, n) if end > 0 else np.zeros(0)


def curves_on_grid(curves: list, x: str, points: int = GRID_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Per seed the rolling mean of its training returns on `points` evenly spaced steps (x = "steps") or seconds up
    to the longest run's end -> (grid, ys[seed, point]), NaN outside the seed's own episodes."""
    pts = [rolling_points(c) for c in curves]
    col, grid = COLUMN[x], grid_of(pts, x, points)
    ys = np.full((len(pts), len(grid)), np.nan)
    for i, p in enumerate(pts):
        if len(p[col]):
            ys[i] = np.interp(grid, p[col], p["mean"], left=np.nan, right=np.nan)
    return grid, ys


def slim_curves(curves: list, window: int = WINDOW) -> list:
    """The slim form of the curves of one algo's runs on one env (the seeds of one plotted line), from either form:
    per run a dict of its "episodes" count, the "window" and, per kept episode, its "episode" index, "step",
    "seconds" and rolling "mean". Kept: the first and last episodes; for the steps and the seconds grids of these
    runs (grid_of) the two episodes around each grid point, the ones np.interp reads; every full-window episode whose
    mean is above all earlier ones (time to threshold, for any threshold). A run without an episode stays []."""
    pts = [rolling_points(c, window) for c in curves]
    grids = {col: grid_of(pts, x) for x, col in COLUMN.items()}
    out = []
    for p in pts:
        n = len(p["step"])
        if n == 0:
            out.append([])
            continue
        keep = [np.array([0, n - 1])]
        for col, grid in grids.items():
            below = np.searchsorted(p[col], grid, side="right") - 1  # np.interp's left neighbour of each grid point
            keep += [below, below + 1]
        full = np.flatnonzero(p["episode"] >= window - 1)
        if full.size:
            means = p["mean"][full]
            record = np.r_[True, means[1:] > np.fmax.accumulate(means)[:-1]]
            keep.append(full[record])
        k = np.unique(np.concatenate(keep))
        k = k[(k >= 0) & (k < n)]
        steps = [int(s) if s.is_integer() else s for s in p["step"][k].tolist()]
        kept = dict(episode=p["episode"][k].tolist(), step=steps, seconds=p["seconds"][k].tolist())
        out.append(dict(episodes=p["episodes"], window=window, **kept, mean=p["mean"][k].tolist()))
    return out


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
    save_png(fig, path)


def save_png(fig, path: Path) -> None:
    """A matplotlib Figure as a 256-colour PNG: the lines, their bands and the anti-aliasing between them need no
    more, and the file is about a third of matplotlib's RGBA one (same size and resolution)."""
    from PIL import Image  # a dependency of matplotlib

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    with Image.open(buf) as image:
        image.convert("RGB").quantize(256).save(path, format="png", optimize=True)
