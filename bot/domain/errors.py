"""The errors the escalation domain raises; listeners turn them into messages for the caller."""


class WarroomError(Exception):
    """Base of every error whose message is safe to show to the person who caused it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(WarroomError):
    """What someone typed or submitted cannot be understood; the message says what and why."""


class NotAWarRoom(WarroomError):
    """A command that needs a war room was used in a channel that is not one."""


class Unavailable(WarroomError):
    """A dependency (Redis, Slack) cannot be reached right now; nothing was changed."""


class NotAllowed(WarroomError):
    """The person may not do this here (e.g. only the IC, a VP or the declarer may resolve)."""
