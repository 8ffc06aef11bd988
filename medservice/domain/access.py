"""Who may do what: the caller's role and the facilities its token names."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from medservice.domain.errors import PermissionDenied


class Role(Enum):
    CARER = "carer"
    SHIFT_LEAD = "shift_lead"
    PHARMACIST = "pharmacist"
    INTEGRATION = "integration"
    ADMIN = "admin"


ALL = "*"  # a token's facility list may be ["*"]: every facility

# Roles whose work spans care homes may hold ALL: an administrator sets up every home, an
# integration feeds every home's mirror from FMK, and a pharmacist-in-charge may serve the
# homes of a whole municipality. A carer and a shift lead work the rounds of the homes they
# are on duty in: their tokens must name them, or one token would read every home's
# residents, person identifiers included.
CROSS_FACILITY_ROLES: frozenset[Role] = frozenset(
    {Role.ADMIN, Role.INTEGRATION, Role.PHARMACIST})


def may_hold_all_facilities(role: Role) -> bool:
    """Whether a token of this role may name every facility ("*")."""
    return role in CROSS_FACILITY_ROLES


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    facilities: frozenset[str]

    @property
    def all_facilities(self) -> bool:
        return ALL in self.facilities

    def may_access(self, facility_id: str) -> bool:
        return self.all_facilities or facility_id in self.facilities

    def require_role(self, *roles: Role) -> None:
        if self.role not in roles:
            # Says which roles may: the caller learns what token to ask for.
            allowed = ", ".join(r.value for r in roles)
            needs = f"the role {allowed}" if len(roles) == 1 else f"one of the roles {allowed}"
            raise PermissionDenied(
                f"role {self.role.value} may not do this; it takes {needs}",
                reason="ROLE_NOT_ALLOWED", metadata={"roles": allowed})

    def require_facility(self, facility_id: str) -> None:
        """Decided before existence: another facility's data is denied, found or not."""
        if not self.may_access(facility_id):
            raise PermissionDenied(
                "the token does not grant access to this facility",
                reason="FACILITY_NOT_ALLOWED")

    def visible_facilities(self) -> frozenset[str] | None:
        """None means every facility."""
        return None if self.all_facilities else self.facilities
