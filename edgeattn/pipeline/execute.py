"""`run_recipe`: check the recipe, run its stages in order, reuse what did not change, write the
manifest, the report and JUnit XML.

Failure rules: a bad recipe is refused before any work (exit 2); a step that raises stops the run
with one line naming the step, and every earlier output stays where it is (each step writes through
`atomic_output`, and its cache record is written only after it succeeded); a backend this machine lacks
(`UnavailableError`) skips that step with the reason and the run goes on; failed gates do not stop
the run, they make `RunResult.passed` false (the CLI exits 1).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from edgeattn.errors import EdgeAttnError, InputError, UnavailableError
from edgeattn.fileio import check_writable, json_default
from edgeattn.pipeline.cache import (
    CacheRecord,
    HashCache,
    data_fingerprint,
    environment_fingerprint,
    step_key,
    still_valid,
)
from edgeattn.pipeline.outputs import write_outputs
from edgeattn.pipeline.recipe import load_recipe
from edgeattn.pipeline.stages import ordered_stages
from edgeattn.pipeline.state import RunResult, RunState, StepOutcome
from edgeattn.pipeline.steps import Step

Log = Callable[[str], None]


class StepFailed(EdgeAttnError):
    """A step raised: the run stopped there. Exit 2 when the cause was bad input, 1 otherwise."""

    def __init__(self, step_id: str, cause: BaseException, root: Path) -> None:
        self.step_id = step_id
        self.cause = cause
        self.exit_code = cause.exit_code if isinstance(cause, EdgeAttnError) else 1
        if isinstance(cause, EdgeAttnError):
            what = cause.one_line()
        else:
            first = str(cause).strip().splitlines()[0][:300] if str(cause).strip() else ""
            what = f"internal error: {type(cause).__name__}: {first} (rerun with --debug for the traceback)"
        super().__init__(
            f"step {step_id} failed: {what}",
            f"earlier outputs are kept in {root}; fix the cause and rerun (finished steps are not redone)",
        )


def run_recipe(
    path: Path | str,
    *,
    force: bool = False,
    out_root: Path | str = Path("exported"),
    log: Log | None = None,
) -> RunResult:
    """Run the recipe at `path`; outputs go to `out_root/<recipe name>/`.

    `force` redoes every step even when its inputs did not change. Raises `RecipeError` (nothing
    run), `StepFailed` (a step raised; earlier outputs intact). Gate failures are in the result.
    """
    from filelock import FileLock, Timeout

    start = time.perf_counter()
    loaded = load_recipe(path)
    root = Path(out_root) / loaded.name
    check_writable(root / "manifest.json")
    root.mkdir(parents=True, exist_ok=True)
    log = log or _console_log
    lock = FileLock(str(root / ".run.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise InputError(f"another `edgeattn run` is writing {root}", "wait for it to finish") from None
    try:
        state = RunState(loaded=loaded, root=root)
        hasher = HashCache()
        failure: StepFailed | None = None
        try:
            for stage in ordered_stages():
                try:
                    steps = stage.plan(state)
                except EdgeAttnError as exc:
                    raise StepFailed(stage.name, exc, root) from exc
                for step in steps:
                    _execute(step, state, hasher, force, log)
        except StepFailed as exc:
            failure = exc
            state.steps.append(
                StepOutcome(exc.step_id, exc.step_id.split("/")[0], "", "failed", reason=exc.one_line())
            )
        if failure is None:
            return write_outputs(state, seconds=time.perf_counter() - start)
        try:  # record what did finish; a problem here must not hide the step's own error
            write_outputs(state, seconds=time.perf_counter() - start, failure=failure)
        except Exception as exc:  # noqa: BLE001
            log(f"[yellow]could not write the report of the failed run: {type(exc).__name__}: {exc}[/]")
        raise failure
    finally:
        lock.release()


def _console_log(message: str) -> None:
    from edgeattn.progress import console

    console.print(message, highlight=False, soft_wrap=True)


def _execute(step: Step, state: RunState, hasher: HashCache, force: bool, log: Log) -> None:
    """Run one step, or reuse its cached result when its key and outputs still match."""
    from rich.markup import escape

    record_path = state.root / step.stage / f".{step.name}.step.json"
    try:
        inputs = {name: hasher(p) for name, p in step.inputs.items()}
    except FileNotFoundError as exc:
        raise StepFailed(
            step.id, InputError(f"input {exc.filename} is missing", "rerun with --force"), state.root
        ) from None
    inputs.update({f"data:{k}": data_fingerprint(spec, hasher) for k, spec in step.data.items()})
    key = step_key(step.id, step.config, inputs)
    record = CacheRecord.read(record_path)

    if not force and still_valid(record, key, state.root, hasher):
        assert record is not None
        if record.status == "skipped":
            state.skip(step.id, record.reason)
            state.steps.append(
                StepOutcome(step.id, step.stage, step.title, "skipped", reason=record.reason, key=key)
            )
            log(f"[yellow]–[/] {step.id}: skipped (unchanged) — {escape(record.reason)}")
        else:
            step.collect(record.result)
            state.steps.append(
                StepOutcome(step.id, step.stage, step.title, "cached", seconds=record.seconds, key=key)
            )
            log(f"[dim]= {step.id}: unchanged, reused[/]")
        return

    log(f"[bold blue]▶[/] {step.id}: {escape(step.title)}")
    t0 = time.perf_counter()
    try:
        result = step.run()
    except UnavailableError as exc:
        reason = exc.one_line()
        CacheRecord(key=key, status="skipped", reason=reason, environment=environment_fingerprint()).write(
            record_path
        )
        state.skip(step.id, reason)
        state.steps.append(StepOutcome(step.id, step.stage, step.title, "skipped", reason=reason, key=key))
        log(f"[yellow]–[/] {step.id}: skipped — {escape(reason)}")
        return
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001  every failure stops the run with one line
        raise StepFailed(step.id, exc, state.root) from exc
    seconds = time.perf_counter() - t0
    missing = [str(o) for o in step.outputs if not o.exists()]
    if missing:
        raise StepFailed(
            step.id, RuntimeError(f"the step finished but did not write {', '.join(missing)}"), state.root
        )
    result = json.loads(json.dumps(result or {}, default=json_default))  # the same form a cache hit returns
    outputs = {state.rel(o): hasher(o) for o in step.outputs}
    CacheRecord(key=key, status="done", outputs=outputs, result=result, seconds=round(seconds, 2)).write(
        record_path
    )
    step.collect(result)
    state.steps.append(StepOutcome(step.id, step.stage, step.title, "ran", seconds=seconds, key=key))
    log(f"[green]✓[/] {step.id} ({seconds:.1f} s)")
