"""A model folder's generator G as one ONNX or TorchScript file, for other runtimes.

Both files compute ``translated = G(image, labels)`` (StarGAN v2 folders: two files, the
latent- and the reference-guided entry point, :mod:`stargan.export_v2`)::

    image       float32 [N, 3, S, S]  RGB in [-1, 1] (x / 127.5 - 1), S fixed (the model's)
    labels      float32 [N, c]        the target domains; c and column order in the sidecar
    translated  float32 [N, 3, S, S]  RGB in [-1, 1]

N (the batch) is free. Beside ``model.onnx`` a ``model.onnx.json`` sidecar describes the
inputs, every label column (domain names; for joint models each dataset's part and the
mask), the exclusive groups, the preprocessing and the source model's config, so the
file can be called without this package (docs/export.md). Only G is exported: the input's
own labels, which the Translator estimates with D_cls, must be given by the caller.

ONNX needs ``pip install 'stargan[onnx]'`` (onnx to export, onnxruntime to run, onnxscript
for the ``dynamo`` exporter only).
"""

from __future__ import annotations

import importlib
import json
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import stargan
from stargan import export_v2
from stargan.atomic import atomic_path, write_text
from stargan.errors import StarGANError
from stargan.models.v1 import Generator
from stargan.stylemodel import StyleModel, is_style_model
from stargan.translate import Translator, read_model_config

TOLERANCE = 1e-4  # max abs diff (outputs in [-1, 1]) between eager G and an exported file
INPUTS, OUTPUT = ("image", "labels"), "translated"
TRACE_BATCH = 2  # example batch for export: not 1, so nothing can specialise on N == 1
EXTRA = "pip install 'stargan[onnx]'"


# ---------------------------------------------------------------------- export
def export_onnx(
    model_dir: str | Path, out_file: str | Path, opset: int = 17, dynamo: bool = False
) -> dict[str, Any]:
    """Write G of ``model_dir`` as ONNX (inputs ``image``, ``labels``; output
    ``translated``; batch axis ``N`` dynamic) plus ``<out_file>.json``. A StarGAN v2
    folder gives two files, its latent- and reference-guided entry points
    (:mod:`stargan.export_v2`).

    ``dynamo=False`` uses torch's TorchScript-based ONNX exporter (still in torch 2.13,
    deprecated, faster to export and checked here the longest); ``dynamo=True`` the
    ``torch.export`` one, which starts at opset 18 and converts down to ``opset``."""
    onnx = _require("onnx", "ONNX export")
    if dynamo:
        _require("onnxscript", "the dynamo ONNX exporter")
    out_file = Path(out_file)

    def write(module: nn.Module, example: tuple, path: Path, names: Sequence[str]) -> None:
        with _atomic(path) as tmp, _quiet_export_warnings():
            _onnx_export(module, example, tmp, names, opset, dynamo)

    start = time.perf_counter()
    if is_style_model(Path(model_dir)):
        if dynamo and opset < 18:
            # measured with torch 2.13: its conversion down from opset 18 leaves AdaIN's
            # Split without its output count, a graph onnxruntime refuses
            raise StarGANError(
                f"the dynamo ONNX exporter writes StarGAN v2 models at opset 18 or later "
                f"(got {opset}): pass --opset 18, or use the default exporter"
            )
        model, files = export_v2.export_entries(  # each entry's networks, checks left out
            Path(model_dir),
            out_file,
            lambda entry, m, ex, path: write(m.net, ex, path, export_v2.ENTRY_INPUTS[entry]),
        )
    else:
        model = Translator.from_pretrained(model_dir)
        files = {"G": out_file}
        write(model.G, _example_inputs(model, TRACE_BATCH, seed=0), out_file, INPUTS)
    seconds = time.perf_counter() - start
    onnx_model = onnx.load(str(out_file), load_external_data=False)
    actual_opset = next(o.version for o in onnx_model.opset_import if o.domain in ("", "ai.onnx"))
    extra = {"exporter": f"torch.onnx.export(dynamo={dynamo})", "opset": actual_opset}
    return _finish(model, Path(model_dir), files, "onnx", extra, seconds)


def _onnx_export(
    module: nn.Module, example: tuple, path: Path, names: Sequence[str], opset: int, dynamo: bool
) -> None:
    """One module to one ONNX file, the batch axis ``N`` of every input and output free."""
    if dynamo:
        n = torch.export.Dim("N", min=1)
        torch.onnx.export(
            module,
            example,
            str(path),
            dynamo=True,
            external_data=False,  # one self-contained file (G is far below 2 GB)
            opset_version=opset,
            input_names=list(names),
            output_names=[OUTPUT],
            dynamic_shapes=tuple({0: n} for _ in names),
            verbose=False,
        )
        return
    # instance_norm is exported with train=True: each image's own statistics,
    # exactly what G does (it keeps no running statistics; see models/layers.py).
    torch.onnx.export(
        module,
        example,
        str(path),
        dynamo=False,
        opset_version=opset,
        input_names=list(names),
        output_names=[OUTPUT],
        dynamic_axes={name: {0: "N"} for name in (*names, OUTPUT)},
    )


def export_torchscript(model_dir: str | Path, out_file: str | Path) -> dict[str, Any]:
    """Write G of ``model_dir`` as a scripted TorchScript archive (``torch.jit.load``;
    ``forward(image, labels) -> translated``, shapes checked) plus ``<out_file>.json``.
    A StarGAN v2 folder gives two archives, its latent- and reference-guided entry points
    (``forward(image, z, domain)`` and ``forward(image, reference, domain)``)."""
    out_file = Path(out_file)

    def write(module: torch.jit.ScriptModule, path: Path) -> None:
        with _atomic(path) as tmp, _quiet_export_warnings():
            module.save(str(tmp))

    start = time.perf_counter()
    if is_style_model(Path(model_dir)):
        model, files = export_v2.export_entries(
            Path(model_dir),
            out_file,
            lambda entry, m, ex, path: write(_quietly(export_v2.scripted, m, ex), path),
        )
    else:
        model = Translator.from_pretrained(model_dir)
        files = {"G": out_file}
        exported = _Exported(model.G, model.image_size, model.layout.dim).eval()
        write(_quietly(torch.jit.script, exported), out_file)
    seconds = time.perf_counter() - start
    extra = {"exporter": "torch.jit.script", "torch": torch.__version__}
    return _finish(model, Path(model_dir), files, "torchscript", extra, seconds)


class _Exported(nn.Module):
    """G with the exported argument names, refusing shapes it was not trained for (a
    fully convolutional G would otherwise run at any size and silently give poor output)."""

    def __init__(self, G: Generator, image_size: int, label_dim: int) -> None:
        super().__init__()
        self.G = G
        self.image_size = image_size
        self.label_dim = label_dim
        self.image_error = f"image must be float32 [N, 3, {image_size}, {image_size}] in [-1, 1]"
        self.labels_error = f"labels must be float32 [N, {label_dim}], N as for image"

    def forward(self, image: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        s = self.image_size
        if image.dim() != 4 or image.size(1) != 3 or image.size(2) != s or image.size(3) != s:
            raise ValueError(self.image_error)
        if labels.dim() != 2 or labels.size(0) != image.size(0) or labels.size(1) != self.label_dim:
            raise ValueError(self.labels_error)
        return self.G(image, labels)  # [N, 3, S, S] in [-1, 1]


def _finish(
    model: Translator | StyleModel,
    model_dir: Path,
    files: dict[str, Path],
    fmt: str,
    extra: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    """Write the sidecar beside the first file; the export's summary."""
    out_file = next(iter(files.values()))
    sidecar = sidecar_path(out_file)
    if isinstance(model, StyleModel):
        description = export_v2.describe(model, model_dir, files, fmt, extra)
        sizes = {"latent_dim": model.latent_dim, "domains": list(model.domains)}
    else:
        description = describe(model, model_dir, out_file, fmt, extra)
        sizes = {"label_dim": model.layout.dim}
    try:
        write_text(sidecar, json.dumps(description, indent=2))
    except OSError as err:
        raise StarGANError(f"cannot write {sidecar}: {err.strerror}") from err
    return {
        "format": fmt,
        "file": str(out_file),
        "files": {k: str(v) for k, v in files.items()},
        "sidecar": str(sidecar),
        "bytes": sum(f.stat().st_size for f in files.values()),
        "export_seconds": round(seconds, 3),
        "image_size": model.image_size,
        **sizes,
        **extra,
    }


def sidecar_path(exported_file: str | Path) -> Path:
    """``model.onnx`` -> ``model.onnx.json``."""
    exported_file = Path(exported_file)
    return exported_file.with_name(exported_file.name + ".json")


# ---------------------------------------------------------------------- sidecar
def describe(
    translator: Translator,
    model_dir: Path,
    out_file: Path,
    fmt: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The sidecar: everything needed to call the exported file without stargan."""
    s, dim = translator.image_size, translator.layout.dim
    return {
        "kind": "stargan-v1-generator",
        "format": fmt,
        "file": out_file.name,
        **(extra or {}),
        "stargan": stargan.__version__,
        "inputs": [
            {
                "name": INPUTS[0],
                "dtype": "float32",
                "shape": ["N", 3, s, s],
                "layout": "NCHW, RGB",
                "range": [-1.0, 1.0],
            },
            {
                "name": INPUTS[1],
                "dtype": "float32",
                "shape": ["N", dim],
                "columns": label_columns(translator),
            },
        ],
        "outputs": [
            {
                "name": OUTPUT,
                "dtype": "float32",
                "shape": ["N", 3, s, s],
                "layout": "NCHW, RGB",
                "range": [-1.0, 1.0],
            }
        ],
        "labels": label_description(translator),
        "preprocessing": {
            "convert": "RGB (alpha composited onto white)",
            "crop": translator.crop,
            "crop_rule": "centre square of side min(crop, width, height); crop 0: "
            "the largest centred square",
            "resize": [s, s],
            "resize_filter": translator.resize_filter,
            "interpolation": f"{translator.resize_filter} "
            f"(PIL Image.{translator.resize_filter.upper()}, antialiased when shrinking)",
            "scale": "float32(uint8) / 127.5 - 1, to [-1, 1]",
        },
        "postprocessing": "round((clip(y, -1, 1) + 1) * 127.5) to uint8, then NCHW -> HWC",
        "source": {
            "model_dir": str(model_dir),
            "model": asdict(translator.model_cfg),
            "config": read_model_config(model_dir),
        },
    }


def label_columns(translator: Translator) -> list[str]:
    """Name of each column of the ``labels`` input, in order. Joint models: the datasets'
    domains as ``dataset.domain``, then the mask as ``mask.dataset``."""
    layout = translator.layout
    mask = [f"mask.{name}" for name in layout.datasets] if layout.joint else []
    return layout.domain_names() + mask


def label_description(translator: Translator) -> dict[str, Any]:
    """Each dataset's column range, kind and exclusive groups; the mask's columns."""
    layout = translator.layout
    sources = {s.get("name"): s for s in translator.meta.get("sources", []) if isinstance(s, dict)}
    datasets = []
    for i, (name, spec) in enumerate(zip(layout.datasets, layout.specs, strict=True)):
        part = layout.part(i)
        entry = {
            "name": name,
            "columns": [part.start, part.stop],
            "kind": spec.kind,
            "names": list(spec.names),
            "exclusive_groups": [list(g) for g in spec.exclusive_groups],
        }
        if "crop" in sources.get(name, {}):
            entry["crop"] = sources[name]["crop"]
        datasets.append(entry)
    rules = (
        "multi: 1 = has the attribute, 0 = has not; at most one 1 per exclusive group "
        "(all 0 is allowed). categorical: one-hot. Give the whole target, including the "
        "attributes the input already has and should keep."
    )
    if translator.needs_source:
        rules += (
            " This model was trained on label differences (model.g_condition=difference):"
            " its labels input is target - source, the target labels minus the input's own"
            " (+1 switch on, -1 switch off, 0 keep); a joint mask's columns stay the target's."
        )
    out: dict[str, Any] = {"dim": layout.dim, "datasets": datasets, "rules": rules}
    if layout.joint:
        out["mask"] = {
            "columns": [layout.cls_dim, layout.dim],
            "datasets": list(layout.datasets),
            "rule": "one-hot: the dataset whose labels the row sets; other datasets' "
            "columns 0 (paper section 3.2)",
        }
    return out


# ---------------------------------------------------------------------- running
def open_onnx(path: str | Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU InferenceSession (``threads``: intra-op threads; None: ORT's
    default)."""
    ort = _require("onnxruntime", "running an ONNX model")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        raise StarGANError(f"{path}: onnxruntime cannot load it ({str(err)[:200]})") from err


def run_onnx(
    session: Any, x: torch.Tensor | np.ndarray, c: torch.Tensor | np.ndarray
) -> np.ndarray:
    """translated [N, 3, S, S] = the ONNX G(image x [N, 3, S, S], labels c [N, dim])."""
    feed = {name: _as_feed(v) for name, v in zip(INPUTS, (x, c), strict=True)}
    return session.run([OUTPUT], feed)[0]


def load_torchscript(path: str | Path) -> torch.jit.ScriptModule:
    """A TorchScript file written by ``export_torchscript``. TorchScript holds code as well
    as weights: load only files you trust (such as ones you exported yourself)."""
    try:
        with _quiet_export_warnings():
            return torch.jit.load(str(path), map_location="cpu").eval()
    except (RuntimeError, OSError, ValueError) as err:
        raise StarGANError(f"{path}: not a loadable TorchScript file ({str(err)[:200]})") from err


def _runner(
    exported_file: Path, threads: int | None, names: Sequence[str] = INPUTS
) -> Callable[..., np.ndarray]:
    """The exported file as a function of its inputs (in the order of ``names``, the
    graph's input names) returning numpy, by the file's kind (suffix .onnx: ONNX, else
    TorchScript)."""
    if not exported_file.exists():
        raise StarGANError(f"{exported_file} does not exist")
    if exported_file.suffix.lower() == ".onnx":
        session = open_onnx(exported_file, threads)

        def run_file(*inputs: torch.Tensor | np.ndarray) -> np.ndarray:
            feed = {n: _as_feed(v) for n, v in zip(names, inputs, strict=True)}
            return session.run([OUTPUT], feed)[0]

        return run_file
    module = load_torchscript(exported_file)

    def run_module(*inputs: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return module(*inputs).numpy()

    return run_module


# ---------------------------------------------------------------------- checks
def check_parity(
    model_dir: str | Path,
    exported_file: str | Path,
    batch_sizes: Sequence[int] = (1, 3),
    seed: int = 0,
    tolerance: float = TOLERANCE,
) -> dict[str, Any]:
    """Eager G vs the exported file (onnxruntime CPU for ``.onnx``, torch.jit for
    TorchScript) on the same seeded images and valid labels at each batch size (several
    sizes prove the batch axis is free). A StarGAN v2 export: both of its files, each
    against its eager entry point. Raises StarGANError past ``tolerance``."""
    exported_file = Path(exported_file)
    if is_style_model(Path(model_dir)):
        per_batch = _v2_parity(Path(model_dir), exported_file, batch_sizes, seed)
    else:
        per_batch = _v1_parity(Path(model_dir), exported_file, batch_sizes, seed)
    result = {
        "file": str(exported_file),
        "max_abs_diff": max(per_batch.values()),
        "batch_sizes": list(batch_sizes),
        "per_batch": per_batch,
        "tolerance": tolerance,
    }
    if not result["max_abs_diff"] <= tolerance:  # also catches NaN
        raise StarGANError(
            f"{exported_file} differs from eager G by {result['max_abs_diff']:.3g} "
            f"(tolerance {tolerance:g}) at batch sizes {per_batch}"
        )
    return result


def _v1_parity(
    model_dir: Path, exported_file: Path, batch_sizes: Sequence[int], seed: int
) -> dict[int, float]:
    translator = Translator.from_pretrained(model_dir)
    run = _runner(exported_file, torch.get_num_threads())
    per_batch = {}
    for n in batch_sizes:
        x, c = _example_inputs(translator, n, seed + n)
        with torch.inference_mode():
            expected = translator.G(x, c).numpy()
        per_batch[n] = _max_abs_diff(run(x, c), expected, exported_file, n)
    return per_batch


def _v2_parity(
    model_dir: Path, exported_file: Path, batch_sizes: Sequence[int], seed: int
) -> dict[str, float]:
    """Each of a v2 export's two files against its eager entry point, per batch size."""
    model = export_v2.load_exportable(model_dir)
    files = export_v2.entry_files(exported_file)
    per_batch = {}
    for entry, module in export_v2.entry_modules(model).items():
        run = _runner(files[entry], torch.get_num_threads(), export_v2.ENTRY_INPUTS[entry])
        for n in batch_sizes:
            inputs = export_v2.example_inputs(model, entry, n, seed + n)
            with torch.inference_mode():
                expected = module(*inputs).numpy()
            per_batch[f"{entry}/{n}"] = _max_abs_diff(run(*inputs), expected, files[entry], n)
    return per_batch


def _max_abs_diff(got: np.ndarray, expected: np.ndarray, file: Path, n: int) -> float:
    """The largest difference of an exported file's output from eager's, at batch ``n``;
    a different shape is an error naming the file."""
    if got.shape != expected.shape:
        raise StarGANError(
            f"{file}: output {list(got.shape)} at batch {n}, eager G gives {list(expected.shape)}"
        )
    return float(np.abs(got - expected).max())


def time_exported(
    model_dir: str | Path,
    exported_file: str | Path,
    batch_size: int = 1,
    repeats: int = 5,
    threads: int = 1,
) -> dict[str, Any]:
    """Median ms per image of eager G and of the exported file on one batch, with
    ``threads`` intra-op threads for both (torch and onnxruntime). After a warm-up of
    each, the two alternate, so a machine busy with other work slows both alike."""
    translator = Translator.from_pretrained(model_dir)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        run = _runner(Path(exported_file), threads)
        x, c = _example_inputs(translator, batch_size, seed=0)

        def eager() -> None:
            with torch.inference_mode():
                translator.G(x, c)

        times = _alternating({"eager": eager, "exported": lambda: run(x, c)}, repeats)
    finally:
        torch.set_num_threads(old)
    return {
        "file": str(exported_file),
        "batch_size": batch_size,
        "threads": threads,
        "repeats": repeats,
        "eager_ms_per_image": 1000 * times["eager"] / batch_size,
        "exported_ms_per_image": 1000 * times["exported"] / batch_size,
    }


def _alternating(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, run in turn ``repeats`` times after a warm-up."""
    for fn in fns.values():
        fn()  # first-run allocations and kernel choices
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


# ---------------------------------------------------------------------- helpers
def _example_inputs(translator: Translator, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded images [n, 3, S, S] in [-1, 1] and valid labels [n, dim]: row i sets
    dataset i mod (number of datasets), labels as D_cls would give for random logits."""
    gen = torch.Generator().manual_seed(seed)
    s, layout = translator.image_size, translator.layout
    x = torch.rand(n, 3, s, s, generator=gen) * 2 - 1
    rows = []
    for i in range(n):
        part = i % len(layout.specs)
        logits = torch.randn(1, layout.specs[part].dim, generator=gen)
        rows.append(layout.encode(part, layout.specs[part].from_logits(logits)))
    return x, torch.cat(rows)


def _as_feed(v: torch.Tensor | np.ndarray) -> np.ndarray:
    """An input as onnxruntime takes it: int64 stays int64 (StarGAN v2's domain
    indices), everything else float32."""
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    dtype = np.int64 if v.dtype == np.int64 else np.float32
    return np.ascontiguousarray(v, dtype=dtype)


def _require(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise StarGANError(f"{what} needs the {module} package: {EXTRA}") from err


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """atomic.atomic_path, with a failure to write as a StarGANError naming the file."""
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except OSError as err:
        raise StarGANError(f"cannot write {path}: {err.strerror or err}") from err


def _quietly(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` with the export warnings below silenced."""
    with _quiet_export_warnings():
        return fn(*args)


@contextmanager
def _quiet_export_warnings() -> Iterator[None]:
    """torch 2.13 warns on every use that TorchScript and its ONNX exporter are
    deprecated (docs/export.md says so once), and that instance_norm exports with
    train=True, which is intended here; the tracer flags instance_norm's shape checks
    (channels, spatial size: fixed in the file anyway); the dynamo exporter warns about
    its own internals. Other warnings still show."""
    with warnings.catch_warnings():
        for message in (
            r".*legacy TorchScript-based ONNX export.*",
            r".*The feature will be removed.*",
            r".*torch\.jit\..* is deprecated.*",
            r".*instance_norm.* train=True.*",
            # instance_norm's own channel / spatial-size checks, seen by the tracer
            r".*Converting a tensor to a Python boolean.*",
            # StarGAN v2's per-domain heads pick a row by the domain index: indices are
            # 0..k-1, never the negative ones this warns about
            r".*Exporting aten::index operator of advanced indexing.*",
            # the dynamo exporter's internals (torch 2.13): no action for a caller
            r".*axis name: N will not be used.*",
            r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
        ):
            warnings.filterwarnings("ignore", message=message)
        yield
