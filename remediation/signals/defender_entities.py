"""Targets from a Defender alert's Entities graph and ExtendedProperties map.

Entities arrive as a list whose items, and whose fields, may be `{"$ref": id}` pointers to an
object carrying `"$id": id` anywhere in the list (ids may repeat; the first wins). Pointers are
followed a bounded number of hops, so a cyclic or dangling graph reads as absent, never as a crash.
ExtendedProperties keys are undocumented per alert type: only the keys named here feed targets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from remediation.signals.fields import cluster_id, parse_image_reference, registry_id
from remediation.signals.model import Targets

_MAX_HOPS = 4
_MAX_NODES = 10_000

# ExtendedProperties keys, compared lower-cased without spaces or underscores.
_RBAC_KEYS = {
    "clusterrolebindingname": "ClusterRoleBinding",
    "rolebindingname": "RoleBinding",
    "clusterrolename": "ClusterRole",
    "rolename": "Role",
}
_RBAC_RESOURCE_TYPES = {
    "clusterrolebindings": "ClusterRoleBinding",
    "clusterrolebinding": "ClusterRoleBinding",
    "rolebindings": "RoleBinding",
    "rolebinding": "RoleBinding",
    "clusterroles": "ClusterRole",
    "clusterrole": "ClusterRole",
    "roles": "Role",
    "role": "Role",
}
_PLAIN_KEYS = {
    "namespace": "namespace",
    "namespacename": "namespace",
    "podname": "pod",
    "containername": "container",
    "imagename": "image",
    "containerimage": "image",
    "nodename": "node",
}


_WANTED_KEYS = frozenset({*_RBAC_KEYS, *_PLAIN_KEYS, "resourcetype", "resourcename"})


def targets_from(*, entities: list[Any], extended: Mapping[str, str], resource_ids: Iterable[str]) -> Targets:
    found: dict[str, str] = {}
    graph = _Graph(entities)
    for entity in graph.top_level():
        _read_entity(entity, graph, found)
    _read_extended(extended, found)
    for resource_id in (*resource_ids, extended.get("EffectiveAzureResourceId", "")):
        _put(found, "cluster_resource_id", cluster_id(resource_id))
        _put(found, "registry_resource_id", registry_id(resource_id))
    if "image" in found:
        image = parse_image_reference(found["image"])
        _put(found, "registry_login_server", image.login_server)
        _put(found, "repository", image.repository)
        _put(found, "tag", image.tag)
        _put(found, "digest", image.digest)
    return Targets(**found)


def _put(found: dict[str, str], key: str, value: Any) -> None:
    if isinstance(value, str) and value and key not in found:
        found[key] = value


class _Graph:
    def __init__(self, entities: list[Any]) -> None:
        self._entities = entities
        self._by_id: dict[str, dict[str, Any]] = {}
        # Depth-first in document order (hence reversed), pushing containers only: scalars cannot
        # hold an $id, and most of an alert's values are scalars.
        stack: list[Any] = [node for node in reversed(entities) if isinstance(node, (dict, list))]
        seen = 0
        while stack and seen < _MAX_NODES:
            node = stack.pop()
            seen += 1
            values = node.values() if isinstance(node, dict) else node
            if isinstance(node, dict):
                node_id = node.get("$id")
                if isinstance(node_id, str):
                    self._by_id.setdefault(node_id, node)
            stack.extend([value for value in reversed(list(values)) if isinstance(value, (dict, list))])

    def resolve(self, node: Any) -> Any:
        for _ in range(_MAX_HOPS):
            if not (isinstance(node, dict) and "$ref" in node):
                return node
            ref = node["$ref"]
            node = self._by_id.get(ref) if isinstance(ref, str) else None
        return None if isinstance(node, dict) and "$ref" in node else node

    def top_level(self) -> Iterable[dict[str, Any]]:
        seen: set[int] = set()
        for item in self._entities:
            entity = self.resolve(item)
            if isinstance(entity, dict) and id(entity) not in seen:
                seen.add(id(entity))
                yield entity

    def field(self, entity: Mapping[str, Any], key: str) -> Any:
        return self.resolve(entity.get(key))


def _name(value: Any) -> str | None:
    """A field that is either a plain string or an entity with a Name."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        name = value.get("Name", value.get("name"))
        return name if isinstance(name, str) else None
    return None


def _read_entity(entity: Mapping[str, Any], graph: _Graph, found: dict[str, str]) -> None:
    kind = entity.get("Type", entity.get("type"))
    if not isinstance(kind, str):
        return
    kind = kind.lower()
    if kind == "k8s-cluster":
        resource = graph.field(entity, "CloudResource")
        if isinstance(resource, dict):
            _put(found, "cluster_resource_id", cluster_id(_str(resource.get("ResourceId"))))
        _put(found, "cluster_resource_id", cluster_id(_str(entity.get("ResourceId"))))
    elif kind == "azure-resource":
        resource_id = _str(entity.get("ResourceId"))
        _put(found, "cluster_resource_id", cluster_id(resource_id))
        _put(found, "registry_resource_id", registry_id(resource_id))
    elif kind == "k8s-namespace":
        _put(found, "namespace", _name(entity))
    elif kind == "k8s-pod":
        _put(found, "pod", _name(entity))
        _put(found, "namespace", _name(graph.field(entity, "Namespace")))
    elif kind == "container":
        _read_container(entity, graph, found)
    elif kind == "container-image":
        _put(found, "image", _str(entity.get("ImageId")))
    elif kind == "host":
        _put(found, "node", _str(entity.get("HostName")))


def _read_container(entity: Mapping[str, Any], graph: _Graph, found: dict[str, str]) -> None:
    _put(found, "container", _name(entity))
    image = graph.field(entity, "Image")
    _put(found, "image", image.get("ImageId") if isinstance(image, dict) else image)
    pod = graph.field(entity, "Pod")
    _put(found, "pod", _name(pod))
    if isinstance(pod, dict):
        _put(found, "namespace", _name(graph.field(pod, "Namespace")))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _read_extended(extended: Mapping[str, str], found: dict[str, str]) -> None:
    # Several spellings may normalise to one key ("Resource type" and "resourceType" both appear in
    # one real export): keep every value, first spelling first.
    normalised: dict[str, list[str]] = {}
    for key, value in extended.items():
        name = key.lower().replace(" ", "").replace("_", "")
        if name in _WANTED_KEYS:
            normalised.setdefault(name, []).append(value)
    for key, kind in _RBAC_KEYS.items():
        for value in normalised.get(key, ()):
            if value and "rbac_kind" not in found:
                found["rbac_kind"], found["rbac_name"] = kind, value
    kinds = [_RBAC_RESOURCE_TYPES.get(value.lower()) for value in normalised.get("resourcetype", ())]
    names = [value for value in normalised.get("resourcename", ()) if value]
    resource_kind = next((kind for kind in kinds if kind), None)
    if resource_kind and names and "rbac_kind" not in found:
        found["rbac_kind"], found["rbac_name"] = resource_kind, names[0]
    for key, target in _PLAIN_KEYS.items():
        for value in normalised.get(key, ()):
            _put(found, target, value)
