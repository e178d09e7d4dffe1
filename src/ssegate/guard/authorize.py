"""The guard step of a stream request: who the caller is, and whether the route lets them.

Answers (RFC 6750), each with the cross-origin headers so a page can read it:

- no token: 401 `WWW-Authenticate: Bearer realm="ssegate"` (no error code, §3.1);
- a token that does not verify: 401 with `error="invalid_token"` (the reason goes to the
  metrics, not to the client);
- a valid token without every role the route lists: 403 with `error="insufficient_scope"`
  and the roles it needs;
- the guard's remote keys not loaded yet: 503 with `Retry-After`;
- with `unauthorized: 404`, each of these is the route's 404 instead (Zilla hides routes).

An allowed caller's identity and attributes become expression values:
`guarded.<guard>.identity`, `guarded.<guard>.attributes.<name>`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus

from ssegate.guard.guard import JwtGuard, Missing
from ssegate.guard.jwt import Principal, TokenError
from ssegate.http.request import Request
from ssegate.rejection import Rejection

REALM = 'Bearer realm="ssegate"'
RETRY_KEYS_SECONDS = 5


@dataclass(frozen=True, slots=True)
class RouteGuard:
    """A route's `guarded` entry: its guard, the roles it needs, and whether a refusal is
    the route's 404."""

    guard: JwtGuard
    roles: frozenset[str]
    hide: bool = False


@dataclass(frozen=True, slots=True)
class Authorized:
    principal: Principal
    values: Mapping[str, str]  # for `${guarded['name'].…}`


@dataclass(frozen=True, slots=True)
class Refused:
    rejection: Rejection
    outcome: str  # the metric's `outcome` label


def principal_values(guard: str, principal: Principal) -> dict[str, str]:
    values = {f"guarded.{guard}.identity": principal.identity}
    for name, value in principal.attributes.items():
        values[f"guarded.{guard}.attributes.{name}"] = value
    return values


def authorize(
    route_guard: RouteGuard,
    request: Request,
    not_found: Callable[[], Rejection],
    now: Callable[[], float] = time.time,
) -> Authorized | Refused:
    guard = route_guard.guard
    result = guard.authenticate(request, now())
    if isinstance(result, Principal):
        if route_guard.roles <= result.roles:
            return Authorized(result, principal_values(guard.name, result))
        rejection = Rejection(
            HTTPStatus.FORBIDDEN,
            "the access token lacks a role this stream needs",
            (
                (
                    "WWW-Authenticate",
                    f'{REALM}, error="insufficient_scope", '
                    f'scope="{" ".join(sorted(route_guard.roles))}"',
                ),
            ),
        )
        outcome = "forbidden"
    elif result is Missing.NO_KEYS:
        rejection = Rejection(
            HTTPStatus.SERVICE_UNAVAILABLE,
            f"guard {guard.name!r} has no keys yet",
            (("Retry-After", str(RETRY_KEYS_SECONDS)),),
        )
        outcome = "unavailable"
    elif result is Missing.NO_CREDENTIALS:
        rejection = Rejection(
            HTTPStatus.UNAUTHORIZED,
            "this stream needs an access token",
            (("WWW-Authenticate", REALM),),
        )
        outcome = "missing"
    else:
        assert isinstance(result, TokenError)
        rejection = Rejection(
            HTTPStatus.UNAUTHORIZED,
            "the access token is not valid",
            (("WWW-Authenticate", f'{REALM}, error="invalid_token"'),),
        )
        outcome = result.problem.value
    if route_guard.hide and rejection.status is not HTTPStatus.SERVICE_UNAVAILABLE:
        rejection = not_found()
    return Refused(rejection, outcome)


def decision_outcome(decision: Authorized | Refused) -> str:
    """The metric's `outcome` label: `allowed`, or why not."""
    return "allowed" if isinstance(decision, Authorized) else decision.outcome
