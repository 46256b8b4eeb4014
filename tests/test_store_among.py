"""``store.among``: the batch's ``IN`` list as one array parameter on PostgreSQL, plain ``IN`` on
SQLite; the same rows either way, and on PostgreSQL one statement text whatever the batch's size."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ggk_ebms.store.among import among
from ggk_ebms.store.db import Database
from ggk_ebms.store.tables import BigPk

# The column type of every key the batches ask for (message.pk, job.pk, ...): a BIGINT on
# PostgreSQL, an INTEGER variant on SQLite.
probe = sa.Table("among_probe", sa.MetaData(), sa.Column("pk", BigPk, primary_key=True))


def test_among_selects_what_in_selects_with_one_text_for_every_size(db: Database) -> None:
    probe.create(db.engine)
    with db.session() as session:
        session.execute(sa.insert(probe), [{"pk": n} for n in range(1, 6)])
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        with db.session() as session:
            for wanted in ([], [2], [1, 3, 9], [5, 4, 3, 2, 1]):
                query = sa.select(probe.c.pk).order_by(probe.c.pk)
                plain = session.execute(query.where(probe.c.pk.in_(wanted))).scalars().all()
                batch = session.execute(query.where(among(session, probe.c.pk, wanted))).scalars().all()
                assert batch == plain == sorted(w for w in wanted if w != 9)
        if db.backend == "postgresql":
            # Four batch sizes, one text; the plain IN made a text per size (empty included).
            asked = {text for text in seen if "among_probe" in text}
            assert len([text for text in asked if "= ANY (" in text]) == 1, asked
            assert len(asked) == 1 + 4, asked
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
