#!/usr/bin/python3
"""Trains the tutorial CNN (models/keras_cifar10.cfg) in PyTorch with convpool_torch.AvgTopK(k=3)
in place of both max-pooling layers.

    scripts/build-torch-ext
    python/examples/train_avgtopk.py --data $(tests/test-data) --limit-train 5000 --epochs 1

--data is a directory with CIFAR-10's binary batches (data_batch_1.bin ... test_batch.bin);
without it the script trains on random images (a smoke run: the loss still has to fall on
the one repeated batch it memorises).
"""
import argparse
import os
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path[:0] = [os.path.join(ROOT, "python"), os.path.join(ROOT, "bench")]

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import convpool_torch as cpt  # noqa: E402
import peers  # noqa: E402  (bench/peers.py: the CIFAR-10 reader)
from convpool_torch.compositions import tutorial_cnn  # noqa: E402


def read_cifar(directory, names, limit):
    images, labels = peers.read_cifar10(directory, names, limit)
    return torch.from_numpy(images), torch.from_numpy(labels)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", help="directory of CIFAR-10 binary batches")
    p.add_argument("--limit-train", type=int, default=5000)
    p.add_argument("--limit-test", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    if a.data:
        train_x, train_y = read_cifar(a.data, peers.CIFAR10_TRAIN, a.limit_train)
        test_x, test_y = read_cifar(a.data, peers.CIFAR10_TEST, a.limit_test)
    else:
        print("no --data: training on one repeated random batch (smoke run)")
        train_x = torch.randint(0, 256, (a.batch, 3, 32, 32), dtype=torch.uint8).repeat(8, 1, 1, 1)
        train_y = torch.randint(0, 10, (a.batch,)).repeat(8)
        test_x, test_y = train_x[:a.batch], train_y[:a.batch]

    model = tutorial_cnn(cpt.AvgTopK(k=a.k), cpt.AvgTopK(k=a.k), 2304)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    print(model)
    for epoch in range(1, a.epochs + 1):
        model.train()
        t0, total, correct, seen = time.time(), 0.0, 0, 0
        order = torch.randperm(len(train_x))
        for i in range(0, len(order) - a.batch + 1, a.batch):
            idx = order[i:i + a.batch]
            x, y = train_x[idx].float().div_(255.0), train_y[idx]
            opt.zero_grad(set_to_none=True)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(idx)
        secs = time.time() - t0
        model.eval()
        with torch.no_grad():
            test_logits = model(test_x.float().div_(255.0))
            test_acc = (test_logits.argmax(1) == test_y).double().mean().item()
            test_loss = F.cross_entropy(test_logits, test_y).item()
        print(f"epoch {epoch}/{a.epochs}  loss {total / seen:.4f}  acc {correct / seen:.3f}  "
              f"test_loss {test_loss:.4f}  test_acc {test_acc:.3f}  {secs:.1f}s  "
              f"{seen / secs:.0f} img/s", flush=True)


if __name__ == "__main__":
    main()
