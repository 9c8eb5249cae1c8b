"""Suite-wide test settings."""

import pytest

from oracles import single_threaded_blas


@pytest.fixture(autouse=True, scope="session")
def one_blas_thread():
    """Run the whole suite's small matrix products on one BLAS thread (see oracles.single_threaded_blas)."""
    with single_threaded_blas():
        yield
