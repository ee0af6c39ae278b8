"""Settings shared by the property-based suites (tests/test_properties_*.py)."""
from __future__ import annotations

from hypothesis import HealthCheck, Phase, event, settings
from hypothesis.errors import InvalidArgument


def props(n: int):
    """Hypothesis settings: n examples, no deadline (a load takes ~0.1 s), reproducible."""
    return settings(max_examples=n, deadline=None, derandomize=True, database=None, print_blob=True,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example])


def note(text: str) -> None:
    """hypothesis.event (shown with --hypothesis-show-statistics), also callable outside a test run."""
    try:
        event(text)
    except InvalidArgument:
        pass
