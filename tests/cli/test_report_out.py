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


@pytest.mark.parametrize("args, out", [
    (["report", "quarterly", "--period", "2026-27-Q2", "--as-of", "2026-11-26", "--format", "csv"], "q2.csv"),
    (["report", "quarterly", "--period", "2026-27-Q2", "--as-of", "2026-11-26"], "q2.csv"),
    (["report", "annual", "--year", "2026-27"], "annual.csv"),
    (["report", "annual", "--year", "2026-27"], "annual.HTML"),
    (["report", "stats", "--from", "2026-04-01", "--to", "2026-11-26"], "stats.csv"),
])
def test_out_named_like_a_file_for_a_report_of_several_files_is_refused_writing_nothing(
        grampian_cli, tmp_path, monkeypatch, capsys, args, out):
    """`--out q2.csv` used to make a directory called q2.csv: a report written as several
    files takes a directory, and the quarterly pack's HTML is not a .csv file."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(SystemExit) as stop:
        main([*args, "--out", out])
    assert stop.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    assert err.startswith(f"mappa: error: --out {out} names a ") and err.count("\n") == 1, err
    assert ("pass a directory" in err and f"--out {out.rsplit('.', 1)[0]}\n" in err) or "--format csv" in err
    assert list(work.iterdir()) == []
