"""What the capitals "model" knows (a helper module: its name starts with _)."""

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Canada": "Ottawa",
    "Germany": "Berlin",
    "Australia": "Canberra",
    "Brazil": "Brasília",
    "Turkey": "Ankara",
    "Nigeria": "Abuja",
}

# The mistake a small model makes: the biggest city is not always the capital.
BIGGEST_CITY = {
    "Australia": "Sydney",
    "Brazil": "São Paulo",
    "Turkey": "Istanbul",
    "Nigeria": "Lagos",
}
