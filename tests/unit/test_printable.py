"""Names and log lines made printable and bounded (issue 30, item 6): what the launcher's one
printer and report.html show of a FOV name, a codebook target or a recipe's output."""

from __future__ import annotations

from starfish_batch.core import printable


def test_control_bidi_and_surrogate_characters_are_escaped():
    assert printable.escape("A1\x1b]0;pwned\x07") == "A1\\x1b]0;pwned\\x07"
    assert printable.escape("b\nforged\r\t") == "b\\nforged\\r\\t"
    assert printable.escape("evil\u202eexe.txt") == "evil\\u202eexe.txt"
    assert printable.escape("bad\udc80") == "bad\\udc80"
    assert printable.escape("Zellkern_ß_µm 5") == "Zellkern_ß_µm 5"  # printable Unicode stays
    assert printable.escape_lines("one\x1b[31m\ntwo") == "one\\x1b[31m\ntwo"


def test_not_unicode_says_where():
    assert printable.not_unicode("fine") is None
    assert printable.not_unicode("ab\ud800c") == "it is not valid Unicode: a lone surrogate (\\ud800) at character 3"


def test_a_20_mb_line_is_read_and_shown_bounded(tmp_path):
    log = tmp_path / "fov.log"
    log.write_bytes(b"start\n" + b"x" * 20_000_000 + b"\nprocess-fov: error: FOV A1: \x1b[2Jboom\n")
    tail = printable.read_tail(log, 20)
    assert tail[-1] == "process-fov: error: FOV A1: \\x1b[2Jboom"
    assert tail[0].startswith("[...] xxx") and tail[0].endswith("more characters]")
    assert sum(map(len, tail)) <= printable.MAX_TAIL_CHARS + 200


def test_a_tail_of_many_long_lines_keeps_the_newest_within_its_total():
    tail = printable.bounded_tail([f"{i:03d}" + "y" * 1000 for i in range(100)])
    assert tail[-1].startswith("099") and tail[0].startswith("... [earlier lines left out")
    assert sum(map(len, tail)) <= printable.MAX_TAIL_CHARS + 200
