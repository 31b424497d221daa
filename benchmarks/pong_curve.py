"""ppo_clip's Pong learning curve beside CleanRL's published ppo_atari one.

    python ppo_clip.py --env ALE/Pong-v5 --seed 1          # a run of the atari preset: runs/ALE-Pong-v5__ppo_clip__1__…
    python benchmarks/pong_curve.py runs/ALE-Pong-v5__ppo_clip__1__1767000000 [RUN_DIR …]

Reads each run folder's progress.csv (one row per iteration; global_step, and mean_return: the mean game score of the
run's last 20 finished training episodes; nothing else of the folder, a checkpoint.pt included, is needed) and writes
benchmarks/results/pong_curve.md and pong_curve.png (--out: another folder). An unfinished run is fine: it is read
as far as it got.

The table: at each of STEPS (agent steps, 4 frames each) that some run reached, every run's mean_return at its first
iteration at or after that step (or at its last one, when the run ends less than an iteration short of the step: 10 M
is no multiple of the preset's 1,024 steps an iteration, and the last of 10 M // 1,024 ends at 9,999,360), their mean
over the runs, and CleanRL's curve at that step. CLEANRL_PONG was read
off their docs image docs/rl-algorithms/ppo/PongNoFrameskip-v4.png (vwxyzjn/cleanrl; ppo_atari.py, mean of 3 seeds),
to about ±0.5. The plot: every run's whole mean_return curve, CleanRL's points with ±0.5 bars.
"""

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python benchmarks/pong_curve.py` too (then only benchmarks/ is on the path)

from benchmarks.curves import save_png  # noqa: E402

STEPS = (500_000, 1_000_000, 1_500_000, 2_000_000, 2_500_000, 3_000_000, 4_000_000, 5_000_000, 6_000_000)
STEPS += (8_000_000, 10_000_000)
CLEANRL_PONG = dict(zip(STEPS, (-19.5, -8.9, 5.0, 12.8, 16.1, 17.1, 19.2, 19.5, 19.7, 20.3, 20.6), strict=True))
READ_ERROR = 0.5  # how far a value read off CleanRL's image may be from theirs
SETTINGS = (
    "Ours: ALE/Pong-v5 at frameskip 1 through gymnasium's AtariPreprocessing (up to 30 no-op starts, 4 frames a step "
    "with the last 2 max-pooled, 84×84 grey) and 4 stacked frames, no sticky actions, rewards clipped to their sign "
    "for the learner, ppo_clip's atari preset (CleanRL's hyper-parameters: 8 envs × 128 steps, 4 epochs of 4 "
    "minibatches, lr 2.5e-4 annealed, clip 0.1, entropy 0.01). CleanRL: PongNoFrameskip-v4 (no sticky actions either) "
    "through SB3's Atari wrappers, FireReset among them, and a clipped value loss; we have neither."
)


def read_progress(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(global_step, mean_return) per row of run_dir/progress.csv (or of that file itself); NaN where no training
    episode had finished yet."""
    path = Path(run_dir) / "progress.csv" if Path(run_dir).is_dir() else Path(run_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no progress.csv (is {run_dir} a run folder of ppo_clip.py?)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    steps = np.array([int(row["global_step"]) for row in rows], dtype=np.int64)
    means = np.array([float(row["mean_return"] or "nan") for row in rows])
    return steps, means


def row_at(steps: np.ndarray, step: int) -> int | None:
    """The first row at or after `step`, or the last row when it is less than an iteration short of it; None: the run
    did not get there."""
    i = int(np.searchsorted(steps, step, side="left"))
    if i < len(steps):
        return i
    last_iteration = steps[-1] - steps[-2] if len(steps) > 1 else steps[-1] if len(steps) else 0
    return len(steps) - 1 if len(steps) and step - steps[-1] < last_iteration else None


def value_at(steps: np.ndarray, means: np.ndarray, step: int) -> float:
    """mean_return at row_at(step); NaN if the run did not get there (or had finished no episode by then)."""
    i = row_at(steps, step)
    return math.nan if i is None else float(means[i])


def label(run_dir: Path) -> str:
    """'seed S' from a run folder's name ({env}__{algo}__{seed}__{time}), else the name itself."""
    parts = Path(run_dir).resolve().name.split("__")
    return f"seed {parts[2]}" if len(parts) >= 4 and parts[2].isdigit() else Path(run_dir).resolve().name


def signed(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:+.1f}"


def table(runs: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """The Markdown table: a row per step of STEPS that some run reached."""
    heads = ["agent steps", *(f"ours, {name}" for name in runs)]
    heads += ["ours, mean over runs"] * (len(runs) > 1) + [f"CleanRL ppo_atari (±{READ_ERROR:g})"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for step in (s for s in STEPS if any(row_at(steps, s) is not None for steps, _ in runs.values())):
        ours = [value_at(*run, step) for run in runs.values()]
        have = [v for v in ours if not math.isnan(v)]
        mean = signed(float(np.mean(have))) if have else "—"
        mean += f" ({len(have)} of {len(ours)})" if have and len(have) < len(ours) else ""
        cells = [f"{step / 1e6:g} M", *map(signed, ours), *[mean] * (len(runs) > 1), signed(CLEANRL_PONG[step])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(runs: dict, folders: list[Path]) -> str:
    intro = (
        "Our mean training return (the mean game score of the last 20 finished training episodes, progress.csv's "
        "mean_return) at the first iteration at or after each step (or at the run's last iteration, when that ends "
        "less than an iteration short of the step: at 10 M, 9,999,360), beside CleanRL's published ppo_atari curve on "
        "PongNoFrameskip-v4 (the mean of 3 seeds), read off docs/rl-algorithms/ppo/PongNoFrameskip-v4.png in "
        f"vwxyzjn/cleanrl to about ±{READ_ERROR:g}. Agent steps: 4 frames each. Only the steps our runs reached."
    )
    listed = [
        f"- {name}: `{folder}` (up to step {int(run[0][-1]) if len(run[0]) else 0:,})"
        for (name, run), folder in zip(runs.items(), folders, strict=True)
    ]
    head = ["# Pong: ppo_clip beside CleanRL's ppo_atari", "", intro, "", table(runs), ""]
    return "\n".join([*head, "## Settings", "", SETTINGS, "", "## Runs", "", *listed, ""])


def plot(runs: dict, path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: no backend or global state

    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    for name, (steps, means) in runs.items():
        ax.plot(steps / 1e6, means, linewidth=1, label=f"ours (ppo_clip), {name}")
    steps, values = np.array(list(CLEANRL_PONG)) / 1e6, list(CLEANRL_PONG.values())
    theirs = f"CleanRL ppo_atari (mean of 3 seeds, read off their plot, ±{READ_ERROR:g})"
    ax.errorbar(steps, values, yerr=READ_ERROR, color="k", marker="o", markersize=4, capsize=3, ls="--", label=theirs)
    ax.set(xlabel="agent steps (millions; 4 frames each)", ylabel="episodic return (mean of the last 20 games)")
    ax.set(title="Pong: our training curve beside CleanRL's", ylim=(-21.5, 21.5))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    save_png(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run folders of ppo_clip.py on Pong")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    a = p.parse_args(argv)
    try:
        read = [read_progress(d) for d in a.run_dirs]
    except (FileNotFoundError, KeyError, ValueError) as e:  # KeyError: a progress.csv without these columns
        p.error(f"cannot read a run: {e}")
    names = [label(d) for d in a.run_dirs]
    if len(set(names)) < len(names):  # two runs of one seed: their folders' names tell them apart
        names = [str(d) for d in a.run_dirs]
    runs = dict(zip(names, read, strict=True))
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "pong_curve.md").write_text(markdown(runs, a.run_dirs))
    plot(runs, a.out / "pong_curve.png")
    print(table(runs))
    print(f"wrote {a.out}/pong_curve.md, pong_curve.png", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
