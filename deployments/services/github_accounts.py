"""Sign in with GitHub, and HotDash roles from GitHub organisation teams.

A person who signs in with GitHub is matched to their account by GitHub user id (created on
first sign-in, ``<login>@github``); local accounts are separate and stay. The role groups of
such an account are managed here alone: the highest role any ``GitHubTeamRole`` gives a team
they are in. Membership is read at sign-in (their own token), re-read for everyone by beat
(``github_roles_refresh_all``) and for those concerned by a ``membership`` or ``team`` webhook
(HotDash's token). Every role change is audited ``user.role_changed`` with the team that caused
it; losing a role also revokes the person's API tokens, which were issued under the old one.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from approvals import policy
from approvals.audit import record
from deployments.models import ApiToken, GitHubIdentity, GitHubTeamRole
from deployments.services.tokens import api_token_revoke
from hotdash.errors import Refused
from hotdash.integrations import APIError
from hotdash.integrations.github_oauth import (
    GitHubUser,
    OAuthRefused,
    Team,
    current_login,
    exchange_code,
    signed_in_user,
    team_member,
)

log = logging.getLogger(__name__)
NO_ROLE = "none"


def _rank(role: str) -> int:
    return policy.ROLE_ORDER.index(role) if role in policy.ROLE_ORDER else -1


def _mapped_teams() -> dict[str, str]:
    """Every mapped team (lower-case ``org/slug``) and the highest role any app gives it."""
    roles: dict[str, str] = {}
    for mapping in GitHubTeamRole.objects.all():
        key = mapping.team.lower()
        if _rank(mapping.role) > _rank(roles.get(key, NO_ROLE)):
            roles[key] = mapping.role
    return roles


def _role_from(teams: list[str], mapped: dict[str, str]) -> tuple[str, str]:
    """(the highest role ``teams`` give, the team giving it), or (NO_ROLE, "")."""
    best, cause = NO_ROLE, ""
    for team in sorted(teams):
        if _rank(mapped[team]) > _rank(best):
            best, cause = mapped[team], team
    return best, cause


def _current_role(user: Any) -> str:
    names = set(user.groups.filter(name__in=policy.ROLE_ORDER).values_list("name", flat=True))
    return max(names, key=_rank, default=NO_ROLE)


def _apply(
    *, identity_pk: int, teams: set[str], login: str, actor: str, via: str, ip: str | None = None
) -> GitHubIdentity:
    """Store the mapped teams the person is in now and set their role group from them."""
    mapped = _mapped_teams()
    held = sorted(team for team in teams if team in mapped)
    with transaction.atomic():
        identity = GitHubIdentity.objects.select_for_update().get(pk=identity_pk)
        user = identity.user
        before, before_teams = _current_role(user), list(identity.teams)
        after, granting = _role_from(held, mapped)
        if login != identity.login:
            record(
                actor=actor,
                verb="user.github_login_changed",
                target=user,
                data={"user": user.get_username(), "from": identity.login, "to": login, "via": via},
                ip=ip,
            )
        identity.teams, identity.login, identity.refreshed_at = held, login, timezone.now()
        identity.save(update_fields=["teams", "login", "refreshed_at"])
        if after == before:
            return identity
        user.groups.remove(*Group.objects.filter(name__in=policy.ROLE_ORDER))
        if after != NO_ROLE:
            user.groups.add(Group.objects.get(name=after))
        if policy.ADMIN in (before, after):
            # The role comes with the Django admin, where admins edit apps, environments and
            # these team mappings (audited as admin.*); losing the role takes it away.
            user.is_staff = user.is_superuser = after == policy.ADMIN
            user.save(update_fields=["is_staff", "is_superuser"])
        cause, revoked = granting, []
        if _rank(after) < _rank(before):
            # The team whose membership (or mapping) ended and gave the old role.
            gone = [team for team in before_teams if team not in held]
            cause = next((t for t in gone if mapped.get(t) == before), gone[0] if gone else "")
            # Tokens were issued under the old role: they go with it.
            for token in ApiToken.objects.filter(user=user, revoked_at__isnull=True):
                api_token_revoke(token=token, actor=actor, ip=ip)
                revoked.append(token.prefix)
        record(
            actor=actor,
            verb="user.role_changed",
            target=user,
            data={
                "user": user.get_username(),
                "github_login": login,
                "from": before,
                "to": after,
                "team": cause,
                "teams": held,
                "via": via,
                "api_tokens_revoked": revoked,
                "django_admin": user.is_staff,
            },
            ip=ip,
        )
    return identity


def _username_for(person: GitHubUser) -> str:
    user_model = get_user_model()
    name = f"{person.login}@github"
    if user_model.objects.filter(username=name).exists():
        name = f"{person.login}.{person.id}@github"  # the login once belonged to someone else
    return name


def github_sign_in(*, code: str, redirect_uri: str, ip: str | None = None) -> Any:
    """The account of whoever GitHub says signed in (created on first sign-in), its role set
    from their teams. Refused when GitHub refuses the code or cannot be reached, or when the
    person is in no team that gives a role (a newcomer's account is then not created); each
    refusal is audited ``auth.login_failed``."""
    try:
        return _sign_in(code=code, redirect_uri=redirect_uri, ip=ip)
    except Refused as refused:
        with transaction.atomic():
            record(
                actor=None,
                verb="auth.login_failed",
                data={"via": "github", "reason": refused.code, **refused.details},
                ip=ip,
            )
        raise


@sensitive_variables("token")
def _sign_in(*, code: str, redirect_uri: str, ip: str | None) -> Any:
    try:
        token = exchange_code(code=code, redirect_uri=redirect_uri)
        person, teams = signed_in_user(token)
    except OAuthRefused as refused:
        raise Refused("github_refused", str(refused)) from None
    except APIError as error:
        raise Refused(
            "upstream_error",
            "GitHub could not be reached to sign you in; try again in a moment.",
            {"error": str(error)},
        ) from None
    team_keys = {team.key for team in teams}
    mapped = _mapped_teams()
    who = {"github_login": person.login}
    identity = GitHubIdentity.objects.filter(github_id=person.id).first()
    if identity is None:
        if _role_from([t for t in team_keys if t in mapped], mapped)[0] == NO_ROLE:
            raise Refused(
                "no_role",
                f"Your GitHub account {person.login} is in none of the teams that give a "
                "HotDash role. Ask an admin to add you to one.",
                who,
            )
        identity = _identity_create(person=person, ip=ip)
    identity = _apply(
        identity_pk=identity.pk,
        teams=team_keys,
        login=person.login,
        actor="github",
        via="sign-in",
        ip=ip,
    )
    user = identity.user
    if not user.is_active:
        raise Refused("inactive", "This account is disabled. Ask an admin.", who)
    if _current_role(user) == NO_ROLE:
        raise Refused(
            "no_role",
            f"Your GitHub account {person.login} is no longer in a team that gives a HotDash "
            "role. Ask an admin to add you to one.",
            who,
        )
    return user


@transaction.atomic
def _identity_create(*, person: GitHubUser, ip: str | None) -> GitHubIdentity:
    user = get_user_model().objects.create_user(
        username=_username_for(person), first_name=person.name[:150]
    )
    user.set_unusable_password()
    user.save(update_fields=["password"])
    identity = GitHubIdentity.objects.create(
        user=user, github_id=person.id, login=person.login, teams=[]
    )
    record(
        actor="github",
        verb="user.created_from_github",
        target=user,
        data={"user": user.get_username(), "github_login": person.login, "github_id": person.id},
        ip=ip,
    )
    return identity


def github_roles_refresh(*, identity: GitHubIdentity, actor: str, via: str) -> GitHubIdentity:
    """Re-read which mapped teams the person is in (HotDash's token) and apply it. The person
    is found by GitHub id, so a renamed account keeps its role; a deleted one loses it."""
    login = current_login(identity.github_id)
    teams = {
        key
        for key in _mapped_teams()
        if login is not None and team_member(team=Team(*key.split("/", 1)), login=login)
    }
    return _apply(
        identity_pk=identity.pk, teams=teams, login=login or identity.login, actor=actor, via=via
    )


def github_roles_refresh_all() -> int:
    """Beat: refresh everyone who signed in with GitHub; one who cannot be read now keeps
    their role until the next round (logged). Returns how many were refreshed."""
    refreshed = 0
    for identity in GitHubIdentity.objects.order_by("pk"):
        try:
            github_roles_refresh(identity=identity, actor="system", via="refresh")
        except APIError as error:
            log.warning("GitHub roles of %s not refreshed: %s", identity.login, error)
            continue
        refreshed += 1
    return refreshed


def github_team_event_handle(*, event: str, payload: dict[str, Any]) -> str | None:
    """A ``membership`` or ``team`` webhook: refresh whoever it concerns; None when it concerns
    nobody who signs in with GitHub."""
    team = payload["team"]
    key = Team(org=payload["organization"]["login"], slug=team["slug"]).key
    if event == "membership":
        identities = list(GitHubIdentity.objects.filter(github_id=payload["member"]["id"]))
    else:  # a team renamed or deleted: whoever held a role through it
        identities = [i for i in GitHubIdentity.objects.order_by("pk") if key in i.teams]
    done = [
        github_roles_refresh(identity=identity, actor="github", via=f"{event} webhook").login
        for identity in identities
    ]
    return f"{event} {key}: refreshed {', '.join(done)}" if done else None
