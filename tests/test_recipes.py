"""aelib.recipes: one table of every model's defaults, read by build(), fit() and the CLI; an argument wins."""
from dataclasses import replace

import pytest

import aelib
from aelib import cli, recipes


@pytest.fixture
def small_recipes(monkeypatch):
    """Every model's recipe made tiny (and distinctive), as if the table had been edited."""
    table = {name: replace(r, hidden_dims=(24,), disc_hidden_dims=(12,), dropout=0.25, epochs=2, batch_size=100,
                           lr=3e-4) for name, r in recipes.RECIPES.items()}
    monkeypatch.setattr(recipes, "RECIPES", table)
    return table


@pytest.mark.parametrize("name", ["ae", "vae", "cvae", "aae", "caae"])
def test_build_takes_its_architecture_from_the_recipe(small_recipes, name):
    model = aelib.build(name)
    assert (model.config.hidden_dims, model.config.dropout) == ((24,), 0.25)
    assert model.encoder.net[0].out_features == 24
    if model.adversarial:
        assert model.config.disc_hidden_dims == (12,)
    override = aelib.build(name, hidden_dims=(16, 8), dropout=0.0)
    assert (override.config.hidden_dims, override.config.dropout) == ((16, 8), 0.0)


def test_fit_takes_its_training_from_the_recipe(small_recipes, offline_data, monkeypatch):
    seen = {}
    real = aelib.train.Batches

    def spy(x, y, batch_size, **kwargs):
        seen["batch_size"] = batch_size
        return real(x, y, batch_size, **kwargs)

    monkeypatch.setattr(aelib.train, "Batches", spy)
    data = (offline_data.train_x[:300], offline_data.train_y[:300])
    model = aelib.build("vae")
    history = aelib.fit(model, data, progress=False)
    assert len(history) == 2 and seen["batch_size"] == 100
    assert aelib.fit(model, data, epochs=1, batch_size=50, progress=False) and seen["batch_size"] == 50


def test_the_cli_defaults_are_the_recipe(small_recipes, offline_data):
    args = cli.make_parser().parse_args(["train", "cvae", "--no-progress"])
    model = cli.model_from_args(args)
    assert model.config.hidden_dims == (24,)
    history = cli.fit_from_args(model, (offline_data.train_x[:200], offline_data.train_y[:200]), args)
    assert len(history) == 2
    assert recipes.default_epochs("cvae") == 2


def test_the_real_table_names_every_model_and_nothing_else():
    assert set(recipes.RECIPES) == set(aelib.MODELS)
    with pytest.raises(aelib.AelibError, match="no recipe for 'gan'"):
        recipes.recipe("gan")


def test_none_means_the_recipe_in_build_but_not_in_a_checkpoint(tmp_path):
    """build(dropout=None) is the recipe's dropout; a checkpoint whose config says None is refused (test_checkpoints
    covers the message)."""
    assert aelib.build("vae", dropout=None, hidden_dims=None).config == aelib.build("vae").config


def test_a_recipe_can_widen_the_network_for_many_dimensional_codes(small_recipes, monkeypatch, tmp_path):
    """wide_above: codes of more dims than this get wide_hidden_dims, in build, the CLI and a saved checkpoint."""
    monkeypatch.setitem(recipes.RECIPES, "vae", replace(small_recipes["vae"], wide_above=3, wide_hidden_dims=(40,)))
    assert aelib.build("vae", latent_dim=3).config.hidden_dims == (24,)
    wide = aelib.build("vae", latent_dim=4)
    assert wide.config.hidden_dims == (40,) and wide.encoder.net[0].out_features == 40
    assert aelib.build("cvae", latent_dim=4).config.hidden_dims == (24,)      # only the recipe that says so
    assert aelib.build("vae", latent_dim=4, hidden_dims=(8,)).config.hidden_dims == (8,)
    args = cli.make_parser().parse_args(["train", "vae", "--latent-dim", "4"])
    assert cli.model_from_args(args).config.hidden_dims == (40,)
    aelib.save(wide, tmp_path / "wide.pt")
    monkeypatch.setitem(recipes.RECIPES, "vae", small_recipes["vae"])     # the table changes after saving
    assert aelib.load(tmp_path / "wide.pt").config.hidden_dims == (40,)


def test_the_cli_help_names_each_recipes_default(small_recipes, monkeypatch, capsys):
    monkeypatch.setitem(recipes.RECIPES, "caae", replace(small_recipes["caae"], dropout=0.5, epochs=7))
    with pytest.raises(SystemExit):
        cli.make_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default 2, the caae 7)" in text and "(default 0.25, the caae 0.5)" in text
    assert "default 100" in text and "default 0.0003" in text and "default 0, the cvae 1)" in text
