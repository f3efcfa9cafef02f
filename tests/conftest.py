"""Fixtures shared by the test modules."""
import sys

import pytest


@pytest.fixture
def shallow_stack():
    """A recursion limit far below the depths tested: any recursive walk fails."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    yield
    sys.setrecursionlimit(old)
