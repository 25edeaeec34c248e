"""SMS arithmetic: GSM-7 or UCS-2, segment counts at the boundaries, and splitting long
texts into parts of whole segments without breaking a character."""

from __future__ import annotations

import pytest

from palabre.sms import encoding, segment_count, segments, split_for_sms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bonjour, votre code est MBEIBR7DA1", "GSM-7"),
        ("Prix: 5€ {ok} [1] ~ ^ | \\", "GSM-7"),
        ("àéèùìòÇÄÖÑÜäöñü@£$¥", "GSM-7"),
        ("Ça coûte", "UCS-2"),  # û is not in GSM 03.38
        ("مرحبا", "UCS-2"),
        ("OK 😀", "UCS-2"),
    ],
)
def test_encoding(text, expected):
    assert encoding(text) == expected


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("", 0),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets
        ("€" * 81, 2),
        ("a" + "€" * 80, 2),  # 161 septets
        ("ب" * 70, 1),
        ("ب" * 71, 2),
        ("ب" * 134, 2),
        ("ب" * 135, 3),
        ("😀" * 35, 1),  # 70 UTF-16 code units
        ("😀" * 36, 2),
    ],
)
def test_segment_counts_at_the_boundaries(text, count):
    assert segment_count(text) == count


def test_a_segment_never_splits_an_escape_or_a_surrogate_pair():
    gsm = segments("a" * 152 + "€" + "b" * 10)
    assert [len(s) for s in gsm] == [152, 11], "the € (2 septets) moves to the next segment"
    ucs = segments("ب" * 66 + "😀" + "ب" * 10)
    assert [len(s.encode("utf-16-le")) // 2 for s in ucs] == [66, 12]


def test_a_4000_char_text_is_split_at_word_boundaries():
    words = [f"mot{i}" for i in range(800)]
    text = " ".join(words)[:4000].rsplit(" ", 1)[0]
    parts = split_for_sms(text)
    assert len(parts) == 3
    assert all(len(part) <= 1600 for part in parts)
    assert " ".join(parts) == text, "cuts fall on spaces and lose nothing"
    assert all(segment_count(part) <= 10 for part in parts), "each part is whole segments"


def test_arabic_and_emoji_are_split_without_breaking_characters():
    text = ("مرحبا بكم 😀👍🏽 " * 300).strip()
    parts = split_for_sms(text)
    assert len(parts) > 1
    assert all(len(part.encode("utf-16-le")) // 2 <= 1600 for part in parts)
    assert " ".join(parts) == text
    for part in parts:
        part.encode("utf-16-le")  # a lone surrogate would raise here
        assert not part.startswith("🏽"), "a skin tone stays with its emoji"
    unbroken = split_for_sms("😀" * 1000)
    assert "".join(unbroken) == "😀" * 1000


def test_a_short_text_is_one_part():
    assert split_for_sms("Bonjour") == ["Bonjour"]
    assert split_for_sms("") == []
