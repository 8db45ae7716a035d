"""Loaded by pytest before anything else: notebooks run by nbval (in kernels started from here) use quick mode."""
import os

os.environ.setdefault("AELIB_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
