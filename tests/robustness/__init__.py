"""Reliability and safety through the real CLI: bad inputs, untrusted files, atomic artefacts,
determinism and resource bounds."""
