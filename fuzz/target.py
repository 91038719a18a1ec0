"""The atheris process for one harness: `python -m fuzz.target NAME [libFuzzer args]`.

pinata (and the harness's own mutation code, so the fuzzer learns which
mutations it has tried) is instrumented for coverage. Around each input it
enforces what libFuzzer alone cannot see in a Python process: growth of
live Python objects or of resident memory across iterations
(`fuzz.growth`), reported as a finding (the input saved with it is the
last one run, not necessarily the cause). Time per input is libFuzzer's
-timeout.
"""

from __future__ import annotations

import importlib
import sys

import atheris  # type: ignore[import-untyped]

from fuzz.growth import GrowthWatch
from fuzz.harnesses import HARNESSES


def main() -> None:
    name = sys.argv[1]
    module_name, _ = HARNESSES[name]
    include = ["pinata", "fuzz.harnesses"]
    if name == "http":
        include.append("h11")
    with atheris.instrument_imports(include=include):
        module = importlib.import_module(module_name)
    argv = [sys.argv[0], *sys.argv[2:]]
    atheris.Setup(argv, GrowthWatch(module.one_input))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
