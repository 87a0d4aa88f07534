import pytest

# The conformance suite is a helper module, not a test file: pytest rewrites
# its asserts (to show the values compared) only when told before its import.
pytest.register_assert_rewrite("tests.backends.conformance")
