"""The exit statuses of the ``rulekit`` command, defined once for every verb.

0 success; 1 a check, test or evaluation failed (or the store refused); 2 invalid
input or usage; 141 the reader of the output went away (``rulekit ... | head``:
the status a shell reports for a Unix tool stopped by SIGPIPE, 128 + 13).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 128 + 13  # as a shell reports a tool that SIGPIPE stopped


class UsageError(Exception):
    """Bad command-line input: printed as ``rulekit: error: ...``, exit status 2."""
