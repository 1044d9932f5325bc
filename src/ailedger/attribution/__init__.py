"""Proof of Attribution: which records and contributors drove an answer, and their shares.

Rooms so far: `spans` (what an answer copied verbatim from the snapshot, by suffix array), `shares`
(the integer rule that turns per-record scores into basis points) and `fixedpoint` (the one place a
float score becomes the integer that rule takes). See docs/attribution.md.
"""
