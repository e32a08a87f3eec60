"""Which heads to remove: a target (a ratio, a head count or a MAC budget) turned into per-block choices.

Two scopes, registered in `SCOPES`:
- `global` ranks every head of the model against every other (scores are per-layer normalised, see
  importance.py) and removes the lowest;
- `per-layer` removes the same share of heads from every block.
Both keep at least `min_heads_per_block` heads in every block. All targets are validated before any
scoring runs, so bad input fails fast and nothing is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from edgeattn.errors import InputError
from edgeattn.prune.config import PruneConfig
from edgeattn.registry import Registry


@dataclass
class Candidate:
    """A block that still has heads, as the selection sees it at one step."""

    path: str
    heads: int  # heads it has now
    scores: torch.Tensor  # one per current (local) head; higher = keep
    head_macs: float = 0.0  # MACs one head of this block costs (heads within a block cost the same)


@dataclass
class Target:
    """What the user asked for, exactly one of the three."""

    ratio: float | None = None
    heads: int | None = None
    macs: float | None = None

    def describe(self) -> str:
        if self.ratio is not None:
            return f"ratio {self.ratio:g}"
        if self.heads is not None:
            return f"{self.heads} heads"
        return f"{self.macs:,.0f} MACs"


def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def check_target(config: PruneConfig) -> Target:
    """Exactly one target (ranges are the config's; the model-dependent checks come in `plan_removal`)."""
    flags = {"ratio": "--ratio", "heads": "--heads", "target_macs": "--target-macs"}
    given = [flags[k] for k in config.amounts()]
    if len(given) != 1:
        raise InputError(
            "give exactly one pruning target" + (f" (got {' and '.join(given)})" if given else ""),
            "pass --ratio R (share of heads to remove), --heads N (heads to remove) or --target-macs M",
        )
    if config.target_macs is not None and not math.isfinite(config.target_macs):
        raise InputError(
            f"--target-macs {config.target_macs} is not a positive number",
            "give the MAC budget, e.g. --target-macs 150M",
        )
    return Target(ratio=config.ratio, heads=config.heads, macs=config.target_macs)


def _removable(c: Candidate, min_keep: int) -> int:
    return max(0, c.heads - min_keep)


def _min_hint(min_keep: int) -> str:
    return (
        f"lower the target, or pass --min-heads-per-block {min_keep - 1} to let blocks keep fewer heads"
        if min_keep > 0
        else "lower the target"
    )


def _check_quotas(cands: list[Candidate], quotas: dict[str, int], min_keep: int, what: str) -> dict[str, int]:
    for c in cands:
        if quotas[c.path] > _removable(c, min_keep):
            raise InputError(
                f"{what} would remove {quotas[c.path]} of the {c.heads} heads of block {c.path}, "
                f"but every block keeps at least {min_keep}",
                _min_hint(min_keep),
            )
    return quotas


def _largest_remainder(total: int, weights: dict[str, int]) -> dict[str, int]:
    s = sum(weights.values())
    if s == 0:
        return dict.fromkeys(weights, 0)
    exact = {k: total * w / s for k, w in weights.items()}
    out = {k: int(math.floor(v)) for k, v in exact.items()}
    rest = total - sum(out.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - out[k]), list(weights).index(k)))[:rest]:
        out[k] += 1
    return out


# ------------------------------------------------------------------------------------------- plans
@dataclass
class Plan:
    """How much to remove, fixed before scoring: a global count, per-block quotas, or a MAC budget."""

    total: int | None = None  # global: heads to remove in all
    quotas: dict[str, int] | None = None  # per-layer: heads to remove per block
    macs: float | None = None  # global MAC budget
    macs_start: float | None = None


class Scope:
    name = ""

    def plan(self, cands: list[Candidate], target: Target, min_keep: int, macs_now: float) -> Plan:
        raise NotImplementedError

    def choose(
        self,
        cands: list[Candidate],
        plan: Plan,
        min_keep: int,
        step: int,
        steps: int,
        removed: dict[str, int],
        macs_now: float,
    ) -> dict[str, list[int]]:
        """Local indices to REMOVE per block at step `step` (1-based) of `steps`."""
        raise NotImplementedError


def _total_heads(cands: list[Candidate]) -> int:
    return sum(c.heads for c in cands)


def _check_count(cands: list[Candidate], k: int, min_keep: int, what: str) -> int:
    total = _total_heads(cands)
    if k > total:
        raise InputError(
            f"{what} asks to remove {k} heads but the model has only {total}", f"ask for at most {total}"
        )
    removable = sum(_removable(c, min_keep) for c in cands)
    if k > removable:
        raise InputError(
            f"{what} asks to remove {k} of {total} heads, but with at least {min_keep} head(s) per block only {removable} can go",
            _min_hint(min_keep),
        )
    return k


def _min_macs(cands: list[Candidate], min_keep: int, macs_now: float) -> float:
    return macs_now - sum(c.head_macs * _removable(c, min_keep) for c in cands)


def _check_macs(cands: list[Candidate], target: float, min_keep: int, macs_now: float) -> None:
    floor = _min_macs(cands, min_keep, macs_now)
    if target < floor - 0.5:
        raise InputError(
            f"--target-macs {target:,.0f} cannot be reached: removing every removable head leaves {floor:,.0f} MACs "
            f"(now {macs_now:,.0f})",
            f"give a budget of at least {floor:,.0f}"
            + (f", or {_min_hint(min_keep)}" if min_keep > 0 else ""),
        )


def _ranked(cands: list[Candidate]) -> list[tuple[float, int, int]]:
    """(score, block index, local head) ascending: least important first, ties by position."""
    return sorted((float(c.scores[h]), i, h) for i, c in enumerate(cands) for h in range(c.heads))


class GlobalScope(Scope):
    name = "global"

    def plan(self, cands: list[Candidate], target: Target, min_keep: int, macs_now: float) -> Plan:
        if target.macs is not None:
            _check_macs(cands, target.macs, min_keep, macs_now)
            return Plan(macs=target.macs, macs_start=macs_now)
        k = target.heads if target.heads is not None else round_half_up(target.ratio * _total_heads(cands))
        return Plan(
            total=_check_count(
                cands,
                k,
                min_keep,
                f"--{'heads' if target.heads is not None else 'ratio'} {target.heads if target.heads is not None else target.ratio}",
            )
        )

    def choose(self, cands, plan, min_keep, step, steps, removed, macs_now):
        left = {c.path: _removable(c, min_keep) for c in cands}
        out: dict[str, list[int]] = {c.path: [] for c in cands}
        if plan.macs is not None:
            goal = plan.macs_start - (plan.macs_start - plan.macs) * step / steps
            est = macs_now
            for _, i, h in _ranked(cands):
                if est <= goal + 0.5:
                    break
                c = cands[i]
                if left[c.path] > 0:
                    out[c.path].append(h)
                    left[c.path] -= 1
                    est -= c.head_macs
            return out
        k = round_half_up(plan.total * step / steps) - sum(removed.values())
        for _, i, h in _ranked(cands):
            if k <= 0:
                break
            c = cands[i]
            if left[c.path] > 0:
                out[c.path].append(h)
                left[c.path] -= 1
                k -= 1
        return out


class PerLayerScope(Scope):
    name = "per-layer"

    def plan(self, cands: list[Candidate], target: Target, min_keep: int, macs_now: float) -> Plan:
        if target.ratio is not None:
            quotas = {c.path: round_half_up(target.ratio * c.heads) for c in cands}
            _check_count(cands, sum(quotas.values()), min_keep, f"--ratio {target.ratio}")
            return Plan(quotas=_check_quotas(cands, quotas, min_keep, f"--ratio {target.ratio} per layer"))
        if target.heads is not None:
            _check_count(cands, target.heads, min_keep, f"--heads {target.heads}")
            quotas = _largest_remainder(target.heads, {c.path: c.heads for c in cands})
            return Plan(quotas=_check_quotas(cands, quotas, min_keep, f"--heads {target.heads} per layer"))
        _check_macs(cands, target.macs, min_keep, macs_now)
        # The smallest uniform share of heads per block whose removal meets the budget.
        shares = sorted({j / c.heads for c in cands for j in range(1, c.heads + 1)})
        for share in [0.0, *shares]:
            quotas = {c.path: min(_removable(c, min_keep), round_half_up(share * c.heads)) for c in cands}
            if macs_now - sum(c.head_macs * quotas[c.path] for c in cands) <= target.macs + 0.5:
                return Plan(quotas=quotas)
        return Plan(quotas={c.path: _removable(c, min_keep) for c in cands})

    def choose(self, cands, plan, min_keep, step, steps, removed, macs_now):
        out: dict[str, list[int]] = {}
        for c in cands:
            k = round_half_up(plan.quotas.get(c.path, 0) * step / steps) - removed.get(c.path, 0)
            order = torch.argsort(c.scores, stable=True).tolist()
            out[c.path] = order[: max(0, min(k, _removable(c, min_keep)))]
        return out


SCOPES: Registry[Scope] = Registry("pruning scope")
SCOPES.register("global", GlobalScope())
SCOPES.register("per-layer", PerLayerScope())
