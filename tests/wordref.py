"""An independent WordCount reference and a text generator, for tests and benchmarks.

The reference scans characters with ``unicodedata`` (no regex), so it shares no code
with the Spark job: if the two agree on tricky generated text, the job is right.
"""

from __future__ import annotations

import random
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable

APOSTROPHES = "'\u2019"

# Words and fragments chosen to exercise the semantics: Unicode letters and digits from
# several scripts, supplementary-plane letters, combining marks (which split words),
# straight and curly apostrophes (single ones join, double ones split), mixed case,
# U+0130 (whose lower case adds a combining dot), final sigma.
VOCABULARY = [
    "the",
    "The",
    "THE",
    "and",
    "of",
    "to",
    "a",
    "in",
    "Spark",
    "spark",
    "SPARK",
    "don't",
    "Don't",
    "DON'T",
    "l\u2019homme",
    "L\u2019Homme",
    "rock'n'roll",
    "o''clock",
    "'tis",
    "it's'",
    "naïve",
    "NAÏVE",
    "café",
    "Straße",
    "STRASSE",
    "\u1e9ein",
    "Ärger",
    "Ωμέγα",
    "ΟΔΟΣ",
    "οδός",
    "Москва",
    "москва",
    "日本語",
    "東京",
    "2026",
    "42",
    "3.14",
    "٣٤٥",
    "½",
    "Ⅻ",
    "x²",
    "\U0001d400\U0001d401",
    "\U00010400",
    "\u0130stanbul",
    "e\u0301cole",
    "नमस्ते",
    "mañana",
    "e-mail",
    "C++",
    "k8s",
    "v1.36.3",
    "o'",
    "'",
    "\u2019",
    "abc'def'ghi",
    "ÉCOLE",
    "école",
    "ǅemal",
    "ﬁle",
    "Ǆ",
]
PUNCTUATION = [" ", " ", " ", " ", ", ", ". ", "; ", " — ", " (", ") ", "\t", ' "', '" ', "!"]


def is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in "LN"


def reference_words(text: str) -> Iterable[str]:
    i, n = 0, len(text)
    while i < n:
        if not is_word_char(text[i]):
            i += 1
            continue
        j = i
        while True:
            while j < n and is_word_char(text[j]):
                j += 1
            if j + 1 < n and text[j] in APOSTROPHES and is_word_char(text[j + 1]):
                j += 1
                continue
            break
        yield text[i:j].lower()
        i = j


def reference_count(texts: Iterable[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        # Spark reads line by line; a word never spans a line break either way.
        for line in text.splitlines():
            counts.update(reference_words(line))
    return counts


def sorted_rows(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def generate_text(words: int, *, seed: int = 7, tricky: bool = True) -> str:
    """Random text with ``words`` tokens, lines of varying length and blank lines."""
    rng = random.Random(seed)
    vocab = VOCABULARY if tricky else [w for w in VOCABULARY if w.isascii() and w.isalpha()]
    common = vocab[:12]
    parts: list[str] = []
    line_len = 0
    for _ in range(words):
        word = rng.choice(common) if rng.random() < 0.5 else rng.choice(vocab)
        if rng.random() < 0.05:
            word = f"{word}{rng.randint(0, 999)}"
        parts.append(word)
        line_len += 1
        if line_len >= rng.randint(5, 15):
            parts.append(
                "\n\n" if rng.random() < 0.1 else ("\r\n" if rng.random() < 0.05 else "\n")
            )
            line_len = 0
        else:
            parts.append(rng.choice(PUNCTUATION))
    return "".join(parts) + "\n"


def word_char_class() -> str:
    """A Python ``re`` character class of every L*/N* code point (``re`` has no \\p{L})."""
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code))[0] in "LN":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    parts = [
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    ]
    return "[" + "".join(parts) + "]"


def python_word_regex() -> re.Pattern[str]:
    cls = word_char_class()
    return re.compile(f"{cls}+(?:['\u2019]{cls}+)*")
