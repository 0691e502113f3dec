"""VecAttention for torch CUDA tensors, through vecattn's C ABI (ctypes; no compiled extension).

    import vecattn
    out = vecattn.prefill(q, k, v, threshold=0.9, q_pooling_size=64, k_local_size=16,
                          group_k_block=16, causal=True)

q: (batch, num_heads, seq_len, head_dim); k, v: (batch, num_kv_heads, seq_len, head_dim), as in the
original VecAttention_prefill. Any strides with a contiguous last dimension work (a transposed view
of a (batch, seq_len, heads, head_dim) tensor is not copied). Work is enqueued on torch's current
stream; nothing synchronizes unless stats are asked for.

Threads and streams: every function may be called from any thread, on any torch stream, at the same
time; each call's scratch memory is allocated and freed in the order of its own stream, so
concurrent calls never share it (a caller-provided `workspace` tensor must not be given to two calls
that can overlap). Calls can be captured by torch.cuda.graph; return_stats=True cannot (it
synchronizes) and raises instead.

The library is found through $VECATTN_LIB, next to this package, or in the repository's build/.
"""
from __future__ import annotations

import ctypes
import os
import pathlib
import threading
from typing import List, Optional, Sequence, Union

import torch

__all__ = ["prefill", "select", "dense", "pool", "workspace_size", "layer_thresholds", "VecattnError", "PrefillStats",
           "version"]


class VecattnError(RuntimeError):
    """A vecattn call failed; `status` is the C ABI's status name."""

    def __init__(self, status: str, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status


class _Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int), ("shape", ctypes.c_int64 * 4),
                ("stride", ctypes.c_int64 * 4)]


class _Params(ctypes.Structure):
    _fields_ = [("pq", ctypes.c_int), ("bk", ctypes.c_int), ("gk", ctypes.c_int), ("causal", ctypes.c_int),
                ("threshold", ctypes.c_float), ("thresholds", ctypes.POINTER(ctypes.c_float)),
                ("num_thresholds", ctypes.c_int64), ("dense_prefix", ctypes.c_int64)]


class _Stats(ctypes.Structure):
    _fields_ = [("pool_ms", ctypes.c_float), ("select_ms", ctypes.c_float), ("attend_ms", ctypes.c_float),
                ("sparsity", ctypes.c_double), ("chunks", ctypes.c_int), ("density", ctypes.POINTER(ctypes.c_double)),
                ("density_len", ctypes.c_int64), ("density_count", ctypes.c_int64)]


class PrefillStats:
    """What a prefill did: density per q head, sparsity, and the pool/select/attend time split (ms)."""

    def __init__(self, s: _Stats, density: Sequence[float]):
        self.pool_ms, self.select_ms, self.attend_ms = s.pool_ms, s.select_ms, s.attend_ms
        self.sparsity, self.chunks, self.density = s.sparsity, s.chunks, list(density)

    def __repr__(self):
        return (f"PrefillStats(sparsity={self.sparsity:.4f}, pool_ms={self.pool_ms:.3f}, "
                f"select_ms={self.select_ms:.3f}, attend_ms={self.attend_ms:.3f}, chunks={self.chunks})")


_DTYPES = {torch.float16: 0, torch.bfloat16: 1}
_lib = None
_runtimes = {}
_init_lock = threading.Lock()  # one library load and one runtime per device, whatever the threads


def _library_path() -> str:
    env = os.environ.get("VECATTN_LIB")
    if env:
        return env
    here = pathlib.Path(__file__).resolve().parent
    for candidate in (here / "libvecattn.so", here.parent.parent / "build" / "runtime" / "libvecattn.so"):
        if candidate.exists():
            return str(candidate)
    raise VecattnError("not_found", "libvecattn.so was not found: build it (cmake --build build --target vecattn) "
                                    "or set VECATTN_LIB to its path")


def _load():
    global _lib
    if _lib is not None:
        return _lib
    with _init_lock:
        if _lib is None:
            _lib = _open_library()
    return _lib


def _open_library():
    lib = ctypes.CDLL(_library_path())
    T, P = ctypes.POINTER(_Tensor), ctypes.POINTER(_Params)
    sig = {
        "vecattn_create": [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)],
        "vecattn_prefill": [ctypes.c_void_p, T, T, T, T, P, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                            ctypes.POINTER(_Stats)],
        "vecattn_select": [ctypes.c_void_p, T, T, P, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t],
        "vecattn_dense": [ctypes.c_void_p, T, T, T, T, ctypes.c_int, ctypes.c_void_p],
        "vecattn_pool": [ctypes.c_void_p, T, T, ctypes.c_int, ctypes.c_void_p],
        "vecattn_workspace_size": [ctypes.c_void_p, T, T, P, ctypes.POINTER(ctypes.c_size_t)],
        "vecattn_layer_thresholds": [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float),
                                     ctypes.c_int64, ctypes.POINTER(ctypes.c_int64)],
    }
    for name, args in sig.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, ctypes.c_int
    lib.vecattn_last_error.restype = ctypes.c_char_p
    lib.vecattn_status_name.restype = ctypes.c_char_p
    lib.vecattn_status_name.argtypes = [ctypes.c_int]
    lib.vecattn_version.restype = ctypes.c_char_p
    return lib


def version() -> str:
    return _load().vecattn_version().decode()


def _check(status: int):
    if status != 0:
        lib = _load()
        raise VecattnError(lib.vecattn_status_name(status).decode(), lib.vecattn_last_error().decode())


def _runtime(device: torch.device):
    index = device.index if device.index is not None else torch.cuda.current_device()
    handle = _runtimes.get(index)
    if handle is None:
        lib = _load()
        with _init_lock:
            handle = _runtimes.get(index)
            if handle is None:
                torch.cuda.init()  # the primary context vecattn shares with torch
                handle = ctypes.c_void_p()
                _check(lib.vecattn_create(index, None, ctypes.byref(handle)))
                _runtimes[index] = handle
    return handle


def _tensor(t: torch.Tensor, name: str, rank4: bool = True) -> _Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, not {type(t).__name__}")
    if not t.is_cuda:
        raise ValueError(f"{name} is on {t.device}: vecattn needs CUDA tensors")
    if t.dtype not in _DTYPES:
        raise ValueError(f"{name} is {t.dtype}: vecattn supports torch.float16 and torch.bfloat16")
    if rank4 and t.dim() != 4:
        raise ValueError(f"{name} has shape {tuple(t.shape)}: expected 4 dims (batch, heads, seq_len, head_dim)")
    return _Tensor(t.data_ptr(), _DTYPES[t.dtype], (ctypes.c_int64 * 4)(*t.shape), (ctypes.c_int64 * 4)(*t.stride()))


def _params(q: torch.Tensor, threshold, q_pooling_size, k_local_size, group_k_block, causal, dense_prefix):
    p = _Params(q_pooling_size, k_local_size, group_k_block, int(bool(causal)), 0.9, None, 0, dense_prefix)
    keep = None
    if threshold is None:
        pass
    elif isinstance(threshold, (int, float)):
        p.threshold = float(threshold)
    else:  # one per q head: a sequence or a tensor of shape (num_heads,)
        values = threshold.detach().float().cpu().reshape(-1).tolist() if isinstance(threshold, torch.Tensor) \
            else [float(x) for x in threshold]
        keep = (ctypes.c_float * len(values))(*values)
        p.thresholds, p.num_thresholds = ctypes.cast(keep, ctypes.POINTER(ctypes.c_float)), len(values)
    return p, keep


def _same_device(*ts):
    devices = {t.device for t in ts}
    if len(devices) != 1:
        raise ValueError(f"q, k, v (and out) must be on one device, got {sorted(str(d) for d in devices)}")


def _stream(device: torch.device) -> int:
    return torch.cuda.current_stream(device).cuda_stream


def prefill(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, threshold: Union[float, Sequence[float], torch.Tensor] = 0.9,
            q_pooling_size: int = 64, k_local_size: int = 16, group_k_block: int = 16, causal: bool = True,
            chunk_size: Optional[int] = None, dense_prefix: int = 0, out: Optional[torch.Tensor] = None,
            workspace: Optional[torch.Tensor] = None, return_stats: bool = False):
    """VecAttention prefill (pool, select, sparse attention), as the original VecAttention_prefill.

    chunk_size is accepted for compatibility and ignored: it never changed results, and vecattn
    bounds its memory by its own workspace (see workspace_size). Returns out, or (out, stats).
    The plain form (no out, workspace or stats) runs as the operator torch.ops.vecattn.prefill, so
    torch.compile traces it (fullgraph) and CUDA graphs capture it.
    """
    del chunk_size
    if _OPS and out is None and workspace is None and not return_stats:
        scalar, per_head = _threshold_args(threshold)
        return torch.ops.vecattn.prefill(q, k, v, scalar, per_head, q_pooling_size, k_local_size, group_k_block,
                                         bool(causal), int(dense_prefix))
    return _prefill_eager(q, k, v, threshold, q_pooling_size, k_local_size, group_k_block, causal, dense_prefix, out,
                          workspace, return_stats)


def _threshold_args(threshold):
    """(scalar, per-head list or None): the operator's form of a threshold argument."""
    if isinstance(threshold, (int, float)):
        return float(threshold), None
    if isinstance(threshold, torch.Tensor):
        return 0.9, [float(x) for x in threshold.detach().float().cpu().reshape(-1).tolist()]
    return 0.9, [float(x) for x in threshold]


def _prefill_eager(q, k, v, threshold, q_pooling_size, k_local_size, group_k_block, causal, dense_prefix, out,
                   workspace, return_stats):
    tensors = [q, k, v] + ([out] if out is not None else [])
    for t, n in zip(tensors, ["q", "k", "v", "out"]):
        _tensor(t, n)
    _same_device(*tensors)
    if out is None:
        out = torch.empty_like(q, memory_format=torch.contiguous_format)
    p, _keep = _params(q, threshold, q_pooling_size, k_local_size, group_k_block, causal, dense_prefix)
    ws_ptr, ws_bytes = (workspace.data_ptr(), workspace.numel() * workspace.element_size()) if workspace is not None else (None, 0)
    stats, density = None, None
    if return_stats:
        density = (ctypes.c_double * q.shape[1])()
        stats = _Stats()
        stats.density, stats.density_len = ctypes.cast(density, ctypes.POINTER(ctypes.c_double)), q.shape[1]
    tq, tk, tv, to = (_tensor(t, n) for t, n in zip((q, k, v, out), "q k v out".split()))
    _check(_load().vecattn_prefill(_runtime(q.device), tq, tk, tv, to, p, _stream(q.device), ws_ptr, ws_bytes,
                                   ctypes.byref(stats) if stats is not None else None))
    return (out, PrefillStats(stats, density)) if return_stats else out


def layer_thresholds(path: str, model: str, layer: int) -> list:
    """One layer's calibrated thresholds (a vecattn-calibrate JSON file), one per q head: pass them
    as prefill's threshold argument."""
    lib = _load()
    count = ctypes.c_int64()
    _check(lib.vecattn_layer_thresholds(str(path).encode(), model.encode(), layer, None, 0, ctypes.byref(count)))
    out = (ctypes.c_float * count.value)()
    _check(lib.vecattn_layer_thresholds(str(path).encode(), model.encode(), layer, out, count.value, ctypes.byref(count)))
    return list(out)


def workspace_size(q: torch.Tensor, k: torch.Tensor, threshold=0.9, q_pooling_size: int = 64, k_local_size: int = 16,
                   group_k_block: int = 16, causal: bool = True) -> int:
    """Bytes of workspace that let prefill process every (batch, head) at once (capped by the budget)."""
    p, _keep = _params(q, threshold, q_pooling_size, k_local_size, group_k_block, causal, 0)
    size = ctypes.c_size_t()
    _check(_load().vecattn_workspace_size(_runtime(q.device), _tensor(q, "q"), _tensor(k, "k"), p, ctypes.byref(size)))
    return size.value


def select(q: torch.Tensor, k: torch.Tensor, threshold=0.9, q_pooling_size: int = 64, k_local_size: int = 16,
           group_k_block: int = 16, causal: bool = True) -> torch.Tensor:
    """The selection as a bool tensor (batch, num_heads, ceil(S / q_pooling_size), S): True where key
    j is selected for query block i (sink and diagonal blocks are attended without being selected)."""
    _tensor(q, "q"), _tensor(k, "k")
    _same_device(q, k)
    b, h, s = q.shape[0], q.shape[1], q.shape[2]
    nq, words = (s + q_pooling_size - 1) // q_pooling_size, (s + 63) // 64
    mask = torch.empty((b, h, nq, words), dtype=torch.int64, device=q.device)
    p, _keep = _params(q, threshold, q_pooling_size, k_local_size, group_k_block, causal, 0)
    _check(_load().vecattn_select(_runtime(q.device), _tensor(q, "q"), _tensor(k, "k"), p, mask.data_ptr(),
                                  _stream(q.device), None, 0))
    bits = (mask.unsqueeze(-1) >> torch.arange(64, device=q.device)) & 1
    return bits.reshape(b, h, nq, words * 64)[..., :s].bool()


def dense(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True,
          out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Dense attention with vecattn's own kernel (the baseline); torch.ops.vecattn.dense without out."""
    if _OPS and out is None:
        return torch.ops.vecattn.dense(q, k, v, bool(causal))
    return _dense_eager(q, k, v, causal, out)


def _dense_eager(q, k, v, causal, out):
    for t, n in zip((q, k, v), "q k v".split()):
        _tensor(t, n)
    _same_device(q, k, v)
    out = torch.empty_like(q, memory_format=torch.contiguous_format) if out is None else out
    _check(_load().vecattn_dense(_runtime(q.device), _tensor(q, "q"), _tensor(k, "k"), _tensor(v, "v"),
                                 _tensor(out, "out"), int(bool(causal)), _stream(q.device)))
    return out


def pool(q: torch.Tensor, q_pooling_size: int = 64) -> torch.Tensor:
    """Mean of each block of q_pooling_size query rows: (batch, heads, ceil(S / q_pooling_size), head_dim)."""
    _tensor(q, "q")
    b, h, s, d = q.shape
    out = torch.empty((b, h, (s + q_pooling_size - 1) // q_pooling_size, d), dtype=q.dtype, device=q.device)
    _check(_load().vecattn_pool(_runtime(q.device), _tensor(q, "q"), _tensor(out, "out"), q_pooling_size,
                                _stream(q.device)))
    return out


def _register_ops() -> bool:
    """torch.ops.vecattn.prefill and .dense, with fake (meta) implementations for tracing."""
    if not hasattr(torch, "library") or not hasattr(torch.library, "custom_op"):
        return False  # torch < 2.4: the functions above run eagerly

    @torch.library.custom_op("vecattn::prefill", mutates_args=(), device_types="cuda")
    def prefill_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, threshold: float,
                   thresholds: Optional[List[float]], q_pooling_size: int, k_local_size: int, group_k_block: int,
                   causal: bool, dense_prefix: int) -> torch.Tensor:
        return _prefill_eager(q, k, v, thresholds if thresholds is not None else threshold, q_pooling_size,
                              k_local_size, group_k_block, causal, dense_prefix, None, None, False)

    @prefill_op.register_fake
    def _prefill_fake(q, k, v, threshold, thresholds, q_pooling_size, k_local_size, group_k_block, causal,
                      dense_prefix):
        return torch.empty_like(q, memory_format=torch.contiguous_format)

    @torch.library.custom_op("vecattn::dense", mutates_args=(), device_types="cuda")
    def dense_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
        return _dense_eager(q, k, v, causal, None)

    @dense_op.register_fake
    def _dense_fake(q, k, v, causal):
        return torch.empty_like(q, memory_format=torch.contiguous_format)

    return True


_OPS = _register_ops()
