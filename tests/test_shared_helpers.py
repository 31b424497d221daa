"""Single-file code repeats helpers on purpose. The copies meant to be identical must stay identical
across algorithm files, so a fix in one is a fix in all: this test compares their source text."""

import ast
import os

import pytest

from conftest import ROOT

FILES = [f for f in ("vpg.py", "trpo.py", "ppo_penalty.py", "ppo_clip.py", "dppo.py")
         if os.path.exists(os.path.join(ROOT, f))]

# Every algorithm file defines these, character for character the same.
SHARED = ["parse_args", "make_env", "make_envs", "check_spaces", "to_env_action", "mlp", "Policy", "Value",
          "ObsNorm", "log_prob", "entropy", "sample", "mode", "compute_gae", "explained_variance",
          "save_checkpoint", "load_checkpoint", "make_run_dir", "CsvLog", "start_wandb", "check_video_packages",
          "make_render_env", "evaluate", "save_gif"]
# Defined only by the files that need it, identical wherever it is.
SHARED_WHERE_PRESENT = ["kl_divergence", "RewardScale"]


def definitions(path: str) -> dict[str, str]:
    source = open(path).read()
    return {node.name: ast.get_source_segment(source, node) for node in ast.parse(source).body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


@pytest.mark.parametrize("name", SHARED + SHARED_WHERE_PRESENT)
def test_shared_helper_copies_are_identical(name):
    copies = {f: d[name] for f in FILES if name in (d := definitions(os.path.join(ROOT, f)))}
    if name in SHARED:
        assert set(copies) == set(FILES), f"{name} missing from {sorted(set(FILES) - set(copies))}"
    reference_file, reference = next(iter(copies.items()))
    for f, src in copies.items():
        assert src == reference, f"{name} in {f} differs from the copy in {reference_file}"


def test_the_drift_check_would_notice_a_change(tmp_path):
    """The comparison is on exact text: a one-character edit is a difference."""
    path = os.path.join(ROOT, "ppo_clip.py")
    original = definitions(path)["compute_gae"]
    edited = tmp_path / "edited.py"
    edited.write_text(open(path).read().replace("gamma * lam", "gamma*lam"))
    assert definitions(str(edited))["compute_gae"] != original
