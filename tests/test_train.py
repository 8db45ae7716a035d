"""fit(): one loop for all five models, reproducible, learns, and refuses bad arguments."""
import pytest
import torch

import aelib
from aelib import AelibError
from aelib.data import Batches

SMALL = {"hidden_dims": (32,), "disc_hidden_dims": (16,)}


def toy_data(n=256):
    """Bright blobs at a digit-dependent position: learnable in a few steps."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 10
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.1
    for i, digit in enumerate(y):
        r, c = 4 + 2 * int(digit), 4 + int(digit)
        x[i, 0, r:r + 6, c:c + 6] = 0.9
    return x, y


def run(name, seed=0, epochs=2, **config):
    torch.manual_seed(seed)
    model = aelib.build(name, **{**SMALL, **config})
    return model, aelib.fit(model, toy_data(), epochs=epochs, batch_size=32, seed=seed, progress=False)


@pytest.mark.parametrize("name", list(aelib.MODELS))
def test_same_seed_same_losses(name):
    _, first = run(name)
    _, second = run(name)
    assert first == second
    _, other = run(name, seed=1)
    assert other != first


@pytest.mark.parametrize("name", list(aelib.MODELS))
def test_history_has_the_model_terms_and_the_loss_falls(name):
    model, history = run(name, epochs=4)
    assert len(history) == 4
    expected = {"ae": {"loss", "recon"}, "vae": {"loss", "recon", "kl"}, "aae": {"loss", "recon", "disc", "gen"}}
    assert set(history[0]) == expected[name.removeprefix("c")]
    assert history[-1]["recon"] < history[0]["recon"]
    assert history.series("loss") == [h["loss"] for h in history]
    assert not model.training


def test_callback_sees_every_epoch():
    seen = []
    model = aelib.build("vae", **SMALL)
    aelib.fit(model, toy_data(), epochs=3, progress=False, callback=lambda e, losses, m: seen.append((e, losses)))
    assert [e for e, _ in seen] == [1, 2, 3] and "kl" in seen[0][1]


def test_fit_accepts_mnist_object_and_tensor():
    x, y = toy_data(64)
    data = aelib.MNIST(x, y, x[:8], y[:8], source="toy")
    aelib.fit(aelib.build("cvae", **SMALL), data, epochs=1, progress=False)
    aelib.fit(aelib.build("ae", **SMALL), x, epochs=1, progress=False)


def test_fit_bad_arguments():
    x, y = toy_data(64)
    with pytest.raises(AelibError, match="needs labels"):
        aelib.fit(aelib.build("cvae", **SMALL), x, epochs=1, progress=False)
    with pytest.raises(AelibError, match="epochs"):
        aelib.fit(aelib.build("ae", **SMALL), (x, y), epochs=0, progress=False)
    with pytest.raises(AelibError, match="digits 0..9"):
        aelib.fit(aelib.build("cvae", **SMALL), (x, y + 5), epochs=1, progress=False)
    with pytest.raises(AelibError, match="data must be"):
        aelib.fit(aelib.build("ae", **SMALL), "mnist", epochs=1, progress=False)


def test_divergence_is_an_error_not_a_silent_nan():
    with pytest.raises(FloatingPointError, match="diverged in epoch 1"):
        aelib.fit(aelib.build("vae", **SMALL), toy_data(64), epochs=1, batch_size=8, lr=1e6, progress=False)


def blow_up(epoch_to_break, how):
    """A callback that wrecks the weights after ``epoch_to_break``: NaN, or a finite blow-up (weights x 1e6)."""
    def callback(epoch, losses, model):
        if epoch == epoch_to_break:
            for p in model.parameters():
                p.data.fill_(float("nan")) if how == "nan" else p.data.mul_(1e6)
    return callback


@pytest.mark.parametrize("how", ["nan", "finite"])
def test_divergence_names_the_epoch_suggests_a_smaller_lr_and_keeps_the_history(how):
    model = aelib.build("ae", **SMALL)
    with pytest.raises(AelibError, match=r"diverged in epoch 3.*smaller learning rate") as err:
        aelib.fit(model, toy_data(), epochs=5, batch_size=32, progress=False, callback=blow_up(2, how))
    assert isinstance(err.value, FloatingPointError)     # what earlier versions raised
    assert len(err.value.history) == 2 and model.history == err.value.history
    assert all(epoch["loss"] < 1000 for epoch in err.value.history)


def test_an_unstable_but_recovering_start_is_not_divergence():
    model = aelib.build("ae", **SMALL)
    history = aelib.fit(model, toy_data(), epochs=3, batch_size=32, lr=0.1, progress=False)
    assert len(history) == 3


def interrupt_in_callback(epoch, losses, model):
    if epoch == 2:
        raise KeyboardInterrupt


def fail_in_callback(epoch, losses, model):
    if epoch == 2:
        raise RuntimeError("plotting failed")


@pytest.mark.parametrize("callback, error", [(interrupt_in_callback, KeyboardInterrupt),
                                             (fail_in_callback, RuntimeError), (None, KeyboardInterrupt)])
def test_interrupted_fit_keeps_the_history_of_finished_epochs(callback, error, monkeypatch):
    model = aelib.build("vae", **SMALL)
    if callback is None:                                    # Ctrl-C in the middle of epoch 3 (8 batches per epoch)
        step, calls = model.training_step, []

        def interrupted_step(*args):
            calls.append(1)
            if len(calls) == 20:
                raise KeyboardInterrupt
            return step(*args)

        monkeypatch.setattr(model, "training_step", interrupted_step)
    with pytest.raises(error) as err:
        aelib.fit(model, toy_data(), epochs=5, batch_size=32, progress=False, callback=callback)
    assert len(err.value.history) == 2 and isinstance(err.value.history, aelib.History)
    assert model.history is err.value.history
    assert not model.training
    x, y = toy_data(4)
    assert model.reconstruct(x).shape == (4, 1, 28, 28)
    again = aelib.fit(model, (x, y), epochs=1, progress=False)    # and it can go on training
    assert len(again) == 1 and model.history is again


@pytest.mark.parametrize("change, message", [
    (lambda x: x * 255, "divide by 255"),
    (lambda x: x - 0.5, r"\[0, 1\]"),
    (lambda x: x.index_fill(0, torch.tensor([3]), float("nan")), "NaN"),
])
def test_fit_checks_the_pixel_values_before_training(change, message):
    x, y = toy_data(64)
    with pytest.raises(AelibError, match=message):
        aelib.fit(aelib.build("ae", **SMALL), (change(x), y), epochs=1, progress=False)


def test_pick_device():
    assert aelib.pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert aelib.pick_device().type == expected
    elif not (torch.backends.mps.is_available()):
        assert aelib.pick_device().type == "cpu"


def test_batches_cover_every_image_once_per_epoch_in_a_seeded_order():
    x = torch.arange(10.0).view(10, 1, 1, 1)
    y = torch.arange(10)
    batches = Batches(x, y, batch_size=4, seed=3)
    assert len(batches) == 3
    epoch1 = torch.cat([yb for _, yb in batches])
    epoch2 = torch.cat([yb for _, yb in batches])
    assert sorted(epoch1.tolist()) == list(range(10)) and not torch.equal(epoch1, epoch2)
    assert torch.equal(epoch1, torch.cat([yb for _, yb in Batches(x, y, batch_size=4, seed=3)]))
    for xb, yb in Batches(x, y, batch_size=4, seed=3):
        assert torch.equal(xb.view(-1).long(), yb)
    assert len(Batches(x, y, batch_size=4, drop_last=True)) == 2


def test_dynamic_binarisation_draws_fresh_zeros_and_ones():
    x = torch.full((2000, 1, 1, 1), 0.3)
    (first, _), = Batches(x, batch_size=2000, binarize=True, seed=0)
    (second, _), = Batches(x, batch_size=2000, binarize=True, seed=1)
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert abs(first.mean().item() - 0.3) < 0.04
    assert not torch.equal(first, second)


def test_shift_moves_each_image_by_its_own_offset_within_the_limit():
    x = torch.zeros(400, 1, 28, 28)
    x[:, 0, 14, 14] = 1.0                               # one lit pixel in the middle of every image
    (moved, _), = Batches(x, batch_size=400, shift=2, seed=0)
    assert moved.shape == x.shape
    lit = moved.view(400, -1).argmax(dim=1)
    assert torch.equal(moved.view(400, -1).sum(1), torch.ones(400))   # the dot is moved, never lost or copied
    dy, dx = lit // 28 - 14, lit % 28 - 14
    assert dy.abs().max() <= 2 and dx.abs().max() <= 2
    assert set(dy.tolist()) == set(dx.tolist()) == {-2, -1, 0, 1, 2}   # every offset occurs
    (again, _), = Batches(x, batch_size=400, shift=2, seed=0)
    assert torch.equal(moved, again)                    # same seed, same offsets


def test_shift_pushes_ink_off_the_border_and_fills_black():
    x = torch.zeros(300, 1, 28, 28)
    x[:, 0, 0, :] = 1.0                                 # the top row lit
    (moved, _), = Batches(x, batch_size=300, shift=1, seed=0)
    kept = moved.view(300, -1).sum(1)
    assert set(kept.tolist()) <= {0.0, 27.0, 28.0}      # row moved up (lost), or kept, less one pixel sideways
    assert (kept == 0).any() and (moved[:, 0, 1:, :].sum((1, 2)) > 0).any()


@pytest.mark.parametrize("shift", [-1, 9, 1.5, True])
def test_bad_shift_is_a_clear_error(shift):
    with pytest.raises(AelibError, match="shift must be a whole number of pixels from 0 to 8"):
        Batches(torch.zeros(4, 1, 28, 28), shift=shift)


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 2.5}, "epochs must be a positive whole number, got 2.5"),
    ({"epochs": True}, "epochs must be a positive whole number, got True"),
    ({"epochs": "2"}, r"epochs must be a positive whole number, got '2' \(a str\)"),
    ({"batch_size": 0}, "batch_size must be a positive whole number, got 0"),
    ({"batch_size": "8"}, "batch_size must be a positive whole number"),
    ({"batch_size": 8.0}, r"batch_size must be a positive whole number, got 8.0 \(a float\)"),
    ({"batch_size": True}, "batch_size must be a positive whole number, got True"),
    ({"lr": float("nan")}, "lr must be a positive finite number, got nan"),
    ({"lr": float("inf")}, "lr must be a positive finite number, got inf"),
    ({"lr": "1e-3"}, "lr must be a positive finite number"),
    ({"lr": True}, "lr must be a positive finite number, got True"),
    ({"seed": "0"}, "seed must be a whole number from 0 to 4294967295"),
    ({"seed": 1.5}, "seed must be a whole number from 0 to 4294967295, got 1.5"),
    ({"seed": -1}, "seed must be a whole number from 0 to 4294967295, got -1"),
    ({"seed": None}, "seed must be a whole number"),
    ({"shift": True}, "shift must be a whole number of pixels from 0 to 8, got True"),
    ({"binarize": "no"}, "binarize must be True or False, got 'no'"),
    ({"progress": "no"}, "progress must be True or False"),
    ({"device": "gpu"}, "device must be 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    ({"device": 3.5}, "device must be 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    ({"device": "meta"}, "device must be 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    ({"device": "cuda:99"}, "device 'cuda:99' is not available here"),
    ({"callback": 5}, "callback must be a function"),
])
def test_fit_refuses_bad_arguments_before_training(kwargs, message):
    model = aelib.build("ae", **SMALL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(AelibError, match=message):
        aelib.fit(model, toy_data(64), **{"epochs": 1, "progress": False, **kwargs})
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_fit_and_save_need_an_aelib_model(tmp_path):
    with pytest.raises(AelibError, match="model must be an aelib model such as aelib.build"):
        aelib.fit("vae", toy_data(64), epochs=1, progress=False)
    with pytest.raises(AelibError, match="model must be an aelib model such as aelib.build"):
        aelib.save("vae", tmp_path / "vae.pt")
    with pytest.raises(AelibError, match="path must be a file path"):
        aelib.save(aelib.build("ae", **SMALL), None)


def test_fit_on_no_images_or_on_float64_images(offline_data):
    import torch

    model = aelib.build("ae", hidden_dims=(16,))
    with pytest.raises(AelibError, match="no images to train on"):
        aelib.fit(model, offline_data.train_x[:0], epochs=1, progress=False)
    history = aelib.fit(model, offline_data.train_x[:64].double(), epochs=1, progress=False)   # as encode takes them
    assert len(history) == 1 and model.encode(offline_data.train_x[:2].double()).dtype == torch.float32
