"""Pure rules of tokenbot: policy, deadlines, findings and the scope catalogue; no I/O, `now` passed in."""
