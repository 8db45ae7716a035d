"""``python -m aelib ...``: the command line (:mod:`aelib.cli`)."""
import sys

from .cli import main

sys.exit(main())
