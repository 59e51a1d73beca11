"""C-ECHO on the Verification SOP Class (PS3.4 Annex A, PS3.7 §9.1.5)."""

from __future__ import annotations

from pacsradar.checks import Check, CheckOutcome, skipped
from pacsradar.dicom.context import DicomContext
from pacsradar.dicom.sop import VERIFICATION

SPECS = ()


async def run(ctx: DicomContext) -> CheckOutcome:
    session = ctx.session
    if session is None or session.assoc is None:
        return skipped("no accepted association")
    if VERIFICATION not in session.assoc.accepted:
        return skipped("Verification presentation context was not accepted")
    status = await session.echo()
    return CheckOutcome(
        details={
            "echo_status": f"0x{status:04X}" if status is not None else None,
            "success": status == 0,
        }
    )


CHECK: Check[DicomContext] = Check(name="dicom.echo", specs=SPECS, run=run)
