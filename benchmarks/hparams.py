"""Print the Markdown table of every algorithm file's default hyper-parameters per env.

    python benchmarks/hparams.py            # the table README.md shows (a test keeps the two equal)

Columns: CartPole-v1, Pendulum-v1, every other env the file has an entry for (its ENV_DEFAULTS), then the MuJoCo
suite's envs where the file has a MuJoCo preset. Values are what `python ALGO.py --env ENV` uses:
parse_args(["--env", ENV]), i.e. Args' defaults < the env's family preset < its ENV_DEFAULTS entry. Bookkeeping
flags (logging, saving, evaluation, threads) are left out.
"""

import importlib
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.run import ENVS, discover_algos  # noqa: E402  (after the sys.path line: runs as a script too)
from benchmarks.suites import MUJOCO_ENVS  # noqa: E402

NOT_HYPER = {
    "env",
    "seed",
    "track",
    "wandb_project",
    "wandb_entity",
    "save_model",
    "save_every",
    "resume",
    "run_name",
    "checkpoint",
    "eval_only",
    "eval_episodes",
    "eval_every",
    "torch_deterministic",
    "torch_threads",
    "capture_video",
    "gif",
    "summary_json",
}


def fmt(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, tuple):
        return "×".join(map(str, v))
    return "—" if v is None else str(v)


def table(root: Path = ROOT) -> str:
    lines = []
    for algo in discover_algos(root):
        m = importlib.import_module(algo)
        envs = [*ENVS, *(e for e in m.ENV_DEFAULTS if e not in ENVS)]
        envs += [e for e in MUJOCO_ENVS if "mujoco" in m.FAMILY_DEFAULTS and e not in envs]  # the preset's values
        per_env = {env: asdict(m.parse_args(["--env", env])) for env in envs}
        keys = [k for k in per_env[envs[0]] if k not in NOT_HYPER]
        lines += [f"**{algo}**", "", "| flag | " + " | ".join(envs) + " |", "|---|" + "---|" * len(envs)]
        lines += [f"| `--{k.replace('_', '-')}` | " + " | ".join(fmt(per_env[e][k]) for e in envs) + " |" for k in keys]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(table(), end="")
