"""Plain-SQL migrations, forward-only, numbered (a package so installs ship the files)."""
