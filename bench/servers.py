"""The peers Ecrin is compared with: Apache httpd + mod_dav, WsgiDAV (cheroot), nginx + dav-ext.

Each runs from a private configuration in its own folder, on 127.0.0.1 and a free port, in the
foreground, with Basic authentication for one user and the WebDAV tree at /dav/. Settings are
each server's packaged defaults except where noted (unlimited keep-alive requests and body
size), so the comparison is with a server as an administrator would first set it up.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

from bench.processes import Credentials, Launch, command_output, give_to_worker_user

APACHE_MODULES = Path("/usr/lib/apache2/modules")
NGINX_DAV_EXT = Path("/usr/lib/nginx/modules/ngx_http_dav_ext_module.so")
WORKER_USER = "www-data"
DAV_PATH = "/dav/"


def sha_htpasswd(credentials: Credentials) -> str:
    """An htpasswd line in the {SHA} scheme both Apache and nginx read (cheap to verify)."""
    digest = base64.b64encode(hashlib.sha1(credentials.password.encode()).digest()).decode()
    return f"{credentials.user}:{{SHA}}{digest}\n"


def _executable(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


def _prepare_tree(directory: Path, credentials: Credentials) -> None:
    """www/dav (the shared tree), run/ and tmp/ for the server, the password file."""
    for folder in ("www/dav", "run", "tmp"):
        (directory / folder).mkdir(parents=True, exist_ok=True)
    (directory / "htpasswd").write_text(sha_htpasswd(credentials))
    (directory / "htpasswd").chmod(0o644)
    for folder in ("www", "run", "tmp"):
        give_to_worker_user(directory / folder)


class ApacheServer:
    """Apache httpd 2.4, MPM event (Debian's default), mod_dav + mod_dav_fs."""

    name = "apache"

    def missing(self) -> str | None:
        if _executable("apache2") is None:
            return "apache2 is not installed (run bench/setup.sh)"
        if not (APACHE_MODULES / "mod_dav_fs.so").exists():
            return "mod_dav_fs is not installed"
        return None

    def describe(self) -> str:
        version = command_output([_executable("apache2") or "apache2", "-v"]).splitlines()
        return (version[0].replace("Server version: ", "") if version else "Apache") + (
            " — MPM event (2 processes x 25 threads at start), mod_dav_fs"
        )

    def prepare(self, directory: Path, credentials: Credentials) -> None:
        _prepare_tree(directory, credentials)

    def launch(self, directory: Path, port: int, credentials: Credentials) -> Launch:
        modules = ["mpm_event", "authz_core", "authn_core", "authn_file", "auth_basic"]
        modules += ["authz_user", "dav", "dav_fs"]
        load = "\n".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so" for m in modules)
        user = f"User {WORKER_USER}\nGroup {WORKER_USER}\n" if os.geteuid() == 0 else ""
        config = f"""{load}
ServerRoot "{directory}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
{user}PidFile "{directory}/run/apache2.pid"
DefaultRuntimeDir "{directory}/run"
ErrorLog "{directory}/apache-error.log"
LogLevel warn
DocumentRoot "{directory}/www"
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 120
LimitRequestBody 0
StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0
DavLockDB "{directory}/run/davlock"
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "{directory}/www/dav">
    Dav On
    Options None
    AuthType Basic
    AuthName "bench"
    AuthBasicProvider file
    AuthUserFile "{directory}/htpasswd"
    Require valid-user
</Directory>
"""
        path = directory / "apache2.conf"
        path.write_text(config)
        command = [_executable("apache2") or "apache2", "-f", str(path), "-DFOREGROUND"]
        return Launch(command, DAV_PATH)

    def release(self, directory: Path) -> None:
        return None  # everything it made is in its folder


class NginxServer:
    """nginx with its dav module and dav-ext (PROPFIND): the raw-speed reference."""

    name = "nginx"

    def missing(self) -> str | None:
        if _executable("nginx") is None:
            return "nginx is not installed (run bench/setup.sh)"
        if not NGINX_DAV_EXT.exists():
            return "libnginx-mod-http-dav-ext is not installed"
        return None

    def describe(self) -> str:
        version = command_output([_executable("nginx") or "nginx", "-v"])
        return version.replace("nginx version: ", "") + " — worker_processes auto, dav + dav-ext"

    def prepare(self, directory: Path, credentials: Credentials) -> None:
        _prepare_tree(directory, credentials)

    def launch(self, directory: Path, port: int, credentials: Credentials) -> Launch:
        user = f"user {WORKER_USER} {WORKER_USER};\n" if os.geteuid() == 0 else ""
        temp = directory / "tmp"
        config = f"""load_module {NGINX_DAV_EXT};
{user}worker_processes auto;
pid {directory}/run/nginx.pid;
error_log {directory}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 120s;
    keepalive_requests 1000000;
    client_max_body_size 0;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {directory}/www;
        location {DAV_PATH} {{
            auth_basic "bench";
            auth_basic_user_file {directory}/htpasswd;
            dav_methods PUT DELETE MKCOL COPY MOVE;
            dav_ext_methods PROPFIND OPTIONS;
            dav_access user:rw group:rw all:r;
            create_full_put_path on;
        }}
    }}
}}
"""
        path = directory / "nginx.conf"
        path.write_text(config)
        nginx = _executable("nginx") or "nginx"
        command = [nginx, "-p", str(directory), "-e", str(directory / "nginx-error.log")]
        command += ["-c", str(path), "-g", "daemon off;"]
        return Launch(command, DAV_PATH)

    def release(self, directory: Path) -> None:
        return None  # everything it made is in its folder


class WsgiDavServer:
    """WsgiDAV on cheroot (WsgiDAV's default: 50 threads), file system provider, Basic auth."""

    name = "wsgidav"

    def missing(self) -> str | None:
        for module in ("wsgidav", "cheroot"):
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed (pip install -e '.[bench]')"
        return None

    def describe(self) -> str:
        versions = [f"{p} {importlib.metadata.version(p)}" for p in ("wsgidav", "cheroot")]
        return " + ".join(versions) + " — 50 threads, in-memory locks and dead properties"

    def prepare(self, directory: Path, credentials: Credentials) -> None:
        (directory / "www/dav").mkdir(parents=True, exist_ok=True)

    def launch(self, directory: Path, port: int, credentials: Credentials) -> Launch:
        config = {
            "host": "127.0.0.1",
            "port": port,
            "provider_mapping": {DAV_PATH.rstrip("/"): str(directory / "www/dav")},
            "simple_dc": {
                "user_mapping": {"*": {credentials.user: {"password": credentials.password}}}
            },
            "http_authenticator": {
                "accept_basic": True,
                "accept_digest": False,
                "default_to_digest": False,
            },
            "dir_browser": {"enable": False},
            "property_manager": True,
            "lock_storage": True,
            "server": "cheroot",
            "verbose": 1,
            "logging": {"enable": False},
        }
        path = directory / "wsgidav.json"
        path.write_text(json.dumps(config, indent=2))
        command = [sys.executable, "-m", "wsgidav.server.server_cli", "-c", str(path), "-q", "-q"]
        return Launch(command, DAV_PATH)

    def release(self, directory: Path) -> None:
        return None  # everything it made is in its folder


PEERS = (ApacheServer(), WsgiDavServer(), NginxServer())
