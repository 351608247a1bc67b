"""The offline proposer's fast paths equal the plain definitions they replace, value for value.

`_words` splits a text without a regex and `TextWords.count` rejects a label by a word set before
reading the text; here both are held against the regex and `str.count` they stand for, on random
texts made of the characters that matter (ASCII and non-ASCII letters, digits, underscores,
punctuation, dashes, whitespace of both kinds, characters that casefold to several).
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from proposers.offline import TextWords, _words

ALPHABET = "abcAB xyz019_-.,;:'\"()\n\t\u00a0\u2014\u2019\u00e9\u00c9\u00df\u0130\u212a\u00bd\u0663\u00b2\u4e2d\U0001f600"
texts = st.text(alphabet=ALPHABET, max_size=80)
labels = st.text(alphabet="abcAB 01-\u00e9\u00df_.", max_size=12)


def words_by_regex(text: str) -> str:
    """The definition: the runs of letters and digits of the casefolded text."""
    return " " + " ".join(re.findall(r"[^\W_]+", text.casefold())) + " "


def count_plainly(label: str, text: str) -> int:
    phrase = words_by_regex(label)
    return words_by_regex(text).count(phrase) if phrase.strip() else 0


@settings(max_examples=500, deadline=None)
@given(texts)
def test_words_equal_the_regex(text):
    assert _words(text) == words_by_regex(text)


def test_words_equal_the_regex_on_every_character_class():
    sample = "".join(chr(c) for c in range(0x20000) if not 0xD800 <= c < 0xE000)
    assert _words(sample) == words_by_regex(sample)
    assert _words("\ud800 a\udfffb") == words_by_regex("\ud800 a\udfffb")  # lone surrogates


@settings(max_examples=500, deadline=None)
@given(texts, st.lists(labels, max_size=6))
def test_count_equals_counting_in_the_whole_text(text, found):
    words = TextWords(text)
    # labels made of the text's own words too, so that most of them occur
    own = [" ".join(words.words.split()[i : i + n]) for i in range(3) for n in (1, 2)]
    for label in found + own:
        assert words.count(label) == count_plainly(label, text), label
