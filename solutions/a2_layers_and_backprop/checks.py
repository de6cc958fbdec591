"""Trusted checks of a2_layers_and_backprop: how each grade cell is graded (never released).

Every forward and backward pass is compared with `cnnlib.numpy`'s reference on fixed edge cases
first (a batch of one, odd sizes, stride 2 and 3, padding wider than the kernel, overlapping
pooling windows), then on random cases drawn from the seed the grader gives each check (the same
for every submission), in float64 and in float32, each dtype a check of its own with its own
tolerance: rounding in a different order moves float64 results by ~1e-15 relative, float32 ones
by ~1e-6 (more where a sum of many terms nearly cancels, hence the absolute part). The dtype must
be kept and no input changed. Backward passes are judged as gradients: the student's backward on
the student's own cache, against the reference's backward on the same upstream gradient.

While the student's code is checked, cnnlib.numpy's layers raise (an answer that calls them gets
nothing and is flagged); its argument checks (`_checks`, which `cnnlib.data` uses too) stay.
A check that builds on earlier functions names them in `plug_in`: where the student's version
failed its own cell, the solution's is used for that check, so one mistake costs one cell.
The trained convnet is graded by outcome: the weights the student handed in, loaded in the
sandbox into the student's own `convnet_loss`, on the test digits perturbed by the grader's seed.

Sizes stay small, so that a student's four-loop convolution runs every check in a few seconds.
"""

from pathlib import Path

import numpy as np

import cnnlib.numpy as cn
from cnnlib.grading import (
    Accuracy,
    Assignment,
    Backward,
    Call,
    Close,
    Forward,
    HeldOut,
    Probe,
    perturbed_digits,
)

# Every module of cnnlib.numpy that holds a layer, a loss, an optimiser or a model; not the
# private argument checks, which the library's data loaders share.
BLOCKED = [
    f"numpy/{path.name}" for path in sorted(Path(cn.__file__).parent.glob("*.py"))
    if not path.name.startswith("_")
]  # fmt: skip
WEIGHTS = "a2_convnet.weights.npz"

assignment = Assignment(blocked=BLOCKED, submitted_files=[WEIGHTS])

DTYPES = {"float64": np.float64, "float32": np.float32}
TOLERANCE = {"float64": Close(rtol=1e-7, atol=1e-9), "float32": Close(rtol=1e-4, atol=1e-4)}


def _normal(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def _with_dout(cases, forward, seed):
    """Backward cases: each forward case, and an upstream gradient shaped like its output."""
    rng = np.random.default_rng(seed)
    made = []
    for inputs in cases:
        out, _ = forward(**inputs)
        made.append({"inputs": inputs, "dout": _normal(rng, out.shape, out.dtype)})
    return made


def _per_dtype(grade_id, probe, make, reference, hint, **options):
    """One check per dtype: make(seed, dtype) gives the cases."""
    for name, dtype in DTYPES.items():
        assignment.check(
            grade_id, probe, cases=lambda seed, dtype=dtype: make(seed, dtype),
            reference=reference, compare=TOLERANCE[name], hint=hint, **options,
        )  # fmt: skip


# ------------------------------------------------------------------------------ affine, ReLU


def affine_cases(seed, dtype, n=12):
    rng = np.random.default_rng(seed)
    shapes = [  # (x's shape, M): a batch of one, one feature, one output, images flattened
        ((1, 5), 3), ((4, 1), 2), ((3, 6), 1), ((2, 3, 4), 5), ((5, 1, 3, 3), 4), ((1, 2, 2, 2), 7),
    ]  # fmt: skip
    for _ in range(n):
        dims = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 4))))
        shapes.append(((int(rng.integers(1, 6)), *dims), int(rng.integers(1, 7))))
    cases = []
    for x_shape, m in shapes:
        d = int(np.prod(x_shape[1:]))
        cases.append({"x": _normal(rng, x_shape, dtype), "w": _normal(rng, (d, m), dtype),
                      "b": _normal(rng, (m,), dtype)})  # fmt: skip
    return cases


_per_dtype(
    "test_affine_forward", Forward("affine_forward"), affine_cases, cn.affine_forward,
    "out = x.reshape(N, -1) @ w + b; keep the dtype",
)
_per_dtype(
    "test_affine_backward", Backward("affine_forward", "affine_backward"),
    lambda seed, dtype: _with_dout(affine_cases(seed, dtype), cn.affine_forward, seed + 1),
    {"affine_forward": cn.affine_forward, "affine_backward": cn.affine_backward},
    "dx = dout @ w.T reshaped to x's shape, dw = x_rows.T @ dout, db = dout summed over the batch",
    plug_in=("affine_forward",),
)


def relu_cases(seed, dtype, n=10):
    rng = np.random.default_rng(seed)
    cases = [
        np.array([[-1.0, 0.0, 2.0]]), np.zeros((2, 3)), np.array([[-0.0, 1e-30, -1e-30]]),
        np.array([[[[3.0, -3.0], [0.0, 0.5]]]]),
    ]  # fmt: skip
    for _ in range(n):
        shape = tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 5))))
        x = rng.standard_normal(shape)
        x[rng.random(shape) < 0.1] = 0.0  # the kink: relu'(0) = 0
        cases.append(x)
    return [{"x": x.astype(dtype)} for x in cases]


_per_dtype(
    "test_relu_forward", Forward("relu_forward"), relu_cases, cn.relu_forward,
    "max(x, 0) elementwise, x's shape and dtype",
)
_per_dtype(
    "test_relu_backward", Backward("relu_forward", "relu_backward"),
    lambda seed, dtype: _with_dout(relu_cases(seed, dtype), cn.relu_forward, seed + 1),
    {"relu_forward": cn.relu_forward, "relu_backward": cn.relu_backward},
    "dx = dout * (x > 0): the derivative at x == 0 is 0; do not change dout",
    plug_in=("relu_forward",),
)

# ------------------------------------------------------------------------------ losses


def loss_cases(seed, dtype, n=14, margins=False):
    rng = np.random.default_rng(seed)
    big = 800.0 if dtype == np.float64 else 90.0  # exp(big) overflows in this dtype
    edge = [
        (np.zeros((4, 10)), np.array([0, 3, 9, 3])),  # equal scores: log(C)
        (np.array([[2.0, -1.0]]), np.array([1])),  # a batch of one, two classes
        (np.array([[big, 0.0, -big]]), np.array([0])),  # overflows without the shift
        (np.array([[big, 0.0, -big], [-big, big, 0.0]]), np.array([2, 0])),  # confident, wrong
        (np.array([[-big, -big - 1.0, -big + 2.0]]), np.array([1])),  # all very negative
    ]  # fmt: skip
    cases = [{"scores": s.astype(dtype), "y": y.astype(np.int64)} for s, y in edge]
    for _ in range(n):
        n_examples, classes = int(rng.integers(1, 9)), int(rng.integers(2, 11))
        cases.append({"scores": _normal(rng, (n_examples, classes), dtype, scale=3.0),
                      "y": rng.integers(0, classes, size=n_examples)})  # fmt: skip
    if margins:
        for case, margin in zip(cases[1:4], (0.5, 2.0, 1.5), strict=True):
            case["margin"] = margin
    return cases


def _loss_check(grade_id, function, reference, hint, margins=False):
    for name, dtype in DTYPES.items():
        assignment.check(
            grade_id, Call(function),
            cases=lambda seed, dtype=dtype: loss_cases(seed, dtype, margins=margins),
            reference=reference, compare=TOLERANCE[name], hint=hint,
        )  # fmt: skip


def softmax_reference(scores, y):
    loss, dscores = cn.softmax_loss(scores, y)
    return loss + 0.0, dscores  # a loss of exactly 0 reads "0.0" in a message, not "-0.0"


_loss_check(
    "test_softmax_loss", "softmax_loss", softmax_reference,
    "subtract each row's max first, and take log-probabilities as shifted - log(sum(exp("
    "shifted))): a confident wrong answer must give a large finite loss, not nan or inf",
)
_loss_check(
    "test_svm_loss", "svm_loss", cn.svm_loss,
    "a wrong class costs max(0, s_j - s_y + margin); +1/N to its gradient and -1/N to the "
    "correct class for every positive term",
    margins=True,
)

# ------------------------------------------------------------------------------ gradient checks


def _x_and_a(rng, shape):
    return {"x": rng.uniform(-2, 2, shape), "a": rng.uniform(-2, 2, shape)}


def numeric_gradient_cases(seed, n=8):
    rng = np.random.default_rng(seed)
    shapes = [(1,), (3,), (2, 3), (2, 1, 3)]
    shapes += [tuple(int(d) for d in rng.integers(1, 4, size=int(rng.integers(1, 4))))
               for _ in range(n)]  # fmt: skip
    return [_x_and_a(rng, shape) for shape in shapes]


def scalar_function_probe(ns, x, a):
    """numeric_gradient of f = sum(a * sin(x)) + sum(x)**2 / 2 (every entry couples to all)."""
    import numpy as np

    def f(*ignored):  # the course's convention is f(); f(x) is forgiven
        return float(np.sum(a * np.sin(x)) + 0.5 * np.sum(x) ** 2)

    return ns["numeric_gradient"](f, x)


def scalar_gradient(case):
    x, a = case["x"], case["a"]
    return a * np.cos(x) + np.sum(x)


def array_function_cases(seed, n=8):
    rng = np.random.default_rng(seed)
    cases = []
    for rows, cols, outs in [(1, 1, 1), (2, 3, 4), (3, 2, 1)] + [
        tuple(int(d) for d in rng.integers(1, 5, size=3)) for _ in range(n)
    ]:
        cases.append({"x": rng.uniform(-2, 2, (rows, cols)), "m": rng.uniform(-1, 1, (cols, outs)),
                      "dout": rng.standard_normal((rows, outs))})  # fmt: skip
    return cases


def array_function_probe(ns, x, m, dout):
    """numeric_gradient_array of the layer out = tanh(x) @ m, with upstream gradient dout."""
    import numpy as np

    def f(*ignored):
        return np.tanh(x) @ m

    return ns["numeric_gradient_array"](f, x, dout)


def array_gradient(case):
    x, m, dout = case["x"], case["m"], case["dout"]
    return (dout @ m.T) * (1 - np.tanh(x) ** 2)


# A centred difference with h = 1e-5 is off by ~1e-10 here; a one-sided one by ~1e-5.
CENTRED = Close(rtol=1e-6, atol=1e-7)
assignment.check(
    "test_numeric_gradient",
    Probe(scalar_function_probe, subjects=("numeric_gradient",), title="numeric_gradient"),
    cases=numeric_gradient_cases, expected=scalar_gradient, compare=CENTRED,
    hint="(f(x + h e_i) - f(x - h e_i)) / 2h for every index i, putting x[i] back afterwards",
)
assignment.check(
    "test_numeric_gradient",
    Probe(array_function_probe, subjects=("numeric_gradient_array",),
          title="numeric_gradient_array"),
    cases=array_function_cases, expected=array_gradient, compare=CENTRED,
    hint="the centred difference of sum(f() * dout), putting x[i] back afterwards",
)

# ------------------------------------------------------------------------------ two-layer net


def two_layer_reference(params, X, y=None, reg=0.0):
    hidden, affine1 = cn.affine_forward(X, params["W1"], params["b1"])
    hidden, relu1 = cn.relu_forward(hidden)
    scores, affine2 = cn.affine_forward(hidden, params["W2"], params["b2"])
    if y is None:
        return scores
    loss, dscores = cn.softmax_loss(scores, y)
    loss += 0.5 * reg * float(np.sum(params["W1"] ** 2) + np.sum(params["W2"] ** 2))
    grads = {}
    dhidden, grads["W2"], grads["b2"] = cn.affine_backward(dscores, affine2)
    dhidden = cn.relu_backward(dhidden, relu1)
    _, grads["W1"], grads["b1"] = cn.affine_backward(dhidden, affine1)
    grads["W1"] = grads["W1"] + reg * params["W1"]
    grads["W2"] = grads["W2"] + reg * params["W2"]
    return loss, grads


def two_layer_cases(seed, dtype, n=10):
    rng = np.random.default_rng(seed)
    shapes = [((1, 4), 3, 2, 0.0), ((5, 1, 3, 3), 6, 10, 0.1), ((3, 2), 1, 3, 1.3),
              ((4, 7), 5, 4, None)]  # fmt: skip
    for _ in range(n):
        x_shape = (int(rng.integers(1, 7)), *(int(d) for d in rng.integers(1, 5, size=2)))
        reg = [0.0, 0.05, 0.5, None][int(rng.integers(0, 4))]
        shapes.append((x_shape, int(rng.integers(1, 9)), int(rng.integers(2, 7)), reg))
    cases = []
    for x_shape, hidden, classes, reg in shapes:
        d = int(np.prod(x_shape[1:]))
        params = {"W1": _normal(rng, (d, hidden), dtype, 0.5), "b1": _normal(rng, hidden, dtype),
                  "W2": _normal(rng, (hidden, classes), dtype, 0.5),
                  "b2": _normal(rng, classes, dtype)}  # fmt: skip
        case = {"params": params, "X": _normal(rng, x_shape, dtype)}
        if reg is not None:  # None: scores only
            case["y"] = rng.integers(0, classes, size=x_shape[0])
            case["reg"] = reg
        cases.append(case)
    return cases


LAYERS = ("affine_forward", "affine_backward", "relu_forward", "relu_backward", "softmax_loss")
_per_dtype(
    "test_two_layer_loss", Call("two_layer_loss"), two_layer_cases, two_layer_reference,
    "backpropagate through your layers in reverse order; add reg * W to dW1 and dW2",
    plug_in=LAYERS,
)

# ------------------------------------------------------------------------------ momentum


def momentum_cases(seed, dtype, n=8):
    rng = np.random.default_rng(seed)
    cases = [{"w": np.array([1.0]), "grads": [np.array([1.0])] * 3, "learning_rate": 0.1,
              "momentum": 0.9}]  # fmt: skip
    cases.append({"w": np.ones((2, 3)), "grads": [np.full((2, 3), -1.0), np.ones((2, 3))],
                  "learning_rate": None, "momentum": None})  # the defaults  # fmt: skip
    for _ in range(n):
        shape = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 4))))
        steps = int(rng.integers(1, 6))
        cases.append({"w": rng.standard_normal(shape),
                      "grads": [rng.standard_normal(shape) for _ in range(steps)],
                      "learning_rate": float(rng.choice([1e-3, 1e-2, 0.1, 0.5])),
                      "momentum": float(rng.choice([0.0, 0.5, 0.9, 0.99]))})  # fmt: skip
    for case in cases:
        case["w"] = case["w"].astype(dtype)
        case["grads"] = [g.astype(dtype) for g in case["grads"]]
    return cases


def momentum_steps(ns, w, grads, learning_rate, momentum):
    """Several steps of sgd_momentum, one config dict passed back each time: the weights after
    every step (the velocity's own convention is free; the path of the weights is not)."""
    config = None
    if learning_rate is not None:
        config = {"learning_rate": learning_rate, "momentum": momentum}
    path = []
    for dw in grads:
        w, config = ns["sgd_momentum"](w, dw, config)
        path.append(w)
    return path


_per_dtype(
    "test_sgd_momentum",
    Probe(momentum_steps, subjects=("sgd_momentum",), title="sgd_momentum steps"),
    momentum_cases, {"sgd_momentum": cn.sgd_momentum},
    "v = momentum * v + dw, w = w - learning_rate * v, with v kept in config between calls",
)

# ------------------------------------------------------------------------------ convolution

# (N, C, H, W, F, KH, KW, stride, pad): a 1x1 kernel and image, a kernel as large as the image,
# stride 2 and 3 that do not divide, padding wider than the kernel, rectangular kernels, a batch
# of one, odd sizes.
_CONV_EDGES = [
    (1, 1, 1, 1, 1, 1, 1, 1, 0), (2, 3, 5, 5, 4, 5, 5, 1, 0), (2, 2, 7, 7, 3, 3, 3, 2, 0),
    (1, 2, 4, 5, 2, 3, 3, 1, 4), (2, 1, 3, 3, 2, 1, 1, 1, 2), (1, 3, 7, 5, 2, 2, 3, 1, 1),
    (3, 2, 8, 6, 2, 3, 2, 3, 1), (1, 1, 6, 6, 1, 4, 4, 2, 3), (2, 3, 9, 4, 3, 3, 3, 2, 1),
]  # fmt: skip


def conv_cases(seed, dtype, n=10):
    rng = np.random.default_rng(seed)
    geometries = list(_CONV_EDGES)
    while len(geometries) < len(_CONV_EDGES) + n:
        g = [int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(3, 10)),
             int(rng.integers(3, 10)), int(rng.integers(1, 5)), int(rng.integers(1, 6)),
             int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(0, 5))]  # fmt: skip
        if g[5] <= g[2] + 2 * g[8] and g[6] <= g[3] + 2 * g[8]:
            geometries.append(tuple(g))
    cases = []
    for n_images, c, h, w, f, kh, kw, stride, pad in geometries:
        cases.append({"x": _normal(rng, (n_images, c, h, w), dtype),
                      "w": _normal(rng, (f, c, kh, kw), dtype), "b": _normal(rng, (f,), dtype),
                      "stride": stride, "pad": pad})  # fmt: skip
    return cases


def conv_reference(x, w, b, stride=1, pad=0):
    return cn.conv_forward(x, w, b, stride=stride, pad=pad)


_per_dtype(
    "test_conv_forward_naive", Forward("conv_forward_naive"), conv_cases, conv_reference,
    "out[n, f, i, j] = b[f] + sum(w[f] * x_pad[n, :, i*S : i*S + KH, j*S : j*S + KW]), "
    "H' = (H + 2*pad - KH) // S + 1",
)
_per_dtype(
    "test_conv_backward_naive", Backward("conv_forward_naive", "conv_backward_naive"),
    lambda seed, dtype: _with_dout(conv_cases(seed, dtype), conv_reference, seed + 1),
    # the reference's fast pair: the same numbers as its loops, sooner
    {"conv_forward_naive": conv_reference, "conv_backward_naive": cn.conv_backward},
    "add each output's gradient into its window of dx_pad (windows overlap: +=), then cut the "
    "padding off; dw sums dout * window over images and positions",
    plug_in=("conv_forward_naive",),
)
_per_dtype(
    "test_conv_forward", Forward("conv_forward"), conv_cases, conv_reference,
    "the same numbers as conv_forward_naive, with no Python loop over output positions",
)

# ------------------------------------------------------------------------------ max pooling

# (N, C, H, W, size, stride): the classic 2/2, overlapping 3/2, stride 1, gaps (stride 3 > size
# 2), odd sizes the floor cuts, a window as large as the image, a batch of one.
_POOL_EDGES = [
    (1, 1, 4, 4, 2, 2), (2, 3, 7, 7, 3, 2), (2, 2, 5, 6, 2, 1), (1, 2, 8, 8, 2, 3),
    (3, 1, 7, 5, 2, 2), (1, 3, 5, 5, 5, 1), (2, 1, 6, 9, 3, 3), (1, 1, 1, 1, 1, 1),
]  # fmt: skip


def pool_cases(seed, dtype, n=10):
    rng = np.random.default_rng(seed)
    geometries = list(_POOL_EDGES)
    while len(geometries) < len(_POOL_EDGES) + n:
        g = [int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(2, 10)),
             int(rng.integers(2, 10)), int(rng.integers(1, 4)), int(rng.integers(1, 4))]
        if g[4] <= min(g[2], g[3]):
            geometries.append(tuple(g))
    return [{"x": _normal(rng, g[:4], dtype), "size": g[4], "stride": g[5]} for g in geometries]


_per_dtype(
    "test_max_pool_forward_naive", Forward("max_pool_forward_naive"), pool_cases,
    cn.max_pool_forward,
    "the max of x[n, c, i*S : i*S + size, j*S : j*S + size]; H' = (H - size) // S + 1",
)
_per_dtype(
    "test_max_pool_backward_naive", Backward("max_pool_forward_naive", "max_pool_backward_naive"),
    lambda seed, dtype: _with_dout(pool_cases(seed, dtype), cn.max_pool_forward, seed + 1),
    {"max_pool_forward_naive": cn.max_pool_forward,
     "max_pool_backward_naive": cn.max_pool_backward},
    "each output's gradient goes to its window's (first) maximum; overlapping windows add up",
    plug_in=("max_pool_forward_naive",),
)

# ------------------------------------------------------------------------------ the convnet


def convnet_reference(params, X, y=None, reg=0.0):
    hidden, conv = cn.conv_forward(X, params["W1"], params["b1"], stride=1, pad=1)
    hidden, relu1 = cn.relu_forward(hidden)
    hidden, pool = cn.max_pool_forward(hidden, size=2, stride=2)
    hidden, affine1 = cn.affine_forward(hidden, params["W2"], params["b2"])
    hidden, relu2 = cn.relu_forward(hidden)
    scores, affine2 = cn.affine_forward(hidden, params["W3"], params["b3"])
    if y is None:
        return scores
    loss, dscores = cn.softmax_loss(scores, y)
    weights = ("W1", "W2", "W3")
    loss += 0.5 * reg * float(sum(np.sum(params[name] ** 2) for name in weights))
    grads = {}
    dhidden, grads["W3"], grads["b3"] = cn.affine_backward(dscores, affine2)
    dhidden = cn.relu_backward(dhidden, relu2)
    dhidden, grads["W2"], grads["b2"] = cn.affine_backward(dhidden, affine1)
    dhidden = cn.max_pool_backward(dhidden, pool)
    dhidden = cn.relu_backward(dhidden, relu1)
    _, grads["W1"], grads["b1"] = cn.conv_backward(dhidden, conv)
    for name in weights:
        grads[name] = grads[name] + reg * params[name]
    return loss, grads


def convnet_cases(seed, dtype, n=6):
    rng = np.random.default_rng(seed)
    # (N, C, H, W, F, hidden, classes, reg); None: scores only. An odd size is floored by the pool.
    shapes = [(1, 1, 4, 4, 2, 3, 3, 0.0), (2, 1, 8, 8, 3, 5, 10, 0.1), (3, 2, 6, 4, 2, 4, 4, 1.0),
              (2, 1, 5, 7, 2, 3, 2, 0.2), (2, 1, 6, 6, 2, 3, 3, None)]  # fmt: skip
    for _ in range(n):
        shapes.append((int(rng.integers(1, 4)), int(rng.integers(1, 3)),
                       *(2 * int(d) for d in rng.integers(1, 5, size=2)),
                       int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(2, 6)),
                       [0.0, 0.05, 0.5, None][int(rng.integers(0, 4))]))  # fmt: skip
    cases = []
    for n_images, c, h, w, f, hidden, classes, reg in shapes:
        flat = f * (h // 2) * (w // 2)
        params = {
            "W1": _normal(rng, (f, c, 3, 3), dtype, 0.5), "b1": _normal(rng, f, dtype, 0.1),
            "W2": _normal(rng, (flat, hidden), dtype, 0.5), "b2": _normal(rng, hidden, dtype, 0.1),
            "W3": _normal(rng, (hidden, classes), dtype, 0.5),
            "b3": _normal(rng, classes, dtype, 0.1),
        }  # fmt: skip
        case = {"params": params, "X": _normal(rng, (n_images, c, h, w), dtype)}
        if reg is not None:
            case["y"] = rng.integers(0, classes, size=n_images)
            case["reg"] = reg
        cases.append(case)
    return cases


CONVNET_LAYERS = (
    "conv_forward", "conv_backward_naive", "relu_forward", "relu_backward",
    "max_pool_forward_naive", "max_pool_backward_naive", "affine_forward", "affine_backward",
    "softmax_loss",
)  # fmt: skip
_per_dtype(
    "test_convnet_loss", Call("convnet_loss"), convnet_cases, convnet_reference,
    "conv (stride 1, pad 1) - relu - max pool 2x2 - affine - relu - affine - softmax, then the "
    "backward passes in reverse order; add reg * W to dW1, dW2 and dW3",
    plug_in=CONVNET_LAYERS,
)


def predict_digits(ns, images):
    """The student's trained convnet on the grader's digits: the weights handed in, loaded with
    np.load(allow_pickle=False) (a pickle does not load), through the student's convnet_loss."""
    import numpy as np

    with np.load("a2_convnet.weights.npz", allow_pickle=False) as saved:
        params = {name: saved[name] for name in saved.files}
    return np.argmax(np.asarray(ns["convnet_loss"](params, images)), axis=1)


# The test split (never trained on), twice, with the grader's own contrast and noise.
GRADERS_DIGITS = HeldOut(lambda seed: perturbed_digits(seed, copies=2))
assignment.check(
    "test_convnet_accuracy",
    Probe(predict_digits, subjects=("convnet_loss",), title="your trained convnet"),
    cases=GRADERS_DIGITS.cases, expected=GRADERS_DIGITS.expected, compare=Accuracy(at_least=0.9),
    # only the forward passes predict; the convnet itself last, so it sees the others plugged in
    plug_in=("conv_forward", "relu_forward", "max_pool_forward_naive", "affine_forward",
             "convnet_loss"),
    hint=f"train until your network reaches 90% on perturbed test digits, and hand in {WEIGHTS} "
    "with the notebook",
)
