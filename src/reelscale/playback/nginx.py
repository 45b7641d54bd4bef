"""nginx in front of the platform: media from disk with the signature checked in nginx.

`render_nginx_config` fills deploy/nginx/reelscale.conf.template (a server block for
nginx's http context) and `write_nginx_bundle` writes it beside media_auth.js, ready for
/etc/nginx/conf.d. `write_runnable_config` wraps the same server block into a complete
nginx.conf that runs unprivileged from one directory (tests, local trials).

Every value put into the config is checked first: a quote, brace, `$` or `;` in a path
would otherwise let a setting rewrite nginx's configuration.
"""

from __future__ import annotations

import grp
import ipaddress
import os
import pwd
import re
import shutil
from pathlib import Path

TEMPLATE = "reelscale.conf.template"
NJS_MODULE_FILE = "media_auth.js"
DEBIAN_NJS_MODULE = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")

# nginx's compiled-in defaults point under /var/lib/nginx, which an unprivileged run
# cannot write.
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+@,=-]*(?: [A-Za-z0-9._/+@,=-]+)*$")
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def nginx_files_dir() -> Path:
    """deploy/nginx of the source tree, where the template and the njs module live."""
    directory = Path(__file__).resolve().parents[3] / "deploy" / "nginx"
    if not (directory / TEMPLATE).is_file():
        raise FileNotFoundError(
            f"nginx template not found in {directory}: run from a reelscale source checkout"
        )
    return directory


def render_nginx_config(
    *,
    listen_port: int,
    media_root: Path,
    upstream: str,
    media_key: bytes,
    njs_dir: Path,
    listen_host: str | None = None,
) -> str:
    """The server block (plus its upstream) for nginx's http context.

    `media_root` is the local blob store's root (media is read from
    `{media_root}/assets/{asset}/{file}`), `upstream` the platform's `host:port` or
    `unix:/path`, `media_key` playback.signing.media_key(secret), and `njs_dir` the
    directory nginx will load media_auth.js from.
    """
    if len(media_key) != 32:
        raise ValueError("media_key must be the 32-byte key from playback.signing.media_key")
    values = {
        "listen": _listen(listen_host, listen_port),
        "media_root": _config_path(media_root, "media_root"),
        "upstream": _upstream(upstream),
        "media_key_hex": media_key.hex(),
        "njs_dir": _config_path(njs_dir, "njs_dir"),
    }
    template = (nginx_files_dir() / TEMPLATE).read_text()
    names = set(_PLACEHOLDER.findall(template))
    if names != set(values):
        raise RuntimeError(f"template placeholders {sorted(names)} != values {sorted(values)}")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def write_nginx_bundle(
    out_dir: Path,
    *,
    listen_port: int,
    media_root: Path,
    upstream: str,
    media_key: bytes,
    njs_dir: Path | None = None,
    listen_host: str | None = None,
) -> Path:
    """Write reelscale.conf and media_auth.js into out_dir; returns the config's path.

    `njs_dir` is where media_auth.js will be on the nginx host (default: out_dir).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(nginx_files_dir() / NJS_MODULE_FILE, out_dir / NJS_MODULE_FILE)
    config = render_nginx_config(
        listen_port=listen_port,
        media_root=media_root,
        upstream=upstream,
        media_key=media_key,
        njs_dir=njs_dir or out_dir.absolute(),
        listen_host=listen_host,
    )
    return _write_secret(out_dir / "reelscale.conf", config)


def write_runnable_config(
    prefix: Path,
    *,
    listen_port: int,
    media_root: Path,
    upstream: str,
    media_key: bytes,
    listen_host: str = "127.0.0.1",
    njs_module: Path = DEBIAN_NJS_MODULE,
) -> Path:
    """A complete nginx.conf in `prefix` (pid, logs, temp paths, njs, the server block).

    Run it with `nginx -p PREFIX -c PREFIX/nginx.conf -e PREFIX/error.log`; it stays in the
    foreground (daemon off) so the caller owns the process.
    """
    prefix = prefix.absolute()
    for name in _TEMP_PATHS:
        (prefix / "temp" / name).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(nginx_files_dir() / NJS_MODULE_FILE, prefix / NJS_MODULE_FILE)
    server = render_nginx_config(
        listen_port=listen_port,
        media_root=media_root,
        upstream=upstream,
        media_key=media_key,
        njs_dir=prefix,
        listen_host=listen_host,
    )
    root = _config_path(prefix, "prefix")
    lines = [
        f'load_module "{_config_path(njs_module, "njs_module")}";',
        "daemon off;",
        "worker_processes 1;",
        f'pid "{root}/nginx.pid";',
        f'error_log "{root}/error.log" notice;',
    ]
    if os.geteuid() == 0:
        # As root, workers would drop to "nobody" and could not read media in a private
        # (0700) directory such as a test's temp dir: keep the invoking user instead.
        user = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        lines.append(f"user {user} {group};")
    lines += [
        "events {",
        "    worker_connections 256;",
        "}",
        "http {",
        f'    access_log "{root}/access.log";',
        *(f'    {name}_temp_path "{root}/temp/{name}";' for name in _TEMP_PATHS),
        "",
        server,
        "}",
        "",
    ]
    return _write_secret(prefix / "nginx.conf", "\n".join(lines))


def _write_secret(path: Path, text: str) -> Path:
    # The config holds the media key: create it 0600 rather than chmod after the fact.
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temp, path)
    return path


def _config_path(path: Path, what: str) -> str:
    text = str(Path(path).absolute())
    if not _SAFE_PATH.match(text) or "/../" in text + "/":
        raise ValueError(
            f"{what} {text!r} cannot go into an nginx config: use an absolute path of "
            "letters, digits, single spaces and ._/+@,=-"
        )
    return text.rstrip("/") or "/"


def _listen(host: str | None, port: int) -> str:
    if not 1 <= port <= 65535:
        raise ValueError(f"listen port {port} is not in 1-65535")
    if host is None:
        return str(port)
    return f"{_host(host)}:{port}"


def _upstream(upstream: str) -> str:
    if upstream.startswith("unix:"):
        return "unix:" + _config_path(Path(upstream[5:]), "upstream socket")
    host, sep, port = upstream.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"upstream {upstream!r} must be host:port or unix:/path")
    return f"{_host(host)}:{port}"


def _host(host: str) -> str:
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        if not _HOST.match(host):
            raise ValueError(f"{host!r} is not an IP address or host name") from None
        return host
    return f"[{address}]" if address.version == 6 else str(address)
