"""`wait`, and the form that puts a child's permission request to the client's user.

A wait returns early when a child's tool call starts waiting for the caller's answer
(`needs_approval`). When the caller is the top-level client and it advertises elicitation, each
request addressed to it is also put to its user as a form at the start of the client's next wait,
once: MCP 2026-07-28 carries that as the `input_required` result of the call (the client calls
again with the answer), earlier versions as a request in the middle of it; the SDK's resolvers
do either. Accept answers the request; decline denies it; cancel leaves it to be answered
another way (Claude Code in `-p` mode cancels at once).
"""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.elicitation import AcceptedElicitation, CancelledElicitation, DeclinedElicitation
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp_types import ToolAnnotations
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from overmind_mcp.models import WaitResult
from overmind_mcp.server.toolset._base import Tool, caller, readable_errors, supervisor

# From this protocol version on, the form rides the call's result; before it, a request mid-call.
_INPUT_REQUIRED_VERSION = "2026-07-28"


class ApprovalForm(BaseModel):
    decision: Literal["allow", "deny"] = Field(description="allow: the tool call runs; deny: it does not")
    message: str = Field(default="", description="On deny: what the child is told")


FormAnswer = AcceptedElicitation[ApprovalForm] | DeclinedElicitation | CancelledElicitation | None


def client_request(ctx: Context) -> str | None:
    """The oldest request for the client not yet put to its user, if the client can show a form now."""
    if caller(ctx).mission_id is not None or not _can_show_forms(ctx):
        return None
    return supervisor(ctx).next_form()


def ask_client(ctx: Context, request_id: Annotated[str | None, Resolve(client_request)]) -> Elicit[ApprovalForm] | None:
    if request_id is None:
        return None
    question = supervisor(ctx).form_question(request_id)
    return Elicit(question, ApprovalForm) if question is not None else None


@readable_errors
async def wait(
    ctx: Context,
    ids: Annotated[list[str], Field(description="Ids or names of the missions to wait for")],
    request_id: Annotated[str | None, Resolve(client_request)],
    form: Annotated[FormAnswer, Resolve(ask_client)],
    mode: Annotated[Literal["all", "any"], Field(description="Return when all have ended, or when any has")] = "all",
    timeout_s: Annotated[
        float, Field(ge=0, le=3600, description="Give up waiting after this long (not an error)")
    ] = 45,
) -> WaitResult:
    """Wait until the missions end (all, or any), or until the timeout; never ends a mission.

    Returns finished results and what the pending ones are doing. On timed_out, call wait again.
    Returns early when a child's tool call needs your approval (needs_approval).
    """
    sup, who = supervisor(ctx), caller(ctx)
    if request_id is not None:
        await sup.answer_form(request_id, _decision(form), message=form.data.message if _accepted(form) else None)
    return await sup.wait(ids, mode=mode, timeout_s=timeout_s, on_progress=ctx.report_progress, caller=who)


def _can_show_forms(ctx: Context) -> bool:
    context = ctx.request_context
    capabilities = context.session.client_capabilities
    if capabilities is None or capabilities.elicitation is None:
        return False
    elicitation = capabilities.elicitation
    if elicitation.form is None and elicitation.url is not None:
        return False  # URL elicitation only
    return is_version_at_least(context.protocol_version, _INPUT_REQUIRED_VERSION) or context.session.can_send_request


def _accepted(form: FormAnswer) -> bool:
    # A resolver that asked nothing leaves an accepted answer without data.
    return isinstance(form, AcceptedElicitation) and form.data is not None


def _decision(form: FormAnswer) -> Literal["allow", "deny"] | None:
    """allow or deny, or None when the user put the form away unanswered."""
    if _accepted(form):
        assert isinstance(form, AcceptedElicitation)
        return form.data.decision
    return "deny" if isinstance(form, DeclinedElicitation) else None


TOOL = Tool(wait, ToolAnnotations(title="Wait for missions", read_only_hint=True))
