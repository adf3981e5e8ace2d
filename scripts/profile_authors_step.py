#!/usr/bin/env python3
"""torch.profiler table of one training step of the authors' PyTorch CIGN (their modules from a
checkout of niccronc/conditional-idempotent-generative-networks; nothing of it is copied here).
Where does a step spend its time? cign runs the same libtorch kernels, so this is also the
profile of cign's step before (and, with --cign-formulation, roughly after) its optimisations.

    python scripts/profile_authors_step.py --authors PATH --conditioning filter --latent-dim 64 \
        --batch 64 --threads 1 [--cign-formulation] [--shapes]

--cign-formulation swaps in cign's formulation where it differs: the filter model's channel
mixer as a 1x1 convolution (contiguous NCHW result) and dropout masks without per-element
Bernoulli draws (a cached mask, so the mask's cost is left out). It does not split the channel
model's label channel nor fuse dropout with the activation. Needs torch 2.11 and
pytorch-lightning (their module imports it).
"""
import argparse
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--authors", required=True)
    p.add_argument("--conditioning", choices=["channel", "filter"], required=True)
    p.add_argument("--latent-dim", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rows", type=int, default=25)
    p.add_argument("--cign-formulation", action="store_true")
    p.add_argument("--shapes", action="store_true", help="group the table by input shapes")
    a = p.parse_args()

    sys.path.insert(0, f"{a.authors}/MNIST")
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile
    from idempotent_networks import IdempotentNetworkWithConditioning
    if a.conditioning == "filter":
        from CIGN_filter.model_with_filter_conditioning import CIGNWithFilterConditioning as Net
    else:
        from CIGN_channel.model_with_channel_conditioning import CIGNWithChannelConditioning as Net

    class Conv1x1Mixer(nn.Module):
        """Takes and returns the NHWC view the authors' code passes, computes NCHW."""
        def __init__(self, lin):
            super().__init__()
            self.lin = lin

        def forward(self, xp):
            x = xp.permute(0, 3, 1, 2)
            return F.conv2d(x, self.lin.weight[:, :, None, None], self.lin.bias).permute(0, 2, 3, 1)

    masks = {}

    class CachedMaskDropout(nn.Module):
        def forward(self, x):
            if not self.training:
                return x
            key = tuple(x.shape)
            if key not in masks:
                masks[key] = (torch.rand(key) > 0.15).float() / 0.85
            return x * masks[key]

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = Net(data_channels=1, latent_dim=a.latent_dim, intermediate_dim=128, embedding_dim=5)
    if a.cign_formulation:
        for half in [net.discriminator, net.generator]:
            for name, m in list(half.named_children()):
                if name.startswith("channel_mixer"):
                    setattr(half, name, Conv1x1Mixer(m))
                if name.startswith("dropout"):
                    setattr(half, name, CachedMaskDropout())
    prior = torch.distributions.Normal(torch.zeros(1, 28, 28), torch.ones(1, 28, 28))
    model = IdempotentNetworkWithConditioning(prior, net, 1e-4)
    model.train()
    opt = model.configure_optimizers()
    x = torch.rand(a.batch, 1, 28, 28) * 2 - 1
    y = torch.randint(0, 10, (a.batch,))

    def step():
        opt.zero_grad()
        sum(model.get_losses(x, y)).backward()
        opt.step()

    step()
    step()
    t = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=a.shapes) as prof:
        step()
    print(f"step {time.perf_counter() - t:.3f} s (under the profiler), torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)")
    print(prof.key_averages(group_by_input_shape=a.shapes).table(
        sort_by="self_cpu_time_total", row_limit=a.rows, max_name_column_width=40, max_shapes_column_width=80))


if __name__ == "__main__":
    main()
