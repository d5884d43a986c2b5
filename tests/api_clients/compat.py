"""Which differences between two OpenAPI documents break a client written against the older.

Breaking: a removed path or operation; a renamed or removed operationId; a response property
removed or no longer required; a narrowed enum; a new required request property or parameter (or
an optional one made required); a changed type (a response that may now hold a type the old
document did not allow, or a request that no longer accepts one it did). Additive changes (new
operations, optional fields and parameters, response fields, enum values, the events of a stream
that was declared as a bare string) are not breaking.
"""

from __future__ import annotations

from typing import Any

METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
Schema = dict[str, Any]
MAX_DEPTH = 12
# An event stream's `schema` is that of one event (OpenAPI 3.1 has no `itemSchema`); a bare
# string said nothing about the events.
EVENT_STREAM = "text/event-stream"
OPAQUE = {"type": "string"}


class _Side:
    """One document, for resolving its `$ref`s."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def resolve(self, schema: Schema) -> Schema:
        seen: set[str] = set()
        while "$ref" in schema:
            ref = schema["$ref"]
            if ref in seen:
                break
            seen.add(ref)
            node: Any = self.spec
            for part in ref.removeprefix("#/").split("/"):
                node = node[part]
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def alternatives(self, schema: Schema) -> list[Schema]:
        schema = self.resolve(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return [alt for sub in schema[key] for alt in self.alternatives(sub)]
        return [schema]

    def types(self, schema: Schema) -> set[str]:
        found: set[str] = set()
        for alt in self.alternatives(schema):
            kind = alt.get("type")
            if isinstance(kind, list):
                found.update(kind)
            elif kind is not None:
                found.add(kind)
            elif "const" in alt or "enum" in alt:
                values = alt.get("enum", [alt.get("const")])
                found.update(_json_type(v) for v in values)
            else:
                found.add("any")
        if "integer" in found and "number" in found:
            found.discard("integer")
        return found

    def enum(self, schema: Schema) -> set[Any] | None:
        values: set[Any] = set()
        for alt in self.alternatives(schema):
            if "enum" in alt:
                values.update(alt["enum"])
            elif "const" in alt:
                values.add(alt["const"])
            elif alt.get("type") != "null":
                return None  # not restricted to listed values
        return values or None

    def properties(self, schema: Schema) -> tuple[dict[str, Schema], set[str]]:
        props: dict[str, Schema] = {}
        required: set[str] = set()
        for alt in self.alternatives(schema):
            for part in [alt, *(self.resolve(s) for s in alt.get("allOf", []))]:
                props.update(part.get("properties", {}))
                required.update(part.get("required", []))
        return props, required

    def items(self, schema: Schema) -> Schema | None:
        for alt in self.alternatives(schema):
            if "items" in alt:
                items: Schema = alt["items"]
                return items
        return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


class Comparison:
    def __init__(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.old, self.new = _Side(old), _Side(new)
        self.problems: list[str] = []
        self._seen: set[tuple[str, str, str]] = set()

    def schema(self, old: Schema, new: Schema, where: str, direction: str) -> None:
        """`direction` is `response` (the server writes it) or `request` (the client does)."""
        if where.count(".") + where.count("[]") > MAX_DEPTH:
            return  # a recursive schema: its first levels were compared already
        key = (str(old.get("$ref", id(old))), str(new.get("$ref", id(new))), direction)
        if "$ref" in old and "$ref" in new:
            if key in self._seen:
                return
            self._seen.add(key)
        old_types, new_types = self.old.types(old), self.new.types(new)
        if "any" not in old_types | new_types:
            if direction == "response" and not new_types <= old_types:
                self.problems.append(
                    f"{where}: type changed from {sorted(old_types)} to {sorted(new_types)}"
                )
            if direction == "request" and not old_types <= new_types:
                self.problems.append(
                    f"{where}: type changed from {sorted(old_types)} to {sorted(new_types)}"
                )
        old_enum, new_enum = self.old.enum(old), self.new.enum(new)
        if old_enum is not None:
            removed = old_enum - (new_enum if new_enum is not None else old_enum)
            if removed:
                self.problems.append(f"{where}: enum narrowed, {sorted(map(str, removed))} gone")
        old_props, old_required = self.old.properties(old)
        new_props, new_required = self.new.properties(new)
        for name, old_prop in old_props.items():
            path = f"{where}.{name}"
            if name not in new_props:
                self.problems.append(f"{path}: {direction} property removed")
                continue
            if direction == "response" and name in old_required and name not in new_required:
                self.problems.append(f"{path}: response property no longer always present")
            self.schema(old_prop, new_props[name], path, direction)
        if direction == "request":
            for name in sorted(new_required - old_required):
                self.problems.append(f"{where}.{name}: new required request property")
        old_items, new_items = self.old.items(old), self.new.items(new)
        if old_items is not None and new_items is not None:
            self.schema(old_items, new_items, f"{where}[]", direction)

    def operation(self, old: dict[str, Any], new: dict[str, Any], where: str) -> None:
        if old.get("operationId") != new.get("operationId"):
            self.problems.append(
                f"{where}: operationId {old.get('operationId')} became {new.get('operationId')}"
            )
        old_params = {(p["in"], p["name"].lower()): p for p in old.get("parameters", [])}
        new_params = {(p["in"], p["name"].lower()): p for p in new.get("parameters", [])}
        for key, param in new_params.items():
            name = f"{where} {key[0]} parameter {key[1]}"
            if key not in old_params:
                if param.get("required"):
                    self.problems.append(f"{name}: new required parameter")
                continue
            if param.get("required") and not old_params[key].get("required"):
                self.problems.append(f"{name}: became required")
            self.schema(old_params[key]["schema"], param["schema"], name, "request")
        old_body, new_body = old.get("requestBody"), new.get("requestBody")
        if new_body is not None:
            if new_body.get("required") and not (old_body or {}).get("required"):
                self.problems.append(f"{where}: request body became required")
            for media, content in new_body.get("content", {}).items():
                previous = (old_body or {}).get("content", {}).get(media)
                if previous is not None:
                    self.schema(previous["schema"], content["schema"], f"{where} body", "request")
        elif old_body is not None:
            pass  # a body no longer read is ignored: not breaking
        for status, response in old.get("responses", {}).items():
            if not status.startswith("2"):
                continue
            current = new.get("responses", {}).get(status)
            if current is None:
                self.problems.append(f"{where}: {status} answer removed")
                continue
            for media, content in response.get("content", {}).items():
                now = current.get("content", {}).get(media)
                if now is None:
                    self.problems.append(f"{where}: {status} {media} answer removed")
                elif media == EVENT_STREAM and content.get("schema") == OPAQUE:
                    pass  # the stream was opaque text: declaring its events takes nothing away
                elif "schema" in content and "schema" in now:
                    self.schema(content["schema"], now["schema"], f"{where} {status}", "response")


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Every change from `old` to `new` that would break a client of `old`."""
    comparison = Comparison(old, new)
    for path, old_item in old.get("paths", {}).items():
        new_item = new.get("paths", {}).get(path)
        if new_item is None:
            comparison.problems.append(f"{path}: path removed")
            continue
        for method in METHODS:
            if method not in old_item:
                continue
            where = f"{method.upper()} {path}"
            if method not in new_item:
                comparison.problems.append(f"{where}: operation removed")
                continue
            comparison.operation(old_item[method], new_item[method], where)
    return comparison.problems


def major(version: str) -> int:
    return int(version.split(".", maxsplit=1)[0])
