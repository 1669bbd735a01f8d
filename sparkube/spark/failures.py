"""What a Spark application printed, sorted for a person: its own lines, Spark's log
records, and the exception it died of.

Used for embedded runs (the child's stderr, :mod:`sparkube.spark.local`) and for cluster
jobs (the driver container's log, where stdout and stderr arrive merged): Spark's
log4j records, JSON records and Java stacks are hidden (the job's log keeps them), the
application's own lines are shown, and a failure is condensed to the application's
traceback and one line naming the exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

#: Lines the JVM or Spark print whatever the log level; hidden unless verbose.
_NOISE_PREFIXES = (
    "WARNING: Using incubator modules",
    "Using Spark's default log4j profile",
    "Setting default log level to",
    "To adjust logging level use",
)


def is_noise(line: str) -> bool:
    return line.startswith(_NOISE_PREFIXES)


# --------------------------------------------------------------------------- failures

#: The header of a Python traceback.
TRACEBACK = "Traceback (most recent call last):"
#: What Python prints between chained tracebacks.
_CHAINED = (
    "During handling of the above exception",
    "The above exception was the direct cause",
)
#: A log4j record: the quiet configuration's pattern (``12:03:08 ERROR Executor: ...``)
#: or Spark's default one (``26/12/06 12:03:08 WARN ...``).
_JVM_RECORD = re.compile(
    r"^(\d{2}/\d{2}/\d{2} )?\d{2}:\d{2}:\d{2}(\.\d+)? (FATAL|ERROR|WARN|INFO|DEBUG|TRACE) "
)
#: Lines of a Java stack: frames, causes, elisions.
_JAVA_STACK = re.compile(r"^(\s+at |\s*\.\.\. \d+ (more|common frames)|Caused by: |Suppressed: )")
#: A line starting with a fully qualified Java class: ``org.apache.spark.SparkException: ...``.
_JAVA_CLASS = re.compile(r"^[a-z][\w$]*(\.[\w$]+)+(:|$)")
#: Files of pyspark and Py4J in a traceback (not the application's own).
_LIBRARY_PATHS = ("/pyspark/", "/py4j/", "pyspark.zip", "/py4j-", "<frozen ")


def _is_json_record(line: str) -> bool:
    if not (line.startswith("{") and line.endswith("}")):
        return False
    try:
        value = json.loads(line)
    except ValueError:
        return False
    return isinstance(value, dict) and bool({"ts", "level", "msg", "timestamp"} & set(value))


def is_jvm_record(line: str) -> bool:
    """A line the JVM logged (a log4j record, a structured JSON record, an uncaught
    Java exception), as opposed to one the application printed."""
    return bool(
        _JVM_RECORD.match(line) or line.startswith('Exception in thread "') or _is_json_record(line)
    )


class StderrSorter:
    """Sorts a local job's stderr into what a person reads now and what only its log
    keeps.

    Every line is fed in order. Lines the application prints are shown as they come;
    JVM records with their stacks and continuation lines are hidden (counted in
    :attr:`hidden`). A Python traceback is held back while it is printed: if it ends
    the job, the CLI shows it condensed (:func:`parse_failure`) under the error; if the
    job goes on printing, it is released as it was, without its Java stack lines.
    """

    def __init__(self) -> None:
        self.hidden = 0
        self._in_jvm = False
        self._block: list[str] = []
        self._block_state = ""  # "frames" | "message" | "java" while a traceback is held
        self._exception = ""  # the held traceback's exception line
        self._java = False  # a Java exception is part of it (Py4J)
        #: The last traceback seen (held or released), for :func:`parse_failure`.
        self.last_traceback: list[str] = []

    def feed(self, line: str) -> list[str]:
        """The lines to show now (``line`` itself, earlier held lines, or none)."""
        shown: list[str] = []
        if self._block:
            if self._continues_block(line):
                return []
            shown = self.release()
        if line == TRACEBACK:
            self._block, self._block_state, self._in_jvm = [line], "frames", False
            self._exception, self._java = "", False
            self.last_traceback = self._block
            return shown
        if is_noise(line):
            return shown
        if is_jvm_record(line) or (self._in_jvm and self._continues_jvm(line)):
            self._in_jvm = True
            self.hidden += not is_noise(line)
            return shown
        self._in_jvm = False
        return [*shown, line]

    def release(self) -> list[str]:
        """The held traceback (if any) as printed, less its Java stack lines."""
        block, self._block = self._block, []
        return [line for line in block if not _JAVA_STACK.match(line)]

    @property
    def holding(self) -> bool:
        return bool(self._block)

    @staticmethod
    def _continues_jvm(line: str) -> bool:
        return (
            not line.strip()
            or line[0].isspace()
            or bool(_JAVA_STACK.match(line) or _JAVA_CLASS.match(line))
            or line.endswith(TRACEBACK)
            or bool(re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", line))
        )

    def _continues_block(self, line: str) -> bool:
        if is_jvm_record(line):  # the JVM logging while the traceback is printed
            self._in_jvm = True
            self.hidden += 1
            return True
        if self._block_state == "frames":
            if line.startswith(" ") or not line:
                self._block.append(line)
                return True
            self._block_state = "message"  # the exception line
            self._exception = line
            self._block.append(line)
            return True
        if line.startswith(": ") or _JAVA_CLASS.match(line) or _JAVA_STACK.match(line):
            # A Java exception in the message (Py4J): its text runs on, with lines of
            # any shape ("Driver stacktrace:"), to the end of the block.
            self._java = True
            self._block_state = "frames" if line.endswith(TRACEBACK) else "message"
        elif line == TRACEBACK or line.endswith(TRACEBACK):
            # A Python worker's traceback inside a PythonException (or a Java message)
            # belongs to this one; after any other exception it is a new traceback.
            if not self._java and "PythonException" not in self._exception:
                return False
            self._block_state = "frames"
        elif not (self._java or not line.strip() or line[0].isspace() or line.startswith(_CHAINED)):
            return False
        self._block.append(line)
        return True


@dataclass(frozen=True)
class AppFailure:
    """The exception that ended an application, read from its stderr."""

    exception: str  # "ZeroDivisionError", "AnalysisException", "java.io.FileNotFoundException"
    message: str
    #: The traceback to show: the application's own frames, then the exception.
    traceback: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """``ZeroDivisionError: division by zero``: one line."""
        return f"{self.exception}: {self.message}" if self.message else self.exception


#: The longest exception message shown in the one line (the log has all of it).
MESSAGE_LIMIT = 400


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def _split_exception(line: str) -> tuple[str, str]:
    name, sep, message = line.partition(": ")
    if not sep:
        name, message = line.rstrip(":"), ""
    if name.startswith(("pyspark.", "py4j.")):
        name = name.rsplit(".", 1)[-1]
    return name.strip(), message.strip()


def _java_failure(lines: Sequence[str]) -> tuple[str, str] | None:
    """The first Java exception in ``lines``: ``: java.io.X: msg`` (Py4J) or
    ``Exception in thread "main" java.lang.X: msg`` (an uncaught one in a JAR)."""
    for line in lines:
        if line.startswith(": "):
            name, _, message = line[2:].partition(": ")
            return name.strip(), message.strip()
        m = re.match(r'^Exception in thread "[^"]*" (\S+?)(?:: (.*))?$', line)
        if m:
            return m.group(1), (m.group(2) or "").strip()
    return None


def parse_failure(lines: Sequence[str]) -> AppFailure | None:
    """The exception a failed application died of, from its stderr (or the traceback
    :class:`StderrSorter` kept): its name and message, and a traceback with only the
    application's own frames (pyspark's and Py4J's dropped; a Python worker's frames
    after the driver's), ending with the exception; None when there is no traceback.
    For a Py4J error the Java exception's class and message are the one line."""
    # The outermost traceback that runs to the end (one the application printed and went
    # on is not why it failed): a nested one (a Python worker's, inside a
    # PythonException) belongs to it; a chained one replaces it.
    sorter = StderrSorter()
    for line in lines:
        sorter.feed(line)
    if not sorter.holding:
        java = _java_failure(lines)
        return AppFailure(java[0], _one_line(java[1])) if java else None
    block = sorter.last_traceback
    frames: list[list[str]] = []
    exception: list[str] = []
    state = "frames"
    for line in block[1:]:
        if state == "frames":
            if line.startswith('  File "'):
                frames.append([line])
            elif line.startswith(" ") and frames:
                frames[-1].append(line)
            elif line.strip():
                exception, state = [line], "message"
            continue
        if line.startswith(_CHAINED):
            frames, exception, state = [], [], "chained"
        elif line == TRACEBACK or line.endswith(TRACEBACK):
            exception, state = [], "frames"
        elif state == "message":
            exception.append(line)
    if not exception:
        return None
    name, message = _split_exception(exception[0])
    java = _java_failure(exception) if name == "Py4JJavaError" else None
    if java is not None:
        name, message = java
    elif not message:
        message = next((x.strip() for x in exception[1:] if x.strip()), "")
    own = [f for f in frames if not any(part in f[0] for part in _LIBRARY_PATHS)]
    # A worker's frame shows twice (in the driver's traceback, then the worker's own
    # with its exact position): the last one stays.
    last = {frame[0]: i for i, frame in enumerate(own)}
    kept = [frame for i, frame in enumerate(own) if last[frame[0]] == i] or frames[-1:]
    message_lines: list[str] = []
    for line in exception:
        if _JAVA_STACK.match(line) or len(message_lines) >= 10:
            break
        message_lines.append(line)
    while message_lines and not message_lines[-1].strip():
        message_lines.pop()
    shown = (TRACEBACK, *(line for frame in kept for line in frame), *message_lines)
    return AppFailure(name, _one_line(message), shown)
