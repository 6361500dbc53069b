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
several lines. With ``diagnose`` each frame is also preceded by an empty line. Exception groups prefix
every line with ``  | ``. Only records with an exception come here.
"""

from __future__ import annotations

import re

#: Where a rendered traceback starts (a chained exception's first one; groups say "Exception Group …").
_START_RE = re.compile(r"(?:Exception Group )?Traceback \(most recent call last\)")

#: A frame's location line; ``lead`` is an exception group's prefix (``"  | "``), empty otherwise.
_LOCATION_RE = re.compile(r'(?P<lead>(?:  )+\| +)?[ >] File "')

#: The markers Python puts under a ``SyntaxError``'s source line: no value, kept.
_CARETS_RE = re.compile(r"(?:  )*(?:\| +)?\s*[\^~]+\s*")


def traceback_start(text: str) -> int:
    """Where the traceback begins in a formatted message, or -1 when it has none."""
    match = _START_RE.search(text)
    return -1 if match is None else match.start()


def _is_blank(line: str) -> bool:
    return not line.strip(" |")


def without_values(text: str) -> str:
    """``text`` (a rendered traceback, or what follows one) without loguru's variable values.

    Every frame keeps its location line, its source line and the carets under it (a ``SyntaxError``'s);
    the rest indented under them is dropped. The empty lines ``diagnose`` adds around frames are dropped
    too, and a run of empty lines becomes one, so that the result does not depend on ``diagnose``.
    """
    kept: list[str] = []
    frame_indent: str | None = None  # inside a frame: the indentation of its source and value lines
    source_seen = False
    for line in text.split("\n"):
        location = _LOCATION_RE.match(line)
        if frame_indent is not None and location is None:
            if _is_blank(line):
                continue  # diagnose's empty line after a frame (or inside a value an exception group cut)
            if line.startswith(frame_indent):
                if not source_seen or _CARETS_RE.fullmatch(line):
                    kept.append(line)
                    source_seen = True
                continue  # a value loguru wrote under the source line
            frame_indent = None
        if location is not None:
            while kept and _is_blank(kept[-1]):
                kept.pop()  # diagnose's empty line before a frame
            frame_indent = (location.group("lead") or "") + "    "
            source_seen = False
        elif _is_blank(line) and kept and _is_blank(kept[-1]):
            continue
        kept.append(line)
    return "\n".join(kept)


def shipped_traceback(formatted: str, keep_values: bool) -> str:
    """The traceback part of a formatted message as the sink ships it ("" when the message has none)."""
    start = traceback_start(formatted)
    if start < 0:
        return ""
    text = formatted[start:].rstrip("\n")
    return text if keep_values else without_values(text)


def shipped_text(formatted: str, keep_values: bool) -> str:
    """A whole formatted message (``serialize=False``) as shipped: its traceback without the values."""
    start = -1 if keep_values else traceback_start(formatted)
    if start < 0:
        return formatted
    return formatted[:start] + without_values(formatted[start:])
