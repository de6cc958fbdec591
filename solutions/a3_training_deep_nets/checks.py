"""Trusted checks of a3_training_deep_nets: how each grade cell is graded (never released).

Deterministic layers (batch norm, the update rules) are compared with `cnnlib.numpy`'s reference
on fixed edge cases and on random cases drawn from the seed the grader gives each check, in
float64 and float32, each dtype a check of its own with a2's tolerances (rounding in another order
moves float64 results by ~1e-15 relative, float32 ones by ~1e-6). Backward passes are judged as
gradients: the student's backward on the student's own cache, against the reference's backward.

Random layers (the initialisers, dropout) cannot be compared number by number with the reference:
two correct answers may draw their numbers in another order. Their probes make every draw from a
generator seeded by the case, so a given implementation always gets the same grade, and report
statistics of what came back (and yes/no facts, compared exactly). Each statistic's tolerance is
written beside it, as a multiple of its sampling spread on the case's sizes (at least 200,000
numbers), so an honest answer fails with a probability below one in a million per comparison,
while the classic mistakes (fan-out for fan-in, Glorot's variance for Xavier's, the factor 2 of He
forgotten, uniform for Gaussian, the keep and drop probabilities swapped) are off by ten times the
tolerance or more.

The sanity checks and the learning-rate search are graded by outcome on small problems the probe
builds itself (a linear classifier, a two-layer net on 20 random examples, a known score curve).

While the student's code is checked, the cnnlib.numpy modules that hold what students write here
raise (an answer that calls them gets nothing and is flagged); the affine layer, the ReLU and the
softmax loss stay available, as the notebook's provided network uses them.
"""

import math

import numpy as np

import cnnlib.numpy as cn
from cnnlib.grading import Assignment, Backward, Close, Probe

BLOCKED = [
    "numpy/init.py", "numpy/batchnorm.py", "numpy/dropout.py", "numpy/optim.py",
    "numpy/regularization.py", "numpy/search.py", "numpy/solver.py",
]  # fmt: skip

assignment = Assignment(blocked=BLOCKED)

DTYPES = {"float64": np.float64, "float32": np.float32}
TOLERANCE = {"float64": Close(rtol=1e-7, atol=1e-9), "float32": Close(rtol=1e-4, atol=1e-4)}


def _normal(rng, shape, dtype, scale=1.0, shift=0.0):
    return (shift + scale * rng.standard_normal(shape)).astype(dtype)


def _per_dtype(grade_id, probe, make, reference, hint, **options):
    """One check per dtype: make(seed, dtype) gives the cases."""
    for name, dtype in DTYPES.items():
        assignment.check(
            grade_id, probe, cases=lambda seed, dtype=dtype: make(seed, dtype),
            reference=reference, compare=TOLERANCE[name], hint=hint, **options,
        )  # fmt: skip


# ------------------------------------------------------------------------------ fan-in


def fan_in_cases(seed, n=10):
    rng = np.random.default_rng(seed)
    shapes = [(1, 1), (64, 10), (10, 64), (1, 1, 1, 1), (16, 3, 3, 3), (8, 4, 5, 1), (2, 7, 1, 3)]
    for _ in range(n):
        ndim = int(rng.choice([2, 4]))
        shapes.append(tuple(int(d) for d in rng.integers(1, 12, size=ndim)))
    return [{"shape": shape} for shape in shapes]


assignment.check(
    "test_fan_in", "fan_in", cases=fan_in_cases, reference=cn.fan_in, compare=Close(),
    hint="affine (D, M): D; conv (F, C, KH, KW): C * KH * KW, as a Python int",
)  # fmt: skip

# ------------------------------------------------------------------------------ initialisers


def init_statistics(ns, name, shape, seed, dtype):
    """Draw with the student's initialiser from generators seeded here, and describe the result."""
    import numpy as np

    shape, dtype = tuple(shape), np.dtype(dtype)
    draw = ns[name]
    w = draw(shape, np.random.default_rng(seed), dtype=dtype)
    again = draw(shape, np.random.default_rng(seed), dtype=dtype)
    other = draw(shape, np.random.default_rng(seed + 1), dtype=dtype)
    fan = shape[0] if len(shape) == 2 else shape[1] * shape[2] * shape[3]
    target = np.sqrt({"xavier_init": 1.0, "he_init": 2.0}[name] / fan)
    values = np.asarray(w, dtype=np.float64)
    std = values.std()
    return {
        "type": type(w).__name__, "shape": list(w.shape), "dtype": str(w.dtype),
        "same generator state, same weights": bool(np.array_equal(w, again)),
        "another generator state, other weights": not np.array_equal(w, other),
        "std / the target std": float(std / target),
        "mean / the target std": float(values.mean() / target),
        "kurtosis / 3 (Gaussian: 1)": float(np.mean(((values - values.mean()) / std) ** 4) / 3),
    }  # fmt: skip


def init_cases(seed, n=4):
    """Shapes of 200,000 to 400,000 weights whose fan-in and fan-out differ (a mix-up shows)."""
    rng = np.random.default_rng(seed)
    shapes = [(400, 600), (1000, 250), (3, 80000), (64, 32, 11, 11), (256, 128, 3, 3),
              (1024, 3, 11, 11), (512, 64, 1, 7)]  # fmt: skip
    for _ in range(n):
        if rng.random() < 0.5:
            fan = int(rng.integers(20, 2000))
            shapes.append((fan, math.ceil(300_000 / fan)))
        else:
            c, kh, kw = (int(d) for d in rng.integers(1, 8, size=3))
            shapes.append((math.ceil(300_000 / (c * kh * kw)), c, kh, kw))
    return [{"shape": list(shape), "seed": int(rng.integers(0, 2**31)),
             "dtype": ["float64", "float32"][i % 2]}
            for i, shape in enumerate(shapes)]  # fmt: skip


# Tolerance 0.03 on each ratio, for n >= 200,000 draws from one implementation and n from the
# reference: the std's ratio spreads by 1/sqrt(2n) <= 0.0016 (the difference of two: 0.0022, so
# 0.03 is 13 of them), the mean's by 1/sqrt(n) <= 0.0022 (difference 0.0032: 9 of them), the
# kurtosis / 3 by sqrt(24/n)/3 <= 0.0037 (difference 0.0052: 5.8 of them). Mistakes move them by
# 0.1 (Glorot's 2/(fan_in + fan_out) on (400, 600)), 0.18 (fan-out for fan-in on (400, 600)),
# 0.29 (He without its 2) and 0.4 (uniform instead of Gaussian: kurtosis 1.8).
STATISTICS = Close(rtol=0, atol=0.03)


def _reference_init(function):
    def draw(shape, rng, dtype=np.float64):
        return function(shape, rng=rng, dtype=dtype)

    return draw


for _name, _reference, _hint in [
    ("xavier_init", cn.xavier, "std sqrt(1 / fan_in): rng.standard_normal(shape) * sqrt(1 / "
     "fan_in), drawn from the rng you are given, then cast to dtype"),
    ("he_init", cn.he, "std sqrt(2 / fan_in): rng.standard_normal(shape) * sqrt(2 / fan_in), "
     "drawn from the rng you are given, then cast to dtype"),
]:  # fmt: skip
    assignment.check(
        f"test_{_name}",
        Probe(init_statistics, subjects=(_name,), title=f"{_name} statistics"),
        cases=lambda seed, name=_name: [{"name": name, **c} for c in init_cases(seed)],
        reference={_name: _reference_init(_reference)}, compare=STATISTICS, hint=_hint,
    )

# ------------------------------------------------------------------------------ batch norm


def batchnorm_steps(ns, name, batches, gamma, beta, test_x, running=None, options=None):
    """Train-mode steps on each batch, then a test-mode call: every output and the running
    statistics left in the state (made here, from copies: the layer may update it in place)."""
    import numpy as np

    options = options or {}
    state = {}
    if running is not None:
        state = {"running_mean": np.array(running[0]), "running_var": np.array(running[1])}
    forward = ns[name]
    outs = [forward(x, gamma, beta, state, train=True, **options)[0] for x in batches]
    test_out = forward(test_x, gamma, beta, state, train=False, **options)[0]
    return {"train outputs": outs, "running_mean": state.get("running_mean"),
            "running_var": state.get("running_var"), "test output": test_out}  # fmt: skip


def batchnorm_case(rng, dtype, x_shape, steps, running, options):
    features = x_shape[1]
    scale = rng.uniform(0.5, 3.0, size=features)  # features of different sizes and means
    shift = rng.uniform(-2.0, 2.0, size=features)

    def batch():
        x = shift + scale * rng.standard_normal(x_shape).swapaxes(1, -1)
        return x.swapaxes(1, -1).astype(dtype)

    case = {
        "batches": [batch() for _ in range(steps)],
        "gamma": _normal(rng, features, dtype, 0.5, 1.0), "beta": _normal(rng, features, dtype),
        "test_x": batch(),
    }  # fmt: skip
    if running:
        case["running"] = [_normal(rng, features, dtype),
                           rng.uniform(0.5, 2.0, features).astype(dtype)]  # fmt: skip
    if options:
        case["options"] = options
    return case


def batchnorm_cases(seed, dtype, spatial=False, n=8):
    rng = np.random.default_rng(seed)
    if spatial:
        shapes = [(2, 1, 1, 1), (1, 3, 2, 2), (4, 2, 3, 5), (2, 5, 4, 4)]
        shapes += [tuple(int(d) for d in rng.integers(1, 6, size=4)) for _ in range(n)]
        shapes = [s for s in shapes if s[0] * s[2] * s[3] >= 2]
    else:
        shapes = [(2, 1), (3, 4), (16, 5), (7, 1)]
        shapes += [(int(rng.integers(2, 20)), int(rng.integers(1, 8))) for _ in range(n)]
    option_sets = [None, {"momentum": 0.5}, {"momentum": 0.0, "eps": 1e-3}, {"momentum": 0.99},
                   {"eps": 1e-1}, {"momentum": 1.0}]  # fmt: skip
    cases = []
    for i, shape in enumerate(shapes):
        cases.append(batchnorm_case(rng, dtype, shape, steps=1 + i % 3, running=i % 2 == 1,
                                    options=option_sets[i % len(option_sets)]))  # fmt: skip
    # a constant feature: its variance is 0, and eps keeps the division finite
    constant = batchnorm_case(rng, dtype, shapes[2], 2, False, None)
    for x in constant["batches"]:
        x[:, 0] = 1.5
    cases.append(constant)
    return cases


def _bn_reference(function):
    return {"batchnorm_forward": function, "spatial_batchnorm_forward": function}


_per_dtype(
    "test_batchnorm_forward",
    Probe(batchnorm_steps, subjects=("batchnorm_forward",), title="batchnorm_forward steps"),
    lambda seed, dtype: [{"name": "batchnorm_forward", **c}
                         for c in batchnorm_cases(seed, dtype)],
    {"batchnorm_forward": cn.batchnorm_forward},
    "train: normalise with the batch's mean and biased variance, then running = momentum * "
    "running + (1 - momentum) * batch statistic (the unbiased variance, N / (N - 1) times the "
    "biased one, for running_var); test: normalise with the running statistics",
)


def _backward_cases(forward_cases, seed):
    """Each forward case as a backward case: state {} in train mode (made by the layer, so
    nothing of the case is changed), the running statistics in test mode (only read)."""
    rng = np.random.default_rng(seed)
    made = []
    for i, case in enumerate(forward_cases):
        for x in case["batches"][:1]:
            train = i % 3 != 2 or "running" not in case
            state = {} if train else {"running_mean": case["running"][0],
                                      "running_var": case["running"][1]}  # fmt: skip
            inputs = {"x": x, "gamma": case["gamma"], "beta": case["beta"], "state": state,
                      "train": train, **(case.get("options") or {})}  # fmt: skip
            made.append({"inputs": inputs, "dout": _normal(rng, x.shape, x.dtype, 2.0)})
    return made


for _grade_id, _backward, _hint in [
    ("test_batchnorm_backward", "batchnorm_backward",
     "walk the graph backwards: dbeta, dgamma, dx_hat, then through inv_std and the variance, "
     "then through the mean; in test mode the statistics are constants: dx = dout * gamma * "
     "inv_std"),
    ("test_batchnorm_backward_alt", "batchnorm_backward_alt",
     "dx = gamma * inv_std / N * (N * dout - sum(dout) - x_hat * sum(dout * x_hat)), sums over "
     "the batch; in test mode dx = dout * gamma * inv_std"),
]:  # fmt: skip
    _per_dtype(
        _grade_id, Backward("batchnorm_forward", _backward),
        lambda seed, dtype: _backward_cases(batchnorm_cases(seed, dtype), seed + 1),
        {"batchnorm_forward": cn.batchnorm_forward, _backward: cn.batchnorm_backward},
        _hint, plug_in=("batchnorm_forward",),
    )

_per_dtype(
    "test_spatial_batchnorm_forward",
    Probe(batchnorm_steps, subjects=("spatial_batchnorm_forward",),
          title="spatial_batchnorm_forward steps"),
    lambda seed, dtype: [{"name": "spatial_batchnorm_forward", **c}
                         for c in batchnorm_cases(seed, dtype, spatial=True)],
    {"spatial_batchnorm_forward": cn.spatial_batchnorm_forward},
    "move the channels last and flatten: x.transpose(0, 2, 3, 1).reshape(-1, C), one example "
    "per pixel; batch-normalise that, then reshape and transpose back to (N, C, H, W)",
    plug_in=("batchnorm_forward",),
)


def _spatial_backward(dout, cache):
    return cn.spatial_batchnorm_backward(dout, cache)


_per_dtype(
    "test_spatial_batchnorm_backward",
    Backward("spatial_batchnorm_forward", "spatial_batchnorm_backward"),
    lambda seed, dtype: _backward_cases(batchnorm_cases(seed, dtype, spatial=True), seed + 1),
    {"spatial_batchnorm_forward": cn.spatial_batchnorm_forward,
     "spatial_batchnorm_backward": _spatial_backward},
    "the same reshape of dout as of x in the forward pass, your batchnorm_backward_alt, and dx "
    "shaped back to (N, C, H, W)",
    plug_in=("batchnorm_forward", "batchnorm_backward_alt", "spatial_batchnorm_forward"),
)

# ------------------------------------------------------------------------------ dropout


def dropout_reference_forward(x, keep_prob, train, rng):
    out, (mask, keep_prob, train, _) = cn.dropout_forward(x, keep_prob, train, seed=rng)
    return out, (mask, keep_prob, train)


def dropout_reference_backward(dout, cache):
    return cn.dropout_backward(dout, (*cache, True))


def dropout_forward_statistics(ns, shape, keep_prob, seed, dtype):
    """The student's dropout on x (no zeros in it: a zero out is a dropped unit), with generators
    seeded here: what was kept, how it was scaled, and what the generator decided."""
    import numpy as np

    forward = ns["dropout_forward"]
    x = np.random.default_rng(seed).uniform(0.5, 1.5, tuple(shape)).astype(dtype)
    x_before = x.copy()
    out, _ = forward(x, keep_prob, True, np.random.default_rng(seed + 1))
    again, _ = forward(x, keep_prob, True, np.random.default_rng(seed + 1))
    other, _ = forward(x, keep_prob, True, np.random.default_rng(seed + 2))
    test, _ = forward(x, keep_prob, False, np.random.default_rng(seed + 3))
    kept = out != 0
    rtol = 1e-5 if x.dtype == np.float32 else 1e-12
    return {
        "type": type(out).__name__, "shape": list(out.shape), "dtype": str(out.dtype),
        "fraction of units kept": float(kept.mean()),
        "kept units are x / keep_prob": bool(np.allclose(out[kept], x[kept] / keep_prob,
                                                         rtol=rtol, atol=0)),
        "same generator state, same mask": bool(np.array_equal(out, again)),
        "another generator state, another mask": not np.array_equal(kept, other != 0),
        "test mode returns x unchanged": bool(np.array_equal(test, x)) and test.dtype == x.dtype,
        "x left unchanged": bool(np.array_equal(x, x_before)),
    }  # fmt: skip


def dropout_cases(seed, n=4):
    rng = np.random.default_rng(seed)
    shapes = [(200_000,), (500, 400), (8, 16, 40, 40), (1000, 3, 9, 9)]
    keeps = [0.5, 0.8, 0.2, 0.9, 1.0, 0.35, 0.65]
    for _ in range(n):
        shapes.append((int(rng.integers(400, 800)), int(rng.integers(400, 800))))
    return [{"shape": list(shape), "keep_prob": keeps[i % len(keeps)],
             "seed": int(rng.integers(0, 2**31)), "dtype": ["float64", "float32"][i % 2]}
            for i, shape in enumerate(shapes)]  # fmt: skip


# Tolerance 0.01 on the fraction kept: over n >= 200,000 units it spreads by sqrt(p(1 - p) / n)
# <= 0.0011 (the difference between the student's and the reference's: 0.0016, so 0.01 is six of
# them). Swapping keep and drop moves it by 0.3 or more on every case but keep_prob 0.5.
assignment.check(
    "test_dropout_forward",
    Probe(dropout_forward_statistics, subjects=("dropout_forward",),
          title="dropout_forward statistics"),
    cases=dropout_cases, reference={"dropout_forward": dropout_reference_forward},
    compare=Close(rtol=0, atol=0.01),
    hint="train: mask = rng.random(x.shape) < keep_prob (keep_prob is the probability of "
    "keeping a unit), out = x * mask / keep_prob, drawn from the rng you are given; test: out = x",
)


def dropout_backward_facts(ns, shape, keep_prob, seed, dtype):
    """The student's backward after a forward: dx must be dout through that forward's mask."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 1.5, tuple(shape)).astype(dtype)
    dout = rng.standard_normal(tuple(shape)).astype(dtype)
    dout_before = dout.copy()
    out, cache = ns["dropout_forward"](x, keep_prob, True, np.random.default_rng(seed + 1))
    dx = ns["dropout_backward"](dout, cache)
    kept = np.asarray(out) != 0
    _, test_cache = ns["dropout_forward"](x, keep_prob, False, np.random.default_rng(seed + 2))
    dx_test = ns["dropout_backward"](dout, test_cache)
    rtol = 1e-5 if x.dtype == np.float32 else 1e-12
    return {
        "type": type(dx).__name__, "dtype": str(dx.dtype),
        "dx = dout * the forward's mask / keep_prob": bool(
            np.shape(dx) == dout.shape
            and np.allclose(dx, dout * kept / keep_prob, rtol=rtol, atol=0)),
        "test mode: dx = dout": bool(np.array_equal(dx_test, dout)),
        "dout left unchanged": bool(np.array_equal(dout, dout_before)),
    }  # fmt: skip


assignment.check(
    "test_dropout_backward",
    Probe(dropout_backward_facts, subjects=("dropout_backward",), title="dropout_backward"),
    cases=lambda seed: dropout_cases(seed, n=2),
    reference={"dropout_forward": dropout_reference_forward,
               "dropout_backward": dropout_reference_backward},
    compare=Close(rtol=0, atol=0), plug_in=("dropout_forward",),
    hint="use the mask the forward pass kept in its cache (never draw a new one): dx = dout * "
    "mask / keep_prob in train mode, dx = dout in test mode",
)  # fmt: skip

# ------------------------------------------------------------------------------ update rules


def update_steps(ns, rule, w, grads, config):
    """Several steps of an update rule, one config dict passed back each time: the weights after
    every step, and the weights handed in left unchanged."""
    import numpy as np

    path = []
    for dw in grads:
        before = np.array(w, copy=True)
        next_w, config = ns[rule](w, dw, config)
        if not np.array_equal(w, before):
            raise ValueError(f"{rule} changed w in place: return a new array")
        path.append(next_w)
        w = next_w
    return path


def update_cases(seed, dtype, hyper, n=8):
    rng = np.random.default_rng(seed)
    cases = [
        {"w": np.array([1.0]), "grads": [np.array([1.0])] * 3, "config": None},
        {"w": np.array([[1.0, -2.0]]), "grads": [np.array([[0.5, 0.5]])] * 2,
         "config": {"weight_decay": 0.1}},
    ]  # fmt: skip
    for _ in range(n):
        shape = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 4))))
        config = {key: float(rng.choice(values)) for key, values in hyper.items()
                  if rng.random() < 0.8}  # fmt: skip
        cases.append({"w": rng.standard_normal(shape),
                      "grads": [rng.standard_normal(shape) for _ in range(int(rng.integers(1, 7)))],
                      "config": config})  # fmt: skip
    for case in cases:
        case["w"] = case["w"].astype(dtype)
        case["grads"] = [g.astype(dtype) for g in case["grads"]]
    return cases


_DECAY = [0.0, 1e-4, 0.01, 0.5]
_RULES = [
    ("test_sgd", "sgd", {"learning_rate": [1e-3, 0.1, 0.5], "weight_decay": _DECAY},
     "dw = dw + weight_decay * w (the gradient of 0.5 * weight_decay * ||w||^2), then w - "
     "learning_rate * dw"),
    ("test_sgd_momentum", "sgd_momentum",
     {"learning_rate": [1e-3, 0.1], "momentum": [0.0, 0.5, 0.9, 0.99], "weight_decay": _DECAY},
     "dw = dw + weight_decay * w; v = momentum * v + dw; w - learning_rate * v, with v kept in "
     "config['velocity'] between calls"),
    ("test_adam", "adam",
     {"learning_rate": [1e-3, 1e-2, 0.1], "beta1": [0.0, 0.5, 0.9], "beta2": [0.9, 0.999],
      "epsilon": [1e-8, 1e-4], "weight_decay": _DECAY},
     "t = t + 1, m and v running means of dw and dw**2 (dw with weight_decay * w added), "
     "divided by 1 - beta1**t and 1 - beta2**t before the step; m, v and t live in config"),
]  # fmt: skip
for _grade_id, _rule, _hyper, _hint in _RULES:
    _per_dtype(
        _grade_id, Probe(update_steps, subjects=(_rule,), title=f"{_rule} steps"),
        lambda seed, dtype, rule=_rule, hyper=_hyper: [
            {"rule": rule, **c} for c in update_cases(seed, dtype, hyper)],
        {_rule: getattr(cn, _rule)}, _hint,
    )  # fmt: skip

# ------------------------------------------------------------------------------ sanity checks


def initial_loss_probe(ns, weight_scale, examples, features, classes, reg, seed):
    """check_initial_loss on a linear softmax classifier made here, with L2 regularisation."""
    import numpy as np

    rng = np.random.default_rng(seed)
    params = {"W": weight_scale * rng.standard_normal((features, classes)),
              "b": np.zeros(classes)}  # fmt: skip
    X = rng.standard_normal((examples, features))
    y = rng.integers(0, classes, size=examples)

    def linear_loss(params, X, y=None, reg=0.0):
        scores = X @ params["W"] + params["b"]
        if y is None:
            return scores
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -float(log_probs[np.arange(len(y)), y].mean())
        loss += 0.5 * reg * float(np.sum(params["W"] ** 2))
        return loss, {}

    return ns["check_initial_loss"](linear_loss, params, X, y, reg=reg)


def check_initial_loss_reference(loss_function, params, X, y, reg=1.0):
    classes = loss_function(params, X).shape[1]
    expected = math.log(classes)
    loss, _ = loss_function(params, X, y, 0.0)
    loss_with_reg, _ = loss_function(params, X, y, reg)
    return {"classes": int(classes), "expected": expected, "loss": float(loss),
            "loss_with_reg": float(loss_with_reg),
            "looks_right": bool(abs(loss - expected) < 0.1 * expected
                                and loss_with_reg > loss)}  # fmt: skip


def initial_loss_cases(seed, n=6):
    rng = np.random.default_rng(seed)
    cases = [  # (scale, N, D, C, reg): small weights pass; large ones, or no reg effect, do not
        (1e-3, 50, 20, 10, 1.0), (1e-3, 50, 20, 3, 1.0), (1.0, 50, 20, 10, 1.0),
        (1e-3, 40, 8, 5, 0.0), (0.05, 100, 64, 10, 10.0),
    ]  # fmt: skip
    for _ in range(n):
        cases.append((float(rng.choice([1e-4, 1e-2, 0.3, 3.0])), int(rng.integers(20, 80)),
                      int(rng.integers(2, 30)), int(rng.integers(2, 12)),
                      float(rng.choice([0.0, 0.1, 5.0]))))  # fmt: skip
    keys = ("weight_scale", "examples", "features", "classes", "reg")
    return [{**dict(zip(keys, c, strict=True)), "seed": int(rng.integers(0, 2**31))}
            for c in cases]  # fmt: skip


assignment.check(
    "test_check_initial_loss",
    Probe(initial_loss_probe, subjects=("check_initial_loss",), title="check_initial_loss"),
    cases=initial_loss_cases, reference={"check_initial_loss": check_initial_loss_reference},
    compare=Close(rtol=1e-9, atol=1e-12),
    hint="C from the scores' shape, expected = ln C, the loss at reg 0 and at reg; it looks right "
    "when |loss - ln C| < 0.1 ln C and the regularised loss is larger",
)  # fmt: skip


def overfit_probe(ns, examples, features, hidden, classes, steps, learning_rate, seed):
    """overfit_small_subset on a two-layer ReLU net made here, on random points and labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    params = {"W1": rng.standard_normal((features, hidden)) * np.sqrt(2 / features),
              "b1": np.zeros(hidden),
              "W2": rng.standard_normal((hidden, classes)) * np.sqrt(2 / hidden),
              "b2": np.zeros(classes)}  # fmt: skip
    X = rng.standard_normal((examples, features))
    y = rng.integers(0, classes, size=examples)

    def two_layer(params, X, y=None, reg=0.0):
        h = np.maximum(X @ params["W1"] + params["b1"], 0)
        scores = h @ params["W2"] + params["b2"]
        if y is None:
            return scores
        shifted = scores - scores.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        n = len(y)
        loss = -float(np.log(probs[np.arange(n), y]).mean())
        dscores = probs
        dscores[np.arange(n), y] -= 1
        dscores /= n
        grads = {"W2": h.T @ dscores, "b2": dscores.sum(axis=0)}
        dh = (dscores @ params["W2"].T) * (h > 0)
        grads["W1"], grads["b1"] = X.T @ dh, dh.sum(axis=0)
        return loss, grads

    start = {name: value.copy() for name, value in params.items()}
    first_loss = two_layer(params, X, y)[0]
    result = ns["overfit_small_subset"](two_layer, params, X, y, steps=steps,
                                        learning_rate=learning_rate)
    losses = [float(v) for v in result["loss"]]
    accuracy = float(np.mean(np.argmax(two_layer(params, X), axis=1) == y))
    return {
        "steps recorded": len(losses),
        "the first loss is before any update": bool(np.isclose(losses[0], first_loss)),
        "the loss fell tenfold": losses[-1] < 0.1 * losses[0],
        "params trained in place": any(not np.array_equal(start[k], params[k]) for k in start),
        "accuracy returned": float(result["accuracy"]),
        "accuracy of the trained params": accuracy,
    }  # fmt: skip


def overfit_reference(loss_function, params, X, y, steps=200, learning_rate=1e-2):
    configs = {name: {"learning_rate": learning_rate} for name in params}
    losses = []
    for _ in range(steps):
        loss, grads = loss_function(params, X, y, 0.0)
        losses.append(loss)
        for name in params:
            params[name], configs[name] = cn.adam(params[name], grads[name], configs[name])
    predicted = np.argmax(loss_function(params, X), axis=1)
    return {"loss": losses, "accuracy": float(np.mean(predicted == y))}


def overfit_cases(seed, n=2):
    rng = np.random.default_rng(seed)
    cases = [(20, 16, 32, 5, 200, 1e-2), (20, 64, 50, 10, 150, 1e-2), (10, 4, 20, 3, 300, 3e-2)]
    for _ in range(n):
        cases.append((20, int(rng.integers(8, 64)), int(rng.integers(30, 60)),
                      int(rng.integers(2, 11)), 200, 1e-2))  # fmt: skip
    keys = ("examples", "features", "hidden", "classes", "steps", "learning_rate")
    return [{**dict(zip(keys, c, strict=True)), "seed": int(rng.integers(0, 2**31))}
            for c in cases]  # fmt: skip


assignment.check(
    "test_overfit_small_subset",
    Probe(overfit_probe, subjects=("overfit_small_subset",), title="overfit_small_subset"),
    cases=overfit_cases, reference={"overfit_small_subset": overfit_reference},
    compare=Close(rtol=0, atol=1e-9), plug_in=("adam",),
    hint="full-batch steps with your adam (one config per parameter, reg 0), the loss recorded "
    "before each step, params updated in place; the accuracy of the trained params on X",
)  # fmt: skip


def search_probe(ns, low, high, num_coarse, num_fine, optimum, seed):
    """learning_rate_search on a known score curve (a parabola in log10 of the rate, peaked at
    `optimum`): what it tried, and whether it reported what it saw."""
    import numpy as np

    calls = []

    def train(learning_rate):
        score = 1.0 - 0.1 * (np.log10(learning_rate) - np.log10(optimum)) ** 2
        calls.append((float(learning_rate), float(score)))
        return float(score)

    best, curve = ns["learning_rate_search"](train, low, high, num_coarse=num_coarse,
                                             num_fine=num_fine, seed=seed)
    curve = [(float(rate), float(score)) for rate, score in curve]
    coarse, fine = calls[:num_coarse], calls[num_coarse:]
    lo, hi = np.log10(low), np.log10(high)
    logs = np.log10([rate for rate, _ in coarse]) if coarse else np.array([])
    best_coarse = max(coarse, key=lambda c: c[1])[0] if coarse else None
    tiny = 1e-9
    return {
        "trials": len(calls),
        "the curve is what train returned, in order": bool(
            len(curve) == len(calls) and np.allclose(curve, calls, rtol=1e-12, atol=0)),
        "best_rate is the curve's best": bool(
            curve and np.isclose(best, max(curve, key=lambda c: c[1])[0], rtol=1e-12)),
        "coarse rates lie in [low, high]": bool(
            len(logs) and np.all((logs >= lo - tiny) & (logs <= hi + tiny))),
        "coarse rates in both halves of the range on a log scale": bool(
            len(logs) and np.any(logs < (lo + hi) / 2) and np.any(logs > (lo + hi) / 2)),
        "fine rates within half a decade of the best coarse one, in [low, high]": bool(
            best_coarse is not None and all(
                abs(np.log10(rate) - np.log10(best_coarse)) <= 0.5 + tiny
                and lo - tiny <= np.log10(rate) <= hi + tiny for rate, _ in fine)),
    }  # fmt: skip


def search_reference(train, low, high, num_coarse=8, num_fine=8, seed=0):
    rng = np.random.default_rng(seed)
    curve = []
    for rate in 10 ** rng.uniform(np.log10(low), np.log10(high), size=num_coarse):
        curve.append((float(rate), float(train(float(rate)))))
    centre = np.log10(max(curve, key=lambda c: c[1])[0])
    fine_lo = max(np.log10(low), centre - 0.5)
    fine_hi = min(np.log10(high), centre + 0.5)
    for rate in 10 ** rng.uniform(fine_lo, fine_hi, size=num_fine):
        curve.append((float(rate), float(train(float(rate)))))
    return max(curve, key=lambda c: c[1])[0], curve


def search_cases(seed, n=4):
    rng = np.random.default_rng(seed)
    # (low, high, coarse, fine, optimum): 20 coarse trials put some in each half of the range
    # with probability 1 - 2 * 0.5**20 (one honest answer in 500,000 fails that fact by chance);
    # optima inside, near an end (the fine range is clipped) and outside the range
    cases = [(1e-5, 1.0, 20, 8, 3e-3), (1e-4, 1e-1, 20, 5, 1e-4), (1e-6, 1e-2, 20, 10, 0.5),
             (1e-3, 10.0, 20, 0, 0.1)]  # fmt: skip
    for _ in range(n):
        low = 10.0 ** int(rng.integers(-7, -2))
        high = low * 10.0 ** int(rng.integers(2, 6))
        optimum = 10 ** rng.uniform(np.log10(low), np.log10(high))
        cases.append((low, high, 20, int(rng.integers(1, 12)), float(optimum)))
    keys = ("low", "high", "num_coarse", "num_fine", "optimum")
    return [{**dict(zip(keys, c, strict=True)), "seed": int(rng.integers(0, 2**31))}
            for c in cases]  # fmt: skip


assignment.check(
    "test_learning_rate_search",
    Probe(search_probe, subjects=("learning_rate_search",), title="learning_rate_search"),
    cases=search_cases, reference={"learning_rate_search": search_reference},
    compare=Close(rtol=0, atol=0),
    hint="num_coarse rates 10 ** uniform(log10(low), log10(high)), then num_fine within half a "
    "decade of the best of those (clipped to [low, high]); return the best rate of all and every "
    "(rate, score) in the order tried",
)  # fmt: skip
