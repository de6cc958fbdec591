"""The course as the tests see it: its notebooks and assignments, and nbgrader driven for real.

nbgrader runs through its command line in a throw-away course folder, and scores are read from
that course's gradebook.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def course_notebooks(*folders: str) -> list[Path]:
    """Every notebook under the given course folders, skipping checkpoints."""
    return sorted(
        p
        for folder in folders
        for p in (ROOT / folder).rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts
    )


def assignment_ids() -> list[str]:
    """The assignments: one folder per assignment under solutions/ (nbgrader's source)."""
    return sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())


SOLUTION_BLOCK = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")
MARKERS = re.compile(r"### (BEGIN|END) (SOLUTION|HIDDEN TESTS)")


def nbgrader(course: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `nbgrader ARGS` in `course`. nbgrader calls `alembic` by name: put our bin on PATH.

    The exit code is returned, not checked: `nbgrader autograde` exits 1 when any one submission
    errored, even though it graded the others. Read the gradebook instead.
    """
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["CNNLIB_QUICK"] = "1"  # notebooks that train do so briefly, as in every other test
    return subprocess.run(
        [str(BIN / "nbgrader"), *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def make_course(tmp: Path, assignment_id: str) -> Path:
    """A fresh course with our nbgrader_config.py and one assignment's source, released."""
    course = tmp / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions" / assignment_id, course / "solutions" / assignment_id)
    result = nbgrader(course, "generate_assignment", assignment_id, "--force")
    assert result.returncode == 0, f"generate_assignment failed:\n{result.stdout}\n{result.stderr}"
    return course


def strip_solution_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not SOLUTION_BLOCK.match(line))


def filled_release(release_nb: Path, source_nb: Path, replace: dict[str, str] | None = None):
    """The release notebook as a student would hand it in, answers filled in.

    Each answer cell gets the instructor's solution (markers removed), or the source given for its
    grade_id in `replace`; every other cell stays as released.
    """
    replace = replace or {}
    release = nbformat.read(release_nb, as_version=4)
    solutions = {
        c.metadata["nbgrader"]["grade_id"]: strip_solution_markers(c.source)
        for c in nbformat.read(source_nb, as_version=4).cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    unknown = set(replace) - set(solutions)
    assert not unknown, f"no answer cells with grade_id {sorted(unknown)}"
    for cell in release.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = replace.get(grade_id, solutions[grade_id])
    return release


def submit(course: Path, assignment_id: str, student: str, notebook) -> None:
    """Place a notebook where `nbgrader autograde` looks for it: submitted/<student>/<aid>/."""
    folder = course / "submitted" / student / assignment_id
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{assignment_id}.ipynb")


def cell_scores(course: Path, assignment_id: str, student: str) -> dict[str, float]:
    """grade_id -> points awarded, read from the course's gradebook (not from exit codes)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(assignment_id, student)
        grades = [grade for notebook in submission.notebooks for grade in notebook.grades]
        return {grade.name: grade.score for grade in grades}


def needs_manual_grade(course: Path, assignment_id: str, student: str) -> set[str]:
    """grade_ids the gradebook marks as waiting for the instructor (nbgrader's formgrader list)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(assignment_id, student)
        return {grade.name for notebook in submission.notebooks for grade in notebook.grades
                if grade.needs_manual_grade}  # fmt: skip


# ------------------------------------------------------------------ the hardened grader's CLI


def grade(assignment_id: str, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    """`python -m cnnlib grade <id> --course ROOT <args>`, as an instructor runs it."""
    command = [sys.executable, "-m", "cnnlib", "grade", assignment_id, "--course", str(ROOT)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout)


def grade_rows(out: Path, name: str = "grades.csv") -> dict[str, dict]:
    """A CSV the grader wrote (grades.csv, nbgrader_export.csv), by student id."""
    import csv

    with open(out / name, newline="") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


def assert_exact_row(graded: dict, student: str, points: dict[str, float], max_score: float):
    """The student's row of grades.csv: the run succeeded; the exact score, flags and no problem;
    and the points lost are exactly those of the cells scored below their points."""
    assert graded["result"].returncode == 0, graded["result"].stderr[-3000:]
    row = graded["rows"][student]
    score, flags = graded["expected"][student]
    report = (graded["out"] / "report.md").read_text()
    assert float(row["score"]) == score, (student, row, report[-3000:])
    assert float(row["max_score"]) == max_score
    assert set(filter(None, row["flags"].split(";"))) == flags, row
    assert row["problems"] == "", row
    lost = {cell for cell, pts in points.items() if float(row[cell]) != pts}
    assert sum(points[c] for c in lost) == sum(points.values()) - score, (student, lost)
    return row


def assert_untouched_scores_zero(graded: dict, student: str = "untouched"):
    """The release handed in as it was released: 0 points, no flag, no problem, nothing waiting
    for the instructor (an answer left as released is nbgrader's "no response")."""
    assert graded["result"].returncode == 0, graded["result"].stderr[-3000:]
    row = graded["rows"][student]
    assert float(row["score"]) == 0, row
    assert (row["flags"], row["problems"], row["pending"]) == ("", "", "0"), row
    return row


# For each assignment, a typical partly wrong submission: answer cells replaced by plausible
# mistakes, and the grade cells each mistake must fail. Every other grade cell must get full marks.
PARTLY_WRONG = {
    "a1_conv_arithmetic": {
        "replace": {
            # ignores strict: the floor formula is right, strict mode is not
            "conv_output_size": """
def conv_output_size(size, kernel, stride=1, pad=0, dilation=1, strict=False):
    k_eff = dilation * (kernel - 1) + 1
    if k_eff > size + 2 * pad:
        raise ValueError("kernel does not fit")
    return (size + 2 * pad - k_eff) // stride + 1
""",
            # ignores dilation: passes every visible check, fails the hidden ones
            "same_padding": """
def same_padding(kernel, dilation=1):
    if kernel % 2 == 0:
        raise ValueError("even kernel")
    return (kernel - 1) // 2
""",
            # forgets that strides multiply the growth of later layers
            "receptive_field": """
def receptive_field(layers):
    field = 1
    for layer in layers:
        dilation = layer[2] if len(layer) > 2 else 1
        field += dilation * (layer[0] - 1)
    return field
""",
            # right parameter count, but MACs forget the input channels
            "conv_params_and_macs": """
def conv_params(in_channels, out_channels, kernel, bias=True):
    kh, kw = as_pair(kernel)
    return out_channels * in_channels * kh * kw + (out_channels if bias else 0)


def conv_macs(in_channels, out_channels, kernel, output_size):
    kh, kw = as_pair(kernel)
    h_out, w_out = as_pair(output_size)
    return out_channels * h_out * w_out * kh * kw
""",
        },
        # the table uses conv_macs, but is graded with the solution's conv_macs plugged in: the
        # mistake costs conv_macs's own points only
        "fails": {"test_conv_output_size_strict", "test_same_padding", "test_receptive_field",
                  "test_conv_macs"},
    },
    "a2_layers_and_backprop": {
        "replace": {
            # relu'(0) taken as 1: right everywhere but at the kink
            "relu_backward": """
def relu_backward(dout, cache):
    x = cache
    return dout * (x >= 0)
""",
            # no max shift: exp overflows on large scores (nan), fine on the digits
            "softmax_loss": """
def softmax_loss(scores, y):
    n = scores.shape[0]
    exp = np.exp(scores)
    probs = exp / exp.sum(axis=1, keepdims=True)
    loss = -float(np.mean(np.log(probs[np.arange(n), y])))
    dscores = probs.copy()
    dscores[np.arange(n), y] -= 1
    return loss, dscores / n
""",
            # the penalty is in the loss but not in the gradients
            "two_layer_loss": """
def two_layer_loss(params, X, y=None, reg=0.0):
    hidden, affine1 = affine_forward(X, params["W1"], params["b1"])
    hidden, relu1 = relu_forward(hidden)
    scores, affine2 = affine_forward(hidden, params["W2"], params["b2"])
    if y is None:
        return scores
    loss, dscores = softmax_loss(scores, y)
    loss += 0.5 * reg * float(np.sum(params["W1"] ** 2) + np.sum(params["W2"] ** 2))
    grads = {}
    dhidden, grads["W2"], grads["b2"] = affine_backward(dscores, affine2)
    dhidden = relu_backward(dhidden, relu1)
    _, grads["W1"], grads["b1"] = affine_backward(dhidden, affine1)
    return loss, grads
""",
            # forgets the padding: dx is returned padded (the convnet never uses the input's dx)
            "conv_backward_naive": """
def conv_backward_naive(dout, cache):
    x, w, b, stride, pad = cache
    n = x.shape[0]
    num_filters, _, kernel_h, kernel_w = w.shape
    x_padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx = np.zeros_like(x_padded)
    dw = np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            top, left = i * stride, j * stride
            window = x_padded[:, :, top : top + kernel_h, left : left + kernel_w]
            for f in range(num_filters):
                dw[f] += np.tensordot(dout[:, f, i, j], window, axes=(0, 0))
                dx[:, :, top : top + kernel_h, left : left + kernel_w] += (
                    dout[:, f, i, j][:, None, None, None] * w[f]
                )
    return dx, dw, dout.sum(axis=(0, 2, 3))
""",
        },
        # The convnet's own check plugs in the solution's softmax, relu_backward and conv
        # backward; its training used the student's, which still learn: only these four fail.
        "fails": {"test_relu_backward", "test_softmax_loss", "test_two_layer_loss",
                  "test_conv_backward_naive"},
    },
    "a3_training_deep_nets": {
        "replace": {
            # He's variance, but uniform (torch's kaiming_uniform_): graded on the Gaussian's tails
            "init": """
def xavier_init(shape, rng, dtype=np.float64):
    return (math.sqrt(1.0 / fan_in(shape)) * rng.standard_normal(shape)).astype(dtype)


def he_init(shape, rng, dtype=np.float64):
    bound = math.sqrt(6.0 / fan_in(shape))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)
""",
            # the running variance averages the biased batch variance (the notes' version)
            "batchnorm_forward": """
def batchnorm_forward(x, gamma, beta, state, train=True, momentum=0.9, eps=1e-5):
    state.setdefault("running_mean", np.zeros(x.shape[1], dtype=x.dtype))
    state.setdefault("running_var", np.ones(x.shape[1], dtype=x.dtype))
    if train:
        mean, var = x.mean(axis=0), x.var(axis=0)
        state["running_mean"] = momentum * state["running_mean"] + (1 - momentum) * mean
        state["running_var"] = momentum * state["running_var"] + (1 - momentum) * var
    else:
        mean, var = state["running_mean"], state["running_var"]
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    return gamma * x_hat + beta, (x_hat, gamma, inv_std, train)
""",
            # vanilla dropout: no rescaling in training, keep_prob * x at test time
            "dropout_forward": """
def dropout_forward(x, keep_prob, train, rng):
    if not train:
        return x * keep_prob, (None, keep_prob, train)
    mask = rng.random(x.shape) < keep_prob
    return x * mask, (mask, keep_prob, train)
""",
            # Adam without the bias correction: the first steps far too small
            "adam": """
def adam(w, dw, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("weight_decay", 0.0)
    dw = dw + config["weight_decay"] * w
    m = config["beta1"] * config.get("m", np.zeros_like(w)) + (1 - config["beta1"]) * dw
    v = config["beta2"] * config.get("v", np.zeros_like(w)) + (1 - config["beta2"]) * dw * dw
    config.update(m=m, v=v, t=config.get("t", 0) + 1)
    next_w = w - config["learning_rate"] * m / (np.sqrt(v) + config["epsilon"])
    return next_w, config
""",
            # rates drawn uniformly between low and high, not on a log scale: almost all land in
            # the top decade
            "learning_rate_search": """
def learning_rate_search(train, low, high, num_coarse=8, num_fine=8, seed=0):
    rng = np.random.default_rng(seed)
    curve = [(float(r), float(train(float(r)))) for r in rng.uniform(low, high, num_coarse)]
    best = max(curve, key=lambda trial: trial[1])[0]
    fine = rng.uniform(max(low, best / 3), min(high, best * 3), num_fine)
    curve += [(float(r), float(train(float(r)))) for r in fine]
    return max(curve, key=lambda trial: trial[1])[0], curve
""",
        },
        # The later checks plug in the solution's batchnorm_forward, dropout_forward and adam
        # (spatial batch norm, dropout's backward, overfitting): only these five fail.
        "fails": {"test_he_init", "test_batchnorm_forward", "test_dropout_forward", "test_adam",
                  "test_learning_rate_search"},
    },
    "a5_understanding_cnns": {
        "replace": {
            # the signed gradient's largest value over the channels: no absolute value
            "saliency": """
def saliency(model, x, target):
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    scores = model(x).gather(1, target[:, None])[:, 0]
    (grad,) = torch.autograd.grad(scores.sum(), x)
    return grad.amax(dim=1)
""",
            # a convolution's count: the last pixels are never covered when the stride does not
            # divide size - patch (occlusion itself is graded with the solution's positions)
            "occlusion_positions": """
def occlusion_positions(size, patch, stride):
    count = (size - patch) // stride + 1
    return [i * stride for i in range(count)]
""",
            # the untargeted step with the wanted classes: it climbs their loss, away from them
            "fool_targeted": """
def fool_targeted(model, x, target, epsilon, steps=20):
    model.eval()
    x = x.detach()
    step = 2.5 * epsilon / steps
    x_adv = x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), target)
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = project(x_adv.detach() + step * grad.sign(), x, epsilon)
    return x_adv
""",
            # the mean of the squared differences instead of their sum (the inversion, graded
            # with the solution's total_variation, keeps its points)
            "total_variation": """
def total_variation(x):
    right = x[..., :-1, 1:] - x[..., :-1, :-1]
    down = x[..., 1:, :-1] - x[..., :-1, :-1]
    return (right**2 + down**2).mean(dim=(1, 2, 3))
""",
        },
        "fails": {"test_saliency", "test_occlusion_positions", "test_fool_targeted",
                  "test_total_variation"},
    },
    "a4_resnets_and_transfer": {
        "replace": {
            # the projection shortcut without its batch norm: option A and identities still right
            "basic_block": """
class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, shortcut="B"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.reshapes = stride != 1 or in_channels != out_channels
        self.stride, self.extra_channels = stride, out_channels - in_channels
        self.downsample = None
        if self.reshapes and shortcut == "B":
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.downsample is not None:
            shortcut = self.downsample(x)
        elif self.reshapes:
            shortcut = F.pad(x[:, :, :: self.stride, :: self.stride],
                             (0, 0, 0, 0, 0, self.extra_channels))
        else:
            shortcut = x
        return F.relu(out + shortcut)
""",
            # the shortcut forgets the expansion: no projection where in_channels == planes
            "bottleneck": """
class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.downsample = None
        if stride != 1 or in_channels != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, planes * self.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * self.expansion))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))
""",
            # the learning rate recorded after each epoch's steps, not at its start: the same
            # training, a history that says otherwise
            "train": """
def accuracy(model, X, y, batch_size=256):
    model.eval()
    with torch.no_grad():
        scores = torch.cat([model(torch.as_tensor(X[i : i + batch_size]))
                            for i in range(0, len(X), batch_size)])
    return float((scores.argmax(dim=1) == torch.as_tensor(y)).float().mean())


def train(model, train_data, val_data, epochs=10, lr=0.05, batch_size=32, weight_decay=5e-4,
          seed=0):
    X, y = (torch.as_tensor(a) for a in train_data)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr,
                                momentum=0.9, weight_decay=weight_decay)
    steps = epochs * -(-len(X) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    generator = torch.Generator().manual_seed(seed)
    history = {"train_loss": [], "val_accuracy": [], "lr": []}
    for _ in range(epochs):
        model.train()
        order, total = torch.randperm(len(X), generator=generator), 0.0
        for start in range(0, len(X), batch_size):
            batch = order[start : start + batch_size]
            loss = F.cross_entropy(model(X[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
        history["lr"].append(optimizer.param_groups[0]["lr"])
        history["train_loss"].append(total / len(X))
        history["val_accuracy"].append(accuracy(model, *val_data))
    return history
""",
            # requires_grad off, but the frozen batch norms follow model.train() and drift
            "transfer": """
def pretrained_resnet20(name, num_classes):
    source = pretrained.load(name)
    model = CifarResNet(20, num_classes)
    body = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    model.load_state_dict(body, strict=False)
    return model


def freeze_early(model):
    for module in (model.conv1, model.bn1, model.layer1):
        module.requires_grad_(False)
    return model
""",
        },
        # The network's checks plug in the solution's BasicBlock; the trained networks use
        # option A shortcuts, which this BasicBlock gets right, and still reach their targets.
        "fails": {"test_basic_block_parameters", "test_basic_block_forward",
                  "test_basic_block_identity", "test_bottleneck_shapes",
                  "test_bottleneck_forward", "test_train_loop", "test_freeze_early"},
    },
}  # fmt: skip


# ------------------------------------------------------------------ a running `make lab`

LAB_WAIT_S = 300  # JupyterLab starts in seconds; a busy laptop or CI runner may take far longer


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server started as `make lab` starts it, on a free port with a random token."""

    def __init__(self, course: Path, log_path: Path, extra_args: str = ""):
        import secrets

        self.course, self.log_path = course, log_path
        self.port, self.token = free_port(), secrets.token_hex(16)
        args = (f"--no-browser --ip=127.0.0.1 --port={self.port} "
                f"--IdentityProvider.token={self.token} {extra_args}").strip()
        if Path(sys.prefix) == ROOT / ".venv":
            # make's own venv, also for a copy of the course (VENV names ours)
            self.command = ["make", "--no-print-directory", "-C", str(course), "lab",
                            f"VENV={ROOT / '.venv'}", f"LAB_ARGS={args}"]
        else:  # a conda environment, say: start the same server without make's venv
            self.command = [sys.executable, "-m", "jupyterlab",
                            f"--ServerApp.root_dir={course}", *args.split()]
            if os.geteuid() == 0:
                self.command.append("--allow-root")
        self.url = f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> tuple[int, str]:
        import urllib.error
        import urllib.request

        url = f"{self.url}{path}{'&' if '?' in path else '?'}token={self.token}"
        try:
            with urllib.request.urlopen(url, timeout=LAB_WAIT_S) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def __enter__(self):
        import time
        import urllib.error

        with open(self.log_path, "w") as log:
            self.server = subprocess.Popen(self.command, cwd=self.course, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + LAB_WAIT_S
        try:
            while True:
                assert self.server.poll() is None, (
                    f"`{' '.join(self.command)}` exited with {self.server.returncode}:\n"
                    f"{self.log_path.read_text()[-3000:]}")
                try:
                    if self.get("/api/status")[0] == 200:
                        return self
                except (urllib.error.URLError, ConnectionError):
                    pass
                assert time.monotonic() < deadline, (
                    f"JupyterLab did not answer within {LAB_WAIT_S} s:\n"
                    f"{self.log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def __exit__(self, *exc):
        import signal

        os.killpg(self.server.pid, signal.SIGTERM)
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.server.pid, signal.SIGKILL)


def course_copy(target: Path) -> Path:
    """The committed course files (git ls-files) copied into `target`: a lab run there may save
    notebooks with outputs without touching the repository."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target
