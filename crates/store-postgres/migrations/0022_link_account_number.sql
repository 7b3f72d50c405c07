-- The linked Zoom account's number (`account_number` in Zoom's users/me): the carrier-wide listing
-- names the account each number is in by it. Learned at the install, or by the carrier-wide
-- reconciliation from the account's own token for links made before.
ALTER TABLE zoom_links ADD COLUMN zoom_account_number TEXT;
