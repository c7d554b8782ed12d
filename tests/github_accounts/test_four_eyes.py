"""Four-eyes with GitHub identities: with the app's ``commit_authors_are_requesters`` on, whoever
wrote a commit of the release (by GitHub user id) cannot approve its deploy; names are never
guessed, so local accounts and other GitHub users decide as before."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from approvals import policy
from approvals.models import ApprovalRequest, AuditEvent
from approvals.services import approval_decide
from deployments.models import GitHubIdentity
from deployments.services.tokens import api_token_create
from hotdash.errors import Refused
from hotdash.sandbox.github import user as sandbox_user

pytestmark = pytest.mark.django_db


def github_approver(login: str):
    """An approver who signs in with GitHub as ``login`` (the sandbox's user id for it)."""
    user = get_user_model().objects.create_user(username=f"{login}@github")
    user.groups.add(Group.objects.get(name=policy.APPROVER))
    GitHubIdentity.objects.create(user=user, github_id=sandbox_user("", login)["id"], login=login)
    return get_user_model().objects.get(pk=user.pk)


@pytest.fixture
def four_eyes(demo):
    demo.commit_authors_are_requesters = True
    demo.save(update_fields=["commit_authors_are_requesters"])
    return demo


def test_a_commit_author_may_not_approve(four_eyes, pending, v130):
    authors = {e["author"] for g in v130.changelog["groups"] for e in g["entries"]}
    assert authors == {"alice", "carol"}
    carol = github_approver("carol")
    with pytest.raises(Refused) as refused:
        approval_decide(request=pending, user=carol, verdict="approve", comment="lgtm")
    assert refused.value.code == "commit_author"
    assert "You wrote a commit of this release" in refused.value.message
    assert AuditEvent.objects.get(verb="approval.refused").data["reason"] == "commit_author"
    bob = github_approver("bob")  # not an author of v1.3.0
    approval_decide(request=pending, user=bob, verdict="approve")
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.APPROVED


def test_off_by_default(demo, pending):
    assert not demo.commit_authors_are_requesters
    approval_decide(request=pending, user=github_approver("carol"), verdict="approve")
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.APPROVED


def test_matched_by_github_id_not_by_login(four_eyes, pending):
    # Someone now called "carol" on GitHub who is not the account that wrote the commit.
    impostor = github_approver("dave")
    GitHubIdentity.objects.filter(user=impostor).update(login="carol")
    impostor = get_user_model().objects.get(pk=impostor.pk)
    approval_decide(request=pending, user=impostor, verdict="approve")
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.APPROVED


def test_changelogs_recorded_without_ids_compare_logins(four_eyes, pending, v130):
    for group in v130.changelog["groups"]:
        for entry in group["entries"]:
            entry.pop("author_id")
    v130.save(update_fields=["changelog"])
    carol = github_approver("carol")
    assert policy.wrote_commit_of(carol, v130)
    assert not policy.wrote_commit_of(github_approver("bob"), v130)


def test_the_api_refuses_it_too(four_eyes, pending, client):
    carol = github_approver("carol")
    _, raw = api_token_create(user=carol, name="cli")
    response = client.post(
        f"/api/v1/deploys/{pending.deploy_id}/decisions",
        data={"decision": "approve"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "commit_author"
