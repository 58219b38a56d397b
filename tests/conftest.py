"""Fixtures every test module may use: the real Phoenix server the suite starts."""

pytest_plugins = ["phoenix_fixture"]
