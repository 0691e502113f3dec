"""Synthetic activation dumps for vecattn-calibrate: one .safetensors file per layer holding q
[1, Hq, S, D] and k [1, Hkv, S, D] (bf16), with a vertical-vector pattern whose sharpness varies
by head and layer, so heads differ in how sparse they can be.

    python3 bench/synthetic_dumps.py DIR --layers 28 --heads 28 --kv-heads 4 --seq-len 16384

Needs torch (a GPU makes it fast); writes the safetensors format directly.
"""
import argparse
import json
import os
import struct

import torch


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        raw = t.contiguous().view(torch.int16).cpu().numpy().tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def layer(gen, heads, kv_heads, seq_len, dim, device):
    group = heads // kv_heads
    q = torch.randn(1, heads, seq_len, dim, generator=gen, device=device)
    k = torch.randn(1, kv_heads, seq_len, dim, generator=gen, device=device)
    for g in range(kv_heads):
        # Each key carries c_j along the kv head's direction, c_j ~ N(0, spread^2): a row's logit
        # of key j is about weight * c_j plus unit noise, so the spread sets how sharp the heads
        # sharing this kv head are (0.5: nearly flat, 4: a few percent of keys hold most mass).
        spread = torch.empty(1, device=device).uniform_(0.5, 4.0, generator=gen).item()
        direction = torch.randn(dim, generator=gen, device=device)
        direction /= direction.norm()
        c = spread * torch.randn(seq_len, 1, generator=gen, device=device)
        k[0, g] += c * direction
        for h in range(g * group, (g + 1) * group):
            weight = torch.empty(1, device=device).uniform_(0.5, 1.5, generator=gen).item()
            q[0, h] += weight * dim ** 0.5 * direction
    return q.to(torch.bfloat16), k.to(torch.bfloat16)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--heads", type=int, default=28)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=16384)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gen = torch.Generator(device=device).manual_seed(a.seed)
    for i in range(a.layers):
        q, k = layer(gen, a.heads, a.kv_heads, a.seq_len, a.head_dim, device)
        write_safetensors(os.path.join(a.dir, f"layer{i:02d}.safetensors"), {"q": q, "k": k})


if __name__ == "__main__":
    main()
