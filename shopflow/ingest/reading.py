"""Reading landing files: Parquet and CSV cast to the landing contract, with lineage.

The first layer of the gate: a file that cannot be read as the contract says (empty, not
UTF-8, another delimiter, a cut-off line, missing columns, values of the wrong type) raises
:class:`LandingFormatError` naming the file, and the line or row and value where it can.
Extra columns are ignored and collected so that the partition checks warn about them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from shopflow.landing import CONTRACT, Partition

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from shopflow.settings import Settings

# Results are converted to pandas in chunks of this many vectors (2,048 rows each): one
# conversion of a whole result holds DuckDB's copy and pandas' copy at once.
_FETCH_VECTORS = 50


_WHOLE_NUMBER_TYPES = ("INTEGER", "BIGINT", "SMALLINT")


class LandingFormatError(ValueError):
    """A landing file cannot be read as the contract says (columns, types, encoding)."""


def _relative(path: Path, settings: Settings) -> str:
    try:
        return str(path.relative_to(settings.home))
    except ValueError:
        return str(path)


def _first_error_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def _cast_select(columns: dict[str, str], source_columns: list[str]) -> str:
    parts = []
    for name, dtype in columns.items():
        value = f"nullif(trim(\"{name}\"::varchar), '')"
        parts.append(
            f"{value} as {name}"
            if dtype == "VARCHAR"
            else f"try_cast({value} as {dtype}) as {name}"
        )
    return ", ".join(parts + source_columns)


def _check_types(con, columns: dict[str, str], file_column: str, line_expr: str, line_word: str):
    """Raise naming file, column, line and value for the first values that do not cast."""
    typed = {name: dtype for name, dtype in columns.items() if dtype != "VARCHAR"}

    def uncastable(name: str, dtype: str) -> str:
        value = f'trim("{name}"::varchar)'
        lost = f"try_cast({value} as {dtype}) is null"
        if dtype in _WHOLE_NUMBER_TYPES:
            # DuckDB casts '2.5' to an integer by rounding: a fraction would change silently
            lost = f"({lost} or try_cast({value} as DOUBLE) <> try_cast({value} as {dtype}))"
        return f"(nullif({value}, '') is not null and {lost})"

    if not typed:
        return
    # One scan finds the columns with bad values; only those are scanned again for examples.
    checks = ", ".join(f"bool_or({uncastable(name, dtype)})" for name, dtype in typed.items())
    flags = con.execute(f"select {checks} from src").fetchone()
    for (name, dtype), flagged in zip(typed.items(), flags, strict=True):
        if not flagged:
            continue
        bad = con.execute(
            f"""
            select {file_column}, {line_expr}, "{name}"::varchar from src
            where {uncastable(name, dtype)}
            limit 3
            """
        ).fetchall()
        if bad:
            examples = ", ".join(f"{line_word} {line}: {value!r}" for _, line, value in bad)
            hint = ""
            if dtype in _WHOLE_NUMBER_TYPES and any(_is_number(value) for _, _, value in bad):
                hint = " (whole numbers only: a fraction or a number out of range is not rounded)"
            raise LandingFormatError(
                f"{bad[0][0]}: column {name} must be {dtype}; bad values at {examples}{hint}"
            )


def _is_number(text: str | None) -> bool:
    try:
        float(text or "")
    except ValueError:
        return False
    return True


def _check_columns(label: str, present: list[str], entity: str, extra_columns: dict) -> None:
    """Raise naming the missing contract columns; record extra ones (ignored, warned about)."""
    columns = CONTRACT[entity]
    missing = [c for c in columns if c not in present]
    extra = [c for c in present if c not in columns]
    if missing:
        hint = f"; not in the contract: {', '.join(extra)} (renamed?)" if extra else ""
        raise LandingFormatError(
            f"{label}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(present) or 'none'}){hint}"
        )
    if extra:
        extra_columns[label] = extra


def _read_parquet_files(
    con, files: list[tuple[Path, str]], entity: str, extra_columns: dict
) -> pd.DataFrame:
    """All Parquet files of an entity in one scan, after a per-file schema check."""
    import duckdb
    import pyarrow.parquet as pq

    columns = CONTRACT[entity]
    for path, label in files:
        if path.stat().st_size == 0:
            raise LandingFormatError(f"{label}: the file is empty (0 bytes)")
        try:
            present = pq.read_schema(path).names
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise LandingFormatError(f"{label}: not a readable Parquet file: {exc}") from exc
        _check_columns(label, present, entity, extra_columns)
    # The label is looked up by position, not joined: without a join the scan keeps file and
    # row order, so read_partitions need not sort (and copy) the frame.
    con.execute("set variable landing_paths = ?", [[str(path) for path, _ in files]])
    con.execute("set variable landing_labels = ?", [[label for _, label in files]])
    paths = ", ".join(f"'{path}'" for path, _ in files)
    select = ", ".join(f'"{c}"' for c in columns)
    con.execute(
        f"""
        create or replace temp view src as
        select {select},
            getvariable('landing_labels')[
                list_position(getvariable('landing_paths'), files.filename)
            ] as _source_file,
            file_row_number + 1 as _source_line
        from read_parquet([{paths}], filename = true, file_row_number = true,
                          union_by_name = true) as files
        """
    )
    try:
        _check_types(con, columns, "_source_file", "_source_line", "row")
        return _fetch_frame(
            con, f"select {_cast_select(columns, ['_source_file', '_source_line'])} from src"
        )
    except duckdb.Error as exc:
        raise LandingFormatError(
            f"{files[0][1]} ...: cannot be read as {entity}: {_first_error_line(exc)}"
        ) from exc


def _fetch_frame(con, sql: str) -> pd.DataFrame:
    """The result of ``sql`` as one DataFrame with the dtypes of ``.df()``, converted chunk by
    chunk (a whole-result conversion peaks at about 0.8 KB per order line)."""
    import pandas as pd

    result = con.execute(sql)
    chunks = [result.fetch_df_chunk(_FETCH_VECTORS)]
    while len(chunks[-1]):
        chunks.append(result.fetch_df_chunk(_FETCH_VECTORS))
    if len(chunks) == 1:
        return chunks[0]
    chunks.pop()  # the empty chunk that ends the result
    if len(chunks) == 1:
        return chunks[0]
    # A chunk whose strings are all missing comes back as object; the whole result would be
    # str. (Integers with missing values come back as Int32 and concat keeps that.)
    for column in chunks[0].columns:
        dtypes = {chunk[column].dtype for chunk in chunks}
        string = next((d for d in dtypes if isinstance(d, pd.StringDtype)), None)
        if string is not None and len(dtypes) > 1:
            for chunk in chunks:
                if chunk[column].dtype == object:
                    chunk[column] = chunk[column].astype(string)
    return pd.concat(chunks, ignore_index=True)


# Delimiters a shop's export tool may use instead of the contract's comma.
_OTHER_DELIMITERS = {";": "';' (semicolon)", "\t": "tabs", "|": "'|' (pipe)"}


def _csv_compression(path: Path) -> str:
    """DuckDB's read_csv compression of a landing CSV file, from its name."""
    name = path.name.lower()
    return "gzip" if name.endswith(".gz") else "zstd" if name.endswith(".zst") else "none"


def _csv_bytes(path: Path, label: str) -> bytes:
    """The file's bytes, decompressed when it is a .csv.gz or .csv.zst."""
    compression = _csv_compression(path)
    if compression == "none":
        return path.read_bytes()
    import pyarrow as pa

    try:
        with pa.input_stream(str(path), compression=compression) as stream:
            return stream.read()
    except (OSError, pa.ArrowException) as exc:
        raise LandingFormatError(
            f"{label}: cannot be decompressed as {compression}: {_first_error_line(exc)}"
        ) from exc


def _check_csv_text(path: Path, label: str, entity: str) -> None:
    """Catch what makes a CSV unreadable as a whole, with a message on-call can act on:
    an empty file, bytes that are not UTF-8, another delimiter, a line with too few or too
    many fields (typically the last one, cut off by an interrupted upload)."""
    import csv
    import io

    data = _csv_bytes(path, label)
    if not data:
        raise LandingFormatError(
            f"{label}: the file is empty (0 bytes); a CSV needs a header line and order lines"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LandingFormatError(
            f"{label}: not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} cannot be "
            "decoded (the landing contract expects UTF-8; re-export the file as UTF-8)"
        ) from None
    header = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    columns = list(CONTRACT[entity])
    if not all(c in [h.strip().strip('"') for h in header.split(",")] for c in columns):
        for delimiter, name in _OTHER_DELIMITERS.items():
            if all(c in [h.strip().strip('"') for h in header.split(delimiter)] for c in columns):
                raise LandingFormatError(
                    f"{label}: not comma-separated: the header line is separated by {name}; "
                    "the landing contract expects ',' between columns"
                )
        return  # the column check names what is missing
    reader = csv.reader(io.StringIO(text, newline=""))
    width = len(next(reader))
    for record in reader:
        if record and len(record) != width:
            line = reader.line_num
            if not text.endswith(("\n", "\r")) and text.count("\n") < line:
                raise LandingFormatError(
                    f"{label}: the last line (line {line}) is cut off: it has {len(record)} of "
                    f"{width} fields; the file looks truncated (an interrupted upload?): "
                    "re-send the whole file"
                )
            raise LandingFormatError(
                f"{label}: line {line} has {len(record)} fields, the header has {width}"
            )


def _read_csv_file(con, path: Path, label: str, entity: str, extra_columns: dict) -> pd.DataFrame:
    """One CSV file read as text, so a bad value is reported with its line, not a stack trace."""
    import duckdb

    _check_csv_text(path, label, entity)
    columns = CONTRACT[entity]
    source = (
        f"read_csv('{path}', header = true, all_varchar = true, delim = ',', quote = '\"', "
        "escape = '\"', strict_mode = true, null_padding = false, "
        f"compression = '{_csv_compression(path)}')"
    )
    try:
        con.execute(
            f"create or replace temp view src as select *, '{label}' as _source_file, "
            f"row_number() over () + 1 as _source_line from {source}"
        )
        present = [r[0] for r in con.execute(f"describe select * from {source}").fetchall()]
    except duckdb.Error as exc:
        raise LandingFormatError(
            f"{label}: cannot be read as {entity} CSV: {_first_error_line(exc)}"
        ) from exc
    _check_columns(label, present, entity, extra_columns)
    try:
        _check_types(con, columns, "_source_file", "_source_line", "line")
        return _fetch_frame(
            con, f"select {_cast_select(columns, ['_source_file', '_source_line'])} from src"
        )
    except duckdb.Error as exc:
        raise LandingFormatError(
            f"{label}: cannot be read as {entity} CSV: {_first_error_line(exc)}"
        ) from exc


def read_partitions(
    partitions: list[Partition],
    entity: str,
    settings: Settings,
    extra_columns: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """Every file of the given partitions of one entity, cast to the contract, with lineage
    columns ``_partition_date``, ``_source_file`` (relative to SHOPFLOW_HOME), ``_source_line``,
    in partition, file and line order (a stable order decides which copy of a duplicate is
    "later"). Raises :class:`LandingFormatError` naming the file for anything unreadable.
    Columns outside the contract are ignored; ``extra_columns`` (if given) collects them per
    file label."""
    import duckdb
    import pandas as pd

    by_file: dict[str, dt.date] = {}
    parquet, csv = [], []
    for partition in partitions:
        for file in partition.files:
            label = _relative(file, settings)
            by_file[label] = partition.partition_date
            (parquet if file.suffix.lower() == ".parquet" else csv).append((file, label))
    frames = []
    extra = {} if extra_columns is None else extra_columns
    con = duckdb.connect()
    try:
        con.execute("set threads = 2")
        if parquet:
            frames.append(_read_parquet_files(con, parquet, entity, extra))
        for file, label in csv:
            frames.append(_read_csv_file(con, file, label, entity, extra))
    finally:
        con.close()
    columns = [*CONTRACT[entity], "_source_file", "_source_line"]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    for name, dtype in CONTRACT[entity].items():
        if dtype.startswith("DECIMAL"):
            # decimals travel as floats in frames; the raw table stores DECIMAL again
            frame[name] = frame[name].astype("float64")
    frame.insert(0, "_partition_date", frame["_source_file"].map(by_file))
    order = ["_partition_date", "_source_file", "_source_line"]
    # Usually in order already (one Parquet scan in file order): then sorting would only copy.
    if not pd.MultiIndex.from_frame(frame[order]).is_monotonic_increasing:
        frame = frame.sort_values(order)
    return frame.reset_index(drop=True)


def read_partition(partition: Partition, settings: Settings) -> pd.DataFrame:
    """All files of one partition (see :func:`read_partitions`)."""
    return read_partitions([partition], partition.entity, settings)


def estimate_rows(partition: Partition) -> int:
    """Rows of a partition without reading its data: the row count in each Parquet file's
    footer, the line breaks of each CSV file (its header counts too). A file whose footer
    cannot be read counts 0: reading it reports what is wrong."""
    import pyarrow.parquet as pq

    rows = 0
    for file in partition.files:
        if file.suffix.lower() == ".parquet":
            with contextlib.suppress(Exception):  # pyarrow raises several types
                rows += pq.read_metadata(file).num_rows
        elif _csv_compression(file) != "none":
            with contextlib.suppress(Exception):  # reading it reports what is wrong
                rows += _csv_bytes(file, file.name).count(b"\n")
        else:
            with file.open("rb") as handle:
                rows += sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return rows
