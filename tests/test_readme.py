"""README.md stays true: its default hyper-parameter table is what the files really use."""

import os

from benchmarks.hparams import table
from conftest import ROOT


def test_readme_hyper_parameter_table_matches_the_files():
    text = open(os.path.join(ROOT, "README.md")).read()
    start, end = "<!-- hparams:start -->\n", "<!-- hparams:end -->"
    assert start in text and end in text
    shown = text.split(start, 1)[1].split(end, 1)[0]
    assert shown.strip() == table().strip(), "README is stale: python benchmarks/hparams.py prints the table"
