"""Pure building blocks: encoding, hashing, Merkle trees, keys, amounts, errors. No I/O here."""
