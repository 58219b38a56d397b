"""Fraction of the relevant documents found in the top three results."""


def recall_at_3(output: list[str], expected: dict) -> float:
    relevant = expected["relevant"]
    found = [doc for doc in relevant if doc in output[:3]]
    return len(found) / len(relevant)
