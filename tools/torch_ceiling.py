# The dense bf16 ceiling for tools/bench.c: torch.matmul of two random 8192x8192 bf16 matrices, TFLOP/s (median of 5
# batches of 10 after a warm-up), printed alone on one line. Run on the GPU machine beside ./bench.
import torch
n = 8192
a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
for _ in range(5):
    a @ b
torch.cuda.synchronize()
t = []
for _ in range(5):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(10):
        a @ b
    e.record()
    e.synchronize()
    t.append(s.elapsed_time(e) / 10 * 1e-3)
t.sort()
print("%.1f" % (2 * n ** 3 / t[2] / 1e12))
