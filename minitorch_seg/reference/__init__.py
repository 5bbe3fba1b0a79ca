"""Plain-loop references and composed twins of the fast ops, imported by the tests and the lessons."""
