"""The benchmark's Python regex must agree with the independent character scanner."""

from __future__ import annotations

from collections import Counter

from tests.wordref import generate_text, python_word_regex, reference_count


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
            "i̇stanbul": 1,
            "e": 1,
            "cole": 1,
            "x²": 1,
            "οδος": 1,
            "3": 1,
            "14": 1,
        }
    )
