"""Exercises numbered within each chapter: 1, 2, 3 ... start again on every page.

sphinx-exercise numbers exercises like figures, and a book of parts has no numbered toctree,
so they would count on across the whole book ("Exercise 42" in chapter 11). After Sphinx has
assigned the numbers (``env-get-updated``), renumber each page's exercises in their order.
"""

from __future__ import annotations


def renumber_exercises(app, env) -> list[str]:
    for numbers in env.toc_fignumbers.values():
        exercises = numbers.get("exercise")
        if exercises:
            for k, key in enumerate(sorted(exercises, key=exercises.get), start=1):
                exercises[key] = (k,)
    return []


def setup(app):
    # After the toctree collector (priority 500), which assigns the book-wide numbers.
    app.connect("env-get-updated", renumber_exercises, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
