"""A retriever under test: rank documents by words shared with the query.

Deliberately naive, so its scores leave room to improve.
"""

import json
from pathlib import Path

_DOCS = json.loads((Path(__file__).parent / "_corpus.json").read_text())


def _words(text: str) -> set[str]:
    return {w.strip(".,?!").lower() for w in text.split() if len(w) > 3}


async def task(input: dict, params: dict) -> list[str]:
    query = _words(input["user_query"])
    ranked = sorted(_DOCS, key=lambda d: -len(query & _words(d["text"])))
    return [d["id"] for d in ranked[: params.get("k", 3)]]
