-- voxbridge schema, version 25: a mailbox's station on the PBX (SMDI). Call details name
-- stations, lamps are lit by station; without one, the station is the mailbox number.
ALTER TABLE mailbox ADD COLUMN station TEXT;
CREATE UNIQUE INDEX mailbox_station ON mailbox(station) WHERE station IS NOT NULL;
