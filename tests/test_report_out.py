"""`mappa report ... --out` where it cannot write (issue 12 finding 9): one line, exit 2."""

from __future__ import annotations

import pytest

from bot.cli import main


@pytest.mark.parametrize("args, name", [
    (["report", "quarterly", "--period", "2026-27-Q2", "--as-of", "2026-11-26"], "pack.html"),
    (["report", "quarterly", "--period", "2026-27-Q2", "--as-of", "2026-11-26", "--format", "csv"], "csv"),
    (["report", "annual", "--year", "2026-27"], "annual"),
    (["report", "stats", "--from", "2026-04-01", "--to", "2026-11-26"], "stats"),
])
def test_out_in_a_missing_directory_or_under_a_file_is_one_line_and_exit_2(grampian_cli, tmp_path, capsys, args, name):
    (tmp_path / "a-file").write_text("x")
    for out in (tmp_path / "missing" / "dir" / name, tmp_path / "a-file" / name):
        if name != "pack.html" and out.parent.name == "dir":
            continue  # directories are created, parents and all
        with pytest.raises(SystemExit) as stop:
            main([*args, "--out", str(out)])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("mappa: error: cannot write ") and err.count("\n") == 1, err
        assert "Traceback" not in err
    # Where it can write, it does.
    (tmp_path / "ok").mkdir(exist_ok=True)
    assert main([*args, "--out", str(tmp_path / "ok" / name)]) == 0
    assert (tmp_path / "ok" / name).exists()
