"""Every `Example:` line of a command's --help runs, on tiny inputs (tests/helpers/docs.py says how);
a file of its own so the test workers share the documented commands."""

from __future__ import annotations

import pytest
from helpers.docs import help_examples
from helpers.docs_runner import run_all

EXAMPLES = help_examples()


@pytest.mark.parametrize(
    "example",
    [pytest.param(e, marks=pytest.mark.slow) if e.slow else e for e in EXAMPLES],
    ids=[e.text[:60] for e in EXAMPLES],
)
def test_help_examples_run(example, tmp_path, run_cli, monkeypatch, request):
    run_all([example], tmp_path, run_cli, monkeypatch, request, with_slow=True)
