"""Single-file code repeats text on purpose. The copies meant to be identical must stay identical, so a fix in one
file is a fix in all: the shared text below the banner (as a whole), the definitions every file keeps above it
(decorators included), the β rule and the shared Args fields. And the part above the banner stays the algorithm's
own, short enough to read first (docs/design.md: the layout). These tests compare and measure source text."""

import ast
import os
import re

import pytest

from conftest import ALGOS, ROOT

SINGLE = ["vpg", "trpo", "ppo_penalty", "ppo_clip"]  # one process each; dppo adds a section of its own
BANNER = "# =============================================================================================\n# The text"
DPPO_OWN = "# ---- dppo's own plumbing"
MAIN = 'if __name__ == "__main__":'
# Defined above the banner by every algorithm file, character for character the same.
SHARED = ["compute_gae", "collect_rollout"]
# Defined above the banner only by the files that need them, identical wherever they are.
SHARED_WHERE_PRESENT = ["kl_divergence", "update_beta"]
# Lines above the banner (ruff-formatted), and the line by which the policy loss (trpo: the natural step) is written.
# The layout's budgets, plus the 15 lines a file was given for image observations (its Args, rollout and presets).
BUDGET = {"ppo_clip": 240, "vpg": 250, "ppo_penalty": 260, "trpo": 320, "dppo": 400}
PIXELS = 15
FIRST_LOSS = {
    "ppo_clip": ("def clipped_surrogate", 130),
    "vpg": ("def policy_gradient_loss", 160),
    "ppo_penalty": ("def penalized_surrogate", 160),
    "trpo": ("def trpo_step", 160),
    "dppo": ("def ppo_loss", 160),
}


def source(algo: str) -> str:
    with open(os.path.join(ROOT, f"{algo}.py")) as f:
        return f.read()


def definitions(text: str) -> dict[str, str]:
    """Top-level functions and classes by name, as source text from their first decorator to their last line."""
    lines = text.splitlines()
    found = {}
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            found[node.name] = "\n".join(lines[first - 1 : node.end_lineno])
    return found


def region(text: str) -> str:
    """From the banner to the end of the file."""
    assert text.count(BANNER) == 1, "exactly one banner"
    return text[text.index(BANNER) :]


def above(algo: str) -> str:
    return source(algo).split(BANNER)[0]


def test_every_algorithm_file_is_here():
    assert ALGOS == ["vpg", "trpo", "ppo_penalty", "ppo_clip", "dppo"]


def test_the_shared_text_is_one_text_in_every_single_process_file():
    reference = region(source("ppo_clip"))
    for algo in SINGLE:
        assert region(source(algo)) == reference, f"{algo}.py's shared text differs from ppo_clip.py's"


def test_dppo_keeps_the_shared_text_and_declares_its_own_section():
    dppo = region(source("dppo"))
    assert dppo.count(DPPO_OWN) == 1, "dppo.py declares its own plumbing section once"
    shared = region(source("ppo_clip"))
    assert dppo[: dppo.index(DPPO_OWN)] == shared[: shared.index(MAIN)]


@pytest.mark.parametrize("algo", ALGOS)
def test_above_the_banner_is_the_algorithms_own(algo):
    """A reader who stops at the banner has read the algorithm and nothing else: networks, distributions, statistics,
    the run's bookkeeping, checkpoints, wandb and argument parsing are defined below it."""
    text = above(algo)
    for name in (
        "class Policy",
        "class Value",
        "def log_prob",
        "def sample",
        "class ObsNorm",
        "class RewardScale",
        "class RunArgs",
        "class Run",
        "def parse_args",
        "def check_args",
        "def make_envs",
        "import wandb",
        "def read_checkpoint",
    ):
        assert name not in text, f"{algo}.py defines {name!r} above the banner"
    bookkeeping = {"eval_episodes", "eval_every", "save_every", "save_model", "resume", "checkpoint", "track"}
    assert not bookkeeping & set(args_lines(algo)), f"{algo}.Args keeps bookkeeping flags above the banner"


@pytest.mark.parametrize("algo", ALGOS)
def test_the_algorithm_is_read_first_and_in_short_pieces(algo):
    """Lines above the banner within the file's budget; the policy loss (trpo: the natural step) written early; no
    function of the file over 60 lines."""
    text = above(algo)
    n = text.rstrip("\n").count("\n") + 1
    assert n <= BUDGET[algo] + PIXELS, f"{algo}.py has {n} lines above the banner, budget {BUDGET[algo]} + {PIXELS}"
    name, by = FIRST_LOSS[algo]
    line = text[: text.index(name)].count("\n") + 1
    assert line <= by, f"{algo}.py writes {name} at line {line}, after line {by}"
    for node in ast.walk(ast.parse(source(algo))):
        if isinstance(node, ast.FunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= 60, f"{algo}.py: {node.name} has {length} lines"


@pytest.mark.parametrize("name", SHARED + SHARED_WHERE_PRESENT)
def test_shared_definitions_are_identical(name):
    copies = {a: d[name] for a in ALGOS if name in (d := definitions(above(a)))}
    if name in SHARED:
        assert set(copies) == set(ALGOS), f"{name} missing above the banner of {sorted(set(ALGOS) - set(copies))}"
    else:
        assert len(copies) >= 2, f"{name} is shared by at least two files"
    reference_file, reference = next(iter(copies.items()))
    for algo, text in copies.items():
        assert text == reference, f"{name} in {algo}.py differs from the copy in {reference_file}.py"


def test_the_beta_bounds_are_one_line_in_both_penalty_files():
    lines = [[ln for ln in source(a).splitlines() if ln.startswith("BETA_MIN")] for a in ("ppo_penalty", "dppo")]
    assert len(lines[0]) == 1 and lines[0] == lines[1]


def args_lines(algo: str) -> dict[str, str]:
    """Each Args field's line (declaration and help), by field name."""
    text = definitions(source(algo))["Args"]
    return {m.group(1): m.group(0) for m in re.finditer(r"^    (\w+): .*$", text, re.M)}


# Fields whose default or meaning differs by file, with the reason; every other field that several files share has
# one line everywhere.
FIELDS_THAT_DIFFER = {
    "total_timesteps": "the generic budget suits each algorithm's sample efficiency",
    "num_envs": "vpg and dppo use other batch shapes",
    "num_steps": "vpg and dppo use other batch shapes",
    "num_minibatches": "value minibatches in vpg/trpo, policy + value ones in the PPO files",
    "vf_epochs": "trpo fits its critic 10 times a batch, vpg 5",
    "learning_rate": "the joint optimiser in the PPO files, the policy's own in vpg",
    "anneal_lr": "vpg anneals both of its learning rates",
    "max_grad_norm": "per-algorithm defaults",
    "kl_early_stop": "dppo's stop uses the KL averaged over ranks",
    "beta_init": "ppo_penalty also has a fixed-β mode",
    "run": "dppo's run flags add its run name and summary file",
}


def test_shared_args_fields_are_identical():
    per_file = {a: args_lines(a) for a in ALGOS}
    names = {n for lines in per_file.values() for n in lines}
    compared = 0
    for name in sorted(names - set(FIELDS_THAT_DIFFER)):
        copies = {a: lines[name] for a, lines in per_file.items() if name in lines}
        if len(copies) > 1:
            compared += 1
            assert len(set(copies.values())) == 1, f"Args.{name} differs: {copies}"
    assert compared >= 10  # env, seed, gamma, gae_lambda, norm_obs, norm_reward, hidden_sizes, log_std_init …
    for name in FIELDS_THAT_DIFFER:  # an exemption that no longer differs is dropped, so the check stays tight
        assert len({lines[name] for lines in per_file.values() if name in lines}) > 1, f"{name} no longer differs"


def test_every_args_field_is_documented():
    """tyro shows an inline comment (or a docstring under the field) as the flag's help."""
    for algo in ALGOS:
        for cls in ("Args", "RunArgs", "DistributedRunArgs"):
            text = definitions(source(algo)).get(cls, "")
            for name, line in re.findall(r"^    ((?:\w+)): (.*)$", text, re.M):
                documented = re.search(r"  # \S", line) or re.search(rf"^    {name}: .*\n    \"\"\"", text, re.M)
                assert documented, f"{algo}.{cls}.{name} has no help text"


def test_the_drift_checks_would_notice_a_change():
    """The comparisons are on exact text: a one-character edit or a dropped decorator is a difference."""
    text = source("ppo_clip")
    assert definitions(text.replace("gamma * lam", "gamma*lam"))["compute_gae"] != definitions(text)["compute_gae"]
    dropped = text.replace("@torch.no_grad()\ndef collect_rollout", "def collect_rollout")
    assert dropped != text and definitions(dropped)["collect_rollout"] != definitions(text)["collect_rollout"]
    assert region(text.replace("exit(2)", "exit(3)")) != region(text)
