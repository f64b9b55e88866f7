#!/usr/bin/env python3
"""Runs an ONNX model in onnxruntime beside ccc's float reference of the same file.

    python3 tools/onnx_check.py MODEL.onnx [--ccc target/release/ccc] [--limit N]
        [--input-scale S] [--data-dir /usr/share/datasets/fashion-mnist]

On Fashion-MNIST test images (or, with --random N, seeded random ones) it prints the
largest logit difference between onnxruntime and `ccc infer --float`, and both
accuracies. Both engines see the same pixels: ccc reads pixel / 256 (or pixel / S with
--input-scale S) and onnxruntime is fed exactly that. Needs numpy, safetensors and
onnxruntime (the venv `make venv` creates).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import List, Optional, Sequence

import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file


def ccc_float(ccc: str, model: str, args: List[str]) -> tuple:
    """ccc's float logits and the images it used (read back from its --dump)."""
    with tempfile.TemporaryDirectory() as d:
        dump = os.path.join(d, "dump.safetensors")
        out = subprocess.run(
            [ccc, "infer", model, "--float", "--dump", dump] + args,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        t = load_file(dump)
    lines = [json.loads(l) for l in out.splitlines() if l.strip()]
    images = np.stack([t[f"image{k}.input"] for k in range(len(lines))])
    logits = np.array([l["logits"] for l in lines], dtype=np.float64)
    labels = [l["label"] for l in lines]
    return images, logits, labels


def check(model: str, ccc: str, args: List[str], scale: float) -> dict:
    images, ref, labels = ccc_float(ccc, model, args)
    engine = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = engine.get_inputs()[0].name
    x = images.astype(np.float32) / np.float32(scale)
    got = np.concatenate([engine.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])
    res = {
        "images": len(images),
        "max_abs_logit_diff": float(np.abs(got - ref).max()),
        "engine": f"onnxruntime {ort.__version__}",
        "class_agreement": int((got.argmax(1) == ref.argmax(1)).sum()),
    }
    if all(l is not None for l in labels):
        y = np.array(labels)
        res["onnxruntime_accuracy"] = float((got.argmax(1) == y).mean())
        res["ccc_float_accuracy"] = float((ref.argmax(1) == y).mean())
    return res


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--ccc", default=os.environ.get("CCC_BIN", "target/release/ccc"))
    p.add_argument("--limit", type=int, default=1000, help="Fashion-MNIST test images")
    p.add_argument("--random", type=int, help="use N seeded random images instead")
    p.add_argument("--input-scale", type=float, default=256.0)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args(argv)
    args = ["--random", str(a.random)] if a.random else [
        "--dataset", "fashion-mnist", "--data-dir", a.data_dir, "--limit", str(a.limit)]
    if a.input_scale != 256.0:
        args += ["--input-scale", repr(a.input_scale)]
    r = check(a.model, a.ccc, args, a.input_scale)
    print(f"{a.model}: {r['images']} images, {r['engine']} vs ccc's float reference")
    print(f"  largest |logit difference|: {r['max_abs_logit_diff']:.3g}")
    print(f"  class agreement: {r['class_agreement']}/{r['images']}")
    if "onnxruntime_accuracy" in r:
        print(f"  accuracy: onnxruntime {100 * r['onnxruntime_accuracy']:.2f}%, "
              f"ccc float {100 * r['ccc_float_accuracy']:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
