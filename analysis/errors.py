"""The one exception of the analysis: bad input, with a message naming the problem and the fix."""


class AnalysisError(ValueError):
    """Input the analysis cannot use; the message says what is wrong and how to fix it."""
