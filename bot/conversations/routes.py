"""Routes: which of our numbers opens threads in which channel, and where Twilio sends its texts."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.conversations.model import INBOUND_PATH, RouteView
from bot.core.commands import RouteCommand
from bot.core.phone import PhoneNumber
from bot.operations import Context, OperationError, Operations
from bot.twilio.client import TwilioClient
from bot.twilio.errors import TwilioError
from storage.accounts import AccountStore
from storage.conversations import ConversationStore, NewRoute, Route, RouteTaken

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, eq=False)  # eq=False: one service, told apart by identity
class Routes:
    """Add, list and remove a workspace's routes, and point a routed number's webhook at the bot."""

    store: ConversationStore
    accounts: AccountStore
    twilio: TwilioClient
    operations: Operations
    public_url: str | None

    @property
    def inbound_url(self) -> str | None:
        """Where Twilio should send our numbers' texts, when PUBLIC_URL is set."""
        base = (self.public_url or "").rstrip("/")
        return base + INBOUND_PATH if base else None

    async def route(self, ctx: Context, cmd: RouteCommand) -> RouteView:
        """Route our number to a channel in the asking workspace; OperationError in a sentence."""
        account, _ = await self.operations.resolve(ctx, cmd.account)
        try:
            route = await self.store.add_route(
                NewRoute(
                    team_id=ctx.team_id,
                    number=str(cmd.number),
                    channel_id=cmd.channel_id,
                    account_label=account.label,
                    account_sid=account.account_sid,
                    created_by=ctx.user_id,
                )
            )
        except RouteTaken:
            raise OperationError(
                f"{cmd.number} of that Twilio account already opens threads in another workspace; "
                "remove that route there first."
            ) from None
        return await self.view(ctx, route)

    async def view(self, ctx: Context, route: Route) -> RouteView:
        """The route with where Twilio sends its number's texts today."""
        found = await self.operations.credentials(ctx.team_id, route.account_label)
        if found is None or found[0].account_sid != route.account_sid:
            return RouteView(route, None, "its Twilio account is no longer set up here", self.inbound_url)
        try:
            number = await self.twilio.find_incoming_number(found[1], route.number)
        except TwilioError as err:
            return RouteView(route, None, str(err), self.inbound_url)
        problem = None if number is not None else "Twilio does not list this number in that account"
        return RouteView(route, number, problem, self.inbound_url)

    async def routes(self, team_id: str) -> tuple[list[Route], int, int]:
        """The workspace's routes, how many texts to its accounts' numbers arrived unrouted, and how many
        routed ones Slack would not show."""
        sids = sorted({a.account_sid for a in await self.accounts.list(team_id)})
        return (
            await self.store.routes(team_id),
            await self.store.unrouted_count(sids),
            await self.store.unshown_count(team_id),
        )

    async def unroute(self, team_id: str, number: PhoneNumber) -> bool:
        """Remove the workspace's route of `number`; False when there was none."""
        return await self.store.remove_route(team_id, str(number))

    async def point(self, ctx: Context, number: str) -> RouteView:
        """Set the routed number's SmsUrl to PUBLIC_URL/twilio/inbound (POST); OperationError otherwise."""
        if self.inbound_url is None:
            raise OperationError("PUBLIC_URL is not set, so the bot does not know its own address.")
        route = next((r for r in await self.store.routes(ctx.team_id) if r.number == number), None)
        if route is None:
            raise OperationError(f"{number} is not routed in this workspace any more.")
        found = await self.operations.credentials(ctx.team_id, route.account_label)
        if found is None or found[0].account_sid != route.account_sid:
            raise OperationError("The route's Twilio account is no longer set up here.")
        current = await self.twilio.find_incoming_number(found[1], route.number)
        if current is None:
            raise OperationError(f"Twilio does not list {number} in that account.")
        if current.service_sid:
            raise OperationError(
                f"{number} belongs to Messaging Service {current.service_sid}: its incoming texts go to the "
                "service's inbound URL; set it there in Twilio's console."
            )
        updated = await self.twilio.update_incoming_number(found[1], current.sid, sms_url=self.inbound_url)
        log.info("pointed %s at %s", route.number, self.inbound_url)
        return RouteView(route, updated, None, self.inbound_url)
