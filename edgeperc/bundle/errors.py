"""Named refusals of `edgeperc bundle`: every one is a BundleError (exit code 10) whose class
says what failed and whose message says which file, key, target or version."""

from __future__ import annotations

from edgeperc.errors import BundleError


class ArchiveError(BundleError):
    """Truncated or unreadable archive, unsafe member (path traversal, link, device), duplicate."""


class SignatureError(BundleError):
    """Missing or bad Ed25519 signature over the bundle manifest."""


class WrongKeyError(SignatureError):
    """The bundle was signed by another key than the one given (fingerprints differ)."""


class IntegrityError(BundleError):
    """A file's size or sha256 differs from the signed manifest, or a file is missing or extra."""


class TargetMismatchError(BundleError):
    """The bundle was made for another device target."""


class RuntimeMismatchError(BundleError):
    """The bundle needs another edgeperc version or kernel ABI than the one installed."""


class StorageBudgetError(BundleError):
    """The bundle's files add up to more than the target's storage_budget_mib."""


class StageError(BundleError):
    """The rootfs cannot take the release (a version reused with other content, a bad layout)."""


class ActivationError(BundleError):
    """First-boot activation failed; the release was rolled back (the message says to what)."""
