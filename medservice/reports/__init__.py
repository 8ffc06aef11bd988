"""Printable documents (PDF): the administration chart, the emergency list and the error-rate
report. Each module renders one document from a use case's data (medservice.service);
their Danish words are in `texts`, in one place for a later message catalogue."""
