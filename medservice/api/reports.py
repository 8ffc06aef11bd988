"""ReportService: printable documents as PDF bytes. Each call reads its use case's data in
a read-only unit of work and renders after it has ended (no transaction held while a
document is laid out)."""

from __future__ import annotations

import json
from typing import Any

from medservice.api.discrepancies import READERS
from medservice.api.rpc import Authenticate, Clock, principal_from_interceptor, rpc
from medservice.domain import names
from medservice.domain.access import Principal, Role
from medservice.domain.errors import FieldViolation, InvalidArgument
from medservice.reports.emergency import emergency_filename, emergency_pdf
from medservice.reports.error_rate import error_rate_filename, error_rate_pdf
from medservice.reports.mar import chart_filename, chart_pdf
from medservice.reports.pdf import Pdf
from medservice.service import charts, error_report, fhir_export
from medservice.service import rounds as rounds_uc
from medservice.service.unit_of_work import UnitOfWorkFactory
from medservice.v1 import reports_pb2 as pb
from medservice.v1 import reports_pb2_grpc

# Who reads the round's documents: whoever reads the round list.
ROUND_READERS = (Role.CARER, Role.SHIFT_LEAD, Role.PHARMACIST, Role.ADMIN)
# Who reads the error rate: whoever may ComputeErrorRate.
RATE_READERS = READERS
PDF = "application/pdf"
FHIR_JSON = "application/fhir+json"
# Who exports a resident's documentation: the error rate's readers, and the integrations
# (an EHR or a regional system) that take it in.
FHIR_READERS = (*READERS, Role.INTEGRATION)


def document(pdf: Pdf, filename: str) -> pb.Document:
    return pb.Document(content_type=PDF, filename=filename, content=pdf.content,
                       page_count=pdf.pages)


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
        return document(error_rate_pdf(report), error_rate_filename(report))
