"""Trusted checks of a5_understanding_cnns: how each grade cell is graded (never released).

Every answer runs on the same fixed network, the course's own `vgg_small_shapes` (a small VGG
trained on the ten textured shapes at 16x16, `cnnlib.pretrained`), on images the grader draws
from its seed with `cnnlib.data.textured_shapes` (the same for every submission). The network is
loaded by name inside each probe, afresh for every case, so nothing a student's function does to
the model carries over to the next case.

- Maps (saliency, occlusion) and the helpers (occlusion positions, the projection into the
  budget, total variation) are compared with the reference, `cnnlib.explain`, on the grader's
  images. Tolerances: a saliency map or an occlusion drop computed in float32 with another order
  of operations (one image at a time, a batch of occluded copies) moves by ~1e-6 relative; the
  checks allow rtol 1e-3 (occlusion: scores are ~10, so also atol 1e-4), far below any mistake
  (a missing absolute value, a sum over channels, a misplaced patch changes the maps by O(1)).
- Attacks, class visualisation and feature inversion are graded by outcome, on this side only:
  the image a student's function returns comes back over the wire as a plain array, and the
  comparators below run the fixed network on it here. An attack passes when the network's
  prediction is the target class (or no longer the true class) for at least 85% of the images (the
  solution's 20 PGD steps fool 96-100% on every seed tried, one FGSM step ~80%),
  with every pixel within the L-infinity budget (up to 1e-6, float32 rounding of x + epsilon) and
  in [0, 1]. A class visualisation passes when every image is classified as its class and the
  class score rose by at least 5 from the start (the solution gains 11 or more in 50 steps). An
  inversion passes when its objective (relative feature distance plus the weighted TV prior) is
  at most a quarter of the start's for every image (the solution ends below 0.08 of it).
  These checks are judged with `expected=` outcomes, so nothing about them is shipped into the
  notebook's sandbox: only the grader's trusted run judges them.

While the student's code is checked, cnnlib.explain raises (an answer that calls it gets nothing
and is flagged); cnnlib.pretrained and torch load as usual.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import torch

from cnnlib import data, explain, pretrained
from cnnlib.explain import adversarial
from cnnlib.grading import Assignment, Close, Probe

NETWORK = "vgg_small_shapes"
CLASSES = 10
SIZE = 16
UNTARGETED_EPSILON = 32 / 255  # one FGSM step fools ~77% of the images here, 20 PGD steps ~98%
TARGETED_EPSILON = 51 / 255  # a wanted class needs a larger budget: PGD reaches ~98%
SUCCESS = 0.85  # 21 of 24 images: the solution misses at most 1 of 24 on every seed tried
SCORE_RISE = 5.0
INVERSION_RATIO = 0.25
BUDGET_SLACK = 1e-6

assignment = Assignment(blocked=["explain/"])


@functools.cache
def network() -> torch.nn.Module:
    """The fixed network on the grader's side (trusted: judging outcomes only)."""
    torch.set_num_threads(1)
    return pretrained.load(NETWORK)


def _scores(images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return network()(torch.from_numpy(np.ascontiguousarray(images))).numpy()


def shapes(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n textured shapes (N, 3, 16, 16) float32 in [0, 1] and their labels (N,) int64."""
    images, labels = data.textured_shapes(n, size=SIZE, seed=seed)
    return images.astype(np.float32), labels.astype(np.int64)


def recognised(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n shapes the network classifies correctly (an attack must change a right answer)."""
    images, labels = shapes(seed, 2 * n)
    right = _scores(images).argmax(axis=1) == labels
    return images[right][:n], labels[right][:n]


def other_classes(rng, labels: np.ndarray) -> np.ndarray:
    """A class for each image other than its own."""
    return ((labels + rng.integers(1, CLASSES, size=len(labels))) % CLASSES).astype(np.int64)


# ------------------------------------------------------------------------------ saliency


def saliency_probe(ns, images, targets):
    """The student's saliency of the course network on the grader's images."""
    import torch

    from cnnlib import pretrained

    torch.set_num_threads(1)
    model = pretrained.load("vgg_small_shapes")
    # from_numpy shares memory: a function that changes x in place is caught as a mutation
    out = ns["saliency"](model, torch.from_numpy(images), torch.from_numpy(targets))
    return out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else out


def saliency_cases(seed):
    rng = np.random.default_rng(seed)
    images, labels = shapes(seed, 6)
    return [
        {"images": images[:4], "targets": labels[:4]},  # each image's own class
        {"images": images[:4], "targets": other_classes(rng, labels[:4])},  # another class
        {"images": images[4:5], "targets": labels[4:5]},  # a batch of one
        {"images": images[2:6], "targets": np.full(4, int(labels[5]), np.int64)},  # one class
    ]


assignment.check(
    "test_saliency",
    Probe(saliency_probe, subjects=("saliency",), title="saliency(model, x, target)"),
    cases=saliency_cases,
    reference={"saliency": explain.saliency},
    compare=Close(rtol=1e-3, atol=1e-6),
    hint="the gradient of each image's target score (before the softmax) with respect to x, "
    "then its absolute value, the largest over the colour channels: (N, H, W)",
)

# ------------------------------------------------------------------------------ occlusion


def occlusion_positions_cases(seed):
    rng = np.random.default_rng(seed)
    fixed = [(16, 4, 4), (16, 5, 3), (16, 8, 8), (16, 16, 1), (16, 3, 2), (7, 3, 3), (10, 4, 1),
             (9, 9, 5), (1, 1, 1), (12, 5, 5)]  # fmt: skip
    for _ in range(10):
        size = int(rng.integers(1, 33))
        patch = int(rng.integers(1, size + 1))
        fixed.append((size, patch, int(rng.integers(1, patch + 1))))
    return [{"size": s, "patch": p, "stride": st} for s, p, st in fixed]


assignment.check(
    "test_occlusion_positions",
    "occlusion_positions",
    cases=occlusion_positions_cases,
    reference=explain.occlusion_positions,
    hint="0, stride, 2 stride, ...: ceil((size - patch) / stride) + 1 positions, so that the "
    "last patch reaches the last pixel (it may hang over the edge)",
)


def occlusion_probe(ns, images, targets, patch, stride, fill):
    """The student's occlusion map of the course network on the grader's images."""
    import torch

    from cnnlib import pretrained

    torch.set_num_threads(1)
    model = pretrained.load("vgg_small_shapes")
    out = ns["occlusion"](model, torch.from_numpy(images), torch.from_numpy(targets),
                          patch, stride, fill)  # fmt: skip
    return out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else out


def occlusion_reference(model, x, target, patch, stride, fill=0.0):
    return explain.occlusion(model, x, target, patch=patch, stride=stride, fill=fill,
                             per_pixel=False)  # fmt: skip


def occlusion_cases(seed):
    images, labels = shapes(seed, 3)
    # (patch, stride, fill): strides that divide 16 - patch and ones that do not (the last
    # patch hangs over the edge), a patch as large as the image, a grey fill
    geometries = [(4, 4, 0.0), (5, 3, 0.0), (6, 4, 0.5), (16, 1, 0.0), (3, 2, 0.25)]
    cases = []
    for i, (patch, stride, fill) in enumerate(geometries):
        part = slice(0, 2) if i % 2 else slice(1, 3)
        cases.append({"images": images[part], "targets": labels[part], "patch": patch,
                      "stride": stride, "fill": fill})  # fmt: skip
    return cases


assignment.check(
    "test_occlusion",
    Probe(
        occlusion_probe,
        subjects=("occlusion",),
        title="occlusion(model, x, target, patch, stride, fill)",
    ),
    cases=occlusion_cases,
    reference={"occlusion": occlusion_reference},
    compare=Close(rtol=1e-3, atol=1e-4),
    plug_in=("occlusion_positions",),
    hint="drop[n, i, j] = S_c(x) - S_c(x with the patch at rows[i], cols[j] set to fill), with "
    "the positions of occlusion_positions along each axis",
)

# ------------------------------------------------------------------------------ the budget


def project_probe(ns, x_adv, x, epsilon):
    import torch

    out = ns["project"](torch.from_numpy(x_adv), torch.from_numpy(x), epsilon)
    return out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else out


def project_reference(x_adv, x, epsilon):
    return adversarial._project(x_adv, x, epsilon, (0.0, 1.0))


def project_cases(seed):
    rng = np.random.default_rng(seed)
    images, _ = shapes(seed, 4)
    cases = []
    for epsilon, spread in ((0.1, 0.3), (0.0, 0.2), (0.5, 1.0), (8 / 255, 0.05)):
        moved = images + rng.uniform(-spread, spread, images.shape).astype(np.float32)
        cases.append({"x_adv": moved, "x": images, "epsilon": epsilon})
    return cases


assignment.check(
    "test_project",
    Probe(project_probe, subjects=("project",), title="project(x_adv, x, epsilon)"),
    cases=project_cases,
    reference={"project": project_reference},
    compare=Close(rtol=0, atol=1e-7),
    hint="clip x_adv into [x - epsilon, x + epsilon] pixel by pixel, then into [0, 1]",
)

# ------------------------------------------------------------------------------ fooling


@dataclasses.dataclass(frozen=True)
class Fools:
    """An attack's outcome, judged on the grader's side: the fixed network's predictions on the
    returned images, the L-infinity distance to the originals, the range of the pixels.

    expected: the case (images, labels or targets, epsilon), kept on this side.
    """

    targeted: bool
    at_least: float = SUCCESS

    def explain(self, got, expected) -> str | None:
        images = np.asarray(expected["images"])
        if not isinstance(got, np.ndarray) or got.shape != images.shape:
            shape = got.shape if isinstance(got, np.ndarray) else type(got).__name__
            return f"expected images of shape {images.shape}, got {shape}"
        if got.dtype != np.float32:
            return f"expected float32 images, got {got.dtype}"
        if not np.all(np.isfinite(got)):
            return "the images hold NaN or infinite pixels"
        epsilon = float(expected["epsilon"])
        moved = float(np.max(np.abs(got.astype(np.float64) - images)))
        if moved > epsilon + BUDGET_SLACK:
            return (f"a pixel moved by {moved:.4f}, over the budget epsilon = {epsilon:.4f} "
                    "(the L-infinity distance must stay within epsilon)")  # fmt: skip
        if got.min() < 0 or got.max() > 1:
            return f"pixels must stay in [0, 1], got values from {got.min():.3f} to {got.max():.3f}"
        predicted = _scores(got).argmax(axis=1)
        if self.targeted:
            fooled = predicted == np.asarray(expected["targets"])
            what = "classified as their target class"
        else:
            fooled = predicted != np.asarray(expected["labels"])
            what = "no longer classified as their true class"
        rate = float(np.mean(fooled))
        if rate >= self.at_least:
            return None
        return (f"{int(fooled.sum())} of {len(fooled)} images ({rate:.0%}) are {what}; at least "
                f"{self.at_least:.0%} must be")  # fmt: skip


def untargeted_probe(ns, images, labels, epsilon):
    """The student's untargeted attack on the course network; the images it returns."""
    import torch

    from cnnlib import pretrained

    torch.set_num_threads(1)
    model = pretrained.load("vgg_small_shapes")
    out = ns["fool_untargeted"](model, torch.from_numpy(images), torch.from_numpy(labels),
                                epsilon)  # fmt: skip
    return out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else out


def untargeted_cases(seed):
    images, labels = recognised(seed, 24)
    return [{"images": images, "labels": labels, "epsilon": UNTARGETED_EPSILON}]


assignment.check(
    "test_fool_untargeted",
    Probe(
        untargeted_probe,
        subjects=("fool_untargeted",),
        title="fool_untargeted(model, x, y, epsilon)",
    ),
    cases=untargeted_cases,
    expected=lambda case: case,
    compare=Fools(targeted=False),
    plug_in=("project",),
    hint="repeat: step epsilon / 4 or so along the sign of the gradient of the loss of the true "
    "labels, then project back into the budget; one step alone is not enough here",
)


def targeted_probe(ns, images, targets, epsilon):
    """The student's targeted attack on the course network; the images it returns."""
    import torch

    from cnnlib import pretrained

    torch.set_num_threads(1)
    model = pretrained.load("vgg_small_shapes")
    out = ns["fool_targeted"](model, torch.from_numpy(images), torch.from_numpy(targets),
                              epsilon)  # fmt: skip
    return out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else out


def targeted_cases(seed):
    rng = np.random.default_rng(seed)
    images, labels = recognised(seed, 24)
    return [{"images": images, "targets": other_classes(rng, labels),
             "epsilon": TARGETED_EPSILON}]  # fmt: skip


assignment.check(
    "test_fool_targeted",
    Probe(
        targeted_probe,
        subjects=("fool_targeted",),
        title="fool_targeted(model, x, target, epsilon)",
    ),
    cases=targeted_cases,
    expected=lambda case: case,
    compare=Fools(targeted=True),
    plug_in=("project",),
    hint="step against the gradient of the loss of the wanted classes (down that loss), "
    "projecting back into the budget after every step",
)

# ------------------------------------------------------------------------------ class visualisation


def _target_scores(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return _scores(images)[np.arange(len(targets)), targets]


def _checked_images(got, shape) -> str | None:
    if not isinstance(got, np.ndarray) or got.shape != shape:
        found = got.shape if isinstance(got, np.ndarray) else type(got).__name__
        return f"expected images of shape {shape}, got {found}"
    if got.dtype != np.float32:
        return f"expected float32 images, got {got.dtype}"
    if not np.all(np.isfinite(got)):
        return "the images hold NaN or infinite pixels"
    if got.min() < 0 or got.max() > 1:
        return f"pixels must stay in [0, 1], got values from {got.min():.3f} to {got.max():.3f}"
    return None


@dataclasses.dataclass(frozen=True)
class RaisesScore:
    """A class visualisation, judged on the grader's side: every image classified as its class,
    and its class score at least `rise` above the start's."""

    rise: float = SCORE_RISE

    def explain(self, got, expected) -> str | None:
        start, targets = np.asarray(expected["x"]), np.asarray(expected["targets"])
        why = _checked_images(got, start.shape)
        if why:
            return why
        before, after = _target_scores(start, targets), _target_scores(got, targets)
        predicted = _scores(got).argmax(axis=1)
        for i in range(len(targets)):
            if predicted[i] != targets[i] or after[i] < before[i] + self.rise:
                return (f"image {i} (class {int(targets[i])}): its class score went from "
                        f"{before[i]:.2f} to {after[i]:.2f} and the network predicts class "
                        f"{int(predicted[i])}; it must predict class {int(targets[i])} with a "
                        f"score at least {self.rise:g} above the start")  # fmt: skip
        return None


def visualisation_probe(ns, x, targets):
    """The student's class visualisation from the grader's starting images."""
    import torch

    from cnnlib import pretrained

    torch.set_num_threads(1)
    model = pretrained.load("vgg_small_shapes")
    out = ns["class_visualisation"](model, torch.from_numpy(x), torch.from_numpy(targets))
    return out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else out


def visualisation_cases(seed):
    rng = np.random.default_rng(seed)
    x = np.clip(0.5 + 0.05 * rng.standard_normal((CLASSES, 3, SIZE, SIZE)), 0, 1)
    return [{"x": x.astype(np.float32), "targets": np.arange(CLASSES, dtype=np.int64)}]


assignment.check(
    "test_class_visualisation",
    Probe(
        visualisation_probe,
        subjects=("class_visualisation",),
        title="class_visualisation(model, x, target)",
    ),
    cases=visualisation_cases,
    expected=lambda case: case,
    compare=RaisesScore(),
    hint="gradient ascent on the class score (not the softmax), the step divided by the mean "
    "|gradient|, with the L2 decay, the blur and a clamp to [0, 1]",
)

# ------------------------------------------------------------------------------ feature inversion


def total_variation_probe(ns, x):
    import torch

    out = ns["total_variation"](torch.from_numpy(x))
    return out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else out


def total_variation_cases(seed):
    rng = np.random.default_rng(seed)
    images, _ = shapes(seed, 3)
    return [
        {"x": images},
        {"x": np.zeros((2, 3, 4, 4), np.float32)},  # flat: 0
        {"x": rng.standard_normal((1, 1, 2, 2)).astype(np.float32)},  # one difference each way
        {"x": rng.standard_normal((2, 2, 5, 3)).astype(np.float32)},  # not square
    ]


assignment.check(
    "test_total_variation",
    Probe(total_variation_probe, subjects=("total_variation",), title="total_variation(x)"),
    cases=total_variation_cases,
    reference={"total_variation": explain.total_variation},
    compare=Close(rtol=1e-5, atol=1e-5),
    hint="sum over c and i < H-1, j < W-1 of (x[c, i, j+1] - x[c, i, j])**2 + "
    "(x[c, i+1, j] - x[c, i, j])**2, one number per image",
)


@dataclasses.dataclass(frozen=True)
class Inverts:
    """A feature inversion, judged on the grader's side: the objective
    ||phi(x*) - phi0||^2 / ||phi0||^2 + tv * TV(x*) / (C (H-1) (W-1)) at the returned images,
    at most `ratio` times its value at the start, for every image."""

    ratio: float = INVERSION_RATIO

    def explain(self, got, expected) -> str | None:
        start = np.asarray(expected["init"])
        why = _checked_images(got, start.shape)
        if why:
            return why
        before = _objective(start, expected)
        after = _objective(got, expected)
        for i in range(len(start)):
            if not after[i] <= self.ratio * before[i]:
                return (f"image {i}: the objective went from {before[i]:.4f} at the start to "
                        f"{after[i]:.4f}; it must fall to {self.ratio:g} of the start or "
                        "less")  # fmt: skip
        return None


def _objective(images: np.ndarray, case: dict) -> np.ndarray:
    model = network()
    module = dict(model.named_modules())[case["layer"]]
    outputs = []
    hook = module.register_forward_hook(lambda m, i, out: outputs.append(out.detach().clone()))
    try:
        with torch.no_grad():
            model(torch.from_numpy(np.ascontiguousarray(case["x"])))
            model(torch.from_numpy(np.ascontiguousarray(images)))
    finally:
        hook.remove()
    wanted, got = outputs
    distance = (got - wanted).flatten(1).pow(2).sum(1) / wanted.flatten(1).pow(2).sum(1)
    _, c, h, w = images.shape
    prior = explain.total_variation(torch.from_numpy(images)) / (c * (h - 1) * (w - 1))
    return (distance + float(case["tv"]) * prior).numpy()


def inversion_probe(ns, x, layer, init, tv):
    """The student's inversion of the course network's features of the grader's images."""
    import torch

    from cnnlib import pretrained

    torch.set_num_threads(1)
    model = pretrained.load("vgg_small_shapes")
    out = ns["invert_features"](model, torch.from_numpy(x), layer, torch.from_numpy(init),
                                tv=tv)  # fmt: skip
    return out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else out


def inversion_cases(seed):
    rng = np.random.default_rng(seed)
    images, _ = shapes(seed, 4)
    cases = []
    for layer, tv, chosen in (("block1", 0.05, images[:2]), ("block2", 0.05, images[2:])):
        init = np.clip(0.5 + 0.1 * rng.standard_normal(chosen.shape), 0, 1).astype(np.float32)
        cases.append({"x": chosen, "layer": layer, "init": init, "tv": tv})
    return cases


assignment.check(
    "test_invert_features",
    Probe(
        inversion_probe,
        subjects=("invert_features",),
        title="invert_features(model, x, layer, init, tv)",
    ),
    cases=inversion_cases,
    expected=lambda case: case,
    compare=Inverts(),
    plug_in=("total_variation",),
    hint="capture the layer's output with a forward hook; minimise the relative feature "
    "distance plus tv * TV / (C (H-1) (W-1)) with Adam, from init, clamping to [0, 1]",
)
