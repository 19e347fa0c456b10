"""Declarative mappings: a shop's own CSV / Parquet exports onto the landing contract.

A mapping file (YAML) names the shop's export tables, how they join, and one expression per
contract column; :class:`MappingAdapter` reads it and returns contract frames
(:class:`~shopflow.adapters.base.AdaptedShop`), so :func:`shopflow.adapters.load_source`
partitions and writes them as for any other adapter (``shopflow load --mapping FILE``).

Format::

    timezone: America/Sao_Paulo    # naive source timestamps are local to it (default UTC)
    tables:                        # name -> export; the names are used in expressions
      orders:
        file: exports/orders-*.csv # glob, relative to the mapping file; several files union
        format: csv                # csv | parquet (default: from the file suffix)
        delimiter: ";"             # CSV only: delimiter, decimal, encoding (utf-8, utf-16,
        decimal: ","               #   latin-1), header, quote, all_varchar,
                                   #   date_format, timestamp_format
      items: {file: exports/order_items.csv}
    entities:                      # contract entity -> how to build it
      order_lines:
        from: items
        join:                      # in order; how: inner (default) or left
          - {table: orders, on: items.order_id = orders.id}
        where: orders.status <> 'cancelled'   # a condition, or a list of them (all must hold)
        columns:                   # contract column -> expression
          order_id: orders.id      # a source column ...
          currency: {value: BRL}   # ... a constant ...
          unit_price: items.price_cents / 100.0   # ... or any DuckDB SQL expression
          country: ~               # null (only for columns that may be empty)

Rules:

- Expressions are DuckDB SQL over the joined tables (``select <expr> from items join orders
  on ... where ...``, one query per entity); each result is cast to the contract type
  (:data:`shopflow.landing.CONTRACT`). A fractional number for an INTEGER column is an error,
  never rounded. ``line_number`` may be computed, e.g. ``row_number() over (partition by
  items.order_id order by items.id)``.
- Timestamps (``ordered_at``, ``first_available_at``, ``created_at``) without a time zone are
  wall-clock times of ``timezone`` and become naive UTC, as the contract wants; timestamps
  with a time zone are converted to UTC as they are.
- Every contract column must be mapped, except the ones that may be empty
  (:data:`NULLABLE`), which are null when left out. ``order_lines`` is required; an entity
  left out or written ``customers: derived`` (``products``, ``customers``) is not landed:
  the pipeline derives it from the order lines (docs/design.md, "Landing contract").
- A join whose key matches several rows for one row of the table before it is an error (it
  would duplicate order lines).
- Every error (:class:`MappingError`) names the mapping file, the key and the rule, and is
  raised before anything is written.

``report`` counts rows read per table (``rows_read_<table>``), rows removed by ``where``
(``dropped_by_where_<entity>``) and rows per mapped entity.

Cheap to import: PyYAML and DuckDB are imported inside functions.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopflow.adapters.base import AdaptedShop
from shopflow.landing import CONTRACT, REQUIRED_ENTITIES

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

__all__ = [
    "NULLABLE",
    "EntityMapping",
    "Join",
    "Mapping",
    "MappingAdapter",
    "MappingError",
    "SourceTable",
    "parse_mapping",
    "read_mapping",
]

# Contract columns that may be left out of a mapping (they are then null).
NULLABLE: dict[str, frozenset[str]] = {
    "order_lines": frozenset({"customer_id", "country"}),
    "products": frozenset({"name", "category", "list_price"}),
    "customers": frozenset({"country"}),
}
# an optional entity written `customers: derived` is left to the pipeline, as if left out
DERIVED = "derived"
FORMATS = ("csv", "parquet")
# mapping key -> DuckDB read_csv option
CSV_OPTIONS = {
    "delimiter": "delim",
    "decimal": "decimal_separator",
    "encoding": "encoding",
    "header": "header",
    "quote": "quote",
    "all_varchar": "all_varchar",
    "date_format": "dateformat",
    "timestamp_format": "timestampformat",
}
JOIN_KINDS = ("inner", "left")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# table.column or table."Quoted Column" in a join condition (string literals removed first)
_REFERENCE_RE = re.compile(r'\b([A-Za-z_][A-Za-z0-9_]*)\.(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_]*))')
_STRING_LITERAL_RE = re.compile(r"'(?:[^']|'')*'")
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")
_UNSIGNED_INTEGER_TYPES = ("UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")


class MappingError(ValueError):
    """A mapping file that cannot be applied: names the file, the key and the rule."""

    def __init__(self, path: Path, key: str, rule: str) -> None:
        self.path = Path(path)
        self.key = key
        self.rule = rule
        super().__init__(f"{path}: {key}: {rule}")


@dataclass(frozen=True)
class SourceTable:
    """One export table: its files (glob matches, sorted), format and CSV options."""

    name: str
    files: tuple[Path, ...]
    format: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Join:
    table: str
    on: str
    how: str = "inner"


@dataclass(frozen=True)
class EntityMapping:
    """How one contract entity is built: contract column -> SQL expression (in contract
    order, every column present; a left-out nullable column is ``NULL``)."""

    entity: str
    source: str  # the ``from`` table
    joins: tuple[Join, ...]
    where: tuple[str, ...]
    columns: dict[str, str]


@dataclass(frozen=True)
class Mapping:
    path: Path
    timezone: str
    tables: dict[str, SourceTable]
    entities: dict[str, EntityMapping]


# -- parsing ---------------------------------------------------------------------------------


def _check_keys(path: Path, key: str, value: Any, allowed: tuple[str, ...] | list[str]) -> None:
    if not isinstance(value, dict):
        raise MappingError(path, key or "(file)", f"expected a mapping of keys, got {value!r}")
    unknown = [k for k in value if k not in allowed]
    if unknown:
        raise MappingError(
            path,
            f"{key}.{unknown[0]}" if key else str(unknown[0]),
            f"unknown key (expected one of {', '.join(allowed)})",
        )


def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _expression(path: Path, key: str, value: Any) -> str:
    """A column's YAML value as SQL: a string is SQL, a number or ``{value: X}`` a constant,
    ``~`` null."""
    if isinstance(value, dict):
        _check_keys(path, key, value, ("value",))
        if "value" not in value:
            raise MappingError(path, key, "a constant is written {value: X}")
        return _sql_literal(value["value"])
    if value is None or isinstance(value, (bool, int, float)):
        return _sql_literal(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise MappingError(
        path, key, f"expected a column, a SQL expression or {{value: X}}, got {value!r}"
    )


def _table(path: Path, name: str, spec: Any) -> SourceTable:
    key = f"tables.{name}"
    if not _NAME_RE.match(name):
        raise MappingError(path, key, "a table name is a plain identifier (letters, digits, _)")
    if isinstance(spec, str):
        spec = {"file": spec}
    _check_keys(path, key, spec, ("file", "format", *CSV_OPTIONS))
    pattern = spec.get("file")
    if not isinstance(pattern, str) or not pattern.strip():
        raise MappingError(path, f"{key}.file", "required: the export's file (a glob)")
    full = pattern if Path(pattern).is_absolute() else str(path.parent / pattern)
    files = tuple(sorted(Path(f) for f in glob(full, recursive=True) if Path(f).is_file()))
    if not files:
        raise MappingError(path, f"{key}.file", f"source file not found: no file matches {full}")
    fmt = spec.get("format")
    if fmt is None:
        suffixes = [s.lower() for s in files[0].suffixes]
        if suffixes[-1:] in ([".parquet"], [".pq"]):
            fmt = "parquet"
        elif ".csv" in suffixes[-2:] or suffixes[-1:] in ([".tsv"], [".txt"]):
            fmt = "csv"
        else:
            raise MappingError(
                path, f"{key}.format", f"required for {files[0].name}: csv or parquet"
            )
    if fmt not in FORMATS:
        raise MappingError(path, f"{key}.format", f"unknown format {fmt!r} (csv or parquet)")
    options = {k: v for k, v in spec.items() if k in CSV_OPTIONS}
    if options and fmt != "csv":
        raise MappingError(path, f"{key}.{next(iter(options))}", "a CSV option on a parquet table")
    return SourceTable(name, files, fmt, options)


def _entity(path: Path, entity: str, spec: Any, tables: dict[str, SourceTable]) -> EntityMapping:
    key = f"entities.{entity}"
    _check_keys(path, key, spec, ("from", "join", "where", "columns"))
    source = spec.get("from")
    if source not in tables:
        raise MappingError(
            path, f"{key}.from", f"unknown table {source!r} (tables: {', '.join(tables)})"
        )
    joins = []
    raw_joins = spec.get("join") or []
    if not isinstance(raw_joins, list):
        raw_joins = [raw_joins]
    joined = {source}
    for i, item in enumerate(raw_joins):
        jkey = f"{key}.join[{i}]"
        if isinstance(item, dict):  # YAML 1.1 reads an unquoted key `on` as true
            item = {("on" if k is True else k): v for k, v in item.items()}
        _check_keys(path, jkey, item, ("table", "on", "how"))
        table, on, how = item.get("table"), item.get("on"), item.get("how", "inner")
        if table not in tables:
            raise MappingError(
                path, f"{jkey}.table", f"unknown table {table!r} (tables: {', '.join(tables)})"
            )
        if table in joined:
            raise MappingError(path, f"{jkey}.table", f"table {table!r} is already in the query")
        if not isinstance(on, str) or not on.strip():
            raise MappingError(path, f"{jkey}.on", "required: the join condition, e.g. a.x = b.y")
        if how not in JOIN_KINDS:
            raise MappingError(path, f"{jkey}.how", f"unknown join {how!r} (inner or left)")
        joined.add(table)
        joins.append(Join(table, on.strip(), how))
    where = spec.get("where") or []
    if isinstance(where, str):
        where = [where]
    if not isinstance(where, list) or not all(isinstance(w, str) and w.strip() for w in where):
        raise MappingError(path, f"{key}.where", "expected a condition or a list of conditions")
    columns = spec.get("columns")
    if not isinstance(columns, dict):
        raise MappingError(path, f"{key}.columns", "required: contract column -> expression")
    contract = CONTRACT[entity]
    for column in columns:
        if column not in contract:
            raise MappingError(
                path,
                f"{key}.columns.{column}",
                f"unknown contract column (the {entity} columns: {', '.join(contract)})",
            )
    missing = [c for c in contract if c not in columns and c not in NULLABLE[entity]]
    if missing:
        raise MappingError(
            path,
            f"{key}.columns.{missing[0]}",
            f"missing required column (required: {', '.join(missing)})",
        )
    expressions = {}
    for column in contract:
        ckey = f"{key}.columns.{column}"
        expr = _expression(path, ckey, columns.get(column))
        if expr == "NULL" and column not in NULLABLE[entity]:
            raise MappingError(path, ckey, "may not be null")
        expressions[column] = expr
    return EntityMapping(entity, source, tuple(joins), tuple(w.strip() for w in where), expressions)


def parse_mapping(path: Path) -> Mapping:
    """Read and check a mapping file (its syntax, names and files; not the data)."""
    import yaml

    path = Path(path).resolve()
    if not path.is_file():
        raise MappingError(path, "(file)", "mapping file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise MappingError(path, "(file)", f"not valid YAML: {exc}") from None
    _check_keys(path, "", raw, ("timezone", "tables", "entities"))
    timezone = raw.get("timezone", "UTC")
    try:
        zoneinfo.ZoneInfo(str(timezone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise MappingError(path, "timezone", f"unknown time zone {timezone!r}") from None
    raw_tables = raw.get("tables")
    if not isinstance(raw_tables, dict) or not raw_tables:
        raise MappingError(path, "tables", "required: at least one source table")
    tables = {str(name): _table(path, str(name), spec) for name, spec in raw_tables.items()}
    raw_entities = raw.get("entities")
    if not isinstance(raw_entities, dict):
        raise MappingError(path, "entities", "required: the contract entities to build")
    _check_keys(path, "entities", raw_entities, tuple(CONTRACT))
    for entity in REQUIRED_ENTITIES:
        if raw_entities.get(entity, DERIVED) == DERIVED:
            raise MappingError(path, f"entities.{entity}", "required entity is not mapped")
    entities = {
        entity: _entity(path, entity, raw_entities[entity], tables)
        for entity in CONTRACT
        if raw_entities.get(entity, DERIVED) != DERIVED
    }
    return Mapping(path, str(timezone), tables, entities)


# -- applying --------------------------------------------------------------------------------


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _load_table(con: duckdb.DuckDBPyConnection, mapping: Mapping, table: SourceTable) -> int:
    import duckdb

    files = "[" + ", ".join(_sql_literal(str(f)) for f in table.files) + "]"
    if table.format == "parquet":
        reader = f"read_parquet({files}, union_by_name = true)"
    else:
        options = "".join(
            f", {CSV_OPTIONS[k]} = {_sql_literal(v)}" for k, v in table.options.items()
        )
        reader = f"read_csv({files}, union_by_name = true{options})"
    try:
        con.execute(f"create table {_quote(table.name)} as select * from {reader}")
    except duckdb.Error as exc:
        raise MappingError(
            mapping.path, f"tables.{table.name}", f"cannot read {len(table.files)} file(s): {exc}"
        ) from None
    return con.execute(f"select count(*) from {_quote(table.name)}").fetchone()[0]


def _columns_of(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [row[0] for row in con.execute(f"describe {_quote(table)}").fetchall()]


def _check_join_keys(con: duckdb.DuckDBPyConnection, mapping: Mapping, spec: EntityMapping) -> None:
    """Each ``table.column`` of a join condition names a table of the query and a column it
    has: the error lists the table's columns."""
    in_query = [spec.source]
    for i, join in enumerate(spec.joins):
        in_query.append(join.table)
        key = f"entities.{spec.entity}.join[{i}].on"
        for match in _REFERENCE_RE.finditer(_STRING_LITERAL_RE.sub("''", join.on)):
            table, column = match.group(1), match.group(2) or match.group(3)
            if table not in in_query:
                raise MappingError(
                    mapping.path,
                    key,
                    f"join key {table}.{column}: table {table!r} is not in the query before "
                    f"this join (in the query: {', '.join(in_query)})",
                )
            found = _columns_of(con, table)
            if column not in found:
                raise MappingError(
                    mapping.path,
                    key,
                    f"join key {table}.{column} missing: table {table} has no column "
                    f"{column!r} (its columns: {', '.join(found)})",
                )


def _from_clause(spec: EntityMapping, joins: int | None = None) -> str:
    sql = f"from {_quote(spec.source)}"
    for join in spec.joins[:joins]:
        sql += f" {join.how} join {_quote(join.table)} on ({join.on})"
    return sql


def _where_clause(spec: EntityMapping) -> str:
    return " where " + " and ".join(f"({w})" for w in spec.where) if spec.where else ""


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return con.execute(f"select count(*) {sql}").fetchone()[0]


def _run(con, mapping: Mapping, key: str, what: str, sql: str):
    import duckdb

    try:
        return con.execute(sql)
    except duckdb.Error as exc:
        raise MappingError(mapping.path, key, f"bad {what}: {exc}") from None


def _typed(expr: str, source_type: str, target: str, timezone: str) -> str:
    """``expr`` as the contract ``target`` type; timestamps as naive UTC."""
    if target == "TIMESTAMP":
        if source_type.startswith("TIMESTAMP WITH TIME ZONE"):
            return f"timezone('UTC', {expr})"
        if timezone == "UTC":
            return f"cast({expr} as TIMESTAMP)"
        return f"timezone('UTC', timezone({_sql_literal(timezone)}, cast({expr} as TIMESTAMP)))"
    if target.startswith("DECIMAL"):
        # the contract's precision, handed over as a float as the other adapters do
        return f"cast(cast({expr} as {target}) as DOUBLE)"
    return f"cast({expr} as {target})"


def _entity_frame(con, mapping: Mapping, spec: EntityMapping, report: dict[str, int]):
    import pandas as pd

    base = f"entities.{spec.entity}"
    _check_join_keys(con, mapping, spec)
    before = _count(con, f"from {_quote(spec.source)}")
    for i, join in enumerate(spec.joins):
        after = _run(
            con,
            mapping,
            f"{base}.join[{i}]",
            "join",
            f"select count(*) {_from_clause(spec, i + 1)}",
        ).fetchone()[0]
        if after > before:
            raise MappingError(
                mapping.path,
                f"{base}.join[{i}]",
                f"join {join.table} on {join.on} matches several {join.table} rows for some rows "
                f"({before} rows became {after}): its key is not unique",
            )
        before = after
    from_sql = _from_clause(spec)
    where_sql = _where_clause(spec)
    for i, condition in enumerate(spec.where):
        _run(
            con,
            mapping,
            f"{base}.where[{i}]",
            "condition",
            f"select count(*) {from_sql} where ({condition})",
        )
    kept = _count(con, from_sql + where_sql)
    report[f"dropped_by_where_{spec.entity}"] = before - kept

    selected = []
    for column, target in CONTRACT[spec.entity].items():
        key = f"{base}.columns.{column}"
        expr = spec.columns[column]
        source_type = _run(
            con, mapping, key, "expression", f"describe select {expr} as c {from_sql}{where_sql}"
        ).fetchone()[1]
        if target == "INTEGER" and not source_type.startswith(
            (*_INTEGER_TYPES, *_UNSIGNED_INTEGER_TYPES, '"NULL"')
        ):
            # DuckDB's cast rounds 2.5 (number or text) to 3: refuse it instead
            number = f"try_cast(({expr}) as DOUBLE)"
            fractional = con.execute(
                f"select ({expr})::VARCHAR {from_sql}{where_sql}"
                f"{' and' if where_sql else ' where'} {number} <> trunc({number}) limit 3"
            ).fetchall()
            if fractional:
                examples = [row[0] for row in fractional]
                raise MappingError(
                    mapping.path,
                    key,
                    f"not an integer ({target} in the contract), e.g. {examples}: numbers are "
                    "never rounded on the way in",
                )
        typed = _typed(f"({expr})", source_type, target, mapping.timezone)
        # one cast at a time, so a value that does not convert names its column
        _run(
            con,
            mapping,
            key,
            f"value for {column} ({target})",
            f"select count({typed}) {from_sql}{where_sql}",
        )
        selected.append(f"{typed} as {_quote(column)}")

    frame = con.execute(f"select {', '.join(selected)} {from_sql}{where_sql}").df()
    for column, target in CONTRACT[spec.entity].items():
        if target == "VARCHAR":
            frame[column] = frame[column].astype("object").where(frame[column].notna(), None)
        elif target == "TIMESTAMP":
            frame[column] = frame[column].astype("datetime64[us]")
    report[spec.entity] = len(frame)
    return pd.DataFrame(frame, columns=list(CONTRACT[spec.entity]))


def read_mapping(path: Path) -> AdaptedShop:
    """Apply the mapping file ``path``: its contract frames, nothing written."""
    import duckdb

    mapping = parse_mapping(path)
    report: dict[str, int] = {}
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        for table in mapping.tables.values():
            report[f"rows_read_{table.name}"] = _load_table(con, mapping, table)
        frames = {
            entity: _entity_frame(con, mapping, spec, report)
            for entity, spec in mapping.entities.items()
        }
    finally:
        con.close()
    return AdaptedShop(
        order_lines=frames["order_lines"],
        products=frames.get("products"),
        customers=frames.get("customers"),
        report=report,
    )


class MappingAdapter:
    """The adapter of ``shopflow load --mapping FILE``: ``read`` takes the mapping file."""

    name = "mapping"
    description = "a shop's own CSV / Parquet exports, described by a YAML mapping file"

    def read(self, path: Path) -> AdaptedShop:
        return read_mapping(path)
