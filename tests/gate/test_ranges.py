"""Deep JSON, far dates, huge integers and non-numeric ids: a 4xx or an empty result, never
a 500; API URLs always answer the API's JSON error shape."""

from __future__ import annotations

import pytest

from deployments.models import WebhookDelivery

DEEP = 30_000  # under the 64 KiB body cap, far past Python's recursion limit
BIG = "9" * 23  # past 64 bits


@pytest.mark.django_db
@pytest.mark.parametrize("shape", ["[" * DEEP + "]" * DEEP, '{"a":' * 10_000 + "1" + "}" * 10_000])
def test_deeply_nested_json_is_refused_even_for_a_viewer(api, viewer, shape):
    response = api(viewer, "post", "/deploys", raw=shape.encode())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.django_db
def test_nesting_just_under_the_cap_is_parsed(api, viewer):
    body = '{"reason": ' + "[" * 60 + "]" * 60 + "}"
    response = api(viewer, "post", "/deploys", raw=body.encode())
    assert response.status_code != 400


@pytest.mark.django_db
@pytest.mark.parametrize("raw", [b'{"reason": NaN}', b'{"reason": 1' + b"0" * 5000 + b"}"])
def test_non_finite_and_giant_numbers_are_invalid_json(api, requester, raw):
    response = api(requester, "post", "/deploys", raw=raw)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.django_db
def test_deeply_nested_webhook_is_refused_with_400(post_delivery):
    response = post_delivery("push", b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert response.status_code == 400
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "since=9999-12-31",
        "until=9999-12-31",
        "since=0001-01-01",
        "until=0001-01-01",
        f"before={BIG}",
        f"after={BIG}",
        "before=-5",
    ],
)
@pytest.mark.parametrize("path", ["/audit/", "/audit/export.csv", "/audit/export.jsonl"])
def test_audit_filters_out_of_range_are_refused(client, demo, viewer, path, query):
    client.force_login(viewer)
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400


NOT_IDS = [BIG, "²", "-1", "1e9", "0"]


@pytest.mark.django_db
@pytest.mark.parametrize("value", NOT_IDS)
def test_a_filter_that_is_not_an_id_is_refused(client, demo, admin_user, value):
    client.force_login(admin_user)
    assert client.get(f"/rollbacks/?environment={value}").status_code == 400
    assert client.get("/rollbacks/?environment=").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("value", [*NOT_IDS, ""])
def test_a_prefill_that_is_not_an_id_is_ignored(client, demo, admin_user, value):
    client.force_login(admin_user)
    response = client.get(f"/deploys/new/?environment={value}&release={value}")
    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("environment", [BIG, "x" * 500])
def test_api_releases_environment_filter_of_any_length_is_an_empty_result(api, viewer, environment):
    response = api(viewer, "get", f"/apps/hot-dash/releases?environment={environment}")
    assert response.status_code == 200
    assert response.json()["releases"] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        f"/deploys/{BIG}/",
        f"/releases/{BIG}/",
        f"/environments/{BIG}/",
        f"/previews/{BIG}/",
        f"/approvals/{BIG}/",
        f"/approvals/deploy/{BIG}/",
        f"/environments/1/freeze-windows/{BIG}/remove/",
        "/deploys/9223372036854775808/",
    ],
)
def test_page_ids_past_64_bits_are_404(client, demo, admin_user, path):
    client.force_login(admin_user)
    method = client.post if path.endswith("remove/") else client.get
    assert method(path).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("pk", ["abc", BIG, "9223372036854775808", "-1", "1.5", "%C2%B2"])
@pytest.mark.parametrize(
    ("method", "suffix"), [("get", ""), ("post", "/decisions"), ("post", "/cancel")]
)
def test_api_ids_that_are_not_deploy_ids_answer_the_json_404(api, approver, pk, method, suffix):
    body = {"decision": "approve", "reason": "x"} if method == "post" else None
    response = api(approver, method, f"/deploys/{pk}{suffix}", body)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_a_nul_in_an_api_path_parameter_is_refused_naming_it(api, approver):
    for path in ("/deploys/1%00", "/apps/hot%00dash/releases"):
        response = api(approver, "get", path)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_text"
        assert response.json()["error"]["details"]["field"] in ("pk", "app")


@pytest.mark.django_db
def test_unknown_api_paths_answer_the_json_404(client, db):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
