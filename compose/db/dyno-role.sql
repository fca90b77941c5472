-- The role the dynos connect as, like Heroku Postgres's default credential:
-- it owns the database and everything in it, and is no superuser, so what
-- Heroku refuses (DISABLE TRIGGER ALL, session_replication_role, CREATE ROLE,
-- an extension Postgres does not trust) fails here too, with Postgres's words.
--
--   psql -1 -d DATABASE -v role=ROLE -v password=PASSWORD -v limit=CONNECTIONS -f dyno-role.sql
--
-- (-1: all of it or, when a statement fails, none of it.)
--
-- Run as a superuser on a new volume, on one made before this role existed
-- (its tables are the superuser's), and on every database bin/localdb puts
-- in place (a restored snapshot, a pull, a reset, an upgrade's copy).
\set ON_ERROR_STOP on
SELECT format('CREATE ROLE %I', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'password'
  CONNECTION LIMIT :limit;
SELECT format('ALTER DATABASE %I OWNER TO %I', current_database(), :'role') \gexec

-- What a superuser owns here, outside the system's schemas and extensions:
-- schemas; tables, views and sequences (not those a column owns: they
-- follow their table); routines; types (not a table's row type).
SELECT format('ALTER SCHEMA %I OWNER TO %I', n.nspname, :'role')
FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
WHERE r.rolsuper AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
\gexec
SELECT format('ALTER %s %s OWNER TO %I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                             WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
              c.oid::regclass, :'role')
FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE r.rolsuper AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND (d.deptype = 'e' OR (c.relkind = 'S' AND d.refclassid = 'pg_class'::regclass)))
\gexec
SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, :'role')
FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE r.rolsuper AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
\gexec
SELECT format('ALTER %s %s OWNER TO %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype, :'role')
FROM pg_type t JOIN pg_roles r ON r.oid = t.typowner JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE r.rolsuper AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND (t.typtype IN ('e', 'd', 'r', 'm') OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
\gexec
