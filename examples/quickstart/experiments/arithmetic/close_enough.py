"""Scores 1.0 when the answer is within 1e-6 of the expected number."""

import math


def close_enough(output: float, expected: dict) -> dict:
    want = float(expected["answer"])
    ok = math.isclose(output, want, rel_tol=1e-9, abs_tol=1e-6)
    return {
        "score": float(ok),
        "label": "correct" if ok else "wrong",
        "explanation": None if ok else f"got {output}, expected {want}",
    }
