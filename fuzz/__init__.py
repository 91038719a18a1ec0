"""Coverage-guided fuzzing of pinata (issue 7).

Each harness in `fuzz.harnesses` is a pure function `one_input(data: bytes)`
that raises `FuzzFinding` (or lets an unexpected exception escape) when the
invariant breaks. atheris drives them (`python -m fuzz`); pytest replays the
committed corpus and crash inputs through the same functions
(`tests/fuzz/test_replay.py`), so a fixed crash stays fixed.
"""
