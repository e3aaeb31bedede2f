"""Host-to-device copy bandwidth (GB/s) with torch, the floor the benchmarks divide bytes by: one 1 GiB buffer,
pinned and pageable, five copies each after a warm-up. Prints `h2d_pinned X` and `h2d_pageable Y`."""
import time

import torch

n = 1 << 30
d = torch.empty(n, dtype=torch.uint8, device="cuda")
for pin in (True, False):
    h = torch.empty(n, dtype=torch.uint8, pin_memory=pin)
    d.copy_(h); torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(5): d.copy_(h)
    torch.cuda.synchronize()
    print("h2d_%s %.2f" % ("pinned" if pin else "pageable", 5 * n / (time.perf_counter() - t) / 1e9))
