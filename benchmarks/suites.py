"""The four suites of benchmarks/run.py and what differs between them; the pipeline itself is run.py.

Classic (CartPole-v1, Pendulum-v1): every seed's final evaluation must reach THRESHOLDS[env]. MuJoCo (--mujoco:
HalfCheetah-v5, Hopper-v5, Walker2d-v5, Swimmer-v5, InvertedDoublePendulum-v5) and Box2D (--box2d: LunarLander-v3,
LunarLanderContinuous-v3): the mean over seeds of the final evaluations must reach TARGETS[(algo, env)], for
ppo_penalty where it has none PPO_PENALTY_RELATIVE × P, P the larger of ppo_clip's mean and ppo_clip's target. A cell
marked in KNOWN_SHORTFALLS / MUJOCO_KNOWN_SHORTFALLS / BOX2D_KNOWN_SHORTFALLS shows failing without failing the exit
code. Toy-text (--toy-text: FrozenLake-v1, Taxi-v4, Blackjack-v1, CliffWalking-v1, all five files): every seed's
final evaluation, over TOY_TEXT_EPISODES[env] episodes, must reach TOY_TEXT_TARGETS[env]; TOY_TEXT_KNOWN_SHORTFALLS
marks. MinAtar (--minatar: Breakout, SpaceInvaders, Asterix, Freeway) is judged on the mean over seeds of the final
evaluations against MINATAR_TARGETS[env] (gymnax's published PPO), gated for ppo_clip only: ppo_penalty and dppo on
all four envs, vpg and trpo on Breakout alone, are reported against the same target, a cell at or above it showing ✓
and one below it "report", never failing the exit code. Atari (--atari: Pong, Breakout, BeamRider; ppo_clip) is
judged on the mean over seeds of each run's mean return over its last TRAIN_TAIL training episodes, CleanRL's own
statistic, against ATARI_TARGETS[env]; the final deterministic evaluation is shown beside it. MINATAR_KNOWN_SHORTFALLS
and ATARI_KNOWN_SHORTFALLS mark. PUBLISHED: other libraries' numbers, for the reader only. A `Suite` holds each
suite's data, pass rule, table columns and report sections (CLASSIC, MUJOCO, BOX2D, TOY_TEXT, MINATAR, ATARI).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

ALGOS = ("vpg", "trpo", "ppo_penalty", "ppo_clip", "dppo")
WINDOW = 20  # episodes in the rolling mean of time-to-threshold and of the plotted curves

# ---- classic suite: every seed must reach its env's threshold -----------------------------------------------------
ENVS = ("CartPole-v1", "Pendulum-v1")
THRESHOLDS = {"CartPole-v1": 475.0, "Pendulum-v1": -200.0}
KNOWN_SHORTFALLS: dict[tuple[str, str], str] = {
    # ("vpg", "Pendulum-v1"): "−230: what holds now, in one clause",
}

# ---- MuJoCo (--mujoco) and Box2D (--box2d) suites: targets on the MEAN over seeds of the final evaluation ---------
MUJOCO_ALGOS = ("vpg", "trpo", "ppo_penalty", "ppo_clip")
MUJOCO_ENVS = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Swimmer-v5", "InvertedDoublePendulum-v5")
MUJOCO_TARGETS = {
    ("ppo_clip", "HalfCheetah-v5"): 3000,
    ("ppo_clip", "Hopper-v5"): 2300,
    ("trpo", "HalfCheetah-v5"): 1500,
    ("trpo", "Hopper-v5"): 2000,
    ("vpg", "HalfCheetah-v5"): 800,
    ("vpg", "Hopper-v5"): 800,
    ("ppo_clip", "Walker2d-v5"): 4000,
    ("trpo", "Walker2d-v5"): 3500,
    ("ppo_clip", "Swimmer-v5"): 250,
    ("trpo", "Swimmer-v5"): 200,
    **{(a, "InvertedDoublePendulum-v5"): 9000 for a in ("ppo_clip", "trpo", "ppo_penalty")},
}
BOX2D_ENVS = ("LunarLander-v3", "LunarLanderContinuous-v3")
BOX2D_TARGETS = {
    **{(a, "LunarLander-v3"): t for a, t in (("ppo_clip", 230), ("trpo", 200), ("ppo_penalty", 200), ("vpg", 150))},
    **{(a, "LunarLanderContinuous-v3"): t for a, t in (("ppo_clip", 250), ("trpo", 200), ("ppo_penalty", 200))},
    ("vpg", "LunarLanderContinuous-v3"): 150,
}
PPO_PENALTY_RELATIVE = 0.85  # ppo_penalty's target where it has none: this × max(ppo_clip's mean, ppo_clip's target)
SECONDS_TARGET = 300  # one 1 M-step run on one core, median training seconds: reported, never gated
MEAN_SEEDS = (1, 2, 3)  # the mean suites' targets are over these seeds: a cell missing one is incomplete
MUJOCO_KNOWN_SHORTFALLS: dict[tuple[str, str], str] = {  # what was tried: docs/benchmarks.md, "MuJoCo"
    ("ppo_clip", "Walker2d-v5"): "3415: seed 3 settles near 700 while seeds 1-2 pass 4600",
    ("ppo_clip", "Swimmer-v5"): "141.1: every seed settles at 130–150",
    ("ppo_penalty", "Swimmer-v5"): "148.2: every seed settles at 140–155",
}
BOX2D_KNOWN_SHORTFALLS: dict[tuple[str, str], str] = {  # what was tried: docs/benchmarks.md, "Box2D"
    ("trpo", "LunarLander-v3"): "187.3: seeds 2 and 3 end near 150, still climbing",
}

# ---- toy-text suite (--toy-text): like the classic one, every seed must reach its env's target ----------------------
TOY_TEXT_ENVS = ("FrozenLake-v1", "Taxi-v4", "Blackjack-v1", "CliffWalking-v1")
# FrozenLake: the success rate (optimum ≈ 0.74); Taxi: the registry's threshold is 8; Blackjack: random play ≈ −0.4,
# the optimum ≈ −0.05; CliffWalking: −17 is the safe path, −13 the optimum
TOY_TEXT_TARGETS = {"FrozenLake-v1": 0.6, "Taxi-v4": 7.0, "Blackjack-v1": -0.12, "CliffWalking-v1": -17.0}
# evaluation episodes (--eval-episodes; the files' 20 elsewhere): enough to tell a target from chance
TOY_TEXT_EPISODES = {"FrozenLake-v1": 1000, "Taxi-v4": 100, "Blackjack-v1": 5000, "CliffWalking-v1": 20}
TOY_TEXT_KNOWN_SHORTFALLS: dict[tuple[str, str], str] = {  # seed 1; what was tried: docs/benchmarks.md, "Toy text"
    ("trpo", "Taxi-v4"): "−200: never delivers a passenger",
    ("vpg", "Taxi-v4"): "−200: never delivers a passenger",
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
    ("ppo_clip", "Walker2d-v5"): "3479 RL-Zoo tuned PPO (one run) / 2288 ± 572 CleanRL (final)",
    ("trpo", "Walker2d-v5"): "roughly 1500–3000 (published TRPO curves)",
    ("ppo_clip", "Swimmer-v5"): "282 RL-Zoo PPO (one run: SB3's defaults, γ = 0.9999)",
    ("ppo_clip", "LunarLander-v3"): "242 RL-Zoo tuned PPO (one run)",
    ("ppo_clip", "LunarLanderContinuous-v3"): "271 RL-Zoo tuned PPO (one run)",
}
PUBLISHED.update({("ppo_penalty", e): "— (no published 1 M table)" for e in MUJOCO_ENVS + BOX2D_ENVS})

# ---- MinAtar suite (--minatar): the mean over seeds of the final evaluations; ppo_clip gated, the rest reported ------
MINATAR_ENVS = ("MinAtar/Breakout-v1", "MinAtar/SpaceInvaders-v1", "MinAtar/Asterix-v1", "MinAtar/Freeway-v1")
# gymnax's published PPO checkpoints (10 M steps) in whole numbers (MINATAR_PUBLISHED); the presets train 10 M too
MINATAR_TARGETS = {
    "MinAtar/Breakout-v1": 28,
    "MinAtar/SpaceInvaders-v1": 131,
    "MinAtar/Asterix-v1": 15,
    "MinAtar/Freeway-v1": 58,
}
MINATAR_GATED = ("ppo_clip",)  # the other files are reported against the same target: ✓ or "report", never FAIL
MINATAR_ONLY = {"vpg": ("MinAtar/Breakout-v1",), "trpo": ("MinAtar/Breakout-v1",)}  # algo -> the envs it runs on
MINATAR_KNOWN_SHORTFALLS: dict[tuple[str, str], str] = {}
MINATAR_PUBLISHED = {
    "MinAtar/Breakout-v1": "gymnax PPO 28 (an earlier checkpoint; the retrained one ends at 22.9)",
    "MinAtar/SpaceInvaders-v1": "gymnax PPO 131.6",
    "MinAtar/Asterix-v1": "gymnax PPO 14.95",
    "MinAtar/Freeway-v1": "gymnax PPO 58.8",
}
PUBLISHED.update({("ppo_clip", e): text for e, text in MINATAR_PUBLISHED.items()})

# ---- Atari suite (--atari): the mean over seeds of the last TRAIN_TAIL training episodes' mean, as CleanRL's --------
ATARI_ENVS = ("ALE/Pong-v5", "ALE/Breakout-v5", "ALE/BeamRider-v5")
# CleanRL's ppo_atari.py at 10 M agent steps (NoFrameskip-v4 games, no sticky actions): the mean over 3 seeds of each
# run's mean return over its last 100 training episodes
ATARI_TARGETS = {"ALE/Pong-v5": 20.4, "ALE/Breakout-v5": 415, "ALE/BeamRider-v5": 1916}
TRAIN_TAIL = 100  # training episodes in the Atari suite's statistic (each run's last ones)
ATARI_KNOWN_SHORTFALLS: dict[tuple[str, str], str] = {}
ATARI_CPU_SPS = 165  # ppo_clip on ALE/Pong-v5, seed 1, its first 200 k steps with nothing else running (one thread)
PUBLISHED.update(
    {
        ("ppo_clip", e): f"CleanRL ppo_atari {ATARI_TARGETS[e]:g} ({e[4:-3]}NoFrameskip-v4, 3 seeds, last 100 training "
        "episodes at 10 M steps)"
        for e in ATARI_ENVS
    }
)


@dataclass(frozen=True)
class Suite:
    name: str  # "the MuJoCo suite" in messages
    algos: tuple[str, ...]  # the files it may run
    envs: tuple[str, ...]  # default --envs
    peers: bool  # whether --peers may add SB3 runs
    stem: str  # file names: <stem>.json and <stem>.md
    title: str  # heading of <stem>.md, then `intro`
    intro: str
    sections: Callable[[list, dict], list[str]]  # (cells, startup) -> markdown lines after the failing cells
    criteria: dict  # written to <stem>.json: what the cells are judged against
    shortfalls: dict  # known shortfalls: shown failing, not failing the exit code
    target_word: str  # "threshold" or "target" in the status texts
    target: Callable[[dict, dict], dict]  # (cell, all cells) -> its "target" (None: not gated) and related fields
    passes: Callable[[dict], bool]  # the rule, given a target and no crashed seed
    describe: Callable[[dict, str], str]  # (cell, per-seed evals) -> the middle of its failure line
    columns: tuple[tuple[str, Callable[[dict], str]], ...]  # (header, cell -> text) per table column
    plots: tuple[str, ...]  # curve_<env>_<x>.png per env for these x among "steps", "seconds", "evals"
    eval_episodes: dict[str, int]  # env -> --eval-episodes given to its runs (absent: the file's default)
    only: dict[str, tuple[str, ...]] = field(default_factory=dict)  # algo -> the only envs it runs on (absent: all)
    tail: int = 0  # > 0: each run's mean return over its last `tail` training episodes is kept (cell: tail_mean)

    def runs_on(self, algo: str, env: str) -> bool:
        """Whether the suite has a cell (algo, env): every env of --envs, unless `only` limits the algo."""
        return env in self.only.get(algo, (env,))


def fmt(x, spec: str = ".1f") -> str:
    """A number as the tables and reports show it: "—" missing (a crash), "∞" never reached."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return "∞" if math.isinf(x) else format(x, spec)


def named(d: dict) -> dict:
    """{(algo, env): v} -> {"algo env": v} for JSON."""
    return {f"{k[0]} {k[1]}": v for k, v in d.items()}


def mean_target(targets: dict) -> Callable[[dict, dict], dict]:
    """The target rule of the MuJoCo and Box2D suites, given their TARGETS: targets[(algo, env)], else for ppo_penalty
    PPO_PENALTY_RELATIVE × P, P the larger of ppo_clip's mean (when a ppo_clip seed finished there) and ppo_clip's
    target; and whether the median training seconds are within SECONDS_TARGET (never gated)."""

    def target(c: dict, cells: dict) -> dict:
        time_ok = None if math.isnan(c["wall_s"]) else c["wall_s"] <= SECONDS_TARGET
        out = dict(target=targets.get((c["algo"], c["env"])), target_ref=None, target_factor=None)
        out["missing_seeds"] = [s for s in MEAN_SEEDS if s not in c["seeds"]]
        clip = cells.get(("ppo_clip", c["env"]))
        if c["algo"] == "ppo_penalty" and out["target"] is None and clip and not math.isnan(clip["eval_mean"]):
            ref = max(clip["eval_mean"], targets.get(("ppo_clip", c["env"]), -math.inf))
            out.update(target=PPO_PENALTY_RELATIVE * ref, target_ref=ref, target_factor=PPO_PENALTY_RELATIVE)
            out["target_ref_is"] = "mean" if ref == clip["eval_mean"] else "target"
        return dict(out, seconds_target=SECONDS_TARGET, time_ok=time_ok)

    return target


def target_text(c: dict) -> str:
    if c["target"] is None:
        return "no target"
    if c["target_ref"] is not None:
        what = "target " if c.get("target_ref_is") == "target" else ""
        return f"≥ {c['target_factor']:g} × ppo_clip's {what}{fmt(c['target_ref'])} = {fmt(c['target'])}"
    return f"≥ {c['target']:g}"


def training_seconds(c: dict) -> str:
    """The median training seconds and how they compare with the seconds target (reported, never gated)."""
    if c["time_ok"] is None:
        return "—"
    return f"{fmt(c['wall_s'])} ({'≤' if c['time_ok'] else '>'} {c['seconds_target']:g})"


def startup_section(cells: list[dict], startup: dict) -> list[str]:
    rows = [f"| {m} | {fmt(s, '.2f')} |" for m, s in startup.items()]
    return ['## Start-up (`python -c "import MODULE"`, median of 3)', "", "| module | seconds |\n|---|---|", *rows, ""]


def published_section(cells: list[dict], startup: dict) -> list[str]:
    """The published anchors of the envs run, in the order of the results table; what "final" and "best" mean."""
    envs = {c["env"] for c in cells}
    order = sorted((k for k in PUBLISHED if k[1] in envs), key=lambda k: (k[1], ALGOS.index(k[0]), k[0]))
    rows = [f"| {algo} | {env} | {PUBLISHED[(algo, env)]} |" for algo, env in order]
    episodes = ", ".join(str(n) for n in sorted({n for c in cells for n in c["eval_episodes"]})) or "20"
    every = ", ".join(str(n) for n in sorted({n for c in cells for n in c["eval_every"]})) or "eval_every"
    definitions = (
        f'"final" = deterministic evaluation ({episodes} episodes, from the runs\' args.eval_episodes) after the '
        f'last update. "best" = the maximum over the evaluations every {every} steps during training and the '
        'final one (a max over ~20 noisy evaluations is biased upwards, like Tianshou\'s "max" numbers). '
        "CleanRL's numbers are final, Tianshou's max; Baselines / Spinning Up are read off their learning curves "
        "(average training-episode return), not a deterministic evaluation."
    )
    head = ["## Published (1 M steps unless noted)", "", "| algo | env | published |\n|---|---|---|"]
    return [*head, *rows, "", "## Definitions", "", definitions, ""]


ALGO_ENV_SEEDS = (("algo", lambda c: c["algo"]), ("env", lambda c: c["env"]), ("seeds", lambda c: str(len(c["seeds"]))))
SPS_COLUMN = ("median SPS", lambda c: fmt(c["sps"], ",.0f"))
STATUS_COLUMN = ("status", lambda c: c["status"])
COMMIT_COLUMN = ("commit", lambda c: ", ".join(c["commits"]) or "—")


def every_seed_passes(c: dict) -> bool:
    """The classic and toy-text rule: each seed's final evaluation reaches the target (the mean does not count)."""
    return all(e >= c["target"] for e in c["evals"])


CLASSIC = Suite(
    name="classic",
    algos=ALGOS,
    envs=ENVS,
    peers=True,
    stem="results",
    title="Benchmark results",
    intro=f"Thresholds (deterministic eval mean over 20 episodes, every seed): {THRESHOLDS}. Eval return: mean ± std "
    "and min over seeds of each run's eval mean; medians are over seeds. "
    f"Time/steps to threshold: first episode where the mean of the last {WINDOW} training episodes reaches it "
    "(∞: never). Ratio: our median seconds to threshold / the peer's (SB3 PPO for ppo_clip, sb3-contrib TRPO "
    "for trpo). Definitions: docstring of benchmarks/run.py.",
    sections=startup_section,
    criteria=dict(thresholds=THRESHOLDS),
    shortfalls=KNOWN_SHORTFALLS,
    target_word="threshold",
    target=lambda c, cells: dict(threshold=THRESHOLDS.get(c["env"]), target=THRESHOLDS.get(c["env"])),
    passes=every_seed_passes,
    describe=lambda c, per_seed: f"eval {per_seed}; threshold {fmt(c['target'])}",
    columns=(
        *ALGO_ENV_SEEDS,
        ("eval return mean ± std", lambda c: f"{fmt(c['eval_mean'])} ± {fmt(c['eval_std'])}"),
        ("min", lambda c: fmt(c["eval_min"])),
        ("median steps to thr.", lambda c: fmt(c["steps_to_threshold"], ",.0f")),
        ("median s to thr.", lambda c: fmt(c["seconds_to_threshold"])),
        SPS_COLUMN,
        ("s-to-thr. ratio vs peer", lambda c: fmt(c["peer_time_ratio"], ".2f")),
        STATUS_COLUMN,
    ),
    plots=("steps", "seconds"),
    eval_episodes={},
)


def mean_suite(name: str, envs: tuple[str, ...], targets: dict, shortfalls: dict, stem: str) -> Suite:
    """A suite judged on the mean over seeds of the final evaluations (MuJoCo, Box2D)."""
    return Suite(
        name=name,
        algos=MUJOCO_ALGOS,
        envs=envs,
        peers=False,
        stem=stem,
        title=f"{name} benchmark results",
        intro="Pass: the mean over seeds of the final evaluations ≥ the target (the suite's TARGETS; ppo_penalty "
        f"without one: {PPO_PENALTY_RELATIVE:g} × the larger of ppo_clip's mean and ppo_clip's target on the same "
        f"env, no target without ppo_clip), every seed of {MEAN_SEEDS} ran (else: incomplete), none crashed. Mean ± "
        "std over seeds; medians over seeds. Median "
        f"training s: summary wall time without the evaluations, compared with {SECONDS_TARGET:g} s (one 1 M-step "
        "run on one core; reported, never gated). Median process s: the whole run (import, training, periodic and "
        "final evaluations). Commit: the code each cell's runs ran at. Definitions: docstring of benchmarks/run.py.",
        sections=published_section,
        criteria=dict(
            targets=dict(
                absolute=named(targets),
                ppo_penalty_relative_to_ppo_clip=PPO_PENALTY_RELATIVE,
                seconds_target=SECONDS_TARGET,
                on="mean over seeds of summary['eval_mean_return']; the seconds target is never gated",
            ),
            published=named({k: v for k, v in PUBLISHED.items() if k[1] in envs}),
        ),
        shortfalls=shortfalls,
        target_word="target",
        target=mean_target(targets),
        passes=lambda c: not c["missing_seeds"] and c["eval_mean"] >= c["target"],
        describe=lambda c, per_seed: (
            f"mean {fmt(c['eval_mean'])} over seeds ({per_seed}); target {target_text(c)}"
            + (f"; incomplete: no seed {', '.join(map(str, c['missing_seeds']))}" if c["missing_seeds"] else "")
        ),
        columns=(
            *ALGO_ENV_SEEDS,
            ("final eval mean ± std", lambda c: f"{fmt(c['eval_mean'])} ± {fmt(c['eval_std'])}"),
            ("per-seed final", lambda c: ", ".join(fmt(e) for e in c["evals"])),
            ("best eval mean ± std", lambda c: f"{fmt(c['best_mean'])} ± {fmt(c['best_std'])}"),
            ("target", target_text),
            SPS_COLUMN,
            ("median training s", training_seconds),
            ("median process s", lambda c: fmt(c["process_s"])),
            COMMIT_COLUMN,
            STATUS_COLUMN,
        ),
        plots=("steps", "seconds", "evals"),
        eval_episodes={},
    )


MUJOCO = mean_suite("MuJoCo", MUJOCO_ENVS, MUJOCO_TARGETS, MUJOCO_KNOWN_SHORTFALLS, "results_mujoco")
BOX2D = mean_suite("Box2D", BOX2D_ENVS, BOX2D_TARGETS, BOX2D_KNOWN_SHORTFALLS, "results_box2d")
TOY_TEXT = Suite(
    name="toy-text",
    algos=ALGOS,
    envs=TOY_TEXT_ENVS,
    peers=False,
    stem="results_toy_text",
    title="toy-text benchmark results",
    intro=f"Pass: every seed's final deterministic evaluation ≥ the env's target {TOY_TEXT_TARGETS}, no seed crashed; "
    f"evaluation episodes per env {TOY_TEXT_EPISODES}. Each file runs with its own defaults (its toy_text preset). "
    "Median process s: the whole run. Commit: the code each cell's runs ran at.",
    sections=lambda cells, startup: [],
    criteria=dict(targets=TOY_TEXT_TARGETS, eval_episodes=TOY_TEXT_EPISODES),
    shortfalls=TOY_TEXT_KNOWN_SHORTFALLS,
    target_word="target",
    target=lambda c, cells: dict(target=TOY_TEXT_TARGETS.get(c["env"])),
    passes=every_seed_passes,
    describe=lambda c, _: (
        "eval "  # its own per-seed list: a Blackjack return needs more than one decimal
        + ", ".join(f"seed {s}: {fmt(e, '.4g')}" for s, e in zip(c["seeds"], c["evals"], strict=True))
        + f"; target {fmt(c['target'], 'g')}"
    ),
    columns=(
        *ALGO_ENV_SEEDS,
        ("per-seed final eval", lambda c: ", ".join(fmt(e, ".4g") for e in c["evals"])),
        ("target", lambda c: fmt(c["target"], "g")),
        ("eval episodes", lambda c: ", ".join(map(str, c["eval_episodes"])) or "—"),
        SPS_COLUMN,
        ("median process s", lambda c: fmt(c["process_s"])),
        COMMIT_COLUMN,
        STATUS_COLUMN,
    ),
    plots=("steps",),
    eval_episodes=TOY_TEXT_EPISODES,
)


def mean_of_seeds_target(targets: dict, gated: tuple[str, ...] | None = None) -> Callable[[dict, dict], dict]:
    """The target rule of the MinAtar and Atari suites: targets[env] for every algo; `gated` (None: every algo) the
    algos whose cells fail the exit code below it, the others reported (✓ or "report"); the seeds of MEAN_SEEDS
    missing."""

    def target(c: dict, cells: dict) -> dict:
        missing = [s for s in MEAN_SEEDS if s not in c["seeds"]]
        return dict(target=targets.get(c["env"]), gated=gated is None or c["algo"] in gated, missing_seeds=missing)

    return target


def anchors_section(definitions: Callable[[list[dict]], str]) -> Callable[[list, dict], list[str]]:
    """The MinAtar and Atari suites' report sections: the published anchors of the envs run, then `definitions`."""

    def section(cells: list[dict], startup: dict) -> list[str]:
        envs = {c["env"] for c in cells}
        rows = [f"| {env} | {text} |" for (algo, env), text in PUBLISHED.items() if env in envs and algo == "ppo_clip"]
        head = ["## Published", "", "| env | published |\n|---|---|", *sorted(rows)]
        return [*head, "", "## Definitions", "", definitions(cells), ""]

    return section


def evaluation_settings(cells: list[dict]) -> tuple[str, str]:
    """The runs' evaluation episodes and periods, as the definitions quote them."""
    episodes = ", ".join(str(n) for n in sorted({n for c in cells for n in c["eval_episodes"]})) or "eval_episodes"
    every = ", ".join(f"{n:,}" for n in sorted({n for c in cells for n in c["eval_every"]})) or "eval_every"
    return episodes, every


def final_and_best(cells: list[dict]) -> str:
    episodes, every = evaluation_settings(cells)
    return (
        f'"final" = the deterministic evaluation (argmax) after the last update, {episodes} episodes (the runs\' '
        f'eval_episodes); "best" = the maximum over it and the evaluations every {every} steps (biased upwards).'
    )


def incomplete(c: dict) -> str:
    return f"; incomplete: no seed {', '.join(map(str, c['missing_seeds']))}" if c["missing_seeds"] else ""


def seeds_text(values: list[float]) -> str:
    return ", ".join(fmt(v) for v in values)


MINATAR = Suite(
    name="MinAtar",
    algos=ALGOS,
    envs=MINATAR_ENVS,
    peers=False,
    stem="results_minatar",
    title="MinAtar benchmark results",
    intro="Each file with its minatar preset (10 M steps), seeds 1–3: no sticky actions, episodes capped at 1,000 "
    "steps (Freeway at its own 2,500). The targets are gymnax's published PPO, which used an MLP (2×256) on the "
    "flattened grid and evaluated sampled actions over 164 episodes; ours is a CNN (16·3×3, fc 128) evaluated "
    "deterministically (argmax) over 100 episodes (the presets' eval_episodes).\n\n"
    "Pass (ppo_clip, gated): the mean over seeds of the final evaluations ≥ the env's target, every seed of "
    f"{MEAN_SEEDS} ran (else: incomplete), none crashed. ppo_penalty and dppo (all four envs), vpg and trpo "
    '(Breakout only) are reported against the same target: ✓ at or above it, "report" below it, never failing the '
    "exit code. Mean ± std over seeds; medians over seeds. Median training s: summary wall time without the "
    "evaluations; median process s: the whole run. Commit: the code each cell's runs ran at.",
    sections=anchors_section(
        lambda cells: (
            final_and_best(cells) + " gymnax's numbers: the mean return of its PPO checkpoints over 164 "
            "episodes of sampled actions."
        )
    ),
    criteria=dict(
        targets=dict(
            absolute=MINATAR_TARGETS,
            gated=list(MINATAR_GATED),
            on="mean over seeds of summary['eval_mean_return']; the other algos are reported against the same target",
        ),
        only=MINATAR_ONLY,
        published=MINATAR_PUBLISHED,
    ),
    shortfalls=MINATAR_KNOWN_SHORTFALLS,
    target_word="target",
    target=mean_of_seeds_target(MINATAR_TARGETS, MINATAR_GATED),
    passes=lambda c: not c["missing_seeds"] and c["eval_mean"] >= c["target"],
    describe=lambda c, per_seed: (
        f"mean {fmt(c['eval_mean'])} over seeds ({per_seed}); target ≥ {c['target']:g}{incomplete(c)}"
    ),
    columns=(
        *ALGO_ENV_SEEDS,
        ("final eval mean ± std", lambda c: f"{fmt(c['eval_mean'])} ± {fmt(c['eval_std'])}"),
        ("per-seed final", lambda c: seeds_text(c["evals"])),
        ("best eval mean ± std", lambda c: f"{fmt(c['best_mean'])} ± {fmt(c['best_std'])}"),
        ("target (gymnax PPO)", lambda c: fmt(c["target"], "g")),
        SPS_COLUMN,
        ("median training s", lambda c: fmt(c["wall_s"], ",.0f")),
        ("median process s", lambda c: fmt(c["process_s"], ",.0f")),
        COMMIT_COLUMN,
        STATUS_COLUMN,
    ),
    plots=("steps", "seconds", "evals"),
    eval_episodes={},
    only=MINATAR_ONLY,
)


def atari_time() -> str:
    hours = 10_000_000 / ATARI_CPU_SPS / 3600
    return f"on a 2-core CPU about {hours:.0f} h a run ({ATARI_CPU_SPS:,} SPS measured); on a GPU unknown to us"


def atari_definitions(cells: list[dict]) -> str:
    tail = (
        f'"last {TRAIN_TAIL} training" = per run, the mean game score (the env\'s own reward, not clipped; a whole '
        f"game, not a life) of the last {TRAIN_TAIL} episodes its training envs finished (all of them if fewer), from "
        "summary['curve'] before the results file slims it (the run keeps it as train_tail_mean)."
    )
    return f"{tail} {final_and_best(cells)}"


ATARI = Suite(
    name="Atari",
    algos=("ppo_clip",),
    envs=ATARI_ENVS,
    peers=False,
    stem="results_atari",
    title="Atari benchmark results",
    intro="ppo_clip with its atari preset (CleanRL's ppo_atari hyper-parameters), 10 M agent steps (40 M frames), "
    "seeds 1–3: ALE v5 games at frameskip 1 through gymnasium's AtariPreprocessing (up to 30 no-op starts, 4 frames a "
    "step, 84×84 grey, 4 stacked), no sticky actions. The targets are CleanRL's ppo_atari numbers (NoFrameskip-v4 "
    f"games, no sticky actions): the mean over 3 seeds of the mean return of the last {TRAIN_TAIL} training "
    "episodes at 10 M steps. We gate on that same statistic, computed from each run's training curve; our final "
    "deterministic evaluation is shown beside it and not gated.\n\n"
    f"Pass: the mean over seeds of the last-{TRAIN_TAIL}-training-episodes means ≥ the target, every seed of "
    f"{MEAN_SEEDS} ran (else: incomplete), none crashed. Meant for a GPU machine ({atari_time()}): each file's "
    "`--device auto` (the default, which run.py keeps) trains an image policy on a GPU where torch sees one. Mean ± "
    "std over seeds; medians over seeds. Median training s: summary wall time without the evaluations; median "
    "process s: the whole run. Commit: the code each cell's runs ran at.",
    sections=anchors_section(atari_definitions),
    criteria=dict(
        targets=dict(
            absolute=ATARI_TARGETS,
            on=f"mean over seeds of each run's mean return over its last {TRAIN_TAIL} training episodes "
            "(train_tail_mean), CleanRL's statistic; the final deterministic evaluation is not gated",
        ),
        train_tail=TRAIN_TAIL,
        published={e: PUBLISHED[("ppo_clip", e)] for e in ATARI_ENVS},
    ),
    shortfalls=ATARI_KNOWN_SHORTFALLS,
    target_word="target",
    target=mean_of_seeds_target(ATARI_TARGETS),
    passes=lambda c: not c["missing_seeds"] and c["tail_mean"] >= c["target"],
    describe=lambda c, _: (  # its own per-seed list: the gated statistic, not the evaluations
        f"last {TRAIN_TAIL} training episodes: mean {fmt(c['tail_mean'])} over seeds ("
        + ", ".join(f"seed {s}: {fmt(t)}" for s, t in zip(c["seeds"], c["tail_means"], strict=True))
        + f"); target ≥ {c['target']:g}{incomplete(c)}; final evaluation {fmt(c['eval_mean'])}"
    ),
    columns=(
        *ALGO_ENV_SEEDS,
        (f"last {TRAIN_TAIL} training mean ± std", lambda c: f"{fmt(c['tail_mean'])} ± {fmt(c['tail_std'])}"),
        (f"per-seed last {TRAIN_TAIL}", lambda c: seeds_text(c["tail_means"])),
        ("target (CleanRL)", lambda c: fmt(c["target"], "g")),
        ("final eval mean ± std", lambda c: f"{fmt(c['eval_mean'])} ± {fmt(c['eval_std'])}"),
        ("per-seed final", lambda c: seeds_text(c["evals"])),
        SPS_COLUMN,
        ("median training s", lambda c: fmt(c["wall_s"], ",.0f")),
        ("median process s", lambda c: fmt(c["process_s"], ",.0f")),
        COMMIT_COLUMN,
        STATUS_COLUMN,
    ),
    plots=("steps", "seconds", "evals"),
    eval_episodes={},
    tail=TRAIN_TAIL,
)
