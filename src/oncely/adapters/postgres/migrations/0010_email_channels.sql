-- Notification channels of kind 'email': mail through the server's own SMTP relay.
ALTER TABLE notify_channels DROP CONSTRAINT notify_channels_kind_check;
ALTER TABLE notify_channels
    ADD CONSTRAINT notify_channels_kind_check CHECK (kind IN ('apprise', 'webhook', 'email'));
