"""``distrifab backup FILE`` and ``distrifab restore FILE``: the database and the stored
files in one archive, checked end to end on the way back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from core.i18n import _

out = Console(highlight=False)


def register(app: typer.Typer) -> None:
    @app.command("backup")
    def backup_command(
        file: Annotated[Path, typer.Argument(help="The archive to write (.tar.gz)")],
    ) -> None:
        """Write a consistent backup of the database and the stored files (while serving)."""
        from core.backup import backup
        from core.runtime import get_runtime

        runtime = get_runtime()
        report = backup(runtime.db, runtime.store, file, secret_key=runtime.secret_key)
        out.print(
            _(
                "Backup written to {path}: {rows} rows in {tables} tables, {files} stored files, {size} bytes.",
                path=report.path,
                rows=sum(report.tables.values()),
                tables=len(report.tables),
                files=report.blobs,
                size=report.size_bytes,
            )
        )

    @app.command("restore")
    def restore_command(
        file: Annotated[Path, typer.Argument(help="An archive written by distrifab backup")],
        replace: Annotated[
            bool, typer.Option(help="Overwrite a database that already holds data")
        ] = False,
    ) -> None:
        """Restore a backup (stop distrifab's other processes first). The archive is checked
        whole before anything changes."""
        from core.backup import restore
        from core.runtime import get_runtime

        runtime = get_runtime()
        restored = restore(
            runtime.db, runtime.store, file, secret_key=runtime.secret_key, replace=replace
        )
        out.print(
            _(
                "Restored {rows} rows in {tables} tables from {path}.",
                rows=sum(restored.values()),
                tables=len(restored),
                path=file,
            )
        )
