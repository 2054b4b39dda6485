"""The admin port of every process: /healthz, /readyz, /metrics."""

from __future__ import annotations


def test_health_readiness_and_metrics(platform, clients, uniq):
    c = clients.user(uniq("adm"))
    c.join("#" + uniq("adm"))
    for proc in [platform.router, *platform.gateways[:2]]:
        assert proc.get("/healthz")[0] == 200, proc.name
        status, body = proc.get("/readyz")
        assert status == 200, f"{proc.name} /readyz: {status} {body}"
        status, body = proc.get("/metrics")
        assert status == 200, f"{proc.name} /metrics: {status}"
    _, gw_metrics = platform.gateways[0].get("/metrics")
    assert "gateway_connections" in gw_metrics, gw_metrics[:500]
    _, router_metrics = platform.router.get("/metrics")
    assert "router_intents_total" in router_metrics, router_metrics[:500]
    assert platform.gateways[0].get("/nope")[0] == 404
