"""Whether the best-ranked document is relevant."""


def first_hit(output: list[str], expected: dict) -> bool:
    return bool(output) and output[0] in expected["relevant"]
