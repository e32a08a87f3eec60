"""The commands the documentation shows, made runnable on tiny inputs (tests/test_docs_commands.py).

Where commands come from: every `edgeattn ...` line (with its `\\` continuations) inside a fenced
code block of README.md, docs/*.md, recipes/README.md and calibration/README.md (YAML CI examples
included: `run: edgeattn ...` and `- edgeattn ...`), and every `Example:` line of a command's `--help`.

How they are made small — the documented mechanism, one table each, so no command is copied by hand:
- PLACEHOLDERS: a word in CAPITALS (CKPT, SPEC, ARTIFACT, ...) is syntax, replaced by a real path.
- SMALL_IMAGENET_VAL: `imagenet/val` is four photos in ImageNet val's synset folders.
- SMALL_DATA: `builtin:digits` -> `digits.npz`, a 1,300-image sample of it (780 train / 195 calib /
  325 val after the .npz split), so a documented `train`, `prune --finetune-epochs` or `quantize --qat`
  takes seconds, not minutes, on 2 cores.
- SMALLER: size options are lowered (`--epochs 8` -> 1, `--input-size 256` -> the tiny model's, ...);
  `validate`, `eval` and `compare` look at 200 images (`--limit 200`).
- Inputs a command reads that no earlier command of the same document wrote are made from the tiny
  trained attn_vgg11 (`provide`, cached for the session): `*.pt` a checkpoint (quantized when the name
  says int8/ptq/qat), `*.onnx` and `*.mlpackage` exports of it (int8/fp16 when the name says so), a
  `*.pth` state dict of the command's `--model`, a folder argument (`site/`) a web export; recipes and data come from the repo. An
  artifact whose name says `their` (`their_model.onnx`) gets no manifest: a file edgeattn did not export. INT8 stand-ins
  are quantized for onnxruntime, or for TensorRT when the command is `edgeattn check tensorrt`.
- DEVICES: a device URL (`ssh://…`) is the test session's loopback ssh device (a real sshd on
  127.0.0.1; tests/helpers/device.py), its ssh config passed in EDGEATTN_SSH_CONFIG.
- SERVERS: commands that run until stopped (`edgeattn web serve`) run for a second on a free port.
- SLOW: commands that run whole recipes or several processes run only under `make test-all`.
A command that cannot run on this machine (a TensorRT engine without a GPU) is skipped with the reason.
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from helpers.models import CACHE, REPO, TINY, code_hash, trained_checkpoint

DOCUMENTS = ["README.md", "docs/*.md", "recipes/README.md", "calibration/README.md"]

PLACEHOLDERS = {
    "CKPT": "model.pt",
    "QCKPT": "model-int8.pt",
    "ARTIFACT": "model.onnx",
    "SPEC": "builtin:digits",
    "RECIPE": "recipes/demo_quick.yaml",
    "FILE": "recipes/demo_quick.yaml",
    "NAME": "attn_vgg11",
    "MODEL_OR_CKPT": "attn_vgg11",
    "STATE_DICT": "state_dict.pth",
    "PATH": "model.onnx",
    "DIR": "out_dir",
}
# option -> value it is lowered to (None: drop the option and its value)
SMALLER = {
    "--epochs": "1",
    "--finetune-epochs": "1",
    "--calib-size": "64",
    "--iters": "3",
    "--seconds": "0.2",
    "--warmup": "1",
    "--limit": "200",
    "--layerwise-samples": "8",
    "--size": "32",
}
# data spec -> the small file prepare_workdir writes in its place
SMALL_DATA = {"builtin:digits": "digits.npz"}
SMALL_DATA_IMAGES = {"train": 900, "val": 400}  # taken from the built-in splits, rendered at 64 px
SMALL_IMAGENET_VAL = "imagenet/val"  # 4 photos in ImageNet val's synset-folder layout
SLOW = ("edgeattn run ", "torchrun ")
SERVERS = {("edgeattn", "web", "serve"): ["--seconds", "1", "--port", "0"]}
OUTPUT_OPTIONS = {"--out", "-o", "--json", "--junit", "--markdown", "--plot", "--report-dir"}
INPUT_OPTIONS = {"--reference", "-r", "--teacher", "--baseline"}
ARTIFACT_SUFFIXES = (".pt", ".pth", ".onnx", ".mlpackage", ".engine", ".plan")


@dataclass
class DocCommand:
    source: str  # file:line or the command whose help shows it
    text: str

    @property
    def slow(self) -> bool:
        return self.text.startswith(SLOW)


@dataclass
class Document:
    name: str
    commands: list[DocCommand] = field(default_factory=list)


def _fenced_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line inside a fenced code block, continuations joined."""
    out: list[tuple[int, str]] = []
    inside, pending, start = False, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("```"):
            inside = not inside
            continue
        if not inside:
            continue
        stripped = line.strip()
        if pending:
            pending += " " + stripped.rstrip("\\").strip()
        else:
            pending, start = stripped.rstrip("\\").strip(), number
        if not stripped.endswith("\\"):
            out.append((start, pending))
            pending = ""
    return out


def _command_of(line: str) -> str | None:
    """The edgeattn command in a shell or YAML line, without prompts, YAML keys and comments."""
    line = re.sub(r"^(\$ |- |run: |- run: )", "", line.strip())
    line = re.sub(r"\s+#.*$", "", line).strip()
    return line if line.startswith(("edgeattn ", "torchrun ")) and "edgeattn" in line else None


def documents() -> list[Document]:
    """One Document per `## ` section of each file (sections run in parallel test workers; a command
    that reads what an earlier section wrote gets a stand-in, see `provide`)."""
    docs = []
    for pattern in DOCUMENTS:
        for path in sorted(REPO.glob(pattern)):
            name = str(path.relative_to(REPO))
            headings = [
                (n, line[3:].strip())
                for n, line in enumerate(path.read_text().splitlines(), 1)
                if line.startswith("## ")
            ]
            by_section: dict[str, Document] = {}
            for number, line in _fenced_lines(path.read_text()):
                command = _command_of(line)
                if not command:
                    continue
                title = next((t for n, t in reversed(headings) if n < number), "")
                doc = by_section.setdefault(title, Document(f"{name} § {title}" if title else name))
                doc.commands.append(DocCommand(f"{name}:{number}", command))
            docs += by_section.values()
    return docs


def help_examples() -> list[DocCommand]:
    """The `Example:` / `Examples:` lines of every command's --help (the command docstrings)."""
    from edgeattn.cli.app import app

    found = []
    for info in _commands(app):
        doc = info.callback.__doc__ or ""
        block = re.split(r"Examples?:", doc, maxsplit=1)
        for line in block[1].splitlines() if len(block) > 1 else []:
            command = _command_of(line)
            if command:
                found.append(DocCommand(f"edgeattn {info.name} --help", command))
    return found


def _commands(app):  # noqa: ANN001, ANN202  (typer's own types)
    for info in app.registered_commands:
        yield info
    for group in app.registered_groups:
        for info in group.typer_instance.registered_commands:
            yield info


# ----------------------------------------------------------------------------------- making it small
def needs_device(command: str) -> bool:
    return "ssh://" in command


def tokens_of(command: str, device_url: str | None = None) -> list[str]:
    words = shlex.split(command)
    if device_url:
        words = [device_url if w.startswith("ssh://") else w for w in words]
    words = [PLACEHOLDERS.get(w, w) for w in words]
    words = [SMALL_DATA.get(w, w) for w in words]
    unknown = [w for w in words if re.fullmatch(r"[A-Z][A-Z_]{2,}", w)]
    if unknown:
        raise AssertionError(f"placeholder {unknown[0]} has no entry in helpers/docs.py PLACEHOLDERS")
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in SMALLER and i + 1 < len(words):
            out += [word, SMALLER[word]]
            i += 2
            continue
        out.append(word)
        i += 1
    for prefix, extra in SERVERS.items():
        if tuple(out[: len(prefix)]) == prefix:
            out += extra
    return out


def tiny_key(command: str) -> str:
    """The tiny configuration of the model a command names (`--model X`, `profile X`), else attn_vgg."""
    for key, tiny in TINY.items():
        if re.search(rf"(--model|profile) {tiny['name']}\b", command):
            return key
    return "attn_vgg11_linear"


def shrink_sizes(words: list[str], workdir: Path) -> list[str]:
    """`--input-size N` -> the tiny model's size (that of its stand-in checkpoints; `train` always
    gets one), shell globs expanded in `workdir`, recipes run by `edgeattn run` shrunk."""
    size = str(TINY[tiny_key(" ".join(words))]["input_size"])
    out = list(words)
    for i, word in enumerate(out[:-1]):
        if word == "--input-size":
            out[i + 1] = size
    if out[:2] == ["edgeattn", "train"] and "--input-size" not in out:
        out += ["--input-size", size]
    if out[:2] in (["edgeattn", "validate"], ["edgeattn", "eval"], ["edgeattn", "compare"]):
        out += [] if "--limit" in out else ["--limit", SMALLER["--limit"]]
    expanded: list[str] = []
    for word in out:
        matches = sorted(str(p.relative_to(workdir)) for p in workdir.glob(word)) if "*" in word else []
        expanded += matches or [word]
    if expanded[:2] == ["edgeattn", "run"]:
        shrink_recipe(workdir / expanded[2])
    return expanded


def shrink_recipe(path: Path) -> None:
    """A recipe made quick: 1 training epoch at the tiny size, small calibration/eval sets, few runs."""
    import yaml

    data = yaml.safe_load(path.read_text())
    model = data.get("model", {})
    if model.get("name"):
        model["input_size"] = TINY[tiny_key(f"--model {model['name']}")]["input_size"]
    if "train" in data:
        data["train"]["epochs"] = 1
    for method in (data.get("quantize") or {}).values():
        if isinstance(method, dict):
            method.update(calib_size=64, **({"epochs": 1} if "epochs" in method else {}))
    if data.get("prune"):
        data["prune"]["finetune_epochs"] = min(1, data["prune"].get("finetune_epochs", 0))
    data.setdefault("validate", {})["limit"] = 200
    data.setdefault("bench", {}).update(iters=3, warmup=1)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def input_paths(words: list[str]) -> list[str]:
    """Arguments that name files the command reads."""
    found = []
    for i, word in enumerate(words[1:], 1):
        previous = words[i - 1]
        if previous in OUTPUT_OPTIONS:
            continue
        folder = word.endswith("/") and words[1] != "data"  # `site/`: a web export
        if previous in INPUT_OPTIONS or (
            not word.startswith("-") and (word.endswith(ARTIFACT_SUFFIXES) or folder)
        ):
            found.append(word)
    return found


def unavailable_here(words: list[str]) -> str | None:
    """Why the artifact a command writes or reads cannot be made or run on this machine, or None."""
    from edgeattn.runtime import RUNNERS, suffix_kinds

    kinds = suffix_kinds()
    for word in words:
        kind = kinds.get(Path(word).suffix.lower())
        reason = RUNNERS.get(kind).unavailable_reason() if kind else None
        if reason:
            return reason
    return None


def provide(
    path: Path, workdir: Path, model: str | None = None, placement: str = "onnxruntime"
) -> str | None:
    """Make the input `path` from a tiny trained model (a `.pth` state dict: of the command's `--model`);
    returns why it cannot be made here, or None."""

    if path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name.lower()
    ckpt = trained_checkpoint("attn_vgg11_linear")
    quantized = any(tag in name for tag in ("int8", "ptq", "qat"))
    if path.suffix in (".engine", ".plan"):
        return "a TensorRT engine needs TensorRT and an NVIDIA GPU"
    if path.suffix == ".pth":  # a plain state dict of the named zoo model, as timm releases them
        import torch

        from edgeattn.checkpoint import open_model

        torch.save(open_model(model or "attn_vgg11").module.state_dict(), path)
        return None
    source = _stand_in(ckpt, f"int8-{placement}.pt") if quantized else ckpt
    if path.suffix == ".pt":
        shutil.copy(source, path)
        return None
    target = {".onnx": "onnx", ".mlpackage": "coreml", "": "web"}[path.suffix]
    precision = "int8" if quantized else ("fp16" if "fp16" in name or target == "coreml" else "fp32")
    made = _stand_in(source, f"{precision}{path.suffix or '-site'}")
    (shutil.copytree if made.is_dir() else shutil.copy)(made, path)
    if "their" not in name:  # `their_model.onnx`: someone else's export, without edgeattn's manifest
        shutil.copy(made.with_name(made.name + ".json"), path.with_name(path.name + ".json"))
    return None


def _stand_in(source: Path, what: str) -> Path:
    """`source` quantized (`int8-onnxruntime.pt`, `int8-tensorrt.pt`) or exported (`fp32.onnx`, `int8.onnx`, `fp16.mlpackage`, ...),
    made once per code version and shared by every documented command (like the trained models)."""
    from filelock import FileLock

    out = CACHE / f"docs-stand-ins-{code_hash()}" / f"{source.stem}-{what}"
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not out.exists():
            if what.startswith("int8-"):
                from edgeattn.quantize import quantize_checkpoint

                runtime = what.removeprefix("int8-").removesuffix(".pt")
                quantize_checkpoint(source, "builtin:digits", out, calib_size=64, runtime=runtime)
            else:
                from edgeattn.export import export_artifact

                precision, suffix = what.replace("-site", ".web").split(".")
                target = {"onnx": "onnx", "mlpackage": "coreml", "web": "web"}[suffix]
                batch = {"dynamic_batch": (1, 8, 64)} if target == "onnx" else {}
                export_artifact(source, target, out, precision=precision, **batch)
    return out


def prepare_workdir(workdir: Path) -> None:
    """A user's checkout, as far as commands read it: the recipes, the calibration sample, the
    small data files of SMALL_DATA and SMALL_IMAGENET_VAL."""
    for folder in ("recipes", "calibration"):
        shutil.copytree(REPO / folder, workdir / folder, dirs_exist_ok=True)
    shutil.copy(_small_digits(), workdir / SMALL_DATA["builtin:digits"])
    _small_imagenet_val(workdir / SMALL_IMAGENET_VAL)


def _small_imagenet_val(root: Path) -> None:
    """ImageNet val's layout (val/<synset>/ILSVRC2012_val_*.JPEG) with 4 real photos (crops of
    scikit-learn's samples), for the documented ImageNet commands."""
    from PIL import Image

    from helpers.photos import crops

    for i, img in enumerate(crops(4)):
        folder = root / ("n01440764", "n15075141")[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"ILSVRC2012_val_{i + 1:08d}.JPEG", quality=90)


def _small_digits() -> Path:
    """SMALL_DATA's sample of builtin:digits as an .npz, made once per code version."""
    from filelock import FileLock

    out = CACHE / f"docs-stand-ins-{code_hash()}" / "digits-sample.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not out.exists():
            import numpy as np

            from edgeattn.data import load_split

            parts = [load_split("builtin:digits", split).subset(n) for split, n in SMALL_DATA_IMAGES.items()]
            tmp = out.with_name("partial-" + out.name)
            np.savez(
                tmp,
                images=np.concatenate([p.images.numpy() for p in parts]),
                labels=np.concatenate([p.labels.numpy() for p in parts]),
                classes=np.array(parts[0].classes),
            )
            tmp.rename(out)
    return out
