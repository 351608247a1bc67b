"""`garden serve`'s security rules over HTTP: loopback by default, a token for anything else,
401 without it, 403 for a change without JSON and the X-Garden header (CSRF) or for a foreign
Host (DNS rebinding), and escaping of what a model wrote. A real server in a subprocess."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import garden_bin, tended_garden
from fake_openai import answer, fake_openai
from served import WRITE, client, event_count, garden, served, verified

TOKEN = "s3cret-token"


@pytest.fixture
def tended(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "g"
    assert tended_garden(root, monkeypatch, 30)["pending"] > 0
    return root


def first_link(http) -> dict:
    return next(item for item in http.get("/api/pending").json()["items"] if item["kind"] == "link")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::"])
def test_another_address_without_a_token_exits_at_once_saying_a_token_is_needed(tmp_path, host):
    started = time.monotonic()
    done = subprocess.run([garden_bin(), "serve", "--host", host, "--garden", str(tmp_path)],
                          capture_output=True, text=True, timeout=30, env={k: v for k, v in os.environ.items() if k != "GARDEN_TOKEN"})
    assert done.returncode == 1
    assert done.stderr == (f"error: --host {host} is not a loopback address: a token is needed, give --token "
                           "TOKEN (every request must then carry it)\n")
    assert done.stdout == ""
    assert time.monotonic() - started < 15


def test_with_a_token_every_request_needs_it(tended):
    with served(tended, "--token", TOKEN) as base, client(base) as http:
        for path in ("/api/pending", "/api/runs", "/api/health"):
            assert http.get(path).status_code == 401
            assert http.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert http.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        refused = http.get("/api/pending")
        assert refused.json() == {"error": "a token is needed: send Authorization: Bearer TOKEN"}
        page = http.get("/")
        assert page.status_code == 401 and 'id="login"' in page.text and 'id="item"' not in page.text
        before = event_count(tended)
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        item = first_link(client(base, headers=bearer))
        no_token = http.post("/api/decisions", json={"id": item["id"], "decision": "accept"}, headers=WRITE)
        assert no_token.status_code == 401
        assert event_count(tended) == before
        # the login form: a wrong token is refused; the right one sets a cookie the pages accept
        wrong = http.post("/login", data={"token": "nope"})
        assert wrong.status_code == 401 and "That token is not this server" in wrong.text
        login = http.post("/login", data={"token": TOKEN})
        assert login.status_code == 303 and TOKEN not in login.headers["set-cookie"]
        assert "httponly" in login.headers["set-cookie"].lower()
        assert http.get("/").status_code == 200 and 'id="accept"' in http.get("/").text
        decided = http.post("/api/decisions", json={"id": item["id"], "decision": "accept"}, headers=WRITE)
        assert decided.status_code == 200, decided.text
    assert verified(tended)


def test_a_change_without_json_and_the_x_garden_header_is_refused_and_nothing_is_recorded(tended):
    with served(tended) as base, client(base) as http:
        item = first_link(http)
        before = event_count(tended)
        body = {"id": item["id"], "decision": "accept"}
        message = {"error": "a change must be JSON (Content-Type: application/json) with the header X-Garden: 1"}
        attempts = [
            http.post("/api/decisions", data=body),  # what a cross-site form sends
            http.post("/api/decisions", json=body),  # JSON without the header
            http.post("/api/decisions", content=f'{{"id": "{item["id"]}", "decision": "accept"}}',
                      headers={**WRITE, "Content-Type": "text/plain"}),  # a "simple" cross-site fetch
            http.post(f"/api/runs/{http.get('/api/runs').json()['runs'][0]['run_id']}/revert", json={}),
        ]
        for refused in attempts:
            assert (refused.status_code, refused.json()) == (403, message)
        # no GET changes anything: the write routes answer GET with 405
        assert http.get("/api/decisions", params=body).status_code == 405
        assert event_count(tended) == before
        assert item["id"] in [i["id"] for i in http.get("/api/pending").json()["items"]]
    assert verified(tended)


def test_a_foreign_host_is_refused_without_a_token(tended):
    with served(tended) as base, client(base) as http:
        refused = http.get("/api/pending", headers={"Host": "attacker.example:8765"})
        assert refused.status_code == 403
        assert refused.json() == {"error": "this server answers loopback names only (the Host was "
                                           "'attacker.example'); serve with --token to be reached by another name"}
        assert http.get("/api/runs", headers={"Host": "localhost"}).status_code == 200


def test_a_reason_with_a_script_tag_shows_as_text(seed_garden, monkeypatch):
    root = seed_garden.parent
    monkeypatch.chdir(root)
    me, other = sorted(p.stem for p in seed_garden.glob("*.md"))[:2]
    reason = '<script>alert("x")</script> & <b>bold</b>'
    with fake_openai() as server:
        server.script(answer({"inferred_links": [
            {"target": other, "type": "complementary", "confidence": 0.9, "reason": reason}], "entities": []}))
        env = dict(os.environ, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=server.base_url, GARDEN_MODEL="fake-model")
        done = subprocess.run([garden_bin(), "propose", "--proposer", "llm", "--pattern", me], env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    with served(root) as base, client(base) as http:
        [item] = [i for i in http.get("/api/pending").json()["items"] if i["reason"] == reason]
        page = http.get("/", params={"pattern": me}).text
    assert f'data-id="{item["id"]}"' in page
    assert ('<p id="reason">&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;</p>'
            in page)
    assert "<script>alert" not in page and "<b>bold" not in page
    assert verified(root)
