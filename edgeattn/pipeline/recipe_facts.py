"""The second pass of recipe checking: facts outside the file that the schema cannot know (the
checkpoint and data exist, the model name is in the zoo, int8 exports have a quantize section, the
named importance/runtime/target options are registered). Every problem is collected, none raised."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from edgeattn.errors import EdgeAttnError, InputError
from edgeattn.pipeline.recipe_types import LoadedRecipe, Loc, Problem
from edgeattn.pipeline.schema import QUANTIZED_PRECISIONS, Recipe
from edgeattn.registry import Registry


def fact_problems(loaded: LoadedRecipe) -> list[Problem]:
    """Checks that need the file system or the registries (the schema cannot know them)."""
    r = loaded.recipe
    problems: list[Problem] = []

    def add(loc: Loc, message: str) -> None:
        problems.append(Problem(loc, message))

    # model: a checkpoint that exists and is ours, or a zoo name with a train section
    if r.model.checkpoint is not None:
        ckpt = loaded.path(r.model.checkpoint)
        if r.train is not None:
            add(
                ("train",),
                "a train section and model.checkpoint were both given — remove one (the checkpoint is the baseline)",
            )
        try:
            loaded.checkpoint_config = _checkpoint_config(ckpt)
        except EdgeAttnError as exc:
            add(("model", "checkpoint"), exc.one_line())
        else:
            stored = loaded.checkpoint_config
            if r.model.name and r.model.name != stored["name"]:
                add(
                    ("model", "name"),
                    f"{r.model.name!r} does not match the checkpoint's model {stored['name']!r} — drop model.name or fix it",
                )
            if r.model.input_size and r.model.input_size != stored["input_size"]:
                add(
                    ("model", "input_size"),
                    f"{r.model.input_size} does not match the checkpoint's {stored['input_size']} — drop it",
                )
            if r.model.num_classes and r.model.num_classes != stored["num_classes"]:
                add(
                    ("model", "num_classes"),
                    f"{r.model.num_classes} does not match the checkpoint's {stored['num_classes']}",
                )
            if r.model.options and r.model.options != stored.get("options", {}):
                add(
                    ("model", "options"),
                    "options cannot change a trained checkpoint's architecture — drop model.options",
                )
    else:
        if r.train is None:
            add(("train",), "missing — give a train section (to train model.name first) or model.checkpoint")
        _check_model_name(r, add)
    if r.train is not None and r.train.teacher is not None and not loaded.path(r.train.teacher).exists():
        add(("train", "teacher"), f"file {loaded.path(r.train.teacher)} does not exist")

    # data: paths exist
    for key in ("train", "calib", "eval"):
        spec = getattr(r.data, key)
        if spec is None or spec.startswith("builtin:"):
            if spec is not None:
                _check_builtin(spec, ("data", key), add)
            continue
        resolved = Path(loaded.data_spec(spec).removesuffix("@all"))
        if not resolved.exists():
            add(
                ("data", key),
                f"data set {resolved} does not exist — give builtin:digits, an ImageFolder folder or an .npz",
            )

    # prune: importance, normalisation and scope exist
    if r.prune_enabled:
        from edgeattn.prune.importance import IMPORTANCE, NORMALIZATIONS
        from edgeattn.prune.selection import SCOPES

        for key, registry in (("importance", IMPORTANCE), ("normalize", NORMALIZATIONS), ("scope", SCOPES)):
            _check_registered(registry, getattr(r.prune, key), ("prune", key), add)

    # export: int8 needs a quantize section
    for i, t in enumerate(r.export.targets):
        for j, p in enumerate(t.precisions):
            if p in QUANTIZED_PRECISIONS and r.quantize is None:
                add(
                    ("export", "targets", i, "precisions", j),
                    f"{p} needs a quantize section (ptq: {{}} and/or qat: {{}})",
                )
    for i, t in enumerate(r.export.targets):
        _check_target_options(t.target, t.options, ("export", "targets", i, "options"), add)
    seen: dict[str, int] = {}
    for i, t in enumerate(r.export.targets):
        if t.target in seen:
            add(
                ("export", "targets", i, "target"),
                f"{t.target} is listed twice (also targets[{seen[t.target]}]) — merge their precisions",
            )
        seen.setdefault(t.target, i)

    # quantize: every preset must give Q/DQ that each needed placement loads (TensorRT: symmetric only),
    # and a measured placement is timed on onnxruntime only
    if r.quantize is not None:
        _check_presets(r, add)
    # devices: every name is defined (or a URL), ssh configs exist
    named = [(("bench", "device", i), n) for i, n in enumerate(r.bench.device)]
    named += [(("validate", "device", i), n) for i, n in enumerate(r.validate_cfg.device)]
    if r.quantize is not None:
        named.append((("quantize", "device"), r.quantize.device))
    for at, name in named:
        if name != "local" and name not in r.devices and "://" not in name:
            known = ["local", *r.devices]
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            add(
                at,
                f"unknown device {name!r} — {hint}define it under devices: (name: ssh://user@host) or use {', '.join(known)}",
            )
        elif "://" in name:
            try:
                loaded.device(name)
            except EdgeAttnError as exc:
                add(at, exc.one_line())
    for name, section in r.devices.items():
        if section.ssh_config is not None and not loaded.path(section.ssh_config).is_file():
            add(("devices", name, "ssh_config"), f"file {loaded.path(section.ssh_config)} does not exist")

    # bench: runtimes exist
    from edgeattn.bench.runtimes import runtime_choices

    runtimes = sorted(runtime_choices())
    for i, rt in enumerate(r.bench.runtimes):
        if rt not in runtimes:
            close = difflib.get_close_matches(rt, runtimes, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            add(("bench", "runtimes", i), f"unknown runtime {rt!r} — {hint}choose from {', '.join(runtimes)}")
    return problems


def _check_presets(r: Recipe, add) -> None:
    from edgeattn.export import exporter_for
    from edgeattn.quantize.placement import PLACEMENTS

    needed = set()
    for t in r.export.targets:
        if set(t.precisions) & set(QUANTIZED_PRECISIONS):
            try:
                needed.add(exporter_for(t.target).int8_placement(t.options))
            except InputError:
                pass  # an unknown target is reported by the export checks
    for method, opts in r.quantize.methods.items():
        for placement in sorted(needed):
            try:
                PLACEMENTS.get(placement).check_preset(opts.preset)
            except InputError as exc:
                add(("quantize", method, "preset"), exc.one_line())
            if opts.placement == "measured" and placement != "onnxruntime":
                add(
                    ("quantize", method, "placement"),
                    f"measured placement times the model on onnxruntime, not {placement} — use placement: "
                    "policy, or export int8 only to onnx targets",
                )
        if opts.placement == "measured" and opts.placement_timer == "device" and r.quantize.device == "local":
            add(
                ("quantize", method, "placement_timer"),
                "placement_timer device times on a device, but quantize.device is local — name the device "
                "that will run the model (quantize: {device: NAME}), or use placement_timer: auto",
            )


def _check_registered(registry: Registry, name: str, loc: Loc, add) -> None:
    """`name` must be in the stage's own registry (so a recipe knows every importance score, scope, ...)."""
    try:
        registry.get(name)
    except InputError as exc:
        add(loc, exc.one_line())


def _check_target_options(target: str, options: dict[str, Any], loc: Loc, add) -> None:
    """Unknown exporter options are refused here, not after the model has been trained."""
    from edgeattn.export import exporter_for

    known = list(exporter_for(target).option_defaults)
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.5)
            hint = (
                f"did you mean {close[0]!r}?" if close else f"{target} options: {', '.join(known) or 'none'}"
            )
            add((*loc, str(key)), f"unknown {target} option — {hint}")


def _checkpoint_config(path: Path) -> dict[str, Any]:
    from edgeattn.checkpoint import FORMAT, read_payload

    payload = read_payload(path)
    if payload.get("format") != FORMAT or "config" not in payload:
        raise InputError(
            f"{path} is not an edgeattn checkpoint",
            "import it first: edgeattn import STATE_DICT --model NAME --out CKPT",
        )
    config = dict(payload["config"])
    config["kind"] = payload.get("kind", "fp32")
    return config


def _check_model_name(r: Recipe, add) -> None:
    from edgeattn.models import ModelConfig, model_spec, validate_config

    try:
        spec = model_spec(str(r.model.name))
    except EdgeAttnError as exc:
        add(("model", "name"), exc.one_line())
        return
    try:
        size = r.model.input_size or spec.default_input_size
        validate_config(ModelConfig(spec.name, r.model.num_classes or 10, size, dict(r.model.options)))
    except EdgeAttnError as exc:
        add(("model", "input_size"), exc.one_line())
    known = set(spec.default_options)
    unknown = set(r.model.options) - known - {"dropout"} if known else set()
    if unknown:
        add(
            ("model", "options"),
            f"unknown {spec.name} option(s) {sorted(unknown)} — known: {', '.join(sorted(known))}",
        )


def _check_builtin(spec: str, loc: Loc, add) -> None:
    from edgeattn.data.sources import BUILTIN_DATASETS

    name = spec.split(":", 1)[1]
    if name not in BUILTIN_DATASETS:
        try:
            BUILTIN_DATASETS.get(name)
        except InputError as exc:
            add(loc, exc.one_line())
