#!/usr/bin/env python3
"""Summarises a device trace written by OLLM_PROFILE=FILE (the CUDA backend: one line per op, "stream op start_us
dur_us bytes", stream 0 = compute, 1 = copy).

    OLLM_PROFILE=/tmp/g.trace ollm run MODEL --ids @ids.txt -n 17 --backend cuda ...
    python3 tools/trace_report.py /tmp/g.trace VOCAB

Decoded tokens are the spans between two read backs of VOCAB * 4 bytes (the logits), or of the 8 bytes of an argmax
(greedy decoding on the device), with no prefill GEMM in them.
Per token it prints the compute stream's and the copy stream's busy time, the copy stream's idle gaps (and which
layer's router result ended the long ones: a gap that ends right after a router's read back is the copy engine
waiting for that decision), the busiest kernels, and the bandwidth of the uploads by size. The events that time the
ops cost the host about 2 us each, so a traced token is slower than an untraced one; compare traces with traces."""
import bisect
import collections
import statistics
import sys


def load(path):
    ops = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) >= 5:
                ops.append((int(p[0]), ' '.join(p[1:-3]), float(p[-3]), float(p[-2]), int(p[-1])))
    ops.sort(key=lambda o: o[2])
    return ops


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: trace_report.py TRACE VOCAB")
    ops, logit_bytes = load(sys.argv[1]), 4 * int(sys.argv[2])
    # a token ends with the read back of its logits, or of its argmax's 8 bytes (greedy decoding on the device)
    token_reads, last = [], None
    for o in ops:
        if o[0] == 0 and o[1] == 'read back' and (o[4] == logit_bytes or (o[4] == 8 and last == 'argmax')):
            token_reads.append(o)
        if o[0] == 0:
            last = o[1]
    ends = [o[2] + o[3] for o in token_reads]
    starts = [o[2] for o in ops]
    toks = []
    for a, b in zip(ends[:-1], ends[1:]):
        sel = ops[bisect.bisect_left(starts, a):bisect.bisect_left(starts, b)]
        if not any(o[1].startswith('gemm') for o in sel):
            toks.append((a, b, sel))
    if not toks:
        sys.exit("no decoded tokens in the trace (is VOCAB right?)")
    n = len(toks)
    wall = statistics.mean(b - a for a, b, _ in toks)
    comp = statistics.mean(sum(o[3] for o in s if o[0] == 0) for _, _, s in toks)
    copy = statistics.mean(sum(o[3] for o in s if o[0] == 1) for _, _, s in toks)
    mb = statistics.mean(sum(o[4] for o in s if o[0] == 1) for _, _, s in toks) / 1e6
    print("%d decoded tokens: %.0f us each; compute stream busy %.0f us, copy stream busy %.0f us (%.1f MB)" %
          (n, wall, comp, copy, mb))
    # the copy stream's gaps over the decoded tokens, each counted where it ends (a gap may span a token's end)
    cp = [o for _, _, s in toks for o in s if o[0] == 1]
    tok_start = [a for a, _, _ in toks]
    token_reads = set(token_reads)   # the other read backs are the routers'
    reads = [[o[2] + o[3] for o in s if o[0] == 0 and o[1] == 'read back' and o not in token_reads] for _, _, s in toks]
    idle, by_layer = 0.0, collections.Counter()
    for x, y in zip(cp[:-1], cp[1:]):
        g = y[2] - max(x[2] + x[3], tok_start[0])
        if g <= 0:
            continue
        idle += g
        rs = reads[bisect.bisect_right(tok_start, y[2]) - 1]
        i = bisect.bisect_right(rs, y[2]) - 1
        if g >= 100 and i >= 0 and y[2] - rs[i] < 30:
            by_layer[i] += g
    print("copy stream idle %.0f us a token; of it in gaps of 100 us or more that end as a router's result arrives, "
          "by layer: %s" % (idle / n, ', '.join('%d: %.0f us' % (k, v / n) for k, v in sorted(by_layer.items()))))
    kinds = collections.defaultdict(lambda: [0, 0.0])
    for _, _, s in toks:
        for o in s:
            if o[0] == 0:
                kinds[o[1]][0] += 1
                kinds[o[1]][1] += o[3]
    print("compute stream, per token:")
    for k, (c, t) in sorted(kinds.items(), key=lambda kv: -kv[1][1])[:12]:
        print("  %-26s %6.1f ops %8.1f us (%.2f us each)" % (k, c / n, t / n, t / c))
    sizes = collections.defaultdict(lambda: [0, 0, 0.0])
    for _, _, s in toks:
        for o in s:
            if o[0] == 1:
                sizes[o[4]][0] += 1
                sizes[o[4]][1] += o[4]
                sizes[o[4]][2] += o[3]
    print("uploads by size:", ', '.join('%d B x %.1f a token at %.1f GB/s' % (k, c / n, b / t / 1e3)
                                         for k, (c, b, t) in sorted(sizes.items(), key=lambda kv: -kv[1][1])[:6] if t))


if __name__ == '__main__':
    main()
