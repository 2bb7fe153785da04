"""The processes `ecrin serve` becomes: one uvicorn server, or N of them and their supervisor.

`python -m ecrin.workers serve` runs uvicorn on the app, bound to `host:port`, or on an
inherited listening socket (`--fd`). `python -m ecrin.workers supervise HOST PORT N` binds
N sockets to `HOST:PORT` with SO_REUSEPORT and runs a server on each: the kernel spreads new
connections over the N sockets by a hash of their addresses. (uvicorn's own supervisor binds
one socket every worker accepts from: a burst of connections, such as a sync client or a
benchmark opening many at once, mostly lands on whichever worker wakes first; 32 split
31/1 to 21/11 between two workers in probes.)

The supervisor keeps the sockets: a worker that dies is started again on its own socket,
where the connections it had not accepted are still waiting. It imports neither the app
nor uvicorn, so it stays small beside its workers. Settings reach the servers in ECRIN_*
variables, which `ecrin serve` has set.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time

APP = "ecrin.cli:app_from_environment"
BACKLOG = 2048  # uvicorn's default
QUICK_EXIT_SECONDS = 10.0  # a worker that exits sooner after its start is failing to start
MAX_QUICK_EXITS = 5  # in a row: the supervisor gives up rather than restart forever
RESTART_PAUSE_SECONDS = 1.0


def serve(fd: int | None) -> None:
    """Run uvicorn on the app, as the settings in the environment say."""
    supervisor = os.getppid()
    import uvicorn

    from ecrin.settings import load_settings

    settings = load_settings()
    config = uvicorn.Config(
        APP,
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
        proxy_headers=True,
        # Whose X-Forwarded-For/-Proto to believe; None: uvicorn's default, 127.0.0.1.
        forwarded_allow_ips=settings.trusted_proxies or None,
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)
    if fd is None:
        server.run()
        return
    _exit_with(supervisor)
    server.run(sockets=[socket.socket(fileno=fd)])


def _exit_with(supervisor: int) -> None:
    """Linux: this process gets SIGTERM when its supervisor dies, even by SIGKILL, rather
    than serve on alone."""
    if sys.platform == "linux":
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != supervisor:  # it died before the call
            os.kill(os.getpid(), signal.SIGTERM)


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets listening on `host:port` together. A socket without SO_REUSEPORT is
    bound first: it fails if anything already listens there, even another Ecrin's
    SO_REUSEPORT sockets, which would otherwise share the port with these."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family):
        pass
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_server(
                (host, port), family=family, backlog=BACKLOG, reuse_port=True
            )
            sock.set_inheritable(True)
            sockets.append(sock)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Supervisor:
    def __init__(self, sockets: list[socket.socket]) -> None:
        self.sockets = sockets
        self.workers: dict[int, subprocess.Popen[bytes]] = {}  # socket index -> process
        self.started: dict[int, float] = {}
        self.stopping = False
        self.quick_exits = 0

    def start(self, index: int) -> None:
        fd = self.sockets[index].fileno()
        command = [sys.executable, "-m", "ecrin.workers", "serve", "--fd", str(fd)]
        self.workers[index] = subprocess.Popen(command, pass_fds=[fd])
        self.started[index] = time.monotonic()

    def stop(self, *_: object) -> None:
        self.stopping = True
        for process in self.workers.values():  # not yet reaped (`run` reaps), so not reused
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        for index in range(len(self.sockets)):
            self.start(index)
        failed = False
        while self.workers:
            pid, status = os.wait()  # a signal's handler runs meanwhile (PEP 475)
            found = next((i for i, p in self.workers.items() if p.pid == pid), None)
            if found is None:
                continue
            index, process = found, self.workers.pop(found)
            process.returncode = os.waitstatus_to_exitcode(status)
            if self.stopping:
                continue
            if self._failing(index):
                _say(f"a worker keeps exiting (status {process.returncode}); stopping")
                failed = True
                self.stop()
            elif not self.stopping:
                _say(f"worker {pid} exited (status {process.returncode}); starting another")
                self.start(index)
        return 1 if failed else 0

    def _failing(self, index: int) -> bool:
        if time.monotonic() - self.started[index] > QUICK_EXIT_SECONDS:
            self.quick_exits = 0
            return False
        self.quick_exits += 1
        time.sleep(RESTART_PAUSE_SECONDS)
        return self.quick_exits >= MAX_QUICK_EXITS


def _say(message: str) -> None:
    print(f"ecrin: {message}", file=sys.stderr, flush=True)


def supervise(host: str, port: int, count: int) -> int:
    try:
        sockets = listening_sockets(host, port, count)
    except OSError as exc:
        _say(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        return 1
    return Supervisor(sockets).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecrin.workers")
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("serve", help="one server (settings from ECRIN_* variables)")
    one.add_argument("--fd", type=int, help="an inherited listening socket to accept from")
    many = commands.add_parser("supervise", help="N servers on one address")
    many.add_argument("host")
    many.add_argument("port", type=int)
    many.add_argument("workers", type=int)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.fd)
        return 0
    return supervise(args.host, args.port, args.workers)


if __name__ == "__main__":
    sys.exit(main())
