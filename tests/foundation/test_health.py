from __future__ import annotations

from hotdash.version import __version__


def test_health_reports_database_and_broker(client, db):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


def test_health_answers_probes_addressed_by_private_ip(client, db):
    """Fly's checks (like most load balancers) send the machine's private address as Host."""
    probe = client.get("/health", HTTP_HOST="172.19.17.130:8080")
    assert probe.status_code == 200
    assert probe.json()["status"] == "ok"
    # Every other path still validates the Host header.
    assert client.get("/accounts/login/", HTTP_HOST="172.19.17.130:8080").status_code == 400
    assert client.post("/health", HTTP_HOST="172.19.17.130:8080").status_code == 405


def test_health_reports_a_dead_broker_as_503(client, db, settings):
    from hotdash.celery import app

    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/health")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_metrics_is_prometheus_text(client, demo):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert 'hotdash_deploys{state="succeeded"} 8' in response.content.decode()
