"""Plausible wrong answers to the exercises, as mutants of the solutions in ``lessons/solutions/``.

Each module is named after a lesson source and holds ``MUTANTS = {exercise: [(what is wrong,
[(old, new), ...]), ...]}``: the solution cell with each ``old`` text (found exactly once)
replaced by ``new``. ``tests/test_exercises.py`` requires at least three per exercise, and
requires ``exercises.check`` to reject every one of them.
"""
