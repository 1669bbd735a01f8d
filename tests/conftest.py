"""Shared pytest setup: the stand-in fixtures live in tests/fixtures/ as plugins."""

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.controlplane",
    "tests.fixtures.sshhosts",
    "tests.fixtures.moto_server",
]
