"""Did the model commit to an answer? A label and a score with an explanation."""


def answered(output: str) -> tuple[float, str, str]:
    if "don't know" in output:
        return 0.0, "abstained", f"the model said {output!r}"
    return 1.0, "answered", ""
