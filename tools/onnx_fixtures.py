#!/usr/bin/env python3
"""Writes the ONNX test fixtures of tests/data/onnx/ (run once; the files are committed).

Each generated network is written twice from the same numpy arrays: as ONNX (with the
`onnx` package's helpers, checked by `onnx.checker`) and in ccc's own format (the
`safetensors` package, graph TOML under `ccc.graph`). tests/onnx.rs holds the two to
identical integer logits and identical packed reports. onnxruntime runs every ONNX
fixture on a few seeded images and its logits go to `<name>.expected.json`, so the
Rust tests also compare ccc's float reference with an independent engine without
needing Python. The `refuse-*.onnx` files are valid ONNX models that ccc must refuse.

    make venv && target/py/bin/python tools/onnx_fixtures.py

Needs numpy, onnx (python3-numpy, python3-onnx), safetensors and onnxruntime (PyPI, in
the venv `make venv` creates).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "onnx")
#: Seeded test images per fixture (uint8, C x H x W), shared with tests/onnx.rs.
IMAGES = 4


class Net:
    """One network built in both forms at once."""

    def __init__(self, name: str, shape, opset: int, seed: int):
        self.name = name
        self.c, self.h, self.w = shape
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.tensors = {}
        self.toml = []
        self.cur = "input"
        self.k = 0
        self.meta = {"ccc.name": name}

    def fresh(self, stem: str) -> str:
        self.k += 1
        return f"{stem}_{self.k}"

    def init(self, name: str, a: np.ndarray, ccc: bool = True) -> str:
        self.inits.append(numpy_helper.from_array(a, name))
        if ccc:
            self.tensors[name] = a
        return name

    def node(self, op: str, inputs, name: str, **attrs) -> str:
        out = self.fresh(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        self.cur = out
        return out

    def sparse(self, shape, density: float) -> np.ndarray:
        w = self.rng.normal(0.0, 0.5, size=shape).astype(np.float32)
        w[self.rng.random(shape) > density] = 0.0
        return w

    def conv(self, prefix: str, out: int, k: int, stride=1, pad=0, bias=False, density=0.5, alpha=None):
        w = self.sparse((out, self.c, k, k), density)
        ins = [self.cur, self.init(f"{prefix}.weight", w)]
        fields = [f'weight = "{prefix}.weight"', f"stride = {stride}", f"padding = {pad}"]
        if bias:
            b = self.rng.normal(0.0, 0.1, size=out).astype(np.float32)
            ins.append(self.init(f"{prefix}.bias", b))
            fields.append(f'bias = "{prefix}.bias"')
        if alpha is not None:
            fields.append(f"alpha = {alpha}")
        self.node("Conv", ins, prefix, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)
        self.layer("conv", fields)
        self.c = out
        self.h = (self.h + 2 * pad - k) // stride + 1
        self.w = (self.w + 2 * pad - k) // stride + 1

    def batchnorm(self, prefix: str):
        c = self.c
        parts = {
            "weight": self.rng.uniform(0.5, 1.5, c),
            "bias": self.rng.normal(0.0, 0.2, c),
            "running_mean": self.rng.normal(0.0, 0.2, c),
            "running_var": self.rng.uniform(0.5, 2.0, c),
        }
        names = [self.init(f"{prefix}.{k}", v.astype(np.float32)) for k, v in parts.items()]
        self.node("BatchNormalization", [self.cur] + names, prefix, epsilon=1e-5)
        self.layer(
            "batchnorm",
            [f'weight = "{names[0]}"', f'bias = "{names[1]}"', f'mean = "{names[2]}"', f'var = "{names[3]}"', "eps = 1e-5"],
        )

    def relu(self):
        self.node("Relu", [self.cur], self.fresh("relu"))
        self.layer("relu", [])

    def relu6_clip(self, after_relu: bool = False):
        """Clip(0, 6): min/max as inputs from opset 11, as attributes before."""
        if after_relu:
            self.node("Relu", [self.cur], self.fresh("relu"))
        name = self.fresh("clip")
        if self.opset >= 11:
            lo = self.init(name + ".min", np.array(0.0, np.float32), ccc=False)
            hi = self.init(name + ".max", np.array(6.0, np.float32), ccc=False)
            self.node("Clip", [self.cur, lo, hi], name)
        else:
            self.node("Clip", [self.cur], name, min=0.0, max=6.0)
        self.layer("relu6", [])

    def shifts(self, radius: int) -> np.ndarray:
        s = self.rng.integers(-radius, radius + 1, size=(self.c, 2))
        s[0] = (radius, -radius)  # the full radius occurs
        return s.astype(np.int32)

    def shift_depthwise(self, prefix: str, radius: int):
        """A shift as PyTorch exports a one-hot depthwise conv: out[c][y][x] = in[c][y+dy][x+dx]."""
        s = self.shifts(radius)
        k = 2 * radius + 1
        w = np.zeros((self.c, 1, k, k), np.float32)
        for ch, (dy, dx) in enumerate(s):
            w[ch, 0, dy + radius, dx + radius] = 1.0
        ins = [self.cur, self.init(f"{prefix}.weight", w, ccc=False)]
        self.node("Conv", ins, prefix, kernel_shape=[k, k], pads=[radius] * 4, group=self.c)
        self.tensors[f"{prefix}.weight.shifts"] = s
        self.layer("shift", [f'shifts = "{prefix}.weight.shifts"'])

    def shift_pad_slice(self, prefix: str, radius: int, group: int):
        """A shift as Pad + one Slice per channel group + Concat (opset-dependent forms)."""
        s = self.shifts(radius)
        for g0 in range(0, self.c, group):
            s[g0:g0 + group] = s[g0]
        r = radius
        pads = [0, 0, r, r, 0, 0, r, r]
        if self.opset >= 11:
            p = self.init(prefix + ".pads", np.array(pads, np.int64), ccc=False)
            padded = self.node("Pad", [self.cur, p], prefix + ".pad")
        else:
            padded = self.node("Pad", [self.cur], prefix + ".pad", pads=pads, mode="constant", value=0.0)
        parts = []
        for g0 in range(0, self.c, group):
            g1 = min(g0 + group, self.c)
            dy, dx = (int(v) for v in s[g0])
            starts, ends = [g0, r + dy, r + dx], [g1, r + dy + self.h, r + dx + self.w]
            axes = [1, 2, 3]
            nm = f"{prefix}.slice{g0}"
            if self.opset >= 10:
                ins = [padded] + [
                    self.init(f"{nm}.{k}", np.array(v, np.int64), ccc=False)
                    for k, v in (("starts", starts), ("ends", ends), ("axes", axes))
                ]
                parts.append(self.node("Slice", ins, nm))
            else:
                parts.append(self.node("Slice", [padded], nm, starts=starts, ends=ends, axes=axes))
        out = self.node("Concat", parts, prefix, axis=1)
        self.tensors[f"{out}.shifts"] = s
        self.layer("shift", [f'shifts = "{out}.shifts"'])

    def global_pool(self, how: str):
        if how == "gap":
            self.node("GlobalAveragePool", [self.cur], "pool")
        elif self.opset >= 18:
            axes = self.init("pool.axes", np.array([2, 3], np.int64), ccc=False)
            self.node("ReduceMean", [self.cur, axes], "pool", keepdims=1)
        else:
            self.node("ReduceMean", [self.cur], "pool", axes=[2, 3], keepdims=1)
        self.layer("avgpool", [])

    def flatten(self, how: str):
        if how == "flatten":
            self.node("Flatten", [self.cur], "flatten", axis=1)
            return
        # x.view(x.size(0), -1) without constant folding: Shape, Gather, Unsqueeze, Concat.
        src = self.cur
        shape = self.node("Shape", [src], "view.shape")
        idx = self.init("view.index", np.array(0, np.int64), ccc=False)
        n = self.node("Gather", [shape, idx], "view.gather", axis=0)
        if self.opset >= 13:
            ax = self.init("view.axes", np.array([0], np.int64), ccc=False)
            n1 = self.node("Unsqueeze", [n, ax], "view.unsqueeze")
        else:
            n1 = self.node("Unsqueeze", [n], "view.unsqueeze", axes=[0])
        minus = self.node("Constant", [], "view.minus1", value=numpy_helper.from_array(np.array([-1], np.int64)))
        target = self.node("Concat", [n1, minus], "view.concat", axis=0)
        self.node("Reshape", [src, target], "view")

    def linear(self, classes: int, how: str, name: str = "fc"):
        """A linear layer of `classes` outputs (the classifier, or with `name` a hidden
        layer of an MLP head)."""
        w = self.rng.normal(0.0, 0.3, size=(classes, self.c)).astype(np.float32)
        b = self.rng.normal(0.0, 0.1, size=classes).astype(np.float32)
        wn, bn = f"{name}.weight", f"{name}.bias"
        if how == "gemm":
            ins = [self.cur, self.init(wn, w), self.init(bn, b)]
            self.node("Gemm", ins, name, transB=1)
        else:
            # MatMul takes [in, out]; the ccc twin holds PyTorch's [out, in].
            self.inits.append(numpy_helper.from_array(np.ascontiguousarray(w.T), wn))
            self.tensors[wn] = w
            m = self.node("MatMul", [self.cur, wn], name)
            self.node("Add", [m, self.init(bn, b)], name + ".add")
        self.layer("linear", [f'weight = "{wn}"', f'bias = "{bn}"'])
        self.classes = classes
        self.c = classes

    def layer(self, kind: str, fields):
        self.toml.append("\n".join(["[[layers]]", f'kind = "{kind}"'] + list(fields)))

    def model(self) -> onnx.ModelProto:
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", self.c0, self.h0, self.w0])
        y = helper.make_tensor_value_info(self.cur, TensorProto.FLOAT, ["batch", self.classes])
        g = helper.make_graph(self.nodes, self.name, [x], [y], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)], producer_name="ccc-fixtures")
        m.ir_version = 7 if self.opset < 15 else 8
        for k, v in self.meta.items():
            p = m.metadata_props.add()
            p.key, p.value = k, v
        onnx.checker.check_model(m)
        return m

    def start(self):
        self.c0, self.h0, self.w0 = self.c, self.h, self.w

    def graph_toml(self, gamma=None) -> str:
        head = [
            "[model]",
            f'name = "{self.name}"',
            f"classes = {self.classes}",
            "",
            "[input]",
            f"channels = {self.c0}",
            f"height = {self.h0}",
            f"width = {self.w0}",
            "",
        ]
        if gamma is not None:
            head += ["[packing]", f"gamma = {gamma}", ""]
        return "\n".join(head) + "\n" + "\n\n".join(self.toml) + "\n"


def images(net: Net, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, net.c0, net.h0, net.w0), dtype=np.uint8)


def write(net: Net, twin: bool, gamma=None, scale: float = 256.0):
    m = net.model()
    path = os.path.join(OUT, net.name + ".onnx")
    onnx.save(m, path)
    if twin:
        save_file(
            {k: np.ascontiguousarray(v) for k, v in net.tensors.items()},
            os.path.join(OUT, net.name + ".safetensors"),
            metadata={"ccc.graph": net.graph_toml(gamma)},
        )
        # save_file creates the file 0600; fixtures are ordinary files.
        os.chmod(os.path.join(OUT, net.name + ".safetensors"), 0o644)
    imgs = images(net, IMAGES, 1000 + len(net.name))
    engine = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    logits = [
        engine.run(None, {"input": (img[None].astype(np.float32) / np.float32(scale))})[0][0].tolist()
        for img in imgs
    ]
    with open(os.path.join(OUT, net.name + ".expected.json"), "w") as f:
        json.dump(
            {
                "engine": f"onnxruntime {ort.__version__}",
                "input_scale": scale,
                "images": imgs.reshape(IMAGES, -1).tolist(),
                "logits": logits,
            },
            f,
        )
        f.write("\n")
    print(f"wrote {path}" + (" and its ccc-format twin" if twin else ""))


def stem_shift_gemm() -> Net:
    """Odd input, a 5x5 stride-2 stem, shifts of radius 1 and 2 as one-hot depthwise convs,
    a conv with bias and no batchnorm, Relu and Clip(0, 6), GlobalAveragePool + Flatten + Gemm."""
    n = Net("stem5-shift-gemm", (1, 13, 11), 13, 1)
    n.start()
    n.conv("stem", 7, 5, stride=2, pad=2, density=0.8)
    n.batchnorm("stem_bn")
    n.relu6_clip()
    n.shift_depthwise("block1.shift", 1)
    n.conv("block1.conv", 12, 1, density=0.4, alpha=2)
    n.batchnorm("block1.bn")
    n.relu()
    n.shift_depthwise("block2.shift", 2)
    n.conv("block2.conv", 9, 1, stride=2, bias=True, density=0.4, alpha=3)
    n.relu6_clip(after_relu=True)
    n.global_pool("gap")
    n.flatten("flatten")
    n.linear(5, "gemm")
    n.meta["ccc.alpha"] = "1,2,3"
    n.meta["ccc.gamma"] = "1.5"
    # The twin carries the same α per conv in its graph and γ in [packing].
    return n


def padslice_matmul(opset: int) -> Net:
    """Pad + Slice + Concat shifts (radius 1 and 2), Clip as attributes (opset 9) or
    inputs (opset 13), ReduceMean, the view(size(0), -1) shape arithmetic, MatMul + Add."""
    n = Net(f"padslice-matmul-op{opset}", (2, 9, 9), opset, 2 + opset)
    n.start()
    n.conv("stem", 6, 3, pad=1, density=0.7)
    n.batchnorm("stem_bn")
    n.relu6_clip(after_relu=True)
    n.shift_pad_slice("block1.shift", 2, 2)
    n.conv("block1.conv", 10, 1, density=0.5)
    n.batchnorm("block1.bn")
    n.relu6_clip()
    n.shift_pad_slice("block2.shift", 1, 3)
    n.conv("block2.conv", 8, 1, stride=2, density=0.5)
    n.batchnorm("block2.bn")
    n.relu()
    n.global_pool("mean")
    n.flatten("view")
    n.linear(4, "matmul")
    return n


def one_pixel_head() -> Net:
    """A 7x7 valid conv down to one pixel, flattened straight into the classifier (no
    pool node: flattening a 1x1 map is the global pool)."""
    n = Net("one-pixel-head", (1, 7, 7), 13, 4)
    n.start()
    n.conv("conv", 6, 7, bias=True, density=0.6)
    n.relu()
    n.node("Flatten", [n.cur], "flatten", axis=1)
    n.layer("avgpool", [])
    n.linear(3, "gemm")
    return n


def mlp_head() -> Net:
    """An MLP head: MatMul + Add, Relu, Gemm, Clip(0, 6), then the MatMul + Add
    classifier."""
    n = Net("mlp-head", (1, 8, 7), 13, 6)
    n.start()
    n.conv("stem", 6, 3, pad=1, density=0.8)
    n.relu6_clip()
    n.global_pool("gap")
    n.flatten("flatten")
    n.linear(9, "matmul", "head0")
    n.relu()
    n.linear(7, "gemm", "head1")
    n.relu6_clip()
    n.linear(4, "matmul")
    return n


def normalized(pad: int, name: str) -> Net:
    """A torchvision-style input normalization (x - mean) / std before the first conv."""
    n = Net(name, (3, 8, 8), 13, 5)
    n.start()
    mean = n.init("norm.mean", np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1), ccc=False)
    std = n.init("norm.std", np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1), ccc=False)
    n.node("Sub", [n.cur, mean], "normalize.sub")
    n.node("Div", [n.cur, std], "normalize.div")
    n.conv("conv", 8, 3, pad=pad, density=0.7)
    n.batchnorm("bn")
    n.relu()
    n.global_pool("gap")
    n.flatten("flatten")
    n.linear(3, "gemm")
    return n


def refusals():
    """Valid ONNX models outside what ccc supports, one reason each."""
    out = []

    def base(name, opset=13):
        n = Net(name, (4, 6, 6), opset, 9)
        n.start()
        return n

    def head(n):
        n.c = 4
        n.global_pool("gap")
        n.flatten("flatten")
        n.linear(2, "gemm")
        return n

    n = base("refuse-maxpool")
    n.conv("conv", 4, 3, pad=1)
    n.relu()
    n.node("MaxPool", [n.cur], "pool1", kernel_shape=[2, 2], strides=[2, 2])
    out.append(head(n))

    n = base("refuse-grouped-conv")
    w = n.sparse((4, 2, 3, 3), 0.9)
    n.node("Conv", [n.cur, n.init("gconv.weight", w)], "gconv", group=2, pads=[1] * 4)
    n.relu()
    out.append(head(n))

    n = base("refuse-depthwise-not-one-hot")
    w = np.zeros((4, 1, 3, 3), np.float32)
    w[:, 0, 1, 1] = 0.5
    n.node("Conv", [n.cur, n.init("dw.weight", w)], "dw", group=4, pads=[1] * 4)
    n.conv("conv", 4, 1)
    n.relu()
    out.append(head(n))

    n = base("refuse-asymmetric-pads")
    w = n.sparse((4, 4, 3, 3), 0.9)
    n.node("Conv", [n.cur, n.init("conv.weight", w)], "conv", pads=[0, 0, 1, 1])
    n.relu()
    out.append(head(n))

    n = base("refuse-residual-add")
    n.conv("conv1", 4, 3, pad=1)
    n.relu()
    skip = n.cur
    n.conv("conv2", 4, 3, pad=1)
    n.relu()
    n.node("Add", [n.cur, skip], "residual")
    out.append(head(n))

    n = base("refuse-clip-0-4")
    n.conv("conv", 4, 3, pad=1)
    lo = n.init("clip.min", np.array(0.0, np.float32), ccc=False)
    hi = n.init("clip.max", np.array(4.0, np.float32), ccc=False)
    n.node("Clip", [n.cur, lo, hi], "clip4")
    out.append(head(n))

    out.append(normalized(1, "refuse-normalize-padded"))
    return out


def main() -> int:
    os.makedirs(OUT, exist_ok=True)
    write(stem_shift_gemm(), twin=True, gamma=1.5)
    write(padslice_matmul(9), twin=True)
    write(padslice_matmul(13), twin=True)
    write(one_pixel_head(), twin=True)
    write(mlp_head(), twin=True)
    # Trained on ToTensor's x / 255 and normalized: ccc takes it with --input-scale 255.
    write(normalized(0, "normalize-valid"), twin=False, scale=255.0)
    for n in refusals():
        onnx.save(n.model(), os.path.join(OUT, n.name + ".onnx"))
        print(f"wrote {n.name}.onnx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
