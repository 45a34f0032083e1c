"""Shell actions: real processes, real process groups."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from oncely.adapters.actions import ShellExecutor
from oncely.domain.actions import ShellAction
from oncely.ports.actions import ActionContext, ActionResult, ActionSettings

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")

ENABLED = ActionSettings(allow_shell=True)
CTX = ActionContext(
    run_id="run_01HXYZ",
    job_id="job_42",
    job_name="nightly",
    owner="alice",
    attempt=2,
    fencing_token=77,
    scheduled_for=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    payload={"day": "2026-01-02"},
)


def run(
    action: ShellAction, settings: ActionSettings = ENABLED, ctx: ActionContext = CTX
) -> ActionResult:
    return asyncio.run(ShellExecutor(settings).execute(action, ctx))


def sh(script: str, **kw: object) -> ShellAction:
    return ShellAction(argv=("sh", "-c", script), **kw)  # type: ignore[arg-type]


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a group, read from /proc: zombies may never be reaped."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def test_disabled_by_default(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result = run(ShellAction(argv=("touch", str(marker))), ActionSettings())
    assert result == ActionResult(ok=False, error="shell actions are disabled on this server")
    assert not marker.exists()


def test_exit_codes() -> None:
    assert run(sh("echo hello")) == ActionResult(ok=True, output="hello\n")
    assert run(sh("true")) == ActionResult(ok=True, output=None)
    assert run(sh("echo oops; exit 3")) == ActionResult(
        ok=False, output="oops\n", error="exit code 3"
    )
    assert run(sh("kill -9 $$")).error == "killed by signal SIGKILL"


def test_stdout_and_stderr_are_merged_in_order() -> None:
    result = run(sh("echo one; echo two >&2; echo three"))
    assert result.output == "one\ntwo\nthree\n"


def test_argv_is_not_a_shell_string(tmp_path: Path) -> None:
    result = run(ShellAction(argv=("echo", "$HOME; rm -rf /", "*")))
    assert result.output == "$HOME; rm -rf / *\n"


def test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ONCELY_TEST_SECRET", "must not leak")
    monkeypatch.setenv("TZ", "Europe/Paris")
    action = ShellAction(
        argv=(sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))"),
        env={"GREETING": "hi", "ONCELY_RUN_ID": "forged"},
        cwd=str(tmp_path),
    )
    result = run(action)
    assert result.ok, result
    assert result.output is not None
    env = json.loads(result.output)
    assert env["ONCELY_RUN_ID"] == "run_01HXYZ"  # the action cannot forge it
    assert env["ONCELY_ATTEMPT"] == "2"
    assert env["ONCELY_FENCING_TOKEN"] == "77"
    assert env["ONCELY_JOB_ID"] == "job_42"
    assert env["ONCELY_JOB_NAME"] == "nightly"
    assert env["ONCELY_SCHEDULED_FOR"] == "2026-01-02T03:04:05+00:00"
    assert json.loads(env["ONCELY_PAYLOAD"]) == {"day": "2026-01-02"}
    assert env["GREETING"] == "hi"
    assert env["TZ"] == "Europe/Paris"
    assert env["PATH"] == os.environ["PATH"]
    assert "ONCELY_TEST_SECRET" not in env


def test_no_payload_variable_without_payload() -> None:
    ctx = ActionContext(**{**CTX.__dict__, "payload": None})
    result = run(sh('echo "${ONCELY_PAYLOAD-unset}"'), ctx=ctx)
    assert result.output == "unset\n"


def test_cwd_and_stdin(tmp_path: Path) -> None:
    assert run(ShellAction(argv=("pwd",), cwd=str(tmp_path))).output == f"{tmp_path}\n"
    # stdin is /dev/null: a program that reads it sees end of file at once.
    assert run(sh("cat; echo done")).output == "done\n"


def test_output_keeps_the_tail_within_the_limit() -> None:
    settings = ActionSettings(allow_shell=True, max_output_bytes=1000)
    script = (
        "import sys\n"
        "line = 'x' * 99 + '\\n'\n"
        "for _ in range(200_000): sys.stdout.write(line)\n"  # 20 MB
        "print('THE END')\n"
    )
    started = time.monotonic()
    result = run(ShellAction(argv=(sys.executable, "-c", script)), settings)
    assert time.monotonic() - started < 20
    assert result.ok
    assert result.output is not None
    assert len(result.output.encode()) <= 1000
    assert result.output.endswith("x\nTHE END\n")
    assert result.output.startswith("[… ")
    marker, kept = result.output.split("…]", 1)
    assert int(marker.split()[1]) + len(kept.encode()) == 20_000_008  # the count is exact


def test_multibyte_output_is_cut_on_a_character_boundary() -> None:
    settings = ActionSettings(allow_shell=True, max_output_bytes=100)
    result = run(ShellAction(argv=(sys.executable, "-c", "print('é' * 1000)")), settings)
    assert result.output is not None
    assert "\ufffd" not in result.output
    assert result.output.endswith("éé\n")


def test_missing_program_and_directory(tmp_path: Path) -> None:
    assert run(ShellAction(argv=("/nonexistent/prog",))).error == (
        "program not found: /nonexistent/prog"
    )
    assert run(ShellAction(argv=("no-such-program-oncely",))).error == (
        "program not found: no-such-program-oncely"
    )
    missing = str(tmp_path / "gone")
    assert run(ShellAction(argv=("true",), cwd=missing)).error == (
        f"working directory not found: {missing}"
    )


def test_unstartable_argv_is_a_result() -> None:
    assert run(ShellAction(argv=())).error == "shell.argv is empty"
    result = run(ShellAction(argv=("echo", "a\x00b")))
    assert result.error is not None and result.error.startswith("cannot start echo")


def test_program_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    result = run(ShellAction(argv=(str(script),)))
    assert not result.ok
    assert result.error is not None and result.error.startswith(f"cannot execute {script}")


@needs_proc
def test_cancellation_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    action = sh(f"echo $$ > {pidfile}; sleep 100 & sleep 100 & sleep 100")

    async def main() -> int:
        task = asyncio.ensure_future(ShellExecutor(ENABLED).execute(action, CTX))
        pgid = await _wait_for_group(pidfile, members=4)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pgid

    started = time.monotonic()
    pgid = asyncio.run(main())
    assert time.monotonic() - started < 5
    assert group_members(pgid) == []


@needs_proc
def test_processes_ignoring_sigterm_get_sigkill(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    # SIG_IGN survives exec, so the sleeps ignore SIGTERM too.
    action = sh(f"trap '' TERM; echo $$ > {pidfile}; sleep 100 & sleep 100")

    async def main() -> tuple[int, float]:
        task = asyncio.ensure_future(ShellExecutor(ENABLED, kill_grace=0.5).execute(action, CTX))
        pgid = await _wait_for_group(pidfile, members=3)
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pgid, time.monotonic() - cancelled_at

    pgid, took = asyncio.run(main())
    assert 0.4 < took < 3
    assert group_members(pgid) == []


@needs_proc
def test_worker_timeout_via_wait_for_cleans_up(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    action = sh(f"echo $$ > {pidfile}; sleep 100")

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ShellExecutor(ENABLED).execute(action, CTX), timeout=0.5)

    asyncio.run(main())
    assert group_members(int(pidfile.read_text())) == []


@needs_proc
def test_background_leftovers_are_stopped_when_the_program_exits(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    result = run(sh(f"echo $$ > {pidfile}; sleep 100 & echo started"))
    assert time.monotonic() - started < 5
    assert result.ok
    assert result.output is not None and result.output.startswith("started\n")
    assert "stopped processes the program left running" in result.output
    assert group_members(int(pidfile.read_text())) == []


def test_a_detached_process_does_not_hang_the_attempt() -> None:
    # setsid leaves the group on purpose; it keeps the output pipe, which must not block us.
    started = time.monotonic()
    result = run(sh("setsid sleep 3 & echo ok"))
    assert time.monotonic() - started < 2.5
    assert result.ok
    assert result.output is not None and result.output.startswith("ok\n")


def _started_group(pidfile: Path, members: int) -> int | None:
    text = pidfile.read_text().strip() if pidfile.exists() else ""
    if text and len(group_members(int(text))) >= members:
        return int(text)
    return None


async def _wait_for_group(pidfile: Path, members: int) -> int:
    for _ in range(200):
        pgid = _started_group(pidfile, members)
        if pgid is not None:
            return pgid
        await asyncio.sleep(0.02)
    raise AssertionError("the process group never started")


def test_stdin_is_written_then_closed() -> None:
    # As cron feeds a crontab line's text after %: the program reads it, then end of file.
    action = ShellAction(argv=("sh", "-c", "cat; echo end"), stdin="first\nsecond\n")
    result = run(action)
    assert result.ok
    assert result.output == "first\nsecond\nend\n"


def test_a_program_that_ignores_its_stdin_still_succeeds() -> None:
    # More than a pipe holds, never read: the attempt ends with the program, not with the write.
    big = "x" * (64 * 1024 - 1)
    assert run(ShellAction(argv=("true",), stdin=big)).ok
    assert run(ShellAction(argv=("sh", "-c", "head -c 3"), stdin=big)).output == "xxx"


def test_stdin_travels_with_the_stored_action() -> None:
    from oncely.domain.actions import action_from_dict, action_to_dict
    from oncely.domain.errors import InvalidInput

    action = ShellAction(argv=("sh", "-c", "cat"), stdin="hello\n")
    assert action_from_dict(action_to_dict(action)) == action
    assert "stdin" not in action_to_dict(ShellAction(argv=("true",)))
    with pytest.raises(InvalidInput) as info:
        action_from_dict({"kind": "shell", "argv": ["cat"], "stdin": "x" * (64 * 1024 + 1)})
    assert info.value.field == "shell.stdin"
