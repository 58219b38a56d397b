"""What the capitals "model" knows (a helper module: its name starts with _)."""

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Canada": "Ottawa",
    "Germany": "Berlin",
}

# The mistake a model often makes: the biggest city is not always the capital.
BIGGEST_CITY = {
    "Australia": "Sydney",
    "Brazil": "São Paulo",
    "Turkey": "Istanbul",
}
