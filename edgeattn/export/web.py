"""Web export: a self-contained static site that classifies images in the browser with ONNX Runtime Web.

The model is the ONNX exporter's, built and checked the same way (`build_onnx`: checker, shape
inference, numerically against torch; int8 = the quantize stage's Q/DQ graph); the site adds the page,
the pinned onnxruntime-web files (from `edgeattn web setup`'s verified cache, or `--ort-web-dir`), and
`edgeattn-web.json` (layout: `edgeattn.web.site`). `--webgpu` adds the WebGPU bundle (27 MB more).

int8 uses the onnxruntime placement: onnxruntime-web's WASM backend is onnxruntime's CPU provider with
MLAS compiled for WebAssembly SIMD (its `wasm_simd` kernels) and the same graph fusions, so the
placement made for onnxruntime CPU (int8 only where MACs per output are high, float elsewhere) fits it,
and one quantized checkpoint serves the onnx and web targets. Whether INT8 is faster in a given
browser is for `edgeattn bench` to say.

The manifest beside the folder (`site.json`) hashes the whole site, like every target's; inside,
`model.onnx.json` is the model's own manifest, so the folder stands alone on any static host.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgeattn.errors import InputError
from edgeattn.export.base import EXPORTERS, Exporter, ExportRequest, TargetOption
from edgeattn.export.common import make_manifest, publish_manifest
from edgeattn.export.onnx import ATOL_OPTION, EXPORTER_OPTION, build_onnx, check_onnx_request
from edgeattn.fileio import atomic_output
from edgeattn.manifest import ArtifactManifest, write_manifest
from edgeattn.web import ortfiles
from edgeattn.web.site import MODEL_FILE, is_site, write_site


class WebExporter(Exporter):
    name = "web"
    suffixes = ("",)  # a folder
    writes_folder = True
    precisions = ("fp32", "fp16", "int8")
    default_precision = "fp32"
    runner = "ort-web"
    placement = "onnxruntime"
    typical_precisions = ("fp32", "int8")
    note = "static site (index.html + ONNX + onnxruntime-web WASM) for any static host; COOP/COEP for threads"
    options = (
        EXPORTER_OPTION,
        ATOL_OPTION,
        TargetOption(
            "ort_web_dir",
            None,
            f"web: folder with the onnxruntime-web {ortfiles.VERSION} files (default: `edgeattn web setup`'s cache, ${ortfiles.DIR_ENV}).",
            "--ort-web-dir",
            Path,
        ),
        TargetOption(
            "webgpu",
            False,
            "web: also ship the WebGPU backend (page setting ?backend=webgpu; 27 MB more).",
            "--webgpu/--no-webgpu",
            bool,
        ),
        TargetOption("title", None, "web: page title (default: the model name and precision)."),
    )

    def backends(self, req: ExportRequest) -> tuple[str, ...]:
        return ("wasm", "webgpu") if req.options.get("webgpu") else ("wasm",)

    def check(self, req: ExportRequest) -> None:
        check_onnx_request(req)
        if req.batch.min != 1:
            raise InputError(
                f"the page classifies one image at a time, but this export's smallest batch is {req.batch.min}",
                "export with --batch 1 (the default) or a --dynamic-batch range starting at 1",
            )
        out = req.out
        if out.exists() and not out.is_dir():
            raise InputError(f"{out} is a file", "give a folder path for --out (e.g. site)")
        if out.is_dir() and any(out.iterdir()) and not is_site(out):
            raise InputError(
                f"{out} is a folder that is not an edgeattn web export; replacing it would delete its files",
                "give a new or empty folder for --out",
            )
        ortfiles.ort_web_dir(req.options.get("ort_web_dir"), self.backends(req))

    def export(self, req: ExportRequest) -> ArtifactManifest:
        backends = self.backends(req)
        ort_dir = ortfiles.ort_web_dir(req.options.get("ort_web_dir"), backends)
        with atomic_output(req.out) as tmp:
            tmp.mkdir()
            model = tmp / MODEL_FILE
            onnx_req = dataclasses.replace(
                req,
                out=model,
                options={
                    "exporter": req.options["exporter"],
                    "fp16_io": False,  # the page feeds Float32Array inputs
                    "runtime": self.placement,
                    "atol": req.options["atol"],
                },
            )
            details = build_onnx(onnx_req, model, qdq_runtime=self.placement)
            model_manifest = make_manifest(onnx_req, versions=("onnxslim",), details=details)
            write_manifest(model, model_manifest)
            names = ortfiles.files_for(backends)
            site = write_site(
                tmp,
                model=model,
                ort_files={name: ort_dir / name for name in names},
                backends={b: ortfiles.BACKEND_FILES[b] for b in backends},
                ort_version=ortfiles.VERSION,
                info=_page_info(req, model_manifest),
            )
        manifest = make_manifest(
            req,
            versions=("onnxslim",),
            details={
                **details,
                "model": MODEL_FILE,
                "model_sha256": model_manifest.sha256,
                "onnxruntime_web": ortfiles.VERSION,
                "backends": list(backends),
                "site_files": sorted(site["files"]),
                "site_bytes": sum(p.stat().st_size for p in req.out.rglob("*") if p.is_file()),
            },
        )
        manifest.versions["onnxruntime-web"] = ortfiles.VERSION
        return publish_manifest(req.out, manifest)


def _page_info(req: ExportRequest, manifest: ArtifactManifest) -> dict[str, Any]:
    """What the page shows and needs: title, classes, input spec and names."""
    classes = list(manifest.class_names) or [f"class {i}" for i in range(manifest.num_classes)]
    return {
        "title": str(req.options.get("title") or f"{req.handle.config.name} ({req.precision})"),
        "precision": req.precision,
        "classes": classes,
        "class_names_known": bool(manifest.class_names),
        "input": {
            "name": manifest.input_name,
            "output": manifest.output_name,
            "dtype": "float32",
            "shape": manifest.input_shape,
            "spec": manifest.input_spec,
        },
    }


EXPORTERS.register("web", WebExporter())
