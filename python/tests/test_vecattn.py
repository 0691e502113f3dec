"""vecattn's Python binding against torch's own attention, on a CUDA device.

Run: VECATTN_LIB=path/to/libvecattn.so python3 python/tests/test_vecattn.py   (or with pytest)
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

if not os.environ.get("VECATTN_TEST_INSTALLED"):  # else: the installed package (pip install ./python)
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import vecattn  # noqa: E402


def rel_err(out, ref):
    return ((out.float() - ref.float()).norm() / ref.float().norm()).item()


def tol(dtype):
    return 1e-2 if dtype == torch.bfloat16 else 4e-3


def torch_attention(q, k, v, mask=None, causal=False):
    """fp32 reference; GQA by repeating kv heads; mask: bool (B, H, S, S), True = attend."""
    g = q.shape[1] // k.shape[1]
    k, v = (t.repeat_interleave(g, dim=1).float() for t in (k, v))
    return F.scaled_dot_product_attention(q.float(), k, v, attn_mask=mask, is_causal=causal and mask is None)


def attended_mask(sel, s, pq, causal):
    """The attended sets of docs/semantics.md §5 as a bool (B, H, S, S) from select()'s block selection."""
    b, h, nq, _ = sel.shape
    rows = torch.arange(s, device=sel.device)
    block = rows // pq
    m = sel[:, :, block, :]  # (B, H, S, S): the row's block selection
    if causal:
        keys = rows[None, :]
        sink = keys < min(pq, s)
        diag = (keys >= (block * pq)[:, None]) & (keys <= rows[:, None])
        m = (m | sink | diag) & (keys <= rows[:, None])
    return m


def randn(*shape, dtype):
    return torch.randn(*shape, device="cuda", dtype=dtype)


def test_dense_matches_torch():
    for dtype in (torch.bfloat16, torch.float16):
        for causal in (True, False):
            q = randn(2, 4, 777, 128, dtype=dtype)
            k, v = randn(2, 2, 777, 128, dtype=dtype), randn(2, 2, 777, 128, dtype=dtype)
            err = rel_err(vecattn.dense(q, k, v, causal=causal), torch_attention(q, k, v, causal=causal))
            assert err < tol(dtype), (dtype, causal, err)


def test_prefill_matches_torch_on_its_selection():
    for dtype, causal, pq, bk, gk, s in ((torch.bfloat16, True, 64, 16, 16, 1000), (torch.float16, False, 128, 32, 4, 900),
                                         (torch.bfloat16, True, 128, 64, 1, 1500)):
        # BSHD storage seen as (B, H, S, D): a strided view, not copied by vecattn.
        q = randn(1, s, 4, 64, dtype=dtype).transpose(1, 2)
        k, v = (randn(1, s, 2, 64, dtype=dtype).transpose(1, 2) for _ in range(2))
        kw = dict(threshold=0.7, q_pooling_size=pq, k_local_size=bk, group_k_block=gk, causal=causal)
        out, stats = vecattn.prefill(q, k, v, return_stats=True, **kw)
        sel = vecattn.select(q, k, **kw)
        ref = torch_attention(q, k, v, mask=attended_mask(sel, s, pq, causal))
        err = rel_err(out, ref)
        assert err < tol(dtype), (dtype, causal, pq, err)
        assert 0 < stats.sparsity < 1 and len(stats.density) == 4, stats
        # The stats agree with the selection.
        m = attended_mask(sel, s, pq, causal).float()
        visible = (torch.arange(s, device="cuda") + 1).float() if causal else torch.full((s,), float(s), device="cuda")
        density = (m.sum(-1) / visible).mean(dim=(0, 2))
        assert torch.allclose(density.double().cpu(), torch.tensor(stats.density, dtype=torch.float64), atol=1e-6)


def test_vertical_columns_are_selected_and_recall_is_high():
    torch.manual_seed(0)
    s, d = 4096, 128
    direction = torch.randn(d, device="cuda")
    q = (torch.randn(1, 2, s, d, device="cuda") + 3 * direction).to(torch.bfloat16)
    k = torch.randn(1, 2, s, d, device="cuda")
    strong = torch.rand(s, device="cuda") < 0.02
    k[:, :, strong] += 4 * direction
    k = k.to(torch.bfloat16)
    v = randn(1, 2, s, d, dtype=torch.bfloat16)
    out, stats = vecattn.prefill(q, k, v, threshold=0.9, return_stats=True)
    full = torch_attention(q, k, v, causal=True)
    assert stats.sparsity > 0.8, stats
    assert rel_err(out, full) < 0.1, rel_err(out, full)  # sparse, yet close to full attention here


def test_per_head_thresholds_and_streams():
    q, k, v = (randn(1, 4, 600, 64, dtype=torch.float16) for _ in range(3))
    t = torch.tensor([0.5, 0.7, 0.9, 1.0])
    ref = vecattn.prefill(q, k, v, threshold=t)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        out = vecattn.prefill(q, k, v, threshold=[0.5, 0.7, 0.9, 1.0])
    stream.synchronize()
    assert torch.equal(out, ref)
    dense_sel = vecattn.select(q, k, threshold=[0.01] * 4).sum().item()
    strict_sel = vecattn.select(q, k, threshold=[1.0] * 4).sum().item()
    assert dense_sel > strict_sel > 0


def _concurrency_inputs():
    """Two prefill shapes big enough that calls on two streams overlap on the device."""
    g = torch.Generator(device="cuda").manual_seed(torch.seed() % (1 << 31))
    shapes = [((1, 16, 8192, 128), (1, 4, 8192, 128), 0.8, True), ((1, 8, 6000, 64), (1, 8, 6000, 64), 0.9, False)]
    cases = []
    for qs, ks, t, causal in shapes:
        q = torch.randn(qs, device="cuda", generator=g).to(torch.bfloat16)
        k, v = (torch.randn(ks, device="cuda", generator=g).to(torch.bfloat16) for _ in range(2))
        cases.append(dict(q=q, k=k, v=v, threshold=t, causal=causal))
    alone = [vecattn.prefill(**c) for c in cases]
    torch.cuda.synchronize()
    return cases, alone


def test_two_streams_equal_calls_alone():
    cases, alone = _concurrency_inputs()
    streams = [torch.cuda.Stream(), torch.cuda.Stream()]
    outs = []
    for it in range(20):  # enqueue everything, synchronize once
        for j, stream in enumerate(streams):
            c = (it + j) % len(cases)
            with torch.cuda.stream(stream):
                outs.append((c, vecattn.prefill(**cases[c])))
    torch.cuda.synchronize()
    differ = sum(not torch.equal(o, alone[c]) for c, o in outs)
    assert differ == 0, f"{differ} of {len(outs)} outputs differ from the call alone"


def test_two_threads_equal_calls_alone():
    import threading
    cases, alone = _concurrency_inputs()
    results, errors = [[], []], []

    def work(t):
        try:
            stream = torch.cuda.Stream()
            with torch.cuda.stream(stream):
                for it in range(20):
                    c = (it + t) % len(cases)
                    results[t].append((c, vecattn.prefill(**cases[c])))
            stream.synchronize()
        except Exception as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    outs = results[0] + results[1]
    differ = sum(not torch.equal(o, alone[c]) for c, o in outs)
    assert differ == 0, f"{differ} of {len(outs)} outputs differ from the call alone"


def test_graph_capture_without_workspace():
    q, k, v = (randn(1, 4, 3000, 128, dtype=torch.bfloat16) for _ in range(3))
    ref = vecattn.prefill(q, k, v, threshold=0.8)
    out = torch.empty_like(q)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        vecattn.prefill(q, k, v, threshold=0.8, out=out)
    for _ in range(3):
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(out, ref)
    # Stats synchronize: refused on a capturing stream, with the reason.
    try:
        with torch.cuda.graph(torch.cuda.CUDAGraph()):
            vecattn.prefill(q, k, v, return_stats=True)
    except vecattn.VecattnError as e:
        assert "captured" in str(e), str(e)
    else:
        raise AssertionError("prefill with stats under capture did not raise")


def test_torch_compile_fullgraph_equals_eager():
    assert vecattn._OPS, "torch.ops.vecattn is not registered (torch < 2.4?)"

    class Attention(torch.nn.Module):
        def forward(self, q, k, v):
            return (vecattn.prefill(q, k, v, threshold=[0.8, 0.9, 0.8, 0.9], q_pooling_size=64),
                    vecattn.prefill(q, k, v, threshold=0.9, causal=False, q_pooling_size=128),
                    vecattn.dense(q, k, v))

    q, k, v = (randn(1, 4, 2000, 128, dtype=torch.bfloat16) for _ in range(3))
    eager = Attention()(q, k, v)
    torch._dynamo.reset()
    compiled = torch.compile(Attention(), fullgraph=True)
    for _ in range(2):
        got = compiled(q, k, v)
        for e, g in zip(eager, got):
            assert torch.equal(e, g), "compiled output differs from eager"
    # The operator is what the graph holds.
    from torch._dynamo.testing import CompileCounter
    torch._dynamo.reset()
    counter = CompileCounter()
    torch.compile(Attention(), backend=counter, fullgraph=True)(q, k, v)
    assert counter.frame_count == 1 and counter.op_count >= 3, (counter.frame_count, counter.op_count)


def test_graph_capture_replays_new_inputs():
    q, k, v = (randn(1, 4, 3000, 128, dtype=torch.bfloat16) for _ in range(3))
    graph = torch.cuda.CUDAGraph()
    vecattn.prefill(q, k, v, threshold=0.8)  # warm-up outside the capture (module loads)
    with torch.cuda.graph(graph):
        out = vecattn.prefill(q, k, v, threshold=0.8)  # the operator form: its output is the graph's
    for _ in range(2):
        for t in (q, k, v):
            t.copy_(torch.randn_like(t))
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(out, vecattn.prefill(q, k, v, threshold=0.8)), "replay differs from eager"


def test_layer_thresholds_from_a_file():
    import json
    import tempfile
    rows = [{"model": "m", "layer": 1, "head": h, "threshold": 0.5 + 0.1 * h} for h in range(4)]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"format": "vecattn-thresholds", "version": 1, "rows": rows}, f)
    t = vecattn.layer_thresholds(f.name, "m", 1)
    assert [round(x, 5) for x in t] == [0.5, 0.6, 0.7, 0.8], t
    q, k, v = (randn(1, 4, 700, 128, dtype=torch.bfloat16) for _ in range(3))
    assert torch.equal(vecattn.prefill(q, k, v, threshold=t), vecattn.prefill(q, k, v, threshold=torch.tensor(t)))
    try:
        vecattn.layer_thresholds(f.name, "m", 3)
    except vecattn.VecattnError as e:
        assert "no thresholds for layer 3" in str(e), str(e)
    else:
        raise AssertionError("a missing layer did not raise")


def test_pool():
    q = randn(2, 3, 1000, 128, dtype=torch.bfloat16)
    p = vecattn.pool(q, 64)
    blocks = [q[:, :, i:i + 64].float().mean(dim=2) for i in range(0, 1000, 64)]
    ref = torch.stack(blocks, dim=2)
    assert p.shape == (2, 3, 16, 128)
    assert (p.float() - ref).abs().max().item() < 1e-2


def test_errors_are_clear():
    q, k, v = (randn(1, 2, 256, 128, dtype=torch.bfloat16) for _ in range(3))
    cases = [
        (lambda: vecattn.prefill(q.cpu(), k, v), ValueError, "needs CUDA tensors"),
        (lambda: vecattn.prefill(q.float(), k, v), ValueError, "torch.float16 and torch.bfloat16"),
        (lambda: vecattn.prefill(q[0], k, v), ValueError, "expected 4 dims"),
        (lambda: vecattn.prefill(q, k[:, :, :100], v), vecattn.VecattnError, "k: shape"),
        (lambda: vecattn.prefill(q, k, v, threshold=1.5), vecattn.VecattnError, "outside (0, 1]"),
        (lambda: vecattn.prefill(q, k, v, threshold=[0.9]), vecattn.VecattnError, "one per q head"),
        (lambda: vecattn.prefill(q, k, v, q_pooling_size=32), vecattn.VecattnError, "pq (q_pooling_size) 32"),
        (lambda: vecattn.prefill(q, k, v, k_local_size=128), vecattn.VecattnError, "bk (k_local_size) 128"),
        (lambda: vecattn.prefill(q, k, v, out=q), vecattn.VecattnError, "out overlaps q"),
        (lambda: vecattn.dense(q[..., :80].contiguous(), k[..., :80].contiguous(), v[..., :80].contiguous()),
         vecattn.VecattnError, "head_dim 80 is not supported"),
    ]
    for fn, exc, text in cases:
        try:
            fn()
        except exc as e:
            assert text in str(e), (text, str(e))
        else:
            raise AssertionError(f"no {exc.__name__} for {text}")


if __name__ == "__main__":
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    failed = 0
    for name, fn in tests:
        try:
            fn()
            print(f"PASS {name}")
        except Exception as e:  # report every failure, then exit non-zero
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
    print(f"{len(tests) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
