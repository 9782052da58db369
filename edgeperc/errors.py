"""One error hierarchy; the CLI maps each class to one line and its own exit code."""


class EdgepercError(Exception):
    """Base of every error a user can cause or fix."""

    exit_code = 1


class ConfigError(EdgepercError):
    """A config (device target, CLI option, model config) is invalid."""

    exit_code = 3


class ModelFileError(EdgepercError):
    """A model file (checkpoint, ONNX, engine) is missing, truncated, corrupt or does not fit."""

    exit_code = 4


class InvalidInputError(EdgepercError):
    """An input tensor or image has the wrong shape, dtype, or non-finite values."""

    exit_code = 5


class ParityError(EdgepercError):
    """An exported or compiled model does not reproduce its reference within tolerance."""

    exit_code = 6


class BackendUnavailableError(EdgepercError):
    """A backend (TensorRT, CUDA, ModelOpt) is not installed or has no device here."""

    exit_code = 7


class EngineCacheError(ModelFileError):
    """A cached engine does not match its key or checksum: it is refused, never loaded."""

    exit_code = 8


class SafetyViolation(EdgepercError):
    """A command would leave the safe envelope of the robot or device."""

    exit_code = 9


class BundleError(EdgepercError):
    """A deployment bundle is refused (signature, hashes, files, target, runtime, archive, size)
    or a release could not be staged or activated."""

    exit_code = 10
