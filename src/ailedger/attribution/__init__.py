"""Proof of Attribution: which records and contributors drove an answer, and their shares.

Rooms so far: `spans` (what an answer copied verbatim from the snapshot, by suffix array);
`influence` (what the adapter learned from each record: TRAK/TrackStar scores over LoRA gradients at
the training checkpoints), with its doors `features` (per-record gradients), `projection` (the
seeded sparse map to k dimensions) and `influence_index` (the hashed, memory-mapped index file);
`shares` (the integer rule that turns per-record scores into basis points) and `fixedpoint` (the one
place a float score becomes the integer that rule takes). See docs/attribution.md.
"""
