#!/usr/bin/python3
"""Reads a convpool checkpoint with nothing but json + numpy.

  import load_checkpoint; tensors, meta = load_checkpoint.load("best.safetensors")

tensors maps names ("conv1.weight", "optim.m.conv1.weight", ...) to float32 arrays in
PyTorch layouts (conv [out, in, kh, kw], dense [out, in], bias [out]); meta is the
__metadata__ string map. Run as a script, it prints one line per tensor:
NAME SHAPE SUM FIRST_VALUE, and exits non-zero if the data checksum does not match.
"""
import json
import struct
import sys
import zlib

import numpy as np


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    if "data_crc32" in meta and "%08x" % (zlib.crc32(data) & 0xFFFFFFFF) != meta["data_crc32"]:
        raise ValueError(f"{path}: data checksum mismatch")
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", name
        b, e = info["data_offsets"]
        tensors[name] = np.frombuffer(data[b:e], dtype="<f4").reshape(info["shape"])
    return tensors, meta


def main():
    tensors, meta = load(sys.argv[1])
    for name, t in tensors.items():
        shape = "x".join(str(d) for d in t.shape)
        print(f"{name} {shape} {float(t.astype(np.float64).sum()):.9g} {float(t.flat[0]):.9g}")
    print("metadata", " ".join(sorted(meta)))


if __name__ == "__main__":
    main()
