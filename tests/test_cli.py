"""python -m aelib: trains and saves; bad input is one line on stderr and a non-zero exit, never a traceback."""
import subprocess
import sys

import pytest

import aelib
from aelib.cli import main


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "aelib", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_help():
    result = cli("--help")
    assert result.returncode == 0 and "train" in result.stdout
    result = cli("train", "--help")
    assert result.returncode == 0 and "--latent-dim" in result.stdout and "--prior" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name, extra", [
    ("vae", []), ("caae", ["--prior", "mixture", "--label-guided", "--dropout", "0.2"])])
def test_train_saves_a_loadable_checkpoint_and_prints_metrics(tmp_path, tiny_mnist_root, name, extra):
    out = tmp_path / "run" / f"{name}.pt"
    result = cli("train", name, "--epochs", "2", "--data", str(tiny_mnist_root), "--out", str(out),
                 "--hidden-dims", "64", *extra)
    assert result.returncode == 0, result.stderr
    assert "reconstruction_error" in result.stdout and f"saved {out}" in result.stdout
    if name == "vae":
        assert "negative_elbo" in result.stdout and "nll_iw100" in result.stdout
    model, extra_info = aelib.load(out, expected=name, with_extra=True)
    assert model.config.hidden_dims == (64,)
    assert model.config.dropout == (0.2 if "--dropout" in extra else 0.0)
    assert len(extra_info["history"]) == 2


@pytest.mark.parametrize("args, message", [
    (["train", "vea"], "invalid choice: 'vea'"),
    (["train", "vae", "--epochs", "zero"], "not a whole number"),
    (["train", "vae", "--epochs", "0"], "--epochs must be a positive whole number, got 0"),
    (["train", "vae", "--lr", "-1"], "--lr must be a positive finite number, got -1.0"),
    (["train", "aae", "--prior", "banana"], "invalid choice: 'banana'"),
    (["train", "vae", "--prior", "mixture"], "'aae' and 'caae' only"),
    (["train", "aae", "--prior", "swiss_roll", "--latent-dim", "3"], "latent_dim=2"),
    (["train", "vae", "--hidden-dims", "512,x"], "layer widths"),
    (["train", "vae", "--dropout", "1.5"], "--dropout must be a number from 0 to below 1, got 1.5"),
    (["train", "vae", "--dropout", "lots"], "'lots' is not a number"),
    (["train", "vae", "--shift", "-1"], "shift must be a whole number of pixels from 0 to 8"),
    (["fly"], "invalid choice: 'fly'"),
])
def test_bad_input_is_one_line_and_non_zero(args, message, capsys):
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own checks exit directly
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1


@pytest.mark.slow
def test_bad_input_in_a_real_process_has_no_traceback():
    for args in (["train", "vea"], ["train", "vae", "--prior", "mixture"]):
        result = cli(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "error:" in result.stderr.strip().splitlines()[-1]


def test_missing_data_file_is_a_clear_error(tmp_path, tiny_mnist_root, capsys):
    (tiny_mnist_root / "MNIST" / "raw" / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01")
    code = main(["train", "ae", "--epochs", "1", "--data", str(tiny_mnist_root), "--out", str(tmp_path / "a.pt")])
    assert code == 2
    err = capsys.readouterr().err
    assert "train-labels-idx1-ubyte is corrupt" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a.pt").exists()


def test_failed_run_keeps_the_good_checkpoint(tmp_path, tiny_mnist_root, monkeypatch):
    out = tmp_path / "ae.pt"
    args = ["train", "ae", "--epochs", "1", "--data", str(tiny_mnist_root), "--out", str(out), "--no-progress"]
    assert main(args) == 0
    good = out.read_bytes()

    def diverge(*a, **k):
        raise FloatingPointError("training diverged in epoch 1")

    monkeypatch.setattr(aelib.train, "fit", diverge)
    assert main(args) == 2
    assert out.read_bytes() == good


def train_args(root, out, *extra):
    return ["train", "ae", "--epochs", "1", "--data", str(root), "--out", str(out), "--hidden-dims", "32",
            "--no-progress", *extra]


def one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("where", ["under a file", "read-only"])
def test_an_unwritable_out_is_refused_before_training(tmp_path, tiny_mnist_root, monkeypatch, capsys, request, where):
    if where == "under a file":
        (tmp_path / "f").write_text("not a folder")
        out, reason = tmp_path / "f" / "m.pt", f"{tmp_path / 'f'} is a file, not a folder"
    else:
        folder = request.getfixturevalue("read_only_dir")
        out, reason = folder / "m.pt", f"{folder} is not writable"
    monkeypatch.setattr(aelib.train, "fit", lambda *a, **k: pytest.fail("must not train"))
    assert main(train_args(tiny_mnist_root, out)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"cannot save to {out}" in line and reason in line and "--out" in line


def test_a_save_that_fails_after_training_keeps_the_model_elsewhere(tmp_path, tiny_mnist_root, monkeypatch, capsys):
    import tempfile

    out = tmp_path / "ae.pt"
    rescue = tmp_path / "tmp"
    rescue.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rescue))
    real_save = aelib.save

    def disk_full_at_out(model, path, **extra):
        if path == out:
            raise OSError(28, "No space left on device")
        return real_save(model, path, **extra)

    monkeypatch.setattr(aelib, "save", disk_full_at_out)
    assert main(train_args(tiny_mnist_root, out)) != 0
    line = one_error_line(capsys.readouterr().err)
    kept = list(rescue.glob("*.pt"))
    assert len(kept) == 1 and str(kept[0]) in line
    assert f"could not save {out}" in line and "No space left on device" in line
    model, extra = aelib.load(kept[0], expected="ae", with_extra=True)
    assert len(extra["history"]) == 1 and not out.exists()


def test_ctrl_c_during_the_evaluation_says_the_checkpoint_was_saved(tmp_path, tiny_mnist_root, monkeypatch, capsys):
    out = tmp_path / "ae.pt"

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(aelib.evaluate, "summary", interrupt)
    assert main(train_args(tiny_mnist_root, out)) == 130
    line = one_error_line(capsys.readouterr().err)
    assert "nothing was saved" not in line and f"{out} was saved" in line
    aelib.load(out, expected="ae")


def test_ctrl_c_during_training_keeps_the_old_checkpoint_and_says_so(tmp_path, tiny_mnist_root, monkeypatch, capsys):
    out = tmp_path / "ae.pt"
    assert main(train_args(tiny_mnist_root, out)) == 0
    good = out.read_bytes()

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(aelib.train, "fit", interrupt)
    capsys.readouterr()
    assert main(train_args(tiny_mnist_root, out)) == 130
    assert "nothing was saved" in one_error_line(capsys.readouterr().err)
    assert out.read_bytes() == good


def test_a_diverged_model_never_replaces_a_good_checkpoint(tmp_path, tiny_mnist_root, capsys):
    out = tmp_path / "ae.pt"
    assert main(train_args(tiny_mnist_root, out)) == 0
    good = out.read_bytes()
    capsys.readouterr()
    assert main(train_args(tiny_mnist_root, out, "--lr", "1000", "--batch-size", "16")) != 0
    line = one_error_line(capsys.readouterr().err)
    assert "diverged in epoch 1" in line and "smaller learning rate" in line and "nothing was saved" in line
    assert out.read_bytes() == good


@pytest.mark.parametrize("args, message", [
    (["train", "vae", "--seed", "-1"], "--seed must be a whole number from 0 to 4294967295, got -1"),
    (["train", "vae", "--seed", "4294967296"], "--seed must be a whole number from 0 to 4294967295"),
    (["train", "vae", "--lr", "inf"], "--lr must be a positive finite number, got inf"),
    (["train", "vae", "--lr", "nan"], "--lr must be a positive finite number, got nan"),
    (["train", "vae", "--dropout", "nan"], "--dropout must be a number from 0 to below 1, got nan"),
    (["train", "vae", "--epochs", "2.5"], "argument --epochs: '2.5' is not a whole number"),
    (["train", "vae", "--shift", "9"], "--shift must be a whole number of pixels from 0 to 8, got 9"),
    (["train", "vae", "--hidden-dims", "64,0"], "--hidden-dims must be"),
    (["train", "vae", "--latent-dim", "0"], "--latent-dim must be a positive whole number, got 0"),
    (["evaluate", "x.pt", "--seed", "-1"], "--seed must be a whole number from 0 to 4294967295, got -1"),
    (["evaluate", "x.pt", "--k", "0"], "--k must be a positive whole number, got 0"),
    (["evaluate", "x.pt", "--per-digit", "-5"], "--per-digit must be a positive whole number, got -5"),
    (["figures", "--epochs", "0"], "--epochs must be a positive whole number, got 0"),
])
def test_every_option_is_checked_like_the_python_api_before_any_work(args, message, capsys, tmp_path,
                                                                     tiny_mnist_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if args[0] == "train":
        args = [*args, "--epochs", "1", "--data", str(tiny_mnist_root), "--no-progress"] \
            if "--epochs" not in args else [*args, "--data", str(tiny_mnist_root)]
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own checks exit directly
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and len([line for line in err.splitlines() if "error:" in line]) == 1, err
    assert "Traceback" not in err
    assert not list(tmp_path.rglob("*.pt")), "nothing may be trained or written"


def test_cli_figures_and_benchmarks_train_the_same_model(offline_data, tmp_path):
    """One training path (aelib.recipes): the CLI's options and figures' defaults give bit-identical weights."""
    import torch

    from aelib import cli

    small = (offline_data.train_x[:256], offline_data.train_y[:256])
    args = cli.make_parser().parse_args(["train", "vae", "--epochs", "1", "--hidden-dims", "32", "--seed", "3",
                                         "--no-progress"])
    via_cli = cli.model_from_args(args)
    cli.fit_from_args(via_cli, small, args)
    via_recipes = aelib.build("vae", seed=3, latent_dim=2, hidden_dims=(32,))
    aelib.fit(via_recipes, small, epochs=1, seed=3, progress=False)
    for a, b in zip(via_cli.state_dict().values(), via_recipes.state_dict().values()):
        assert torch.equal(a, b)
    other = aelib.build("vae", seed=4, latent_dim=2, hidden_dims=(32,))
    assert not torch.equal(other.state_dict()["encoder.net.0.weight"], via_recipes.state_dict()["encoder.net.0.weight"])


def test_a_full_disk_as_torch_reports_it_still_keeps_the_model_elsewhere(tmp_path, tiny_mnist_root, monkeypatch,
                                                                         capsys):
    """torch.save says a failed write with a RuntimeError ("enforce fail at inline_container.cc ... unexpected
    pos"), not an OSError: it must still end in the rescue copy, with a message a student can act on."""
    import tempfile

    import torch

    out = tmp_path / "ae.pt"
    rescue = tmp_path / "tmp"
    rescue.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rescue))
    real_save = torch.save

    calls = []

    def full_disk_the_first_time(obj, f, *args, **kwargs):   # the save to --out fails; the rescue copy works
        calls.append(f)
        if len(calls) == 1:
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk_the_first_time)
    assert main(train_args(tiny_mnist_root, out)) == 1
    line = one_error_line(capsys.readouterr().err)
    kept = list(rescue.glob("*.pt"))
    assert len(kept) == 1 and str(kept[0]) in line and "is the disk full?" in line
    assert not out.exists() and not list(tmp_path.glob(".ae.pt.*"))   # no half-written file left behind


def test_out_never_replaces_a_file_that_is_not_a_checkpoint(tmp_path, tiny_mnist_root, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    assert main(train_args(tiny_mnist_root, notes)) == 2
    assert "is not an aelib checkpoint" in one_error_line(capsys.readouterr().err)
    assert notes.read_text() == "my notes"


@pytest.mark.parametrize("given, expected", [("newdir/", "newdir/ae.pt"), ("~/run/x.pt", "home/run/x.pt")])
def test_out_as_a_folder_or_under_home_means_what_it_says(tmp_path, tiny_mnist_root, monkeypatch, given, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert main(train_args(tiny_mnist_root, given)) == 0
    assert (tmp_path / expected).is_file() and not (tmp_path / "~").exists()


def test_label_guided_on_an_ae_blames_the_ae(capsys):
    assert main(["train", "ae", "--label-guided", "--epochs", "1"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "'ae' has no prior" in line and "VAE" not in line
