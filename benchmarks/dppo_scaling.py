"""Weak scaling of dppo.py with its default flags: 1 process (no launcher) against 2 ranks (torchrun), same per-rank
config, on CartPole-v1 and Pendulum-v1, seeds 1-3, each run to its full default budget.

    python benchmarks/dppo_scaling.py                                # both envs, seeds 1 2 3 (about 10 min here)
    python benchmarks/dppo_scaling.py --envs CartPole-v1 --seeds 1 -- --sync step   # extra dppo flags after --

Per run: training SPS and time / steps to threshold (seconds since train() began, from the summary's curve: the
first episode where the mean of the last 20 training episodes reaches THRESHOLDS[env]; launch and rendezvous are
outside that clock), and the median split of an iteration from rank 0's progress.csv (time_rollout; time_update,
the update's own computing; time_allreduce, the collectives including the wait for the slower rank; the first
iteration left out as warm-up). Cells are medians over seeds; the ratios are 2 ranks / 1 process of those medians.
The runs go one at a time, 1 process then 2 ranks for each seed, so a noisy minute hits both. Writes
benchmarks/results/dppo_scaling.json (every run) and dppo_scaling.md (the table).
"""

import argparse
import csv
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.curves import time_to_threshold  # noqa: E402
from benchmarks.run import machine_info, short_commit  # noqa: E402
from benchmarks.suites import THRESHOLDS  # noqa: E402

SPLIT = ("time_rollout", "time_update", "time_allreduce")


def run(world: int, env: str, seed: int, flags: list[str]) -> dict:
    """One run of dppo.py in a temporary folder: its summary's numbers and the median split of an iteration (ms)."""
    with tempfile.TemporaryDirectory() as d:
        argv = ["--env", env, "--seed", str(seed), *flags, "--summary-json", "s.json"]
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(world)]
        launch = [sys.executable, str(ROOT / "dppo.py")] if world == 1 else [*torchrun, str(ROOT / "dppo.py")]
        env_vars = dict(os.environ, OMP_NUM_THREADS="1")  # torchrun sets it for its ranks; the same for 1 process
        subprocess.run(launch + argv, cwd=d, capture_output=True, check=True, env=env_vars)
        s = json.loads(Path(d, "s.json").read_text())
        rows = list(csv.DictReader(open(glob.glob(f"{d}/runs/*/progress.csv")[0])))[1:]
    steps, secs = time_to_threshold(s["curve"], THRESHOLDS[env])
    split = {k: 1000 * statistics.median(float(r[k]) for r in rows) for k in SPLIT}
    return dict(
        world=world,
        env=env,
        seed=seed,
        sps=s["sps"],
        steps_to_threshold=steps,
        seconds_to_threshold=secs,
        eval=s["eval_mean_return"],
        global_step=s["global_step"],
        **split,
    )


def table(runs: list[dict], envs: list[str]) -> list[str]:
    lines = [
        "| env | ranks | SPS | s to thr. | steps to thr. | rollout ms/iter | update ms/iter | "
        "all-reduce + wait ms/iter | final evals |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ratios = []
    for env in envs:
        med = {}
        for world in (1, 2):
            rs = [r for r in runs if r["env"] == env and r["world"] == world]
            med[world] = {
                k: statistics.median(r[k] for r in rs)
                for k in ("sps", "seconds_to_threshold", "steps_to_threshold", *SPLIT)
            }
            m, evals = med[world], ", ".join(f"{r['eval']:.0f}" for r in rs)
            lines.append(
                f"| {env} | {world} | {m['sps']:,.0f} | {m['seconds_to_threshold']:.1f} | "
                f"{m['steps_to_threshold']:,.0f} | {m['time_rollout']:.1f} | {m['time_update']:.1f} | "
                f"{m['time_allreduce']:.1f} | {evals} |"
            )
        sps, time = med[2]["sps"] / med[1]["sps"], med[2]["seconds_to_threshold"] / med[1]["seconds_to_threshold"]
        ratios.append(f"- {env}: SPS ×{sps:.2f} (target ≥ 1.4), time to threshold ×{time:.2f} (target ≤ 0.8)")
    return [*lines, "", "2 ranks / 1 process, medians over seeds:", "", *ratios]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", nargs="+", default=["CartPole-v1", "Pendulum-v1"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("flags", nargs="*", help="extra dppo flags for both sides (after --)")
    o = p.parse_args()
    runs = []
    for env in o.envs:
        for seed in o.seeds:
            for world in (1, 2):
                runs.append(run(world, env, seed, o.flags))
                print({k: round(v, 2) if isinstance(v, float) else v for k, v in runs[-1].items()}, flush=True)
    meta = machine_info()
    head = [
        f"# dppo.py weak scaling, flags: `{' '.join(o.flags) or 'the defaults'}`",
        "",
        f"Seeds {o.seeds}, commit {short_commit(meta['git_commit'])}, {meta['cpu']} ({meta['cpu_count']} cores), "
        f"torch {meta['versions']['torch']}. Definitions: docstring of benchmarks/dppo_scaling.py.",
        "",
    ]
    text = "\n".join(head + table(runs, o.envs)) + "\n"
    print(text)
    o.out.mkdir(parents=True, exist_ok=True)
    (o.out / "dppo_scaling.md").write_text(text)
    (o.out / "dppo_scaling.json").write_text(json.dumps(dict(meta=meta, flags=o.flags, runs=runs), indent=1))


if __name__ == "__main__":
    main()
