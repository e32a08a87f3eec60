"""`python -m edgeattn.runtime.coreml_ref PKG.mlpackage ...`: the op types of Core ML ML Programs and
whether the reference executor implements each (exit 1 if one is missing), e.g. before a Linux CI
relies on `edgeattn validate` for a new model."""

from __future__ import annotations

import sys
from collections import Counter

from edgeattn.errors import EdgeAttnError
from edgeattn.runtime.coreml_ref import implemented_ops, program_op_types


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m edgeattn.runtime.coreml_ref MODEL.mlpackage [...]", file=sys.stderr)
        return 2
    implemented = set(implemented_ops())
    total: Counter = Counter()
    try:
        for path in paths:
            total.update(program_op_types(path))
    except EdgeAttnError as exc:
        print(exc.one_line(), file=sys.stderr)
        return 2
    for op, n in sorted(total.items()):
        print(f"{op:36s} {n:6d}  {'implemented' if op in implemented else 'NOT IMPLEMENTED'}")
    missing = sorted(set(total) - implemented)
    if missing:
        print(f"the reference executor lacks: {', '.join(missing)}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
