"""Tests of convpool_torch (python/convpool_torch): gradcheck of every method with its
parameters, forward equality with PyTorch compositions and with an independent per-window
reference, reproducible stochastic draws, and clear errors for bad input.

Run: tests/test-torch-ext (builds the extension first), or, once built,
/usr/bin/python3 -m unittest discover -s python/tests -v

The kernels compute in float32; the float64 tests convert on the way in and out. gradcheck
therefore runs on float64 inputs with eps = 1e-3 and tolerances of 2e-3 (a float32 function's
finite differences are good to about 1e-4 at that step), on inputs whose values lie on a grid
of spacing 0.05 (so no perturbation crosses a tie, a kink or a threshold). The exact gradient is
checked tighter (1e-5) against PyTorch autograd through a float64 reference.
"""
import os
import sys
import unittest

import torch
import torch.nn.functional as F

# The checkout's package (built in place by scripts/build-torch-ext), unless the installed one
# is under test (scripts/pypi-torch-check, after pip install ./python).
if os.environ.get("CONVPOOL_TORCH_FROM") != "installed":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import convpool_torch as cpt  # noqa: E402

if os.environ.get("CONVPOOL_TORCH_FROM") == "installed":
    assert "site-packages" in cpt.__file__, f"not the installed package: {cpt.__file__}"
from convpool_torch import compositions as C  # noqa: E402

SEED = int(os.environ.get("CONVPOOL_TEST_SEED", "1234"))

# (kernel, stride, padding): full 2x2 and 3x3 windows (the fast paths), overlapping,
# padded and strided windows (the generic path), and a non-square window.
GEOMS = [((2, 2), (2, 2), (0, 0)), ((3, 3), (3, 3), (0, 0)), ((3, 3), (2, 2), (0, 0)),
         ((3, 3), (2, 2), (1, 1)), ((2, 2), (1, 1), (0, 0)), ((2, 3), (1, 2), (1, 1))]

# (method, params) for every method, with parameters.
METHOD_CASES = [
    ("max", {}), ("min", {}), ("avg", {}), ("avg", {"include_pad": False}),
    ("lp", {"p": 1.0}), ("lp", {"p": 2.0}), ("lp", {"p": 3.0}), ("lp", {"p": 1.5}),
    ("mixed", {}), ("stochastic", {}),
    ("avgtopk", {"k": 1}), ("avgtopk", {"k": 2}), ("avgtopk", {"k": 3}),
    ("tmaxavg", {"k": 2, "t": 0.51}), ("tmaxavg", {"k": 3, "t": -0.49}),
    ("softpool", {}),
    ("rwp", {}), ("rwp", {"a": 0.2}), ("rwp", {"a": 1.0}), ("rsp", {"a": 0.7}),
]


class TestMethodTable(unittest.TestCase):
    """The engine's method table reaches Python whole: every method has its module, a
    composition, and test cases; a row added to kernels/pool_methods.cuh without them fails."""

    def test_every_method_has_a_module_a_composition_and_cases(self):
        table = cpt.methods()
        self.assertEqual([m["id"] for m in table], list(range(len(table))))
        cased = {name for name, _ in METHOD_CASES}
        for m in table:
            module = getattr(cpt, m["python_class"], None)
            self.assertIsNotNone(module, m["name"] + ": no convpool_torch." + m["python_class"])
            self.assertEqual(module.method, m["name"])
            # The functional form takes the name and runs the method's kernels.
            x = torch.rand(1, 2, 4, 4)
            self.assertEqual(tuple(cpt.pool2d(x, m["name"], kernel_size=2).shape), (1, 2, 2, 2))
            self.assertIn(m["name"], C.BY_METHOD, m["name"] + ": no composition")
            self.assertIn(m["name"], cased, m["name"] + ": no test case in METHOD_CASES")

    def test_the_compositions_match_the_modules(self):
        gen = torch.Generator().manual_seed(SEED)
        for m in cpt.methods():
            x = grid_input((2, 3, 6, 6), gen, positive=m["nonneg_inputs"])
            params = {p["key"]: p["default"] if p["kind"] == "real" else int(p["default"])
                      for p in m["params"]}
            if m["name"] == "mixed":
                params = {}  # learned=0: the module's own lambda is 0.5 in evaluation
            module = getattr(cpt, m["python_class"])(**{**params, "kernel_size": 2}).eval()
            want = C.BY_METHOD[m["name"]](x, 2, 2, **params)
            torch.testing.assert_close(module(x), want, rtol=1e-5, atol=1e-5, msg=m["name"])


def grid_input(shape, gen, dtype=torch.float64, positive=False):
    """Distinct values on a 0.05 grid, none within 0.025 of 0, in random order."""
    n = 1
    for s in shape:
        n *= s
    v = (torch.randperm(n, generator=gen).to(dtype) + 0.5) * 0.05
    if not positive:
        v = v - (n // 2) * 0.05
    return v.reshape(shape)


def tie_input(shape, gen):
    """Many exact ties (values in {-1, -0.75, ..., 1})."""
    return torch.randint(-4, 5, shape, generator=gen).double() / 4


def reference(x, method, kernel, stride, pad, include_pad=True, k=2, p=2.0, t=0.0, a=0.5,
              lam=0.5):
    """Independent float64 per-window reference, differentiable by autograd."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    n, c, h, w = x.shape
    oh_n, ow_n = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    rows = []
    for oh in range(oh_n):
        cols = []
        for ow in range(ow_n):
            h0, w0 = oh * sh - ph, ow * sw - pw
            v = x[:, :, max(h0, 0):min(h0 + kh, h), max(w0, 0):min(w0 + kw, w)].reshape(n, c, -1)
            cnt = v.shape[2]
            div = kh * kw if include_pad else cnt
            top = v.max(dim=2).values
            if method == "max":
                r = top
            elif method == "min":
                r = v.min(dim=2).values
            elif method == "avg":
                r = v.sum(dim=2) / div
            elif method == "lp":
                r = v.abs().pow(p).sum(dim=2).pow(1 / p)
            elif method == "mixed":
                r = lam * top + (1 - lam) * v.sum(dim=2) / div
            elif method in ("avgtopk", "tmaxavg"):
                r = v.topk(min(k, cnt), dim=2).values.mean(dim=2)
                if method == "tmaxavg":
                    r = torch.where(top >= t, top, r)
            elif method == "softpool":
                r = (torch.softmax(v, dim=2) * v).sum(dim=2)
            elif method in ("rwp", "rsp"):  # rsp in evaluation is rwp
                wr = a * (1 - a) ** torch.arange(cnt, dtype=x.dtype)
                srt = v.sort(dim=2, descending=True).values
                r = (srt * wr).sum(dim=2) / wr.sum()
            elif method == "stochastic":  # evaluation: the expectation
                pos = v.clamp(min=0)
                s, q = pos.sum(dim=2), (pos * pos).sum(dim=2)
                r = torch.where(s > 0, q / torch.where(s > 0, s, torch.ones_like(s)), 0 * s)
            else:
                raise ValueError(method)
            cols.append(r)
        rows.append(torch.stack(cols, dim=-1))
    return torch.stack(rows, dim=-2)


def ours(x, method, kernel, stride, pad, **kw):
    return cpt.pool2d(x, method, kernel, stride, pad, **kw)


class ForwardEquality(unittest.TestCase):
    def test_every_method_and_geometry_matches_the_reference(self):
        gen = torch.Generator().manual_seed(SEED)
        for kernel, stride, pad in GEOMS:
            for method, params in METHOD_CASES:
                for make in (tie_input, lambda s, g: torch.randn(s, generator=g).double()):
                    x = make((2, 3, 7, 9), gen)
                    with self.subTest(method=method, params=params, kernel=kernel, stride=stride,
                                      pad=pad):
                        want = reference(x, method, kernel, stride, pad, **params)
                        got = ours(x.float(), method, kernel, stride, pad, **params)
                        self.assertEqual(got.dtype, torch.float32)
                        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)

    def test_global_pooling(self):
        gen = torch.Generator().manual_seed(SEED + 1)
        x = tie_input((2, 3, 5, 6), gen)
        for method, params in METHOD_CASES:
            with self.subTest(method=method, params=params):
                want = reference(x, method, (5, 6), (5, 6), (0, 0), **params)
                got = cpt.pool2d(x, method, global_pool=True, **params)
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)

    def test_pytorch_compositions(self):
        gen = torch.Generator().manual_seed(SEED + 2)
        for size in (2, 3):
            for x in (tie_input((4, 5, 12, 12), gen), torch.randn(4, 5, 12, 12, generator=gen)):
                x = x.double()
                s = size
                cases = [
                    (cpt.MaxPool(s), F.max_pool2d(x, s, s)),
                    (cpt.AvgPool(s), F.avg_pool2d(x, s, s)),
                    (cpt.MinPool(s), C.minpool(x, s, s)),
                    (cpt.LpPool(2.0, s), F.lp_pool2d(x, 2.0, s, s)),
                    (cpt.LpPool(3.0, s), C.lp(x, s, s, 3.0)),
                    (cpt.AvgTopK(2, s), C.avgtopk(x, s, s, 2)),
                    (cpt.AvgTopK(s * s - 1, s), C.avgtopk(x, s, s, s * s - 1)),
                    (cpt.TMaxAvg(2, 0.3, s), C.tmaxavg(x, s, s, 2, 0.3)),
                    (cpt.SoftPool(s), C.softpool(x, s, s)),
                    (cpt.MixedPool(kernel_size=s).eval(), C.mixed(x, s, s, 0.5)),
                    (cpt.StochasticPool(s).eval(), C.stochastic_eval(x, s, s)),
                    (cpt.RankWeightedPool(0.3, s), C.rank_weighted(x, s, s, 0.3)),
                    (cpt.RankStochasticPool(0.3, s).eval(), C.rank_weighted(x, s, s, 0.3)),
                ]
                for module, want in cases:
                    with self.subTest(module=repr(module), size=size):
                        got = module(x)
                        self.assertEqual(got.dtype, torch.float64)
                        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)

    def test_nan_and_inf_propagate_like_the_engine(self):
        x = torch.tensor([[[[1.0, float("nan"), 2.0, 3.0], [0.5, 0.25, float("inf"), 1.0]]]])
        for method in ("max", "avgtopk", "lp", "min"):
            self.assertTrue(torch.isnan(cpt.pool2d(x, method)[0, 0, 0, 0]), method)
        self.assertEqual(cpt.pool2d(x, "max")[0, 0, 0, 1].item(), float("inf"))
        self.assertEqual(cpt.pool2d(x, "softpool")[0, 0, 0, 1].item(), float("inf"))


def gradcheck(fn, inputs):
    return torch.autograd.gradcheck(fn, inputs, eps=1e-3, atol=2e-3, rtol=2e-3)


class Gradients(unittest.TestCase):
    def test_gradcheck_every_method_and_geometry(self):
        gen = torch.Generator().manual_seed(SEED + 3)
        for kernel, stride, pad in GEOMS:
            for method, params in METHOD_CASES:
                for training in (False, True):
                    if training and method not in ("mixed", "stochastic", "rsp"):
                        continue
                    pos = method == "stochastic" and training
                    x = grid_input((2, 2, 6, 7), gen, positive=pos).requires_grad_(True)
                    kw = dict(params, training=training, seed=SEED, step=3)
                    with self.subTest(method=method, params=params, training=training,
                                      kernel=kernel, stride=stride, pad=pad):
                        self.assertTrue(gradcheck(
                            lambda x: ours(x, method, kernel, stride, pad, **kw), (x,)))

    def test_gradient_equals_autograd_of_the_float64_reference(self):
        gen = torch.Generator().manual_seed(SEED + 4)
        for kernel, stride, pad in GEOMS:
            for method, params in METHOD_CASES:
                if method == "stochastic":
                    continue  # its training gradient is a sample; evaluation is covered above
                x = grid_input((2, 3, 7, 8), gen).requires_grad_(True)
                with self.subTest(method=method, params=params, kernel=kernel, pad=pad):
                    y = ours(x, method, kernel, stride, pad, **params)
                    w = torch.randn(y.shape, generator=gen, dtype=torch.float64)
                    (g_ours,) = torch.autograd.grad((y * w).sum(), x)
                    y_ref = reference(x, method, kernel, stride, pad, **params)
                    (g_ref,) = torch.autograd.grad((y_ref * w).sum(), x)
                    torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-5)

    def test_global_gradcheck(self):
        gen = torch.Generator().manual_seed(SEED + 5)
        for method, params in METHOD_CASES:
            x = grid_input((2, 2, 4, 5), gen).requires_grad_(True)
            with self.subTest(method=method, params=params):
                self.assertTrue(gradcheck(
                    lambda x: cpt.pool2d(x, method, global_pool=True, **params), (x,)))

    def test_learned_mixing(self):
        gen = torch.Generator().manual_seed(SEED + 6)
        for kernel, stride, pad in GEOMS[:4]:
            x = grid_input((2, 2, 6, 7), gen).requires_grad_(True)
            alpha = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
            with self.subTest(kernel=kernel, stride=stride, pad=pad):
                self.assertTrue(gradcheck(
                    lambda x, a: ours(x, "mixed", kernel, stride, pad, alpha=a), (x, alpha)))
                lam = torch.sigmoid(alpha)
                want = reference(x, "mixed", kernel, stride, pad, lam=lam)
                torch.testing.assert_close(ours(x, "mixed", kernel, stride, pad, alpha=alpha),
                                           want, rtol=1e-5, atol=1e-5)
        pool = cpt.MixedPool(learned=True)
        y = pool(torch.randn(2, 3, 4, 4))
        y.sum().backward()
        self.assertIsNotNone(pool.alpha.grad)
        self.assertEqual(pool.alpha.grad.shape, (1,))


class Randomness(unittest.TestCase):
    def test_stochastic_draws_are_reproducible_from_the_seed(self):
        x = torch.rand(4, 8, 16, 16)
        a = cpt.pool2d(x, "stochastic", training=True, seed=5, step=1)
        self.assertTrue(torch.equal(a, cpt.pool2d(x, "stochastic", training=True, seed=5, step=1)))
        self.assertFalse(torch.equal(a, cpt.pool2d(x, "stochastic", training=True, seed=5, step=2)))
        self.assertFalse(torch.equal(a, cpt.pool2d(x, "stochastic", training=True, seed=6, step=1)))
        windows = C._windows(x, 2, 2)  # every output is one of its window's values
        self.assertTrue((windows == a.unsqueeze(2)).any(dim=2).all())
        m1, m2 = cpt.StochasticPool(seed=9), cpt.StochasticPool(seed=9)
        seq1 = [m1(x) for _ in range(3)]
        seq2 = [m2(x) for _ in range(3)]
        for s1, s2 in zip(seq1, seq2):
            self.assertTrue(torch.equal(s1, s2))
        self.assertFalse(torch.equal(seq1[0], seq1[1]))  # the step advances per training call

    def test_stochastic_frequencies_follow_the_values(self):
        # Windows [1, 3]: 3 is picked with probability 3/4.
        x = torch.tensor([1.0, 3.0]).repeat(20000).reshape(1, 1, 1, 40000)
        y = cpt.pool2d(x, "stochastic", (1, 2), training=True, seed=3, step=1)
        frac = (y == 3).double().mean().item()
        self.assertAlmostEqual(frac, 0.75, delta=0.015)

    def test_rank_draws_follow_the_rank_weights(self):
        # Windows [1, 3], a = 0.5: rank 1 (the 3) has weight 0.5, rank 2 0.25: 3 drawn 2/3.
        x = torch.tensor([1.0, 3.0]).repeat(20000).reshape(1, 1, 1, 40000)
        y = cpt.pool2d(x, "rsp", (1, 2), a=0.5, training=True, seed=3, step=1)
        self.assertTrue(((y == 3) | (y == 1)).all())
        self.assertAlmostEqual((y == 3).double().mean().item(), 2 / 3, delta=0.015)
        self.assertFalse(torch.equal(
            y, cpt.pool2d(x, "rsp", (1, 2), a=0.5, training=True, seed=3, step=2)))

    def test_mixed_training_draws_max_or_avg(self):
        x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
        seen = set()
        for step in range(1, 12):
            y = cpt.pool2d(x, "mixed", training=True, seed=1, step=step)
            is_max = torch.allclose(y, F.max_pool2d(x, 2), atol=1e-6)
            is_avg = torch.allclose(y, F.avg_pool2d(x, 2), atol=1e-6)
            self.assertTrue(is_max != is_avg)
            seen.add(is_max)
        self.assertEqual(seen, {True, False})


class BadInput(unittest.TestCase):
    def test_clear_errors(self):
        x = torch.randn(2, 3, 8, 8)
        bad = [
            (ValueError, lambda: cpt.pool2d(torch.randn(3, 8, 8), "max")),
            (ValueError, lambda: cpt.pool2d(x, "avgtopk", 2, k=5)),
            (ValueError, lambda: cpt.pool2d(x, "avgtopk", 3, k=0)),
            (ValueError, lambda: cpt.pool2d(x, "tmaxavg", 3, k=65)),
            (ValueError, lambda: cpt.pool2d(x, "nope")),
            (ValueError, lambda: cpt.pool2d(x, "max", 3, padding=2)),
            (ValueError, lambda: cpt.pool2d(x, "max", 9)),
            (ValueError, lambda: cpt.pool2d(x, "max", 2, stride=0)),
            (ValueError, lambda: cpt.pool2d(x, "lp", p=0.0)),
            (ValueError, lambda: cpt.pool2d(x, "lp", p=float("inf"))),
            (ValueError, lambda: cpt.pool2d(torch.randn(0, 3, 8, 8), "max")),
            (ValueError, lambda: cpt.pool2d(x, "max", alpha=torch.zeros(1))),
            (TypeError, lambda: cpt.pool2d(x.int(), "max")),
            (TypeError, lambda: cpt.pool2d(x, "max", 2.5)),
            (TypeError, lambda: cpt.pool2d([1, 2], "max")),
            (ValueError, lambda: cpt.AvgTopK(k=10, kernel_size=3)),
            (ValueError, lambda: cpt.pool2d(x, "rwp", a=0.0)),
            (ValueError, lambda: cpt.pool2d(x, "rwp", a=1e-50)),
            (ValueError, lambda: cpt.pool2d(x, "rwp", a=True)),
            (RuntimeError, lambda: cpt._C.forward(x, 9, 2, 2, 2, 2, 0, 0, True, 2, 2.0, 0.0, 1e-50,
                                                  False, 0, 0, 0, torch.empty(0))),
            (ValueError, lambda: cpt.pool2d(x, "rsp", a=1.5)),
            (ValueError, lambda: cpt.RankWeightedPool(kernel_size=(8, 9))),
            (RuntimeError, lambda: cpt._C.forward(torch.randn(1, 1, 9, 9), 9, 9, 9, 9, 9, 0, 0,
                                                  True, 2, 2.0, 0.0, 0.5, False, 0, 0, 0,
                                                  torch.empty(0))),
            (RuntimeError, lambda: cpt._C.forward(torch.randn(3, 8, 8), 0, 2, 2, 2, 2, 0, 0, True,
                                                  2, 2.0, 0.0, 0.5, False, 0, 0, 0,
                                                  torch.empty(0))),
            (RuntimeError, lambda: cpt._C.forward(x, 6, 2, 2, 2, 2, 0, 0, True, 9, 2.0, 0.0, 0.5,
                                                  False, 0, 0, 0, torch.empty(0))),
            (RuntimeError, lambda: cpt._C.forward(x, 1, 20, 20, 1, 1, 0, 0, True, 2, 2.0, 0.0,
                                                  0.5, False, 0, 0, 0, torch.empty(0))),
            (RuntimeError, lambda: cpt._C.backward(x, torch.zeros(2, 3, 3, 3), torch.zeros(2, 3, 3, 3),
                                                   1, 2, 2, 2, 2, 0, 0, True, 2, 2.0, 0.0, 0.5, False,
                                                   0, 0, 0, torch.empty(0), torch.empty(0))),
        ]
        for i, (exc, fn) in enumerate(bad):
            with self.subTest(case=i):
                with self.assertRaises(exc) as ctx:
                    fn()
                self.assertIn("convpool_torch", str(ctx.exception))

    def test_non_contiguous_and_double_inputs_work(self):
        x = torch.randn(2, 3, 8, 8, dtype=torch.float64).transpose(2, 3)
        y = cpt.AvgTopK(k=3)(x)
        self.assertEqual(y.dtype, torch.float64)
        torch.testing.assert_close(y, C.avgtopk(x, 2, 2, 3), rtol=1e-5, atol=1e-5)


class InterMap(unittest.TestCase):
    """Inter-map pooling (the engine's intermap_pool op) against its composition."""

    def test_matches_the_composition_and_gradcheck(self):
        gen = torch.Generator().manual_seed(SEED + 7)
        for groups, mode in ((2, "max"), (3, "mean"), (6, "max"), (1, "max")):
            # Distinct values: amax's gradient splits ties evenly, ours goes to the first.
            x = grid_input((2, 6, 3, 4), gen).requires_grad_(True)
            with self.subTest(groups=groups, mode=mode):
                module = cpt.InterMapPool(groups, mode)
                y = module(x)
                self.assertEqual(y.dtype, torch.float64)
                want = C.intermap(x, groups, mode)
                torch.testing.assert_close(y, want, rtol=1e-6, atol=1e-6)
                g = torch.randn(y.shape, generator=gen, dtype=torch.float64)
                (g_ours,) = torch.autograd.grad((y * g).sum(), x)
                (g_want,) = torch.autograd.grad((want * g).sum(), x)
                torch.testing.assert_close(g_ours, g_want, rtol=1e-6, atol=1e-6)
                self.assertTrue(gradcheck(lambda x: cpt.intermap_pool2d(x, groups, mode), (x,)))

    def test_ties_go_to_the_first_map_and_nan_propagates(self):
        x = torch.tensor([[[[2.0, 1.0]], [[2.0, float("nan")]]]], requires_grad=True)
        y = cpt.intermap_pool2d(x, 2)
        self.assertEqual(y[0, 0, 0, 0].item(), 2.0)
        self.assertTrue(torch.isnan(y[0, 0, 0, 1]))
        y.backward(torch.ones_like(y))
        self.assertEqual(x.grad.flatten().tolist(), [1.0, 0.0, 0.0, 1.0])

    def test_clear_errors(self):
        x = torch.randn(2, 6, 4, 4)
        for exc, fn in ((ValueError, lambda: cpt.intermap_pool2d(x, 4)),
                        (ValueError, lambda: cpt.intermap_pool2d(x, 0)),
                        (ValueError, lambda: cpt.intermap_pool2d(x, 2, "median")),
                        (ValueError, lambda: cpt.InterMapPool(True)),
                        (RuntimeError, lambda: cpt._C.intermap_forward(x, 4, 0)),
                        (RuntimeError, lambda: cpt._C.intermap_backward(x, torch.zeros(2, 2, 4, 4),
                                                                        2, 0))):
            with self.assertRaises(exc) as ctx:
                fn()
            self.assertIn("convpool_torch", str(ctx.exception))


class Weighted(unittest.TestCase):
    """Weighted pooling (the engine's weighted_pool op) against its composition."""

    CASES = [(2, 2, 0, False), (3, 2, 1, False), (3, 1, 1, True), (2, 3, 0, True),
             (4, 2, 2, False)]

    def test_matches_the_composition_and_gradcheck(self):
        gen = torch.Generator().manual_seed(SEED + 9)
        for size, stride, pad, shared in self.CASES:
            with self.subTest(size=size, stride=stride, pad=pad, shared=shared):
                x = grid_input((2, 3, 7, 6), gen).requires_grad_(True)
                module = cpt.WeightedPool(3, size, stride, pad, shared).double()
                with torch.no_grad():
                    module.weight.copy_(torch.randn(module.weight.shape, generator=gen,
                                                    dtype=torch.float64))
                y = module(x)
                self.assertEqual(y.dtype, torch.float64)
                want = C.weighted(x, module.weight, size, stride, pad)
                torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-5)
                g = torch.randn(y.shape, generator=gen, dtype=torch.float64)
                ours = torch.autograd.grad((y * g).sum(), (x, module.weight))
                theirs = torch.autograd.grad((want * g).sum(), (x, module.weight))
                for a, b in zip(ours, theirs):
                    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
                w = module.weight.detach().clone().requires_grad_(True)
                self.assertTrue(gradcheck(
                    lambda x, w: cpt.weighted_pool2d(x, w, size, stride, pad), (x, w)))

    def test_zero_weights_are_average_pooling_without_the_padding(self):
        x = torch.randn(2, 4, 6, 6)
        y = cpt.WeightedPool(4, 3, 2, 1)(x)
        want = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
        torch.testing.assert_close(y, want, rtol=1e-6, atol=1e-6)

    def test_clear_errors(self):
        x = torch.randn(2, 3, 5, 5)
        w = torch.zeros(3, 1, 2, 2)
        for exc, fn in ((ValueError, lambda: cpt.weighted_pool2d(x, w, 3)),
                        (ValueError, lambda: cpt.weighted_pool2d(x, torch.zeros(2, 1, 2, 2), 2)),
                        (ValueError, lambda: cpt.weighted_pool2d(x, w, 2, padding=2)),
                        (ValueError, lambda: cpt.weighted_pool2d(x, torch.zeros(3, 1, 9, 9), 9)),
                        (ValueError, lambda: cpt.WeightedPool(0)),
                        (RuntimeError, lambda: cpt._C.weighted_forward(x, w, 3, 1, 0)),
                        (RuntimeError, lambda: cpt._C.weighted_backward(
                            x, w, torch.zeros(2, 3, 2, 2), torch.zeros(2, 3, 3, 3), 2, 2, 0))):
            with self.assertRaises(exc) as ctx:
                fn()
            self.assertIn("convpool_torch", str(ctx.exception))


class Lip(unittest.TestCase):
    """Local importance pooling (the engine's lip_pool op) against its paper's lip2d."""

    CASES = [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 3, 0), (4, 2, 2)]

    def test_matches_the_composition_and_gradcheck(self):
        gen = torch.Generator().manual_seed(SEED + 10)
        for size, stride, pad in self.CASES:
            with self.subTest(size=size, stride=stride, pad=pad):
                x = grid_input((2, 3, 7, 6), gen).requires_grad_(True)
                module = cpt.LipPool(3, size, stride, pad).double()
                with torch.no_grad():
                    module.logit_scale.copy_(torch.tensor([0.0, 1.5, -2.0], dtype=torch.float64))
                y = module(x)
                self.assertEqual(y.dtype, torch.float64)
                want = C.lip(x, module.logit_scale, size, stride, pad)
                torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-5)
                g = torch.randn(y.shape, generator=gen, dtype=torch.float64)
                ours = torch.autograd.grad((y * g).sum(), (x, module.logit_scale))
                theirs = torch.autograd.grad((want * g).sum(), (x, module.logit_scale))
                for a, b in zip(ours, theirs):
                    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
                gamma = module.logit_scale.detach().clone().requires_grad_(True)
                self.assertTrue(gradcheck(
                    lambda x, gm: cpt.lip_pool2d(x, gm, size, stride, pad), (x, gamma)))

    def test_zero_scale_is_average_pooling_without_the_padding(self):
        x = torch.randn(2, 4, 6, 6)
        y = cpt.LipPool(4, 3, 2, 1)(x)
        want = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
        torch.testing.assert_close(y, want, rtol=1e-6, atol=1e-6)

    def test_clear_errors(self):
        x = torch.randn(2, 3, 5, 5)
        gm = torch.zeros(3)
        for exc, fn in ((ValueError, lambda: cpt.lip_pool2d(x, torch.zeros(2), 2)),
                        (ValueError, lambda: cpt.lip_pool2d(x, gm, 2, padding=2)),
                        (ValueError, lambda: cpt.lip_pool2d(x, gm, 9)),
                        (ValueError, lambda: cpt.LipPool(0)),
                        (RuntimeError, lambda: cpt._C.lip_forward(x, gm, 9, 1, 0)),
                        (RuntimeError, lambda: cpt._C.lip_backward(
                            x, gm, torch.zeros(2, 3, 2, 2), torch.zeros(2, 3, 3, 3), 2, 2, 0))):
            with self.assertRaises(exc) as ctx:
                fn()
            self.assertIn("convpool_torch", str(ctx.exception))


class Pyramid(unittest.TestCase):
    def test_matches_the_composition_and_gradcheck(self):
        gen = torch.Generator().manual_seed(SEED + 8)
        for sizes in ((1, 3, 5), (3,), (7, 1)):
            x = grid_input((2, 3, 6, 7), gen).requires_grad_(True)
            with self.subTest(sizes=sizes):
                y = cpt.PyramidPool(sizes)(x)
                self.assertEqual(tuple(y.shape), (2, 3 * len(sizes), 6, 7))
                torch.testing.assert_close(y, C.pyramid(x, sizes), rtol=1e-6, atol=1e-6)
                self.assertTrue(gradcheck(cpt.PyramidPool(sizes), (x,)))

    def test_clear_errors(self):
        for sizes in ((2,), (9,), (3, 3), (), (True,), 3):
            with self.assertRaises(ValueError):
                cpt.PyramidPool(sizes)


class Modules(unittest.TestCase):
    def test_tutorial_cnn_trains(self):
        torch.manual_seed(SEED)
        model = C.tutorial_cnn(cpt.AvgTopK(3, 2), cpt.AvgTopK(3, 2), 2304)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x, labels = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
        losses = []
        for _ in range(8):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), labels)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        self.assertLess(losses[-1], losses[0])  # memorising one batch

    @unittest.skipUnless(torch.cuda.is_available() and cpt.built_with_cuda(),
                         "no CUDA device or convpool_torch built without CUDA")
    def test_cuda_matches_cpu(self):  # pragma: no cover - needs a GPU
        gen = torch.Generator().manual_seed(SEED)
        for method, params in METHOD_CASES:
            x = tie_input((2, 3, 8, 8), gen).float()
            for dev_x in (x, x.cuda()):
                dev_x.requires_grad_(True)
            y_cpu = cpt.pool2d(x, method, **params)
            y_gpu = cpt.pool2d(x.cuda(), method, **params)
            torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-5, atol=1e-5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
