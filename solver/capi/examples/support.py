"""What the Python examples share (as support.h does for the C ones)."""


def expect_error(kind, call, what):
    """The exception of type `kind` that `call()` raises; an AssertionError
    naming `what` if it returns instead."""
    try:
        call()
    except kind as e:
        return e
    raise AssertionError(f"{what} was accepted")
