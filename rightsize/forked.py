"""A piece of work done in a forked child process beside the parent's own: the second core of a 2-core runner.

``with beside(fn, what) as job:`` forks. The child runs ``fn()`` on the copy of the parent's memory the fork gave it (nothing
is pickled on the way in: the loaded tables are already there), sends the pickled result back through a pipe and
exits without running the parent's exit handlers or flushing its buffers. ``result()`` returns that result, raises
the child's exception (its traceback attached as a note), or raises RightsizeError when the child died without
answering (killed, out of memory). Leaving the ``with`` block without ``result()`` (the parent's own part failed)
kills and reaps the child, so no process outlives the command. The child writes no file: the parent writes
everything it returns, so a failure on either side leaves nothing half-written.

``shared``: objects both processes hold from before the fork (e.g. the recommendation rows the work was given); one
in the result goes back as its index in ``shared`` and comes out as the parent's own object, not a copy (a patch
set's rows were most of its 30 MB answer). The child does not collect cyclic garbage: it is short-lived, and a
collection would touch (and so copy) every page of the parent's heap.

Where ``os.fork`` does not exist the work runs in the parent when ``result()`` is asked for.
"""
from __future__ import annotations

import gc
import io
import os
import pickle
import signal
import traceback
from typing import Callable, Generic, Sequence, TypeVar

from .errors import RightsizeError
from .memory import bulk

T = TypeVar("T")
_HELD = {signal.SIGINT, signal.SIGTERM}


class Beside(Generic[T]):
    """``fn()`` running in a forked child; see the module docstring."""

    def __init__(self, fn: Callable[[], T], what: str, shared: Sequence[object] = ()):
        self.fn, self.what, self.shared = fn, what, shared
        self.pid: int | None = None
        self._read = -1
        self._answer: tuple = ()

    def _start(self) -> None:
        """Fork, SIGINT and SIGTERM held meanwhile: one arriving during the fork would run its handler inside the
        fork's own hooks (logging's lock release), where Python prints the handler's exception and goes on."""
        read, write = os.pipe()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            _run_child(self.fn, write, self.shared)
        os.close(write)
        self.pid, self._read = pid, read
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a held signal is handled now, here
        except BaseException:
            self.__exit__()
            raise

    def result(self) -> T:
        """The child's result (its exception raised here); RightsizeError naming ``what`` when it died silently.
        Asked again, the same result."""
        if self._answer:
            return self._answer[0]
        self._answer = (self._result(),)
        return self._answer[0]

    def _result(self) -> T:
        if self.pid is None:
            return self.fn()
        with os.fdopen(self._read, "rb") as pipe:
            payload = pipe.read()  # until the child closes its end: it answered, or died
        self._read = -1
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        if not payload:
            why = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.waitstatus_to_exitcode(status)}"
            raise RightsizeError(f"{self.what}: the child process doing half of the work stopped ({why}) without "
                                 "an answer; nothing was written")
        with bulk():  # the answer is kept to the command's end: the collector never walks it
            ok, value = _Loads(io.BytesIO(payload), self.shared).load()
        if not ok:
            raise value
        return value

    def __enter__(self) -> "Beside[T]":
        if hasattr(os, "fork"):
            self._start()
        return self

    def __exit__(self, *exc) -> None:
        if self.pid is not None:  # result() was not asked for: the parent's part failed
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = None
        if self._read >= 0:
            os.close(self._read)
            self._read = -1


def beside(fn: Callable[[], T], what: str, shared: Sequence[object] = ()) -> Beside[T]:
    """Start ``fn()`` in a forked child; use as ``with beside(fn, "patches") as job: ...; job.result()``."""
    return Beside(fn, what, shared)


class _Dumps(pickle.Pickler):
    """A pickler sending each object of ``shared`` as its index there."""

    def __init__(self, file, shared: Sequence[object]):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.index = {id(obj): i for i, obj in enumerate(shared)}

    def persistent_id(self, obj):
        return self.index.get(id(obj))


class _Loads(pickle.Unpickler):
    """An unpickler taking each index sent by _Dumps back to the parent's object."""

    def __init__(self, file, shared: Sequence[object]):
        super().__init__(file)
        self.shared = shared

    def persistent_load(self, pid):
        return self.shared[pid]


def _run_child(fn: Callable[[], object], write: int, shared: Sequence[object]) -> None:
    """Run ``fn`` and send ``(True, result)`` or ``(False, exception)``; then exit at once (os._exit)."""
    gc.disable()
    code = 0
    try:
        try:
            buf = io.BytesIO()
            _Dumps(buf, shared).dump((True, fn()))
            payload = buf.getvalue()
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent, which raises it
            payload = _pickled_failure(exc)
        with os.fdopen(write, "wb") as pipe:
            pipe.write(payload)
    except BaseException:  # noqa: BLE001 - the pipe broke (the parent is gone): nothing to tell
        code = 1
    finally:
        os._exit(code)


def _pickled_failure(exc: BaseException) -> bytes:
    """``(False, exc)`` pickled, the child's traceback attached; a RightsizeError with its text when ``exc`` cannot
    be pickled."""
    exc.add_note("raised in the forked child:\n" + "".join(traceback.format_exception(exc)).rstrip())
    try:
        payload = pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(payload)  # an exception whose __init__ takes other arguments pickles but does not load
        return payload
    except Exception:  # noqa: BLE001
        return pickle.dumps((False, RightsizeError(f"{type(exc).__name__}: {exc}")))
