"""The one SQL dialect: placeholders become psycopg's, row locks vanish for SQLite, quotes are left alone."""

from __future__ import annotations

from storage.sql import for_postgres, for_sqlite


def test_placeholders_become_psycopg_ones() -> None:
    """`?` becomes `%s`, `:name` becomes `%(name)s`, a literal `%` is doubled."""
    assert for_postgres("SELECT * FROM t WHERE a = ? AND b = :b_2 AND c LIKE 'x%'") == (
        "SELECT * FROM t WHERE a = %s AND b = %(b_2)s AND c LIKE 'x%%'"
    )


def test_quoted_text_casts_and_comments_keep_their_question_marks_and_colons() -> None:
    """Inside quotes and comments nothing is a placeholder; `::` is a cast."""
    sql = "SELECT 'why? :not' AS \"q?\", x::text -- or ? here\nFROM t WHERE y = ? /* :z */"
    assert for_postgres(sql) == (
        "SELECT 'why? :not' AS \"q?\", x::text -- or ? here\nFROM t WHERE y = %s /* :z */"
    )
    assert for_postgres("SELECT 'it''s ?' AS a, ? AS b") == "SELECT 'it''s ?' AS a, %s AS b"


def test_sqlite_drops_only_a_trailing_row_lock() -> None:
    """`FOR UPDATE [SKIP LOCKED|NOWAIT]` at the end is removed for SQLite; other SQL is unchanged."""
    assert (
        for_sqlite("SELECT id FROM outbox LIMIT ? FOR UPDATE SKIP LOCKED") == "SELECT id FROM outbox LIMIT ?"
    )
    assert for_sqlite("SELECT id FROM t for update nowait ") == "SELECT id FROM t"
    assert for_sqlite("SELECT 'FOR UPDATE' AS words FROM t") == "SELECT 'FOR UPDATE' AS words FROM t"
