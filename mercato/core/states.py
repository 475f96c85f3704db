"""State machines: the one error for a move a state does not allow, and the check."""

from __future__ import annotations

from litestar.exceptions import ClientException


class InvalidTransition(ClientException):
    """409: the object is not in a state that allows this."""

    status_code = 409


def check_transition(current: str, target: str, table: dict[str, frozenset[str]], what: str) -> None:
    """409 unless ``table`` allows ``current`` → ``target``."""
    if target not in table.get(current, frozenset()):
        raise InvalidTransition(
            f"This {what} is {current.replace('_', ' ')}; it cannot become {target.replace('_', ' ')}."
        )
