"""A pytest plugin: a test session must leave no new file or folder in the repository.

At the start and at the end of the session, the process that runs it (the controller under pytest-xdist, whose
workers skip this) asks git for everything untracked and not ignored: every such file, and every such folder, an
empty one too. Whatever is there at the end and was not at the start fails the session (exit code 1), listed under
"files left in the repository". What .gitignore ignores (runs/, __pycache__/, .pytest_cache/, .ci/venv/, ...) does
not count; a test writes anywhere else only under its tmp_path. Outside a git work tree there is nothing to compare
and the check says so. Enabled by `pytest_plugins = ["clean_tree"]` in tests/conftest.py; tests/test_clean_tree.py
checks that it is enabled and that it fails a session that leaves a file behind.
"""

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEFORE = pytest.StashKey[set[str] | None]()
LEFT = pytest.StashKey[list[str] | None]()


def untracked(root: str = ROOT) -> set[str] | None:
    """Untracked, not ignored paths under `root`, relative to it: each file, and each folder git sees as wholly
    untracked ("dir/"); None without git or outside a work tree."""
    found = set()
    for whole_folders in ([], ["--directory"]):  # files one by one, then new folders (an empty one too)
        cmd = ["git", "ls-files", "-z", "--others", "--exclude-standard", *whole_folders]
        try:
            proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return None
        if proc.returncode != 0:
            return None
        found.update(path for path in proc.stdout.split("\0") if path)
    return found


def _controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")  # an xdist worker has it


def pytest_sessionstart(session: pytest.Session) -> None:
    if _controller(session.config):
        session.config.stash[BEFORE] = untracked()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    before = config.stash.get(BEFORE, None)
    if not _controller(config) or before is None:
        return
    after = untracked()
    left = sorted(after - before) if after is not None else []
    config.stash[LEFT] = left
    if left and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _controller(config):
        return
    if config.stash.get(BEFORE, None) is None:
        terminalreporter.write_line(f"clean_tree: no git work tree at {ROOT}, so no check for files left behind")
        return
    left = config.stash.get(LEFT, None)
    if left:
        terminalreporter.section("files left in the repository", sep="=", red=True, bold=True)
        for path in left:
            terminalreporter.write_line(path)
        terminalreporter.write_line(
            f"The session created these under {ROOT}, untracked and not ignored: a test must write only under its "
            "tmp_path (or a path .gitignore ignores). This fails the session."
        )
