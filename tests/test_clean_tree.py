"""tests/clean_tree.py, the check that a test session leaves no new file in the repository: that it is enabled here,
and, on a small git repository of its own, that it fails a session leaving a stray file or folder (in one process
and under pytest-xdist) and passes one that writes only under tmp_path or into ignored folders."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import clean_tree
from conftest import ROOT

STRAY_TESTS = textwrap.dedent("""
    import os

    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def test_writes_under_tmp_path(tmp_path):
        (tmp_path / "fine.txt").write_text("x")

    def test_writes_into_an_ignored_folder():
        os.makedirs(os.path.join(ROOT, "runs", "x"), exist_ok=True)

    def test_may_leave_a_stray_file_and_folder():
        if os.environ.get("LEAVE_STRAYS"):
            open(os.path.join(ROOT, "stray.log"), "w").close()
            os.makedirs(os.path.join(ROOT, "tests", "stray_folder"))
""")


def test_the_check_is_enabled(request):
    assert request.config.pluginmanager.has_plugin("clean_tree"), (
        'tests/conftest.py must enable the check: pytest_plugins = ["clean_tree"]'
    )


def test_untracked_lists_new_files_and_folders_and_skips_ignored_ones(tmp_path):
    assert clean_tree.untracked(str(tmp_path)) is None  # not a git work tree
    git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / ".gitignore").write_text("runs/\n")
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c.txt").write_text("")
    (tmp_path / "empty").mkdir()
    assert clean_tree.untracked(str(tmp_path)) == {".gitignore", "a/", "a/b/c.txt", "empty/"}


@pytest.fixture(scope="module")
def stray_repo(tmp_path_factory):
    """A git repository with this repository's .gitignore and, committed, the plugin, a conftest.py enabling it as
    ours should, and STRAY_TESTS."""
    repo = tmp_path_factory.mktemp("stray_repo")
    shutil.copy(os.path.join(ROOT, ".gitignore"), repo)
    (repo / "tests").mkdir()
    shutil.copy(clean_tree.__file__, repo / "tests")
    (repo / "tests" / "conftest.py").write_text('pytest_plugins = ["clean_tree"]\n')
    (repo / "tests" / "test_stray.py").write_text(STRAY_TESTS)
    for cmd in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, capture_output=True)
    return repo


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["one process", "xdist"])
@pytest.mark.parametrize("strays", [True, False], ids=["strays", "clean"])
def test_a_session_that_leaves_a_file_fails(stray_repo, xdist, strays):
    (stray_repo / "stray.log").unlink(missing_ok=True)  # a previous parametrization's
    shutil.rmtree(stray_repo / "tests" / "stray_folder", ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k not in ("LEAVE_STRAYS", "PYTEST_ADDOPTS")}
    env.update(LEAVE_STRAYS="1" if strays else "")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *xdist, "tests"]
    proc = subprocess.run(cmd, cwd=stray_repo, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert "3 passed" in out, out  # the tests themselves pass either way
    if strays:
        assert proc.returncode == 1, out
        assert out.count("files left in the repository") == 1, out  # once, from the controller
        section = out.split("files left in the repository")[1]
        assert section.splitlines()[1:3] == ["stray.log", "tests/stray_folder/"], out
    else:
        assert proc.returncode == 0 and "files left in the repository" not in out, out
