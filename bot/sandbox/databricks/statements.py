"""SQL warehouses and statement execution (disposition INLINE, format JSON_ARRAY) over the
audit table: waits, a stopped warehouse starting, row and byte limits, chunks."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from bot.sandbox.databricks.errors import ApiError, bad_request, json_body, not_found
from bot.sandbox.databricks.sql import SqlError, SqlParser, render_value, run_query
from bot.sandbox.databricks.state import INLINE_LIMIT_MESSAGE, DatabricksWorkspace, Principal, Statement
from bot.sandbox.server import Request, Response


class StatementApi(DatabricksWorkspace):
    """`/api/2.0/sql/warehouses/...` and `/api/2.0/sql/statements/...`."""

    chunk_rows: int
    inline_byte_limit: int

    # SQL warehouses and statements --------------------------------------------------------------
    def _warehouse_json(self, id: str) -> dict[str, Any]:
        return {
            "id": id,
            "name": f"Sandbox warehouse {id}",
            "state": self._warehouses[id],
            "warehouse_type": "PRO",
            "enable_serverless_compute": True,
        }

    def _list_warehouses(self, request: Request, caller: Principal) -> Response:
        return Response(body={"warehouses": [self._warehouse_json(id) for id in self._warehouses]})

    def _get_warehouse(self, request: Request, caller: Principal, id: str) -> Response:
        if id not in self._warehouses:
            raise not_found(f"Warehouse {id} does not exist.")
        return Response(body=self._warehouse_json(id))

    def _execute_statement(self, request: Request, caller: Principal) -> Response:
        body = json_body(request)
        sql, warehouse_id = body.get("statement"), body.get("warehouse_id")
        if not sql or not warehouse_id:
            raise bad_request("statement and warehouse_id are required.")
        if body.get("disposition", "INLINE") != "INLINE" or body.get("format", "JSON_ARRAY") != "JSON_ARRAY":
            raise bad_request("The sandbox emulates only disposition INLINE with format JSON_ARRAY.")
        wait = _wait_seconds(body.get("wait_timeout", "10s"))
        state = self._warehouses.get(warehouse_id)
        if state is None or state in ("DELETED", "DELETING"):
            raise not_found(f"Warehouse {warehouse_id} does not exist.")  # *unconfirmed* status/code
        statement = self._run_statement(sql, body)
        self._statements[statement.id] = statement
        if state != "RUNNING":  # the warehouse starts; the statement waits for it
            self._warehouses[warehouse_id] = "RUNNING"
            if wait > 0 and body.get("on_wait_timeout") == "CANCEL":
                statement.state = "CANCELED"
                return Response(body=self._statement_json(statement))
            return Response(body=self._statement_json(statement, pending=True))
        if wait == 0:
            return Response(body=self._statement_json(statement, pending=True))
        return Response(body=self._statement_json(statement))

    def _run_statement(self, sql: str, body: dict[str, Any]) -> Statement:
        statement = Statement(id=str(uuid.uuid4()), state="SUCCEEDED")
        try:
            params = _statement_params(body.get("parameters"))
            query = SqlParser(sql).parse()
            rows = run_query(query, self._audit, params)
        except SqlError as error:
            statement.state = "FAILED"
            statement.error = {"error_code": "BAD_REQUEST", "message": str(error)}
            statement.sql_state = error.sql_state
            return statement
        row_limit = body.get("row_limit")
        if row_limit is not None and len(rows) > int(row_limit):
            rows, statement.truncated = rows[: int(row_limit)], True
        statement.columns = [
            {
                "name": item.output_name,
                "type_name": item.type_name,
                "type_text": item.type_text,
                "position": index,
            }
            for index, item in enumerate(query.items)
        ]
        types = [item.type_name for item in query.items]
        rendered = [
            [render_value(value, kind) for value, kind in zip(row, types, strict=True)] for row in rows
        ]
        sizes = [len(json.dumps(row, separators=(",", ":")).encode()) for row in rendered]
        byte_limit = body.get("byte_limit")
        if byte_limit is not None and sum(sizes) > int(byte_limit):
            # "If the result was truncated due to the byte limit, then `truncated` in the response
            # is set to true" (databricks-sdk `service/sql.py`, execute_statement's byte_limit)
            kept, total = 0, 0
            while kept < len(sizes) and total + sizes[kept] <= int(byte_limit):
                total, kept = total + sizes[kept], kept + 1
            rendered, sizes, statement.truncated = rendered[:kept], sizes[:kept], True
        if sum(sizes) > self.inline_byte_limit:
            statement.state = "FAILED"
            statement.error = {
                "error_code": "BAD_REQUEST",
                "message": INLINE_LIMIT_MESSAGE.format(limit=self.inline_byte_limit),
            }
            return statement
        size = max(self.chunk_rows, 1)
        statement.chunks = [rendered[i : i + size] for i in range(0, len(rendered), size)]
        return statement

    def _statement(self, statement_id: str) -> Statement:
        statement = self._statements.get(statement_id)
        if statement is None:
            raise not_found(f"Statement {statement_id} does not exist.")
        return statement

    def _statement_json(self, statement: Statement, pending: bool = False) -> dict[str, Any]:
        if pending:
            return {"statement_id": statement.id, "status": {"state": "PENDING"}}
        body: dict[str, Any] = {"statement_id": statement.id, "status": {"state": statement.state}}
        if statement.state == "FAILED":
            body["status"]["error"] = statement.error
            if statement.sql_state:
                body["status"]["sql_state"] = statement.sql_state
        if statement.state != "SUCCEEDED":
            return body
        offsets = [sum(len(c) for c in statement.chunks[:i]) for i in range(len(statement.chunks))]
        body["manifest"] = {
            "format": "JSON_ARRAY",
            "schema": {"column_count": len(statement.columns), "columns": statement.columns},
            "total_chunk_count": len(statement.chunks),
            "chunks": [
                {"chunk_index": i, "row_offset": offsets[i], "row_count": len(c)}
                for i, c in enumerate(statement.chunks)
            ],
            "total_row_count": statement.row_count,
            "truncated": statement.truncated,
        }
        body["result"] = (
            self._chunk_json(statement, 0)
            if statement.chunks
            else {"chunk_index": 0, "row_offset": 0, "row_count": 0}
        )
        return body

    def _chunk_json(self, statement: Statement, index: int) -> dict[str, Any]:
        chunk = statement.chunks[index]
        data = {
            "chunk_index": index,
            "row_offset": sum(len(c) for c in statement.chunks[:index]),
            "row_count": len(chunk),
            "data_array": chunk,
        }
        if index + 1 < len(statement.chunks):
            data["next_chunk_index"] = index + 1
            link = f"/api/2.0/sql/statements/{statement.id}/result/chunks/{index + 1}"
            data["next_chunk_internal_link"] = link
        return data

    def _get_statement(self, request: Request, caller: Principal, statement_id: str) -> Response:
        return Response(body=self._statement_json(self._statement(statement_id)))

    def _cancel_statement(self, request: Request, caller: Principal, statement_id: str) -> Response:
        self._statement(statement_id).state = "CANCELED"
        return Response(body={})

    def _get_chunk(self, request: Request, caller: Principal, statement_id: str, index: str) -> Response:
        statement = self._statement(statement_id)
        if statement.state != "SUCCEEDED":
            raise ApiError(
                400, "INVALID_STATE", f"Statement {statement_id} is {statement.state}; it has no result."
            )
        if int(index) >= len(statement.chunks):
            raise bad_request(
                f"Chunk index {index} is out of range: the result has {len(statement.chunks)} chunks."
            )
        return Response(body=self._chunk_json(statement, int(index)))


def _statement_params(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, list) or not all(isinstance(p, dict) and p.get("name") for p in raw):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", "parameters must be a list of {name, value, type}.")
    return {p["name"]: p.get("value") for p in raw}


def _wait_seconds(wait_timeout: Any) -> int:
    match = re.fullmatch(r"(\d+)s", str(wait_timeout))
    seconds = int(match.group(1)) if match else -1
    if seconds != 0 and not 5 <= seconds <= 50:
        raise bad_request(f"wait_timeout must be 0s or between 5s and 50s, got {wait_timeout!r}.")
    return seconds
