"""Suite-wide test settings."""

import pytest

from numnet.backend import one_blas_thread


@pytest.fixture(autouse=True, scope="session")
def single_blas_thread():
    """Run the whole suite's small matrix products on one BLAS thread (see numnet.backend.one_blas_thread)."""
    with one_blas_thread():
        yield
