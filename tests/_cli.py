"""The ``vidlens`` command line as a real subprocess, for the end-to-end tests."""

from __future__ import annotations

import subprocess
import sys


def run_vidlens(*args, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m vidlens ARGS``; with ``check`` a non-zero exit fails with its output."""
    proc = subprocess.run([sys.executable, "-m", "vidlens", *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"vidlens {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc
