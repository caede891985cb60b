"""Reading an import: which files of a directory are read, and the text of each.

What a file says is checked in validate.py; this module only finds the files and tells
why one cannot be read as UTF-8 text.
"""

from __future__ import annotations

from pathlib import Path

from ...rules.schema import FILES, FileSpec


def bad_utf8(path: Path) -> tuple[int, int]:
    """The line and value of the first byte that is not UTF-8, reading in chunks."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                pending = exc.object  # the undecoded tail of earlier chunks and this one
                return line + pending[: exc.start].count(b"\n"), pending[exc.start]
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return line, exc.object[exc.start]
    return line, 0



def find_files(directory: Path) -> list[tuple[FileSpec, Path]]:
    found = []
    for spec in FILES:
        path = directory / spec.filename
        if path.is_file():
            found.append((spec, path))
    return found


def unread_files(directory: Path) -> list[str]:
    """A warning for each CSV file in `directory` that is not one of SPEC section 5's (and
    so is skipped), with the name it probably meant: "Meetings.csv" beside the others
    imported everything but the meetings, without a word."""
    import difflib

    # By stem: with ".csv" on both sides every name looks like some file's (notes/areas).
    names = {spec.filename.lower().removesuffix(".csv"): spec.filename for spec in FILES}
    out = []
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() != ".csv" or path.name in names.values() or not path.is_file():
            continue
        close = difflib.get_close_matches(path.stem.lower(), list(names), n=1)
        shown = path.name if path.name.isprintable() else ascii(path.name)
        out.append(f"{shown}: not a file mappa reads"
                   + (f" (did you mean {names[close[0]]}?)" if close else "") + "; skipped")
    return out


