"""An async task: answer "what is the capital of COUNTRY?".

It stands in for a model call (a short sleep), and like a real model it gets
the tricky ones wrong: it answers with the country's biggest city.
"""

import asyncio

from ._knowledge import BIGGEST_CITY, CAPITALS


async def task(input: dict) -> str:
    await asyncio.sleep(0.02)  # the "model" thinking
    country = input["country"]
    return BIGGEST_CITY.get(country) or CAPITALS.get(country, "I don't know")
