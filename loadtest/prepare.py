"""Preparation before the clock starts: test members with fresh tokens, and the clothes a scenario needs.

Joining costs an e-mail round trip and two Argon2 hashes per member, so members are
made concurrently and kept in ``loadtest/.members-<stack>.json``; a later run only
refreshes their tokens (access tokens live minutes), logging in again where a refresh
token was rotated or the session is gone, and joining only the members still missing.
The e-mail code is read from the stack's mail folder (the file e-mail backend).

When the member service's per-IP limit on sending codes bites (429), preparation stops
joining and lets the members it has log in on several devices instead: a warning says so
and how to raise the limit (start the stack with ``RATE_LIMIT_SCALE``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from stack import ROOT, Stack

PASSWORD = "Loadtest-Drop-2026!"
#: tokens older than this are refreshed once more before the run (access tokens live 300 s by default)
FRESH_SECONDS = 60
_SEPARATOR = "\n" + "-" * 79 + "\n"  # what Django's file e-mail backend writes after each message
_SEPARATOR_BYTES = _SEPARATOR.encode()


class RateLimitedError(RuntimeError):
    """The member service refused to mail more codes, or to log in more sessions (429)."""


#: What to do when the member service's limits stop the preparation.
RAISE_THE_LIMITS = (
    "Start the stack with higher limits, e.g. RATE_LIMIT_SCALE=1000 python manage_all.py up "
    "(on a stack that is not running yet), or restart its member service and gateway with "
    "RATE_LIMIT_SCALE=1000 exported (README, Load tests)."
)


class MailBox:
    """The stack's mail folder, read incrementally: one pass over new mail serves every waiting thread.

    Django's file backend may append a message to a file it wrote before (a file is named by
    the second and a connection's ``id()``, which a new connection can reuse), so each file
    is read on from where the last whole message in it ended.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self._read_up_to: dict[str, int] = {}
        self._codes: dict[str, str] = {}
        self._lock = threading.Lock()

    def _scan(self) -> None:
        try:
            entries = sorted(os.scandir(self.folder), key=lambda e: e.stat().st_mtime)
        except FileNotFoundError:
            return
        for entry in entries:
            offset = self._read_up_to.get(entry.name, 0)
            try:
                if entry.stat().st_size <= offset:
                    continue
                with open(entry.path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except OSError:
                continue
            whole = data.rfind(_SEPARATOR_BYTES)
            if whole < 0:
                continue  # a message still being written: read it on a later pass
            whole += len(_SEPARATOR_BYTES)
            self._read_up_to[entry.name] = offset + whole
            for message in data[:whole].decode(errors="replace").split(_SEPARATOR):
                to = re.search(r"^To: (.+)$", message, re.M)
                code = re.search(r"Your code: (\d{6})", message)
                if to and code:
                    self._codes[to.group(1).strip().lower()] = code.group(1)

    def code_for(self, email: str, *, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        email = email.lower()
        while time.monotonic() < deadline:
            with self._lock:
                if email in self._codes:
                    return self._codes.pop(email)
                self._scan()
                if email in self._codes:
                    return self._codes.pop(email)
            time.sleep(0.05)
        raise RuntimeError(f"no code mailed to {email} in {self.folder} within {timeout:.0f}s")


@dataclass
class Api:
    """A pooled client for the public API, shared by the preparation threads."""

    base: str
    pool: int = 32

    def __post_init__(self) -> None:
        self.http = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self.pool)
        self.http.mount("http://", adapter)

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        """One call; a 503/504 (the member service queueing Argon2 hashes past the gateway's timeout) is retried."""
        kw.setdefault("timeout", 30)
        for attempt in range(6):
            r = self.http.request(method, self.base.rstrip("/") + path, **kw)
            if r.status_code not in (503, 504):
                return r
            time.sleep(0.5 * (attempt + 1))
        return r


# ----------------------------------------------------------------------------- members


def _join(api: Api, mail: MailBox, email: str) -> None:
    r = api.call("POST", "/member/email/send", json={"email": email})
    if r.status_code == 429:
        raise RateLimitedError(r.text)
    r.raise_for_status()
    code = mail.code_for(email)
    r = api.call("POST", "/member/email/verify", json={"email": email, "code": code})
    r.raise_for_status()
    r = api.call("POST", "/member/join", json={"email": email, "password": PASSWORD, "name": "Load Test Buyer"})
    if r.status_code != 201:
        raise RuntimeError(f"join {email}: {r.status_code} {r.text[:200]}")


def _login(api: Api, email: str, password: str, device: str) -> dict[str, Any] | None:
    r = api.call("POST", "/member/login", json={"email": email, "password": password, "device_name": device})
    if r.status_code == 401:
        return None  # the member is gone (databases reset): join a new one
    if r.status_code == 429:
        raise RateLimitedError(r.text)
    if r.status_code != 200:
        raise RuntimeError(f"login {email}: {r.status_code} {r.text[:200]}")
    return r.json()


def _refresh(api: Api, refresh_token: str) -> dict[str, Any] | None:
    r = api.call("GET", "/member/refresh", headers={"Refresh-Token": refresh_token})
    return r.json() if r.status_code == 200 else None


def _fresh_tokens(api: Api, member: dict[str, Any]) -> dict[str, Any] | None:
    """Refresh (cheap) or log in again (an Argon2 check); None when the member no longer exists."""
    pair = _refresh(api, member["refresh_token"]) if member.get("refresh_token") else None
    if pair is None:
        pair = _login(api, member["email"], member["password"], member.get("device", "loadtest"))
    if pair is None:
        return None
    return {
        **member,
        "member_id": pair["member_id"],
        "access_token": pair["access_token"],
        "refresh_token": pair["refresh_token"],
        "tokens_at": time.time(),
    }


def _key(member: dict[str, Any]) -> str:
    """A cached session: one member on one device."""
    return f"{member['email']}|{member.get('device', 'loadtest')}"


class MemberCache:
    """``loadtest/.members-<stack>.json``: sessions (member, device, tokens) kept between runs."""

    def __init__(self, stack: str):
        self.path = ROOT / "loadtest" / f".members-{stack}.json"
        self.lock = threading.Lock()
        self.members: list[dict[str, Any]] = []
        if self.path.exists():
            try:
                self.members = json.loads(self.path.read_text())["members"]
            except (ValueError, KeyError):
                self.members = []

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"members": self.members}))
        tmp.chmod(0o600)
        tmp.replace(self.path)

    def merge_tokens(self, folder: Path) -> int:
        """Take the tokens a run rotated (files ``tokens-<pid>.json``), so the next refresh is not a reuse."""
        newest: dict[str, dict[str, str]] = {}
        for f in folder.glob("tokens-*.json"):
            newest.update(json.loads(f.read_text()))
            f.unlink()
        for m in self.members:
            if _key(m) in newest:
                m.update(newest[_key(m)])
        if newest:
            self.save()
        return len(newest)


def prepare_members(
    stack: Stack,
    gateway: str,
    wanted: int,
    *,
    mail_dir: Path | None = None,
    threads: int = 16,
    hashing_threads: int = 4,
    log=print,
) -> list[dict[str, Any]]:
    """``wanted`` logged-in members (fresh tokens), joining new ones only where the cache falls short.

    Refreshing is cheap and runs ``threads`` wide; joining and logging in each cost an
    Argon2 hash (about a quarter second of CPU here), so they run ``hashing_threads`` wide:
    more only queues in the member service until the gateway gives up (504). A login the
    member service refuses (its limit) stops the preparation with what to do.
    """
    ready: list[dict[str, Any]] = []  # filled as members get ready: how far it got, if stopped
    try:
        return _prepare_members(stack, gateway, wanted, mail_dir, threads, hashing_threads, log, ready)
    except RateLimitedError:
        raise SystemExit(
            f"{len(ready)} of {wanted} members ready: the member service refuses to log in more sessions of the "
            f"load test's members (429). {RAISE_THE_LIMITS}"
        ) from None


def _prepare_members(
    stack: Stack,
    gateway: str,
    wanted: int,
    mail_dir: Path | None,
    threads: int,
    hashing_threads: int,
    log: Any,
    ready: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    cache = MemberCache(stack.name)
    api = Api(gateway, pool=threads * 2)
    mail = MailBox(mail_dir or stack.mail_dir)
    started = time.monotonic()

    # 1. Fresh tokens for the cached sessions we need, distinct members before extra devices.
    cache.members.sort(key=lambda m: m.get("device", "loadtest") != "loadtest")
    candidates = cache.members[:wanted]
    with ThreadPoolExecutor(threads) as pool:
        for result in pool.map(lambda m: _fresh_tokens(api, m), candidates):
            if result is not None:
                ready.append(result)
    if candidates and not ready:
        # Not one cached member exists any more: the stack's databases were made afresh, and
        # every member cached before went with them. Forgotten all at once: dropping only the
        # ones tried made each run join new members while the next stale ones stood first,
        # so two classes of one run got different members.
        log(
            f"  none of the {len(candidates)} cached members tried exists any more: forgetting all {len(cache.members)}"
        )
        cache.members = []
    else:
        known = {_key(m) for m in ready}
        cache.members = ready + [m for m in cache.members[wanted:] if _key(m) not in known]
    cache.save()
    refreshed = len(ready)

    # 2. Join the missing members concurrently until the limit on mailed codes stops us.
    missing = wanted - len(ready)
    rate_limited = False
    if missing > 0:
        stop = threading.Event()

        def new_member(_: int) -> dict[str, Any] | None:
            if stop.is_set():
                return None
            email = f"lt-{uuid.uuid4().hex[:16]}@loadtest.example.com"
            try:
                _join(api, mail, email)
                pair = _login(api, email, PASSWORD, "loadtest")
            except RateLimitedError:
                stop.set()
                return None
            assert pair is not None
            member = {
                "email": email,
                "password": PASSWORD,
                "member_id": pair["member_id"],
                "device": "loadtest",
                "access_token": pair["access_token"],
                "refresh_token": pair["refresh_token"],
                "tokens_at": time.time(),
            }
            with cache.lock:
                cache.members.append(member)
                if len(cache.members) % 100 == 0:
                    cache.save()
            return member

        done = 0
        with ThreadPoolExecutor(hashing_threads) as pool:
            for future in as_completed([pool.submit(new_member, i) for i in range(missing)]):
                member = future.result()
                if member:
                    ready.append(member)
                    done += 1
                    if done % 100 == 0:
                        log(f"  joined {done}/{missing} members ({time.monotonic() - started:.0f}s)")
        rate_limited = stop.is_set()
        cache.save()

    # 3. Still short (mail limit): the members we have log in on more devices (kept in the cache too).
    if len(ready) < wanted:
        distinct = [m for m in ready if m.get("device", "loadtest") == "loadtest"]
        if not distinct:
            raise SystemExit(
                f"no member could be prepared: the member service refuses to mail codes (429). {RAISE_THE_LIMITS}"
            )
        if rate_limited:
            log(
                f"  warning: the e-mail code limit stopped joining at {len(distinct)} distinct members; the rest are "
                "extra devices of the same members (start the stack with RATE_LIMIT_SCALE=1000 for distinct buyers)"
            )
        todo = range(wanted - len(ready))

        def extra_device(i: int) -> dict[str, Any]:
            m = distinct[i % len(distinct)]
            device = f"loadtest-device-{uuid.uuid4().hex[:8]}"
            pair = _login(api, m["email"], m["password"], device)
            assert pair is not None
            return {
                **m,
                "device": device,
                "access_token": pair["access_token"],
                "refresh_token": pair["refresh_token"],
                "tokens_at": time.time(),
            }

        with ThreadPoolExecutor(hashing_threads) as pool:
            extra = list(pool.map(extra_device, todo))
        ready += extra
        with cache.lock:
            cache.members += extra
        cache.save()

    # 4. Preparation can outlast an access token (minutes): refresh what is no longer fresh.
    stale = [i for i, m in enumerate(ready) if time.time() - m.get("tokens_at", 0) > FRESH_SECONDS]
    if stale:
        with ThreadPoolExecutor(threads) as pool:
            for i, fresh in zip(stale, pool.map(lambda i: _fresh_tokens(api, ready[i]), stale), strict=True):
                if fresh is not None:
                    ready[i] = fresh
        by_key = {_key(m): m for m in ready}
        cache.members = [by_key.get(_key(m), m) for m in cache.members]
        cache.save()

    log(
        f"  members ready: {len(ready)} ({refreshed} from the cache, {len(ready) - refreshed} new or extra devices) "
        f"in {time.monotonic() - started:.1f}s"
    )
    return ready


# ----------------------------------------------------------------------------- clothes


def create_drop(
    stack: Stack,
    *,
    name: str,
    price: str,
    sizes: str,
    starts_at: dt.datetime,
    limit: int,
    brand: str = "Loadtest",
    category: str = "loadtest",
) -> dict[str, Any]:
    """A drop through the operator command; returns its JSON (cloth_id, sale_starts_at, variants)."""
    code, out = stack.manage_json(
        "catalog",
        "create_drop",
        "--name",
        name,
        "--price",
        price,
        "--sizes",
        sizes,
        "--starts-at",
        starts_at.isoformat(),
        "--limit",
        str(limit),
        "--brand",
        brand,
        "--category",
        category,
    )
    if code != 0:
        raise SystemExit(f"create_drop failed ({code}): {out}")
    return out


def cloth_ids(gateway: str, *, pages: int = 5) -> list[int]:
    """Ids of clothes to browse, from the public list (the newest few pages)."""
    api = Api(gateway, pool=2)
    ids: list[int] = []
    for page in range(1, pages + 1):
        r = api.call("GET", f"/cloth/list?page={page}&page_size=50")
        if r.status_code != 200:
            break
        body = r.json()
        ids += [c["cloth_id"] for c in body["results"]]
        if not body.get("next"):
            break
    return ids
