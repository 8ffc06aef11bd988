"""The reconciliation engine: pure functions from scheduled doses, administration records
and order histories to discrepancies (DOMAIN.md §6-8), and the pre-administration check
that applies the same rules before a dose is given.

- `ledger`: how records are placed on due doses, orders as known now, PN limits;
- `findings`: the rules applied to one placed record;
- `engine.reconcile`: a facility and time range -> discrepancies with stable keys;
- `check.check_dose`, `check.match_record`: CheckDose and RecordDose's matching;
- `rate`: the error rate and the counts behind it;
- `dpsd`: the DPSD collective report's categories and counts (issue 16).
"""

from medservice.domain.discrepancy import (
    DEFAULT_SEVERITY,
    Code,
    Discrepancy,
    Severity,
    discrepancy_key,
)
from medservice.reconcile.check import (
    REASON_CODES,
    CheckCode,
    CheckResult,
    MatchKind,
    ProposedDose,
    Reason,
    RecordMatch,
    Verdict,
    check_dose,
    match_record,
)
from medservice.reconcile.engine import context_range, reconcile
from medservice.reconcile.ledger import FacilityRules, PnTerms, pn_terms
from medservice.reconcile.rate import DoseCounts, ErrorRate, dose_counts, error_rate

__all__ = [
    "DEFAULT_SEVERITY",
    "REASON_CODES",
    "CheckCode",
    "CheckResult",
    "Code",
    "Discrepancy",
    "DoseCounts",
    "ErrorRate",
    "FacilityRules",
    "MatchKind",
    "PnTerms",
    "ProposedDose",
    "Reason",
    "RecordMatch",
    "Severity",
    "Verdict",
    "check_dose",
    "context_range",
    "discrepancy_key",
    "dose_counts",
    "error_rate",
    "match_record",
    "pn_terms",
    "reconcile",
]
