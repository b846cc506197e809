"""Getting a database ready: schema migrations, then the shipped reference data."""

from __future__ import annotations

from catalog.service import seed_reference_data
from core.migrate import current_revision, upgrade
from core.runtime import Runtime


def prepare_database(runtime: Runtime) -> str:
    """Migrate to head and insert missing materials and printer profiles. Idempotent."""
    upgrade(runtime.db.engine)
    with runtime.db.session() as session:
        seed_reference_data(session)
        session.commit()
    return current_revision(runtime.db.engine) or "none"
