"""Weak scaling of dppo.py: the same per-rank config on 1 rank (no launcher) and on 2 ranks (torchrun).

    python benchmarks/dppo_scaling.py                                   # defaults below, 3 repeats
    python benchmarks/dppo_scaling.py --env Pendulum-v1 --repeats 5 -- --num-minibatches 8

Each repeat runs `iterations` iterations per rank (total_timesteps = iterations x num_envs x num_steps x ranks)
and reads training SPS from the summary and the per-iteration split from the CSV (time_rollout, time_update,
time_allreduce; the first iteration is left out as warm-up). Prints and writes
benchmarks/results/dppo_scaling_<env>_<flags>.md: median SPS per world size, their ratio, and the median split.
"""

import argparse
import csv
import glob
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# communication-light per-rank config: one minibatch per epoch, so 10 all-reduces per iteration
DEFAULT_FLAGS = ["--num-steps", "256", "--num-minibatches", "1"]


def run(world: int, env: str, iterations: int, flags: list[str]) -> tuple[float, dict]:
    sys.path.insert(0, str(ROOT))
    import dppo

    a = dppo.parse_args(["--env", env, *flags])
    with tempfile.TemporaryDirectory() as d:
        budget = ["--total-timesteps", str(iterations * a.num_envs * a.num_steps * world)]
        argv = ["--env", env, *flags, *budget, "--eval-episodes", "1", "--summary-json", "s.json"]
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(world)]
        launch = [sys.executable, str(ROOT / "dppo.py")] if world == 1 else [*torchrun, str(ROOT / "dppo.py")]
        subprocess.run(launch + argv, cwd=d, capture_output=True, check=True)
        sps = json.loads(Path(d, "s.json").read_text())["sps"]
        rows = list(csv.DictReader(open(glob.glob(f"{d}/runs/*/progress.csv")[0])))[1:]
        split = {
            k: 1000 * statistics.median(float(r[k]) for r in rows)
            for k in ("time_rollout", "time_update", "time_allreduce")
        }
    return sps, split


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("flags", nargs="*", default=DEFAULT_FLAGS, help="per-rank dppo flags (after --)")
    o = p.parse_args()
    results = {1: [], 2: []}
    for _ in range(o.repeats):
        for world in (1, 2):  # interleaved, so a noisy minute hits both
            results[world].append(run(world, o.env, o.iterations, o.flags))
    lines = [
        f"# dppo weak scaling: {o.env}, per-rank flags `{' '.join(o.flags) or '(defaults)'}`",
        "",
        f"Median over {o.repeats} repeats of {o.iterations} iterations per rank.",
        "",
        "| ranks | SPS | rollout ms/iter | update ms/iter | all-reduce ms/iter (incl. waiting) |",
        "|---|---|---|---|---|",
    ]
    med = {}
    for world, rs in results.items():
        med[world] = statistics.median(r[0] for r in rs)
        split = {k: statistics.median(r[1][k] for r in rs) for k in rs[0][1]}
        lines.append(
            f"| {world} | {med[world]:,.0f} | {split['time_rollout']:.1f} | {split['time_update']:.1f} | "
            f"{split['time_allreduce']:.1f} |"
        )
    lines += ["", f"SPS ratio 2 ranks / 1 rank: **{med[2] / med[1]:.2f}**"]
    text = "\n".join(lines) + "\n"
    print(text)
    slug = "_".join(f.lstrip("-") for f in o.flags) or "defaults"
    out = ROOT / "benchmarks" / "results" / f"dppo_scaling_{o.env}_{slug}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
