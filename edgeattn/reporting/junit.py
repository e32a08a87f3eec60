"""JUnit XML written once: the test-report format GitHub Actions, GitLab and Jenkins display as tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class JUnitCase:
    """One <testcase>: passed, failed (`failure_message`) or skipped (`skipped` is the reason)."""

    name: str
    classname: str
    failure_message: str | None = None
    failure_text: str | None = None  # the failure's body: details below the one-line message
    skipped: str | None = None
    time: float = 0.0
    failure_type: str = "Failure"
    system_out: str | None = None

    @property
    def failed(self) -> bool:
        return self.failure_message is not None


@dataclass
class JUnitSuite:
    """One <testsuite>; `time` defaults to the sum of its cases' times."""

    name: str
    cases: Sequence[JUnitCase] = ()
    properties: Mapping[str, object] = field(default_factory=dict)
    system_out: str | None = None
    time: float | None = None

    @property
    def seconds(self) -> float:
        return sum(c.time for c in self.cases) if self.time is None else self.time


def _seconds(t: float) -> str:
    return f"{t:.3f}"


def junit_xml(suites: Sequence[JUnitSuite], name: str, time: float | None = None) -> str:
    """The whole document, with totals on <testsuites>; `time` defaults to the sum of the suites'."""
    failures = sum(c.failed for s in suites for c in s.cases)
    root = ET.Element(
        "testsuites",
        name=name,
        tests=str(sum(len(s.cases) for s in suites)),
        failures=str(failures),
        errors="0",
        time=_seconds(sum(s.seconds for s in suites) if time is None else time),
    )
    for suite in suites:
        ts = ET.SubElement(
            root,
            "testsuite",
            name=suite.name,
            tests=str(len(suite.cases)),
            failures=str(sum(c.failed for c in suite.cases)),
            errors="0",
            skipped=str(sum(c.skipped is not None for c in suite.cases)),
            time=_seconds(suite.seconds),
        )
        if suite.properties:
            props = ET.SubElement(ts, "properties")
            for key, value in suite.properties.items():
                ET.SubElement(props, "property", name=key, value=str(value))
        for c in suite.cases:
            case = ET.SubElement(ts, "testcase", classname=c.classname, name=c.name, time=_seconds(c.time))
            if c.failure_message is not None:
                failure = ET.SubElement(case, "failure", message=c.failure_message, type=c.failure_type)
                failure.text = c.failure_text
            elif c.skipped is not None:
                ET.SubElement(case, "skipped", message=c.skipped)
            if c.system_out is not None:
                ET.SubElement(case, "system-out").text = c.system_out
        if suite.system_out is not None:
            ET.SubElement(ts, "system-out").text = suite.system_out
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
