-- voxbridge schema, version 17: a mailbox's SIP digest credentials, for requests about
-- it outside a call (SUBSCRIBE to its message-waiting state). Only HA1 values are
-- kept — H(number:realm:password) in MD5 and SHA-256 (RFC 8760) — never the password;
-- they hold for the realm they were made for. NULL: no SIP password set.
ALTER TABLE mailbox ADD COLUMN sip_realm TEXT;
ALTER TABLE mailbox ADD COLUMN sip_ha1_md5 TEXT;
ALTER TABLE mailbox ADD COLUMN sip_ha1_sha256 TEXT;
