"""The shell action: run a program as an argv list, judge the attempt by its exit code.

The program runs in its own session, hence its own process group, so everything it starts can be
found and stopped together. Its processes end with the job:

* when the worker cancels the attempt (timeout, shutdown), the whole group gets SIGTERM, then
  SIGKILL after a grace period, and is reaped before the cancellation goes on;
* when the program exits but left background processes in its group, those are stopped the same
  way. Otherwise they would hold the output pipe open and the attempt could never finish; a job
  that really means to leave a daemon behind has to detach it (``setsid``).

Output (stdout and stderr interleaved) is streamed and only its tail is kept, so a program that
prints a gigabyte costs ``max_output_bytes`` of memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from oncely.domain.actions import ShellAction
from oncely.domain.limits import cap_text
from oncely.ports.actions import ActionContext, ActionResult, ActionSettings

_INHERITED_ENV = ("PATH", "HOME", "LANG", "TZ")
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_READ_CHUNK = 64 * 1024


class _Tail:
    """The last ``limit`` bytes of a stream, and how many came before them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > self.limit:
            del self.data[: len(self.data) - self.limit]

    def text(self) -> str | None:
        if self.total == 0:
            return None
        data = bytes(self.data)
        dropped = self.total - len(data)
        if dropped:
            # Same marker as cap_text, counting what was never kept, not only what is cut here.
            marker = f"[… {self.total} bytes cut …]"
            room = max(self.limit - len(marker.encode()), 0)
            data = data[len(data) - room :] if room else b""
            while data and 0x80 <= data[0] < 0xC0:  # a cut multi-byte character
                data = data[1:]
            text = f"[… {self.total - len(data)} bytes cut …]" + data.decode(errors="replace")
        else:
            text = data.decode(errors="replace")
        # Invalid bytes decode to U+FFFD (3 bytes each): cap again so the limit still holds.
        return cap_text(text, self.limit, keep="tail")


def _group_alive(pgid: int) -> bool:
    """Whether a process other than a zombie is left in the group.

    Zombies count for ``killpg(pgid, 0)``, and an init that does not reap (a bare container)
    keeps orphaned ones around forever, so on Linux the group is read from /proc instead.
    """
    proc = Path("/proc")
    if sys.platform.startswith("linux") and proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name may contain spaces and parentheses; fields resume after the last ')'.
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class ShellExecutor:
    """Executes ``ShellAction``s when the server enables them (``allow_shell``).

    ``kill_grace`` is how long a process group gets between SIGTERM and SIGKILL.
    """

    kind = "shell"

    def __init__(self, settings: ActionSettings, *, kill_grace: float = 2.0) -> None:
        self._settings = settings
        self._kill_grace = kill_grace

    def _environment(self, action: ShellAction, ctx: ActionContext) -> dict[str, str]:
        env = {name: os.environ[name] for name in _INHERITED_ENV if name in os.environ}
        env.setdefault("PATH", _DEFAULT_PATH)
        env.update(action.env)
        env.update(
            {
                "ONCELY_RUN_ID": ctx.run_id,
                "ONCELY_ATTEMPT": str(ctx.attempt),
                "ONCELY_FENCING_TOKEN": str(ctx.fencing_token),
                "ONCELY_JOB_ID": ctx.job_id,
                "ONCELY_JOB_NAME": ctx.job_name,
                "ONCELY_SCHEDULED_FOR": ctx.scheduled_for.isoformat(),
            }
        )
        if ctx.payload is not None:
            env["ONCELY_PAYLOAD"] = json.dumps(ctx.payload, default=str)
        return env

    async def execute(self, action: ShellAction, ctx: ActionContext) -> ActionResult:
        if not self._settings.allow_shell:
            return ActionResult(ok=False, error="shell actions are disabled on this server")
        if not action.argv:
            return ActionResult(ok=False, error="shell.argv is empty")
        program = action.argv[0]
        env = self._environment(action, ctx)
        # Our own pipe rather than asyncio's: Process.wait() also waits for asyncio's pipes to
        # close, which a left-over background process could prevent forever.
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        pipe = os.fdopen(read_fd, "rb", buffering=0)
        stream = asyncio.StreamReader(limit=_READ_CHUNK)
        try:
            transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(stream), pipe
            )
        except BaseException:
            pipe.close()
            os.close(write_fd)
            raise
        try:
            proc = await self._spawn(action, env, write_fd)
        except FileNotFoundError as exc:
            transport.close()
            if action.cwd is not None and exc.filename == action.cwd:
                return ActionResult(ok=False, error=f"working directory not found: {action.cwd}")
            return ActionResult(ok=False, error=f"program not found: {program}")
        except PermissionError as exc:
            transport.close()
            return ActionResult(ok=False, error=f"cannot execute {program}: {exc.strerror}")
        except (OSError, ValueError, TypeError) as exc:  # ValueError: a NUL in argv or env
            transport.close()
            return ActionResult(ok=False, error=f"cannot start {program}: {exc}")
        except BaseException:
            transport.close()
            raise

        tail = _Tail(self._settings.max_output_bytes)
        reader = asyncio.ensure_future(self._pump(stream, tail))
        feeder = (
            asyncio.ensure_future(self._feed(proc, action.stdin))
            if action.stdin is not None
            else None
        )
        stray = False
        try:
            returncode = await proc.wait()
            # Give the last writes a moment to arrive before deciding the pipe is held open.
            await asyncio.wait({reader}, timeout=0.2)
            if _group_alive(proc.pid):
                stray = True
                await self._terminate_group(proc)
            await asyncio.wait({reader}, timeout=1.0)
        except asyncio.CancelledError:
            await self._finish_despite_cancellation(self._terminate_group(proc))
            raise
        finally:
            # A process that escaped the group (setsid) may still hold the pipe: stop reading.
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            if feeder is not None:
                feeder.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feeder
            transport.close()

        output = tail.text()
        if stray:
            note = "[oncely: stopped processes the program left running in its process group]"
            limit = self._settings.max_output_bytes
            output = cap_text(f"{output or ''}\n{note}", limit, keep="tail")
        if returncode == 0:
            return ActionResult(ok=True, output=output)
        if returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = str(-returncode)
            return ActionResult(ok=False, output=output, error=f"killed by signal {name}")
        return ActionResult(ok=False, output=output, error=f"exit code {returncode}")

    async def _spawn(
        self, action: ShellAction, env: dict[str, str], output_fd: int
    ) -> asyncio.subprocess.Process:
        """Start the program; closes ``output_fd`` (the child has its own copy) once it is up."""
        spawn = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                *action.argv,
                stdin=subprocess.DEVNULL if action.stdin is None else subprocess.PIPE,
                stdout=output_fd,
                stderr=output_fd,
                cwd=action.cwd,
                env=env,
                start_new_session=True,
            )
        )
        try:
            return await asyncio.shield(spawn)
        except asyncio.CancelledError:
            # Cancelled mid-spawn, asyncio would kill the leader only; by then it may have
            # started children. Let the spawn finish and stop the whole group instead.
            await self._finish_despite_cancellation(self._stop_spawned(spawn))
            raise
        finally:
            os.close(output_fd)

    async def _stop_spawned(self, spawn: asyncio.Future[asyncio.subprocess.Process]) -> None:
        try:
            proc = await spawn
        except Exception:
            return
        await self._terminate_group(proc)

    @staticmethod
    async def _feed(proc: asyncio.subprocess.Process, data: str) -> None:
        """Write ``data`` to the program's stdin and close it. A program that exits without
        reading it all is not an error (cron behaves the same)."""
        pipe = proc.stdin
        if pipe is None:
            return
        try:
            pipe.write(data.encode())
            await pipe.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                pipe.close()

    @staticmethod
    async def _pump(stream: asyncio.StreamReader, tail: _Tail) -> None:
        while chunk := await stream.read(_READ_CHUNK):
            tail.feed(chunk)

    async def _terminate_group(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM the group, SIGKILL what is left after the grace period, reap the leader."""
        pgid = proc.pid
        _signal_group(pgid, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._kill_grace
        # Polled: no event tells when the last member of a process group is gone.
        while loop.time() < deadline and (proc.returncode is None or _group_alive(pgid)):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if proc.returncode is None or _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
        await proc.wait()
        # SIGKILL cannot be ignored, but the kernel takes a moment to deliver it to every member.
        for _ in range(40):
            if not _group_alive(pgid):
                break
            await asyncio.sleep(0.025)

    @staticmethod
    async def _finish_despite_cancellation(cleanup: Coroutine[Any, Any, None]) -> None:
        """Run ``cleanup`` to the end even if cancelled again: a half-done kill leaks processes."""
        task = asyncio.ensure_future(cleanup)
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(task)
        with contextlib.suppress(Exception):
            task.result()

    async def aclose(self) -> None:
        """Nothing pooled: every attempt's processes are gone when ``execute`` returns."""
