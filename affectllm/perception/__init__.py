"""Perception experts (faces, face expression, prosody). Import submodules directly; nothing heavy here."""
