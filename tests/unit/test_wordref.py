"""The reference scanner follows DESIGN.md's rule; the benchmark's Python regex agrees."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.wordref import (
    generate_text,
    python_word_regex,
    reference_count,
    reference_words,
)


def test_python_regex_matches_reference_scanner() -> None:
    text = generate_text(20000, seed=3)
    pattern = python_word_regex()
    via_regex = Counter(w.lower() for line in text.splitlines() for w in pattern.findall(line))
    assert via_regex == reference_count([text])


def test_reference_semantics_on_known_cases() -> None:
    text = "Don't  l’Homme o''clock 'tis it's' \u0130stanbul e\u0301cole x² ΟΔΟΣ 3.14\n"
    assert reference_count([text]) == Counter(
        {
            "don't": 1,
            "l’homme": 1,
            "o": 1,
            "clock": 1,
            "tis": 1,
            "it's": 1,
            "i\u0307stanbul": 1,
            "e\u0301cole": 1,
            "x²": 1,
            "οδος": 1,
            "3": 1,
            "14": 1,
        }
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        # A decomposed accent stays in its word, and NFD is not NFC: two different words.
        ("e\u0301cole \u00e9cole", ["e\u0301cole", "\u00e9cole"]),
        ("\u00c9COLE E\u0301COLE", ["\u00e9cole", "e\u0301cole"]),
        # A combining mark starts no word: it is skipped like punctuation.
        ("\u0301cole", ["cole"]),
        ("\u0301", []),
        # Devanagari vowel signs (Mc, Mn) and the virama (Mn) keep the word whole.
        ("हिन्दी नमस्ते", ["हिन्दी", "नमस्ते"]),
        # Thai: vowel and tone marks (Mn) between letters (Lo).
        ("ที่นี่ น้ำ ภาษาไทย", ["ที่นี่", "น้ำ", "ภาษาไทย"]),
        # Hebrew with points (Mn), including a mark after the last letter.
        ("שָׁלוֹם בְּרֵאשִׁית", ["שָׁלוֹם", "בְּרֵאשִׁית"]),
        # A supplementary-plane letter with its vowel sign (Brahmi), an enclosing mark.
        ("\U00011013\U00011038 a\u20dd", ["\U00011013\U00011038", "a\u20dd"]),
        # Apostrophes: one between word characters joins; at either end it does not.
        ("dogs' dogs\u2019 'tis \u2019tis", ["dogs", "dogs", "tis", "tis"]),
        ("don't DON\u2019T rock'n'roll", ["don't", "don\u2019t", "rock'n'roll"]),
        ("o''clock it's' a'", ["o", "clock", "it's", "a"]),
        # After an apostrophe a word character must follow, not a mark; before one, a
        # mark is fine.
        ("don'\u0301t x\u0301'y", ["don", "t", "x\u0301'y"]),
        # U+02BC is a modifier letter (Lm), so part of the word; U+2018 is punctuation.
        ("don\u02bct don\u2018t", ["don\u02bct", "don", "t"]),
        # Numbers of all kinds, with and without letters; joined by an apostrophe too.
        (
            "2026 3.14 1'000 ٣٤٥ x² ½ Ⅻ k8s",
            ["2026", "3", "14", "1'000", "٣٤٥", "x²", "½", "ⅻ", "k8s"],
        ),
        # Found first, lower-cased after: U+0130 becomes i + U+0307 inside one word.
        ("\u0130stanbul \u0130", ["i\u0307stanbul", "i\u0307"]),
        # Underscores, hyphens and other punctuation split.
        ("snake_case e-mail C++ v1.36", ["snake", "case", "e", "mail", "c", "v1", "36"]),
    ],
)
def test_tricky_cases(text: str, words: list[str]) -> None:
    assert list(reference_words(text)) == words
    assert [w.lower() for w in python_word_regex().findall(text)] == words


def test_vocabulary_exercises_marks_and_apostrophes() -> None:
    counts = reference_count([generate_text(20000, seed=5)])
    assert counts["e\u0301cole"] and counts["école"] and counts["हिन्दी"]
    assert counts["dogs"] and counts["don't"] and counts["i\u0307stanbul"]
