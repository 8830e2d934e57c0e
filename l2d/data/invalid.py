"""What a bad record does: stop with its location (default) or get skipped and counted."""

from __future__ import annotations


class InvalidRecordError(ValueError):
    """A record that cannot become an example; the message starts with where it is (file:line)."""


class InvalidRecords:
    """The policy for bad records, shared by every source a data module reads.

    With `skip=False` the first bad record raises InvalidRecordError; with `skip=True` it is
    dropped and counted in `count`.
    """

    def __init__(self, skip: bool = False) -> None:
        self.skip = skip
        self.count = 0

    def report(self, where: str, reason: str) -> None:
        if not self.skip:
            raise InvalidRecordError(f"{where}: {reason} (pass skip_invalid=True to skip and count such records)")
        self.count += 1
