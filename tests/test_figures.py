"""Architecture diagrams and the atomic figure writer behind `python -m aelib figures`."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from aelib import AelibError  # noqa: E402
from aelib.course import architecture  # noqa: E402
from aelib.course.figures import NAMES, save_figure  # noqa: E402


@pytest.mark.parametrize("name", NAMES)
def test_architecture_diagram_names_the_parts_of_each_model(name):
    fig = architecture.draw(name)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "Encoder" in texts and "Decoder" in texts
    assert ("digit y" in texts) == name.startswith("c")
    assert ("Discriminator" in texts) == ("aae" in name)
    assert ("ε ~ N(0, I)" in texts) == ("vae" in name)
    plt.close(fig)


def test_unknown_model_diagram():
    with pytest.raises(AelibError, match="unknown model"):
        architecture.draw("gan")


def test_save_figure_is_atomic(tmp_path):
    path = tmp_path / "f.png"
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    save_figure(fig, path)
    good = path.read_bytes()
    assert good[:8] == b"\x89PNG\r\n\x1a\n"

    def crash(*args, **kwargs):
        raise RuntimeError("renderer crashed")

    broken, _ = plt.subplots()
    broken.savefig = crash
    with pytest.raises(RuntimeError):
        save_figure(broken, path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"], "the temporary file must be removed"


def test_figures_command_writes_every_png(tmp_path, tiny_mnist_root):
    from aelib.cli import main

    out = tmp_path / "figs"
    code = main(["figures", "--out", str(out), "--checkpoints", str(tmp_path / "ckpt"), "--epochs", "1",
                 "--data", str(tiny_mnist_root)])
    assert code == 0
    expected = {f"architecture_{n}.png" for n in NAMES} | {"cvae_digits.png", "caae_digits.png",
                                                          "vae_manifold.png", "latent_maps.png"}
    assert {p.name for p in out.iterdir()} == expected
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in out.iterdir())
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == sorted(f"{n}.pt" for n in NAMES)


def test_figures_refuses_an_unwritable_checkpoints_folder_before_training(tmp_path, tiny_mnist_root, monkeypatch,
                                                                           capsys):
    import aelib
    from aelib.cli import main

    (tmp_path / "ckpt").write_text("a file where the checkpoints folder should be")
    monkeypatch.setattr(aelib, "fit", lambda *a, **k: pytest.fail("must not train"))
    assert main(["figures", "--out", str(tmp_path / "figs"), "--checkpoints", str(tmp_path / "ckpt"),
                 "--data", str(tiny_mnist_root)]) == 2
    err = capsys.readouterr().err
    assert "--checkpoints" in err and "is a file, not a folder" in err
