#!/usr/bin/env python3
"""Forward + backward time of the filter model's per-sample depthwise convolutions (L = 64,
batch 2304 = the mismatch pass of batch 256, 1 thread) in the authors' formulation (one grouped
convolution with B*C groups) and per label (samples sorted by label, one ordinary depthwise
convolution with C groups per label on a contiguous slice; the sort itself is not timed).
Same libtorch kernels as cign. Prints one line per layer shape.

    python scripts/bench_depthwise_per_label.py
"""
import time, torch, torch.nn.functional as F
torch.set_num_threads(1); torch.manual_seed(0)
def t(fn, reps=2):
    fn(); b=1e9
    for _ in range(reps):
        s=time.perf_counter(); fn(); b=min(b,time.perf_counter()-s)
    return b
N=2304
for (C,H,k,s,p,tr) in [(1,28,4,2,1,False),(64,14,4,2,1,False),(128,7,3,2,1,False),(256,4,4,2,1,False),(512,1,2,1,0,True),(256,4,3,2,1,True),(64,14,4,2,1,True)]:
    x0=torch.randn(N,C,H,H); lab=torch.sort(torch.randint(0,10,(N,))).values
    counts=torch.bincount(lab,minlength=10).tolist()
    table=torch.randn(10,C,k,k,requires_grad=True)
    def grouped():
        x=x0.clone().requires_grad_(); ker=table[lab]
        f = F.conv_transpose2d if tr else F.conv2d
        o=f(x.view(1,N*C,H,H), ker.reshape(N*C,1,k,k), stride=s, padding=p, groups=N*C)
        o.sum().backward()
    def per_label():
        x=x0.clone().requires_grad_(); outs=[]; st=0
        f = F.conv_transpose2d if tr else F.conv2d
        for c,n in enumerate(counts):
            if n==0: continue
            outs.append(f(x[st:st+n], table[c].unsqueeze(1), stride=s, padding=p, groups=C)); st+=n
        torch.cat(outs).sum().backward()
    print(C,H,k,tr, f"grouped {t(grouped):.3f} per_label {t(per_label):.3f}", flush=True)
