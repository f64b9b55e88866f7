#!/usr/bin/env python3
"""Export a PyTorch shift-CNN to ccc: as ONNX (preferred) or in ccc's own model format.

**ONNX** (:func:`export_onnx`): ``torch.onnx.export`` of the module, with every shift
module replaced by :class:`ShiftConv` (a depthwise conv with one-hot kernels, which
exports as a plain ONNX ``Conv``) and α/γ written to the model's ``metadata_props``
(``ccc.alpha``, ``ccc.gamma``). ``ccc`` reads the ``.onnx`` file directly.

**ccc's format** (:func:`export`): one ``.safetensors`` file (written with the
``safetensors`` package) whose ``__metadata__`` key ``ccc.graph`` holds a TOML graph
naming the tensors of each layer (docs/DESIGN.md section 2). Modules are walked in
registration order:

* ``Conv2d``        -> ``conv``      (square kernel, any k/stride/padding, bias or not;
                                      groups == 1, dilation == 1, zero padding only)
* :class:`DecomposedConv2d` -> ``decomposed_conv`` (kernel decomposition: M basis
                                      kernels shared by the input channels, coefficients;
                                      the ONNX route writes the KxK conv they make)
* ``BatchNorm2d``   -> ``batchnorm`` (eval statistics: running_mean/var, weight/bias, eps)
* ``ReLU6``/``ReLU`` -> ``relu6``/``relu`` (also ``Hardtanh(0, 6)`` -> ``relu6``)
* a shift module    -> ``shift``     (any module with a ``shifts`` or the seeds' ``shift_t``
                                      attribute, see :func:`shift_pairs`; its shift comes
                                      before anything else the module does)
* ``AdaptiveAvgPool2d(1)`` / a global ``AvgPool2d`` / a ``Global*AvgPool*`` module
                    -> ``avgpool``
* ``Linear``        -> ``linear``
* ``Flatten``, the seeds' ``View``, ``Identity``, ``Dropout*`` -> nothing (skipped)

Anything else raises ``ValueError`` naming the module's path (e.g. ``features.3``).
:func:`load_ccc` goes the other way: a ccc model file as an ``nn.Sequential``.

Usage as a library::

    from export_pytorch import export, export_onnx
    export_onnx(model.eval(), "model.onnx", input_shape=(1, 28, 28), name="fmnist",
                gamma=1.75, alphas=8)
    export(model.eval(), "model.safetensors", input_shape=(1, 28, 28), name="fmnist")

Usage as a CLI (the output's extension picks the format)::

    python3 tools/export_pytorch.py --module pkg.mod:factory --checkpoint ckpt.pt \\
        --input 1,28,28 -o model.onnx
"""

from __future__ import annotations

import argparse
import copy
import importlib
import importlib.util
import math
import os
import sys
import tempfile
from collections import abc
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

#: Metadata key holding the graph TOML (docs/DESIGN.md section 2).
GRAPH_KEY = "ccc.graph"
CONV_KINDS = ("conv", "decomposed_conv")

#: One tensor to write: a contiguous CPU torch tensor (float32, or int32 for shifts).
TensorEntry = torch.Tensor

#: A TOML scalar the emitter can write.
TomlScalar = Union[str, int, float, bool]

#: ``alphas`` argument of :func:`export`: one α for every conv, one per conv in order
#: (``None`` entries leave a conv without α), or a mapping from conv module path to α.
Alphas = Union[None, int, Sequence[Optional[int]], Mapping[str, int]]


# --------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _write_atomic(path: Union[str, os.PathLike], write) -> None:
    """Calls ``write(tmp)`` for a temporary file beside ``path``, then renames it into
    place, so a reader never sees a half-written model and a failed export leaves any
    previous file untouched."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ccc-export-", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp creates the file 0600; give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_safetensors(
    path: Union[str, os.PathLike],
    tensors: Mapping[str, TensorEntry],
    metadata: Mapping[str, str],
) -> None:
    """Writes tensors and string metadata with the safetensors package, atomically."""
    _write_atomic(path, lambda tmp: save_file(dict(tensors), tmp, metadata=dict(metadata)))

# --------------------------------------------------------------------------------------
# TOML emitter (pure)
# --------------------------------------------------------------------------------------


@dataclass
class LayerSpec:
    """One ``[[layers]]`` entry: its kind, its fields in emission order, and the module
    path it came from (written as a comment so that the compiler's "layer N" errors can
    be traced back to the PyTorch module)."""

    kind: str
    fields: Dict[str, TomlScalar] = field(default_factory=dict)
    source: str = ""


def toml_string(s: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(v: TomlScalar) -> str:
    """Formats a scalar; floats always carry a '.' or an exponent so they read back as
    floats, and non-finite floats are refused (the compiler rejects them anyway)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot write the non-finite number {v} to the graph")
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    raise TypeError(f"cannot write {type(v).__name__} {v!r} to the graph TOML")


def _comment(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def graph_toml(
    name: str,
    classes: int,
    input_shape: Sequence[int],
    layers: Sequence[LayerSpec],
    gamma: Optional[float] = None,
) -> str:
    """Emits the ``ccc.graph`` TOML document with docs/DESIGN.md section 2's field names."""
    channels, height, width = (int(d) for d in input_shape)
    lines = [
        "[model]",
        f"name = {toml_string(name)}",
        f"classes = {int(classes)}",
        "",
        "[input]",
        f"channels = {channels}",
        f"height = {height}",
        f"width = {width}",
        "",
    ]
    if gamma is not None:
        lines += ["[packing]", f"gamma = {toml_value(float(gamma))}", ""]
    for layer in layers:
        if layer.source:
            lines.append(f"# {_comment(layer.source)}")
        lines.append("[[layers]]")
        lines.append(f"kind = {toml_string(layer.kind)}")
        for key, value in layer.fields.items():
            if key == "kind":
                raise ValueError("a layer's fields cannot repeat `kind`")
            lines.append(f"{key} = {toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Tensors
# --------------------------------------------------------------------------------------


def is_tensor(t: Any) -> bool:
    return isinstance(t, torch.Tensor)


def tensor_shape(t: Any) -> List[int]:
    return [int(d) for d in t.shape]


def tensor_values(t: Any) -> List[Any]:
    """All elements in row-major order as Python numbers."""
    return list(t.detach().cpu().contiguous().flatten().tolist())


def f32_entry(t: Any, shape: Optional[List[int]] = None) -> TensorEntry:
    """A tensor as float32, optionally reshaped (same element count)."""
    own = tensor_shape(t)
    shape = own if shape is None else shape
    if _numel(own) != _numel(shape):
        raise ValueError(f"cannot view a {own} tensor as {shape}")
    return t.detach().cpu().float().reshape(shape).contiguous().clone()


def f32_const(value: float, n: int) -> TensorEntry:
    """A float32 vector of ``n`` copies of ``value`` (BatchNorm without affine)."""
    return torch.full((n,), float(value), dtype=torch.float32)


def i32_entry(values: Sequence[int], shape: List[int]) -> TensorEntry:
    return torch.tensor(list(values), dtype=torch.int32).reshape(shape).contiguous()


# --------------------------------------------------------------------------------------
# Module walk
# --------------------------------------------------------------------------------------


def _class_names(module: Any) -> List[str]:
    """Names of the module's classes along its MRO: subclasses of torch layers (and
    fakes with the same names) are recognised without importing torch."""
    return [c.__name__ for c in type(module).__mro__]


def _is(module: Any, *names: str) -> bool:
    return any(n in names for n in _class_names(module))


#: Modules that compute the identity at inference (or only reshape a vector).
SKIPPED = ("Flatten", "View", "Identity", "_DropoutNd", "Dropout", "AlphaDropout")

#: Classes that map to a layer kind (looked up along the MRO).
LAYER_CLASSES = (
    "DecomposedConv2d",
    "Conv2d",
    "BatchNorm2d",
    "ReLU6",
    "ReLU",
    "Hardtanh",
    "Linear",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
) + SKIPPED


def _is_global_pool_name(module: Any) -> bool:
    name = type(module).__name__.lower()
    return name.startswith("global") and "avg" in name and "pool" in name


def _is_layer(module: Any) -> bool:
    return _is(module, *LAYER_CLASSES) or _is_global_pool_name(module)


def _children(module: Any) -> List[Tuple[str, Any]]:
    return list(module.named_children()) if hasattr(module, "named_children") else []


def _walk(obj: Any, prefix: str, st: "_State") -> None:
    """Converts ``obj`` and everything under it, in forward order, into ``st``.

    The order is PyTorch's registration order (``named_children`` recursively, i.e.
    the order of ``module.modules()``), which is the forward order for
    ``nn.Sequential`` and for models built like the seeds' (a Sequential of
    Sequentials). A model whose ``forward`` calls its children in another order must be
    exported from an explicit list: a list of modules or of (name, module) pairs.

    A module carrying a shift attribute (see :func:`shift_pairs`) applies its shift
    *first*: it is a pure shift module, or a Conv2d subclass that shifts its input, or
    a block whose children run after the shift. Other modules are a layer if their
    class is known, else a container whose children are walked, else unsupported.
    """
    if isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                name, sub = item
            else:
                name, sub = str(i), item
            _walk(sub, f"{prefix}.{name}" if prefix else name, st)
        return
    where = _where(prefix, obj)
    pairs = shift_pairs(obj, where)
    if pairs is not None:
        _shift(prefix, obj, st, pairs)
    if _is_layer(obj):
        _convert(prefix, obj, st)
        return
    children = _children(obj)
    if children:
        for name, sub in children:
            _walk(sub, f"{prefix}.{name}" if prefix else name, st)
        return
    if pairs is None:
        raise ValueError(f"{where}: unsupported module; see tools/README.md for what exports")


# --------------------------------------------------------------------------------------
# Layer conversion
# --------------------------------------------------------------------------------------


def _pair(v: Any, what: str, where: str) -> Tuple[int, int]:
    """An int or a 1-/2-sequence of ints (PyTorch's `_pair` inputs) as (h, w)."""
    try:
        if isinstance(v, (list, tuple)):
            if len(v) == 1:
                return int(v[0]), int(v[0])
            if len(v) == 2:
                return int(v[0]), int(v[1])
        else:
            return int(v), int(v)
    except (TypeError, ValueError):
        pass
    raise ValueError(f"{where}: {what} {v!r} is not an integer or a pair of integers")


def _square(v: Any, what: str, where: str) -> int:
    a, b = _pair(v, what, where)
    if a != b:
        raise ValueError(f"{where}: {what} {v!r} differs between height and width (unsupported)")
    return a


def _where(path: str, module: Any) -> str:
    return f"module `{path or '<root>'}` ({type(module).__name__})"


def _tensor_name(path: str, leaf: str) -> str:
    return f"{path}.{leaf}" if path else leaf


def shift_pairs(module: Any, where: str) -> Optional[List[Tuple[int, int]]]:
    """The (dy, dx) per channel of a shift module, or None if it is not one.

    Accepted, in this order:

    * ``shifts``: an int tensor (or nested list) [C, 2] of (dy, dx) with docs/DESIGN.md's
      meaning ``out[c][y][x] = in[c][y + dy][x + dx]`` (zero outside), exported as is;
    * ``shift_t``: the seeds' buffer (``net.Shift`` in the authors' code), [C, 2] int.
      Their CUDA kernel *scatters*, ``out[y + s0][x + s1] = in[y][x]`` over dims (2, 3),
      so the exported (dy, dx) is (-s0, -s1).

    Float tensors are accepted when every value is an integer.
    """
    attr = _shift_attr(module)
    if attr is None:
        return None
    raw = getattr(module, attr)
    if is_tensor(raw):
        shape = tensor_shape(raw)
        values = tensor_values(raw)
    else:
        rows = [list(r) for r in raw]
        shape = [len(rows), 2 if all(len(r) == 2 for r in rows) else -1]
        values = [v for r in rows for v in r]
    if len(shape) != 2 or shape[1] != 2:
        raise ValueError(f"{where}: `{attr}` has shape {shape}, expected [channels, 2]")
    ints: List[int] = []
    for v in values:
        f = float(v)
        if not math.isfinite(f) or f != int(f):
            raise ValueError(f"{where}: `{attr}` holds {v!r}, which is not an integer shift")
        ints.append(int(f))
    sign = -1 if attr == "shift_t" else 1
    return [(sign * ints[2 * i], sign * ints[2 * i + 1]) for i in range(shape[0])]


def _shift_attr(module: Any) -> Optional[str]:
    for attr in ("shifts", "shift_t"):
        v = getattr(module, attr, None)
        if v is not None and (is_tensor(v) or isinstance(v, (list, tuple))):
            return attr
    return None


def _conv_mask(module: Any, weight_shape: List[int], where: str) -> Optional[Any]:
    """A conv's or linear layer's pruning mask tensor: ``weight_mask`` (torch.nn.utils.prune), the
    seeds' ``_mask`` (flat, [out*in*k*k]) or a ``mask`` attribute; None without one."""
    for attr in ("weight_mask", "_mask", "mask"):
        m = getattr(module, attr, None)
        if m is None or not is_tensor(m):
            continue  # e.g. a method or flag that happens to be called `mask`
        if _numel(tensor_shape(m)) != _numel(weight_shape):
            raise ValueError(
                f"{where}: `{attr}` has shape {tensor_shape(m)}, "
                f"which does not match the weight {weight_shape}"
            )
        return m
    return None


@dataclass
class _State:
    """Walk state: the activation shape and what has been produced so far."""

    shape: Tuple[int, ...]  # (C, H, W) for a feature map, (N,) for a vector
    layers: List[LayerSpec] = field(default_factory=list)
    tensors: Dict[str, TensorEntry] = field(default_factory=dict)
    conv_paths: List[str] = field(default_factory=list)

    def add(self, name: str, entry: TensorEntry, where: str) -> str:
        if name in self.tensors:
            raise ValueError(f"{where}: tensor name `{name}` is used twice")
        self.tensors[name] = entry
        return name

    def need_map(self, where: str, what: str) -> Tuple[int, int, int]:
        if len(self.shape) != 3:
            raise ValueError(
                f"{where}: {what} needs a feature map, but the input here is a vector of "
                f"{self.shape[0]} (after the global average pool)"
            )
        return self.shape  # type: ignore[return-value]


def _conv(path: str, m: Any, st: _State) -> None:
    where = _where(path, m)
    c, h, w = st.need_map(where, "a conv")
    if int(getattr(m, "groups", 1)) != 1:
        raise ValueError(f"{where}: grouped convolution (groups={m.groups}) is not supported")
    dil = _pair(getattr(m, "dilation", 1), "dilation", where)
    if dil != (1, 1):
        raise ValueError(f"{where}: dilation {dil} is not supported (only 1)")
    mode = getattr(m, "padding_mode", "zeros")
    if mode != "zeros":
        raise ValueError(f"{where}: padding_mode {mode!r} is not supported (only zeros)")
    if hasattr(m, "weight_orig") and hasattr(m, "weight_mask"):
        # torch.nn.utils.prune: `weight` is only recomputed by a forward pre-hook and can
        # be stale after load_state_dict; export the original and let the mask apply.
        weight = m.weight_orig
    else:
        weight = m.weight
    wshape = tensor_shape(weight)
    if len(wshape) != 4:
        raise ValueError(f"{where}: weight shape {wshape} is not [out, in, k, k]")
    out, cin, k, k2 = wshape
    if k != k2:
        raise ValueError(f"{where}: kernel {k}x{k2} is not square (unsupported)")
    if cin != c:
        raise ValueError(f"{where}: takes {cin} input channels, but {c} arrive here")
    stride = _square(getattr(m, "stride", 1), "stride", where)
    padding_attr = getattr(m, "padding", 0)
    if padding_attr == "valid":
        padding = 0
    elif padding_attr == "same":
        if k % 2 == 0 or stride != 1:
            raise ValueError(f"{where}: padding='same' needs an odd kernel and stride 1")
        padding = (k - 1) // 2
    else:
        padding = _square(padding_attr, "padding", where)
    if stride < 1 or padding < 0:
        raise ValueError(f"{where}: stride {stride} / padding {padding} out of range")
    hp, wp = h + 2 * padding, w + 2 * padding
    if hp < k or wp < k:
        raise ValueError(f"{where}: kernel {k}x{k} does not fit the padded {hp}x{wp} input")

    fields: Dict[str, TomlScalar] = {}
    fields["weight"] = st.add(_tensor_name(path, "weight"), f32_entry(weight), where)
    bias = getattr(m, "bias", None)
    if bias is not None:
        fields["bias"] = st.add(_tensor_name(path, "bias"), f32_entry(bias), where)
    fields["stride"] = stride
    fields["padding"] = padding
    mask = _conv_mask(m, wshape, where)
    if mask is not None:
        fields["mask"] = st.add(_tensor_name(path, "mask"), f32_entry(mask, wshape), where)
    st.layers.append(LayerSpec("conv", fields, f"{path} ({type(m).__name__})"))
    st.conv_paths.append(path)
    st.shape = (out, (hp - k) // stride + 1, (wp - k) // stride + 1)


def _decomposed(path: str, m: Any, st: _State) -> None:
    where = _where(path, m)
    c, h, w = st.need_map(where, "a decomposed conv")
    bases, k, k2 = tensor_shape(m.basis)
    out, cm = tensor_shape(m.weight)
    if k != k2:
        raise ValueError(f"{where}: basis kernel {k}x{k2} is not square (unsupported)")
    if cm != c * bases:
        raise ValueError(f"{where}: {cm} coefficients per filter, but {c} channels x {bases} bases arrive")
    stride, padding = int(m.stride), int(m.padding)
    hp, wp = h + 2 * padding, w + 2 * padding
    if stride < 1 or padding < 0 or hp < k or wp < k:
        raise ValueError(f"{where}: stride {stride} / padding {padding} do not fit the {h}x{w} input")
    fields: Dict[str, TomlScalar] = {}
    fields["basis"] = st.add(_tensor_name(path, "basis"), f32_entry(m.basis), where)
    fields["weight"] = st.add(_tensor_name(path, "weight"), f32_entry(m.weight), where)
    if m.bias is not None:
        fields["bias"] = st.add(_tensor_name(path, "bias"), f32_entry(m.bias), where)
    fields["stride"] = stride
    fields["padding"] = padding
    st.layers.append(LayerSpec("decomposed_conv", fields, f"{path} ({type(m).__name__})"))
    st.conv_paths.append(path)
    st.shape = (out, (hp - k) // stride + 1, (wp - k) // stride + 1)


def _batchnorm(path: str, m: Any, st: _State) -> None:
    where = _where(path, m)
    c, _, _ = st.need_map(where, "batchnorm")
    mean = getattr(m, "running_mean", None)
    var = getattr(m, "running_var", None)
    if mean is None or var is None:
        raise ValueError(
            f"{where}: no running statistics (track_running_stats=False); "
            "only eval-mode batchnorm with running_mean/running_var can be folded"
        )
    for what, t in (("running_mean", mean), ("running_var", var)):
        if tensor_shape(t) != [c]:
            raise ValueError(f"{where}: {what} has shape {tensor_shape(t)}, but {c} channels arrive")
    fields: Dict[str, TomlScalar] = {}
    weight, bias = getattr(m, "weight", None), getattr(m, "bias", None)
    # affine=False: the scale is 1 and the shift 0; write them so the graph is uniform.
    fields["weight"] = st.add(
        _tensor_name(path, "weight"), f32_entry(weight) if weight is not None else f32_const(1.0, c), where
    )
    fields["bias"] = st.add(
        _tensor_name(path, "bias"), f32_entry(bias) if bias is not None else f32_const(0.0, c), where
    )
    fields["mean"] = st.add(_tensor_name(path, "running_mean"), f32_entry(mean), where)
    fields["var"] = st.add(_tensor_name(path, "running_var"), f32_entry(var), where)
    fields["eps"] = float(getattr(m, "eps", 1e-5))
    st.layers.append(LayerSpec("batchnorm", fields, f"{path} ({type(m).__name__})"))


def _shift(path: str, m: Any, st: _State, pairs: List[Tuple[int, int]]) -> None:
    where = _where(path, m)
    c, _, _ = st.need_map(where, "a shift")
    if len(pairs) != c:
        raise ValueError(f"{where}: shifts {len(pairs)} channels, but {c} arrive here")
    flat = [v for p in pairs for v in p]
    for v in flat:
        if not -(2**31) <= v < 2**31:
            raise ValueError(f"{where}: shift {v} does not fit in int32")
    name = st.add(_tensor_name(path, "shifts"), i32_entry(flat, [c, 2]), where)
    st.layers.append(LayerSpec("shift", {"shifts": name}, f"{path} ({type(m).__name__})"))


def _avgpool(path: str, m: Any, st: _State) -> None:
    where = _where(path, m)
    c, _, _ = st.need_map(where, "a global average pool")
    st.layers.append(LayerSpec("avgpool", {}, f"{path} ({type(m).__name__})"))
    st.shape = (c,)


def _linear(path: str, m: Any, st: _State) -> None:
    where = _where(path, m)
    if len(st.shape) != 1:
        raise ValueError(
            f"{where}: a linear layer must follow a global average pool "
            f"(the input here is a {'x'.join(map(str, st.shape))} feature map)"
        )
    # torch.nn.utils.prune's `weight` can be stale: the original, with the mask beside it.
    pruned = hasattr(m, "weight_orig") and hasattr(m, "weight_mask")
    weight = m.weight_orig if pruned else m.weight
    wshape = tensor_shape(weight)
    if len(wshape) != 2 or wshape[1] != st.shape[0]:
        raise ValueError(f"{where}: weight shape {wshape} does not take {st.shape[0]} inputs")
    fields: Dict[str, TomlScalar] = {}
    fields["weight"] = st.add(_tensor_name(path, "weight"), f32_entry(weight), where)
    bias = getattr(m, "bias", None)
    if bias is not None:
        fields["bias"] = st.add(_tensor_name(path, "bias"), f32_entry(bias), where)
    mask = _conv_mask(m, wshape, where)
    if mask is not None:
        fields["mask"] = st.add(_tensor_name(path, "mask"), f32_entry(mask, wshape), where)
    st.layers.append(LayerSpec("linear", fields, f"{path} ({type(m).__name__})"))
    st.shape = (wshape[0],)


def _is_global_avgpool(m: Any, st: _State, where: str) -> bool:
    """AdaptiveAvgPool2d(1), an AvgPool2d whose window is the whole map, or a module
    named Global*Avg*Pool*. Other pools raise (they would change the spatial size)."""
    if _is_global_pool_name(m):
        return True
    if _is(m, "AdaptiveAvgPool2d"):
        size = getattr(m, "output_size", 1)
        if _pair(size, "output_size", where) == (1, 1):
            return True
        raise ValueError(f"{where}: only output_size=1 (a global average pool) is supported")
    if _is(m, "AvgPool2d"):
        _, h, w = st.need_map(where, "an average pool")
        kernel = _pair(getattr(m, "kernel_size", 0), "kernel_size", where)
        padding = _pair(getattr(m, "padding", 0), "padding", where)
        if kernel == (h, w) and padding == (0, 0) and not getattr(m, "ceil_mode", False):
            return True
        raise ValueError(
            f"{where}: only a global average pool is supported (kernel {kernel} on a {h}x{w} map)"
        )
    return False


def _convert(path: str, m: Any, st: _State) -> None:
    where = _where(path, m)
    names = _class_names(m)
    if "DecomposedConv2d" in names:
        _decomposed(path, m, st)
    elif "Conv2d" in names:
        _conv(path, m, st)
    elif "BatchNorm2d" in names:
        _batchnorm(path, m, st)
    elif "ReLU6" in names:
        st.layers.append(LayerSpec("relu6", {}, f"{path} ({type(m).__name__})"))
    elif "ReLU" in names:
        st.layers.append(LayerSpec("relu", {}, f"{path} ({type(m).__name__})"))
    elif "Hardtanh" in names:
        if (float(getattr(m, "min_val", -1.0)), float(getattr(m, "max_val", 1.0))) != (0.0, 6.0):
            raise ValueError(f"{where}: only Hardtanh(0, 6), i.e. ReLU6, is supported")
        st.layers.append(LayerSpec("relu6", {}, f"{path} ({type(m).__name__})"))
    elif "Linear" in names:
        _linear(path, m, st)
    elif _is_global_avgpool(m, st, where):
        _avgpool(path, m, st)
    elif any(n in SKIPPED for n in names):
        if any(n in ("Flatten", "View") for n in names) and len(st.shape) == 3:
            c, h, w = st.shape
            if (h, w) != (1, 1):
                raise ValueError(
                    f"{where}: flattening a {c}x{h}x{w} map is not supported; "
                    "put a global average pool before the classifier"
                )
            # Flattening a Cx1x1 map is a global average pool over one pixel: exact.
            _avgpool(path, m, st)
        # Dropout and Identity are the identity at inference.
    else:
        raise ValueError(f"{where}: unsupported module; see tools/README.md for what exports")


def _apply_alphas(layers: List[LayerSpec], conv_paths: List[str], alphas: Alphas) -> None:
    if alphas is None:
        return
    convs = [l for l in layers if l.kind in CONV_KINDS]
    per_conv: List[Optional[int]]
    if isinstance(alphas, bool):
        raise TypeError("alphas must be an int, a sequence or a mapping, not a bool")
    if isinstance(alphas, int):
        per_conv = [alphas] * len(convs)
    elif isinstance(alphas, abc.Mapping):
        unknown = sorted(set(alphas) - set(conv_paths))
        if unknown:
            raise ValueError(f"alphas names modules that are not convs: {unknown} (convs: {conv_paths})")
        per_conv = [alphas.get(p) for p in conv_paths]
    else:
        per_conv = list(alphas)
        if len(per_conv) != len(convs):
            raise ValueError(f"alphas has {len(per_conv)} entries for {len(convs)} convs {conv_paths}")
    for layer, path, a in zip(convs, conv_paths, per_conv):
        if a is None:
            continue
        if isinstance(a, bool) or not isinstance(a, int) or a < 1:
            raise ValueError(f"alpha for conv `{path}` must be an integer >= 1, found {a!r}")
        layer.fields["alpha"] = a


@dataclass
class Exported:
    """What :func:`build` produces: the graph TOML and the tensors to write."""

    graph: str
    tensors: Dict[str, TensorEntry]
    layers: List[LayerSpec]


def build(
    module: Any,
    *,
    input_shape: Sequence[int],
    name: str,
    classes: Optional[int] = None,
    gamma: Optional[float] = None,
    alphas: Alphas = None,
) -> Exported:
    """Converts a module (or an explicit layer list) to a graph and tensors without
    writing anything; :func:`export` writes them. Raises ValueError on anything the
    format cannot express, naming the module path."""
    if len(input_shape) != 3 or any(int(d) < 1 for d in input_shape):
        raise ValueError(f"input_shape must be (C, H, W) with positive sizes, found {input_shape!r}")
    if not isinstance(name, str) or not name:
        raise ValueError("name must be a non-empty string")
    if gamma is not None and not (math.isfinite(float(gamma)) and float(gamma) >= 0.0):
        raise ValueError(f"gamma = {gamma!r} must be a finite number >= 0")
    st = _State(shape=tuple(int(d) for d in input_shape))
    _walk(module, "", st)
    if not st.layers:
        raise ValueError("the module has no layers to export")
    if len(st.shape) != 1:
        raise ValueError(
            "the network does not end in a classifier (global average pool + linear); "
            f"its output is a {'x'.join(map(str, st.shape))} feature map"
        )
    if classes is None:
        classes = st.shape[0]
    elif int(classes) != st.shape[0]:
        raise ValueError(f"classes = {classes}, but the network has {st.shape[0]} outputs")
    _apply_alphas(st.layers, st.conv_paths, alphas)
    text = graph_toml(name, int(classes), input_shape, st.layers, gamma)
    return Exported(graph=text, tensors=st.tensors, layers=st.layers)


def export(
    module: Any,
    path: Union[str, os.PathLike],
    *,
    input_shape: Sequence[int],
    name: str,
    classes: Optional[int] = None,
    gamma: Optional[float] = None,
    alphas: Alphas = None,
) -> Exported:
    """Writes ``module`` to ``path`` in ccc's model format (atomically; nothing is
    written on error).

    module:      an ``nn.Module`` in eval form (batchnorm running stats are exported,
                 dropout is skipped), or a list of modules / (name, module) pairs in
                 forward order for models whose ``forward`` is not registration order.
    input_shape: (C, H, W) of one input image.
    name:        the graph's ``[model] name``.
    classes:     checked against the classifier's outputs (default: taken from it).
    gamma:       written as ``[packing] gamma``.
    alphas:      α per conv: an int for all, a sequence (one per conv, None = unset) or
                 a mapping from conv module path to α.
    """
    result = build(
        module, input_shape=input_shape, name=name, classes=classes, gamma=gamma, alphas=alphas
    )
    write_safetensors(path, result.tensors, {GRAPH_KEY: result.graph})
    return result


# --------------------------------------------------------------------------------------
# ONNX route
# --------------------------------------------------------------------------------------


class DecomposedConv2d(torch.nn.Module):
    """A KxK conv whose kernels combine M basis kernels shared by all input channels
    (kernel decomposition, ESCALATE): ``kernel[n, c] = sum_m weight[n, c*M + m] *
    basis[m]``. ``basis`` is [M, k, k], ``weight`` [out, in*M] (the coefficients, which
    ccc prunes and column-combines); exports as ccc's ``decomposed_conv``. Traced for
    ONNX, the kernels fold into one constant: a plain ``Conv`` (ccc's expanded mapping)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bases: int,
                 stride: int = 1, padding: int = 0, bias: bool = False):
        super().__init__()
        k = int(kernel_size)
        self.stride, self.padding = int(stride), int(padding)
        self.basis = torch.nn.Parameter(torch.randn(bases, k, k) / k)
        bound = (6.0 / (in_channels * bases)) ** 0.5
        self.weight = torch.nn.Parameter(torch.empty(out_channels, in_channels * bases).uniform_(-bound, bound))
        self.bias = torch.nn.Parameter(torch.zeros(out_channels)) if bias else None

    def kernels(self) -> torch.Tensor:
        m, k, _ = self.basis.shape
        n, cm = self.weight.shape
        return (self.weight.reshape(n * (cm // m), m) @ self.basis.reshape(m, k * k)).reshape(n, cm // m, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernels(), self.bias, self.stride, self.padding)


class ShiftConv(torch.nn.Module):
    """A per-channel shift ``out[c][y][x] = in[c][y + dy][x + dx]`` (zero outside) as a
    depthwise conv with one-hot kernels: it exports to ONNX as a plain ``Conv`` (group =
    channels), which ccc reads back as a shift, and it carries ``shifts`` so that
    :func:`export` writes it as a ``shift`` layer."""

    def __init__(self, shifts: Any):
        super().__init__()
        s = torch.as_tensor(shifts, dtype=torch.int32).reshape(-1, 2)
        r = int(s.abs().max().item()) if s.numel() else 0
        k = 2 * r + 1
        w = torch.zeros(s.shape[0], 1, k, k)
        for c, (dy, dx) in enumerate(s.tolist()):
            w[c, 0, dy + r, dx + r] = 1.0
        self.radius = r
        self.register_buffer("shifts", s)
        self.register_buffer("weight", w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, None, 1, self.radius, 1, self.weight.shape[0])


def _exportable(module: Any, prefix: str = "") -> Any:
    """``module`` with every shift module replaced by a :class:`ShiftConv` and every
    :class:`DecomposedConv2d` by the ``Conv2d`` it computes (in place on a copy's
    children); a module that shifts *and* does more cannot be replaced."""
    for name, child in list(module.named_children()):
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(child, DecomposedConv2d):
            # ONNX has no shared-basis conv: the KxK conv the kernels make.
            n, c, k, _ = child.kernels().shape
            conv = torch.nn.Conv2d(c, n, k, child.stride, child.padding, bias=child.bias is not None)
            with torch.no_grad():
                conv.weight.copy_(child.kernels())
                if child.bias is not None:
                    conv.bias.copy_(child.bias)
            setattr(module, name, conv)
            continue
        pairs = shift_pairs(child, _where(path, child))
        if pairs is not None and not isinstance(child, ShiftConv):
            if _is_layer(child) or _children(child):
                raise ValueError(
                    f"{_where(path, child)}: shifts and computes more; for the ONNX route "
                    "split it into a shift module and the rest"
                )
            setattr(module, name, ShiftConv(pairs))
        else:
            _exportable(child, path)
    return module


def export_onnx(
    module: Any,
    path: Union[str, os.PathLike],
    *,
    input_shape: Sequence[int],
    name: str,
    gamma: Optional[float] = None,
    alphas: Alphas = None,
    opset: int = 13,
    fold_batchnorm: bool = False,
) -> Any:
    """Writes ``module`` as ONNX for ccc (atomically): shifts as one-hot depthwise convs,
    α per conv and γ in ``metadata_props``. Returns the ``onnx.ModelProto``.

    The structure is checked first with the same walk as :func:`export`, so anything
    ccc cannot take fails here with the module's path. Batchnorm is kept as its own
    node (``TrainingMode.PRESERVE`` in eval mode) so ccc folds it in float64 exactly as
    it does for its own format; ``fold_batchnorm=True`` lets PyTorch fold it into the
    conv in float32 instead (also accepted, numbers then differ in the last bits)."""
    import onnx  # noqa: PLC0415  (only the ONNX route needs it)

    built = build(module, input_shape=input_shape, name=name, gamma=gamma, alphas=alphas)
    per_conv = [l.fields.get("alpha") for l in built.layers if l.kind in CONV_KINDS]
    model = _exportable(copy.deepcopy(module)).eval()
    c, h, w = (int(d) for d in input_shape)
    mode = torch.onnx.TrainingMode.EVAL if fold_batchnorm else torch.onnx.TrainingMode.PRESERVE

    def write(tmp: str) -> None:
        torch.onnx.export(
            model,
            torch.zeros(1, c, h, w),
            tmp,
            opset_version=opset,
            training=mode,
            do_constant_folding=True,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
        m = onnx.load(tmp)
        meta = {"ccc.name": name}
        if gamma is not None:
            meta["ccc.gamma"] = repr(float(gamma))
        if any(a is not None for a in per_conv):
            meta["ccc.alpha"] = ",".join(str(a if a is not None else 1) for a in per_conv)
        for k, v in meta.items():
            p = m.metadata_props.add()
            p.key, p.value = k, v
        onnx.checker.check_model(m)
        onnx.save(m, tmp)

    _write_atomic(path, write)
    return onnx.load(os.fspath(path))


class CccNet(torch.nn.Module):
    """A chain of modules run in order, registered under the paths their tensors had in
    the ccc model file (``b1.conv`` for ``b1.conv.weight``), so an export names the
    parameters as the file did."""

    def __init__(self, layers: Sequence[Tuple[str, torch.nn.Module]]):
        super().__init__()
        for path, m in layers:
            parent: torch.nn.Module = self
            *heads, leaf = path.split(".")
            for h in heads:
                if not hasattr(parent, h):
                    parent.add_module(h, torch.nn.Module())
                parent = getattr(parent, h)
            parent.add_module(leaf, m)
        self.order = [p for p, _ in layers]
        walked = [n for n, m in self.named_modules() if not list(m.children()) and n]
        if walked != self.order:
            raise ValueError(f"layer paths {self.order} do not nest in forward order")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for p in self.order:
            x = self.get_submodule(p)(x)
        return x


def load_ccc(path: Union[str, os.PathLike]) -> Tuple[torch.nn.Module, Dict[str, Any]]:
    """A ccc model file as a PyTorch module in eval mode (shifts as :class:`ShiftConv`,
    modules named after the file's tensors), and its graph (the parsed TOML)."""
    import tomllib  # noqa: PLC0415  (Python 3.11+)

    with safe_open(os.fspath(path), framework="pt") as f:
        graph = tomllib.loads((f.metadata() or {})[GRAPH_KEY])
        t = {k: f.get_tensor(k) for k in f.keys()}
    layers: List[Tuple[str, torch.nn.Module]] = []

    def prefix(name: str) -> str:
        return name.rsplit(".", 1)[0] if name.count(".") >= 1 and name.rsplit(".", 1)[1] in (
            "weight", "bias", "running_mean", "running_var") else name

    def beside(leaf: str) -> str:
        # A layer without tensors joins the container of the layer before it.
        if layers and "." in layers[-1][0]:
            return layers[-1][0].rsplit(".", 1)[0] + "." + leaf
        return leaf

    for i, spec in enumerate(graph["layers"]):
        kind = spec["kind"]
        if kind == "conv":
            wt = t[spec["weight"]].float()
            if "mask" in spec:
                wt = wt * (t[spec["mask"]] != 0)
            o, ci, k, _ = wt.shape
            conv = torch.nn.Conv2d(ci, o, k, spec.get("stride", 1), spec.get("padding", 0), bias="bias" in spec)
            conv.weight.data = wt.clone()
            if "bias" in spec:
                conv.bias.data = t[spec["bias"]].float().clone()
            layers.append((prefix(spec["weight"]), conv))
        elif kind == "decomposed_conv":
            basis, wt = t[spec["basis"]].float(), t[spec["weight"]].float()
            if "mask" in spec:
                wt = wt * (t[spec["mask"]] != 0)
            wt = wt.reshape(wt.shape[0], -1)
            m, k, _ = basis.shape
            dec = DecomposedConv2d(wt.shape[1] // m, wt.shape[0], k, m, spec.get("stride", 1),
                                   spec.get("padding", 0), bias="bias" in spec)
            dec.basis.data, dec.weight.data = basis.clone(), wt.clone()
            if "bias" in spec:
                dec.bias.data = t[spec["bias"]].float().clone()
            layers.append((prefix(spec["weight"]), dec))
        elif kind == "batchnorm":
            c = t[spec["weight"]].numel()
            bn = torch.nn.BatchNorm2d(c, eps=float(spec.get("eps", 1e-5)))
            for attr, key in (("weight", "weight"), ("bias", "bias"), ("running_mean", "mean"), ("running_var", "var")):
                getattr(bn, attr).data = t[spec[key]].float().clone()
            layers.append((prefix(spec["weight"]), bn))
        elif kind == "shift":
            layers.append((spec["shifts"], ShiftConv(t[spec["shifts"]])))
        elif kind in ("relu6", "relu"):
            layers.append((beside(f"act{i}"), torch.nn.ReLU6() if kind == "relu6" else torch.nn.ReLU()))
        elif kind == "avgpool":
            layers += [(f"pool{i}", torch.nn.AdaptiveAvgPool2d(1)), (f"flatten{i}", torch.nn.Flatten())]
        elif kind == "linear":
            wt = t[spec["weight"]].float()
            if "mask" in spec:
                wt = wt * (t[spec["mask"]] != 0)
            lin = torch.nn.Linear(wt.shape[1], wt.shape[0], bias="bias" in spec)
            lin.weight.data = wt.clone()
            if "bias" in spec:
                lin.bias.data = t[spec["bias"]].float().clone()
            layers.append((prefix(spec["weight"]), lin))
        else:
            raise ValueError(f"{path}: layer kind `{kind}` is not known")
    return CccNet(layers).eval(), graph


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def _load_factory(spec: str) -> Any:
    """``pkg.mod:factory`` (importable from the current directory) or ``file.py:factory``."""
    mod_name, sep, attr = spec.rpartition(":")
    if not sep or not mod_name or not attr:
        raise SystemExit(f"--module must be MODULE:FACTORY, found {spec!r}")
    if mod_name.endswith(".py"):
        loader_spec = importlib.util.spec_from_file_location("_ccc_export_model", mod_name)
        if loader_spec is None or loader_spec.loader is None:
            raise SystemExit(f"cannot load {mod_name}")
        mod = importlib.util.module_from_spec(loader_spec)
        sys.modules["_ccc_export_model"] = mod
        loader_spec.loader.exec_module(mod)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        mod = importlib.import_module(mod_name)
    obj: Any = mod
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _load_checkpoint(module: Any, path: str) -> None:
    """Loads a state dict (plain, or under 'state_dict'/'model'; a DataParallel
    'module.' prefix is stripped) into ``module``, strictly."""
    import torch  # noqa: PLC0415  (only the CLI with --checkpoint needs torch)

    state = torch.load(path, map_location="cpu")
    if isinstance(state, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise SystemExit(f"{path}: expected a state dict, found {type(state).__name__}")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    module.load_state_dict(state, strict=True)


def _parse_alphas(text: Optional[str]) -> Alphas:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 1:
        return int(parts[0])
    return [None if p in ("", "-") else int(p) for p in parts]


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(
        description="Export a PyTorch shift-CNN to ccc: ONNX (.onnx) or ccc's format (.safetensors)."
    )
    p.add_argument("--module", required=True, help="MODULE:FACTORY (or FILE.py:FACTORY) returning the nn.Module")
    p.add_argument("--checkpoint", help="state dict to load into the module (torch.load)")
    p.add_argument("--input", required=True, help="input shape C,H,W, e.g. 1,28,28")
    p.add_argument("-o", "--output", required=True, help="output .onnx (preferred) or .safetensors file")
    p.add_argument("--opset", type=int, default=13, help="ONNX opset of an .onnx output")
    p.add_argument("--name", help="model name (default: the output file's stem)")
    p.add_argument("--classes", type=int, help="check the classifier has this many outputs")
    p.add_argument("--gamma", type=float, help="write [packing] gamma")
    p.add_argument(
        "--alpha", help="alpha for every conv (N) or per conv in order (N,-,N; - = unset; write --alpha=-,N)"
    )
    args = p.parse_args(argv)

    try:
        input_shape = [int(v) for v in args.input.split(",")]
    except ValueError:
        p.error(f"--input must be C,H,W integers, found {args.input!r}")
    if len(input_shape) != 3:
        p.error(f"--input must be C,H,W, found {args.input!r}")
    module = _load_factory(args.module)()
    if args.checkpoint:
        _load_checkpoint(module, args.checkpoint)
    if hasattr(module, "eval"):
        module.eval()
    name = args.name or os.path.splitext(os.path.basename(args.output))[0]
    try:
        if args.output.endswith(".onnx"):
            export_onnx(
                module,
                args.output,
                input_shape=input_shape,
                name=name,
                gamma=args.gamma,
                alphas=_parse_alphas(args.alpha),
                opset=args.opset,
            )
            print(f"wrote {args.output} (ONNX, opset {args.opset})")
            return 0
        result = export(
            module,
            args.output,
            input_shape=input_shape,
            name=name,
            classes=args.classes,
            gamma=args.gamma,
            alphas=_parse_alphas(args.alpha),
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    kinds = [l.kind for l in result.layers]
    print(
        f"wrote {args.output}: {len(kinds)} layers ({kinds.count('conv')} conv), "
        f"{len(result.tensors)} tensors"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
