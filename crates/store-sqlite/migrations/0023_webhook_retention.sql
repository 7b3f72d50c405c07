-- Webhook history is kept for a configured number of days (`[webhooks] keep_days`): the pruning
-- finds an event's deliveries by the event.
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_seq);
