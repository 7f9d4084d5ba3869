"""One module per launcher command (``run``, ``estimate``, ``status``, ``cancel``), each a
function of the parsed flags returning the exit code; ``cli`` parses and dispatches."""
