"""ReportService: printable documents as PDF bytes. Each call reads its use case's data in
a read-only unit of work and renders after it has ended (no transaction held while a
document is laid out).

The renderers (reportlab) are imported by the call that renders: they are memory a server
doing rounds only never needs (issue 19)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from medservice.api.convert import timestamp
from medservice.api.convert_review import discrepancy_to_proto
from medservice.api.discrepancies import READERS
from medservice.api.rpc import Authenticate, Clock, principal_from_interceptor, rpc
from medservice.domain import names
from medservice.domain.access import Principal, Role
from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.reconcile.dpsd import Category, counts_rows
from medservice.service import charts, dpsd_report, error_report, fhir_export
from medservice.service import rounds as rounds_uc
from medservice.service.card_checks import card_checks
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.v1 import reports_pb2 as pb
from medservice.v1 import reports_pb2_grpc

if TYPE_CHECKING:
    from medservice.reports.pdf import Pdf

# Who reads the round's documents: whoever reads the round list.
ROUND_READERS = (Role.CARER, Role.SHIFT_LEAD, Role.PHARMACIST, Role.ADMIN)
# Who reads the error rate: whoever may ComputeErrorRate.
RATE_READERS = READERS
PDF = "application/pdf"
CSV = "text/csv; charset=utf-8"
CATEGORY = {c: getattr(pb, f"DPSD_CATEGORY_{c.name}") for c in Category}
FHIR_JSON = "application/fhir+json"
# Who exports a resident's documentation: the error rate's readers, and the integrations
# (an EHR or a regional system) that take it in.
FHIR_READERS = (*READERS, Role.INTEGRATION)


def document(pdf: Pdf, filename: str) -> pb.Document:
    return pb.Document(content_type=PDF, filename=filename, content=pdf.content,
                       page_count=pdf.pages)


def dpsd_to_proto(report: dpsd_report.DpsdReport, with_csv: bool, with_pdf: bool
                  ) -> pb.DpsdReport:
    counts = report.counts
    out = pb.DpsdReport(
        facility=names.facility_name(report.facility.facility_id),
        month=f"{report.month:%Y-%m}", time_zone=report.facility.time_zone,
        start_time=timestamp(report.start), end_time=timestamp(report.end),
        counts=[pb.DpsdCount(category=CATEGORY[c], area=c.area.value, confirmed=n,
                             awaiting_review=waiting)
                for c, n, waiting in counts_rows(counts)],
        confirmed_total=counts.confirmed_total, awaiting_review_total=counts.awaiting_total,
        confirmed_outside_categories=counts.confirmed_outside,
        individual=[pb.DpsdIncident(
            discrepancy=discrepancy_to_proto(i.entry),
            category=CATEGORY[i.category] if i.category else pb.DPSD_CATEGORY_UNSPECIFIED,
            drug=i.drug) for i in report.individual],
        report_time=timestamp(report.as_of))
    if not (with_csv or with_pdf):
        return out
    from medservice.reports.dpsd import dpsd_csv, dpsd_filename, dpsd_pdf

    if with_csv:
        content = dpsd_csv(report)
        out.csv.CopyFrom(pb.Document(content_type=CSV, filename=dpsd_filename(report, "csv"),
                                     content=content))
    if with_pdf:
        out.pdf.CopyFrom(document(dpsd_pdf(report), dpsd_filename(report, "pdf")))
    return out


class ReportServicer(reports_pb2_grpc.ReportServiceServicer):
    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock,
                 authenticate: Authenticate = principal_from_interceptor) -> None:
        self._uow = uow_factory
        self._clock = clock
        self.authenticate = authenticate

    @rpc(*ROUND_READERS)
    def GetAdministrationChart(self, request: pb.GetAdministrationChartRequest, context: Any,
                               principal: Principal) -> pb.Document:
        facility_id, resident_id = names.parse_resident_name(request.resident, "resident")
        principal.require_facility(facility_id)
        month = charts.parse_month(request.month, "month")
        with self._uow(write=False) as uow:
            chart = charts.administration_chart(uow, facility_id, resident_id, month,
                                                self._clock())
        from medservice.reports.mar import chart_filename, chart_pdf

        return document(chart_pdf(chart), chart_filename(chart))

    @rpc(*ROUND_READERS)
    def GetEmergencyList(self, request: pb.GetEmergencyListRequest, context: Any,
                         principal: Principal) -> pb.Document:
        facility_id = names.parse_facility_name(request.facility, "facility")
        principal.require_facility(facility_id)
        if not request.shift_id:
            raise InvalidArgument([FieldViolation("shift_id", "is required")])
        day = rounds_uc.parse_date(request.date, "date")
        with self._uow(write=False) as uow:
            lst = rounds_uc.emergency_list(uow, facility_id, day, request.shift_id,
                                           self._clock())
        from medservice.reports.emergency import emergency_filename, emergency_pdf

        return document(emergency_pdf(lst), emergency_filename(lst))

    @rpc(*FHIR_READERS)
    def ExportFhir(self, request: pb.ExportFhirRequest, context: Any,
                   principal: Principal) -> pb.Document:
        facility_id, resident_id = names.parse_resident_name(request.resident, "resident")
        principal.require_facility(facility_id)
        first = rounds_uc.parse_date(request.start_date, "start_date")
        until = rounds_uc.parse_date(request.end_date, "end_date")
        with self._uow(write=False) as uow:
            bundle = fhir_export.export_resident(uow, facility_id, resident_id, first, until,
                                                 request.resource_type)
        content = json.dumps(bundle, ensure_ascii=False).encode()
        return pb.Document(content_type=FHIR_JSON, content=content, page_count=0,
                           filename=f"fhir-{resident_id}-{first.isoformat()}-"
                                    f"{until.isoformat()}.json")

    @rpc(*RATE_READERS)
    def GetErrorRateReport(self, request: pb.GetErrorRateReportRequest, context: Any,
                           principal: Principal) -> pb.Document:
        facility_id = names.parse_facility_name(request.facility, "facility")
        principal.require_facility(facility_id)
        first = charts.parse_month(request.from_month, "from_month")
        last = charts.parse_month(request.to_month, "to_month")
        with self._uow(write=False) as uow:
            report = error_report.monthly_error_rates(uow, facility_id, first, last,
                                                      self._clock())
        from medservice.reports.error_rate import error_rate_filename, error_rate_pdf

        return document(error_rate_pdf(report), error_rate_filename(report))

    @rpc(*RATE_READERS)
    def GetDpsdReport(self, request: pb.GetDpsdReportRequest, context: Any,
                      principal: Principal) -> pb.DpsdReport:
        facility_id = names.parse_facility_name(request.facility, "facility")
        principal.require_facility(facility_id)
        month = charts.parse_month(request.month, "month")
        with self._uow(write=False) as uow:
            report = dpsd_report.dpsd_report(uow, facility_id, month, self._clock())
        return dpsd_to_proto(report, request.include_csv, request.include_pdf)

    @rpc(*ROUND_READERS)
    def GetCardChecksReport(self, request: pb.GetCardChecksReportRequest, context: Any,
                            principal: Principal) -> pb.Document:
        facility_id = names.parse_facility_name(request.facility, "facility")
        principal.require_facility(facility_id)
        with self._uow(write=False) as uow:
            checks = card_checks(uow, facility_id, self._clock())
        from medservice.reports.card_checks import card_checks_filename, card_checks_pdf

        return document(card_checks_pdf(checks), card_checks_filename(checks))
