"""The SQL that the sandbox's statement execution answers: a subset of Databricks SQL over an
in-memory `system.access.audit` table (syntax.py: the table's columns and the query tree;
parser.py: text to query; run.py: a query over rows, and the rows' typed values).

SQL subset (anything else answers status FAILED with an error naming what is unsupported)::

    query     := SELECT item [, item ...]
                 FROM system.access.audit [[AS] alias]
                 [[LEFT [OUTER] | INNER] JOIN ( query ) [AS] alias ON column = column]
                 [WHERE predicate [AND predicate ...]]
                 [GROUP BY column [, column ...]]
                 [HAVING aggregate op value [AND ...]]
                 [ORDER BY column-or-alias-or-aggregate [ASC|DESC] [, ...]]
                 [LIMIT n]
    statement := query [;]

    item      := column | aggregate  [[AS] alias]
    aggregate := count(*) | count(column) | count(DISTINCT column) | min(column) | max(column)
    column    := [alias.] name | struct.field | map.key | map['key']
                 e.g. event_time, a.user_identity.email, response.statusCode,
                 request_params.tokenId, request_params['tokenId'], t.token_id
    predicate := column (= | != | <> | < | <= | > | >=) value
               | column [NOT] IN (value [, value ...])
               | column IS [NOT] NULL
    value     := :named_parameter | 'string' | "string" | number | TRUE | FALSE | NULL

Names are case-insensitive (map keys are not); values are compared after casting them to the
column's type (TIMESTAMP, DATE, INT, STRING), as Spark does. A join is one equality between an
audit column and a column of the sub-query (NULL never matches; LEFT keeps unmatched rows); an
unqualified name found on both sides is AMBIGUOUS_REFERENCE, as in Spark. Not supported: OR, NOT
(other than NOT IN / IS NOT NULL), parentheses in predicates, functions other than the aggregates,
SELECT DISTINCT, joins of tables, RIGHT/FULL/CROSS joins, sub-queries outside a JOIN, `SELECT *`,
positional `?` parameters.
"""

from bot.sandbox.databricks.sql.parser import SqlParser
from bot.sandbox.databricks.sql.run import normalise_audit_row, render_value, run_query
from bot.sandbox.databricks.sql.syntax import Query, SqlError

__all__ = ["Query", "SqlError", "SqlParser", "normalise_audit_row", "render_value", "run_query"]
