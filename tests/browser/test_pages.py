"""The page routes without a browser: login and logout forms, redirects, and what they refuse."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from leitstand.access.identity import SESSION_COOKIE
from leitstand.web.pages import safe_next
from tests.conftest import PASSWORD

HTML = {"accept": "text/html"}


def submit_login(client: TestClient, password: str = PASSWORD, next: str = "/", **headers: str) -> Any:
    form = {"username": "acme-admin", "password": password, "next": next}
    return client.post("/login", data=form, headers=headers, follow_redirects=False)


def test_a_page_without_a_session_redirects_to_login(client: TestClient) -> None:
    response = client.get("/plants/hh", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/plants/hh"


def test_login_sets_the_session_cookie_and_returns_to_next(client: TestClient) -> None:
    response = submit_login(client, next="/plants/hh?hours=8")
    assert response.status_code == 303
    assert response.headers["location"] == "/plants/hh?hours=8"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=eyJ")  # a JWT
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    page = client.get("/", headers=HTML)
    assert page.status_code == 200
    assert "acme-admin" in page.text
    assert client.get("/api/v1/auth/me").json()["username"] == "acme-admin"


def test_a_wrong_password_shows_the_form_again_with_401(client: TestClient) -> None:
    response = submit_login(client, password="not the password")
    assert response.status_code == 401
    assert "Unknown user name or wrong password." in response.text
    assert "set-cookie" not in response.headers


def test_the_login_form_escapes_what_the_user_typed(client: TestClient) -> None:
    form = {"username": '"><script>alert(1)</script>', "password": "x", "next": "/"}
    response = client.post("/login", data=form, follow_redirects=False)
    assert response.status_code == 401
    assert "<script>alert(1)" not in response.text
    assert "&lt;script&gt;" in response.text


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\t/evil.example",
        "",
    ],
)
def test_next_never_leads_off_the_site(target: str) -> None:
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/plants/hh", "/plants/hh?hours=168"])
def test_next_keeps_paths_on_the_site(target: str) -> None:
    assert safe_next(target) == target


def test_logout_ends_the_session(client: TestClient) -> None:
    submit_login(client)
    assert client.get("/api/v1/auth/me").status_code == 200
    secret = client.cookies[SESSION_COOKIE]
    response = client.post("/logout", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    client.cookies.clear()
    gone = client.get("/api/v1/auth/me", headers={"authorization": f"Bearer {secret}"})
    assert gone.status_code == 401


def test_a_form_post_from_another_site_is_refused(client: TestClient) -> None:
    response = submit_login(client, origin="https://evil.example")
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_the_style_sheet_and_scripts_are_served(client: TestClient) -> None:
    for path in ("/static/leitstand.css", "/static/js/enterprise.js", "/static/js/plant.js"):
        assert client.get(path).status_code == 200, path


def test_the_login_page_sends_a_logged_in_user_on(client: TestClient) -> None:
    submit_login(client)
    response = client.get("/login?next=/plants/hh", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/plants/hh"
