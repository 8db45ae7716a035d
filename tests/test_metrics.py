"""The held-out quality metrics: the digit judge, conditional accuracy, MMD / two-sample accuracy, own component, and
``python -m aelib evaluate``."""
import math
import time

import pytest
import torch

import aelib
from aelib import classifier, metrics
from aelib.cli import main


@pytest.fixture(scope="session")
def judge_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("judge_cache")


@pytest.fixture(scope="session")
def judge(offline_data, judge_cache):
    """The judge trained on the 4,000 offline training digits (once per test session, ~5-15 s)."""
    return classifier.get_judge(offline_data, cache=judge_cache, verbose=False)


class IgnoresLabel:
    """A 'generator' that returns real test digits of any class, whatever label it is asked for."""

    def __init__(self, x):
        self.x = x

    def sample(self, n, y=None):
        return self.x[torch.randint(len(self.x), (n,))]


class ObeysLabel:
    """A 'generator' that returns real test digits of the requested class."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def sample(self, n, y):
        pool = self.x[self.y == y]
        return pool[torch.randint(len(pool), (n,))]


@pytest.mark.slow
# ---------------------------------------------------------------------------------------------------- the judge
def test_judge_is_above_95_percent_on_its_test_split(judge, offline_data):
    assert judge.test_accuracy > 0.95
    assert judge.accuracy(offline_data.test_x, offline_data.test_y) == pytest.approx(judge.test_accuracy)
    assert judge.predict(offline_data.test_x[:5]).shape == (5,)
    probs = judge.predict_proba(offline_data.test_x[:5])
    assert probs.shape == (5, 10) and torch.allclose(probs.sum(1), torch.ones(5))


def test_judge_is_loaded_from_the_cache_and_keyed_by_the_data(judge, offline_data, judge_cache):
    start = time.perf_counter()
    again = classifier.get_judge(offline_data, cache=judge_cache, verbose=False)
    assert time.perf_counter() - start < 2.0          # loaded, not retrained
    assert again.key == judge.key and again.test_accuracy == judge.test_accuracy
    for a, b in zip(again.state_dict().values(), judge.state_dict().values()):
        assert torch.equal(a, b)
    relabelled = aelib.MNIST(offline_data.train_x, offline_data.train_y.roll(1), offline_data.test_x,
                             offline_data.test_y, source=offline_data.source)
    assert classifier.data_key(relabelled) != judge.key
    renamed = aelib.MNIST(offline_data.train_x, offline_data.train_y, offline_data.test_x, offline_data.test_y,
                          source="another dataset")
    assert classifier.data_key(renamed) != judge.key


def test_a_damaged_cache_file_is_retrained(tmp_path, offline_data):
    small = aelib.MNIST(offline_data.train_x[:200], offline_data.train_y[:200], offline_data.test_x[:50],
                        offline_data.test_y[:50], source="small")
    path = tmp_path / f"judge-{classifier.data_key(small)}.pt"
    path.write_bytes(b"not a checkpoint")
    fresh = classifier.get_judge(small, cache=tmp_path, verbose=False)
    assert fresh.test_accuracy is not None and path.stat().st_size > 1000


@pytest.fixture
def small_data(offline_data):
    return aelib.MNIST(offline_data.train_x[:200], offline_data.train_y[:200], offline_data.test_x[:50],
                       offline_data.test_y[:50], source="small")


@pytest.mark.parametrize("where", ["a file", "under a file", "read-only", "$AELIB_CACHE is a file"])
def test_an_unwritable_judge_cache_only_costs_a_retrain(tmp_path, small_data, capsys, monkeypatch, request, where):
    blocker = tmp_path / "cache"
    blocker.write_text("a file, not a folder")
    cache = {"a file": blocker, "under a file": blocker / "sub", "$AELIB_CACHE is a file": None}.get(where)
    if where == "read-only":
        cache = blocker = request.getfixturevalue("read_only_dir")
    if cache is None:
        monkeypatch.setenv("AELIB_CACHE", str(blocker))
    for _ in range(2):                       # every time: a retrain, and one line saying it is not cached
        judge = classifier.get_judge(small_data, cache=cache, verbose=True)
        assert judge.test_accuracy is not None and judge.predict(small_data.test_x[:3]).shape == (3,)
        err = capsys.readouterr().err
        assert "Traceback" not in err
        (line,) = [line for line in err.splitlines() if "cache" in line]
        reason = "is not writable" if where == "read-only" else "is a file, not a folder"
        assert line.startswith("aelib: the digit judge is not cached, so it is retrained each time: "
                               f"{blocker} {reason}")
        assert line.endswith(f"set ${classifier.CACHE_ENV} to a folder you can write to")


def test_get_judge_says_once_where_the_judge_is_cached(tmp_path, small_data, capsys):
    classifier.get_judge(small_data, cache=tmp_path, verbose=True)
    path = tmp_path / f"judge-{classifier.data_key(small_data)}.pt"
    assert [line for line in capsys.readouterr().err.splitlines() if "cache" in line] == [
        f"aelib: the digit judge is cached in {path}"]
    classifier.get_judge(small_data, cache=tmp_path, verbose=True)
    assert capsys.readouterr().err.strip() == f"aelib: the digit judge is loaded from the cache {path}"


def test_the_judge_sees_about_as_many_images_on_any_training_set():
    assert [classifier.judge_epochs(n) for n in (300, 4_000, 8_000, 60_000)] == [12, 12, 6, 2]


def test_random_shift_moves_whole_images():
    x = torch.zeros(50, 1, 28, 28)
    x[:, :, 10:18, 10:18] = torch.rand(50, 1, 8, 8)
    shifted = classifier.random_shift(x, 2, torch.Generator().manual_seed(0))
    assert torch.allclose(shifted.sum((1, 2, 3)), x.sum((1, 2, 3)))   # nothing falls off the edge
    assert not torch.equal(shifted, x)
    assert torch.equal(classifier.random_shift(x, 0), x)


# ---------------------------------------------------------------------------------------- conditional accuracy
def test_a_generator_that_ignores_the_label_scores_about_10_percent(judge, offline_data):
    result = metrics.conditional_accuracy(IgnoresLabel(offline_data.test_x), judge, n_per_digit=200)
    assert 0.06 < result["overall"] < 0.14
    assert len(result["per_digit"]) == 10 and result["confusion"].sum() == 2000


def test_a_generator_that_obeys_the_label_scores_like_the_judge(judge, offline_data):
    result = metrics.conditional_accuracy(ObeysLabel(offline_data.test_x, offline_data.test_y), judge, n_per_digit=100)
    assert result["overall"] > 0.93 and min(result["per_digit"]) > 0.8
    assert result["confusion"].sum(1).tolist() == [100] * 10


def test_conditional_accuracy_is_deterministic_and_leaves_the_global_rng_alone(judge, offline_data):
    model = IgnoresLabel(offline_data.test_x)
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    a = metrics.conditional_accuracy(model, judge, n_per_digit=30, seed=1)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = metrics.conditional_accuracy(model, judge, n_per_digit=30, seed=1)
    assert torch.equal(a["confusion"], b["confusion"])


# -------------------------------------------------------------------------------------------- two-sample tests
def test_mmd_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 2, generator=g)
    same = metrics.mmd2(a, torch.randn(500, 2, generator=g))
    assert abs(same) < 0.01
    values = [metrics.mmd2(a, torch.randn(500, 2, generator=g) + shift) for shift in (0.5, 1.0, 2.0, 4.0)]
    assert values[0] > 0.02 and values == sorted(values) and values[-1] > 0.5


def test_mmd_is_unbiased_under_the_null():
    """Averaged over many pairs of samples of one distribution, the unbiased estimate is ~0 (it goes negative too)."""
    g = torch.Generator().manual_seed(1)
    values = [metrics.mmd2(torch.randn(50, 3, generator=g), torch.randn(50, 3, generator=g), bandwidth=1.0)
              for _ in range(200)]
    mean = sum(values) / len(values)
    assert abs(mean) < 3 * (torch.tensor(values).std().item() / math.sqrt(len(values)))
    assert min(values) < 0


def test_two_sample_accuracy_is_chance_for_one_distribution_and_high_when_apart():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(600, 2, generator=g)
    assert 0.42 < metrics.two_sample_accuracy(a, torch.randn(600, 2, generator=g)) < 0.58
    assert metrics.two_sample_accuracy(a, torch.randn(600, 2, generator=g) + 5) > 0.99


def test_bad_samples_are_clear_errors():
    with pytest.raises(aelib.AelibError, match="dimensions"):
        metrics.mmd2(torch.randn(10, 2), torch.randn(10, 3))
    with pytest.raises(aelib.AelibError, match="N >= 2"):
        metrics.mmd2(torch.randn(1, 2), torch.randn(10, 2))


# ------------------------------------------------------------------------------------ codes against the prior
def test_nearest_component_of_the_mixture_and_the_swiss_roll():
    mixture = aelib.priors.make_prior("mixture", 2, label_guided=True)
    assert metrics.nearest_component(mixture, metrics.mixture_means()).tolist() == list(range(10))
    labels = torch.arange(10).repeat(50)
    for name in ("mixture", "swiss_roll"):
        prior = aelib.priors.make_prior(name, 2, label_guided=True)
        z = prior.sample(len(labels), labels, torch.Generator().manual_seed(3))
        assert (metrics.nearest_component(prior, z) == labels).float().mean() > 0.85


def test_prior_matching_and_own_component_on_a_model(offline_data):
    model = aelib.build("aae", prior="mixture", label_guided=True, hidden_dims=(32,))
    x, y = offline_data.test_x[:300], offline_data.test_y[:300]
    match = metrics.prior_matching(model, x, y)
    assert set(match) == {"mmd2", "two_sample_accuracy"} and 0.5 <= match["two_sample_accuracy"] <= 1
    assert match == metrics.prior_matching(model, x, y)                # deterministic
    with pytest.raises(aelib.AelibError, match="label_guided"):
        metrics.own_component_fraction(aelib.build("aae"), x, y)
    vae = aelib.build("vae", hidden_dims=(32,))
    assert set(metrics.prior_matching(vae, x)) == {"mmd2", "two_sample_accuracy"}


# ---------------------------------------------------------------------------------------- python -m aelib evaluate
@pytest.fixture
def tiny_checkpoints(tmp_path, tiny_mnist_root, monkeypatch):
    monkeypatch.setenv("AELIB_CACHE", str(tmp_path / "cache"))
    paths = []
    for name, extra in (("cvae", []), ("aae", ["--prior", "mixture", "--label-guided"]), ("ae", [])):
        out = tmp_path / "ckpt" / f"{name}.pt"
        assert main(["train", name, "--epochs", "1", "--data", str(tiny_mnist_root), "--out", str(out),
                     "--hidden-dims", "32", "--no-progress", *extra]) == 0
        paths.append(out)
    return paths


def test_evaluate_prints_one_table(tiny_checkpoints, tiny_mnist_root, capsys):
    capsys.readouterr()
    args = ["evaluate", *map(str, tiny_checkpoints), "--data", str(tiny_mnist_root), "--per-digit", "10", "--k", "10"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "test split: the test split of" in out and "100 digits" in out and "judge:" in out
    table = out[out.index("checkpoint"):]
    for header in ("-ELBO", "NLL k=10", "recon", "cond acc", "worst digit", "MMD^2", "2-sample", "own comp"):
        assert header in table
    rows = {line.split()[0]: line for line in table.splitlines()[2:5]}
    assert set(rows) == {"cvae", "aae", "ae"}
    assert "mixture guided" in rows["aae"] and "%" in rows["cvae"]
    assert "conditional accuracy per requested digit" in out

    assert main(args + ["--test-dir", str(tiny_mnist_root / "MNIST" / "raw")]) == 0
    out = capsys.readouterr().out
    assert "test split: official MNIST test split" in out and "100 digits" in out


def test_evaluate_without_checkpoints_uses_checkpoints_folder(tiny_checkpoints, tiny_mnist_root, monkeypatch,
                                                              capsys):
    monkeypatch.chdir(tiny_checkpoints[0].parents[1])
    (tiny_checkpoints[0].parent).rename("checkpoints")
    assert main(["evaluate", "--data", str(tiny_mnist_root), "--per-digit", "5", "--k", "5"]) == 0
    assert {"cvae", "aae", "ae"} <= {line.split()[0] for line in capsys.readouterr().out.splitlines() if line}


@pytest.mark.parametrize("bad", ["missing", "foreign"])
def test_evaluate_a_bad_checkpoint_is_one_line_and_exit_2(tmp_path, bad, capsys):
    path = tmp_path / "model.pt"
    if bad == "foreign":
        path.write_text("not a checkpoint")
    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0] and "checkpoint" in err[0]


def test_evaluate_with_an_empty_checkpoints_folder_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate"]) == 2
    assert "no checkpoints" in capsys.readouterr().err


def test_evaluate_with_a_test_dir_without_mnist_is_a_clear_error(tiny_checkpoints, tmp_path, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(tiny_checkpoints[0]), "--test-dir", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no MNIST test split" in err[0]


def test_loading_the_cached_judge_leaves_the_global_random_state_alone(offline_data):
    from aelib.classifier import get_judge

    get_judge(offline_data)                       # make sure the cache exists
    torch.manual_seed(123)
    get_judge(offline_data)                       # load it from the cache
    after_load = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after_load, torch.rand(3))


@pytest.mark.parametrize("call, message", [
    (lambda m, x, y: aelib.evaluate.log_likelihood(m, x, y, k=2.5), "k must be a positive whole number, got 2.5"),
    (lambda m, x, y: aelib.evaluate.log_likelihood(m, x, y, k="10"), "k must be a positive whole number"),
    (lambda m, x, y: aelib.evaluate.log_likelihood(m, x, y, k=True), "k must be a positive whole number, got True"),
    (lambda m, x, y: aelib.evaluate.log_likelihood(m, x, y, k=float("nan")), "k must be a positive whole number"),
    (lambda m, x, y: aelib.evaluate.elbo(m, x, y, samples=0), "samples must be a positive whole number, got 0"),
    (lambda m, x, y: aelib.evaluate.elbo(m, x, y, samples=2.5), "samples must be a positive whole number"),
    (lambda m, x, y: aelib.evaluate.summary(m, x, y, k=0), "k must be a positive whole number, got 0"),
    (lambda m, x, y: aelib.evaluate.held_out(m, x, y, k=0), "k must be a positive whole number, got 0"),
    (lambda m, x, y: aelib.evaluate.held_out(m, x, y, judge=object(), n_per_digit=0),
     "n_per_digit must be a positive whole number, got 0"),
    (lambda m, x, y: aelib.evaluate.held_out(m, x, y, seed="a"), "seed must be a whole number from 0"),
    (lambda m, x, y: aelib.evaluate.held_out(m, x, y, seed=-1), "seed must be a whole number from 0"),
    (lambda m, x, y: metrics.conditional_accuracy(m, object(), n_per_digit=True), "n_per_digit must be a positive"),
    (lambda m, x, y: metrics.prior_matching(m, x, y, max_points=1.5), "max_points must be a positive whole number"),
    (lambda m, x, y: metrics.two_sample_accuracy(torch.randn(8, 2), torch.randn(8, 2), k=0),
     "k must be a positive whole number, got 0"),
])
def test_evaluation_counts_are_checked_like_every_other_argument(call, message):
    torch.manual_seed(0)
    model = aelib.build("cvae", hidden_dims=(16,))
    with pytest.raises(aelib.AelibError, match=message):
        call(model, torch.rand(4, 1, 28, 28), torch.arange(4))


def test_prior_matching_per_digit(offline_data):
    """Per digit = prior_matching on that digit's test images; an unconditional AE's digits sit in their own regions,
    so each digit alone is told from the prior far above the null band, whose 95th percentile for ~100 points is a
    little above 50%."""
    x, y = offline_data.test_x, offline_data.test_y
    model = aelib.build("ae", latent_dim=2, hidden_dims=(64,))
    aelib.fit(model, (offline_data.train_x[:1000], offline_data.train_y[:1000]), epochs=2, progress=False)
    per = metrics.prior_matching_per_digit(model, x, y, null_draws=40)
    assert per["two_sample_accuracy"][3] == metrics.prior_matching(model, x[y == 3], y[y == 3])["two_sample_accuracy"]
    assert 0.5 < per["null_95"] < 0.62
    assert min(per["two_sample_accuracy"]) > per["null_95"]
    with pytest.raises(aelib.AelibError, match="every class"):
        metrics.prior_matching_per_digit(model, x[y < 9], y[y < 9])


@pytest.mark.parametrize("name", ["vae", "cvae", "aae"])
def test_train_and_evaluate_print_the_same_numbers(offline_data, name):
    """`python -m aelib train` prints evaluate.summary, `evaluate` prints held_out: one definition, same values."""
    model = aelib.build(name, latent_dim=2, hidden_dims=(32,))
    x, y = offline_data.test_x[:200], offline_data.test_y[:200]
    short = aelib.evaluate.summary(model, x, y, k=20, seed=3)
    full = aelib.evaluate.held_out(model, x, y, k=20, seed=3)
    assert short == {key: full[key] for key in short}
    assert ("negative_elbo" in short) == model.variational


def test_prior_matching_draws_the_prior_apart_from_the_codes_noise(offline_data, monkeypatch):
    """A VAE whose q(z|x) is the prior for every x has codes that ARE prior samples: the two-sample test must be at
    chance. Drawn with the same seed as the codes' noise, each prior draw was its code's twin (accuracy far below)."""
    model = aelib.build("vae", hidden_dims=(8,))
    monkeypatch.setattr(model, "posterior", lambda x, y=None: (torch.zeros(len(x), 2), torch.zeros(len(x), 2)))
    accuracy = metrics.prior_matching(model, offline_data.test_x[:1000])["two_sample_accuracy"]
    assert 0.44 < accuracy < 0.56, accuracy
