"""save/load: config + state_dict, safe loading, atomic writes and clear errors."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import aelib
from aelib import CheckpointError

SMALL = {"hidden_dims": (32,), "disc_hidden_dims": (16,)}


@pytest.mark.parametrize("name, config", [("ae", {}), ("vae", {"latent_dim": 3}), ("cvae", {"dropout": 0.2}),
                                          ("aae", {"prior": "swiss_roll", "label_guided": True}), ("caae", {})])
def test_round_trip_reproduces_outputs_exactly(tmp_path, name, config):
    model = aelib.build(name, **SMALL, **config)
    model.train()
    for p in model.parameters():  # move away from the initialisation
        p.data.add_(0.01 * torch.randn_like(p))
    path = aelib.save(model, tmp_path / "sub" / f"{name}.pt", history=[{"loss": 1.0}])
    loaded = aelib.load(path)
    assert loaded.config == model.config and type(loaded) is type(model)
    assert not loaded.training
    x, y = torch.rand(5, 1, 28, 28), torch.arange(5)
    z = torch.randn(5, model.latent_dim)
    assert torch.equal(loaded.reconstruct(x, y), model.reconstruct(x, y))
    assert torch.equal(loaded.decode(z, y), model.decode(z, y))
    _, extra = aelib.load(path, with_extra=True)
    assert extra == {"history": [{"loss": 1.0}]}


def test_loading_never_unpickles_code(tmp_path):
    path = tmp_path / "whole-model.pt"
    torch.save(aelib.build("ae", **SMALL), path)  # the seed's way: a pickled module
    with pytest.raises(CheckpointError, match=r"not a safe aelib checkpoint.*\(aelib.models.AE\)"):
        aelib.load(path)


@pytest.mark.parametrize("content, message", [
    (b"hello, I am not a checkpoint", "not an aelib checkpoint"),
    (b"", "not an aelib checkpoint"),
])
def test_foreign_files(tmp_path, content, message):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        aelib.load(path)


def test_foreign_state_dict_and_other_version(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(aelib.build("ae", **SMALL).state_dict(), path)
    with pytest.raises(CheckpointError, match="no 'aelib-checkpoint' marker"):
        aelib.load(path)
    good = aelib.save(aelib.build("ae", **SMALL), tmp_path / "good.pt")
    payload = torch.load(good, weights_only=True)
    payload["version"] = 99
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="version 99"):
        aelib.load(path)


def test_checkpoint_of_another_model(tmp_path):
    path = aelib.save(aelib.build("aae", **SMALL), tmp_path / "aae.pt")
    with pytest.raises(CheckpointError, match="holds a 'aae' model, not 'vae'"):
        aelib.load(path, expected="vae")
    assert aelib.load(path, expected="aae").name == "aae"


def test_weights_that_do_not_fit_the_config(tmp_path):
    path = aelib.save(aelib.build("vae", **SMALL), tmp_path / "vae.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"]["hidden_dims"] = [64]
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        aelib.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        aelib.load(tmp_path / "nope.pt")


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = aelib.build("ae", **SMALL)
    path = aelib.save(model, tmp_path / "ae.pt")
    good = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        aelib.save(aelib.build("ae", **SMALL), path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["ae.pt"], "no temporary file may be left behind"


def test_history_from_fit_and_numpy_values_round_trip(tmp_path):
    model = aelib.build("ae", **SMALL)
    history = aelib.fit(model, torch.rand(64, 1, 28, 28), epochs=2, progress=False)
    codes = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = aelib.save(model, tmp_path / "ae.pt", history=history, best=np.float64(0.5), step=np.int64(3),
                      codes=codes, note=("a", 1, None), scores={"recon": [np.float32(1.5)]})
    _, extra = aelib.load(path, with_extra=True)
    assert isinstance(extra["history"], aelib.History) and extra["history"] == history
    assert extra["history"].series("loss") == history.series("loss")
    assert extra["best"] == 0.5 and type(extra["best"]) is float and extra["step"] == 3
    assert isinstance(extra["codes"], np.ndarray) and extra["codes"].dtype == np.float32
    assert np.array_equal(extra["codes"], codes)
    assert extra["note"] == ("a", 1, None) and extra["scores"] == {"recon": [1.5]}


@pytest.mark.parametrize("value, message", [
    (object(), "object"),
    (Path("x.png"), "Path"),
    ({"fn": len}, "builtin_function_or_method"),
    (np.array(["a", "b"], dtype=object), "array of object"),
])
def test_what_save_cannot_store_is_refused_before_the_file_is_touched(tmp_path, value, message):
    path = aelib.save(aelib.build("ae", **SMALL), tmp_path / "ae.pt")
    good = path.read_bytes()
    with pytest.raises(CheckpointError, match=f"cannot store.*{message}"):
        aelib.save(aelib.build("ae", **SMALL), path, history=[{"loss": 1.0}], bad=value)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["ae.pt"]


# --- a checkpoint edited by hand is a CheckpointError, found before anything big is built ---------
def edited(tmp_path, edit, name="vae"):
    """A good checkpoint of ``name``, changed by ``edit(payload)`` as someone editing it by hand might."""
    torch.manual_seed(0)
    path = aelib.save(aelib.build(name, **SMALL), tmp_path / f"{name}.pt")
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)
    return path


def set_weight(key, value):
    return lambda payload: payload["state_dict"].__setitem__(key, value)


@pytest.mark.parametrize("edit, message", [
    (lambda p: p.pop("config"), "has no 'config'"),
    (lambda p: p.pop("state_dict"), "has no 'state_dict'"),
    (lambda p: p.update(config="vae"), "its config must be a dict"),
    (lambda p: p["config"].pop("name"), "its config has no 'name'"),
    (lambda p: p["config"].update(name=None), "model name must be one of"),
    (lambda p: p["config"].update(latent_dim="2"), "latent_dim must be a positive whole number"),
    (lambda p: p["config"].update(hidden_dims=None), "hidden_dims must be"),
    (lambda p: p["config"].update(dropout=[0.1]), "dropout must be a number"),
    (lambda p: p["config"].update(colour="red"), "unknown option"),
    (lambda p: p.update(state_dict=[1, 2]), "its state_dict must be a dict"),
    (lambda p: p["state_dict"].pop("decoder.net.0.weight"), "missing decoder.net.0.weight"),
    (lambda p: p["state_dict"].update(spare=torch.zeros(1)), "unexpected spare"),
    (set_weight("encoder.net.0.weight", [[0.0]]), "encoder.net.0.weight is a list, not a tensor"),
    (set_weight("encoder.net.0.weight", torch.zeros(3, 3)), r"encoder.net.0.weight has shape \(3, 3\), its config "
                                                            r"needs \(32, 784\)"),
    (set_weight("encoder.net.0.bias", torch.zeros(32, dtype=torch.long)), "encoder.net.0.bias holds torch.int64"),
    (lambda p: p["config"].update(hidden_dims=[8000, 8000]), "do not fit"),
    (lambda p: p.update(extra=[1]), "its extra values must be a dict"),
])
def test_a_checkpoint_edited_by_hand_is_a_checkpoint_error(tmp_path, edit, message):
    path = edited(tmp_path, edit)
    with pytest.raises(CheckpointError, match=message) as err:
        aelib.load(path, with_extra=True)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_config_that_does_not_fit_its_weights_is_refused_before_the_model_is_built(tmp_path):
    """A 200 KB file whose config asks for hidden_dims [8000, 8000] (128 M parameters) once made load allocate ~1 GB
    before finding that its weights do not fit; the shapes are now compared first."""
    path = edited(tmp_path, lambda p: p["config"].update(hidden_dims=[8000, 8000]))
    assert path.stat().st_size < 300_000
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc to read the peak memory")
    # VmHWM, not getrusage's ru_maxrss: a child process inherits the parent's ru_maxrss through exec
    code = ("import re, aelib\n"
            "peak = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
            "before = peak()\n"
            "try:\n"
            f"    aelib.load({str(path)!r})\n"
            "except aelib.CheckpointError:\n"
            "    pass\n"
            "print((peak() - before) // 1024)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) < 50, f"load grew the peak memory by {result.stdout.strip()} MB"


class Payload:
    """A pickle that runs a command when unpickled: what a malicious "checkpoint" holds."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_malicious_pickle_is_refused_without_advice_to_unpickle_it(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    torch.save({"format": "aelib-checkpoint", "version": 1, "config": {"name": "vae"}, "x": Payload(marker)}, path)
    with pytest.raises(CheckpointError) as err:
        aelib.load(path)
    message = str(err.value)
    assert "not a safe aelib checkpoint" in message and "must not be loaded" in message and str(path) in message
    assert "weights_only" not in message and "False" not in message and "trust" not in message
    assert not marker.exists()


def test_loading_onto_a_missing_gpu_says_so(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    path = aelib.save(aelib.build("ae", hidden_dims=(8,)), tmp_path / "ae.pt")
    with pytest.raises(aelib.AelibError, match="'cuda' is not available here"):
        aelib.load(path, map_location="cuda")
