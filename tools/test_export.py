"""Tests for tools/export_pytorch.py that need neither torch nor numpy.

Fake modules and tensors, duck-typed like torch's (same class names, same attributes),
stand in for a real network; the exported files are then read by the real compiler
(`ccc inspect`, `ccc compile`), so a format mistake fails here and not in a user's
hands. Run from the repository root:

    python3 -m unittest tools/test_export.py -v

The compiler binary is $CCC_BIN, else target/debug/ccc (built with `cargo build` when
it does not exist).
"""

from __future__ import annotations

import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import unittest
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)

import export_pytorch as ep  # noqa: E402

try:
    import tomllib  # Python 3.11+
except ImportError:  # pragma: no cover - older Pythons skip the TOML parse checks
    tomllib = None  # type: ignore[assignment]


# --------------------------------------------------------------------------------------
# Fakes: just enough of torch's tensor and module API for the exporter
# --------------------------------------------------------------------------------------


class FakeTensor:
    """A row-major tensor offering the methods the exporter may call."""

    def __init__(self, values: Sequence[float], shape: Sequence[int]):
        n = 1
        for d in shape:
            n *= d
        assert len(values) == n, (len(values), shape)
        self._values = list(values)
        self._shape = tuple(shape)

    @property
    def shape(self) -> Tuple[int, ...]:
        return self._shape

    def detach(self) -> "FakeTensor":
        return self

    def cpu(self) -> "FakeTensor":
        return self

    def contiguous(self) -> "FakeTensor":
        return self

    def float(self) -> "FakeTensor":
        return FakeTensor([float(v) for v in self._values], self._shape)

    def flatten(self) -> "FakeTensor":
        return FakeTensor(self._values, (len(self._values),))

    def tolist(self) -> Any:
        def nest(vals: List[Any], shape: Tuple[int, ...]) -> Any:
            if len(shape) <= 1:
                return list(vals)
            step = len(vals) // shape[0]
            return [nest(vals[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]

        if not self._shape:
            return self._values[0]
        return nest(self._values, self._shape)

    def __mul__(self, other: "FakeTensor") -> "FakeTensor":
        return FakeTensor([a * b for a, b in zip(self._values, other._values)], self._shape)

    def view(self, *shape: int) -> "FakeTensor":
        return FakeTensor(self._values, shape)


def rand_tensor(rng: random.Random, shape: Sequence[int], lo: float = 0.1, hi: float = 1.0) -> FakeTensor:
    """Values of magnitude in [lo, hi) with random sign: never zero, so nonzero counts
    seen by the compiler are exactly the mask's."""
    n = 1
    for d in shape:
        n *= d
    return FakeTensor([rng.choice((-1, 1)) * rng.uniform(lo, hi) for _ in range(n)], shape)


class Module:
    """Registration-ordered children, like torch.nn.Module."""

    def __init__(self) -> None:
        self._children: "OrderedDict[str, Module]" = OrderedDict()
        self.training = True

    def add_module(self, name: str, m: "Module") -> None:
        self._children[name] = m

    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        return iter(self._children.items())

    def modules(self) -> Iterator["Module"]:
        yield self
        for _, m in self._children.items():
            yield from m.modules()

    def eval(self) -> "Module":
        for m in self.modules():
            m.training = False
        return self


class Sequential(Module):
    def __init__(self, *mods: Module) -> None:
        super().__init__()
        for i, m in enumerate(mods):
            self.add_module(str(i), m)


class Conv2d(Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0,
                 bias: bool = True, groups: int = 1, dilation: int = 1, seed: int = 0) -> None:
        super().__init__()
        rng = random.Random(seed)
        self.weight = rand_tensor(rng, (cout, cin // groups, k, k))
        self.bias = rand_tensor(rng, (cout,), -0.1, 0.1) if bias else None
        self.stride, self.padding, self.dilation = (stride, stride), (padding, padding), (dilation, dilation)
        self.groups = groups
        self.padding_mode = "zeros"


class BatchNorm2d(Module):
    def __init__(self, c: int, seed: int = 0) -> None:
        super().__init__()
        rng = random.Random(seed + 1000)
        self.weight = rand_tensor(rng, (c,), 0.5, 1.5)
        self.bias = rand_tensor(rng, (c,), 0.0, 0.2)
        self.running_mean = rand_tensor(rng, (c,), 0.0, 0.1)
        self.running_var = FakeTensor([rng.uniform(0.5, 2.0) for _ in range(c)], (c,))
        self.eps = 1e-5


class ReLU6(Module):
    pass


class ReLU(Module):
    pass


class Linear(Module):
    def __init__(self, n_in: int, n_out: int, seed: int = 0) -> None:
        super().__init__()
        rng = random.Random(seed)
        self.weight = rand_tensor(rng, (n_out, n_in))
        self.bias = rand_tensor(rng, (n_out,), -0.1, 0.1)


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size: Any = 1) -> None:
        super().__init__()
        self.output_size = output_size


class Flatten(Module):
    pass


class Dropout(Module):
    pass


class MaxPool2d(Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.kernel_size = k


class Shift(Module):
    """A shift module in docs/DESIGN.md's convention: `shifts` [C, 2] of (dy, dx)."""

    def __init__(self, pairs: Sequence[Tuple[int, int]]) -> None:
        super().__init__()
        self.shifts = FakeTensor([v for p in pairs for v in p], (len(pairs), 2))


class seeds:  # noqa: N801 - a namespace holding classes named like the authors' code
    """Modules shaped like the authors' net.py: Conv2d with a flat `_weight` and flat
    `_mask` and a masked `weight` property; Shift with a scatter-style `shift_t`."""

    class Conv2d(Module):
        def __init__(self, cin: int, cout: int, k: int, stride: int, padding: int, seed: int) -> None:
            super().__init__()
            rng = random.Random(seed)
            n = cout * cin * k * k
            self.stride, self.padding, self.dilation = (stride, stride), (padding, padding), (1, 1)
            self.groups, self.bias = 1, None
            self.out_channels, self.in_channels, self.kernel_size = cout, cin, k
            self._weight = rand_tensor(rng, (n,))
            self._mask = FakeTensor([float(i % 3 != 0) for i in range(n)], (n,))

        @property
        def weight(self) -> FakeTensor:
            return (self._mask * self._weight).view(self.out_channels, self.in_channels,
                                                   self.kernel_size, self.kernel_size)

        @property
        def mask(self) -> FakeTensor:
            return self._mask

    class Shift(Module):
        def __init__(self, pairs: Sequence[Tuple[int, int]]) -> None:
            super().__init__()
            self.channels, self.kernel_size = len(pairs), 3
            self.shift_t = FakeTensor([v for p in pairs for v in p], (len(pairs), 2))

    class View(Module):
        def __init__(self, shape: Tuple[int, ...]) -> None:
            super().__init__()
            self.shape = shape


class SmallShiftNet(Module):
    """Input 1x8x8: conv3x3 1->4 pad 1 + BN + ReLU6, shift + conv1x1 4->6 stride 2 (pruned
    by a `weight_mask`) + BN + ReLU6, global avgpool, flatten, linear 6->3."""

    MASK_ZEROS = 10  # of the 1x1 conv's 24 weights

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        pointwise = Conv2d(4, 6, 1, stride=2, bias=False, seed=seed + 2)
        mask = [0.0] * self.MASK_ZEROS + [1.0] * (24 - self.MASK_ZEROS)
        random.Random(seed).shuffle(mask)
        pointwise.weight_mask = FakeTensor(mask, (6, 4, 1, 1))
        self.add_module("features", Sequential(
            Conv2d(1, 4, 3, padding=1, seed=seed + 1),
            BatchNorm2d(4, seed),
            ReLU6(),
            Shift([(0, 0), (-1, 0), (1, 1), (0, -1)]),
            pointwise,
            BatchNorm2d(6, seed + 1),
            ReLU6(),
        ))
        self.add_module("pool", AdaptiveAvgPool2d(1))
        self.add_module("flatten", Flatten())
        self.add_module("drop", Dropout())
        self.add_module("fc", Linear(6, 3, seed=seed + 3))


def small_net() -> SmallShiftNet:
    """Factory for the CLI test (`--module tools/test_export.py:small_net`)."""
    return SmallShiftNet()


def seeds_net() -> Sequential:
    """A network built the way the authors' ShiftMobile is: Sequential of Sequentials."""
    return Sequential(
        Sequential(seeds.Conv2d(1, 8, 1, 1, 0, seed=1), BatchNorm2d(8, 1), ReLU()),
        Sequential(seeds.Shift([(1, 0), (0, -1), (-1, 1), (0, 0)] * 2),
                   seeds.Conv2d(8, 8, 1, 2, 0, seed=2), BatchNorm2d(8, 2), ReLU()),
        Sequential(AdaptiveAvgPool2d(1), seeds.View((-1, 8)), Linear(8, 4, seed=3)),
    )


SMALL_KW: Dict[str, Any] = dict(input_shape=(1, 8, 8), name="small-shift", gamma=1.75,
                                alphas={"features.4": 2})


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def read_safetensors(path: str) -> Tuple[int, Dict[str, Any], bytes]:
    """(header length, header JSON, data) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    return n, json.loads(raw[8:8 + n].decode("utf-8")), raw[8 + n:]


def tensor_values(header: Dict[str, Any], data: bytes, name: str) -> List[float]:
    info = header[name]
    begin, end = info["data_offsets"]
    fmt = {"F32": "f", "I32": "i"}[info["dtype"]]
    return list(struct.unpack(f"<{(end - begin) // 4}{fmt}", data[begin:end]))


_CCC: Optional[str] = None


def ccc_binary() -> str:
    """$CCC_BIN, else the debug build (running `cargo build` if it is missing)."""
    global _CCC
    if _CCC is not None:
        return _CCC
    env = os.environ.get("CCC_BIN")
    if env:
        if not os.path.isfile(env):
            raise RuntimeError(f"CCC_BIN={env} does not exist")
        _CCC = env
        return env
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    path = os.path.join(target, "debug", "ccc")
    if not os.path.isfile(path):
        build = subprocess.run(["cargo", "build"], cwd=REPO, capture_output=True, text=True)
        if build.returncode != 0 or not os.path.isfile(path):
            raise RuntimeError(f"`cargo build` failed:\n{build.stderr[-4000:]}")
    _CCC = path
    return path


def run_ccc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ccc_binary(), *args], cwd=REPO, capture_output=True, text=True, timeout=600)


# --------------------------------------------------------------------------------------
# Pure parts: writer and TOML emitter
# --------------------------------------------------------------------------------------


class WriterTests(unittest.TestCase):
    def test_layout_and_alignment(self) -> None:
        tensors = {
            "b": ("F32", [3], struct.pack("<3f", 1.0, 2.0, 3.0)),
            "a": ("I32", [1, 2], struct.pack("<2i", -1, 7)),
        }
        raw = ep.safetensors_bytes(tensors, {"ccc.graph": "x = 1\n"})
        (n,) = struct.unpack("<Q", raw[:8])
        self.assertEqual(n % 8, 0, "header must be padded to a multiple of 8")
        header = json.loads(raw[8:8 + n])
        self.assertEqual(header["__metadata__"], {"ccc.graph": "x = 1\n"})
        # sorted by name: a first
        self.assertEqual(header["a"], {"dtype": "I32", "shape": [1, 2], "data_offsets": [0, 8]})
        self.assertEqual(header["b"], {"dtype": "F32", "shape": [3], "data_offsets": [8, 20]})
        self.assertEqual(len(raw), 8 + n + 20)
        self.assertEqual(raw[8 + n:8 + n + 8], struct.pack("<2i", -1, 7))
        self.assertTrue(raw[8:8 + n].rstrip(b" ").endswith(b"}"))

    def test_rejects_wrong_sizes_and_names(self) -> None:
        with self.assertRaises(ValueError):
            ep.safetensors_bytes({"a": ("F32", [2], b"\0" * 4)}, {})
        with self.assertRaises(ValueError):
            ep.safetensors_bytes({"a": ("X9", [1], b"\0" * 4)}, {})
        with self.assertRaises(ValueError):
            ep.safetensors_bytes({"__metadata__": ("F32", [1], b"\0" * 4)}, {})

    def test_atomic_write_leaves_no_temp(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.safetensors")
            ep.write_safetensors(path, {"a": ("F32", [1], b"\0" * 4)}, {})
            self.assertEqual(os.listdir(d), ["m.safetensors"])
            with self.assertRaises(ValueError):
                ep.write_safetensors(path, {"a": ("F32", [2], b"\0" * 4)}, {})
            self.assertEqual(os.listdir(d), ["m.safetensors"])

    def test_toml_strings_and_numbers(self) -> None:
        self.assertEqual(ep.toml_string('a"b\\c\n'), '"a\\"b\\\\c\\n"')
        self.assertEqual(ep.toml_value(1e-5), "1e-05")
        self.assertEqual(ep.toml_value(2.0), "2.0")
        self.assertEqual(ep.toml_value(3), "3")
        with self.assertRaises(ValueError):
            ep.toml_value(float("nan"))
        text = ep.graph_toml('we"ird\x01', 3, (1, 2, 3), [ep.LayerSpec("relu", {}, "x\ny")], 1.5)
        if tomllib is not None:
            doc = tomllib.loads(text)
            self.assertEqual(doc["model"]["name"], 'we"ird\x01')
            self.assertEqual(doc["packing"]["gamma"], 1.5)
            self.assertEqual(doc["layers"], [{"kind": "relu"}])


# --------------------------------------------------------------------------------------
# Exporter on fakes
# --------------------------------------------------------------------------------------


class ExportTests(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = self._tmp.name

    def tearDown(self) -> None:
        self._tmp.cleanup()

    def export_small(self, filename: str = "small.safetensors") -> str:
        path = os.path.join(self.dir, filename)
        ep.export(SmallShiftNet().eval(), path, **SMALL_KW)
        return path

    def test_header(self) -> None:
        path = self.export_small()
        n, header, data = read_safetensors(path)
        self.assertEqual(n % 8, 0)
        self.assertEqual((8 + n) % 8, 0, "tensor data must start 8-aligned")
        names = sorted(k for k in header if k != "__metadata__")
        ends = 0
        for name in names:  # contiguous, in name order, covering all data
            b, e = header[name]["data_offsets"]
            self.assertEqual(b, ends, name)
            ends = e
        self.assertEqual(ends, len(data))
        self.assertEqual(header["features.3.shifts"]["dtype"], "I32")
        self.assertEqual(header["features.3.shifts"]["shape"], [4, 2])
        self.assertEqual(tensor_values(header, data, "features.3.shifts"), [0, 0, -1, 0, 1, 1, 0, -1])
        self.assertEqual(header["features.4.mask"]["shape"], [6, 4, 1, 1])
        self.assertNotIn("features.4.bias", header)
        for name in names:
            if name != "features.3.shifts":
                self.assertEqual(header[name]["dtype"], "F32", name)
        self.assertIn("ccc.graph", header["__metadata__"])

    def test_graph_fields(self) -> None:
        if tomllib is None:
            self.skipTest("tomllib needs Python 3.11")
        _, header, _ = read_safetensors(self.export_small())
        doc = tomllib.loads(header["__metadata__"]["ccc.graph"])
        self.assertEqual(doc["model"], {"name": "small-shift", "classes": 3})
        self.assertEqual(doc["input"], {"channels": 1, "height": 8, "width": 8})
        self.assertEqual(doc["packing"], {"gamma": 1.75})
        kinds = [l["kind"] for l in doc["layers"]]
        self.assertEqual(kinds, ["conv", "batchnorm", "relu6", "shift", "conv", "batchnorm",
                                 "relu6", "avgpool", "linear"])
        self.assertEqual(doc["layers"][0], {"kind": "conv", "weight": "features.0.weight",
                                            "bias": "features.0.bias", "stride": 1, "padding": 1})
        self.assertEqual(doc["layers"][1], {
            "kind": "batchnorm", "weight": "features.1.weight", "bias": "features.1.bias",
            "mean": "features.1.running_mean", "var": "features.1.running_var", "eps": 1e-5})
        self.assertEqual(doc["layers"][3], {"kind": "shift", "shifts": "features.3.shifts"})
        self.assertEqual(doc["layers"][4], {"kind": "conv", "weight": "features.4.weight",
                                            "stride": 2, "padding": 0, "mask": "features.4.mask",
                                            "alpha": 2})
        self.assertEqual(doc["layers"][8], {"kind": "linear", "weight": "fc.weight", "bias": "fc.bias"})

    def test_deterministic(self) -> None:
        a, b = self.export_small("a.safetensors"), self.export_small("b.safetensors")
        with open(a, "rb") as fa, open(b, "rb") as fb:
            self.assertEqual(fa.read(), fb.read())

    def test_f32_values_round_trip(self) -> None:
        net = SmallShiftNet()
        _, header, data = read_safetensors(self.export_small())
        want = struct.unpack("<36f", struct.pack("<36f", *net._children["features"]._children["0"].weight._values))
        self.assertEqual(tuple(tensor_values(header, data, "features.0.weight")), want)

    def assert_rejected(self, module: Any, *needles: str, **kw: Any) -> None:
        path = os.path.join(self.dir, "bad.safetensors")
        args = dict(input_shape=(1, 8, 8), name="bad")
        args.update(kw)
        with self.assertRaises(ValueError) as cm:
            ep.export(module, path, **args)
        for needle in needles:
            self.assertIn(needle, str(cm.exception))
        self.assertEqual(os.listdir(self.dir), [], "nothing may be written on error")

    def test_grouped_conv_names_module(self) -> None:
        net = SmallShiftNet()
        net._children["features"]._children["4"] = Conv2d(4, 6, 1, stride=2, groups=2)
        self.assert_rejected(net, "features.4", "groups=2")

    def test_dilation_and_maxpool_rejected(self) -> None:
        net = SmallShiftNet()
        net._children["features"]._children["0"] = Conv2d(1, 4, 3, padding=2, dilation=2)
        self.assert_rejected(net, "features.0", "dilation")
        net = SmallShiftNet()
        net._children["features"].add_module("7", MaxPool2d(2))
        self.assert_rejected(net, "features.7", "MaxPool2d", "unsupported")

    def test_shape_checks(self) -> None:
        self.assert_rejected(SmallShiftNet(), "features.0", "3 arrive", input_shape=(3, 8, 8))
        net = Sequential(Conv2d(1, 2, 1), ReLU(), Flatten(), Linear(128, 2))
        self.assert_rejected(net, "`2`", "Flatten", "global average pool")
        net = Sequential(Conv2d(1, 2, 1), ReLU(), Shift([(0, 0)] * 3))
        self.assert_rejected(net, "`2`", "3 channels")
        self.assert_rejected(SmallShiftNet(), "classes = 4", classes=4)
        self.assert_rejected(SmallShiftNet(), "features.4", alphas={"features.4": 0})
        self.assert_rejected(SmallShiftNet(), "not convs", alphas={"fc": 2})
        self.assert_rejected(SmallShiftNet(), "2 convs", alphas=[1, 2, 3])

    def test_alpha_forms(self) -> None:
        def alphas_of(alphas: Any) -> List[Optional[int]]:
            out = ep.build(SmallShiftNet(), input_shape=(1, 8, 8), name="x", alphas=alphas)
            return [l.fields.get("alpha") for l in out.layers if l.kind == "conv"]

        self.assertEqual(alphas_of(None), [None, None])
        self.assertEqual(alphas_of(4), [4, 4])
        self.assertEqual(alphas_of([None, 8]), [None, 8])
        self.assertEqual(alphas_of({"features.0": 3}), [3, None])

    def test_seeds_style_modules(self) -> None:
        path = os.path.join(self.dir, "seeds.safetensors")
        ep.export(seeds_net(), path, input_shape=(1, 8, 8), name="seeds")
        _, header, data = read_safetensors(path)
        # shift_t scatters (out[y+s] = in[y]); the format gathers: (dy, dx) = -shift_t.
        self.assertEqual(tensor_values(header, data, "1.0.shifts")[:8], [-1, 0, 0, 1, 1, -1, 0, 0])
        self.assertEqual(header["0.0.mask"]["shape"], [8, 1, 1, 1])
        self.assertEqual(tensor_values(header, data, "0.0.mask"), [float(i % 3 != 0) for i in range(8)])

    def test_prune_reparametrisation(self) -> None:
        conv = Conv2d(1, 2, 1, seed=5)
        conv.weight_orig = conv.weight
        conv.weight = FakeTensor([0.0] * 2, (2, 1, 1, 1))  # stale: the hook never ran
        conv.weight_mask = FakeTensor([1.0, 0.0], (2, 1, 1, 1))
        out = ep.build(Sequential(conv, ReLU(), AdaptiveAvgPool2d((1, 1)), Linear(2, 2)),
                       input_shape=(1, 4, 4), name="p")
        self.assertEqual(out.tensors["0.weight"][2], ep.f32_bytes(conv.weight_orig))
        self.assertIn("0.mask", out.tensors)

    def test_explicit_layer_list(self) -> None:
        net = SmallShiftNet()
        feats = net._children["features"]._children
        layers = [("stem", feats["0"]), ("bn", feats["1"]), ("act", feats["2"]), ("fc_pool", AdaptiveAvgPool2d(1)),
                  ("fc", Linear(4, 3))]
        out = ep.build(layers, input_shape=(1, 8, 8), name="list")
        self.assertIn("stem.weight", out.tensors)
        self.assertIn("fc.bias", out.tensors)


# --------------------------------------------------------------------------------------
# The real compiler reads what the exporter writes
# --------------------------------------------------------------------------------------


class CompilerTests(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = self._tmp.name
        ccc_binary()

    def tearDown(self) -> None:
        self._tmp.cleanup()

    def check_ok(self, proc: subprocess.CompletedProcess, what: str) -> None:
        self.assertEqual(proc.returncode, 0, f"{what} failed:\n{proc.stdout}\n{proc.stderr}")

    def test_inspect_and_compile_small_net(self) -> None:
        model = os.path.join(self.dir, "small.safetensors")
        ep.export(SmallShiftNet().eval(), model, **SMALL_KW)
        inspect = run_ccc("inspect", model)
        self.check_ok(inspect, "ccc inspect")
        text = inspect.stdout
        self.assertIn("small-shift", text)
        self.assertRegex(text, r"\b2 conv layers\b")
        self.assertRegex(text, r"1x8x8\D+4x8x8")
        self.assertRegex(text, r"4x8x8\D+6x4x4")
        # The pointwise conv's mask removed MASK_ZEROS of its 24 weights.
        line = next(l for l in text.splitlines() if "features.4.weight" in l)
        self.assertIn(f"{24 - SmallShiftNet.MASK_ZEROS} nonzeros", line)
        self.assertRegex(line, r"alpha 2\b")
        self.assertRegex(text, r"linear `fc\.weight` 3x6")

        out = os.path.join(self.dir, "out")
        self.check_ok(run_ccc("compile", model, "--rows", "4", "--cols", "4", "-o", out), "ccc compile")
        with open(os.path.join(out, "report.json")) as f:
            report = json.load(f)
        self.assertIsInstance(report, dict)

    def test_seeds_style_net_compiles(self) -> None:
        model = os.path.join(self.dir, "seeds.safetensors")
        ep.export(seeds_net(), model, input_shape=(1, 8, 8), name="seeds", alphas=[None, 2], gamma=0.5)
        self.check_ok(run_ccc("inspect", model), "ccc inspect")
        out = os.path.join(self.dir, "out")
        self.check_ok(run_ccc("compile", model, "--rows", "4", "--cols", "4", "-o", out), "ccc compile")
        self.assertTrue(os.path.isfile(os.path.join(out, "report.json")))

    def test_cli(self) -> None:
        model = os.path.join(self.dir, "cli.safetensors")
        cli = subprocess.run(
            [sys.executable, os.path.join(TOOLS, "export_pytorch.py"),
             "--module", f"{os.path.join(TOOLS, 'test_export.py')}:small_net",
             "--input", "1,8,8", "--alpha=-,2", "--gamma", "1.75", "-o", model],
            cwd=REPO, capture_output=True, text=True, timeout=120)
        self.check_ok(cli, "export_pytorch.py")
        inspect = run_ccc("inspect", model)
        self.check_ok(inspect, "ccc inspect")
        self.assertIn("cli:", inspect.stdout)
        with open(model, "rb") as f:
            exported = f.read()
        same = os.path.join(self.dir, "same.safetensors")
        ep.export(small_net(), same, input_shape=(1, 8, 8), name="cli", gamma=1.75, alphas=[None, 2])
        with open(same, "rb") as f:
            self.assertEqual(f.read(), exported, "the CLI and the API must write the same file")


if __name__ == "__main__":
    unittest.main()
