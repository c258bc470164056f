"""The message bus: one way in for every command, and in-process dispatch of the events.

A command runs its use case in a fresh unit of work; when another transaction changed the
same aggregate first (``StaleState``), the whole use case runs again on fresh state, which is
safe because nothing was committed. After commit, the events are handed to in-process
handlers (waking waiting claims, live views). Other servers learn them from the outbox relay
through the broker, so a handler here must never be the only way something happens.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from ferrous.application import commands as c
from ferrous.application.dependencies import Dependencies
from ferrous.application.ports import StaleState, UnitOfWork
from ferrous.application.use_cases.append_log import append_log
from ferrous.application.use_cases.cancel_build import cancel_build
from ferrous.application.use_cases.claim_job import claim_job
from ferrous.application.use_cases.complete_job import complete_job
from ferrous.application.use_cases.create_project import create_project, update_project
from ferrous.application.use_cases.create_registration_token import create_registration_token
from ferrous.application.use_cases.fire_schedule import fire_schedule, run_schedule
from ferrous.application.use_cases.manage_api_tokens import (
    create_api_token,
    revoke_api_token,
)
from ferrous.application.use_cases.manage_notifications import (
    create_notification_rule,
    delete_notification_rule,
    send_test_notification,
    update_notification_rule,
)
from ferrous.application.use_cases.manage_pipeline import (
    create_pipeline,
    disable_pipeline,
    enable_pipeline,
)
from ferrous.application.use_cases.manage_schedule import (
    create_schedule,
    delete_schedule,
    update_schedule,
)
from ferrous.application.use_cases.manage_secret_variables import (
    delete_secret_variable,
    set_secret_variable,
)
from ferrous.application.use_cases.manage_trigger_tokens import (
    create_trigger_token,
    revoke_trigger_token,
)
from ferrous.application.use_cases.manage_users import create_user, update_user
from ferrous.application.use_cases.play_job import play_job
from ferrous.application.use_cases.reap_leases import reap_leases
from ferrous.application.use_cases.receive_webhook import receive_webhook
from ferrous.application.use_cases.register_agent import register_agent
from ferrous.application.use_cases.report_job_progress import heartbeat
from ferrous.application.use_cases.reseal_secrets import reseal_secrets
from ferrous.application.use_cases.retry_build import retry_build, retry_job
from ferrous.application.use_cases.revoke_registration_token import revoke_registration_token
from ferrous.application.use_cases.run_trigger import run_trigger
from ferrous.application.use_cases.sign_in import login, logout, refresh_session
from ferrous.application.use_cases.start_due_jobs import start_due_jobs
from ferrous.application.use_cases.trigger_build import trigger_build
from ferrous.domain.errors import Contention
from ferrous.domain.events import Event

log = structlog.get_logger(__name__)

Handler = Callable[[Any, UnitOfWork, Dependencies], Awaitable[Any]]
EventHandler = Callable[[Event], Awaitable[None]]
AfterHook = Callable[[Any, Any], Awaitable[None]]  # (command, result), after commit

COMMAND_HANDLERS: dict[type[c.Command], Handler] = {
    c.CreateProject: create_project,
    c.UpdateProject: update_project,
    c.CreatePipeline: create_pipeline,
    c.EnablePipeline: enable_pipeline,
    c.DisablePipeline: disable_pipeline,
    c.TriggerBuild: trigger_build,
    c.ReceiveWebhook: receive_webhook,
    c.CancelBuild: cancel_build,
    c.RetryBuild: retry_build,
    c.RetryJob: retry_job,
    c.PlayJob: play_job,
    c.RegisterAgent: register_agent,
    c.CreateRegistrationToken: create_registration_token,
    c.RevokeRegistrationToken: revoke_registration_token,
    c.CreateTriggerToken: create_trigger_token,
    c.RevokeTriggerToken: revoke_trigger_token,
    c.SetSecretVariable: set_secret_variable,
    c.DeleteSecretVariable: delete_secret_variable,
    c.ResealSecrets: reseal_secrets,
    c.RunTrigger: run_trigger,
    c.ClaimJob: claim_job,
    c.Heartbeat: heartbeat,
    c.AppendLog: append_log,
    c.CompleteJob: complete_job,
    c.ReapLeases: reap_leases,
    c.StartDueJobs: start_due_jobs,
    c.CreateSchedule: create_schedule,
    c.UpdateSchedule: update_schedule,
    c.DeleteSchedule: delete_schedule,
    c.RunSchedule: run_schedule,
    c.FireSchedule: fire_schedule,
    c.CreateUser: create_user,
    c.UpdateUser: update_user,
    c.Login: login,
    c.RefreshSession: refresh_session,
    c.Logout: logout,
    c.CreateApiToken: create_api_token,
    c.RevokeApiToken: revoke_api_token,
    c.CreateNotificationRule: create_notification_rule,
    c.UpdateNotificationRule: update_notification_rule,
    c.DeleteNotificationRule: delete_notification_rule,
    c.SendTestNotification: send_test_notification,
}

#: Tries of a command whose aggregate others keep changing (agents claiming and completing
#: the jobs of one build at once), with a growing random pause between them; then it
#: answers ``Contention`` (503: the caller retries later) rather than failing.
MAX_ATTEMPTS = 12
MAX_PAUSE = 0.25
#: fields of commands and events bound to the log context while they are handled
LOG_IDS = ("build_id", "job_id", "agent_id")


class MessageBus:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        deps: Dependencies,
        event_handlers: dict[type[Event], list[EventHandler]] | None = None,
    ) -> None:
        self.uow_factory = uow_factory
        self.deps = deps
        self.event_handlers = event_handlers or {}
        self.after_hooks: dict[type[c.Command], list[AfterHook]] = {}
        self.committed_hooks: list[Callable[[], None]] = []

    def after(self, command_type: type[c.Command], hook: AfterHook) -> None:
        """Run ``hook(command, result)`` after each successful command of that type."""
        self.after_hooks.setdefault(command_type, []).append(hook)

    def on_events_committed(self, hook: Callable[[], None]) -> None:
        """Called after any command that committed events (the outbox relay's nudge)."""
        self.committed_hooks.append(hook)

    def subscribe(self, event_type: type[Event], handler: EventHandler) -> None:
        self.event_handlers.setdefault(event_type, []).append(handler)

    async def handle(self, command: c.Command) -> Any:
        # every log line of the command, its events' handlers and hooks names its ids
        with structlog.contextvars.bound_contextvars(**log_ids(command)):
            return await self._handle(command)

    async def _handle(self, command: c.Command) -> Any:
        handler = COMMAND_HANDLERS[type(command)]
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with self.uow_factory() as uow:
                    result = await handler(command, uow, self.deps)
                    events = uow.committed_events()
                break
            except StaleState as exc:
                name = type(command).__name__
                if attempt == MAX_ATTEMPTS:
                    log.warning("command_contended", command=name, attempts=attempt)
                    raise Contention(f"{name}: {exc}") from exc
                log.debug("command_retried_stale", command=name)
                await asyncio.sleep(random.uniform(0, min(MAX_PAUSE, 0.002 * 2**attempt)))
        if events:
            for nudge in self.committed_hooks:
                nudge()
        for event in events:
            await self.dispatch(event)
        for hook in self.after_hooks.get(type(command), ()):
            await hook(command, result)
        return result

    async def dispatch(self, event: Event) -> None:
        handlers = self.event_handlers.get(type(event), ())
        if not handlers:
            return
        with structlog.contextvars.bound_contextvars(**log_ids(event)):
            for handler in handlers:
                try:
                    await handler(event)
                except Exception:  # a failing listener must not undo a committed command
                    log.exception("event_handler_failed", event_kind=event.kind)


def log_ids(message: object) -> dict[str, str]:
    """The ids among a command's or event's fields that logs carry (``LOG_IDS``)."""
    found = {}
    for name in LOG_IDS:
        value = getattr(message, name, None)
        if value is not None:
            found[name] = str(value)
    return found
