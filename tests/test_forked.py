"""forked.py: work done by a forked child beside the parent (real fork, real signals, no fakes)."""
from __future__ import annotations

import os
import signal
import time

import pytest

from rightsize.emit.patches import PatchError
from rightsize.errors import RightsizeError
from rightsize.forked import beside


def test_the_childs_result_comes_back_with_the_parents_own_shared_objects():
    rows = [{"container": f"c{i}", "cores": i / 4} for i in range(1000)]
    with beside(lambda: {"pid": os.getpid(), "kept": rows[500:], "made": [{"n": 1}]}, "test", shared=rows) as job:
        mine = sum(r["cores"] for r in rows[:500])
        theirs = job.result()
    assert theirs["pid"] != os.getpid()  # really another process
    assert mine == pytest.approx(sum(i / 4 for i in range(500)))
    assert all(a is b for a, b in zip(theirs["kept"], rows[500:]))  # the parent's objects, not copies
    assert theirs["made"] == [{"n": 1}]


def test_the_childs_exception_is_raised_in_the_parent_with_its_traceback():
    def fails():
        raise PatchError("patches: us/shop/Deployment/web and eu/shop/Deployment/web both map to shop/x.yaml")

    with beside(fails, "patches") as job:
        with pytest.raises(PatchError, match="both map to shop/x.yaml") as err:
            job.result()
    assert any("raised in the forked child" in note and "in fails" in note for note in err.value.__notes__)


def test_an_exception_that_does_not_pickle_comes_back_as_its_text():
    class Odd(Exception):
        def __init__(self, a, b):
            super().__init__(f"{a}-{b}")

    def fails():
        raise Odd(1, 2)

    with beside(fails, "test") as job:
        with pytest.raises(RightsizeError, match="Odd: 1-2"):
            job.result()


def test_a_child_killed_without_an_answer_is_an_error_naming_the_work():
    with beside(lambda: os.kill(os.getpid(), signal.SIGKILL), "patches") as job:
        with pytest.raises(RightsizeError, match=r"^patches: the child process .* stopped \(signal 9\) without an "
                                                 r"answer; nothing was written$"):
            job.result()


def test_a_failure_in_the_parent_kills_and_reaps_the_child(tmp_path):
    started = tmp_path / "started"

    def slow():
        started.write_text(str(os.getpid()))
        time.sleep(60)

    with pytest.raises(ValueError, match="the parent's part"):
        with beside(slow, "test") as job:
            pid = job.pid
            while not started.exists():
                time.sleep(0.01)
            raise ValueError("the parent's part failed")
    with pytest.raises(ChildProcessError):  # reaped: no zombie left
        os.waitpid(pid, os.WNOHANG)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
