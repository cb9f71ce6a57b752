#!/bin/bash
# Creates one role and one database per service, on the first start of an empty
# PostgreSQL volume (the postgres image runs /docker-entrypoint-initdb.d/ only then).
# All three bridges' databases are made up front, so adding a bridge later needs no
# database work. Synapse's database gets the C collation and ctype it requires.
set -euo pipefail

create() {
    local name="$1" password="$2" locale_clause="$3"
    if [[ -z "$password" ]]; then
        echo "postgres-init: no password for $name; set it in .env" >&2
        exit 1
    fi
    # psql variables (:"name", :'password') quote safely whatever the password holds.
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="$name" -v password="$password" <<SQL
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name" ENCODING 'UTF8' $locale_clause TEMPLATE template0;
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
}

create synapse "${SYNAPSE_DB_PASSWORD:-}" "LC_COLLATE 'C' LC_CTYPE 'C'"
create grapevine "${GRAPEVINE_DB_PASSWORD:-}" ""
create mautrix_whatsapp "${WHATSAPP_DB_PASSWORD:-}" ""
create mautrix_telegram "${TELEGRAM_DB_PASSWORD:-}" ""
create mautrix_signal "${SIGNAL_DB_PASSWORD:-}" ""
