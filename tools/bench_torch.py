#!/usr/bin/python3
"""Seconds per training step of ccc's default shift-CNN in PyTorch on the CPU.

The network is the one `ccc train` builds by default: a 3x3 conv 1->32, then shift +
1x1 conv blocks to 64 (stride 2), 128 (stride 2), 128, 256 (stride 2) and 256, each
conv followed by batchnorm and ReLU6, global average pooling and a linear layer to 10
classes. Shifts move each channel by one of the nine 3x3 directions (zero fill).
Training: batch 128, SGD with momentum 0.9 and weight decay 1e-4, cross entropy.

Inputs are random tensors of Fashion-MNIST's shape: the time of a step does not depend
on pixel values. Prints one JSON line (steps, seconds, images per second, threads).

usage: bench_torch.py THREADS STEPS [BATCH]
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Shift(nn.Module):
    """Channel group i of nine moves by (i // 3 - 1, i % 3 - 1)."""

    def __init__(self, channels):
        super().__init__()
        base, extra = divmod(channels, 9)
        self.sizes = [base + (1 if i < extra else 0) for i in range(9)]

    def forward(self, x):
        h, w = x.shape[2], x.shape[3]
        padded = F.pad(x, (1, 1, 1, 1))
        out, start = [], 0
        for i, n in enumerate(self.sizes):
            dy, dx = i // 3 - 1, i % 3 - 1
            out.append(padded[:, start:start + n, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w])
            start += n
        return torch.cat(out, 1)


def block(cin, cout, stride):
    return nn.Sequential(
        Shift(cin),
        nn.Conv2d(cin, cout, 1, stride, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(),
    )


def network():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 1, 1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU6(),
        block(32, 64, 2),
        block(64, 128, 2),
        block(128, 128, 1),
        block(128, 256, 2),
        block(256, 256, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(256, 10),
    )


def main():
    threads = int(sys.argv[1])
    steps = int(sys.argv[2])
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = network()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    warmup = 3
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    seconds = time.perf_counter() - start
    print(json.dumps({
        "torch": torch.__version__,
        "threads": threads,
        "steps": steps,
        "batch": batch,
        "seconds": seconds,
        "images_per_second": steps * batch / seconds,
    }))


if __name__ == "__main__":
    main()
