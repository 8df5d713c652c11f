"""The `backroom` console: database, tokens, the embedded dev stack."""
