"""What a device is, as people read it: the rows of `edgeattn device check` and the one-line summary
reports print next to every number measured there."""

from __future__ import annotations

from typing import Any

from edgeattn.device.cpu import cpu_int8, int8_dot_flags

RUNTIME_ORDER = ("numpy", "onnxruntime", "tensorrt", "trtexec", "coremltools", "openvino")


def int8_line(cpu: dict[str, Any]) -> str:
    flags = int8_dot_flags(cpu)
    kind = cpu_int8(cpu).kind
    return (
        f"yes ({', '.join(flags)}; onnxruntime INT8 placement: {kind})"
        if cpu.get("int8_dot_product")
        else f"no (INT8 gains little over FP32 here; onnxruntime INT8 placement: {kind})"
    )


def summary(block: dict[str, Any] | None) -> str:
    """`name: CPU (arch, N cores; int8 dot-product: yes), OS, Python X` — where a number was measured."""
    if not block:
        return "local"
    cpu = block.get("cpu", {})
    board = f"{block['board']}, " if block.get("board") else ""
    gpus = f"; GPU {', '.join(block['gpus'])}" if block.get("gpus") else ""
    return (
        f"{block.get('name', '?')}: {board}{cpu.get('model', '?')} ({cpu.get('arch', '?')}, {cpu.get('usable_cores', '?')} cores; "
        f"int8 dot-product: {'yes' if cpu.get('int8_dot_product') else 'no'}){gpus}; {block.get('system') or block.get('os', '')}, Python {block.get('python', '?')}"
    )


def fact_rows(block: dict[str, Any]) -> list[list[str]]:
    cpu = block.get("cpu", {})
    memory = block.get("memory_mb")
    avail = block.get("memory_available_mb")
    rows = [
        ["device", str(block.get("name", ""))],
        ["host", str(block.get("host", ""))],
    ]
    if block.get("board"):
        rows.append(["board", str(block["board"])])
    rows += [
        ["OS", str(block.get("os", ""))],
        ["CPU", f"{cpu.get('model', '?')} ({cpu.get('arch', '?')})"],
        ["cores", f"{cpu.get('usable_cores', '?')} usable / {cpu.get('logical_cores', '?')} logical / {cpu.get('physical_cores') or '?'} physical"],
        ["SIMD", " ".join(cpu.get("simd_flags", [])) or "none of the tracked flags"],
        ["int8 dot-product", int8_line(cpu)],
        ["memory", f"{memory:.0f} MB ({avail:.0f} MB available)" if memory and avail else (f"{memory:.0f} MB" if memory else "?")],
        ["GPU", ", ".join(block.get("gpus") or []) or "none visible"],
        ["Python", f"{block.get('python', '?')} ({block.get('python_executable', '?')})"],
    ]  # fmt: skip
    return rows


def runtime_rows(block: dict[str, Any]) -> list[list[str]]:
    runtimes = block.get("runtimes", {})
    rows = []
    for name in [*RUNTIME_ORDER, *sorted(set(runtimes) - set(RUNTIME_ORDER))]:
        r = runtimes.get(name)
        if r is None:
            continue
        if r.get("importable"):
            extra = ", ".join(r.get("providers") or []) or (r.get("path") or "")
            rows.append([name, str(r.get("version") or "?"), extra])
        else:
            rows.append([name, "—", f"not available: {r.get('error') or 'missing'}"])
    return rows


def serves(block: dict[str, Any]) -> list[str]:
    """What the device can run through the agent, from its runtimes."""
    runtimes = block.get("runtimes", {})
    ok = lambda name: bool(runtimes.get(name, {}).get("importable"))  # noqa: E731
    out = []
    if ok("numpy") and ok("onnxruntime"):
        out.append(".onnx on onnxruntime")
    if ok("numpy") and ok("tensorrt") and block.get("gpus"):
        out.append("TensorRT engines")
    if (ok("tensorrt") or ok("trtexec")) and block.get("gpus"):
        out.append("TensorRT engine builds")
    return out
