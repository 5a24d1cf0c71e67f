"""The permission requests a person answers from the `overmind` command, as control verbs.

`approvals` lists what waits on the whole state directory (any live server answers: the journal
is shared); `approve` goes to the server that holds the request, whose child waits for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from overmind_mcp.control.registry import handles
from overmind_mcp.control.verbs import Verb
from overmind_mcp.models import ApprovalOutcome, Approvals

if TYPE_CHECKING:
    from overmind_mcp.supervision.supervisor import Supervisor


class ApprovalsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApproveRequest(BaseModel):
    """A person's answer to one permission request."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    decision: Literal["allow", "deny"]
    person: str = Field(min_length=1, description="the login of who answers")
    message: str | None = None
    updated_input: dict[str, Any] | None = None
    remember: bool = False


APPROVALS: Verb[ApprovalsRequest, Approvals] = Verb("approvals", ApprovalsRequest, Approvals)
APPROVE: Verb[ApproveRequest, ApprovalOutcome] = Verb("approve", ApproveRequest, ApprovalOutcome)


@handles(APPROVALS)
async def approvals(supervisor: Supervisor, _request: ApprovalsRequest) -> Approvals:
    return await supervisor.every_approval()


@handles(APPROVE)
async def approve(supervisor: Supervisor, request: ApproveRequest) -> ApprovalOutcome:
    return await supervisor.approve(
        request.id,
        request.decision,
        updated_input=request.updated_input,
        message=request.message,
        remember=request.remember,
        person=request.person,
    )
