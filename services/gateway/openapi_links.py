"""Links in the OpenAPI document: which answer names the resource other operations take.

A client (or schemathesis' stateful phase) follows them: the classifier a ``POST`` trained
is read, used and deleted by its name; an uploaded batch file is read, described and
deleted by its id; a batch is read and cancelled by its id. Collections and API keys need
none here: their create and read operations share the path parameter's name.
"""

from __future__ import annotations

from litestar.openapi.spec import Link, OpenAPI, OpenAPIResponse, Operation

_LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str]]] = {
    ("post", "/v1/classifiers", "201"): {
        "DescribeClassifier": ("V1ClassifiersNameDescribe", "name"),
        "UseClassifier": ("V1ClassifiersNamePredictPredict", "name"),
        "DeleteClassifier": ("V1ClassifiersNameRemove", "name"),
    },
    ("post", "/v1/files", "200"): {
        "DescribeFile": ("V1FilesFileIdDescribe", "file_id"),
        "ReadFile": ("V1FilesFileIdContentContent", "file_id"),
        "DeleteFile": ("V1FilesFileIdRemove", "file_id"),
    },
    ("post", "/v1/batches", "200"): {
        "DescribeBatch": ("V1BatchesBatchIdDescribe", "batch_id"),
        "CancelBatch": ("V1BatchesBatchIdCancelCancel", "batch_id"),
    },
}
"""(method, path, status) → link name → (operationId, its path parameter)."""

_SOURCE_FIELD = {"name": "$response.body#/name", "file_id": "$response.body#/id"}


def document_links(openapi: OpenAPI) -> None:
    known = {
        operation.operation_id
        for item in (openapi.paths or {}).values()
        for operation in (item.get, item.post, item.delete)
        if isinstance(operation, Operation)
    }
    for (method, path, status), links in _LINKS.items():
        item = (openapi.paths or {}).get(path)
        operation = getattr(item, method, None) if item is not None else None
        if not isinstance(operation, Operation):
            continue
        response = (operation.responses or {}).get(status)
        if not isinstance(response, OpenAPIResponse):
            continue
        response.links = {
            **(response.links or {}),
            **{
                name: Link(
                    operation_id=target,
                    parameters={parameter: _SOURCE_FIELD.get(parameter, "$response.body#/id")},
                )
                for name, (target, parameter) in links.items()
                if target in known
            },
        }
