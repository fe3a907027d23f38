"""What every command uses: the atomic output writer, provenance, device selection, progress lines, errors."""
