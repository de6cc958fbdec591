"""cnnlib.torch.fit / evaluate / predict on the CPU: learning, reproducibility, checkpoints,
schedules, the errors a student meets first, and the quiet progress bars."""

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from cnnlib import data
from cnnlib.torch.train import History, evaluate, fit, load_checkpoint, predict, to_loader


@pytest.fixture(scope="module")
def digits():
    return data.load_digits()  # 1,257 / 270 / 270 images of 1x8x8


def small_net(num_classes=10, seed=0, in_channels=1):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 4 * 4, num_classes),
    )


def without_time(history: History) -> dict:
    columns = history.as_dict()
    del columns["time"]
    return columns


def test_learns_digits_well_above_chance(digits):
    net = small_net()
    history = fit(net, digits.train, digits.val, epochs=3, lr=0.1, device="cpu")
    assert len(history) == 3 and history.epoch == [1, 2, 3]
    # chance is 10%; this net reaches ~94% validation accuracy in 3 epochs from seed 0
    assert history.val_acc[-1] > 0.85
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.best_epoch == 1 + int(np.argmax(history.val_acc))
    accuracy, loss = evaluate(net, digits.test)
    assert accuracy > 0.85 and loss < 1.0
    assert all(t > 0 for t in history.time) and history.lr == [0.1] * 3


def test_learns_synthetic_shapes():
    X, y = data.synthetic_shapes(600, size=8, num_classes=4, channels=1, seed=0)
    split = data.train_val_test_split(X, y, val=0.2, test=0)
    history = fit(small_net(num_classes=4), split.train, split.val, epochs=4,
                  optimizer="adam", lr=0.01, batch_size=32, device="cpu")
    assert history.val_acc[-1] > 0.6  # chance is 25%


def test_same_seed_same_history_other_seed_not(digits):
    runs = [fit(small_net(), digits.train, digits.val, epochs=2, lr=0.05, seed=s, device="cpu")
            for s in (3, 3, 4)]
    assert without_time(runs[0]) == without_time(runs[1])
    assert without_time(runs[0]) != without_time(runs[2])


def test_numpy_tensors_dataset_and_loader_agree(digits):
    X, y = digits.train
    kwargs = {"epochs": 1, "lr": 0.05, "device": "cpu"}
    from_numpy = fit(small_net(), (X, y), **kwargs)
    from_tensors = fit(small_net(), (torch.from_numpy(X), torch.from_numpy(y)), **kwargs)
    from_dataset = fit(small_net(), torch.utils.data.TensorDataset(torch.from_numpy(X),
                                                                   torch.from_numpy(y)), **kwargs)
    assert without_time(from_numpy) == without_time(from_tensors) == without_time(from_dataset)
    # float64 arrays meet the float32 model: cast to the weights' dtype, the same run
    from_float64 = fit(small_net(), (X.astype(np.float64), y), **kwargs)
    assert without_time(from_float64) == without_time(from_numpy)
    # a DataLoader is used as it is: unshuffled batches of 100 here
    loader = to_loader(X, y, batch_size=100)
    assert len(loader) == 13
    history = fit(small_net(), loader, (X, y), **kwargs)
    assert history.val_acc[0] > 0.3


def test_checkpoint_holds_the_best_epoch(digits, tmp_path):
    path = tmp_path / "best.pt"
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    # after two good epochs the learning rate jumps 20x: training falls apart, so the best
    # validation accuracy is at epoch 1 or 2, not at the end
    blow_up = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0 if e < 2 else 20.0)
    history = fit(net, digits.train, digits.val, epochs=4, optimizer=optimizer,
                  schedule=blow_up, checkpoint=path, device="cpu")
    assert history.best_epoch in (1, 2) and history.val_acc[-1] < history.best_val_acc
    restored = small_net(seed=99)
    info = load_checkpoint(restored, path)
    assert info == {"epoch": history.best_epoch, "val_acc": history.best_val_acc}
    assert evaluate(restored, digits.val).accuracy == history.best_val_acc

    # the same seed replayed up to the best epoch gives exactly the saved weights
    replay = small_net()
    optimizer = torch.optim.SGD(replay.parameters(), lr=0.1, momentum=0.9)
    fit(replay, digits.train, epochs=history.best_epoch, optimizer=optimizer, device="cpu")
    for name, value in replay.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[name], value, rtol=0, atol=0)


def test_checkpoint_errors(digits, tmp_path):
    with pytest.raises(ValueError, match=r"checkpoint .* needs val_data"):
        fit(small_net(), digits.train, checkpoint=tmp_path / "c.pt", device="cpu")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(small_net(), tmp_path / "absent.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"not a checkpoint written by cnnlib\.torch\.fit"):
        load_checkpoint(small_net(), tmp_path / "other.pt")


@pytest.fixture(scope="module")
def tiny():
    X, y = data.synthetic_shapes(40, size=8, num_classes=4, channels=1, seed=1)
    return X, y


def test_step_and_cosine_schedules(tiny):
    step = fit(small_net(4), tiny, epochs=4, lr=0.1, schedule="step", device="cpu")
    # lr / 10 after 50% (epoch 2) and 75% (epoch 3) of 4 epochs
    assert step.lr == pytest.approx([0.1, 0.1, 0.01, 0.001], rel=1e-12)
    cosine = fit(small_net(4), tiny, epochs=4, lr=0.1, schedule="cosine", device="cpu")
    expected = [0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert cosine.lr == pytest.approx(expected, rel=1e-12)
    adam = fit(small_net(4), tiny, epochs=1, optimizer="adam", device="cpu")
    assert adam.lr == [1e-3]


def test_label_and_output_shape_errors_name_both_shapes(tiny):
    X, y = tiny
    y_eleven = y.copy()
    y_eleven[-1] = 11  # only the last batch holds it: still caught before training
    net = small_net(10)
    before = [p.clone() for p in net.parameters()]
    with pytest.raises(ValueError, match=r"train_data's labels go from 0 to 11 but the model "
                                         r"outputs 10 class scores per image \(shape \(16, 10\) "
                                         r"for the first batch\).*num_classes=12"):
        fit(net, (X, y_eleven), batch_size=16, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    # a DataLoader's labels are checked batch by batch: the last batch (of 8) fails
    with pytest.raises(ValueError, match=r"labels go from \d+ to 11 but the model's output has "
                                         r"shape \(8, 10\): 10 classes"):
        fit(small_net(10), to_loader(X, y_eleven, batch_size=16), device="cpu")

    unflattened = nn.Sequential(nn.Conv2d(1, 4, 8))  # (N, 4, 1, 1)
    with pytest.raises(ValueError, match=r"output has shape \(40, 4, 1, 1\).*labels of shape "
                                         r"\(40,\).*nn.Flatten\(\)"):
        fit(unflattened, tiny, device="cpu")

    merged_rows = nn.Sequential(small_net(4), nn.Unflatten(0, (20, 2)), nn.Flatten())
    with pytest.raises(ValueError, match=r"output has shape \(20, 8\), 20 rows, but the batch "
                                         r"has 40 labels \(shape \(40,\)\)"):
        fit(merged_rows, tiny, device="cpu")

    with pytest.raises(ValueError, match=r"val_data.*labels go from|labels go from 0 to 11"):
        fit(small_net(10), tiny, (X, y_eleven), device="cpu")


def test_bad_data_errors(tiny, digits):
    X, y = tiny
    with pytest.raises(TypeError, match=r"train_data X must hold floating-point images.*"
                                        r"astype\(np.float32\) / 255"):
        fit(small_net(4), ((X * 255).astype(np.uint8), y), device="cpu")
    with pytest.raises(ValueError, match=r"X and y must hold the same number of examples, got X "
                                         r"of shape \(40, 1, 8, 8\) and y of shape \(39,\)"):
        fit(small_net(4), (X, y[:-1]), device="cpu")
    with pytest.raises(ValueError, match=r"train_data y must be a 1-D array of integer"):
        fit(small_net(4), (X, y.astype(np.float32)), device="cpu")
    with pytest.raises(TypeError, match=r"pass one split, e\.g\. splits\.train"):
        fit(small_net(4), digits, device="cpu")
    with pytest.raises(ValueError, match="lr, momentum: set these when you build the optimizer"):
        net = small_net(4)
        fit(net, tiny, optimizer=torch.optim.SGD(net.parameters(), lr=0.1), lr=0.1,
            momentum=0.5, device="cpu")
    with pytest.raises(ValueError, match="momentum applies to SGD"):
        fit(small_net(4), tiny, optimizer="adam", momentum=0.9, device="cpu")
    with pytest.raises(ValueError, match=r"lr must be in \(0, inf\)"):
        fit(small_net(4), tiny, lr=0.0, device="cpu")
    with pytest.raises(ValueError, match='schedule must be None, "step", "cosine"'):
        fit(small_net(4), tiny, schedule="linear", device="cpu")


def test_augment_hook_sees_every_training_batch(tiny):
    seen = []

    def augment(x):
        seen.append(tuple(x.shape))
        return data.random_flip(x, rng=0)

    fit(small_net(4), tiny, epochs=2, batch_size=16, augment=augment, device="cpu")
    assert seen == [(16, 1, 8, 8), (16, 1, 8, 8), (8, 1, 8, 8)] * 2
    history = fit(small_net(4), tiny, epochs=1, augment=data.Augment(padding=1), device="cpu")
    assert len(history) == 1
    with pytest.raises(TypeError, match="augment must return a torch tensor"):
        fit(small_net(4), tiny, augment=lambda x: x.numpy(), device="cpu")


def test_no_output_unless_interactive(tiny, capsys):
    fit(small_net(4), tiny, tiny, epochs=2, device="cpu")  # progress="auto" under pytest
    assert capsys.readouterr() == ("", "")
    fit(small_net(4), tiny, epochs=1, progress=True, device="cpu")
    assert "epochs" in capsys.readouterr().err  # the bar this test would catch
    fit(small_net(4), tiny, epochs=1, verbose=True, device="cpu")
    assert capsys.readouterr().out.startswith("epoch 1/1: loss ")


def test_amp_ignored_on_cpu(tiny):
    plain = fit(small_net(4), tiny, epochs=2, amp=False, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auto = fit(small_net(4), tiny, epochs=2, amp="auto", device="cpu")
    with pytest.warns(UserWarning, match="amp=True ignored: automatic mixed precision runs only "
                                         "on CUDA, training on cpu in float32"):
        forced = fit(small_net(4), tiny, epochs=2, amp=True, device="cpu")
    assert without_time(plain) == without_time(auto) == without_time(forced)


def test_evaluate_and_predict_agree_and_restore_mode(digits):
    net = small_net()
    fit(net, digits.train, epochs=1, lr=0.1, device="cpu")
    net.train()
    labels = predict(net, digits.X_test, batch_size=50)
    scores = predict(net, digits.X_test, scores=True)
    assert labels.shape == (270,) and labels.dtype == np.int64 and scores.shape == (270, 10)
    np.testing.assert_array_equal(labels, scores.argmax(axis=1))
    accuracy, loss = evaluate(net, digits.test, batch_size=64)
    assert accuracy == np.mean(labels == digits.y_test)
    expected_loss = nn.functional.cross_entropy(torch.from_numpy(scores),
                                                torch.from_numpy(digits.y_test))
    # float32 scores, the mean taken over 5 batches vs at once: agree to float32 rounding
    assert loss == pytest.approx(float(expected_loss), rel=1e-5)
    assert net.training


def test_last_batch_of_one_is_folded_for_batch_norm():
    X, y = data.synthetic_shapes(33, size=8, num_classes=2, channels=1, seed=0)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 2))
    history = fit(net, (X, y), epochs=1, batch_size=16, device="cpu")  # 16 + 17, not 16+16+1
    assert len(history) == 1


def test_history_plot_draws_the_columns(tiny):
    import matplotlib

    matplotlib.use("Agg")
    history = fit(small_net(4), tiny, tiny, epochs=3, device="cpu")
    fig = history.plot(title="tiny")
    loss_ax, acc_ax = fig.axes
    train_loss, val_loss = loss_ax.get_lines()
    assert list(train_loss.get_ydata()) == history.train_loss
    assert list(val_loss.get_ydata()) == history.val_loss
    assert list(acc_ax.get_lines()[1].get_ydata()) == history.val_acc
    assert acc_ax.get_lines()[2].get_xdata()[0] == history.best_epoch
    matplotlib.pyplot.close(fig)
