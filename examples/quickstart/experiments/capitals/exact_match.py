"""An evaluator file: defines a callable named like the file."""


def exact_match(output: str, expected: dict) -> bool:
    return output.strip().lower() == str(expected["expected_output"]).strip().lower()
