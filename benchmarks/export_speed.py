"""Exported G (ONNX on onnxruntime, TorchScript) against eager G: parity and speed.

    python benchmarks/export_speed.py                       # paper size: 128 px, c_dim 5
    python benchmarks/export_speed.py --image-size 32 --conv-dim 16 --repeats 3

A randomly initialised model folder of the given size is written to a temporary folder,
exported both ways, checked for parity (max abs diff over batch sizes 1 and 3) and timed:
median ms per image at batch 1 and at ``--batch-size``, eager and exported alternating so
a busy machine slows both alike. Needs ``pip install -e ".[onnx]"``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

from _report import print_report
from stargan import export_formats
from stargan.config import ModelConfig
from stargan.data.celeba import label_spec
from stargan.models.v1 import build_v1
from stargan.translate import Translator


def model_folder(out: Path, image_size: int, conv_dim: int) -> Path:
    spec = label_spec(("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"))
    cfg = ModelConfig(image_size=image_size, g_conv_dim=conv_dim, c_dim=spec.dim)
    torch.manual_seed(0)
    G = build_v1(cfg)["G"]
    return Translator(G, cfg, spec, meta={"dataset": "celeba", "crop": 178}).save_pretrained(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--conv-dim", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    rows, result = [], {"threads": args.threads, "load_avg_1min": load_before}
    with tempfile.TemporaryDirectory() as tmp:
        model = model_folder(Path(tmp) / "model", args.image_size, args.conv_dim)
        files = {"onnx": Path(tmp) / "g.onnx", "torchscript": Path(tmp) / "g.pt"}
        export_formats.export_onnx(model, files["onnx"])
        export_formats.export_torchscript(model, files["torchscript"])
        for fmt, path in files.items():
            diff = export_formats.check_parity(model, path, batch_sizes=(1, 3))["max_abs_diff"]
            rows.append((f"{fmt} max abs diff vs eager", f"{diff:.2e}"))
            result[f"{fmt}_max_abs_diff_x1e6"] = diff * 1e6  # the JSON keeps 4 decimals
            for batch in (1, args.batch_size):
                t = export_formats.time_exported(model, path, batch, args.repeats, args.threads)
                eager, exported = t["eager_ms_per_image"], t["exported_ms_per_image"]
                rows.append(
                    (f"{fmt} batch {batch} ms/image", f"eager {eager:.1f}  exported {exported:.1f}")
                )
                result[f"{fmt}_b{batch}_eager_ms"] = eager
                result[f"{fmt}_b{batch}_ms"] = exported
    rows.append(("1-min load average before", f"{load_before:.2f}"))
    print_report(rows, result)


if __name__ == "__main__":
    main()
