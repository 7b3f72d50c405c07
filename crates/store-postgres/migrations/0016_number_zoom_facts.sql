-- What Zoom says about a customer's number: the emergency (E911) address and caller ID name (CNAM) the
-- customer set in Zoom, from Zoom's webhooks, and the number's capabilities from Zoom's listings.

-- Every emergency-address and CNAM event, as received (history). `zoom_event_id` names Zoom's event
-- (Zoom's envelope carries no id: the SHA-256 of what it says, see zoom::webhook::number_event_id), so a
-- redelivery, or the same event reaching two instances, is one row: the key decides, not a read.
CREATE TABLE number_zoom_events (
    id              bigserial PRIMARY KEY,
    number_id       uuid NOT NULL REFERENCES numbers (id),
    customer_id     uuid NOT NULL REFERENCES customers (id),
    e164            text NOT NULL,
    zoom_account_id text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('emergency_address', 'cnam')),
    zoom_event_id   text NOT NULL,
    -- Zoom's `event_ts`, milliseconds since the epoch: when the customer made the change.
    event_ts        bigint NOT NULL,
    received_at     timestamptz NOT NULL,
    address_line1   text,
    address_line2   text,
    city            text,
    zip             text,
    state_code      text,
    country         text,
    cnam            text,
    CONSTRAINT number_zoom_events_once UNIQUE (zoom_event_id, number_id),
    CHECK ((kind = 'emergency_address') = (address_line1 IS NOT NULL)),
    CHECK ((kind = 'cnam') = (cnam IS NOT NULL))
);
CREATE INDEX number_zoom_events_number ON number_zoom_events (number_id, id);

-- The current values per number and customer (a number sold again starts with nothing). Each half is
-- written only by an event newer than the one it holds (`*_event_ts`, then the event id on a tie), in
-- the write itself, so an older event arriving late changes nothing whichever instance takes it.
CREATE TABLE number_zoom_facts (
    number_id                        uuid NOT NULL REFERENCES numbers (id),
    customer_id                      uuid NOT NULL REFERENCES customers (id),
    address_line1                    text,
    address_line2                    text,
    city                             text,
    zip                              text,
    state_code                       text,
    country                          text,
    address_event_ts                 bigint,
    address_event_id                 text,
    address_received_at              timestamptz,
    cnam                             text,
    cnam_event_ts                    bigint,
    cnam_event_id                    text,
    cnam_received_at                 timestamptz,
    -- From Zoom's listing of the account's peering numbers, as Zoom spells the values.
    number_type                      text,
    voice_direction                  text,
    voice_msg_capacity               text,
    message_capability               text,
    outbound_dialer_not_supported    boolean,
    outbound_cli_share_not_supported boolean,
    listed_at                        timestamptz,
    PRIMARY KEY (number_id, customer_id)
);
