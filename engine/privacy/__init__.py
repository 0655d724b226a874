"""Privacy: pseudonymized ids (and, in later work, consent, export and erasure)."""
