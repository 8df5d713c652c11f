"""The OpenAPI document, told the truth: error answers, required bodies and parameters, public paths.

quart-schema builds the document from the handlers' declarations (`document_response`,
`validate_querystring`, `validate_body`); this provider (quart-schema's documented
`openapi_provider_class` hook) adds what every handler of a kind answers alike, so that no
handler has to repeat it:

- every error answer is a problem body (`application/problem+json`, web.errors.Problem);
- a bearer operation can answer 401, 403 and 429; a body 400 (not JSON), 413 and 422; a raw
  body (`document_binary_body`, e.g. an image) 413, 415 and 422; a query string 422; a path
  parameter 404 (no such resource); every operation 503 (a dependency is unreachable);
- request bodies are required, and so are the query parameters their model requires;
- a 204 answer has no body;
- an id in the path states the range its column holds;
- the enqueueing operations (202 `Accepted`) take the `Unique-Key` header;
- the /admin/ pages (HTML, signed in with a session cookie, not a bearer token) are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any, TypeVar

from quart import current_app
from quart_schema import OpenAPIProvider
from werkzeug.routing import Rule
from werkzeug.routing.converters import BaseConverter, IntegerConverter, NumberConverter, UnicodeConverter

from web.errors import PROBLEM_JSON, Problem
from web.schemas import MAX_ID, UNIQUE_KEY_MAX

BEARER_ERRORS = (401, 403, 429)
BODY_ERRORS = (400, 413, 422)
T = TypeVar("T", bound=Callable[..., Any])
UNIQUE_KEY_HEADER = {
    "name": "Unique-Key",
    "in": "header",
    "required": False,
    "description": "As the body's `unique_key`: while a job with this key is live, it is answered instead.",
    "schema": {"type": "string", "minLength": 1, "maxLength": UNIQUE_KEY_MAX, "pattern": r"^[\x21-\x7e]+$"},
}


BINARY_BODY = "_backroom_binary_body"  # our own attribute on a handler, read by BackroomOpenAPI
BINARY_BODY_ERRORS = (413, 415, 422)


def document_binary_body(media_types: Iterable[str], *, description: str) -> Callable[[T], T]:
    """Document a handler whose body is raw bytes of these media types (quart-schema documents only models)."""

    def decorate(handler: T) -> T:
        setattr(
            handler,
            BINARY_BODY,
            {
                "description": description,
                "required": True,
                "content": {
                    media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in media_types
                },
            },
        )
        return handler

    return decorate


class IdConverter(IntegerConverter):
    """`<id:name>`: a row id, 1..2^63-1 (what a bigint column holds); another number matches no route (404)."""

    def __init__(self, map: Any) -> None:  # noqa: A002  (werkzeug's parameter name)
        super().__init__(map, min=1, max=MAX_ID)


class BackroomOpenAPI(OpenAPIProvider):
    """quart-schema's provider, with the error answers and requirements every handler shares."""

    def generate_rules(self) -> Any:
        """Every documented rule but the /admin/ pages (HTML behind a session cookie)."""
        for rule in super().generate_rules():
            if not rule.rule.startswith("/admin"):
                yield rule

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        """quart-schema's path parameter, with the bounds an `int(min=, max=)` or `string(length=)` converter sets."""
        parameter = super().build_path_parameter(name, converter)
        if type(converter) is UnicodeConverter and converter.regex != UnicodeConverter.regex:
            parameter["schema"]["pattern"] = f"^{converter.regex}$"
        if isinstance(converter, NumberConverter):
            for key, bound in (("minimum", converter.min), ("maximum", converter.max)):
                if bound is not None:
                    parameter["schema"][key] = bound
        return parameter

    def build_querystring_parameters(self, model: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """quart-schema's query parameters, marked required where the model requires them."""
        parameters, definitions = super().build_querystring_parameters(model)
        fields = getattr(model, "model_fields", {})
        for parameter in parameters:
            field = fields.get(parameter["name"])
            if field is not None and field.is_required():
                parameter["required"] = True
        return parameters, definitions

    def build_paths(self, rule: Rule) -> tuple[dict, dict]:
        """quart-schema's path objects, with the shared error answers and requirements added."""
        paths, components = super().build_paths(rule)
        built, problem_components = self.build_response_object(Problem, None)
        inline = built["content"]["application/json"]["schema"]  # how document_errors' answers come out
        components.update(problem_components, Problem=inline)
        binary = getattr(current_app.view_functions[rule.endpoint], BINARY_BODY, None)
        for operations in paths.values():
            for method, operation in operations.items():
                if binary is not None:
                    operation = {**operation, "requestBody": binary}
                operations[method] = self._complete(operation, inline, binary=binary is not None)
        return paths, components

    def _complete(self, operation: dict[str, Any], inline: dict[str, Any], *, binary: bool = False) -> dict[str, Any]:
        operation = {
            **operation,
            "responses": dict(operation["responses"]),
            "parameters": list(operation["parameters"]),
        }
        errors: set[int] = {503}
        if operation.get("security") != []:  # [] marks a public operation
            errors.update(BEARER_ERRORS)
        if binary:  # not JSON, so no 400; a wrong Content-Type is 415, bytes that are no such image 422
            errors.update(BINARY_BODY_ERRORS)
        elif "requestBody" in operation:
            operation["requestBody"] = {**operation["requestBody"], "required": True}
            errors.update(BODY_ERRORS)
        places = {parameter["in"] for parameter in operation["parameters"]}
        if "query" in places:
            errors.add(422)
        if "path" in places:
            errors.add(404)
        if "202" in {str(status) for status in operation["responses"]}:  # an enqueue: Unique-Key, checked
            operation["parameters"].append(UNIQUE_KEY_HEADER)
            errors.add(422)
        responses = operation["responses"]
        for status in sorted(errors):
            responses.setdefault(status, _problem(status))
        for status, response in list(responses.items()):
            if str(status) == "204":  # No Content: whatever model documented it, there is no body
                responses[status] = {"description": HTTPStatus.NO_CONTENT.phrase}
                continue
            if response["content"].get("application/json", {}).get("schema") == inline:  # from document_errors
                responses[status] = _problem(int(status))
        return operation


def _problem(status: int) -> dict[str, Any]:
    """The response object of an error answer: a problem body."""
    return {
        "description": HTTPStatus(status).phrase,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
