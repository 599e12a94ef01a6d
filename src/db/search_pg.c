/* The "search-pg" schema module (search_pg.h): trigram and text-search indexes and the
 * change-stamp triggers on PostgreSQL. SQLite has the same things as FTS5 tables and
 * triggers in the core schema (conn.c migrations 3-6); docs/search.md, "On PostgreSQL",
 * says how the two correspond. */
#include "db/search_pg.h"

#include <stdlib.h>
#include <string.h>

#include "db/stmt.h"
#include "util/buf.h"

/* Step texts go through db__pg_rewrite like any SQL: no `?` and no SQLite type names
 * (INTEGER, REAL, BLOB) inside the function bodies. */
static const db_migration STEPS[] = {
    /* 1: search. Id substrings: a GIN trigram index on the lowercase id (pg_trgm serves
     * LIKE '%term%'; terms under three characters scan it whole, as SQLite's LIKE scans
     * repo_fts_id). Card phrases: a generated tsvector column with a GIN index. The text
     * is cut into words like FTS5's unicode61 tokenizer does (every punctuation, space or
     * control character separates; diacritics removed; lower case, no stemming, no stop
     * words), so a phrase query matches what SQLite's MATCH '"term"' matches. */
    {.postgres =
         "CREATE EXTENSION IF NOT EXISTS pg_trgm;"
         "CREATE EXTENSION IF NOT EXISTS unaccent;"
         "CREATE TEXT SEARCH CONFIGURATION modelhub_card (COPY = pg_catalog.simple);"
         "ALTER TEXT SEARCH CONFIGURATION modelhub_card ALTER MAPPING FOR asciiword, word,"
         " numword, asciihword, hword, numhword, hword_asciipart, hword_part, hword_numpart"
         " WITH unaccent, simple;"
         "CREATE FUNCTION modelhub_card_words(t text) RETURNS text LANGUAGE sql IMMUTABLE"
         " PARALLEL SAFE AS $$ SELECT regexp_replace(t, '[[:punct:][:space:][:cntrl:]]+',"
         " ' ', 'g') $$;"
         "CREATE FUNCTION modelhub_card_query(t text) RETURNS tsquery LANGUAGE sql IMMUTABLE"
         " PARALLEL SAFE AS $$ SELECT phraseto_tsquery('modelhub_card',"
         " modelhub_card_words(t)) $$;"
         "ALTER TABLE repo_meta ADD COLUMN card_tsv tsvector GENERATED ALWAYS AS"
         " (to_tsvector('modelhub_card', modelhub_card_words(card_text))) STORED;"
         "CREATE INDEX repo_meta_card_tsv ON repo_meta USING gin (card_tsv);"
         "CREATE INDEX repos_id_trgm ON repos USING gin"
         " (lower((ns || '/' || name) COLLATE \"C\") gin_trgm_ops);"},
    /* 2: change stamps for the in-memory search index (db/accel.c): what SQLite's triggers
     * of core migrations 4-6 do. repos.chg gets a new repo_seq.n when a repo is inserted
     * or its type, namespace, name, card text or tags change; repos.dchg when its
     * downloads change. The stamp comes from UPDATE repo_seq ... RETURNING: that row lock
     * is held to the commit, so stamps are handed out in commit order across every
     * connection and node (a reader's snapshot that shows repo_seq.n = S shows every row
     * stamped <= S). A SEQUENCE would not: numbers drawn out of commit order. One stamp
     * per transaction (kept in the transaction-local setting modelhub.stamp, which a
     * rollback to a savepoint undoes together with the repo_seq update): a bulk load
     * updating repo_seq per row would leave one row version per update in that table, all
     * to be skipped by the next update of the same transaction. */
    {.postgres = "CREATE FUNCTION modelhub_stamp() RETURNS bigint LANGUAGE plpgsql AS $$"
                 " DECLARE cur text := current_setting('modelhub.stamp', true); stamp bigint;"
                 " BEGIN"
                 "  IF cur IS NOT NULL AND cur <> '' THEN RETURN cur::bigint; END IF;"
                 "  UPDATE repo_seq SET n = n + 1 WHERE k = 1 RETURNING n INTO stamp;"
                 "  PERFORM set_config('modelhub.stamp', stamp::text, true);"
                 "  RETURN stamp;"
                 " END $$;"
                 "CREATE FUNCTION modelhub_repos_stamp() RETURNS trigger LANGUAGE plpgsql AS $$"
                 " BEGIN"
                 "  IF TG_OP = 'INSERT' THEN NEW.chg := modelhub_stamp(); RETURN NEW; END IF;"
                 "  IF NEW.type IS DISTINCT FROM OLD.type"
                 "   OR NEW.ns COLLATE \"C\" IS DISTINCT FROM OLD.ns COLLATE \"C\""
                 "   OR NEW.name COLLATE \"C\" IS DISTINCT FROM OLD.name COLLATE \"C\" THEN"
                 "   NEW.chg := modelhub_stamp();"
                 "  END IF;"
                 "  IF NEW.downloads IS DISTINCT FROM OLD.downloads THEN"
                 "   NEW.dchg := modelhub_stamp();"
                 "  END IF;"
                 "  RETURN NEW;"
                 " END $$;"
                 "CREATE TRIGGER repos_stamp BEFORE INSERT OR UPDATE OF type, ns, name, downloads"
                 " ON repos FOR EACH ROW EXECUTE FUNCTION modelhub_repos_stamp();"
                 /* repo_meta and repo_tags rows stamp their repo (a no-op once it has this
                  * transaction's stamp, or when the repo is being deleted). */
                 "CREATE FUNCTION modelhub_child_stamp() RETURNS trigger LANGUAGE plpgsql AS $$"
                 " DECLARE stamp bigint := modelhub_stamp();"
                 " BEGIN"
                 "  IF TG_OP <> 'INSERT' THEN"
                 "   UPDATE repos SET chg = stamp WHERE id = OLD.repo_id AND chg <> stamp;"
                 "  END IF;"
                 "  IF TG_OP <> 'DELETE' THEN"
                 "   UPDATE repos SET chg = stamp WHERE id = NEW.repo_id AND chg <> stamp;"
                 "  END IF;"
                 "  RETURN NULL;"
                 " END $$;"
                 "CREATE TRIGGER repo_meta_stamp AFTER INSERT OR DELETE ON repo_meta"
                 " FOR EACH ROW EXECUTE FUNCTION modelhub_child_stamp();"
                 "CREATE TRIGGER repo_meta_stamp_card AFTER UPDATE OF card_text ON repo_meta"
                 " FOR EACH ROW WHEN (OLD.card_text IS DISTINCT FROM NEW.card_text)"
                 " EXECUTE FUNCTION modelhub_child_stamp();"
                 "CREATE TRIGGER repo_tags_stamp AFTER INSERT OR DELETE OR UPDATE ON repo_tags"
                 " FOR EACH ROW EXECUTE FUNCTION modelhub_child_stamp();"},
};

int db__search_pg_migrate(void) {
  /* On SQLite every step is empty (no text for it): the module is recorded at the same
   * version on both engines, so the schema check (schema.c) treats them alike. */
  return db_migrate("search-pg", STEPS, (int)(sizeof STEPS / sizeof STEPS[0]));
}

char *db__pg_id_like(const char *term) {
  hub_buf b = HUB_BUF_INIT;
  hub_buf_putc(&b, '%');
  for (const char *p = term; *p; p++) {
    if (*p == '%' || *p == '_' || *p == '\\') hub_buf_putc(&b, '\\');
    hub_buf_putc(&b, *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p);
  }
  hub_buf_putc(&b, '%');
  if (b.failed) {
    hub_buf_dispose(&b);
    return NULL;
  }
  return hub_buf_detach(&b);
}

char *db__pg_lower(const char *term) {
  char *s = strdup(term);
  for (char *p = s; p && *p; p++)
    if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
  return s;
}
