"""Toxiproxy's toxics as sockshock's fault models, and fault models from their
Python spelling (``--fault``, the ``sockshock`` toxic).

A toxic is toxiproxy's JSON object ``{"name", "type", "stream", "toxicity",
"attributes"}``; :func:`check_toxic` checks one as toxiproxy does (its defaults:
stream ``downstream``, toxicity 1, name ``<type>_<stream>``) and :func:`models_of`
turns it into models: ``stream`` ``upstream`` (client to server) is sockshock's
``"in"``, ``downstream`` is ``"out"``; ``toxicity`` is the model's probability,
drawn once per connection (``per="connection"``), as toxiproxy draws it per link.
The table in docs/reference/proxy.md says which model each toxic becomes.
"""

from __future__ import annotations

import ast
import dataclasses
import math
from typing import Any

from sockshock._faults import (
    Bandwidth,
    EOFAfter,
    FaultModel,
    Latency,
    PartialReads,
    PartialWrites,
    ResetAfter,
    SlowClient,
    SlowReader,
    Stall,
    model_named,
)
from sockshock._util import InvalidArgument, did_you_mean

__all__ = [
    "STREAMS",
    "TOXIC_TYPES",
    "ApiError",
    "check_toxic",
    "models_of",
    "parse_fault",
    "update_toxic",
]

#: Toxiproxy's streams, as sockshock's directions.
STREAMS = {"upstream": "in", "downstream": "out"}

#: Each toxic type and its attributes with their defaults (what toxiproxy shows).
#: ``sockshock``: sockshock's own models, ``{"model": "PartialReads(3)"}`` or
#: ``{"models": [...]}``, each with its own direction.
TOXIC_TYPES: dict[str, dict[str, Any]] = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    "sockshock": {"model": None, "models": None},
}


class ApiError(Exception):
    """A request toxiproxy's API refuses: its message and HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def parse_fault(text: str, *, source: str = "--fault") -> FaultModel:
    """A fault model from its Python spelling, e.g. ``"PartialReads(3)"`` or
    ``"Latency(0.01, direction='out')"`` (literal arguments only; nothing is
    evaluated).

    Raises:
        InvalidArgument: naming the text and what is wrong with it.
    """
    where = f"{source} {text!r}"
    if not isinstance(text, str):
        raise InvalidArgument(f"{where}: expected a fault model call such as 'PartialReads(3)'")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        tree = None
    call = tree.body if tree is not None else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
        raise InvalidArgument(f"{where}: expected a fault model call such as 'PartialReads(3)'")
    cls = model_named(call.func.id, where=where)
    try:
        args = [ast.literal_eval(arg) for arg in call.args]
        kwargs = {}
        for keyword in call.keywords:
            if keyword.arg is None:
                raise ValueError("**")
            if keyword.arg in kwargs:  # Python refuses it when compiling, ast.parse() does not
                raise InvalidArgument(f"{where}: {keyword.arg}= is given twice")
            kwargs[keyword.arg] = ast.literal_eval(keyword.value)
    except InvalidArgument:
        raise
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise InvalidArgument(
            f"{where}: arguments must be literals (numbers, strings, "
            "lists), given by position or name"
        ) from None
    try:
        return cls(*args, **kwargs)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{where}: {exc}") from None


def _bad(message: str) -> ApiError:
    return ApiError(f"bad request body: {message}", 400)


def _number(toxic: dict[str, Any], key: str, *, integer: bool = True) -> float:
    value = toxic["attributes"].get(key, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(f"attribute {key}={value!r} of toxic {toxic['name']!r} is not a number")
    if value < 0:
        raise _bad(f"attribute {key}={value!r} of toxic {toxic['name']!r} is negative")
    if integer and value != int(value):
        raise _bad(f"attribute {key}={value!r} of toxic {toxic['name']!r} is not an integer")
    return float(value)


def check_toxic(body: Any) -> dict[str, Any]:
    """A new toxic from a request body, with toxiproxy's defaults; its models are
    made once here, so that a toxic that cannot become models is refused (400)."""
    if not isinstance(body, dict):
        raise _bad(f"expected a JSON object, got {body!r}")
    kind = body.get("type")
    stream = body.get("stream", "downstream")
    if stream not in STREAMS:
        raise ApiError("stream was invalid, can be either upstream or downstream", 400)
    if not isinstance(kind, str) or kind not in TOXIC_TYPES:
        hint = did_you_mean(kind, TOXIC_TYPES) if isinstance(kind, str) else ""
        raise ApiError(f"invalid toxic type: {kind!r}; {hint}known: {', '.join(TOXIC_TYPES)}", 400)
    name = body.get("name") or f"{kind}_{stream}"
    if not isinstance(name, str):
        raise _bad(f"toxic name {name!r} is not a string")
    toxicity = body.get("toxicity", 1.0)
    attributes = body.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise _bad(f"attributes {attributes!r} of toxic {name!r} are not an object")
    _check_attributes(kind, attributes, name)
    toxic = {
        "name": name,
        "type": kind,
        "stream": stream,
        "toxicity": toxicity,
        "attributes": {**_defaults(kind), **attributes},
    }
    _check_toxicity(toxic)
    models_of(toxic)
    return toxic


def update_toxic(toxic: dict[str, Any], body: Any) -> dict[str, Any]:
    """The toxic with a request's new attributes and toxicity (toxiproxy's update:
    what the body gives replaces, the rest stays)."""
    if not isinstance(body, dict):
        raise _bad(f"expected a JSON object, got {body!r}")
    attributes = body.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise _bad(f"attributes {attributes!r} of toxic {toxic['name']!r} are not an object")
    _check_attributes(toxic["type"], attributes, toxic["name"])
    updated = {
        **toxic,
        "toxicity": body.get("toxicity", toxic["toxicity"]),
        "attributes": {**toxic["attributes"], **attributes},
    }
    _check_toxicity(updated)
    models_of(updated)
    return updated


def _check_attributes(kind: str, attributes: dict[str, Any], name: str) -> None:
    """Refuse an attribute the toxic's type does not have. Toxiproxy ignores unknown
    fields (Go's JSON decoding), so ``{"latncy": 1000}`` is a 0 ms latency toxic
    there, echoed back as if it were in force: a test then passes with no fault
    at all. A testing tool says so instead (400, with the attribute meant)."""
    known = TOXIC_TYPES[kind]
    for key in attributes:
        if key not in known:
            hint = did_you_mean(key, known)
            raise _bad(
                f"toxic {name!r} of type {kind!r} has no attribute {key!r}; {hint}its "
                f"attributes: {', '.join(known)}"
            )


def _defaults(kind: str) -> dict[str, Any]:
    return {k: v for k, v in TOXIC_TYPES[kind].items() if v is not None}


def _check_toxicity(toxic: dict[str, Any]) -> None:
    toxicity = toxic["toxicity"]
    if (
        isinstance(toxicity, bool)
        or not isinstance(toxicity, (int, float))
        or not 0 <= toxicity <= 1
    ):
        raise _bad(f"toxicity={toxicity!r} of toxic {toxic['name']!r} must be a number in [0, 1]")


def models_of(toxic: dict[str, Any]) -> list[FaultModel]:
    """The fault models a (checked) toxic stands for."""
    kind = toxic["type"]
    direction = STREAMS[toxic["stream"]]
    scope: dict[str, Any] = {}
    if toxic["toxicity"] < 1:
        scope = {"probability": float(toxic["toxicity"]), "per": "connection"}
    try:
        models = _models(toxic, kind, direction, scope)
    except InvalidArgument as exc:  # named as given: the models' units are not the API's
        raise _bad(
            f"toxic {toxic['name']!r} with attributes {toxic['attributes']!r}: {exc}"
        ) from None
    return models


def _models(
    toxic: dict[str, Any], kind: str, direction: str, scope: dict[str, Any]
) -> list[FaultModel]:
    if kind == "latency":
        latency, jitter = _number(toxic, "latency"), _number(toxic, "jitter")
        if not latency and not jitter:
            return []
        return [Latency(latency / 1000, jitter / 1000, direction, **scope)]
    if kind == "bandwidth":
        rate = _number(toxic, "rate")
        return [Bandwidth(rate * 1000, direction, **scope)] if rate else []
    if kind == "slow_close":
        delay = _number(toxic, "delay") / 1000
        return [Latency(delay, 0.0, direction, close_only=True, **scope)] if delay else []
    if kind == "timeout":
        timeout = _number(toxic, "timeout")
        return [Stall(0, direction, timeout / 1000 if timeout else None, **scope)]
    if kind == "reset_peer":
        return [ResetAfter(0, direction, _number(toxic, "timeout") / 1000, **scope)]
    if kind == "limit_data":
        return [EOFAfter(int(_number(toxic, "bytes")), direction, **scope)]
    if kind == "slicer":
        average = int(_number(toxic, "average_size"))
        variation = int(_number(toxic, "size_variation"))
        pause = _number(toxic, "delay") / 1e6  # microseconds
        if average < 1:
            raise _bad(f"attribute average_size of toxic {toxic['name']!r} must be at least 1")
        if pause:
            slow = SlowClient if direction == "in" else SlowReader
            return [slow(chunk=average, pause=pause, **scope)]
        chunks = PartialReads if direction == "in" else PartialWrites
        return [chunks(average + variation, **scope)]
    return _sockshock_models(toxic, scope)


def _sockshock_models(toxic: dict[str, Any], scope: dict[str, Any]) -> list[FaultModel]:
    attributes = toxic["attributes"]
    texts = attributes.get("models")
    if texts is None:
        texts = [] if attributes.get("model") is None else [attributes["model"]]
    if not isinstance(texts, list) or not texts:
        raise _bad(
            f"toxic {toxic['name']!r} of type 'sockshock' needs attributes "
            f"{{'model': 'PartialReads(3)'}} or {{'models': [...]}}, not {attributes!r}"
        )
    source = f"toxic {toxic['name']!r}"
    try:
        models = [parse_fault(text, source=source) for text in texts]
    except InvalidArgument as exc:
        raise _bad(str(exc)) from None
    if scope:
        models = [dataclasses.replace(model, **scope) for model in models]
    return models
