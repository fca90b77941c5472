-- What `make db-pull` does to a copy of production before it replaces the
-- local database (`scrub=0` skips it): nothing personal should reach a
-- laptop. It runs in one transaction on the pulled copy, so a failure here
-- leaves the local database as it was. Adapt it to your own tables.

-- Emails become unique fakes; the rows keep their ids, so everything joins as before.
UPDATE account SET email = 'user' || id || '@example.com';

-- Every password becomes "demo password" (the password make seed uses); an
-- scrypt hash made once with werkzeug.security.generate_password_hash.
UPDATE account
SET password_hash = 'scrypt:32768:8:1$2dvkOwNQp2H2GGY9$f885dfd2e1132847a0625e6fd97d36639795f4efae8f7c5941e342b4642b57ce022fdb730ddad722e10772518500c15e19d82fc3e73e9eef1255fc5b82ecba48';

-- Production's API tokens never work locally: sign in again for a new one.
DELETE FROM account_token;
