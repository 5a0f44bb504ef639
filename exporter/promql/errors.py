"""The one error type of the PromQL subset."""


class PromQLError(ValueError):
    """str(err) is one lower-case message naming the problem/construct, e.g.
    'function "label_replace" is not supported', 'subqueries are not supported',
    'parse error: unexpected character ...'."""
