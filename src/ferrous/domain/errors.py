"""The one error tree of Ferrous CI.

Every layer raises these (infrastructure wraps third-party exceptions with ``from exc``); only
the API edge maps them to HTTP status codes, so the mapping lives in one place. The docstring
of each class is its default message, which keeps call sites short and messages consistent.
"""

from __future__ import annotations


class FerrousError(Exception):
    """Something went wrong in Ferrous CI."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)


class NotFound(FerrousError):
    """The requested object does not exist."""


class Conflict(FerrousError):
    """The request conflicts with the current state."""


class InvalidTransition(Conflict):
    """That status change is not allowed."""


class PermissionDenied(FerrousError):
    """You are not allowed to do that."""


class InvalidCredentials(PermissionDenied):
    """The token is unknown, expired, revoked or used up."""


class InvalidValue(FerrousError):
    """A value is outside what is allowed."""


class RateLimited(FerrousError):
    """Too many requests; try again later."""

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds until a try may succeed


class ConfigInvalid(FerrousError):
    """The pipeline configuration is invalid."""


class StorageError(FerrousError):
    """A storage backend failed."""


class Contention(StorageError):
    """Too many concurrent changes to the same thing; try again in a moment."""


class BrokerUnavailable(StorageError):
    """The message broker did not take the message."""


class NotReady(StorageError):
    """A backend answers but cannot serve this server yet (its schema is not migrated)."""


class RepositoryUnavailable(StorageError):
    """The git repository cannot be read (unreachable, or the credentials were refused)."""


class CorruptObject(StorageError):
    """A stored object's bytes no longer match the checksum recorded when it was stored."""


class ChecksumMismatch(InvalidValue):
    """The data received does not match the sha256 its sender announced."""


class UnsafeArchive(InvalidValue):
    """An archive entry would land outside its destination (``..``, an absolute path, or a
    link pointing out of it)."""


class CorruptArchive(InvalidValue):
    """The archive cannot be read (not zstd-compressed tar, or cut short)."""


class TooLarge(InvalidValue):
    """The data is larger than this server accepts."""


class ExecutionError(FerrousError):
    """A job could not be executed."""
