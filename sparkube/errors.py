"""One exception tree for sparkube, and the one place that maps it to exit codes.

Every error a user can cause or meet is raised as a :class:`SparkubeError` subclass
whose message is one plain sentence saying what is wrong and what to do. One quoting
style: names (cluster demo, node worker-1, job wc-1, key workers, phase infra, files)
are never quoted; a command to run, and a value the user gave that is refused, are in
single quotes ('sparkube up', workers: 'three' is not a whole number). The CLI calls
:func:`describe` once, at the top, to turn any exception into an exit code and that
sentence; nothing else in the package decides exit codes or prints errors.

Exit codes (DESIGN.md): 0 success, 1 operation failed, 2 bad usage or input (checked
before anything is created), 130 interrupted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ExitStatus(enum.IntEnum):
    SUCCESS = 0
    FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


class SparkubeError(Exception):
    """Base of every error sparkube raises on purpose."""

    exit_status: ExitStatus = ExitStatus.FAILED

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: Extra lines (a log tail, a list of leftovers) shown under the sentence.
        self.detail = detail


# --- exit 2: bad usage or input, raised before anything is created ----------------


class UsageError(SparkubeError):
    """Bad flags, config file, names or input files."""

    exit_status = ExitStatus.USAGE


class ConfigError(UsageError):
    """A sparkube.yaml / --config file, environment variable or flag is invalid.

    ``problems`` holds one line per problem (file and line, variable or option, key,
    what is wrong) when several were found at once; they are also the ``detail``."""

    def __init__(
        self, message: str, *, detail: str | None = None, problems: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, detail=detail)
        self.problems = problems or (message,)


class NoSuchCluster(UsageError):
    """The named cluster does not exist, or nothing on this machine reaches it: every
    command exits 2 for it (nothing was created), with the same one sentence."""

    @classmethod
    def not_here(cls, cluster: str, folder: object) -> NoSuchCluster:
        """For commands that need the cluster's kubeconfig in ``folder`` on this machine."""
        return cls(
            f"No cluster {cluster} is up on this machine (no kubeconfig in {folder}); "
            f"create it with 'sparkube up', or pass --cluster NAME for another one."
        )

    @classmethod
    def in_region(cls, cluster: str, region: str) -> NoSuchCluster:
        """For commands that look the cluster up in AWS and find nothing tagged with it."""
        return cls(
            f"No cluster {cluster} in {region} (nothing tagged sparkube:cluster={cluster}); "
            f"create it with 'sparkube up', or find yours with 'sparkube ls --all-regions'."
        )


class InputError(UsageError):
    """An input file or directory cannot be used."""


class EnvironmentProblem(UsageError):
    """Something missing on the user's machine (Java, a tool, credentials)."""


# --- exit 1: the operation failed --------------------------------------------------


class OperationError(SparkubeError):
    """A cloud, node, cluster or job operation failed."""


class CloudError(OperationError):
    """AWS refused or failed a request."""


class NodeError(OperationError):
    """A node could not be reached or a command on it failed."""


class ClusterError(OperationError):
    """The Kubernetes cluster is not in the expected state."""


class JobError(OperationError):
    """A Spark job failed. ``exit_code`` is the job's own exit code when it has one."""

    def __init__(self, message: str, *, exit_code: int = 1, detail: str | None = None) -> None:
        super().__init__(message, detail=detail)
        self.exit_code = exit_code


class Interrupted(SparkubeError):
    exit_status = ExitStatus.INTERRUPTED


@dataclass(frozen=True)
class Outcome:
    """What the CLI prints and returns for an exception."""

    exit_code: int
    message: str
    detail: str | None = None


def describe(exc: BaseException) -> Outcome:
    """Map any exception to an exit code and a one-sentence message."""
    if isinstance(exc, KeyboardInterrupt):
        return Outcome(
            int(ExitStatus.INTERRUPTED),
            "Interrupted; nothing more was done.",
        )
    if isinstance(exc, JobError):
        return Outcome(exc.exit_code, exc.message, exc.detail)
    if isinstance(exc, SparkubeError):
        return Outcome(int(exc.exit_status), exc.message, exc.detail)
    if isinstance(exc, PermissionError):
        return Outcome(
            int(ExitStatus.FAILED),
            f"Permission denied: {exc.filename or exc}; check the file's owner and mode.",
        )
    name = type(exc).__name__
    return Outcome(
        int(ExitStatus.FAILED),
        f"Unexpected error ({name}: {exc}); run again with SPARKUBE_DEBUG=1 for a "
        "traceback and report it.",
    )
