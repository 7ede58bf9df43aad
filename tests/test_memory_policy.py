"""memory.py's collector policy: objects built in bulk are frozen, and what a command changes in the interpreter is given
back to a caller that goes on (a test, a notebook)."""
import gc

from rightsize import memory
from rightsize.cli import main


def test_bulk_pauses_the_collector_then_freezes_what_it_built():
    seen = {}
    with memory.command():
        with memory.bulk():
            seen["enabled_inside"] = gc.isenabled()
            with memory.bulk():  # nested: the inner block leaves the collector paused
                pass
            seen["enabled_after_inner"] = gc.isenabled()
            kept = [[i] for i in range(1000)]
        seen["frozen"] = gc.get_freeze_count()
        seen["enabled_after"] = gc.isenabled()
    assert seen["enabled_inside"] is False and seen["enabled_after_inner"] is False and seen["enabled_after"] is True
    assert seen["frozen"] >= len(kept)  # later collections skip what was built
    assert gc.get_freeze_count() == 0  # the command gives it back to the collector


def test_bulk_left_by_an_exception_turns_the_collector_back_on():
    try:
        with memory.command(), memory.bulk():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_the_cli_leaves_the_collector_as_it_found_it(tmp_path):
    assert main(["demo", "--out", str(tmp_path / "out"), "--quiet"]) == 0  # report and patches: built in bulk
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_the_installed_program_turns_the_collector_off_for_the_exit(monkeypatch, capsys):
    from rightsize.__main__ import program

    monkeypatch.setattr("sys.argv", ["rightsize", "config"])
    try:
        assert program() == 0
        # off: the interpreter's exit runs no last collection over every object still alive
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert "[general]" in capsys.readouterr().out  # the command itself ran
