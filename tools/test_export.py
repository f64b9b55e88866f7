"""Tests for tools/export_pytorch.py and tools/onnx_check.py with real PyTorch modules.

torch and onnx are Debian's (python3-torch, python3-onnx), safetensors and onnxruntime
come from PyPI into the venv that `make venv` makes with --system-site-packages. The
exported files are read by the real compiler, so a format mistake fails here. Run from
the repository root (`make test-python` does):

    target/py/bin/python -m unittest tools/test_export.py -v

The compiler binary is $CCC_BIN, else target/release/ccc.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
import unittest
import warnings

import onnx
import torch
import torch.nn.utils.prune
from safetensors import safe_open

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)

import export_pytorch as ep  # noqa: E402
import onnx_check  # noqa: E402

CCC = os.environ.get("CCC_BIN", os.path.join(REPO, "target", "release", "ccc"))
SHIPPED = os.path.join(REPO, "models", "fmnist-shift-cc.safetensors")
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

# torch.onnx warns about constant folding of the batch dimension; not ours to fix.
warnings.filterwarnings("ignore", category=UserWarning)


def ccc(*args: str) -> str:
    r = subprocess.run([CCC, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"ccc {' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


def ccc_fails(*args: str) -> str:
    r = subprocess.run([CCC, *args], capture_output=True, text=True)
    assert r.returncode != 0, f"ccc {' '.join(args)} succeeded"
    return r.stderr


class AuthorsShift(torch.nn.Module):
    """The seeds' shift module: a `shift_t` buffer of scatter offsets and a kernel the
    ONNX exporter cannot see through (here torch.roll plus masking, standing in for their
    CUDA op)."""

    def __init__(self, shifts: torch.Tensor):
        super().__init__()
        self.register_buffer("shift_t", shifts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - replaced
        raise RuntimeError("a custom op that torch.onnx.export cannot trace")


def shift_cnn(seed: int, authors_shift: bool = False) -> torch.nn.Module:
    """A small shift-CNN of the paper's family with sparse weights and trained-looking
    batchnorm statistics: KxK stem, shifts of radius 1 and 2, strided 1x1 convs."""
    g = torch.Generator().manual_seed(seed)
    # The layers' default initialisation (the Linear keeps it) draws from the global RNG.
    torch.manual_seed(seed)

    def sparse(conv: torch.nn.Conv2d, density: float) -> torch.nn.Conv2d:
        w = torch.randn(conv.weight.shape, generator=g) * 0.5
        w[torch.rand(w.shape, generator=g) > density] = 0.0
        conv.weight.data = w
        return conv

    def bn(c: int) -> torch.nn.BatchNorm2d:
        b = torch.nn.BatchNorm2d(c)
        b.weight.data = torch.rand(c, generator=g) + 0.5
        b.bias.data = torch.randn(c, generator=g) * 0.2
        b.running_mean.data = torch.randn(c, generator=g) * 0.2
        b.running_var.data = torch.rand(c, generator=g) + 0.5
        return b

    def shifts(c: int, r: int) -> torch.Tensor:
        return torch.randint(-r, r + 1, (c, 2), generator=g, dtype=torch.int32)

    s2 = shifts(12, 2)
    shift2 = AuthorsShift(-s2) if authors_shift else ep.ShiftConv(s2)
    m = torch.nn.Sequential(
        sparse(torch.nn.Conv2d(1, 8, 5, padding=2, bias=False), 0.9),
        bn(8),
        torch.nn.ReLU6(),
        ep.ShiftConv(shifts(8, 1)),
        sparse(torch.nn.Conv2d(8, 12, 1, stride=2, bias=False), 0.4),
        bn(12),
        torch.nn.ReLU(),
        shift2,
        sparse(torch.nn.Conv2d(12, 16, 1, bias=False), 0.3),
        bn(16),
        torch.nn.ReLU6(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 5),
    )
    return m.eval()


class SafetensorsRoute(unittest.TestCase):
    def test_writes_the_format_through_the_safetensors_package(self):
        with tempfile.TemporaryDirectory() as d:
            a, b = os.path.join(d, "a.safetensors"), os.path.join(d, "b.safetensors")
            for p in (a, b):
                ep.export(shift_cnn(1), p, input_shape=(1, 13, 11), name="net", gamma=1.5, alphas=[None, 2, 3])
            with open(a, "rb") as fa, open(b, "rb") as fb:
                self.assertEqual(fa.read(), fb.read(), "the same model gave different bytes")
            with safe_open(a, framework="pt") as f:
                graph = tomllib.loads(f.metadata()[ep.GRAPH_KEY])
                names = set(f.keys())
            kinds = [l["kind"] for l in graph["layers"]]
            self.assertEqual(kinds[:5], ["conv", "batchnorm", "relu6", "shift", "conv"])
            self.assertIn("3.shifts", names)
            self.assertEqual(graph["packing"]["gamma"], 1.5)
            out = ccc("inspect", a)
            self.assertIn("alpha 3", out)

    def test_unsupported_modules_name_their_path_and_write_nothing(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m.safetensors")
            m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2))
            with self.assertRaisesRegex(ValueError, r"module `2` \(MaxPool2d\): unsupported module"):
                ep.export(m, p, input_shape=(1, 8, 8), name="m")
            g = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, groups=2))
            with self.assertRaisesRegex(ValueError, r"grouped convolution \(groups=2\)"):
                ep.export(g, p, input_shape=(4, 8, 8), name="g")
            self.assertFalse(os.path.exists(p))
            self.assertEqual(os.listdir(d), [], "a failed export left a file behind")


class OnnxRoute(unittest.TestCase):
    def test_onnx_and_ccc_format_exports_give_identical_integer_logits_and_reports(self):
        with tempfile.TemporaryDirectory() as d:
            onx, st = os.path.join(d, "net.onnx"), os.path.join(d, "net.safetensors")
            for f in (ep.export_onnx, ep.export):
                f(shift_cnn(2), onx if f is ep.export_onnx else st, input_shape=(1, 13, 11),
                  name="net", gamma=1.5, alphas=[1, 2, 3])
            model = onnx.load(onx)
            meta = {p.key: p.value for p in model.metadata_props}
            self.assertEqual(meta, {"ccc.name": "net", "ccc.gamma": "1.5", "ccc.alpha": "1,2,3"})
            ops = [n.op_type for n in model.graph.node]
            self.assertIn("BatchNormalization", ops)
            self.assertEqual(sum(1 for n in model.graph.node if n.op_type == "Conv"), 5, ops)
            args = ["--random", "8", "--rows", "4", "--cols", "4"]
            self.assertEqual(ccc("infer", onx, *args), ccc("infer", st, *args))
            reports = []
            for m in (onx, st):
                out = os.path.join(d, "out-" + os.path.basename(m))
                ccc("compile", m, "--rows", "4", "--cols", "4", "--no-rtl", "-o", out)
                with open(os.path.join(out, "report.json")) as f:
                    r = json.load(f)
                r.pop("source")
                reports.append(r)
            self.assertEqual(reports[0], reports[1])

    def test_onnxruntime_agrees_with_ccc_float_reference(self):
        with tempfile.TemporaryDirectory() as d:
            for fold in (False, True):
                p = os.path.join(d, f"net-{fold}.onnx")
                ep.export_onnx(shift_cnn(3), p, input_shape=(1, 13, 11), name="net", fold_batchnorm=fold)
                r = onnx_check.check(p, CCC, ["--random", "6"], 256.0)
                self.assertLess(r["max_abs_logit_diff"], 1e-4, r)
                self.assertEqual(r["class_agreement"], 6, r)

    def test_authors_shift_modules_are_replaced_by_one_hot_convs(self):
        with tempfile.TemporaryDirectory() as d:
            a, b = os.path.join(d, "a.onnx"), os.path.join(d, "b.onnx")
            ep.export_onnx(shift_cnn(4, authors_shift=True), a, input_shape=(1, 13, 11), name="net")
            ep.export_onnx(shift_cnn(4), b, input_shape=(1, 13, 11), name="net")
            args = ["--random", "4", "--rows", "4", "--cols", "4"]
            self.assertEqual(ccc("infer", a, *args), ccc("infer", b, *args))

    def test_ccc_refuses_what_it_cannot_map_naming_the_onnx_node(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "pool.onnx")
            m = torch.nn.Sequential(
                torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                torch.nn.Conv2d(4, 4, 1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
            torch.onnx.export(m, torch.zeros(1, 1, 8, 8), p, opset_version=13)
            err = ccc_fails("compile", p, "--rows", "4", "--cols", "4", "-o", os.path.join(d, "out"))
            self.assertRegex(err, r"ONNX node `[^`]*MaxPool[^`]*` \(MaxPool\): max pooling is not supported")
            self.assertFalse(os.path.exists(os.path.join(d, "out")))


class DecomposedConv(unittest.TestCase):
    """Kernel decomposition from PyTorch: DecomposedConv2d exports as ccc's
    decomposed_conv (float reference equal to PyTorch's), loads back as itself, and
    through ONNX arrives as the KxK conv it computes."""

    def net(self) -> torch.nn.Module:
        torch.manual_seed(5)
        bn = torch.nn.BatchNorm2d(10)
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
        dec = ep.DecomposedConv2d(6, 10, 3, 2, stride=2, padding=1)
        with torch.no_grad():
            dec.weight.mul_(torch.rand_like(dec.weight) < 0.5)  # sparse coefficients
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 6, 3, padding=1), torch.nn.ReLU6(), dec, bn, torch.nn.ReLU6(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(10, 4)).eval()

    def test_exports_as_decomposed_conv_and_round_trips(self):
        net = self.net()
        with tempfile.TemporaryDirectory() as d:
            st, onx = os.path.join(d, "dec.safetensors"), os.path.join(d, "dec.onnx")
            ep.export(net, st, input_shape=(1, 9, 11), name="dec", alphas=[None, 2])
            with safe_open(st, framework="pt") as f:
                graph = tomllib.loads(f.metadata()[ep.GRAPH_KEY])
            dec = graph["layers"][2]
            self.assertEqual((dec["kind"], dec["alpha"]), ("decomposed_conv", 2))
            # Lowered as basis stage (6 channels x 2 bases) and coefficient stage.
            self.assertIn("(graph layer 2, `2.basis`): 6x9x11 -> 12x5x6", ccc("inspect", st))
            # ccc's float reference is PyTorch's forward pass.
            images, logits, _ = onnx_check.ccc_float(CCC, st, ["--random", "4"])
            x = torch.as_tensor(images, dtype=torch.float32).reshape(-1, 1, 9, 11) / 256.0
            with torch.no_grad():
                want = net(x).double().numpy()
            self.assertLess(abs(logits - want).max(), 1e-4)
            # Back into PyTorch as itself, the same function.
            back, _ = ep.load_ccc(st)
            self.assertTrue(any(isinstance(m, ep.DecomposedConv2d) for m in back.modules()))
            with torch.no_grad():
                self.assertLess((back(x) - net(x)).abs().max().item(), 1e-5)
            # ONNX: one Conv per conv (the decomposed one expanded), ccc agrees with
            # onnxruntime.
            ep.export_onnx(net, onx, input_shape=(1, 9, 11), name="dec", alphas=[1, 2])
            self.assertEqual(sum(1 for n in onnx.load(onx).graph.node if n.op_type == "Conv"), 2)
            r = onnx_check.check(onx, CCC, ["--random", "4"], 256.0)
            self.assertLess(r["max_abs_logit_diff"], 1e-4, r)


class MlpHead(unittest.TestCase):
    """An MLP head (Linear, ReLU6/ReLU between, the first pruned with
    torch.nn.utils.prune): exported with its mask, ccc's float reference equal to PyTorch's
    forward, back into PyTorch as the same function, and through ONNX (Gemm, Relu, Clip)
    agreeing with onnxruntime."""

    def net(self) -> torch.nn.Module:
        torch.manual_seed(6)
        first = torch.nn.Linear(8, 12)
        torch.nn.utils.prune.random_unstructured(first, "weight", amount=0.5)
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU6(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
            first, torch.nn.ReLU6(), torch.nn.Linear(12, 7), torch.nn.ReLU(),
            torch.nn.Linear(7, 4)).eval()

    def test_exports_the_head_and_round_trips(self):
        net = self.net()
        with tempfile.TemporaryDirectory() as d:
            st, onx = os.path.join(d, "mlp.safetensors"), os.path.join(d, "mlp.onnx")
            ep.export(net, st, input_shape=(1, 7, 9), name="mlp")
            with safe_open(st, framework="pt") as f:
                graph = tomllib.loads(f.metadata()[ep.GRAPH_KEY])
            kinds = [l["kind"] for l in graph["layers"]]
            self.assertEqual(kinds[2:], ["avgpool", "linear", "relu6", "linear", "relu", "linear"])
            self.assertIn("mask", graph["layers"][3])
            self.assertIn("Relu6 + linear `6.weight` 7x12 Relu + linear `8.weight` 4x7", ccc("inspect", st))
            images, logits, _ = onnx_check.ccc_float(CCC, st, ["--random", "4"])
            x = torch.as_tensor(images, dtype=torch.float32).reshape(-1, 1, 7, 9) / 256.0
            with torch.no_grad():
                want = net(x).double().numpy()
            self.assertLess(abs(logits - want).max(), 1e-4)
            back, _ = ep.load_ccc(st)
            with torch.no_grad():
                self.assertLess((back(x) - net(x)).abs().max().item(), 1e-5)
            ep.export_onnx(net, onx, input_shape=(1, 7, 9), name="mlp")
            self.assertEqual(sum(1 for n in onnx.load(onx).graph.node if n.op_type == "Gemm"), 3)
            r = onnx_check.check(onx, CCC, ["--random", "4"], 256.0)
            self.assertLess(r["max_abs_logit_diff"], 1e-4, r)


class ShippedModel(unittest.TestCase):
    """models/fmnist-shift-cc through PyTorch: loaded as a torch module, exported with
    torch.onnx.export, compiled again."""

    def test_the_shipped_model_round_trips_through_pytorch_and_onnx(self):
        net, graph = ep.load_ccc(SHIPPED)
        alphas = [l.get("alpha") for l in graph["layers"] if l["kind"] == "conv"]
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "fmnist-shift-cc.onnx")
            ep.export_onnx(net, p, input_shape=(1, 28, 28), name="fmnist-shift-cc",
                           gamma=graph["packing"]["gamma"], alphas=alphas)
            args = ["--random", "16"]
            self.assertEqual(ccc("infer", p, *args), ccc("infer", SHIPPED, *args))
            reports = []
            for m in (p, SHIPPED):
                out = os.path.join(d, "out-" + os.path.basename(m))
                ccc("compile", m, "--no-rtl", "-o", out)
                with open(os.path.join(out, "report.json")) as f:
                    r = json.load(f)
                r.pop("source")
                reports.append(r)
            self.assertEqual(reports[0], reports[1])
            if os.path.exists(os.path.join(FASHION_MNIST, "t10k-images-idx3-ubyte.gz")):
                r = onnx_check.check(p, CCC, ["--dataset", "fashion-mnist", "--limit", "500"], 256.0)
                print(f"\n  shipped model, 500 test images: {r}", file=sys.stderr)
                self.assertLess(r["max_abs_logit_diff"], 1e-4, r)
                self.assertEqual(r["onnxruntime_accuracy"], r["ccc_float_accuracy"], r)
            elif os.environ.get("CI"):
                self.fail("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
            else:
                print("\nSKIPPED the accuracy comparison: Fashion-MNIST is not installed", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
