"""The command line explains itself: every option of every command says what it is for,
and what it is when not given."""

from __future__ import annotations

import argparse

import pytest

from gateway.cli import main, parser
from gateway.tools.loopback import free_ports


def _commands() -> dict[str, argparse.ArgumentParser]:
    (commands,) = [
        action
        for action in parser()._actions  # argparse keeps its subcommands nowhere public
        if isinstance(action, argparse._SubParsersAction)
    ]
    return dict(commands.choices)


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_option_has_help_and_shows_its_default(name: str) -> None:
    command = _commands()[name]
    text = command.format_help()

    for action in command._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"gateway {name} {action.dest} has no help"
        if action.default is not None and action.default is not False:
            said = f"(default:{action.default})".replace(" ", "")
            assert said in "".join(text.split()), action.dest


def test_the_log_format_follows_the_terminal_unless_asked() -> None:
    serve = _commands()["serve"]

    assert serve.parse_args([]).log_format == "auto"
    assert serve.parse_args(["--log-format", "json"]).log_format == "json"


def test_webhooks_fails_when_a_provider_could_not_be_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No gateway (and so no sandbox) at the address given: each provider says why, and the
    command fails, so a script that subscribes does not go on as if it had."""
    (port,) = free_ports(1)

    with pytest.raises(SystemExit) as ended:
        main(["webhooks", "status", "--url", f"http://127.0.0.1:{port}"])

    printed = capsys.readouterr().out
    assert ended.value.code == 1
    assert "pms: UPSTREAM_UNAVAILABLE" in printed and "primmo: UPSTREAM_UNAVAILABLE" in printed
