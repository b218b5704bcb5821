"""What the benchmarks, the PyTorch peers and the checks share: the CIFAR-10 binary reader,
the zoo models written in PyTorch, their convpool initialisation, the recipe's data pipeline
and evaluation, and `convpool ... --json`.

Scripts import it as a module: sys.path.insert(0, <bench/>), then `import peers`. PyTorch is
imported inside the functions that need it, so the reader and convpool_json also serve
interpreters without torch (tests/onnx-check runs in the ONNX Runtime venv).

The models, each with the parameter shapes of its models/*.cfg (tests/param-count-check
compares them):
  keras_cnn()   models/keras_cifar10.cfg, the Keras CIFAR-10 tutorial CNN ("the reference CNN")
  resnet20()    models/resnet20.cfg, He et al. 2016's CIFAR ResNet-20 (option B projections)
  vgg_bn()      models/vgg_bn.cfg, a VGG-style CNN with BatchNorm
"""
import functools
import json
import os
import subprocess
import time

CIFAR10_RECORD = 3073  # one label byte, then 3 x 32 x 32 pixel bytes (channel planes, row-major)
CIFAR10_TRAIN = [f"data_batch_{i}.bin" for i in range(1, 6)]
CIFAR10_TEST = ["test_batch.bin"]
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # convpool's --normalize


# ---- CIFAR-10 ----

def read_cifar10(directory, names, limit=None):
    """The records of the named binary files of `directory`, in order: (images uint8
    N x 3 x 32 x 32, labels int64 N) as numpy arrays. With `limit`: the first `limit` whole
    records only (fewer where the files hold fewer), without reading the rest."""
    import numpy as np
    chunks, left = [], limit
    for name in names:
        count = -1 if limit is None else left * CIFAR10_RECORD
        raw = np.fromfile(os.path.join(directory, name), dtype=np.uint8, count=count)
        if limit is not None:
            raw = raw[:raw.size - raw.size % CIFAR10_RECORD]
            left -= raw.size // CIFAR10_RECORD
        chunks.append(raw)
        if limit is not None and left <= 0:
            break
    rec = np.concatenate(chunks).reshape(-1, CIFAR10_RECORD)
    return (np.ascontiguousarray(rec[:, 1:]).reshape(-1, 3, 32, 32),
            rec[:, 0].astype(np.int64))


def load_cifar10(directory):
    """CIFAR-10 as torch tensors: ((train images, labels), (test images, labels)), images
    uint8 N x 3 x 32 x 32, labels int64."""
    import torch

    def tensors(names):
        images, labels = read_cifar10(directory, names)
        return torch.from_numpy(images), torch.from_numpy(labels)
    return tensors(CIFAR10_TRAIN), tensors(CIFAR10_TEST)


# ---- the zoo in PyTorch ----

def keras_cnn(keras_init=True):
    """models/keras_cifar10.cfg. keras_init: glorot-uniform weights and zero biases, as Keras
    and the model file initialise it; False keeps PyTorch's default initialisation."""
    from torch import nn
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2304, 64), nn.ReLU(), nn.Linear(64, 10))
    if keras_init:
        for m in model:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
    return model


@functools.lru_cache(maxsize=None)
def _basic_block_class():
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        """He et al. 2016's CIFAR basic block; a 1x1 stride-2 projection (option B) on
        downsampling."""

        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.proj = None
            if stride != 1 or cin != cout:
                self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(y + (self.proj(x) if self.proj is not None else x))
    return BasicBlock


def basic_block(cin, cout, stride):
    return _basic_block_class()(cin, cout, stride)


def resnet20():
    """models/resnet20.cfg, PyTorch's default initialisation (init_as_convpool sets the zoo's)."""
    from torch import nn
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for b in range(3):
            layers.append(basic_block(cin, cout, stride if b == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def vgg_bn():
    """models/vgg_bn.cfg, PyTorch's default initialisation (init_as_convpool sets the zoo's)."""
    from torch import nn
    layers, cin = [], 3
    for cout in (32, 64, 128, 256):
        for _ in range(2):
            layers += [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        layers.append(nn.MaxPool2d(2))
    layers += [nn.Flatten(), nn.Linear(256 * 2 * 2, 10)]
    return nn.Sequential(*layers)


# models/NAME.cfg -> the function that builds its PyTorch equivalent.
MODELS = {"keras_cifar10": keras_cnn, "resnet20": resnet20, "vgg_bn": vgg_bn}


def init_as_convpool(torch, model):
    """The zoo models' initialisation (docs/model-format.md), not PyTorch's defaults: convs
    he_normal (kaiming_normal_, fan-in, a = 0), the dense layer glorot uniform with a zero bias;
    BatchNorm starts at weight 1, bias 0 in both. With BatchNorm after every conv the scale of
    the conv weights still sets the effective step size under weight decay, so the recipe is
    only the same with the same init."""
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in", nonlinearity="relu")
        elif isinstance(m, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight)
            torch.nn.init.zeros_(m.bias)


# ---- a recipe's data pipeline and evaluation (bench/peer-recipe, bench/bn-restat-check) ----

def normalise(torch, x, normalize):
    x = x.float().div_(255.0)
    if normalize:
        mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        std = torch.tensor(STD).view(1, 3, 1, 1)
        x = (x - mean) / std
    return x


def augment(torch, F, x, pad, mode, flip, gen):
    """Random crop of the padded image and random horizontal flip, per image."""
    n = x.shape[0]
    if pad:
        xp = F.pad(x, (pad, pad, pad, pad), mode="reflect" if mode == "reflect" else "constant")
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        r = torch.arange(32)
        rows = (dy[:, None] + r[None, :])[:, None, :, None]  # n, 1, 32, 1
        cols = (dx[:, None] + r[None, :])[:, None, None, :]  # n, 1, 1, 32
        x = xp[torch.arange(n)[:, None, None, None], torch.arange(3)[None, :, None, None], rows, cols]
    if flip:
        mask = torch.rand(n, generator=gen) < 0.5
        x = torch.where(mask.view(n, 1, 1, 1), x.flip(3), x)
    return x


def shifted(torch, F, x, dy, dx):
    """The image moved by (dy, dx): output (y, x) reads input (y + dy, x + dx), reflect-padded,
    as convpool's test-time translate views (kernels/input_math.cuh, view_draw)."""
    xp = F.pad(x, (1, 1, 1, 1), mode="reflect")
    return xp[:, :, 1 + dy:1 + dy + 32, 1 + dx:1 + dx + 32]


def evaluate(torch, model, images, labels, normalize, with_tta):
    """Test accuracy; with `with_tta` also with flip TTA (the image and its mirror, 1/2 each) and
    flip,translate TTA (airbench94's, as convpool's: those at 1/4 each, and both shifted by
    (-1, -1) and (+1, +1) at 1/8 each). Returns (plain, {"flip": ..., "flip,translate": ...})."""
    import torch.nn.functional as F
    model.eval()
    plain = flip = translate = 0
    with torch.no_grad():
        for first in range(0, len(labels), 500):
            x = normalise(torch, images[first:first + 500], normalize)
            y = labels[first:first + 500]
            logits = model(x)
            plain += (logits.argmax(1) == y).sum().item()
            if with_tta:
                both = 0.5 * (logits + model(x.flip(3)))
                flip += (both.argmax(1) == y).sum().item()
                six = 0.5 * both
                for d in (-1, 1):
                    moved = shifted(torch, F, x, d, d)
                    six = six + 0.125 * (model(moved) + model(moved.flip(3)))
                translate += (six.argmax(1) == y).sum().item()
    model.train()
    n = len(labels)
    return plain / n, ({"flip": flip / n, "flip,translate": translate / n} if with_tta else None)


# ---- one CPU epoch of the reference CNN (bench/bench_cpu_epoch.py, bench/bench-shared-cpu) ----

def torch_epoch(data_dir, threads, batch, limit):
    """Load, one epoch, test pass in this process: (train seconds, loss, test accuracy, version)."""
    import torch
    import torch.nn as nn

    torch.set_num_threads(threads)
    torch.manual_seed(1)
    (images, labels), (test_images, test_labels) = load_cifar10(data_dir)
    if limit:
        images, labels = images[:limit], labels[:limit]
    model = keras_cnn()
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
    model.eval()
    correct = 0
    with torch.no_grad():
        for first in range(0, len(test_labels), 256):
            x = test_images[first:first + 256].float().div_(255.0)
            correct += (model(x).argmax(1) == test_labels[first:first + 256]).sum().item()
    return seconds, total / len(labels), correct / len(test_labels), torch.__version__


# ---- the convpool binary ----

def convpool_json(binary, args):
    """`binary ARGS --json`, parsed."""
    out = subprocess.run([binary] + args + ["--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)
