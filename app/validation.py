"""Check request bodies and query strings against declared schemas, so no input can reach the database unchecked.

Each view that takes a body declares it once, as a marshmallow schema given
to :func:`body` (query parameters: :func:`query`). The same schema checks
the request and, through ``app.openapi``, describes it in the OpenAPI
document, so the two cannot drift apart. Anything Postgres would reject (a NUL byte, a number out of
range for its column) is refused here with a 422 instead of surfacing as a
500; the fields below word every message the way clients have always read it.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
import stringprep
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

from flask import abort, current_app, request
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from app.errors import invalid

R = TypeVar("R")
S = TypeVar("S", bound="Body")

MAX_DB_ID = 2**63 - 1


class Body(Schema):
    """A JSON object body: an unknown key is a 422, so a typo such as ``zoom_level`` is reported, not ignored."""

    # What the 422 for an unknown key calls it.
    KEY = "field"

    class Meta:
        unknown = RAISE

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        expected = ", ".join(sorted(body_keys(self)))
        self.error_messages = {**self.error_messages, "unknown": f"unknown {self.KEY}; expected one of {expected}"}


class Query(Body):
    """Query parameters, checked as a body is: an unknown one (``?limt=5``) is a 422; each may appear once.

    A query string holds text: its fields are ones that read text, such as
    :class:`QueryInteger` and :class:`Text`. :class:`Integer` and
    :class:`Number` read JSON numbers only, so they are refused here, at import.
    """

    KEY = "query parameter"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, field in self.load_fields.items():
            if isinstance(field, (Integer, Number)):
                raise TypeError(
                    f"{type(self).__name__}.{name}: {type(field).__name__} reads JSON numbers, and a query string "
                    "holds text: use QueryInteger"
                )


def body_keys(schema: Schema) -> list[str]:
    """Return the keys a body may hold, in declared order: a field's ``data_key`` where it has one.

    A field can keep its public name while its attribute follows a renamed
    column (``zoom_level = Integer(data_key="zoomlevel")``); clients send,
    and errors name, the public one.
    """
    return [field.data_key or name for name, field in schema.load_fields.items()]


def body(schema: Body) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Check the request body with ``schema`` and pass the values to the view as ``body``.

    The schema stays on the view as ``request_schema`` (``functools.wraps``
    carries it through outer decorators), where the OpenAPI document finds it.
    """
    return _passing("body", "request_schema", schema, lambda _: json_object())


def query(schema: Query) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Check the query string with ``schema`` and pass the values to the view as ``query``.

    The schema stays on the view as ``query_schema``, for the OpenAPI document.
    """
    return _passing("query", "query_schema", schema, query_string)


def _passing(
    argument: str, attribute: str, schema: S, read: Callable[[S], dict[str, Any]]
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Return a decorator that passes the view what ``read(schema)`` returns, checked by ``schema``, as ``argument``.

    A view that takes no such parameter is refused when it is decorated (at
    import), not with a 500 at its first request.
    """

    def decorator(view: Callable[..., R]) -> Callable[..., R]:
        if argument not in inspect.signature(view).parameters:
            raise TypeError(f"{view.__qualname__} must take a parameter {argument}: @v.{argument} passes it one")

        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> R:
            return view(*args, **{argument: load(schema, read(schema))}, **kwargs)

        setattr(wrapped, attribute, schema)
        return wrapped

    return decorator


def query_string(schema: Query) -> dict[str, Any]:
    """Return the query string's parameters for ``schema``; one with no name (``?=5``) is a 422.

    So is one of ``schema``'s given twice (``?limit=5&limit=50``): which
    counts would be a guess. An unknown one is reported before that, by
    :func:`load`.
    """
    args = request.args
    if "" in args:
        invalid(None, "a query parameter has no name (?=...)")
    if set(args) <= set(body_keys(schema)):
        for name, values in args.lists():
            if len(values) > 1:
                invalid(name, "must be given once")
    return args.to_dict()


def load(schema: Body, data: dict[str, Any]) -> dict[str, Any]:
    """Return ``data`` checked by ``schema``, or fail with the first error as a 422.

    An unknown key comes first (in the order sent), then the declared
    fields in the order the schema declares them.
    """
    try:
        loaded: dict[str, Any] = schema.load(data)
        return loaded
    except ValidationError as exc:
        field, message = _first_error(schema, data, exc.normalized_messages())  # type: ignore[no-untyped-call]
        invalid(field, message)


def _first_error(schema: Schema, data: Mapping[str, Any], messages: Mapping[str, Any]) -> tuple[str | None, str]:
    """Return the field and message to report out of marshmallow's ``messages``.

    A check of the whole schema (marshmallow's ``@validates_schema``) names no field.
    """
    keys = body_keys(schema)
    unknown = [key for key in data if key not in keys]
    for name in [*unknown, *keys]:
        if name in messages:
            return name, messages[name][0]
    if "_schema" in messages:
        return None, messages["_schema"][0]
    raise AssertionError(f"no field error in {messages!r}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Refuse an object that names a key twice: which value counts would be a guess (RFC 8259: names SHOULD differ)."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"the key {key!r} appears more than once")
        data[key] = value
    return data


def _integer(digits: str) -> int:
    """Parse a JSON integer; one past Python's digit limit becomes a power of ten of its sign and length.

    Such a number is valid JSON, and out of every field's range: this way the
    field's own range check refuses it (a 422 naming the field), instead of a
    400 quoting Python's advice to raise the limit. Its exact value is never kept.
    """
    try:
        return int(digits)
    except ValueError:  # past the limit (PYTHONINTMAXSTRDIGITS may lift it, then every integer is exact)
        magnitude: int = 10 ** (len(digits.lstrip("-")) - 1)
        return -magnitude if digits.startswith("-") else magnitude


def json_object() -> dict[str, Any]:
    """Return the request body as a JSON object; malformed, empty or non-object JSON is a 400."""
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:  # said like the chunked case below, not in werkzeug's words
        _too_large()
    _refuse_a_longer_stream(len(raw))
    if not raw.strip():
        abort(400, description="Request body must be a JSON object; it is empty.")
    try:
        data = json.loads(raw, object_pairs_hook=_unique_keys, parse_int=_integer)
    except (ValueError, RecursionError) as exc:
        sent_as = request.mimetype
        # A form post or a file, sent as what it is: say that JSON is asked for (any Content-Type is
        # accepted with a JSON body; curl -d labels JSON as a form).
        hint = f" (it was sent as {sent_as}; send a JSON object)" if sent_as and "json" not in sent_as else ""
        abort(400, description=f"Request body is not valid JSON: {_short(exc)}{hint}")
    if not isinstance(data, dict):
        abort(400, description=f"Request body must be a JSON object, not {_json_type(data)}.")
    return data


def _refuse_a_longer_stream(read: int) -> None:
    """413 for a chunked body longer than MAX_CONTENT_LENGTH.

    With no Content-Length, werkzeug stops reading at the limit and returns
    what it read, which would then be parsed as if it were the whole body.
    """
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    at_limit = request.content_length is None and limit is not None and read >= limit
    if at_limit and request.environ["wsgi.input"].read(1):
        _too_large()


def _too_large() -> NoReturn:
    abort(413, description=f"The body is larger than {current_app.config.get('MAX_CONTENT_LENGTH')} bytes.")


def _short(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split("\n", 1)[0][:200]


def _json_type(value: Any) -> str:
    """Return what ``value`` is called in JSON, with its article: ``a number``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _messages(expected: str, **more: str) -> dict[str, Any]:
    """Return a field's messages: missing, null or another JSON type than ``expected`` (``a string``), and ``more``."""
    return {
        "required": "is required",
        "null": f"must be {expected}, not null",
        "invalid": f"must be {expected}, not {{type}}",
        **more,
    }


class Text(fields.String):
    """A string of ``min_len`` to ``max_len`` characters, stripped unless ``strip=False``.

    NUL characters and lone surrogates (valid JSON, invalid UTF-8) are
    refused: Postgres text can hold neither. The document says so too, as a
    ``pattern`` and in words.
    """

    default_error_messages = _messages(
        "a string", nul="must not contain NUL characters", surrogate="must be valid Unicode text"
    )

    def __init__(self, *, min_len: int = 1, max_len: int, strip: bool = True, **kwargs: Any) -> None:
        length = validate.Length(min_len, max_len, error="must be {min} to {max} characters long")
        described = "No NUL characters" + (
            "; surrounding whitespace is removed before the length is checked." if strip else "."
        )
        metadata = {"pattern": "^[^\\u0000]*$", "description": described, **kwargs.pop("metadata", {})}
        super().__init__(validate=[length, *kwargs.pop("validate", ())], metadata=metadata, **kwargs)
        self.strip = strip

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid", type=_json_type(value))
        if "\x00" in value:
            raise self.make_error("nul")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise self.make_error("surrogate") from None
        return value.strip() if self.strip else value


EMAIL_SHAPE = "must be an email address like name@example.com"
EMAIL_DOMAIN_SPELLING = (
    "must have its domain written plainly: no invisible characters, and no fullwidth or other compatibility "
    "forms of letters and digits"
)
# marshmallow's check (RFC 5322's shape, international addresses included):
# a@@example.com, a@example..com, ada@example.com. and invisible characters in
# the name are refused, so they cannot make a second account for the same mailbox.
_email_syntax = validate.Email(error=EMAIL_SHAPE)
# What IDNA reads as the dot between labels besides "." itself (RFC 3490, section 3.1).
IDNA_DOTS = "\u3002\uff0e\uff61"


def _email_shape(address: str) -> None:
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain.strip(".") or any(c.isspace() for c in address):
        raise ValidationError(EMAIL_SHAPE)
    _email_syntax(address)
    if not _plainly_spelled(domain):
        raise ValidationError(EMAIL_DOMAIN_SPELLING)


def _plainly_spelled(domain: str) -> bool:
    """Whether ``domain`` is one spelling only: IDNA would not map any character of it to another or to nothing.

    marshmallow's check passes a domain through IDNA, which drops a zero-width
    space or a soft hyphen, maps fullwidth letters to ASCII and reads an
    ideographic full stop as a dot: alice@exam\\u200bple.com, alice@\\uff45xample.com
    and alice@example\\u3002com are alice@example.com's mailbox, stored as other
    strings, so a second account. (Case is not a second spelling: addresses
    are stored lower-cased. The joiners U+200C and U+200D are refused too,
    though IDNA2008 allows them in some scripts' labels.)
    """
    invisible = any(stringprep.in_table_b1(c) or unicodedata.category(c) == "Cf" for c in domain)
    dotted = any(c in IDNA_DOTS for c in domain)
    return not invisible and not dotted and unicodedata.normalize("NFKC", domain) == domain


class Email(Text):
    """A plausible email address, lower-cased, so that unique means case-insensitively unique.

    The length is checked after lower-casing, which can lengthen a string
    (``İ`` becomes two characters): what is checked is what is stored.
    """

    def __init__(self, *, max_len: int, **kwargs: Any) -> None:
        described = (
            "An address like name@example.com (marshmallow's check, with a dot in the domain, which has no invisible "
            "or fullwidth characters), stored lower-cased; "
            "surrounding whitespace is removed before the length is checked."
        )
        super().__init__(max_len=max_len, validate=[_email_shape], metadata={"description": described}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        # Composed (NFC), so bu\u0308cher.de, typed decomposed, is the bücher.de it shows as.
        return unicodedata.normalize("NFC", super()._deserialize(value, attr, data, **kwargs).lower())


class Number(fields.Float):
    """A finite JSON number from ``low`` to ``high``; booleans and numeric strings are refused."""

    default_error_messages = _messages("a number", special="must be a finite number")

    def __init__(self, *, low: float, high: float, **kwargs: Any) -> None:
        bounds = validate.Range(low, high, error="must be between {min:g} and {max:g}")
        super().__init__(validate=bounds, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid", type=_json_type(value))
        try:
            result = float(value)
        except OverflowError:  # an integer too big for a float: out of any range, as the bounds check says
            return value
        if not math.isfinite(result):
            raise self.make_error("special")
        return result


def _integer_range(low: int, high: int) -> validate.Range:
    """The range check of an integer field, in the words every such field uses."""
    return validate.Range(low, high, error="must be an integer from {min} to {max}")


class Integer(fields.Integer):
    """A JSON integer from ``low`` to ``high``; ``3.5``, ``1e2``, booleans and strings are refused."""

    default_error_messages = _messages(
        "an integer",
        fraction="must be written as an integer, like 12, without a decimal point or exponent",
        special="must be an integer, not NaN or Infinity",
    )

    def __init__(self, *, low: int, high: int, **kwargs: Any) -> None:
        bounds = _integer_range(low, high)
        described = "Written as an integer: 12, not 12.0 (which JSON Schema would count as an integer)."
        super().__init__(validate=bounds, metadata={"description": described}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int:
        if isinstance(value, float):  # 12.5, 12.0 or 1e1, as the client wrote it or not
            raise self.make_error("fraction" if math.isfinite(value) else "special")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid", type=_json_type(value))
        return value


class QueryInteger(fields.Integer):
    """An integer in a query string from ``low`` to ``high``, written in ASCII digits: no plus sign, no leading
    zero (a minus sign is read, so that the range check says what is wrong)."""

    default_error_messages = _messages(
        "digits",
        invalid="must be written in digits, like 10, without a plus sign, leading zero or decimal point",
    )

    def __init__(self, *, low: int, high: int, **kwargs: Any) -> None:
        bounds = _integer_range(low, high)
        super().__init__(validate=bounds, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int:
        if not isinstance(value, str) or not re.fullmatch(f"-?{AsciiInt.regex}", value) or value == "-0":
            raise self.make_error("invalid")
        return _integer(value)  # negative or thousands of digits: out of range, as the bounds check then says


class AsciiInt(IntegerConverter):
    """Flask's ``<int:...>`` with one spelling per number: ASCII digits, no leading zero.

    werkzeug's matches any Unicode digit and leading zeros, so /locations/01
    and /locations/\u0661 (an Arabic-Indic 1) were location 1 too.
    """

    regex = r"(?:0|[1-9][0-9]*)"
