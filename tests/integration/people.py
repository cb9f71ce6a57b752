"""People for the integration tests: the same simulated humans the demo uses."""

from bot.people import FakeBridge, MatrixRequestFailed, Person, new_person

__all__ = ["FakeBridge", "MatrixRequestFailed", "Person", "new_person"]
