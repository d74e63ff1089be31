"""A small MCP server for the import tests, written with the official SDK as anyone would: typed
functions whose signatures become input schemas and whose return types become output schemas.

    python tests/mcp_clinic_server.py          # stdio
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel

server = MCPServer("Riverside Clinic")
READ = ToolAnnotations(read_only_hint=True)
CHANGE = ToolAnnotations(read_only_hint=False, destructive_hint=False)


class Patient(BaseModel):
    patient_id: int
    name: str
    email: str
    plan: str


class Appointment(BaseModel):
    appointment_id: int
    patient_id: int
    date: str
    doctor: str
    status: str


@server.tool(annotations=READ, description="Look up a patient's record.")
def get_patient(patient_id: int) -> Patient:
    return Patient(patient_id=patient_id, name="Ada Lovelace", email="ada@example.org", plan="basic")


@server.tool(annotations=READ, description="Look up an appointment.")
def get_appointment(appointment_id: int) -> Appointment:
    return Appointment(
        appointment_id=appointment_id, patient_id=1, date="2026-12-01", doctor="Dr Okafor", status="booked"
    )


@server.tool(annotations=CHANGE, description="Move an appointment to another date.")
def reschedule_appointment(appointment_id: int, date: str) -> Appointment:
    return Appointment(appointment_id=appointment_id, patient_id=1, date=date, doctor="Dr Okafor", status="booked")


@server.tool(annotations=CHANGE, description="Change a patient's email address.")
def update_patient_email(patient_id: int, email: str) -> Patient:
    return Patient(patient_id=patient_id, name="Ada Lovelace", email=email, plan="basic")


@server.tool(name="clinic.opening-hours", annotations=READ, description="Opening hours of a clinic branch.")
def opening_hours(branch: str, note: str | None = None) -> dict[str, str]:
    return {"branch": branch, "hours": "8-18"}


@server.tool(annotations=READ, description="Search the records with a structured filter.")
def search_records(filters: dict[str, Any]) -> list[Patient]:
    return []


if __name__ == "__main__":
    server.run()
