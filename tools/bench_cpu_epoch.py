#!/usr/bin/python3
"""One CPU training epoch of the reference CNN: convpool against PyTorch, in one run.

Both read the same CIFAR-10 binary files, use the same batch size, the same thread count,
Adam with the Keras settings and a shuffled epoch; only the training epoch is timed (no
evaluation). Prints both times and the ratio.

  tools/bench_cpu_epoch.py --data DIR [--threads 2] [--batch 32] [--limit N] [--build build]
"""
import argparse
import os
import re
import subprocess
import sys
import time


def torch_epoch(data_dir, threads, batch, limit):
    import numpy as np
    import torch
    import torch.nn as nn

    torch.set_num_threads(threads)
    torch.manual_seed(1)
    raw = b"".join(open(os.path.join(data_dir, f"data_batch_{i}.bin"), "rb").read() for i in range(1, 6))
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3073)
    if limit:
        rec = rec[:limit]
    labels = torch.from_numpy(rec[:, 0].astype(np.int64))
    images = torch.from_numpy(rec[:, 1:].copy()).reshape(-1, 3, 32, 32)
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2304, 64), nn.ReLU(), nn.Linear(64, 10))
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(labels))
    t0 = time.perf_counter()
    total = 0.0
    for first in range(0, len(labels), batch):
        idx = order[first:first + batch]
        x = images[idx].float().div_(255.0)  # conversion inside the timed loop, as convpool does
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), labels[idx])
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
    seconds = time.perf_counter() - t0
    return seconds, total / len(labels), torch.__version__


def convpool_epoch(binary, data_dir, threads, batch, limit):
    cmd = [binary, "train", "--device", "cpu", "--epochs", "1", "--batch", str(batch),
           "--threads", str(threads), "--data", data_dir, "--limit-test", "100",
           "--out", "/tmp/convpool-bench-cpu-epoch"]
    if limit:
        cmd += ["--limit-train", str(limit)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(r"epoch 1/1\s+loss ([0-9.]+).*?([0-9.]+)s\s+([0-9]+) img/s", out)
    if not m:
        sys.exit("could not parse convpool output:\n" + out)
    return float(m.group(2)), float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("CIFAR10_DIR", "data/cifar-10-batches-bin"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only")
    ap.add_argument("--build", default="build")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.data, "data_batch_1.bin")):
        sys.exit(f"bench_cpu_epoch: no CIFAR-10 binary files in {a.data}")
    ours, our_loss = convpool_epoch(os.path.join(a.build, "convpool"), a.data, a.threads, a.batch, a.limit)
    theirs, their_loss, version = torch_epoch(a.data, a.threads, a.batch, a.limit)
    n = a.limit or 50000
    print(f"CPU epoch, reference CNN, batch {a.batch}, {a.threads} threads, {n} images")
    print(f"{'engine':<22}{'seconds':>9}{'img/s':>9}{'loss':>8}")
    print(f"{'convpool':<22}{ours:9.2f}{n / ours:9.0f}{our_loss:8.4f}")
    print(f"{'pytorch ' + version:<22}{theirs:9.2f}{n / theirs:9.0f}{their_loss:8.4f}")
    ratio = theirs / ours
    faster = "convpool" if ratio >= 1 else "pytorch"
    print(f"ratio (pytorch time / convpool time): {ratio:.2f}x  -> {faster} is faster")


if __name__ == "__main__":
    main()
