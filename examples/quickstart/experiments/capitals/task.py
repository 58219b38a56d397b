"""An async task: answer "what is the capital of COUNTRY?".

It stands in for a model call (a short sleep). `params["model"]` picks the
"model": the small one answers with the country's biggest city, a classic
mistake; the large one knows the capitals but, like a real model, is not
fully reliable: it sometimes abstains, at random (seeded by `params["seed"]`).
"""

import asyncio
import random

from ._knowledge import BIGGEST_CITY, CAPITALS


async def task(input: dict, params: dict) -> str:
    await asyncio.sleep(0.02)  # the "model" thinking
    country = input["country"]
    if params.get("model") == "large":
        rng = random.Random(f"{params.get('seed', 0)}:{country}")
        if rng.random() < 0.15:
            return "I don't know"
        return CAPITALS.get(country, "I don't know")
    return BIGGEST_CITY.get(country) or CAPITALS.get(country, "I don't know")
