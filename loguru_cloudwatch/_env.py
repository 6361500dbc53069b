"""Configuration from the environment: the ``LOGURU_CLOUDWATCH_*`` variables and ``configure_from_env()``.

``import loguru_cloudwatch`` calls :func:`configure_on_import`: when ``LOGURU_CLOUDWATCH_LOG_GROUP`` is
set (and not empty) it adds one ``CloudWatchSink`` to loguru's global ``logger``; when it is not, it does
nothing at all.

Idempotency: the sink added from the environment, its handler id and the environment it was built from
are kept in this module's globals, which survive ``importlib.reload(loguru_cloudwatch)`` (that re-executes
only the package's ``__init__``) and even a reload of this module (a reload re-executes the code in the
same module dict, and the state is picked up from there). :func:`configure_from_env` then:

- returns the same handler id when that sink is still installed and the variables are unchanged;
- replaces it (the new sink is added first, then the old handler is removed, which delivers what it
  holds) when the variables changed, so there is never a second sink;
- adds a sink again when the user removed it meanwhile (``logger.remove(...)`` stops it): calling
  ``configure_from_env()`` (or reloading the package) means "make sure the environment's sink is there";
- leaves an existing sink alone and returns None when ``LOGURU_CLOUDWATCH_LOG_GROUP`` is now unset.

A forked child inherits the installed sink (re-initialised for the child by the sink itself), so calling
again there returns the inherited handler id; a spawned child imports the package afresh and gets its own
sink, once.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from ._config import SinkConfig, refusal_of
from ._options import OPTION_OF, PREFIX, VARIABLES, build_config, refusals
from ._report import write_stderr
from ._variable_text import Unparseable

GROUP_VARIABLE = PREFIX + "LOG_GROUP"

#: The variable of each option that has one.
_BY_OPTION = {OPTION_OF[variable.name].name: variable for variable in VARIABLES}


def _describe(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _invalid(label: str, value: str, expected: str) -> ValueError:
    shown = f"{label} {_describe(value)}" if label.startswith("--") else f"{label}={_describe(value)}"
    return ValueError(f"{shown} is invalid: expected {expected}")


@dataclass(frozen=True)
class EnvConfig:
    """The configuration read from the environment (validated as far as parsing goes)."""

    log_group: str
    sink_options: dict[str, Any]  # CloudWatchSink keyword arguments other than log_group
    handler_options: dict[str, Any]  # logger.add keyword arguments (level, format)
    raw: tuple[tuple[str, str], ...]  # the variables that were set, as text: what "unchanged" compares
    labels: dict[str, str] = field(default_factory=dict)  # variable name -> how to name it in errors
    unknown: tuple[str, ...] = ()  # LOGURU_CLOUDWATCH_* names that are not variables of this package

    def invalid(self, option: str, expected: str) -> ValueError:
        """The ValueError for a value of ``option`` refused by later validation (e.g. by CloudWatchSink).

        A variable is never None (unset is the default), so a check's "None or ..." says only the rest.
        """
        variable = _BY_OPTION[option]
        raw = dict(self.raw)[variable.name]
        expected = expected.removeprefix("None or ").removeprefix("None, ")
        return _invalid(self.labels.get(variable.name, variable.name), raw, expected)

    def reword(self, error: Exception) -> ValueError:
        """A CloudWatchSink construction error, reworded to name the variable it came from."""
        refusal = refusal_of(error)
        if refusal is not None:
            variable = _BY_OPTION.get(refusal.option)
            if variable is not None and variable.name in dict(self.raw):
                return self.invalid(refusal.option, refusal.expected)
        return ValueError(f"the {PREFIX}* configuration is invalid: {error}")


def read_env(environ: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None) -> EnvConfig | None:
    """Read and parse the variables; None when ``LOGURU_CLOUDWATCH_LOG_GROUP`` is unset or empty.

    An empty (or blank) variable counts as unset. Raises ValueError naming every variable whose value
    cannot be parsed (with its value and what is accepted), and then those the sink would refuse.
    ``labels`` renames variables in error messages (the command line uses it for its options).
    """
    environ = os.environ if environ is None else environ
    labels = dict(labels or {})
    if not environ.get(GROUP_VARIABLE, "").strip():
        return None
    sink_options: dict[str, Any] = {}
    handler_options: dict[str, Any] = {}
    raw: list[tuple[str, str]] = []
    unparseable: list[ValueError] = []
    log_group = ""
    for variable in VARIABLES:
        option = OPTION_OF[variable.name]
        text = environ.get(variable.name)
        if text is None or not text.strip():
            continue
        raw.append((variable.name, text))
        try:
            value = variable.parse(text)
        except Unparseable:
            unparseable.append(_invalid(labels.get(variable.name, variable.name), text, variable.accepted))
            continue
        if variable.name == GROUP_VARIABLE:
            log_group = value
        elif option.handler:
            handler_options[option.name] = value
        else:
            sink_options[option.name] = value
    unknown = tuple(sorted(name for name in environ if name.startswith(PREFIX) and name not in OPTION_OF))
    config = EnvConfig(log_group, sink_options, handler_options, tuple(raw), labels, unknown)
    if unparseable:  # say every bad variable at once: those that parsed but the sink would refuse too
        raise _joined(unparseable + [config.reword(error) for error in refusals(sink_options)])
    return config


def _joined(errors: list[ValueError]) -> ValueError:
    return errors[0] if len(errors) == 1 else ValueError("; ".join(str(error) for error in errors))


def validate(config: EnvConfig) -> SinkConfig:
    """CloudWatchSink's own validation of ``config``, without making a sink; raises ValueError naming
    every variable whose value is refused."""
    try:
        return build_config(dict(config.sink_options, log_group=config.log_group))
    except (TypeError, ValueError) as error:
        raise _every_refusal(config, error) from None


def _every_refusal(config: EnvConfig, first: Exception) -> ValueError:
    """One error naming every variable whose value the sink refuses; ``first`` is the one the sink's
    validation raised (it stops at the first)."""
    errors = refusals(dict(config.sink_options, log_group=config.log_group)) or [first]
    return _joined([config.reword(error) for error in errors])


# --------------------------------------------------------------------------- the installed sink


class _State:
    """The sink this module added, and what it was built from. One per process (see the module doc)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.sink: Any = None
        self.handler_id: int | None = None
        self.raw: tuple[tuple[str, str], ...] | None = None

    def installed(self) -> bool:
        # loguru stops a sink when its handler is removed (logger.remove), so a live sink is an installed one.
        from ._sink import is_stopped

        return self.sink is not None and not is_stopped(self.sink)

    def reset_lock_in_child(self) -> None:
        self.lock = threading.RLock()  # another thread may have held it at fork time


# Kept across a reload of this module: reload re-executes this code in the same globals.
_STATE: _State = globals().get("_STATE") or _State()
if "_STATE_FORK_HOOK" not in globals() and hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _STATE.reset_lock_in_child())
    _STATE_FORK_HOOK = True


def configure_from_env(environ: Mapping[str, str] | None = None) -> int | None:
    """Add a ``CloudWatchSink`` to loguru's global ``logger``, configured from ``LOGURU_CLOUDWATCH_*``.

    Returns the loguru handler id, or None when ``LOGURU_CLOUDWATCH_LOG_GROUP`` is unset or empty.
    Calling it again never adds a second sink: with the same variables it returns the same handler id;
    with changed variables the new sink replaces the old one; after ``logger.remove()`` removed it, a new
    one is added. Raises ``ValueError`` naming every bad variable, its value and what is accepted when a
    value is bad (nothing is changed then).

    ``environ`` defaults to ``os.environ``.
    """
    config = read_env(environ)
    if config is None:
        return None
    state = _STATE
    with state.lock:
        if state.installed() and state.raw == config.raw:
            return state.handler_id
        for name in config.unknown:
            close = difflib.get_close_matches(name, list(OPTION_OF), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            write_stderr(f"{name} is not a variable of this package and was ignored{hint}")
        handler_options = dict(config.handler_options)
        if "level" in handler_options:
            try:  # a custom level may have been removed since it was parsed... or never: check again
                if isinstance(handler_options["level"], str):
                    logger.level(handler_options["level"])
            except ValueError:
                raise config.invalid("level", _BY_OPTION["level"].accepted) from None
        from ._sink import CloudWatchSink

        try:
            sink = CloudWatchSink(config.log_group, **config.sink_options)
        except (TypeError, ValueError) as error:
            raise _every_refusal(config, error) from None
        try:
            handler_id = logger.add(sink, **handler_options)
        except (TypeError, ValueError) as error:
            sink.stop()
            if "format" in handler_options:
                raise config.invalid("format", f"{_BY_OPTION['format'].accepted} ({error})") from None
            raise ValueError(f"the {PREFIX}* configuration is invalid: {error}") from None
        old_id = state.handler_id
        state.sink, state.handler_id, state.raw = sink, handler_id, config.raw
    if old_id is not None:
        with contextlib.suppress(ValueError):  # ValueError: already removed by the user
            logger.remove(old_id)  # delivers what the replaced sink holds
    return handler_id


def launched_as_own_cli() -> bool:
    """Whether this import is ``python -m loguru_cloudwatch ...`` importing its own package.

    The command line must not add the environment's sink to itself (the demo would ship its records to
    the configured group). While ``-m`` locates the module, ``sys.argv[0]`` is ``"-m"``; which module is
    being run is read from ``sys.orig_argv``.
    """
    if sys.argv[:1] != ["-m"]:
        return False
    arguments = sys.orig_argv
    for index, argument in enumerate(arguments[1:], start=1):
        match = re.fullmatch(r"-[A-Za-z]*m(.*)", argument)
        if match and not argument.startswith("--"):
            module = match.group(1) or (arguments[index + 1] if index + 1 < len(arguments) else "")
            return module in ("loguru_cloudwatch", "loguru_cloudwatch.__main__")
    return False


def discard_for_cli() -> None:
    """Remove a sink the environment added to the command line's own process (see launched_as_own_cli)."""
    with _STATE.lock:
        handler_id, _STATE.sink, _STATE.handler_id, _STATE.raw = _STATE.handler_id, None, None, None
    if handler_id is not None:
        with contextlib.suppress(ValueError):
            logger.remove(handler_id)


def configure_on_import() -> None:
    """What ``import loguru_cloudwatch`` does: configure when the group variable is set, never raise."""
    if not os.environ.get(GROUP_VARIABLE, "").strip():
        return  # no side effect at all
    if launched_as_own_cli():
        return
    try:
        configure_from_env()
    except Exception as error:
        kept = "the sink configured earlier is kept" if _STATE.installed() else "no CloudWatch sink was added"
        text = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
        write_stderr(f"{text}; {kept}".replace("\n", " "))
