"""The option table (``_options.OPTIONS``) is the one definition of every option: the constructor, the
configuration record, the environment variables, the docstring, the command line and the README agree
with it.

When the README's tables differ, the failure shows the expected text: paste it over the README's table
(``python -m tests.test_options`` prints both tables).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from typing import Any

import pytest

from loguru_cloudwatch import CloudWatchSink, _env
from loguru_cloudwatch._config import SinkConfig
from loguru_cloudwatch._options import BY_NAME, OPTION_OF, OPTIONS, SINK_OPTIONS, VARIABLES, Option, Variable
from loguru_cloudwatch._variable_text import parse_extra_keys, parse_str
from tests.support import REPO_ROOT

README = REPO_ROOT / "README.md"


def _env_default(option: Option, variable: Variable) -> str:
    if variable.unset:
        return variable.unset
    value = option.default
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def options_table() -> str:
    """The README's table of constructor options."""
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for option in SINK_OPTIONS:
        default = option.shown_default if option.name == "log_group" else f"`{option.shown_default}`"
        rows.append(f"| `{option.name}` | {default} | {option.doc} |")
    return "\n".join(rows)


def variables_table() -> str:
    """The README's table of ``LOGURU_CLOUDWATCH_*`` variables, then the options that have none and why."""
    rows = ["| variable | option | default |", "|---|---|---|"]
    for variable in VARIABLES:
        option = OPTION_OF[variable.name]
        if option.handler:
            meaning = option.doc
        else:
            meaning = f"`{option.name}`" + (f" ({variable.note})" if variable.note else "")
        rows.append(f"| `{variable.name}` | {meaning} | {_env_default(option, variable)} |")
    without = [f"`{option.name}` ({option.no_variable})" for option in OPTIONS if option.variable is None]
    return "\n".join(rows) + "\n\nOptions without a variable: " + ", ".join(without) + "."


def _readme() -> str:
    return README.read_text(encoding="utf-8")


@pytest.mark.parametrize("render", [options_table, variables_table], ids=["options", "variables"])
def test_the_readme_tables_are_the_option_table(render: Any) -> None:
    expected = render()
    assert expected in _readme(), f"README.md should contain, exactly:\n\n{expected}\n"


def test_the_constructor_takes_exactly_the_table_s_options_with_its_defaults() -> None:
    parameters = list(inspect.signature(CloudWatchSink).parameters.values())
    assert parameters[-1].name == "_timings"  # the tests' pacing, not an option
    assert [parameter.name for parameter in parameters[:-1]] == [option.name for option in SINK_OPTIONS]
    for parameter, option in zip(parameters[1:-1], SINK_OPTIONS[1:], strict=True):
        assert parameter.default == option.default, option.name
    assert parameters[0].default is inspect.Parameter.empty  # log_group is required


def test_the_configuration_record_has_one_field_per_option() -> None:
    assert [field.name for field in dataclasses.fields(SinkConfig)] == [option.config_field for option in SINK_OPTIONS]


def test_every_option_has_a_variable_or_says_why_not() -> None:
    for option in OPTIONS:
        assert (option.variable is None) == bool(option.no_variable), option.name
        assert option.doc and not option.doc.endswith("."), option.name
    assert len({variable.name for variable in VARIABLES}) == len(VARIABLES)


def test_the_docstring_describes_every_option_with_its_default() -> None:
    doc = inspect.getdoc(CloudWatchSink) or ""
    flattened = " ".join(doc.split())
    for option in SINK_OPTIONS:
        assert re.search(rf"^\s+{option.name}: ", doc, re.MULTILINE), option.name
        if option.name != "log_group":
            assert f"Default: {option.shown_default}." in flattened, option.name


def test_the_defaults_are_what_a_sink_gets() -> None:
    sink = CloudWatchSink("options-defaults")
    try:
        config = sink._config
        for option in SINK_OPTIONS[1:]:
            expected = option.default
            assert getattr(config, option.config_field) == expected, option.name
    finally:
        sink.stop()


@pytest.mark.parametrize(
    "variable", [v for v in VARIABLES if v.parse not in (parse_str, parse_extra_keys)], ids=lambda v: v.suffix
)
def test_a_variable_that_cannot_be_parsed_is_named_with_what_it_accepts(variable: Variable) -> None:
    environ = {"LOGURU_CLOUDWATCH_LOG_GROUP": "g", variable.name: "{@@}"}
    with pytest.raises(ValueError) as raised:
        _env.read_env(environ)
    assert str(raised.value) == f"{variable.name}='{{@@}}' is invalid: expected {variable.accepted}"


@pytest.mark.parametrize(
    ("suffix", "text", "expected"),
    [
        ("MAX_QUEUE_BYTES", "1024", "an integer from 2,097,152 to 1,099,511,627,776"),
        ("LOG_GROUP_CLASS", "COLD", "'STANDARD' or 'INFREQUENT_ACCESS'"),
        (
            "RETENTION_DAYS",
            "2",
            "one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, "
            "2192, 2557, 2922, 3288, 3653",
        ),
        ("MAX_BATCH_SIZE", "0", "an integer from 1 to 10,000"),
    ],
)
def test_a_value_the_sink_refuses_is_named_by_its_variable(suffix: str, text: str, expected: str) -> None:
    name = "LOGURU_CLOUDWATCH_" + suffix
    config = _env.read_env({"LOGURU_CLOUDWATCH_LOG_GROUP": "g", name: text})
    assert config is not None
    with pytest.raises(ValueError) as raised:
        _env.validate(config)
    assert str(raised.value) == f"{name}='{text}' is invalid: expected {expected}"


def test_the_command_line_takes_its_defaults_from_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    from loguru_cloudwatch import __main__ as cli

    with pytest.raises(SystemExit):
        cli.main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("log_group", "log_stream", "region_name", "endpoint_url"):
        variable = BY_NAME[option].variable
        assert variable is not None and f"default: ${variable.name}" in text
    assert f'else "{BY_NAME["log_stream"].default}"' in text


def _spliced(text: str, table: str) -> str:
    """``text`` with the table that starts like ``table`` (same header row) replaced by ``table``."""
    header = table.split("\n", 1)[0]
    start = text.index(header + "\n")
    end = text.index("\n\n", start)
    if table.count("\n\n"):  # the variables table ends with its "Options without a variable" paragraph
        end = text.index("\n\n", end + 2)
    return text[:start] + table + text[end:]


if __name__ == "__main__":
    # Prints both tables; with --write, puts them into README.md in place of the old ones.
    if sys.argv[1:] == ["--write"]:
        README.write_text(_spliced(_spliced(_readme(), options_table()), variables_table()), encoding="utf-8")
    else:
        sys.stdout.write(options_table() + "\n\n" + variables_table() + "\n")
