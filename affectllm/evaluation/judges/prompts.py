"""The judge prompts, verbatim. eval/README.md reproduces them; change both together (the judge cache is keyed by
the exact prompt text, so any edit re-queries the judge once)."""

from __future__ import annotations

EXTRACT_LABELS = """You are an expert in affective computing. Below is a description of a person in a video clip.
List the emotional states of the main person that the description clearly supports.
Answer only with a list in Python syntax, for example ['happy', 'relieved']. Answer [] when no emotion is identifiable.

Description: {text}
Emotions:"""

SYNONYM_GROUPS = """Group the following emotion words into sets of synonyms (words with the same meaning).
Every word must appear in exactly one group; a word without synonyms in the list forms a group of its own.
Answer only with a list of lists in Python syntax, for example [['happy', 'joyful'], ['sad']].

Words: {words}
Groups:"""

SENTIMENT = """Do these emotion labels, taken together, express a positive, negative or neutral sentiment?
Answer with one word: positive, negative or neutral.

Labels: {labels}
Sentiment:"""

EMER_CLUE_OVERLAP = """You are an expert in affective computing. Two descriptions of the same video clip follow: a
reference written by annotators and a prediction written by a model. Rate from 1 to 10 how much the emotional
clues in the prediction (facial expression, voice, spoken words, context) overlap with the clues in the reference:
1 means no reference clue appears, 10 means every reference clue appears and nothing contradicts them.
Answer in the form "Score: N".

Reference: {reference}
Prediction: {prediction}
"""

EMER_LABEL_OVERLAP = """You are an expert in affective computing. Two descriptions of the same video clip follow: a
reference written by annotators and a prediction written by a model. First identify the emotional states each
description concludes, then rate from 1 to 10 how well the predicted emotional states match the reference ones:
1 means none match, 10 means they match fully (synonyms count as matches).
Answer in the form "Score: N".

Reference: {reference}
Prediction: {prediction}
"""
