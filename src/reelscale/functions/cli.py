"""`reelscale functions ...`: list functions, show and replay their dead letters.

The embedded event store belongs to the server process that owns it, so these commands
ask a running server over HTTP: they log in (`POST /v1/auth/login`) with an operator's
email and password, asking only for the scope the command needs, then call
`/v1/ops/functions`. The password comes from REELSCALE_ADMIN_PASSWORD or a hidden prompt,
never from the command line (where `ps` would show it).

Exit codes: 0 done; 1 the server refused (bad login, not allowed, unknown function);
2 the server could not be reached or the command was used wrongly.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Annotated, Any, NoReturn

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from reelscale.core.settings import Settings

app = typer.Typer(
    help="Functions on the event stream: status, dead letters, replay (via a running server).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
out = Console()
err = Console(stderr=True)
TIMEOUT_S = 30.0
PASSWORD_ENV = "REELSCALE_ADMIN_PASSWORD"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", help="The server's base URL. Default: the settings' base_url."),
]
EmailOpt = Annotated[
    str | None,
    typer.Option("--email", envvar="REELSCALE_ADMIN_EMAIL", help="An operator's (admin's) email."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
NameArg = Annotated[str, typer.Argument(help="The function's name.")]


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[red]{message}[/red]")
    raise typer.Exit(code)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])
    return response.reason_phrase


class OpsClient:
    """An operator session against one server, for the length of one command."""

    def __init__(self, url: str | None, email: str | None, scope: str) -> None:
        self.url = (url or _default_url()).rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=TIMEOUT_S)
        self._login(_email(email), _password(), scope)

    def _login(self, email: str, password: str, scope: str) -> None:
        response = self._send(
            "POST", "/v1/auth/login", json={"email": email, "password": password, "scope": scope}
        )
        if response.status_code == 401:
            _fail("login refused: wrong email or password", 1)
        if response.status_code == 400 and "scopes not granted" in _detail(response):
            _fail(f"{email} may not do this: it needs the {scope} scope (an admin)", 1)
        if response.status_code == 429:
            retry = response.headers.get("retry-after", "?")
            _fail(f"too many failed logins; try again in {retry} s", 1)
        if response.status_code != 200:
            _fail(f"login failed ({response.status_code}): {_detail(response)}", 1)
        token = response.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            _fail(f"cannot reach the server at {self.url}: {exc}", 2)
        except httpx.TimeoutException:
            _fail(f"the server at {self.url} did not answer in {TIMEOUT_S:.0f} s", 2)
        except httpx.HTTPError as exc:
            _fail(f"talking to {self.url} failed: {exc}", 2)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code == 401:
            _fail(f"the server refused the token: {_detail(response)}", 1)
        if response.status_code == 403:
            _fail(f"not allowed: {_detail(response)}", 1)
        if response.status_code >= 400:
            _fail(f"{_detail(response)} ({response.status_code})", 1)
        return response.json()

    def close(self) -> None:
        self.http.close()


def _default_url() -> str:
    try:
        return Settings().base_url
    except ValidationError as exc:
        _fail(f"invalid settings (give --url to skip them): {exc}", 2)


def _email(email: str | None) -> str:
    if email:
        return email
    if not sys.stdin.isatty():
        _fail("give --email or set REELSCALE_ADMIN_EMAIL", 2)
    return str(typer.prompt("Operator email"))


def _password() -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    if not sys.stdin.isatty():
        _fail(f"set {PASSWORD_ENV} (or run in a terminal to be asked)", 2)
    return str(typer.prompt("Password", hide_input=True))


def _run(url: str | None, email: str | None, scope: str, method: str, path: str, **kw: Any) -> Any:
    client = OpsClient(url, email, scope)
    try:
        return client.call(method, path, **kw)
    finally:
        client.close()


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def _cut(text: object, width: int) -> str:
    value = "" if text is None else str(text)
    return value if len(value) <= width else value[: width - 1] + "…"


@app.command("list")
def list_command(url: UrlOpt = None, email: EmailOpt = None, as_json: JsonOpt = False) -> None:
    """Every function with its lag, errors, throttles, starts and dead letters."""
    functions = _run(url, email, "ops:read", "GET", "/v1/ops/functions")
    if as_json:
        _print_json(functions)
        return
    table = Table(title="functions")
    for column in ("name", "stream", "state"):
        table.add_column(column, no_wrap=True)
    for column in ("lag", "age s", "calls", "errors", "throttles", "retries", "dead", "cold/warm"):
        table.add_column(column, justify="right", no_wrap=True)
    for fn in functions:
        letters = fn["dead_letters"]
        age = fn["iterator_age_s"]
        table.add_row(
            fn["name"],
            fn["stream"],
            fn["state"],
            "?" if fn["lag_records"] is None else str(fn["lag_records"]),
            "?" if age is None else f"{age:.1f}",
            str(fn["invocations"]),
            str(fn["errors"]),
            str(fn["throttles"]),
            str(fn["retries"]),
            "-" if letters is None else f"{letters} ({fn['dead_letters_unreplayed']} new)",
            f"{fn['cold_starts']}/{fn['warm_starts']}",
        )
    out.print(table)
    for fn in functions:
        if fn["last_error"]:
            out.print(f"[bold]{fn['name']}[/bold] last error: {fn['last_error']}", soft_wrap=True)


@app.command("dead-letters")
def dead_letters_command(
    name: NameArg,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    after: Annotated[
        int | None, typer.Option("--after", min=0, help="Letters after this letter sequence.")
    ] = None,
    url: UrlOpt = None,
    email: EmailOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A function's dead letters, oldest first: the original, the error, the attempts."""
    params: dict[str, int] = {"limit": limit}
    if after is not None:
        params["after"] = after
    path = f"/v1/ops/functions/{_path_name(name)}/dead-letters"
    letters = _run(url, email, "ops:read", "GET", path, params=params)
    if as_json:
        _print_json(letters)
        return
    table = Table(title=f"dead letters of {name}")
    for column in ("#", "failed at", "reason", "attempts", "from", "key", "type", "error"):
        table.add_column(column)
    for letter in letters:
        event = letter["event"] or {}
        where = f"{letter['stream']}/{letter['shard']}/{letter['sequence'] or '?'}"
        table.add_row(
            str(letter["letter_sequence"]),
            letter["failed_at"],
            letter["reason"],
            str(letter["attempts"]),
            where,
            _cut(letter["partition_key"], 24),
            _cut(event.get("type"), 30),
            _cut(letter["error"], 60),
        )
    out.print(table)


@app.command("replay")
def replay_command(
    name: NameArg,
    limit: Annotated[int | None, typer.Option("--limit", min=1, max=1_000_000)] = None,
    url: UrlOpt = None,
    email: EmailOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put the letters not replayed yet back onto the function's stream (once each)."""
    params = {"limit": limit} if limit is not None else {}
    path = f"/v1/ops/functions/{_path_name(name)}/dead-letters/replay"
    result = _run(url, email, "ops:write", "POST", path, params=params)
    if as_json:
        _print_json(result)
        return
    out.print(
        f"replayed {result['replayed']} dead letter(s) of {result['function']}"
        + (f"; skipped {result['skipped']} with nothing to put back" if result["skipped"] else "")
    )


def _path_name(name: str) -> str:
    # The server checks names too; this keeps a stray '/' or '?' from changing the URL.
    if not _NAME.match(name):
        _fail(f"{name!r} is not a function name (a-z, 0-9 and -)", 2)
    return name
