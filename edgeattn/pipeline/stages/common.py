"""Helpers the stages share: evaluating and profiling a checkpoint the same way for every stage, and
naming the devices bench and validate run on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeattn.pipeline.state import CheckpointInfo, RunState
from edgeattn.pipeline.steps import Step


def eval_config(state: RunState) -> dict[str, Any]:
    v = state.recipe.validate_cfg
    return {"data": state.recipe.data.eval_spec, "split": v.split}


def checkpoint_summary(path: Path, state: RunState) -> dict[str, Any]:
    """top-1/top-5 on the eval data, params and MACs of one checkpoint: the numbers the report's
    checkpoint table compares (same data and split for every checkpoint)."""
    from edgeattn.checkpoint import load_checkpoint
    from edgeattn.data import load_split
    from edgeattn.evaluation import evaluate
    from edgeattn.evaluation.artifact import check_data_fits
    from edgeattn.models.profile import count_macs, count_params

    cfg = eval_config(state)
    spec = state.loaded.data_spec(cfg["data"])
    handle = load_checkpoint(path)
    data = load_split(spec, cfg["split"], handle.config.input_size)
    check_data_fits(handle.config.num_classes, data.num_classes, path, cfg["data"])
    accuracy = evaluate(handle.module, data, handle.input_spec)
    out: dict[str, Any] = {"accuracy": accuracy, "kind": handle.kind, "params": count_params(handle.module)}
    if handle.kind == "fp32":
        out["macs"] = count_macs(handle.module, handle.config.input_size)
    out["config"] = handle.config.to_dict()
    return out


def eval_step(state: RunState, stage: str, name: str, path: Path, source: str | None, **info: Any) -> Step:
    """A cached step that evaluates checkpoint `name` and records it in the run state (`info`: more
    CheckpointInfo fields, e.g. the quantization method and placement)."""

    def collect(result: dict[str, Any]) -> None:
        state.checkpoints[name] = CheckpointInfo(
            name=name,
            path=path,
            kind=result.get("kind", "fp32"),
            source=source,
            accuracy=result.get("accuracy", {}),
            params=result.get("params"),
            macs=result.get("macs") if result.get("macs") is not None else _source_macs(state, source),
            **info,
        )

    cfg = eval_config(state)
    return Step(
        id=f"{stage}/{name}-eval",
        stage=stage,
        title=f"evaluate the {name} checkpoint on {cfg['data']} [{cfg['split']}]",
        config=cfg,
        inputs={"checkpoint": path},
        data={"eval": state.loaded.data_spec(cfg["data"])},
        run=lambda: checkpoint_summary(path, state),
        collect=collect,
    )


def _source_macs(state: RunState, source: str | None) -> int | None:
    info = state.checkpoints.get(source or "")
    return info.macs if info else None


# ------------------------------------------------------------------------------------------ devices
def device_suffix(name: str) -> str:
    """How step ids and file names tell devices apart: nothing for local, `@name` otherwise."""
    return "" if name == "local" else f"@{name}"


def device_step_config(state: RunState, name: str) -> dict[str, Any]:
    """What about a device makes a cached result stale (its URL, ssh config, timeout, the agent), as
    extra step-config keys; none for local, so local steps keep their cache keys."""
    from edgeattn.device import agent_digest

    config = state.loaded.device(name)
    if config.in_process:
        return {}
    return {"device": {"name": name, **config.model_dump(mode="json"), "agent": agent_digest()[:16]}}


def runs_on(state: RunState, name: str, art: Any) -> str | None:
    """Why `art` cannot run on device `name` (None: it can)."""
    from edgeattn.device import unsupported_reason
    from edgeattn.runtime import artifact_kind

    if state.loaded.device(name).in_process:
        return None
    return unsupported_reason(artifact_kind(art.path))
