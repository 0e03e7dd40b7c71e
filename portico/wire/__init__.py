"""The reference's JSON shapes, confined here: envelopes, date formats, renamed fields."""
