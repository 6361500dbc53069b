"""Log stream names: the template's fields, checking a template, rendering it for this process."""

from __future__ import annotations

import datetime
import os
import re
import socket
import string
import sys

from ._limits import MAX_NAME_LENGTH

_FORBIDDEN = re.compile(r"[:*]")
#: The fields a template may use, all rendered at start (and again in a forked child).
FIELDS = frozenset({"hostname", "pid", "program", "date"})


def template_problem(template: str) -> str | None:
    """What is wrong with ``template`` (as "expected ..." text for the option's error), or None."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:
        return f"a valid template ({error})"
    unknown = fields - FIELDS
    if unknown:
        allowed = ", ".join("{" + field + "}" for field in sorted(FIELDS))
        return f"only the fields {allowed}, not {sorted(unknown)}"
    try:
        rendered = render_stream_name(template)
    except (ValueError, TypeError) as error:  # e.g. a format spec that does not suit the field: {date:%Y}
        return f"a template that can be rendered ({error})"
    if not rendered:
        return "a template that renders to at least one character"
    return None


def _program_name() -> str:
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    name = os.path.basename(argv0)
    if not name or name == "-c":
        return "python"
    return name


def render_stream_name(template: str) -> str:
    """Render a stream name template for this process, now.

    ``{hostname}``, ``{pid}``, ``{program}`` (script name) and ``{date}`` (UTC, YYYY-MM-DD) are filled in;
    the characters CloudWatch refuses in stream names (``:`` and ``*``) become ``_``, and the result is
    cut to 512 characters.
    """
    name = template.format(
        hostname=socket.gethostname(),
        pid=os.getpid(),
        program=_program_name(),
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
    )
    return _FORBIDDEN.sub("_", name)[:MAX_NAME_LENGTH]
