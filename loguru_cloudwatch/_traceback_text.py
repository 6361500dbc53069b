"""The traceback text a record ships: loguru's rendering, without the local variable values.

loguru renders a record's traceback into the formatted text, and with ``diagnose=True`` (its default) that
rendering shows the value of every variable on the failing lines (``│ └ 'hunter2'``). Python's own
``traceback.format_exception`` shows none, but it needs the traceback object, which ``enqueue=True``
drops when loguru pickles the record. So the sink always starts from loguru's rendering, present in both
cases, and removes the values unless ``traceback_values=True``. The text is then the same whatever
``enqueue`` and ``diagnose`` are.

The rendering has a fixed shape (``loguru._better_exceptions``): a frame is a location line
(``  File "…", line N, in f``, ``>`` instead of the first space at the catch point with ``backtrace``),
then, indented by four spaces, the source line and, with ``diagnose``, the values under it, possibly over
several lines. With ``diagnose`` each frame is also preceded by an empty line, and a bare ``assert``'s
line shows its source. Exception groups prefix every line with ``  | `` (loguru splits those lines on
every line boundary ``str.splitlines`` knows, so a value's ``\r`` starts a line there). Only records with
an exception come here.
"""

from __future__ import annotations

import re

#: Where a rendered traceback starts (a chained exception's first one; groups say "Exception Group …").
_START_RE = re.compile(r"(?:Exception Group )?Traceback \(most recent call last\)")
_GROUP_START = "Exception Group Traceback (most recent call last)"

#: The sentence between two chained exceptions (a cause never raised has no frames, so no "Traceback").
_CHAIN_RE = re.compile(
    r"^[ |]*(?:\x1b\[[0-9;]*m)*(?:The above exception was the direct cause of the following exception:"
    r"|During handling of the above exception, another exception occurred:)",
    re.MULTILINE,
)

#: A frame's location line (colours removed); ``lead`` is an exception group's prefix, ``"  | "``.
_LOCATION_RE = re.compile(r'(?P<lead>(?:  )+\| )?[ >] File ".*", line \d+(?:, in .*)?')
_UNGROUPED_LOCATION_RE = re.compile(r'[ >] File ".*", line \d+(?:, in .*)?')

#: What may end a frame of an exception group, after the group's prefix; anything else there is the rest
#: of a value loguru split (a ``\r`` in a repr).
_GROUP_FRAME_END_RE = re.compile(
    r"[A-Za-z_][\w.]*(?::.*)?|  \[Previous line repeated .*|During handling of the above exception, .*"
    r"|The above exception was .*|(?:Exception Group )?Traceback \(most recent call last\):"
)

#: The markers Python puts under a ``SyntaxError``'s source line: no value, kept.
_CARETS_RE = re.compile(r"[ |]*[\^~]+\s*")

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def traceback_start(text: str, message: str = "") -> int:
    """Where the exception's rendering begins in a formatted message, or -1 when it has none.

    Usually at the first "Traceback"; a chained cause that was never raised comes before it, right after
    the line that ends ``message`` (the record's message).
    """
    match = _START_RE.search(text)
    if match is None:
        return -1
    start = match.start()
    at = text.rfind(message, 0, start) if message else -1
    if at >= 0:
        line_end = text.find("\n", at + len(message))
        if 0 <= line_end < start and _CHAIN_RE.search(text, line_end, start):
            start = line_end + 1
    return start


def _is_blank(line: str) -> bool:
    return not line.strip(" |")


def _plain(line: str) -> str:
    return _ANSI_RE.sub("", line) if "\x1b" in line else line


def without_values(text: str) -> str:
    """``text`` (a rendered traceback, or what follows one) without loguru's variable values.

    Every frame keeps its location line, its source line and the carets under it (a ``SyntaxError``'s);
    the rest indented under them is dropped. The empty lines ``diagnose`` adds around frames are dropped
    too, a run of empty lines becomes one, and a bare ``assert``'s line loses the source ``diagnose`` adds
    to it, so that the result does not depend on ``diagnose``.
    """
    location_re = _LOCATION_RE if _GROUP_START in text else _UNGROUPED_LOCATION_RE
    kept: list[str] = []
    lead: str | None = None  # inside a frame: its group prefix ("" outside groups)
    source = ""  # the last frame's source line, without indentation
    source_seen = False
    for line in text.split("\n"):
        plain = _plain(line)
        location = location_re.fullmatch(plain)
        if lead is not None and location is None:
            if _is_blank(line):
                continue  # diagnose's empty line after a frame (or inside a value an exception group cut)
            if plain.startswith(lead + "    "):
                if not source_seen:
                    kept.append(line)
                    source, source_seen = plain[len(lead) :].strip(), True
                elif _CARETS_RE.fullmatch(plain):
                    kept.append(line)
                continue  # a value loguru wrote under the source line
            if lead and plain.startswith(lead) and not _GROUP_FRAME_END_RE.fullmatch(plain[len(lead) :]):
                continue  # the rest of a value, split off by a line boundary in it
            lead = None
            if source and plain.endswith(": " + source) and re.fullmatch(r"[ |]*[\w.]+", plain[: -len(source) - 2]):
                line = line[: line.index(": ")]  # a bare assert: diagnose appended the source
        if location is not None:
            while kept and _is_blank(kept[-1]):
                kept.pop()  # diagnose's empty line before a frame
            lead = (location.groupdict().get("lead") or "") if location_re is _LOCATION_RE else ""
            source, source_seen = "", False
        elif _is_blank(line) and kept and _is_blank(kept[-1]):
            continue
        kept.append(line)
    return "\n".join(kept)


def shipped_traceback(formatted: str, keep_values: bool, message: str = "") -> str:
    """The exception part of a formatted message as the sink ships it ("" when the message has none);
    ``message`` is the record's message (see ``traceback_start``)."""
    start = traceback_start(formatted, message)
    if start < 0:
        return ""
    text = formatted[start:].rstrip("\n")
    return text if keep_values else without_values(text)


def shipped_text(formatted: str, keep_values: bool, message: str = "") -> str:
    """A whole formatted message (``serialize=False``) as shipped: its traceback without the values."""
    start = -1 if keep_values else traceback_start(formatted, message)
    if start < 0:
        return formatted
    return formatted[:start] + without_values(formatted[start:])
