"""An independent WordCount reference and a text generator, for tests and benchmarks.

The reference scans characters with ``unicodedata`` (no regex), so it shares no code
with the Spark job: if the two agree on tricky generated text, the job is right.

Rule (DESIGN.md): a word starts with a letter or number (general categories L*, N*) and
continues through letters, numbers and combining marks (M*); a single ``'`` or ``’``
followed by a letter or number joins the parts. Words are found as written, then
lower-cased; nothing is normalised.

Unicode versions differ: Spark's JVM (Java 17) classifies characters with Unicode 13,
Python 3.11's ``unicodedata`` with Unicode 14. The 638 code points whose L/M/N class
differs between the two are all Unicode 14 additions (unassigned in Java 17, e.g.
U+0870..U+088E Arabic), so every character in the vocabulary below is one that both
assign the same category (all of them date from Unicode 6 or earlier).
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
# several scripts, supplementary-plane letters and marks, combining marks (which stay in
# the word: NFD accents, Devanagari vowel signs and viramas, Thai vowels and tone marks,
# Hebrew points, an enclosing circle; a mark with no letter before it is no word),
# straight and curly apostrophes (single ones between word characters join, double or
# trailing ones split), mixed case, U+0130 (whose lower case adds a combining dot),
# final sigma, U+02BC (a modifier *letter* apostrophe, so part of the word).
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
    "\u0130",
    "e\u0301cole",
    "E\u0301COLE",
    "\u0301cole",
    "na\u0308ive",
    "नमस्ते",
    "हिन्दी",
    "ক্ষমা",
    "ภาษาไทย",
    "ที่นี่",
    "น้ำ",
    "שָׁלוֹם",
    "בְּרֵאשִׁית",
    "\U00011013\U00011038",
    "a\u20dd",
    "dogs'",
    "dogs\u2019",
    "don\u2019t",
    "don\u02bct",
    "don'\u0301t",
    "don\u2018t",
    "1'000",
    "x\u0301'y",
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


def starts_word(char: str) -> bool:
    """A letter or number (L*, N*): the only characters a word (or a part) starts with."""
    return unicodedata.category(char)[0] in "LN"


def continues_word(char: str) -> bool:
    """A letter, number or combining mark (L*, N*, M*)."""
    return unicodedata.category(char)[0] in "LMN"


def reference_words(text: str) -> Iterable[str]:
    i, n = 0, len(text)
    while i < n:
        if not starts_word(text[i]):
            i += 1
            continue
        j = i + 1
        while True:
            while j < n and continues_word(text[j]):
                j += 1
            if j + 1 < n and text[j] in APOSTROPHES and starts_word(text[j + 1]):
                j += 2
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


def char_class(categories: str) -> str:
    """A Python ``re`` character class of every code point whose general category starts
    with one of ``categories`` (``re`` has no \\p{L})."""
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code))[0] in categories:
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
    """The rule as a Python regex (for the benchmark's RDD job; checked against the
    scanner by the unit tests)."""
    start, cont = char_class("LN"), char_class("LMN")
    return re.compile(f"{start}{cont}*(?:['\u2019]{start}{cont}*)*")
