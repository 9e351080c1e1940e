"""How much was said, in the unit of its script: words between spaces, or syllables (Han, Hangul) and morae (kana).

Speaking rate and "too few words" checks count with this, so an unspaced script (Mandarin, Japanese) is not read
as one long word.
"""

from __future__ import annotations

import re

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u30fc]")  # small kana and the long mark count as morae too
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def speech_units(text: str | None) -> tuple[int, str]:
    """How much was said, in the unit its script has: ``(count, unit)``.

    Han characters and Hangul blocks are one syllable each, kana one mora each (a text with kana is counted in
    morae, its Han characters as one mora each: a low estimate); any other script counts words between spaces.
    """
    text = text or ""
    han, kana, hangul = len(_HAN.findall(text)), len(_KANA.findall(text)), len(_HANGUL.findall(text))
    rest = len(_WORD.findall(_HAN.sub(" ", _KANA.sub(" ", _HANGUL.sub(" ", text)))))
    if kana:
        return kana + han + rest, "mora"
    if han or hangul:
        return han + hangul + rest, "syllable"
    return rest, "word"
