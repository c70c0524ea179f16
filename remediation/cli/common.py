"""Exit codes shared by the `remediate` commands.

0 fine; 1 something was found (a rejected event, an invalid playbook, a broken audit chain); 2 a
usage or settings error; 3 storage could not be reached or refused us (commands that read storage).
"""

EXIT_OK, EXIT_FOUND, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
