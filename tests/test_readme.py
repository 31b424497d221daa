"""README.md and docs/*.md stay true: the default hyper-parameter table is what the files really use, and every
shell command they show still runs as written, as far as that can be checked without running it: its program and
requirements files exist and its flags parse with the parser of the file it calls (no training)."""

import argparse
import glob
import importlib
import os
import re
import shlex
import sys
from unittest import mock

import pytest
import tyro

from benchmarks.hparams import table
from conftest import ALGOS, ROOT, load

DOCS = ["README.md", *sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))]
HPARAMS_DOC = "docs/benchmarks.md"  # where the default hyper-parameter table lives
HPARAMS_START, HPARAMS_END = "<!-- hparams:start -->\n", "<!-- hparams:end -->"
PLACEHOLDER = re.compile(r"<[^<>\s]+>")  # runs/<run>: a path the reader fills in
SHELL_FENCES = ("```bash", "```sh", "```shell", "```console")


def read(doc: str) -> str:
    with open(os.path.join(ROOT, doc)) as f:
        return f.read()


def test_the_hyper_parameter_table_matches_the_files():
    texts = {doc: read(doc) for doc in DOCS}
    holders = [doc for doc, text in texts.items() if HPARAMS_START in text or HPARAMS_END in text]
    assert holders == [HPARAMS_DOC], f"the table's markers belong in {HPARAMS_DOC} alone, found in {holders}"
    shown = texts[HPARAMS_DOC].split(HPARAMS_START, 1)[1].split(HPARAMS_END, 1)[0]
    assert shown.strip() == table().strip(), f"{HPARAMS_DOC} is stale: python benchmarks/hparams.py prints the table"


# ---- Every shell command in README.md and docs/*.md ----
def shell_commands(text: str) -> list[tuple[int, list[str]]]:
    """(line number, argv) of every command in the text's shell blocks: a line ending in a backslash joined to the
    next, # comments dropped, a line split into its commands at && and ;."""
    found, in_block, logical, first = [], False, None, 0
    for number, line in enumerate(text.splitlines(), 1):
        fence = line.strip()
        if not in_block:
            in_block = fence in SHELL_FENCES
            continue
        if fence == "```":
            assert logical is None, f"line {first}: a shell block ends in a continued line"
            in_block = False
            continue
        if logical is None:
            logical, first = "", number
        logical += line.rstrip()
        if logical.endswith("\\"):
            logical = logical[:-1] + " "
            continue
        argv = []
        for token in [*shlex.split(logical, comments=True), "&&"]:
            if token in ("&&", ";"):
                found += [(first, argv)] if argv else []
                argv = []
            else:
                argv.append(token)
        logical = None
    assert not in_block, "a shell block is not closed"
    return found


def without_placeholders(args: list[str]) -> list[str]:
    """args without the `--resume X` / `--checkpoint X` pairs whose X is a placeholder (runs/<run>), and without
    --eval-only when its --checkpoint went: what is left must parse as it is."""
    kept, dropped_checkpoint, i = [], False, 0
    while i < len(args):
        flag, _, value = args[i].partition("=")
        if flag in ("--resume", "--checkpoint"):
            value = value or (args[i + 1] if i + 1 < len(args) else "")
            step = 1 if "=" in args[i] else 2
            if PLACEHOLDER.search(value):
                dropped_checkpoint |= flag == "--checkpoint"
                i += step
                continue
        kept.append(args[i])
        i += 1
    return [a for a in kept if not (dropped_checkpoint and a == "--eval-only")]


class Parsed(Exception):
    """Raised in place of going on after a benchmark script's argparse parser accepted its arguments."""


def check_benchmark(script: str, args: list[str]) -> None:
    """The script's own argparse parser accepts args: its main() runs up to parse_args and stops there. A script
    without an argparse main must at least contain every flag it is given."""
    path = os.path.join(ROOT, script)
    with open(path) as f:
        source = f.read()
    if "argparse.ArgumentParser" not in source or "def main(" not in source:
        for flag in (a.split("=", 1)[0] for a in args if a.startswith("-")):
            assert f'"{flag}"' in source or f"'{flag}'" in source, f"{script} has no flag {flag}"
        return
    module = importlib.import_module("benchmarks." + os.path.basename(script)[:-3])
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise Parsed(parse_args(self, args, namespace))

    with mock.patch.object(argparse.ArgumentParser, "parse_args", parse_then_stop):
        with mock.patch.object(sys, "argv", [path, *args]):
            try:
                module.main()
            except Parsed:
                return
            except SystemExit as e:
                raise AssertionError(f"{script} rejects {args} (exit code {e.code})") from None
    raise AssertionError(f"{script}'s main() never parsed its arguments")


def check_script(script: str, args: list[str]) -> None:
    """`python SCRIPT ARGS` (or torchrun's SCRIPT ARGS) would start as written."""
    assert os.path.isfile(os.path.join(ROOT, script)), f"{script} does not exist"
    name = script.removesuffix(".py")
    if "--help" in args or "-h" in args:
        return  # prints the flags: the file existing is all there is to check
    if name in ALGOS:
        try:
            load(name).parse_args(without_placeholders(args))
        except SystemExit as e:  # tyro: an unknown flag or a bad value
            raise AssertionError(f"{script} rejects {args} (exit code {e.code})") from None
    elif name == "watch":
        argv = [PLACEHOLDER.sub("run", a) for a in args]  # a placeholder checkpoint path: any path parses
        try:
            tyro.cli(load("watch").WatchArgs, args=argv)
        except SystemExit as e:
            raise AssertionError(f"watch.py rejects {args} (exit code {e.code})") from None
    elif script.startswith("benchmarks/"):
        check_benchmark(script, args)
    else:
        raise AssertionError(f"no check for the script {script}: add one to tests/test_readme.py")


def check_command(argv: list[str]) -> None:
    """Raises AssertionError where the command would not run as written; a program not recognised here fails too."""
    while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", argv[0]):  # WANDB_MODE=offline python …
        argv = argv[1:]
    program, *rest = argv
    if program in ("python", "python3") and rest[:1] == ["-m"]:
        assert rest[1:2] in (["pytest"], ["venv"]), f"python -m {rest[1:2]}: not a module these docs use"
    elif program in ("python", "python3"):
        check_script(rest[0], rest[1:])
    elif program == "torchrun":  # torchrun's own flags, then the script and its flags
        i = next((i for i, a in enumerate(rest) if a.endswith(".py")), None)
        assert i is not None, "torchrun without a script"
        check_script(rest[i], rest[i + 1 :])
    elif program == "pip":
        assert rest[:1] == ["install"], f"pip {rest[:1]}"
        files = [rest[i + 1] for i, a in enumerate(rest) if a == "-r"]
        others = [a for i, a in enumerate(rest[1:], 1) if not a.startswith("-") and rest[i - 1] != "-r"]
        assert files and not others, f"pip install takes requirements files here (-r FILE), got {rest[1:]}"
        for name in files:
            assert os.path.isfile(os.path.join(ROOT, name)), f"{name} does not exist"
    elif program in (".", "source"):
        assert rest == [".venv/bin/activate"], f"{program} {rest}"
    elif program != "ruff":
        raise AssertionError(f"no check for the program {program!r}: add one to tests/test_readme.py")


COMMANDS = [(doc, number, argv) for doc in DOCS for number, argv in shell_commands(read(doc))]


@pytest.mark.parametrize("doc, number, argv", COMMANDS, ids=[f"{doc}:{n}:{' '.join(a)[:60]}" for doc, n, a in COMMANDS])
def test_every_documented_command_parses(doc, number, argv):
    try:
        check_command(argv)
    except (AssertionError, ValueError) as e:  # ValueError: parse_args' one-line errors
        pytest.fail(f"{doc} line {number}: {shlex.join(argv)}\n  {e}")


def test_the_commands_are_all_found():
    """The extraction sees what it must: the test command, continued lines, comments and && chains."""
    found = {doc: [shlex.join(argv) for _, argv in shell_commands(read(doc))] for doc in DOCS}
    assert "python -m pytest -q -n auto --dist worksteal tests" in found["README.md"]
    assert "pip install -r requirements-atari.txt" in found["README.md"]
    assert any(
        c.startswith("torchrun --nnodes 2") and c.endswith("dppo.py --env Pendulum-v1")
        for c in found["docs/distributed.md"]
    )
    assert all(len(commands) >= 3 for commands in found.values()), {d: len(c) for d, c in found.items()}


@pytest.mark.parametrize(
    "command, why",
    [
        ("python ppo_clip.py --env CartPole-v1 --no-such-flag 1", "rejects"),
        ("python trpo.py --clip-coef 0.2", "rejects"),  # ppo_clip's flag, not trpo's
        ("python ppo_clip.py --learning-rate -1", "learning_rate must be > 0"),
        ("python nope.py", "does not exist"),
        ("pip install -r requirements-nope.txt", "does not exist"),
        ("pip install torch", "requirements files"),
        ("curl https://example.com", "no check for the program"),
        ("python watch.py runs/<run>/ppo_clip.pt --no-such-flag", "rejects"),
        ("python benchmarks/run.py --no-such-suite", "rejects"),
        ("torchrun --standalone --nproc-per-node 2 dppo.py --sync never", "rejects"),
    ],
)
def test_a_command_that_would_not_run_fails(command, why):
    with pytest.raises((AssertionError, ValueError), match=why):
        check_command(shlex.split(command))


def test_placeholder_checkpoints_are_left_out():
    assert without_placeholders(["--checkpoint", "runs/<run>/best.pt", "--eval-only"]) == []
    assert without_placeholders(["--resume=runs/<run>", "--total-timesteps", "300000"]) == [
        "--total-timesteps",
        "300000",
    ]
    assert without_placeholders(["--checkpoint", "a.pt", "--eval-only"]) == ["--checkpoint", "a.pt", "--eval-only"]


# ---- Links between README.md and docs/*.md ----
def anchors(text: str) -> set[str]:
    """GitHub's anchors of the text's headings: lower case, punctuation dropped, spaces as hyphens."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)  # a shell comment is no heading
    headings = re.findall(r"^#+ (.+)$", prose, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", DOCS)
def test_every_local_link_points_somewhere(doc):
    """A link or image to a file of the repository names one that exists, and its #anchor a heading there."""
    text = read(doc)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):  # https://…: not checked here
            continue
        path, _, anchor = target.partition("#")
        path = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
        assert os.path.exists(os.path.join(ROOT, path)), f"{doc} links to {target}: no {path}"
        if anchor:
            assert anchor in anchors(read(path)), f"{doc} links to {target}: {path} has no heading #{anchor}"
