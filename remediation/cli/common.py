"""Exit codes shared by the `remediate` commands."""

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2
