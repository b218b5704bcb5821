#!/usr/bin/python3
"""One CPU training epoch of the reference CNN as a whole process: convpool against PyTorch,
in one invocation.

Each side is a whole process, timed from start to exit: it loads the CIFAR-10 binary files,
trains one shuffled epoch (Adam with the Keras settings, the same batch size and thread count)
and evaluates the 10,000 test images. The two alternate `--repeats` times (default 3) and the
medians are compared (the definition of an epoch ratio). The training epoch alone is
printed beside, as each side reports it.

  bench/bench_cpu_epoch.py --data DIR [--threads 2] [--batch 32] [--repeats 3] [--build build]
                           [--python /usr/bin/python3,build/torch-venv/bin/python]

--python lists the interpreters whose PyTorch runs the PyTorch side (default: this one), e.g.
Debian's torch 1.13 and the newest from PyPI (scripts/pypi-torch-check makes that venv); each
round runs convpool, then each of them, and every ratio is against convpool's median.
  bench/bench_cpu_epoch.py --torch-worker ...   (the PyTorch process; not for direct use)
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (peers.torch_epoch: the PyTorch side, also bench-shared-cpu's)


def timed(cmd):
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t0, out


def torch_process(python, data_dir, threads, batch, limit):
    cmd = [python, os.path.abspath(__file__), "--torch-worker", "--data", data_dir,
           "--threads", str(threads), "--batch", str(batch), "--limit", str(limit)]
    wall, out = timed(cmd)
    train_s, loss, acc, version = out.split()[-4:]
    return wall, float(train_s), float(loss), float(acc), version


def convpool_process(binary, data_dir, threads, batch, limit):
    cmd = [binary, "train", "--device", "cpu", "--epochs", "1", "--batch", str(batch),
           "--threads", str(threads), "--data", data_dir, "--out", "/tmp/convpool-bench-cpu-epoch",
           "--overwrite"]
    if limit:
        cmd += ["--limit-train", str(limit)]
    wall, out = timed(cmd)
    m = re.search(r"epoch 1/1\s+loss ([0-9.]+).*?test_acc ([0-9.]+)\s+([0-9.]+)s", out)
    if not m:
        sys.exit("could not parse convpool output:\n" + out)
    return wall, float(m.group(3)), float(m.group(1)), float(m.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("CIFAR10_DIR", "data/cifar-10-batches-bin"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--build", default="build")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreters whose PyTorch to run, comma-separated")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.data, "data_batch_1.bin")):
        sys.exit(f"bench_cpu_epoch: no CIFAR-10 binary files in {a.data}")
    if a.torch_worker:  # the PyTorch process: prints 'train_s loss test_acc version'
        print(*peers.torch_epoch(a.data, a.threads, a.batch, a.limit))
        return
    pythons = a.python.split(",")
    ours, theirs, versions = [], {p: [] for p in pythons}, {}
    for _ in range(a.repeats):  # alternating, so that load that comes and goes falls on all
        ours.append(convpool_process(os.path.join(a.build, "convpool"), a.data, a.threads, a.batch, a.limit))
        for py in pythons:
            t = torch_process(py, a.data, a.threads, a.batch, a.limit)
            versions[py] = t[4]
            theirs[py].append(t[:4])
    n = a.limit or 50000
    med = lambda rows, i: statistics.median(r[i] for r in rows)  # noqa: E731
    print(f"CPU epoch as a whole process (load, train {n} images, test 10,000), reference CNN, "
          f"batch {a.batch}, {a.threads} threads, median of {a.repeats}")
    print(f"{'engine':<22}{'process s':>10}{'train s':>9}{'img/s':>8}{'loss':>8}{'test acc':>9}  all process s")
    sides = [("convpool", ours)] + [("pytorch " + versions[py], theirs[py]) for py in pythons]
    for name, rows in sides:
        print(f"{name:<22}{med(rows, 0):10.2f}{med(rows, 1):9.2f}{n / med(rows, 1):8.0f}"
              f"{med(rows, 2):8.4f}{med(rows, 3):9.4f}  " + " ".join(f"{r[0]:.2f}" for r in rows))
    for py in pythons:
        ratio = med(theirs[py], 0) / med(ours, 0)
        faster = "convpool" if ratio >= 1 else "pytorch"
        print(f"ratio (pytorch {versions[py]} process time / convpool process time): {ratio:.2f}x"
              f"  -> {faster} is faster")


if __name__ == "__main__":
    main()
