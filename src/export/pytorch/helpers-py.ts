// The fixed Python that model.py carries besides the generated forward():
// the nested parameter scopes, the few ops PyTorch spells differently, and
// safetensors reading and writing (the format is an 8-byte header length, a
// JSON header and raw little-endian data: simple enough to need no package).
export const modelHelpers = String.raw`
class _Scope(nn.Module):
    """One level of the parameter keys (h, h.0, h.0.attn, ...)."""

    @staticmethod
    def add_parameter(root, key, param):
        *path, leaf = key.split(".")
        mod = root
        for part in path:
            if part not in mod._modules:
                mod.add_module(part, _Scope())
            mod = mod._modules[part]
        mod.register_parameter(leaf, param)


def _causal_mask(q, k, offset, device):
    """Additive mask [q, k]: 0 where key j <= query i + offset, else -inf."""
    rows = torch.arange(q, device=device).unsqueeze(1)
    cols = torch.arange(k, device=device).unsqueeze(0)
    zero = torch.zeros((), device=device)
    return torch.where(cols <= rows + offset, zero, torch.full((), -math.inf, device=device))


def _dropout_mask(training, shape, p, device):
    """Dropout's mask in training: 0 with probability p, else 1 / (1 - p); ones in eval()."""
    if not training:
        return torch.ones(shape, device=device)
    return (torch.rand(shape, device=device) >= p).float() / (1.0 - p)


def _pad(x, axis, before, after):
    """Zeros before and after x along one axis."""
    shape = list(x.shape)
    parts = []
    if before:
        shape[axis] = before
        parts.append(x.new_zeros(shape))
    parts.append(x)
    if after:
        shape[axis] = after
        parts.append(x.new_zeros(shape))
    return torch.cat(parts, dim=axis)


_DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8), "I64": (torch.int64, 8), "I32": (torch.int32, 4)}


def load_safetensors(path):
    """The tensors of a .safetensors file, and its metadata."""
    import json
    import struct

    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for key, info in header.items():
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor {key} has dtype {info['dtype']}, which this reader does not handle")
        dtype, _size = _DTYPES[info["dtype"]]
        start, end = info["data_offsets"]
        buf = bytearray(data[base + start : base + end])
        t = torch.frombuffer(buf, dtype=dtype) if end > start else torch.empty(0, dtype=dtype)
        out[key] = t.reshape(info["shape"]).clone()
    return out, meta


def save_safetensors(path, tensors, metadata=None):
    """Writes float32 tensors as a .safetensors file (keys sorted), atomically."""
    import json
    import os
    import struct

    header = {}
    blobs = []
    offset = 0
    for key in sorted(tensors):
        t = tensors[key].detach().to("cpu", torch.float32).contiguous()
        raw = t.numpy().astype("<f4").tobytes()
        header[key] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)
`.trim();
