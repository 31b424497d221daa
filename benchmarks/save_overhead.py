"""What --save-every costs: every full checkpoint.pt write of a MuJoCo run, timed, against the run's training time.

    python benchmarks/save_overhead.py                       # ppo_clip, HalfCheetah-v5, 100 k steps, save every 10 k
    python benchmarks/save_overhead.py --algo trpo --steps 50000 --every 5000

The run saves ten times more often than the MuJoCo presets do (every 10 k steps instead of 100 k), so the
measured share is ten times the default's; both are reported. Writes benchmarks/results/save_overhead_<algo>.json.
"""

import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", default="ppo_clip")
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--every", type=int, default=10_000)
    a = p.parse_args()
    sys.path.insert(0, str(ROOT))
    m = importlib.import_module(a.algo)
    saves, save = [], m.Run.save

    def timed_save(self, path, extra, full=False):
        start = time.perf_counter()
        save(self, path, extra, full)
        if full:
            saves.append(time.perf_counter() - start)

    m.Run.save = timed_save
    argv = ["--env", a.env, "--total-timesteps", str(a.steps), "--save-every", str(a.every), "--eval-every", "0"]
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        summary = m.train(m.parse_args(argv))
        size = os.path.getsize(os.path.join(summary["run_dir"], "checkpoint.pt"))
    default_every = m.parse_args(["--env", a.env]).save_every
    share = sum(saves) / summary["wall_s"]  # the saves run inside the training clock
    result = {
        "algo": a.algo, "env": a.env, "steps": a.steps, "save_every": a.every, "saves": len(saves),
        "median_save_s": statistics.median(saves), "max_save_s": max(saves), "checkpoint_bytes": size,
        "train_s": summary["wall_s"], "share_of_training": share,
        "default_save_every": default_every, "share_at_default": share * a.every / default_every,
    }  # fmt: skip
    out = ROOT / "benchmarks" / "results" / f"save_overhead_{a.algo}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
