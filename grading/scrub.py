"""Student-controlled text made safe to show: no hidden input can ride out in a message.

The worker runs the student's code on the hidden inputs, so whatever it reports (an
exception's type and message, what the code printed) may carry those inputs: `raise
ValueError(repr(x))`, `str(x.tolist())`, a class built with a value in its name. The
grader never trusts the worker to clean that up. It keeps:

- the exception type when it is a built-in exception (or one of numpy's few), otherwise
  "Exception" (a class the submission defined could carry anything in its name);
- the place in the student's own cs_layers/<module>.py:<line>, which the student wrote;
- a short message, printable ASCII only, where every number except a small integer (a
  dimension, an index) is replaced by '#' and long tokens mixing letters and digits (hex,
  base64) by '...', cut to MAX_CHARS.

A student who sets out to smuggle a value through the words of a message (one word per
bit) is not stopped by this; every way a value is printed by Python or numpy is.
"""
from __future__ import annotations

import builtins
import re

MAX_CHARS = 160
KEEP_TYPES = frozenset({"AxisError", "LinAlgError", "UFuncTypeError"})  # numpy's own
_WHERE = r" at cs_layers/[a-z_][a-z0-9_]{0,40}\.py:\d{1,6}"
_DESCRIBED = re.compile(r"^(?P<type>[A-Za-z_][A-Za-z0-9_]{0,80})(?P<where>" + _WHERE
                        + r")?(?::\s*(?P<msg>.*))?$", re.S)
# A long token of letters and digits (hex, base64, an address) is '...', then a number
# with a fraction or an exponent (3.14, 1e-3, .5) is '#', then an integer of 4+ digits is
# '#'. Small integers (a dimension, an index, a line) and words (float64) stay.
_FLOAT = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][-+]?\d+)?")
_NUMBER = re.compile(r"[-+]?\d+")
_TOKEN = re.compile(r"[A-Za-z0-9+/=]{8,}")
_HASHES = re.compile(r"#(?:[\s,;:()\[\]]*#){2,}")


def exception_type(name: str) -> str:
    """A built-in (or numpy) exception name as is; any other name becomes "Exception"."""
    obj = getattr(builtins, name, None)
    if (isinstance(obj, type) and issubclass(obj, BaseException)) or name in KEEP_TYPES:
        return name
    return "Exception"


def _token(m: re.Match) -> str:
    t = m.group(0)
    mixed = any(c.isdigit() for c in t) and any(c.isalpha() for c in t)
    return "..." if mixed else t


def _number(m: re.Match) -> str:
    text = m.group(0).lstrip("+-")
    return text if text.isdigit() and len(text) <= 3 else "#"


def text(raw, max_chars: int = MAX_CHARS) -> str:
    """Free text from the student's process, with numbers and long tokens redacted."""
    s = str(raw)[: 20 * max_chars]
    s = "".join(c if 32 <= ord(c) < 127 else " " for c in s)
    s = _TOKEN.sub(_token, s)
    s = _FLOAT.sub("#", s)
    s = _NUMBER.sub(_number, s)
    s = _HASHES.sub("#...", s)  # a run of redacted numbers reads as one
    s = re.sub(r"\s+", " ", s).strip()
    return s if len(s) <= max_chars else s[: max_chars - 3] + "..."


def worker_message(raw) -> str:
    """A status message the worker wrote ("Type at cs_layers/f.py:12: message"), made safe."""
    raw = str(raw)
    m = _DESCRIBED.match(raw.strip())
    if m is None:
        return text(raw)
    head = exception_type(m.group("type")) + (m.group("where") or "")
    msg = text(m.group("msg") or "")
    return f"{head}: {msg}" if msg else head
