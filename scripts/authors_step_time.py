#!/usr/bin/env python3
"""Times full training steps of the authors' PyTorch CIGN and prints one JSON object.

The step is theirs, unmodified: IdempotentNetworkWithConditioning.get_losses (copy refresh
by load_state_dict, prior sample, their mismatched-pair helper, seven forward passes), the sum
of the five terms, backward and AdamW (lr 1e-4, betas (0.5, 0.999)). Their modules are imported
from a checkout of niccronc/conditional-idempotent-generative-networks given by --authors;
nothing of it is copied here. Needs torch 2.11 and pytorch-lightning (their module imports it).

    python scripts/authors_step_time.py --authors PATH --conditioning channel --latent-dim 64 \
        --batch 256 --steps 5 --warmup 1 --threads 2
"""
import argparse
import json
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--authors", required=True, help="checkout of the authors' repository")
    p.add_argument("--conditioning", choices=["channel", "filter"], required=True)
    p.add_argument("--latent-dim", type=int, default=64)
    p.add_argument("--intermediate-dim", type=int, default=128)
    p.add_argument("--embedding-dim", type=int, default=5)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()

    sys.path.insert(0, f"{a.authors}/MNIST")
    import torch
    from idempotent_networks import IdempotentNetworkWithConditioning

    if a.conditioning == "filter":
        from CIGN_filter.model_with_filter_conditioning import CIGNWithFilterConditioning as Net
    else:
        from CIGN_channel.model_with_channel_conditioning import CIGNWithChannelConditioning as Net

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    prior = torch.distributions.Normal(torch.zeros(1, 28, 28), torch.ones(1, 28, 28))
    net = Net(data_channels=1, latent_dim=a.latent_dim, intermediate_dim=a.intermediate_dim,
              embedding_dim=a.embedding_dim)
    model = IdempotentNetworkWithConditioning(prior, net, 1e-4)
    model.train()
    opt = model.configure_optimizers()
    x = torch.rand(a.batch, 1, 28, 28) * 2 - 1
    y = torch.randint(0, 10, (a.batch,))
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        # Their DataLoader adds the training noise per image; done here on the batch.
        xn = (x + torch.randn_like(x) * 0.15).clamp(-1, 1)
        opt.zero_grad()
        loss = sum(model.get_losses(xn, y))
        loss.backward()
        opt.step()
        loss.item()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    print(json.dumps({
        "impl": "authors",
        "conditioning": a.conditioning,
        "dims": [a.latent_dim, a.intermediate_dim, a.embedding_dim],
        "batch": a.batch,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "step_seconds": times,
    }))


if __name__ == "__main__":
    main()
