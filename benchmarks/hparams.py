"""Print the Markdown table of every algorithm file's default hyper-parameters per env.

    python benchmarks/hparams.py            # the table docs/benchmarks.md shows (a test keeps the two equal)

Columns: CartPole-v1, Pendulum-v1, every other env the file has an entry for (its ENV_DEFAULTS), then one column per
family preset the file has (FAMILY_DEFAULTS), shown on an env of that family with no entry of its own. Values are
what `python ALGO.py --env ENV` uses: parse_args(["--env", ENV]), i.e. Args' defaults < the env's family preset < its
ENV_DEFAULTS entry. The run's flags (Args.run: logging, saving, evaluation, threads) are left out.
"""

import importlib
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.run import discover_algos  # noqa: E402  (after the sys.path line: runs as a script too)
from benchmarks.suites import ENVS  # noqa: E402

FAMILIES = {
    "mujoco": ("MuJoCo", "HalfCheetah-v5"),
    "box2d": ("Box2D", "LunarLander-v3"),
    "toy_text": ("toy-text", "FrozenLake-v1"),
    "atari": ("Atari", "ALE/Breakout-v5"),
    "minatar": ("MinAtar", "MinAtar/Asterix-v1"),
}

NOT_HYPER = {
    "env",
    "seed",
    "run",
}  # the run's flags (Args.run: evaluation, saving, logging, threads) are no hyper-parameters


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
        columns = {e: e for e in [*ENVS, *(e for e in m.ENV_DEFAULTS if e not in ENVS)]}  # header: env
        for family, (name, env) in FAMILIES.items():
            if family in m.FAMILY_DEFAULTS and env not in m.ENV_DEFAULTS:
                columns[f"other {name} envs (e.g. {env})"] = env
        per_env = {env: asdict(m.parse_args(["--env", env])) for env in columns.values()}
        keys = [k for k in per_env[ENVS[0]] if k not in NOT_HYPER]
        lines += [f"**{algo}**", "", "| flag | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        rows = [" | ".join(fmt(per_env[e][k]) for e in columns.values()) for k in keys]
        lines += [f"| `--{k.replace('_', '-')}` | {row} |" for k, row in zip(keys, rows, strict=True)]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(table(), end="")
