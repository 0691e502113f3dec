"""torch SDPA (cuDNN and flash backends) on the shapes vecattn-bench times, in the same run.

Usage: python3 bench/peer_sdpa.py --seq-len 32768,131072 [--heads 32 --head-dim 128 --causal 1]
Prints one line per (S, backend): median ms over --reps after warm-up, and TFLOP/s.
"""
import argparse

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq-len", default="32768")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--causal", type=int, default=1)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--csv", help="also write 'seq_len,method,ms' lines here (vecattn-bench --peers reads them)")
    a = ap.parse_args()
    csv = open(a.csv, "w") if a.csv else None
    if csv:
        csv.write("seq_len,method,ms\n")
    dev = torch.device("cuda")
    print(f"# torch {torch.__version__}, {torch.cuda.get_device_name()}, B={a.batch} H={a.heads} D={a.head_dim} "
          f"bf16 {'causal' if a.causal else 'noncausal'}")
    print(f"{'S':>8} {'backend':>8} {'ms':>10} {'TFLOP/s':>9}")
    for s in [int(x) for x in a.seq_len.split(",")]:
        q, k, v = (torch.randn(a.batch, a.heads, s, a.head_dim, device=dev, dtype=torch.bfloat16) for _ in range(3))
        pairs = a.batch * a.heads * (s * (s + 1) / 2 if a.causal else s * s)
        for name, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)):
            try:
                with sdpa_kernel(backend):
                    f = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=bool(a.causal))
                    f()
                    torch.cuda.synchronize()
                    times = []
                    for _ in range(a.reps):
                        b, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                        b.record()
                        f()
                        e.record()
                        e.synchronize()
                        times.append(b.elapsed_time(e))
                times.sort()
                ms = times[len(times) // 2]
                print(f"{s:>8} {name:>8} {ms:>10.2f} {4 * pairs * a.head_dim / ms / 1e9:>9.1f}", flush=True)
                if csv:
                    csv.write(f"{s},{name},{ms:.4f}\n")
                    csv.flush()
            except Exception as ex:  # a backend may refuse a shape
                print(f"{s:>8} {name:>8} failed: {str(ex).splitlines()[0][:80]}", flush=True)
        del q, k, v
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
