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

SIGHUP replaces the workers one by one, to run new code or settings without a dropped
connection: a new worker starts on the old one's socket and says when it is ready (a byte on
a pipe); only then is the old one told to stop (SIGTERM: it stops accepting, finishes its
requests, exits) while the socket, still held here and by the new worker, keeps its queue.
A new worker that fails to start ends the reload, and the running workers go on.

Signals are taken one at a time (`sigwaitinfo`), never by handlers that could interrupt
the supervisor halfway through starting or reaping a worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import select
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
READY_SECONDS = 120.0  # for a worker started by a reload to say it is ready
ACCEPTED_GRACE_SECONDS = 0.5  # for connections accepted just before a worker stops
SIGNALS = {signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGINT}


def serve(fd: int | None, ready_fd: int | None = None) -> None:
    """Run uvicorn on the app, as the settings in the environment say; once it accepts
    connections, write a byte to `ready_fd`, if given."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # blocked in the supervisor
    supervisor = os.getppid()
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if fd is None:  # no supervisor to reload it: SIGHUP would end it
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, _cannot_reload)
            if self.started and ready_fd is not None:
                os.write(ready_fd, b".")
                os.close(ready_fd)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # uvicorn closes at once every connection without a request under way, even one
            # accepted a moment ago whose request is on its way (its client then reads a
            # reset). Stop accepting first, and give those requests time to arrive.
            for server in self.servers:
                server.close()
            await asyncio.sleep(ACCEPTED_GRACE_SECONDS)
            await super().shutdown(sockets)

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
    server = Server(config)
    if fd is None:
        server.run()
        return
    _exit_with(supervisor)
    server.run(sockets=[socket.socket(fileno=fd)])


def _cannot_reload() -> None:
    import logging  # here: the supervisor, which imports this module too, stays small

    logging.getLogger("ecrin.workers").warning(
        "SIGHUP: a single server cannot reload; it goes on with its settings. Restart it to "
        "apply new ones, or serve with --workers 2 or more to reload without downtime"
    )


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
        self.others: dict[int, subprocess.Popen[bytes]] = {}  # pid -> starting or retiring
        self.started: dict[int, float] = {}
        self.stopping = False
        self.quick_exits = 0

    def start(self, index: int, ready_fd: int | None = None) -> subprocess.Popen[bytes]:
        fd = self.sockets[index].fileno()
        command = [sys.executable, "-m", "ecrin.workers", "serve", "--fd", str(fd)]
        if ready_fd is not None:
            command += ["--ready-fd", str(ready_fd)]
        passed = [fd] if ready_fd is None else [fd, ready_fd]
        process = subprocess.Popen(command, pass_fds=passed)
        self.started[index] = time.monotonic()
        return process

    def stop(self) -> None:
        self.stopping = True
        for process in [*self.workers.values(), *self.others.values()]:
            with contextlib.suppress(ProcessLookupError):  # not reaped yet, so not reused
                os.kill(process.pid, signal.SIGTERM)

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        for index in range(len(self.sockets)):
            self.workers[index] = self.start(index)
        failed = False
        while self.workers or self.others:
            number = signal.sigwaitinfo(SIGNALS).si_signo
            if number in (signal.SIGTERM, signal.SIGINT):
                self.stop()
            elif number == signal.SIGHUP and not self.stopping:
                self.reload()
            elif number == signal.SIGCHLD:
                failed = self._reap() or failed
        return 1 if failed else 0

    def reload(self) -> None:
        _say("reloading: replacing the workers one by one")
        for index, old in list(self.workers.items()):
            new = self._start_ready(index)
            if new is None:
                return
            self.workers[index] = new
            self.others[old.pid] = old
            os.kill(old.pid, signal.SIGTERM)  # it finishes its requests, then exits
        _say("reloaded")

    def _start_ready(self, index: int) -> subprocess.Popen[bytes] | None:
        """A new worker on socket `index`, once it says it is ready; None if it did not."""
        readable, writable = os.pipe()
        try:
            process = self.start(index, writable)
        finally:
            os.close(writable)
        self.others[process.pid] = process  # SIGTERM meanwhile stops it too
        deadline = time.monotonic() + READY_SECONDS
        try:
            while time.monotonic() < deadline and not self._stop_pending():
                if select.select([readable], [], [], 0.2)[0]:
                    if os.read(readable, 1):  # a byte: ready; nothing: it exited
                        del self.others[process.pid]
                        return process
                    break
        finally:
            os.close(readable)
        if not self._stop_pending():
            _say("reload stopped: a new worker did not start; the running workers go on")
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        return None

    def _stop_pending(self) -> bool:
        return bool(signal.sigpending() & {signal.SIGTERM, signal.SIGINT})

    def _reap(self) -> bool:
        """Reap every worker that exited, and start another in its place; True if workers
        keep failing to start (the supervisor then stops)."""
        failed = False
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return failed
            if pid == 0:
                return failed
            code = os.waitstatus_to_exitcode(status)
            if self.others.pop(pid, None) is not None:
                continue  # retired by a reload, or a new worker that did not start
            index = next((i for i, p in self.workers.items() if p.pid == pid), None)
            if index is None:
                continue
            del self.workers[index]
            if self.stopping:
                continue
            if self._failing(index):
                _say(f"a worker keeps exiting (status {code}); stopping")
                failed = True
                self.stop()
            else:
                _say(f"worker {pid} exited (status {code}); starting another")
                self.workers[index] = self.start(index)

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
    one.add_argument("--ready-fd", type=int, help="where to write a byte once serving")
    many = commands.add_parser("supervise", help="N servers on one address")
    many.add_argument("host")
    many.add_argument("port", type=int)
    many.add_argument("workers", type=int)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.fd, args.ready_fd)
        return 0
    return supervise(args.host, args.port, args.workers)


if __name__ == "__main__":
    sys.exit(main())
