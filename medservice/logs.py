"""structlog, configured once: JSON in production, readable console in development.

Per-call context (method, request id, subject) is bound with contextvars by the API layer.
Never bind or log a person identifier or a name.

Every record, structlog's and the standard library's (grpc, alembic, sqlalchemy,
apscheduler), goes through one `LineSink`: one lock, and each record written as one line
in one write to the file descriptor. Two writers with a lock each (structlog's PrintLogger
and logging's StreamHandler) used to glue two JSON records into one line now and then,
which breaks every log shipper.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer


class LineSink:
    """One writer for a file: each message written whole under one lock, straight to the
    file descriptor so no buffer splits it (a line under PIPE_BUF bytes is atomic on a pipe
    even against other processes). With `one_line` (JSON), newlines inside a message are
    escaped, so a record is exactly one line."""

    def __init__(self, file: TextIO, *, one_line: bool) -> None:
        self._file = file
        self._one_line = one_line
        self._lock = threading.Lock()

    def write_line(self, message: str) -> None:
        if self._one_line:
            message = message.replace("\r", "\\r").replace("\n", "\\n")
        data = (message + "\n").encode("utf-8", "backslashreplace")
        with self._lock:
            try:
                fd = self._file.fileno()
            except (AttributeError, OSError, ValueError):  # not a real file (pytest's capture)
                self._file.write(data.decode())
                self._file.flush()
                return
            self._file.flush()  # whatever else was printed to it goes first
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]


class SinkLogger:
    """structlog's logger for a LineSink: the structlog counterpart of PrintLogger."""

    def __init__(self, sink: LineSink) -> None:
        self._sink = sink

    def msg(self, message: str) -> None:
        self._sink.write_line(message)

    log = debug = info = warn = warning = msg
    err = error = critical = exception = fatal = failure = msg


class SinkHandler(logging.Handler):
    """The standard library's handler for the same LineSink."""

    def __init__(self, sink: LineSink) -> None:
        super().__init__()
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sink.write_line(self.format(record))
        except Exception:
            self.handleError(record)


def configure_logging(fmt: str = "console", level: str = "info") -> None:
    sink = LineSink(sys.stderr, one_line=fmt == "json")
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    if fmt == "json":
        # show_locals=False: local variables could hold person data.
        shared.append(structlog.processors.ExceptionRenderer(
            ExceptionDictTransformer(show_locals=False)))
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.plain_traceback, colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)),
        logger_factory=lambda *_args: SinkLogger(sink),
        cache_logger_on_first_use=False,
    )
    # Route stdlib logs (grpc, alembic, sqlalchemy, apscheduler) through the same output.
    handler = SinkHandler(sink)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=shared))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
