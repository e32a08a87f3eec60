"""Formatting shared by every stage's reports: numbers, Markdown tables, JUnit XML (imports no stage)."""

from edgeattn.reporting.junit import JUnitCase, JUnitSuite, junit_xml
from edgeattn.reporting.markdown import md_cell, md_table
from edgeattn.reporting.numbers import fmt_bytes, fmt_count, fmt_fixed

__all__ = [
    "JUnitCase",
    "JUnitSuite",
    "fmt_bytes",
    "fmt_count",
    "fmt_fixed",
    "junit_xml",
    "md_cell",
    "md_table",
]
