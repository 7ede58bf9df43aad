"""Marks every test that starts a real metrics server as ``integration`` (see pyproject's markers), so
``-m "not integration"`` (the lowest-versions run in scripts/test) selects exactly the unit tests."""
import pytest

SERVER_FIXTURES = {"prom_server", "vm_server", "prom_dataset"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
