#!/usr/bin/env python3
"""Export a PyTorch shift-CNN to ccc's model format (docs/DESIGN.md section 2).

The format is one ``.safetensors`` file whose ``__metadata__`` key ``ccc.graph`` holds
a TOML graph naming the tensors of each layer. This module writes it from an
``nn.Module`` of the reference kind: a *sequential* network of

* ``Conv2d``        -> ``conv``      (square kernel, any k/stride/padding, bias or not;
                                      groups == 1, dilation == 1, zero padding only)
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

Why no third-party dependencies: the writer and the TOML emitter are pure functions
over bytes and plain values so that they can be tested where neither torch nor numpy
is installed (CI). The exporter touches a tensor only through ``.shape``,
``.detach()``, ``.cpu()``, ``.contiguous()``, ``.float()``, ``.flatten()`` and
``.tolist()`` (plus ``.numpy()`` when numpy is importable, for speed), so duck-typed
fakes stand in for torch in the tests. torch itself is imported only by the CLI, and
only to load a checkpoint.

Usage as a library::

    from export_pytorch import export
    export(model.eval(), "model.safetensors", input_shape=(1, 28, 28), name="fmnist",
           gamma=1.75, alphas=8)

Usage as a CLI::

    python3 tools/export_pytorch.py --module pkg.mod:factory --checkpoint ckpt.pt \\
        --input 1,28,28 -o model.safetensors
"""

from __future__ import annotations

import argparse
import array
import importlib
import importlib.util
import json
import math
import os
import struct
import sys
import tempfile
from collections import abc
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

#: Metadata key holding the graph TOML (docs/DESIGN.md section 2).
GRAPH_KEY = "ccc.graph"

#: One tensor for :func:`write_safetensors`: (dtype, shape, little-endian raw bytes).
TensorEntry = Tuple[str, List[int], bytes]

#: Bytes per element of every dtype the writer accepts (the safetensors names).
DTYPE_SIZES: Dict[str, int] = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}

#: A TOML scalar the emitter can write.
TomlScalar = Union[str, int, float, bool]

#: ``alphas`` argument of :func:`export`: one α for every conv, one per conv in order
#: (``None`` entries leave a conv without α), or a mapping from conv module path to α.
Alphas = Union[None, int, Sequence[Optional[int]], Mapping[str, int]]


# --------------------------------------------------------------------------------------
# safetensors writer (pure)
# --------------------------------------------------------------------------------------


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def safetensors_bytes(tensors: Mapping[str, TensorEntry], metadata: Mapping[str, str]) -> bytes:
    """Serialises tensors and string metadata into safetensors bytes.

    Layout: u64 little-endian header length, the JSON header padded with spaces to a
    multiple of 8 bytes (so that the data start 8-aligned, as the reference writer
    does), then every tensor's raw bytes back to back. Tensors are laid out sorted by
    name and the header keys come in a fixed order, so equal input gives equal bytes.
    """
    header: Dict[str, Any] = {}
    if metadata:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValueError(f"metadata must map str to str, found {key!r}: {value!r}")
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    chunks: List[bytes] = []
    offset = 0
    for name in sorted(tensors):
        if not isinstance(name, str) or not name:
            raise ValueError(f"tensor name must be a non-empty string, found {name!r}")
        if name == "__metadata__":
            raise ValueError("`__metadata__` is reserved and cannot name a tensor")
        dtype, shape, data = tensors[name]
        if dtype not in DTYPE_SIZES:
            raise ValueError(f"tensor `{name}`: unsupported dtype {dtype!r}")
        dims = [int(d) for d in shape]
        if any(d < 0 for d in dims):
            raise ValueError(f"tensor `{name}`: negative dimension in shape {dims}")
        expected = _numel(dims) * DTYPE_SIZES[dtype]
        if len(data) != expected:
            raise ValueError(
                f"tensor `{name}`: {len(data)} bytes of data, but {dtype} {dims} needs {expected}"
            )
        header[name] = {"dtype": dtype, "shape": dims, "data_offsets": [offset, offset + len(data)]}
        chunks.append(bytes(data))
        offset += len(data)
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def write_file_atomic(path: Union[str, os.PathLike], data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file in the same directory and
    ``os.replace``, so that a reader never sees a half-written model and a failed
    export leaves any previous file untouched."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ccc-export-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
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
    """Writes a safetensors file atomically (see :func:`safetensors_bytes`)."""
    write_file_atomic(path, safetensors_bytes(tensors, metadata))


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
# Tensors (duck-typed: torch tensors or test fakes)
# --------------------------------------------------------------------------------------

_NUMPY: Any = None
_NUMPY_TRIED = False


def _numpy() -> Any:
    """numpy if importable (fast path for large tensors), else None."""
    global _NUMPY, _NUMPY_TRIED
    if not _NUMPY_TRIED:
        _NUMPY_TRIED = True
        try:
            import numpy  # noqa: PLC0415  (optional, lazy)

            _NUMPY = numpy
        except ImportError:
            _NUMPY = None
    return _NUMPY


def is_tensor(t: Any) -> bool:
    """Whether ``t`` looks like a tensor (has what the exporter needs)."""
    return all(hasattr(t, a) for a in ("shape", "detach", "flatten", "tolist"))


def tensor_shape(t: Any) -> List[int]:
    return [int(d) for d in t.shape]


def tensor_values(t: Any) -> List[Any]:
    """All elements in row-major order as Python numbers."""
    return list(t.detach().cpu().contiguous().flatten().tolist())


def f32_bytes(t: Any) -> bytes:
    """Little-endian f32 bytes of a tensor, converting its dtype if needed."""
    c = t.detach().cpu().contiguous().float()
    np = _numpy()
    if np is not None and hasattr(c, "numpy"):
        try:
            return c.numpy().astype("<f4", copy=False).tobytes()
        except (RuntimeError, TypeError):  # e.g. torch built without numpy support
            pass
    a = array.array("f", [float(v) for v in c.flatten().tolist()])
    if sys.byteorder == "big":
        a.byteswap()
    return a.tobytes()


def f32_entry(t: Any, shape: Optional[List[int]] = None) -> TensorEntry:
    """A tensor as an F32 entry, optionally reshaped (same element count)."""
    own = tensor_shape(t)
    shape = own if shape is None else shape
    if _numel(own) != _numel(shape):
        raise ValueError(f"cannot view a {own} tensor as {shape}")
    return ("F32", shape, f32_bytes(t))


def f32_const(value: float, n: int) -> TensorEntry:
    """An F32 vector of ``n`` copies of ``value`` (BatchNorm without affine)."""
    return ("F32", [n], struct.pack(f"<{n}f", *([value] * n)))


def i32_entry(values: Sequence[int], shape: List[int]) -> TensorEntry:
    return ("I32", shape, struct.pack(f"<{len(values)}i", *values))


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
    """The conv's pruning mask tensor: ``weight_mask`` (torch.nn.utils.prune), the
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
    wshape = tensor_shape(m.weight)
    if len(wshape) != 2 or wshape[1] != st.shape[0]:
        raise ValueError(f"{where}: weight shape {wshape} does not take {st.shape[0]} inputs")
    fields: Dict[str, TomlScalar] = {}
    fields["weight"] = st.add(_tensor_name(path, "weight"), f32_entry(m.weight), where)
    bias = getattr(m, "bias", None)
    if bias is not None:
        fields["bias"] = st.add(_tensor_name(path, "bias"), f32_entry(bias), where)
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
    if "Conv2d" in names:
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
    convs = [l for l in layers if l.kind == "conv"]
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
        description="Export a PyTorch shift-CNN to ccc's .safetensors model format."
    )
    p.add_argument("--module", required=True, help="MODULE:FACTORY (or FILE.py:FACTORY) returning the nn.Module")
    p.add_argument("--checkpoint", help="state dict to load into the module (torch.load)")
    p.add_argument("--input", required=True, help="input shape C,H,W, e.g. 1,28,28")
    p.add_argument("-o", "--output", required=True, help="output .safetensors file")
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
