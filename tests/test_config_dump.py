"""``config.dump_toml`` writes a settings file that ``load`` reads back as the same settings."""

from __future__ import annotations

from pathlib import Path

from ggk_ebms.config import Settings, declared, dump_toml, load


def test_dump_then_load_round_trips(tmp_path: Path) -> None:
    settings = Settings(
        party_ids=["00000099000003630000", "00000099000003630000_T"],
        data_dir=tmp_path / "var",
        database_url='postgresql+psycopg://u@h/db?options=-c "x"',
        port=9443,
        worker_poll_seconds=0.25,
        auto_migrate=False,
        proxy_allowlist=[],
        tls_trust_store=Path("certs/dev/ca.pem"),
    )
    path = tmp_path / "s.toml"
    path.write_text(dump_toml(settings), encoding="utf-8")
    loaded = load(path, environ={})
    # Paths come back absolute (a settings file is read relative to its own folder).
    expected = settings.replace(
        **{
            f.name: getattr(settings, f.name).resolve()
            for f in declared()
            if isinstance(getattr(settings, f.name), Path)
        }
    )
    assert loaded == expected
