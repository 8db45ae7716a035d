"""aelib's CPU thread policy: as many torch threads as cores other processes leave free, unless the user
says otherwise; CUDA and MPS untouched. The free cores are faked here (no timing)."""
import os

import pytest
import torch

import aelib
from aelib import AelibError
from aelib import threads as policy
from aelib.cli import main

SMALL = {"hidden_dims": (32,), "disc_hidden_dims": (16,)}


@pytest.fixture(autouse=True)
def fresh_policy(monkeypatch):
    """No thread variable set, torch at 2 threads as if just imported, nothing chosen yet, one core of two free;
    restored afterwards."""
    before = torch.get_num_threads()
    for var in ("AELIB_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    torch.set_num_threads(2)
    monkeypatch.setattr(policy, "_TORCH_START", 2)
    monkeypatch.setattr(policy, "_chosen", None)
    monkeypatch.setattr(policy, "_explicit", False)
    monkeypatch.setattr(policy, "_last_snapshot", None)
    monkeypatch.setattr(policy, "free_cores", lambda since: 1.0)
    yield
    torch.set_num_threads(before)


def toy(n=64):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("free, threads", [(2.0, 2), (1.6, 2), (1.4, 1), (1.0, 1), (0.2, 1), (None, 1), (3.9, 2)])
def test_the_policy_uses_the_cores_other_processes_leave_free(monkeypatch, free, threads):
    monkeypatch.setattr(policy, "free_cores", lambda since: free)
    assert aelib.use_threads() == threads and torch.get_num_threads() == threads   # never more than torch's own 2
    assert aelib.use_threads() == threads                  # applying it again changes nothing


def test_fit_measures_again_after_every_epoch(monkeypatch):
    free = iter([2.0, 1.0, 1.0, 2.0])      # before training, then after epochs 1, 2 and 3
    monkeypatch.setattr(policy, "free_cores", lambda since: next(free))
    seen = []
    aelib.fit(aelib.build("vae", **SMALL), toy(), epochs=3, progress=False,
              callback=lambda epoch, losses, model: seen.append(torch.get_num_threads()))
    assert seen == [1, 1, 2]


def test_the_free_cores_are_measured_on_linux():
    since = policy.cpu_snapshot()
    if since is None:
        pytest.skip("no /proc/stat here")
    sum(range(3_000_000))                  # this process's own work is not counted against the free cores
    free = policy.free_cores(since)
    assert free is None or 0 <= free <= (os.cpu_count() or 1)


def test_fit_and_notebook_setup_apply_the_policy(capsys):   # one core of two free: 1 thread
    aelib.fit(aelib.build("vae", **SMALL), toy(), epochs=1, progress=False)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(2)
    policy._chosen, policy._TORCH_START = None, 2
    aelib.notebook.setup()
    assert torch.get_num_threads() == 1
    assert capsys.readouterr().out.startswith("seed 0, device cpu, ")   # the notebooks' first output is unchanged


@pytest.mark.parametrize("value, threads", [("2", 2), (" 3 ", 3), ("1", 1), ("torch", 2), ("TORCH", 2)])
def test_aelib_threads_chooses_the_count(monkeypatch, value, threads):
    monkeypatch.setenv("AELIB_THREADS", value)
    assert aelib.use_threads() == threads
    aelib.fit(aelib.build("ae", **SMALL), toy(), epochs=1, progress=False)
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("var", ["OMP_NUM_THREADS", "MKL_NUM_THREADS"])
def test_omp_num_threads_is_left_to_torch(monkeypatch, var):
    monkeypatch.setenv(var, "2")
    aelib.fit(aelib.build("ae", **SMALL), toy(), epochs=1, progress=False)
    assert torch.get_num_threads() == 2


def test_an_explicit_choice_stands():
    assert aelib.use_threads(2) == 2
    aelib.fit(aelib.build("ae", **SMALL), toy(), epochs=1, progress=False)
    assert torch.get_num_threads() == 2


def test_torch_set_num_threads_after_import_stands():
    aelib.use_threads()                                  # the policy: 1
    torch.set_num_threads(2)                             # the user's own call afterwards
    aelib.fit(aelib.build("ae", **SMALL), toy(), epochs=1, progress=False)
    assert torch.get_num_threads() == 2
    policy._chosen = None
    torch.set_num_threads(3)                             # before aelib ever applied its policy
    assert aelib.use_threads() == 3


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "auto"])
def test_a_bad_aelib_threads_is_a_clear_error(monkeypatch, capsys, value):
    monkeypatch.setenv("AELIB_THREADS", value)
    message = f"AELIB_THREADS must be a positive whole number of CPU threads .* got '{value}'"
    with pytest.raises(AelibError, match=message):
        aelib.use_threads()
    model = aelib.build("ae", **SMALL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(AelibError, match=message):
        aelib.fit(model, toy(), epochs=1, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert main(["train", "ae", "--epochs", "1"]) == 2
    assert "AELIB_THREADS must be" in capsys.readouterr().err
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("n", [0, -2, 1.5, "2", True])
def test_a_bad_thread_count_is_a_clear_error(n):
    with pytest.raises(AelibError, match="threads must be a positive whole number"):
        aelib.use_threads(n)
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda"), "mps"])
def test_a_gpu_device_is_left_alone(device):
    assert aelib.use_threads(device=device) == 2
    assert aelib.use_threads(1, device=device) == 2
    assert aelib.use_threads(device="cpu") == 1


def test_a_bad_device_is_a_clear_error():
    with pytest.raises(AelibError, match="device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got 'gpu'"):
        aelib.use_threads(device="gpu")
