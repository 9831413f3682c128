"""Files: the bot uploads with ``files_upload_v2``, and fetches what people attach through ``url_private``.

Upload, as Slack does it since ``files.upload`` was retired: ``files.getUploadURLExternal(filename,
length)`` gives an ``upload_url`` on the simulator and a file id; the bytes are POSTed there (raw, or as
multipart); ``files.completeUploadExternal(files=[{id, title}], channel_id, thread_ts,
initial_comment)`` shares them in the channel (or thread) as a message from the bot. Scope
``files:write``.

Download: a file's ``url_private`` (and ``url_private_download``) serves the bytes only with
``Authorization: Bearer <bot token>`` of the file's team whose token has ``files:read``; without it,
like Slack, it redirects to a sign-in page that answers 200 with HTML, so a client that forgets the
header gets a web page instead of the file. `file_downloads` records each try. ``files.info`` needs
``files:read``.
"""

from __future__ import annotations

import contextlib
import copy
import mimetypes
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.sandbox.slack.records import Json, _ApiError, _json_arg
from bot.sandbox.slack.web_api import WebApi
from bot.sandbox.slack.workspace import Caller, Team

MAX_UPLOAD_BYTES = 1024 * 1024 * 1024
_SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>"


@dataclass(frozen=True)
class SimFile:
    """A file a simulated person attaches to a message."""

    name: str
    data: bytes
    mimetype: str | None = None  # guessed from the name when None
    title: str | None = None


@dataclass
class _Upload:
    file_id: str
    team_id: str
    filename: str
    length: int
    data: bytes | None = None


@dataclass
class _File:
    id: str
    team_id: str
    user_id: str
    name: str
    title: str
    mimetype: str
    data: bytes = field(repr=False)
    created: int
    channels: list[str] = field(default_factory=list)


class Files(WebApi):
    """The upload chain, ``files.info``, and ``url_private`` downloads."""

    def file(self, file_id: str) -> Json:
        """A stored file as ``files.info`` shows it."""
        return self._file_json(self._files[file_id])

    def file_bytes(self, file_id: str) -> bytes:
        """What a stored file holds."""
        return self._files[file_id].data

    def _store_file(
        self, team: Team, user_id: str, name: str, title: str | None, mimetype: str | None, data: bytes
    ) -> _File:
        stored = _File(
            id=self._short_id("F"),
            team_id=team.id,
            user_id=user_id,
            name=name,
            title=title or name,
            mimetype=mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream",
            data=data,
            created=int(self._clock()),
        )
        self._files[stored.id] = stored
        return stored

    def _file_json(self, stored: _File) -> Json:
        team = self._team(stored.team_id)
        path = f"{self.url}/files-pri/{team.id}-{stored.id}"
        name = quote(stored.name)
        filetype = stored.name.rsplit(".", 1)[-1].lower() if "." in stored.name else "binary"
        return {
            "id": stored.id,
            "created": stored.created,
            "timestamp": stored.created,
            "name": stored.name,
            "title": stored.title,
            "mimetype": stored.mimetype,
            "filetype": filetype,
            "pretty_type": filetype.upper(),
            "user": stored.user_id,
            "user_team": team.id,
            "editable": False,
            "size": len(stored.data),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": any(not self.channels[c].is_private for c in stored.channels if c in self.channels),
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{path}/{name}",
            "url_private_download": f"{path}/download/{name}",
            "permalink": f"https://{team.domain}.slack.com/files/{stored.user_id}/{stored.id}/{name}",
            "channels": [
                c for c in stored.channels if c in self.channels and not self.channels[c].is_private
            ],
            "groups": [c for c in stored.channels if c in self.channels and self.channels[c].is_private],
            "ims": [],
            "has_rich_preview": False,
            "file_access": "visible",
        }

    # ----- the Web API ---------------------------------------------------------------------------

    def _files_get_upload_url_external(self, args: Json, caller: Caller) -> Json:
        filename = str(args.get("filename") or "").strip()
        try:
            length = int(str(args.get("length") or ""))
        except ValueError:
            raise _ApiError("invalid_arguments") from None
        if not filename or not 0 < length <= MAX_UPLOAD_BYTES:
            raise _ApiError("invalid_arguments")
        upload = _Upload(self._short_id("F"), caller.team.id, filename, length)
        token = secrets.token_urlsafe(18)
        self._uploads[token] = upload
        return {"ok": True, "upload_url": f"{self.url}/upload/v1/{token}", "file_id": upload.file_id}

    def _files_complete_upload_external(self, args: Json, caller: Caller) -> Json:
        items = _json_arg(args.get("files"), "files")
        if (
            not isinstance(items, list)
            or not items
            or not all(isinstance(i, dict) and i.get("id") for i in items)
        ):
            raise _ApiError("invalid_arguments")
        uploads = {u.file_id: (token, u) for token, u in self._uploads.items() if u.team_id == caller.team.id}
        if any(str(i["id"]) not in uploads or uploads[str(i["id"])][1].data is None for i in items):
            raise _ApiError("file_not_found")
        channel_ref = args.get("channel_id") or str(args.get("channels") or "").split(",")[0]
        channel = self._writable_channel({"channel": channel_ref}, caller) if channel_ref else None
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        if thread_ts and channel is None:
            raise _ApiError("invalid_arguments")
        if channel is not None and thread_ts:
            self._find_message(channel.id, thread_ts)
        shared: list[_File] = []
        for item in items:
            token, upload = uploads[str(item["id"])]
            del self._uploads[token]
            data = upload.data or b""
            stored = _File(
                upload.file_id,
                caller.team.id,
                caller.team.bot_user_id,
                upload.filename,
                str(item.get("title") or upload.filename),
                mimetypes.guess_type(upload.filename)[0] or "application/octet-stream",
                data,
                int(self._clock()),
            )
            self._files[stored.id] = stored
            shared.append(stored)
        if channel is not None:
            for stored in shared:
                stored.channels.append(channel.id)
            text = str(args.get("initial_comment") or "")
            message = self._bot_message(text, None, thread_ts=thread_ts, team=caller.team)
            message.update(files=[self._file_json(f) for f in shared], upload=True, display_as_bot=False)
            self._store_message(channel.id, message)
            self._raise_channel_event(channel, self._message_event(channel, message))
        return {"ok": True, "files": [{"id": f.id, "title": f.title} for f in shared]}

    def _files_info(self, args: Json, caller: Caller) -> Json:
        stored = self._files.get(str(args.get("file") or ""))
        if stored is None or stored.team_id != caller.team.id:
            raise _ApiError("file_not_found")
        return {
            "ok": True,
            "file": self._file_json(stored),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }

    # ----- the upload URL and url_private ----------------------------------------------------------

    def _add_file_routes(self, app: web.Application) -> None:
        app.router.add_post("/upload/v1/{token}", self._handle_upload)
        app.router.add_get("/files-pri/{team_file}/{name}", self._handle_file_download)
        app.router.add_get("/files-pri/{team_file}/download/{name}", self._handle_file_download)
        app.router.add_get("/signin", self._handle_sign_in)

    async def _handle_upload(self, request: web.Request) -> web.Response:
        upload = self._uploads.get(request.match_info["token"])
        if upload is None:
            return web.Response(status=404, text="upload URL not found or already used")
        if request.content_type.startswith("multipart/"):
            data = b""
            async for part in await request.multipart():
                if getattr(part, "filename", None) is not None or getattr(part, "name", "") == "file":
                    data = await part.read()  # type: ignore[union-attr]
                    break
        else:
            data = await request.read()
        if len(data) > MAX_UPLOAD_BYTES:
            return web.Response(status=413, text="too large")
        upload.data = data
        return web.Response(text=f"OK - {len(data)}")

    async def _handle_file_download(self, request: web.Request) -> web.StreamResponse:
        team_id, _, file_id = request.match_info["team_file"].partition("-")
        stored = self._files.get(file_id)
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        caller = None
        if stored is not None and stored.team_id == team_id and token:
            with contextlib.suppress(_ApiError):
                caller = self._caller(token)
        allowed = (
            caller is not None
            and caller.team.id == team_id
            and (caller.scopes is None or "files:read" in caller.scopes)
        )
        record: dict[str, Any] = {"file": file_id, "authorization": bool(auth), "served": allowed}
        self.file_downloads.append(record)
        if not allowed:
            raise web.HTTPFound(f"/signin?redir={quote(request.path_qs)}")
        assert stored is not None
        return web.Response(body=stored.data, content_type=stored.mimetype)

    async def _handle_sign_in(self, request: web.Request) -> web.Response:
        return web.Response(text=_SIGN_IN_PAGE, content_type="text/html")

    # ----- what people attach ----------------------------------------------------------------------

    def _attach(self, team: Team, user_id: str, channel_id: str, files: list[SimFile]) -> list[Json]:
        out = []
        for item in files:
            stored = self._store_file(team, user_id, item.name, item.title, item.mimetype, item.data)
            stored.channels.append(channel_id)
            out.append(copy.deepcopy(self._file_json(stored)))
        return out


METHODS = {
    "files.getUploadURLExternal": Files._files_get_upload_url_external,
    "files.completeUploadExternal": Files._files_complete_upload_external,
    "files.info": Files._files_info,
}
