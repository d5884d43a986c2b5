from tests.notifications.conftest import receiver

__all__ = ["receiver"]
