"""Every command the documentation shows runs, on tiny inputs (how they are made small: the
docstring of tests/helpers/docs.py). A documented command that stops working fails `make test`;
commands that run whole recipes run under `make test-all` (slow)."""

from __future__ import annotations

import pytest
from helpers.docs import DocCommand, documents, help_examples, prepare_workdir
from helpers.docs_runner import run_all, run_documented
from helpers.models import REPO

DOCS = documents()
EXAMPLES = help_examples()


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_documented_commands_run(doc, tmp_path, run_cli, monkeypatch, request):
    run_all(doc.commands, tmp_path, run_cli, monkeypatch, request, with_slow=False)


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCS if any(c.slow for c in d.commands)], ids=lambda d: d.name)
def test_documented_commands_run_with_whole_recipes(doc, tmp_path, run_cli, monkeypatch, request):
    run_all(doc.commands, tmp_path, run_cli, monkeypatch, request, with_slow=True)


def test_the_harness_finds_the_documented_commands():
    """Negative control for the collection: the docs do show commands, and a broken one fails."""
    assert len(EXAMPLES) >= 12 and sum(len(d.commands) for d in DOCS) >= 8
    assert any(c.text.startswith("edgeattn validate") for d in DOCS for c in d.commands)
    assert (REPO / "README.md").read_text().count("```") >= 2


def test_a_broken_documented_command_fails(tmp_path, run_cli, monkeypatch):
    prepare_workdir(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError, match="exited 2"):
        run_documented(
            DocCommand("negative control", "edgeattn eval model.onnx --data no/such/data"), tmp_path, run_cli
        )
