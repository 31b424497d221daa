"""Benchmark the algorithm files of this repository: one pipeline, six suites (classic, MuJoCo, Box2D, toy-text,
MinAtar, Atari).

    python benchmarks/run.py                # every algo file × CartPole-v1, Pendulum-v1 × seeds 1 2 3
    python benchmarks/run.py --algos ppo_clip --envs CartPole-v1 --seeds 1 --workers 1
    python benchmarks/run.py --peers        # also SB3 PPO and sb3-contrib TRPO with RL-Zoo's settings
                                            # (pip install -r benchmarks/requirements-peers.txt first)
    python benchmarks/run.py --mujoco       # vpg, trpo, ppo_penalty, ppo_clip × HalfCheetah-v5, Hopper-v5,
                                            # Walker2d-v5, Swimmer-v5, InvertedDoublePendulum-v5 × seeds 1 2 3
                                            # (pip install -r requirements-mujoco.txt first)
    python benchmarks/run.py --box2d        # the same four × LunarLander-v3, LunarLanderContinuous-v3
                                            # (pip install -r requirements-box2d.txt first)
    python benchmarks/run.py --mujoco --envs Walker2d-v5   # one env: the file keeps the runs of the others
    python benchmarks/run.py --toy-text     # all five × FrozenLake-v1, Taxi-v4, Blackjack-v1, CliffWalking-v1
    python benchmarks/run.py --minatar      # all five × MinAtar Breakout, SpaceInvaders, Asterix, Freeway (vpg, trpo:
                                            # Breakout only) × seeds 1 2 3, 10 M steps a run
                                            # (pip install -r requirements-minatar.txt first)
    python benchmarks/run.py --minatar --algos ppo_clip --envs MinAtar/Asterix-v1 --seeds 2 --workers 1
                                            # one run; start another beside it: both land in results_minatar.*
    python benchmarks/run.py --atari        # ppo_clip × ALE/Pong-v5, ALE/Breakout-v5, ALE/BeamRider-v5 × seeds
                                            # 1 2 3, 10 M agent steps a run: for a GPU machine (the files' --device
                                            # auto takes a GPU for images) (pip install -r requirements-atari.txt)

A run is a fresh process (one torch thread; `--workers` at once) in a temporary folder, its output captured, doing
exactly `train(parse_args(["--env", E, "--seed", S]))` with one of vpg, trpo, ppo_penalty, ppo_clip, dppo found in
the repository root: the file's own defaults, no hidden tuning (the toy-text suite adds only `--eval-episodes N`, more
episodes where 20 cannot tell a target from chance). dppo (classic and toy-text suites) runs last, alone, as 2 ranks
under torchrun.

Pass: a cell (algo × env) passes when no seed crashed and, classic and toy-text suites, every seed's deterministic
evaluation summary["eval_mean_return"] ≥ THRESHOLDS[env] / TOY_TEXT_TARGETS[env]; MuJoCo and Box2D suites, the MEAN
over seeds of these final evaluations ≥ the suite's TARGETS[(algo, env)], for ppo_penalty without one
PPO_PENALTY_RELATIVE × the larger of ppo_clip's mean and target on the same env; MinAtar suite, the same mean ≥
MINATAR_TARGETS[env] for ppo_clip, the other files reported against that target (✓ at or above it, "report" below,
never a failure); Atari suite, the mean over seeds of each run's mean return over its last TRAIN_TAIL training
episodes (CleanRL's statistic) ≥ ATARI_TARGETS[env]. Exit code 1 when a gated cell (ours, with a target) fails without
a mark in the suite's known shortfalls (a marked one still shows failing), 2 on bad flags.

Definitions. Time / steps to threshold: seconds since train() began / global_step at the first finished training
episode where the mean of the last 20 reaches the threshold (∞: never); cells show medians over seeds, as for SPS
(training only). Ratio: our median seconds to threshold / the peer's. MuJoCo "final": the evaluation after the last
update; "best": the max over it and the evaluations every eval_every steps; training s: summary["wall_s"], compared
with SECONDS_TARGET, never gated; process s: the whole run. PUBLISHED: other libraries' numbers, for the
reader. Curves: per seed the rolling mean of the last 20 training returns on a grid of steps or seconds, or the
periodic evaluations on the union of the seeds' evaluation steps; line: mean over seeds, band: min–max. Start-up:
`python -c "import MODULE"` in a fresh process, median of 3.

Writes to benchmarks/results/ results.json.gz (every run: summary, resolved Args, commit; versions, CPU), results.md,
curve_<env>_steps.png, curve_<env>_seconds.png; with --mujoco / --box2d / --minatar / --atari results_mujoco.* /
results_box2d.* / results_minatar.* / results_atari.* and curve_<env>_evals.png too; with --toy-text
results_toy_text.* and curve_<env>_steps.png only (a "/" of an env id becomes "-" in a file name). A suite's file
keeps the runs of an existing one that this invocation did not repeat (same algo, env, seed): a suite of hours can be
run and committed env by env, each run saying its commit. Each run is also appended to <stem>.partial.jsonl as it
ends, so the next invocation keeps what a killed one finished. Invocations that write the same suite at the same time
(say two single runs side by side) take turns on the results folder (a lock on it), so none loses another's runs.

The results stay small enough to commit (all of benchmarks/results/ under 5 MB, where per-episode curves took 46):
<stem>.json.gz is gzip-compressed JSON (`zcat results.json.gz`, read_results), and in it each run's summary["curve"]
is slim: only the points of its training curve that the tables and plots read, which come out the same as from every
episode (benchmarks/curves.py, slim_curves). The plots are 256-colour PNGs. A plain <stem>.json with a curve point per
episode, as written before, is read too, and replaced by the .gz.

This file is the pipeline (run, aggregate, judge, report); benchmarks/suites.py holds what differs between the suites
(THRESHOLDS, the TARGETS, the known shortfalls, PUBLISHED, table columns), benchmarks/peers.py the SB3 peers and
their RL-Zoo settings, benchmarks/curves.py time to threshold and the plots.
"""

import argparse
import contextlib
import gzip
import importlib
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
from importlib.util import find_spec
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python benchmarks/run.py` too (then only benchmarks/ is on the path)

from benchmarks.curves import last_episodes_mean, plot, slim_curves, time_to_threshold  # noqa: E402
from benchmarks.peers import PEER_HYPERPARAMS, PEER_OF, PEERS, train_peer  # noqa: E402
from benchmarks.suites import (  # noqa: E402
    ALGOS,
    ATARI,
    BOX2D,
    CLASSIC,
    KNOWN_SHORTFALLS,  # noqa: F401  (re-exported: tests/test_learning.py imports it from here)
    MINATAR,
    MUJOCO,
    THRESHOLDS,
    TOY_TEXT,
    Suite,
    fmt,
    named,
)


# ---- one pipeline: statistics, verdict, table, report --------------------------------------------------------------
def discover_algos(root: Path = ROOT) -> list[str]:
    """The algorithm files present in `root`, in ALGOS order."""
    return [a for a in ALGOS if (Path(root) / f"{a}.py").is_file()]


def _median(xs) -> float:
    return float(np.median(xs)) if len(xs) else math.nan


def _mean_std(xs) -> tuple[float, float]:
    """Over the seeds that finished (NaN: a crash)."""
    ok = [x for x in xs if not math.isnan(x)]
    return (float(np.mean(ok)), float(np.std(ok))) if ok else (math.nan, math.nan)


def cell_stats(rs: list[dict], tail: int = 0) -> dict:
    """Every statistic of one cell from its runs (sorted by seed); a suite's table shows some of them. `tail` > 0:
    also each run's mean return over its last `tail` training episodes (kept in the run as train_tail_mean, computed
    from a full curve where the run has none yet) and their mean and std."""
    summaries = [r.get("summary") or {} for r in rs]
    evals, best = [[s.get(k, math.nan) for s in summaries] for k in ("eval_mean_return", "best_eval_mean_return")]
    (mean, std), (best_mean, best_std) = _mean_std(evals), _mean_std(best)
    ttt = [time_to_threshold(s.get("curve", []), THRESHOLDS.get(rs[0]["env"])) for s in summaries]
    c = dict(algo=rs[0]["algo"], env=rs[0]["env"], kind=rs[0]["kind"], seeds=[r["seed"] for r in rs], evals=evals)
    c.update(eval_mean=mean, eval_std=std, eval_min=min((e for e in evals if not math.isnan(e)), default=math.nan))
    c.update(best_evals=best, best_mean=best_mean, best_std=best_std, errors=[r["seed"] for r in rs if r["error"]])
    c["commits"] = sorted({r["commit"] for r in rs if r.get("commit")})
    c.update(steps_to_threshold=_median([t[0] for t in ttt]), seconds_to_threshold=_median([t[1] for t in ttt]))
    c.update(sps=_median([s["sps"] for s in summaries if s]), wall_s=_median([s["wall_s"] for s in summaries if s]))
    c["process_s"] = _median([r["process_s"] for r in rs if r["summary"] and r.get("process_s") is not None])
    if tail:
        tails = [
            r["train_tail_mean"] if "train_tail_mean" in r else last_episodes_mean(s.get("curve"), tail)
            for r, s in zip(rs, summaries, strict=True)
        ]
        tails = [math.nan if t is None else t for t in tails]  # None: NaN in a results file
        c["tail_means"], (c["tail_mean"], c["tail_std"]) = tails, _mean_std(tails)
    for arg in ("eval_episodes", "eval_every"):  # the runs' evaluation settings, for the definitions
        flat = [{**(r.get("args") or {}), **(r.get("args") or {}).get("run", {})} for r in rs]  # Args.run's flags
        c[arg] = sorted({a[arg] for a in flat if a.get(arg) is not None})
    return c


def aggregate(runs: list[dict], suite: Suite, shortfalls: dict | None = None) -> list[dict]:
    """One row per (algo, env) cell from run records {kind, algo, env, seed, args, summary, error, process_s}: its
    statistics, the time ratio against its peer, its target (suite.target) and its verdict, in table order.
    `shortfalls` replaces the suite's known shortfalls."""
    shortfalls = suite.shortfalls if shortfalls is None else shortfalls
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in sorted(runs, key=lambda r: r["seed"]):
        groups.setdefault((r["algo"], r["env"]), []).append(r)
    cells = {key: cell_stats(rs, suite.tail) for key, rs in groups.items()}
    for (algo, env), c in cells.items():
        peer = cells.get((PEER_OF.get(algo), env))
        ours, theirs = c["seconds_to_threshold"], peer["seconds_to_threshold"] if peer else math.nan
        c["peer_time_ratio"] = ours / theirs if math.isfinite(ours) and math.isfinite(theirs) else math.nan
        c.update(suite.target(c, cells), known_shortfall=shortfalls.get((algo, env)))
        c["passed"] = c["target"] is not None and not c["errors"] and suite.passes(c)
        # gated: ours, with a target; a cell the suite only reports (c["gated"] False) once it reaches its target
        c["counts"] = c["kind"] != "peer" and c["target"] is not None and (c.get("gated", True) or c["passed"])
        c["status"] = status(c, suite.target_word)
    order = {a: i for i, a in enumerate(ALGOS + PEERS)}
    return sorted(cells.values(), key=lambda c: (c["env"], order.get(c["algo"], 99), c["algo"]))


def status(c: dict, word: str) -> str:
    if c["target"] is None:
        text = f"no {word}"
    elif not c.get("gated", True):  # reported against the target: ✓ at or above it, never a failure
        missing = f" (no seed {', '.join(map(str, c['missing_seeds']))})" if c.get("missing_seeds") else ""
        text = "✓" if c["passed"] else f"report{missing}"
    elif c["passed"]:
        text = "pass" + (" (marked known shortfall: remove the mark?)" if c["known_shortfall"] else "")
    elif c["counts"] and c.get("missing_seeds"):
        text = f"incomplete (no seed {', '.join(map(str, c['missing_seeds']))})"
    elif not c["counts"]:
        text = f"below {word} (peer, not gated)"
    else:
        text = "FAIL (known shortfall)" if c["known_shortfall"] else "FAIL"
    return text + (f" (crashed: seeds {c['errors']})" if c["errors"] else "")


def exit_code(cells: list[dict]) -> int:
    """1 when a gated cell fails without a known-shortfall mark, else 0."""
    return int(any(c["counts"] and not c["passed"] and not c["known_shortfall"] for c in cells))


def failure_report(cells: list[dict], suite: Suite) -> str:
    """One line per failing gated cell: its numbers against its target (suite.describe), crashes, its mark."""
    lines = []
    for c in cells:
        if c["counts"] and not c["passed"]:
            per_seed = ", ".join(f"seed {s}: {fmt(e)}" for s, e in zip(c["seeds"], c["evals"], strict=True))
            crash = f" (crashed: seeds {c['errors']})" if c["errors"] else ""
            mark = f" [known shortfall: {c['known_shortfall']}]" if c["known_shortfall"] else ""
            lines.append(f"{c['algo']} on {c['env']}: {suite.describe(c, per_seed)}{crash}{mark}")
    return "\n".join(lines)


def table(cells: list[dict], suite: Suite) -> str:
    lines = ["| " + " | ".join(head for head, _ in suite.columns) + " |", "|" + "---|" * len(suite.columns)]
    return "\n".join(lines + ["| " + " | ".join(text(c) for _, text in suite.columns) + " |" for c in cells])


def markdown(cells: list[dict], suite: Suite, startup: dict, meta: dict) -> str:
    """<stem>.md: the intro, the table, the failing cells, the suite's own sections, the machine."""
    machine = [f"- {k}: {v}" for k, v in meta.items() if k != "versions"] + [f"- versions: {meta.get('versions')}"]
    failures = failure_report(cells, suite) or "none"
    head = [f"# {suite.title}", "", suite.intro, "", table(cells, suite), "", "## Failing cells", "", failures, ""]
    return "\n".join([*head, *suite.sections(cells, startup), "## Machine", "", *machine, ""])


# ---- running: one fresh process per run ----------------------------------------------------------------------------
def _train_ours(algo: str, env: str, seed: int, root: str, episodes: int | None = None) -> tuple[dict, dict]:
    sys.path.insert(0, root)
    mod = importlib.import_module(algo)
    argv = ["--env", env, "--seed", str(seed)] + ["--eval-episodes", str(episodes)] * (episodes is not None)
    args = mod.parse_args(argv)
    if algo != "dppo":
        return asdict(args), mod.train(args)
    # dppo: this process only resolves its Args; 2 ranks train under torchrun and rank 0 writes the summary
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    subprocess.run([*torchrun, f"{root}/dppo.py", *argv, "--summary-json", "summary.json"], check=True)
    return asdict(args), json.loads(Path("summary.json").read_text())


def execute(kind: str, name: str, env: str, seed: int, root: str = str(ROOT), episodes: int | None = None) -> dict:
    """Runs in its own spawned process: cwd in a temp folder, stdout/stderr captured, never raises. process_s: wall
    seconds of the whole run (import, env creation, training, periodic and final evaluations; until a crash).
    `episodes`: our run's --eval-episodes (None: the file's default)."""
    t0 = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix=f"bench_{name}_{file_name(env)}_{seed}_")
    log_path = os.path.join(tmp, "stdout.log")  # by its full path: wherever the process happens to be
    os.chdir(tmp)
    rec = dict(kind=kind, algo=name, env=env, seed=seed, args=None, summary=None, error=None)
    with open(log_path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            if kind == "ours":
                rec["args"], rec["summary"] = _train_ours(name, env, seed, root, episodes)
            else:
                rec["args"], rec["summary"] = train_peer(name, env, seed, root)
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


def measure_startup(module: str, root: Path = ROOT, repeats: int = 3) -> float:
    """Median wall seconds of `python -c "import module"` in a fresh process, from the repo root; NaN if it fails."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ok = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=root, capture_output=True).returncode == 0
        times.append(time.perf_counter() - t0 if ok else math.nan)
    return _median(times)


def machine_info(root: Path = ROOT) -> dict:
    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    def git(*args) -> str:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown"
    # modified: any file but the results themselves (a suite run seed by seed rewrites them between invocations)
    dirty = " (work tree modified)" if git("status", "--porcelain", "--", ".", ":(exclude)benchmarks/results") else ""
    packages = ("torch", "gymnasium", "mujoco", "numpy", "tyro", "stable-baselines3", "sb3-contrib")
    info = dict(git_commit=(git("rev-parse", "HEAD") or "no commit") + dirty, cpu=cpu, cpu_count=os.cpu_count())
    info.update(python=platform.python_version(), date=time.strftime("%Y-%m-%d %H:%M:%S"))
    return dict(info, versions={p: version(p) for p in packages})


def short_commit(git_commit: str) -> str:
    """machine_info's git_commit as a table shows it: 7 hex digits, + when the work tree was modified."""
    if git_commit.startswith("no commit"):
        return "no commit"
    return git_commit[:7] + ("+" if git_commit.endswith("(work tree modified)") else "")


def _json_safe(x):
    """inf / nan -> None (JSON has neither): None in a to-threshold field means 'never reached'."""
    return json.loads(json.dumps(x), parse_constant=lambda _: None)


def file_name(env: str) -> str:
    """An env id as part of a file name: MinAtar/Breakout-v1 -> MinAtar-Breakout-v1 (as the files' run folders)."""
    return env.replace("/", "-")


@contextlib.contextmanager
def results_lock(out: Path):
    """Holds an exclusive lock on the results folder (flock on the folder itself: no lock file to leave behind), so
    that invocations writing the same suite at once take turns; without fcntl (Windows) no lock."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def results_files(out: Path, stem: str) -> tuple[Path, Path]:
    """A suite's results file as report() writes it (<stem>.json.gz) and as it was once written (plain <stem>.json)."""
    return out / f"{stem}.json.gz", out / f"{stem}.json"


def read_results(path: Path) -> dict:
    """A results file, gzip-compressed (.gz) or plain, its curves full or slim (benchmarks/curves.py reads both)."""
    data = path.read_bytes()
    return json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)


def write_results(path: Path, record: dict) -> None:
    """gzip-compressed JSON; no time stamp in the gzip header, so the same results give the same bytes."""
    text = json.dumps(_json_safe(record), allow_nan=False)
    path.write_bytes(gzip.compress(text.encode(), compresslevel=9, mtime=0))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", nargs="+", help=f"default: the files present among {ALGOS}")
    p.add_argument("--envs", nargs="+", help="default: the suite's envs")
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="runs at once (each one process, 1 thread)")
    p.add_argument("--peers", action="store_true", help="also SB3 PPO and sb3-contrib TRPO with RL-Zoo settings")
    which = p.add_mutually_exclusive_group()
    for s in (MUJOCO, BOX2D):  # judged on the mean over seeds; no dppo, no peers
        text = f"the {s.name} suite: {s.algos} × {s.envs}, judged on the mean over seeds; writes {s.stem}.*"
        which.add_argument(f"--{s.name.lower()}", action="store_true", help=text)
    text = f"the toy-text suite: {TOY_TEXT.algos} × {TOY_TEXT.envs}, every seed judged; writes {TOY_TEXT.stem}.*"
    which.add_argument("--toy-text", action="store_true", help=text)
    text = f"the MinAtar suite: {MINATAR.algos} × {MINATAR.envs} (vpg, trpo: Breakout only), ppo_clip gated on the "
    which.add_argument("--minatar", action="store_true", help=f"{text}mean over seeds; writes {MINATAR.stem}.*")
    text = f"the Atari suite: {ATARI.algos} × {ATARI.envs}, gated on the mean of the last {ATARI.tail} training "
    which.add_argument("--atari", action="store_true", help=f"{text}episodes, for a GPU; writes {ATARI.stem}.*")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--root", type=Path, default=ROOT, help="folder holding the algorithm files (tests use a fake one)")
    a = p.parse_args(argv)
    chosen = ((MUJOCO, a.mujoco), (BOX2D, a.box2d), (TOY_TEXT, a.toy_text), (MINATAR, a.minatar), (ATARI, a.atari))
    suite = next((s for s, on in chosen if on), CLASSIC)
    root = a.root.resolve()
    envs = a.envs or list(suite.envs)
    present = [x for x in discover_algos(root) if x in suite.algos]
    algos = a.algos or present
    outside = [x for x in algos if x in ALGOS and x not in suite.algos]
    missing = [x for x in algos if x not in present]
    if a.peers and not suite.peers:
        p.error(f"the {suite.name} suite has no peers: drop --peers")
    if outside:
        p.error(f"{', '.join(outside)} is not part of the {suite.name} suite ({', '.join(suite.algos)})")
    if missing or not algos:
        p.error(f"no algorithm file for {missing or 'any algo'} in {root} (present: {present})")
    for x in algos:  # a file the suite runs on some envs only (MinAtar: vpg, trpo) needs one of them
        if not any(suite.runs_on(x, e) for e in envs):
            p.error(f"{x} runs only on {', '.join(suite.only[x])} in the {suite.name} suite")
    if a.peers and None in (find_spec("stable_baselines3"), find_spec("sb3_contrib")):
        p.error("--peers needs: pip install -r benchmarks/requirements-peers.txt")
    if find_spec("matplotlib") is None:  # before hours of runs, not at the plots after them
        p.error("the curves need matplotlib: pip install -r requirements-dev.txt")
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # inherited by every run and subprocess

    modules = algos + (["stable_baselines3", "sb3_contrib"] if a.peers else [])
    startup = {"python alone (import sys)": measure_startup("sys"), **{m: measure_startup(m, root) for m in modules}}
    ours = [("ours", x, e, s) for x in algos for e in envs if suite.runs_on(x, e) for s in a.seeds]
    peers = [("peer", x, e, s) for x in PEERS for e in envs if (x, e) in PEER_HYPERPARAMS for s in a.seeds]
    skipped = [e for e in envs if ("sb3_ppo", e) not in PEER_HYPERPARAMS]
    if a.peers and skipped:
        print(f"peers: no RL-Zoo settings recorded here for {skipped}; no peer runs there", flush=True)
    peers = peers if a.peers else []
    runs, t0, meta = [], time.perf_counter(), machine_info(root)
    commit = short_commit(meta["git_commit"])
    a.out.mkdir(parents=True, exist_ok=True)
    partial = a.out / f"{suite.stem}.partial.jsonl"  # each run as it ends: a killed suite keeps what finished

    def run_all(jobs: list[tuple], workers: int) -> None:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
            futures = {pool.submit(execute, *job, str(root), suite.eval_episodes.get(job[2])): job for job in jobs}
            for fut in as_completed(futures):
                try:
                    r = fut.result()
                except Exception:  # the worker process itself died (e.g. killed, out of memory)
                    kind, name, env, seed = futures[fut]
                    r = dict(kind=kind, algo=name, env=env, seed=seed, args=None, summary=None, error=None)
                    r["error"] = traceback.format_exc()
                runs.append(dict(r, commit=commit))
                with results_lock(a.out), open(partial, "a") as f:  # not while another invocation's report reads it
                    f.write(json.dumps(_json_safe(runs[-1])) + "\n")
                res = "CRASHED" if r["error"] else f"eval {r['summary']['eval_mean_return']:.1f}"
                done = f"[{len(runs)}/{len(ours + peers)}] {r['algo']} {r['env']} seed {r['seed']}"
                print(f"{done}: {res} ({time.perf_counter() - t0:.0f} s)", flush=True)

    run_all([j for j in ours if j[1] != "dppo"] + peers, max(1, a.workers))
    run_all([j for j in ours if j[1] == "dppo"], 1)  # dppo's 2 ranks after the others: alone on the machine
    return report(suite, runs, a.out, startup, meta)


def report(suite: Suite, runs: list[dict], out: Path, startup: dict, meta: dict) -> int:
    """Writes <stem>.json.gz (with the runs of an existing one that `runs` do not repeat; curves slim), <stem>.md and
    the curves of each env, prints the verdict; returns the exit code. Holds the results folder's lock throughout:
    another invocation of the same suite writes before or after, not in between."""
    with results_lock(out):
        return _report(suite, runs, out, startup, meta)


def _report(suite: Suite, runs: list[dict], out: Path, startup: dict, meta: dict) -> int:
    key = lambda r: (r["kind"], r["algo"], r["env"], r["seed"])  # noqa: E731
    partial, results, plain = out / f"{suite.stem}.partial.jsonl", *results_files(out, suite.stem)
    earlier = [json.loads(line) for line in partial.read_text().splitlines()] if partial.is_file() else []
    for old in (results, plain):  # the file as written now, then one in the older plain form
        if old.is_file():
            kept = read_results(old)
            earlier += [{"commit": short_commit(kept["meta"]["git_commit"]), **r} for r in kept["runs"]]
    for r in earlier:  # a killed invocation's finished runs first, then the files': the newest run of each key
        if key(r) not in {key(x) for x in runs}:
            runs.append(r)
    envs = sorted({r["env"] for r in runs})
    cells = aggregate(runs, suite)
    for r in runs:  # each run keeps its own time to threshold next to the cell's median
        if r["summary"] and r["env"] in THRESHOLDS:
            steps, secs = time_to_threshold(r["summary"]["curve"], THRESHOLDS[r["env"]])
            r.update(steps_to_threshold=steps, seconds_to_threshold=secs)
        if suite.tail and r["summary"] and isinstance(r["summary"].get("curve"), list):  # full: not slimmed yet
            r["train_tail_mean"] = last_episodes_mean(r["summary"]["curve"], suite.tail)
    runs.sort(key=lambda r: (r["env"], r["algo"], r["seed"]))
    slim(runs)  # after every statistic above; the plots below read the slim curves, as a later invocation will
    shortfalls = named(suite.shortfalls)
    record = dict(meta=meta, **suite.criteria, known_shortfalls=shortfalls, startup_s=startup, cells=cells, runs=runs)
    out.mkdir(parents=True, exist_ok=True)
    write_results(results, record)
    plain.unlink(missing_ok=True)  # its runs are in `results` now
    (out / f"{suite.stem}.md").write_text(markdown(cells, suite, startup, meta))
    partial.unlink(missing_ok=True)
    for env in envs:
        plot_env(suite, runs, cells, env, out)
    for r in runs:
        if r["error"]:
            tail = "\n".join(r.get("log_tail", []))
            print(f"\n{r['algo']} {r['env']} seed {r['seed']} crashed:\n{r['error']}\n{tail}")
    print(f"\n{table(cells, suite)}\nstart-up (s): " + ", ".join(f"{m} {fmt(t, '.2f')}" for m, t in startup.items()))
    code, failures = exit_code(cells), failure_report(cells, suite)
    known = f" (known shortfalls:\n{failures})" if failures else ""
    print(f"FAILED cells:\n{failures}" if code else f"all gated cells pass{known}")
    print(f"wrote {out}/{suite.stem}.json.gz, {suite.stem}.md, curve_*_{{{','.join(suite.plots)}}}.png", flush=True)
    return code


def slim(runs: list[dict]) -> None:
    """Replaces each finished run's summary["curve"] by its slim form, computed per plotted line (one algo's runs on
    one env): what the results file keeps (benchmarks/curves.py)."""
    lines: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        if r["summary"]:
            lines.setdefault((r["env"], r["algo"]), []).append(r["summary"])
    for summaries in lines.values():
        for s, curve in zip(summaries, slim_curves([s.get("curve") or [] for s in summaries]), strict=True):
            s["curve"] = curve


def plot_env(suite: Suite, runs: list[dict], cells: list[dict], env: str, out: Path) -> None:
    """curve_<env>_<x>.png for each of the suite's plots: the runs' training curves (either form) or evaluations."""
    finished = [r for r in runs if r["env"] == env and r["summary"]]
    for x in suite.plots:
        series = {}
        for r in finished:
            series.setdefault(r["algo"], []).append(r["summary"].get("evals" if x == "evals" else "curve") or [])
        path = out / f"curve_{file_name(env)}_{x}.png"
        if x == "evals":  # each algo's target, dashed in its colour
            plot(series, env, x, path, targets={c["algo"]: c["target"] for c in cells if c["env"] == env})
        else:  # the env's threshold, dashed in black
            plot(series, env, x, path, threshold=THRESHOLDS.get(env))


if __name__ == "__main__":
    sys.exit(main())
